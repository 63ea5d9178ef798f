"""The standard library's clients and servers, unchanged, through the broker once
sockrpc.install() has patched the socket module: urllib over HTTP and HTTPS (test CA),
http.client keep-alive and chunked, smtplib, ftplib, xmlrpc.client, and a
socketserver.TCPServer in the sandbox serving a client outside it."""

import email.message
import ftplib
import http.client
import smtplib
import socket
import socketserver
import ssl
import threading
import unittest
import urllib.error
import urllib.request
import xmlrpc.client

import sockrpc
import sockrpc._tls
from support import CA, PORTS, audit_lines

# No proxy from the environment: the servers are on this host's loopback.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def setUpModule():
    sockrpc.install()


def tearDownModule():
    sockrpc.uninstall()


class InstallTest(unittest.TestCase):
    def test_socket_module_is_patched(self):
        self.assertIs(socket.socket, sockrpc.socket)
        self.assertIs(socket.create_connection, sockrpc.create_connection)
        self.assertIs(socket.getaddrinfo, sockrpc.getaddrinfo)
        self.assertIsInstance(socket.socket(), sockrpc.socket)
        # The module's own helpers that wrap a descriptor still make real sockets.
        a, b = socket.socketpair()
        with a, b:
            self.assertIs(type(a), sockrpc._std["socket"])
            a.sendall(b"pair")
            self.assertEqual(b.recv(4), b"pair")


class HTTPTest(unittest.TestCase):
    def test_urlopen(self):
        url = "http://127.0.0.1:%d/page" % PORTS["http"]
        with opener.open(url, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertIn(b"hello from outside the sandbox", r.read())

    def test_urlopen_by_name_resolves_through_the_daemon(self):
        with opener.open("http://localhost:%d/page" % PORTS["http"], timeout=10) as r:
            self.assertIn(b"hello", r.read())
        sid = sockrpc.session_id()
        self.assertTrue(audit_lines(lambda e: e.get("op") == "resolve" and
                                    e.get("session") == sid and e.get("name") == "localhost"))

    def test_keep_alive_and_chunked(self):
        conn = http.client.HTTPConnection("127.0.0.1", PORTS["http"], timeout=10)
        peers = set()
        for _ in range(5):
            conn.request("GET", "/count")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            peers.add(r.read())
        self.assertEqual(len(peers), 1, "keep-alive: every request on one connection")
        self.assertIsInstance(conn.sock, sockrpc.socket)
        conn.request("GET", "/chunked")
        r = conn.getresponse()
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        body = r.read()
        self.assertEqual(body, b"".join(("chunk %d;" % i).encode() * (i + 1) for i in range(5)))
        conn.request("GET", "/count")
        self.assertEqual(conn.getresponse().read(), peers.pop())
        conn.close()

    def test_https_with_test_ca(self):
        # The HTTPS server's port has a handback rule: TLS runs in ssl itself on the real
        # socket; with install(handback=False), over the brokered one with wrap_bio.
        handback = hasattr(sockrpc._sockrpc.Handle, "take_fd")
        for mode, sock_type in ((True, ssl.SSLSocket if handback else sockrpc._tls.TLSSocket),
                                (False, sockrpc._tls.TLSSocket)):
            with self.subTest(handback=mode):
                sockrpc.install(handback=mode)
                self.https_through(sock_type)
        sockrpc.install()

    def https_through(self, sock_type):
        ctx = ssl.create_default_context(cafile=CA)
        url = "https://localhost:%d/page" % PORTS["https"]
        tls_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                 urllib.request.HTTPSHandler(context=ctx))
        with tls_opener.open(url, timeout=10) as r:
            self.assertIn(b"hello from outside the sandbox", r.read())
        conn = http.client.HTTPSConnection("localhost", PORTS["https"], context=ctx, timeout=10)
        for _ in range(3):
            conn.request("GET", "/chunked")
            self.assertTrue(conn.getresponse().read().startswith(b"chunk 0;"))
        self.assertIs(type(conn.sock), sock_type)
        self.assertEqual(conn.sock.version(), "TLSv1.3")
        self.assertEqual(dict(x[0] for x in conn.sock.getpeercert()["subject"])["commonName"],
                         "localhost")
        conn.close()

    def test_https_rejects_an_unknown_ca(self):
        sockrpc.install(handback=False)
        self.addCleanup(sockrpc.install)
        ctx = ssl.create_default_context()  # the system's CAs: the test CA is not one
        conn = http.client.HTTPSConnection("localhost", PORTS["https"], context=ctx, timeout=10)
        with self.assertRaises(ssl.SSLCertVerificationError):
            conn.request("GET", "/page")
        conn.close()


class MailFileRPCTest(unittest.TestCase):
    def test_smtplib(self):
        msg = email.message.EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", "sandbox"
        msg.set_content("sent through sockrpcd\n")
        with smtplib.SMTP("127.0.0.1", PORTS["smtp"], local_hostname="sandbox",
                          timeout=10) as smtp:
            smtp.send_message(msg)
        with opener.open("http://127.0.0.1:%d/mail" % PORTS["http"], timeout=10) as r:
            got = r.read()
        self.assertIn(b"Subject: sandbox", got)
        self.assertIn(b"sent through sockrpcd", got)

    def test_ftplib(self):
        with ftplib.FTP() as ftp:
            ftp.connect("127.0.0.1", PORTS["ftp"], timeout=10)
            ftp.login("user", "secret")
            self.assertEqual(ftp.pwd(), "/")
            self.assertEqual(ftp.nlst(), ["hello.txt"])
            chunks = []
            ftp.retrbinary("RETR hello.txt", chunks.append)
            self.assertEqual(b"".join(chunks), b"the file's contents\n" * 1000)
            lines = []
            ftp.retrlines("RETR hello.txt", lines.append)
            self.assertEqual(len(lines), 1000)

    def test_xmlrpc(self):
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1:%d/" % PORTS["xmlrpc"])
        self.assertEqual(proxy.add(2, 3), 5)
        self.assertEqual(proxy.reverse("sockrpc"), "cprkcos")
        proxy("close")()


class Reply(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline()
        self.wfile.write(b"inside got: " + line)


class SocketServerTest(unittest.TestCase):
    def test_server_in_the_sandbox(self):
        # Listening sockets stay in the daemon and have no descriptor to select on, so
        # the requests are taken one by one, as serve_forever would after each wake-up.
        with socketserver.TCPServer(("127.0.0.1", 0), Reply) as server:
            self.assertIsInstance(server.socket, sockrpc.socket)
            port = server.server_address[1]
            t = threading.Thread(target=server._handle_request_noblock)
            t.start()
            url = "http://127.0.0.1:%d/poke?port=%d" % (PORTS["http"], port)
            with opener.open(url, timeout=10) as r:
                self.assertEqual(r.read(), b"inside got: ping from outside\n")
            t.join(5)

    def test_denied_through_the_stdlib(self):
        with self.assertRaises(PermissionError) as cm:
            http.client.HTTPConnection("127.0.0.1", 9, timeout=5).request("GET", "/")
        self.assertIn("the discard port is off limits", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
