"""The servers the sandboxed tests talk to, run outside the sandbox with Python's own
sockets: HTTP and HTTPS (http.server), SMTP and FTP (minimal ones written here, as
Debian's Python 3.11 has no FTP server), XML-RPC, UDP echo, TCP echo on ::1. It writes
their ports as JSON to argv[1] once all listen, and serves until killed.

GET /mail returns the last message the SMTP server took; GET /poke?port=N connects to
127.0.0.1:N, sends a line and returns the reply: the client outside the sandbox for a
server inside it."""

import http.server
import json
import socket
import socketserver
import ssl
import sys
import threading
import urllib.parse
import xmlrpc.server

PAGE = b"<html><body>hello from outside the sandbox</body></html>\n"
mail = {"last": b""}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, *args):
        pass

    def reply(self, body, ctype="text/html"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/page":
            self.reply(PAGE)
        elif url.path == "/count":
            # Which connection served the request: keep-alive means one for many requests.
            self.reply(("%s:%d" % self.client_address).encode(), "text/plain")
        elif url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                chunk = ("chunk %d;" % i).encode() * (i + 1)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/mail":
            self.reply(mail["last"], "text/plain")
        elif url.path == "/poke":
            port = int(urllib.parse.parse_qs(url.query)["port"][0])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"ping from outside\n")
                reply = s.makefile("rb").readline()
            self.reply(reply, "text/plain")
        else:
            self.send_error(404)


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib.sendmail."""

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.split(b" ")[0].strip().upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-test\r\n250 8BITMIME\r\n")
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                body = b""
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    body += data
                mail["last"] = body
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 not implemented\r\n")


FTP_FILES = {"hello.txt": b"the file's contents\n" * 1000}


class FTPHandler(socketserver.StreamRequestHandler):
    """Just enough FTP for ftplib: login, PWD, TYPE, PASV, NLST, RETR, QUIT."""

    def say(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        self.pasv = None
        self.say("220 test FTP")
        while line := self.rfile.readline():
            verb, _, arg = line.decode().strip().partition(" ")
            verb = verb.upper()
            if verb == "USER":
                self.say("331 password please")
            elif verb == "PASS":
                self.say("230 logged in")
            elif verb == "PWD":
                self.say('257 "/" is the directory')
            elif verb == "TYPE":
                self.say("200 type set")
            elif verb == "PASV":
                self.pasv = socket.create_server(("127.0.0.1", 0))
                port = self.pasv.getsockname()[1]
                self.say("227 Entering Passive Mode (127,0,0,1,%d,%d)" % (port >> 8, port & 255))
            elif verb in ("NLST", "RETR"):
                if arg and arg not in FTP_FILES or self.pasv is None:
                    self.say("550 no such file or no PASV")
                    continue
                self.say("150 opening data connection")
                conn, _ = self.pasv.accept()
                with conn:
                    conn.sendall(FTP_FILES[arg] if verb == "RETR" else
                                 "".join(n + "\r\n" for n in FTP_FILES).encode())
                self.pasv.close()
                self.pasv = None
                self.say("226 transfer complete")
            elif verb == "QUIT":
                self.say("221 bye")
                return
            else:
                self.say("502 not implemented")


class UDPEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data.upper(), self.client_address)


class TCPEcho(socketserver.StreamRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


class V6Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def main():
    out, certdir = sys.argv[1], sys.argv[2]
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    ports = {}
    ports["http"] = serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certdir + "/server.pem", certdir + "/server.key")
    https.socket = ctx.wrap_socket(https.socket, server_side=True)
    ports["https"] = serve(https)
    ports["smtp"] = serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), SMTPHandler))
    ports["ftp"] = serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), FTPHandler))
    rpc = xmlrpc.server.SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False)
    rpc.register_function(lambda a, b: a + b, "add")
    rpc.register_function(lambda s: s[::-1], "reverse")
    ports["xmlrpc"] = serve(rpc)
    ports["udp"] = serve(socketserver.ThreadingUDPServer(("127.0.0.1", 0), UDPEcho))
    ports["echo6"] = serve(V6Server(("::1", 0), TCPEcho))
    ports["echo"] = serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), TCPEcho))
    with open(out + ".tmp", "w") as f:
        json.dump(ports, f)
    import os
    os.rename(out + ".tmp", out)
    threading.Event().wait()


if __name__ == "__main__":
    main()
