#!/usr/bin/env python3
"""tls_attack.py - the TLS abuse a hostile peer can try on sockrpcd's TLS port, for
test_tls_abuse.sh. Each mode prints one line of results and exits 0 when the daemon
behaved, 1 otherwise. Frames are built here from the wire contract (docs/protocol.md):
a 16-byte header (u32 length, u16 method, u16 flags, u64 call id) and the message.

  plaintext HOST PORT              a Hello frame in clear: closed without a session
  slowloris HOST PORT N SECS       N connections sending one byte of a ClientHello a
                                   second: each must be closed within SECS
  flood HOST PORT N CERT KEY CA    N TLS opens at once (from 100 loopback addresses),
                                   each says Hello and drops without close_notify:
                                   every one must be served
  pending HOST PORT CERT KEY CA    Hello and 300 GetOption calls in one TLS record, larger
                                   than the daemon's first read: every reply must come
                                   (the bytes left inside OpenSSL must not stall)
"""
import socket
import ssl
import struct
import sys
import threading
import time

GET_OPTION = 12


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def frame(method, call_id, body):
    return struct.pack(">IHHQ", len(body), method, 0, call_id) + body


def hello(call_id=1):
    name = b"tls_attack"
    return frame(0, call_id, b"\x08\x01\x10\x00\x1a" + varint(len(name)) + name)


def get_option(call_id):
    # handle = 999 (unknown: answered with an error, the session goes on)
    return frame(GET_OPTION, call_id, b"\x08" + varint(999))


def context(cert, key, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False
    return ctx


def read_frames(s, want, deadline):
    buf = b""
    got = 0
    while got < want and time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 16:
            length = struct.unpack(">I", buf[:4])[0]
            if len(buf) < 16 + length:
                break
            buf = buf[16 + length:]
            got += 1
    return got


def plaintext(host, port):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(hello())
    start = time.monotonic()
    try:
        data = s.recv(4096)
    except (socket.timeout, TimeoutError):
        print("plaintext: the daemon kept the connection open")
        return 1
    except ConnectionResetError:
        data = b""  # reset: closed too
    # A TLS alert at most (content type 21), never a sockrpc reply.
    if data and data[0] != 21:
        print("plaintext: the daemon answered in clear: %r" % data[:32])
        return 1
    print("plaintext: closed after %.2f s (%d bytes of alert)" % (time.monotonic() - start,
                                                                 len(data)))
    return 0


def slowloris(host, port, n, secs):
    n, secs = int(n), float(secs)
    # The start of a TLS record carrying a ClientHello, one byte at a time.
    drip = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + b"\x00" * 64
    # From one address of its own (127.0.0.250 on loopback), as one slow host would.
    src = ("127.0.0.250", 0) if host.startswith("127.") else None
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection((host, int(port)), timeout=5,
                                                  source_address=src))
        except OSError:
            pass  # turned away at once: past its address's allowance
    n = len(socks)
    for s in socks:
        s.setblocking(False)
    open_since = time.monotonic()
    closed = [None] * n
    i = 0
    while time.monotonic() - open_since < secs + 2 and None in closed:
        for k, s in enumerate(socks):
            if closed[k] is not None:
                continue
            try:
                if s.recv(4096) == b"":
                    closed[k] = time.monotonic() - open_since
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed[k] = time.monotonic() - open_since
                continue
            try:
                if i < len(drip):
                    s.send(drip[i:i + 1])
            except OSError:
                closed[k] = time.monotonic() - open_since
        i += 1
        time.sleep(0.5)
    for s in socks:
        s.close()
    late = [c for c in closed if c is None or c > secs]
    print("slowloris: %d connections, closed after %.1f-%.1f s" %
          (n, min(c or 99 for c in closed), max(c or 99 for c in closed)))
    return 1 if late else 0


def flood(host, port, n, cert, key, ca):
    n = int(n)
    ctx = context(cert, key, ca)
    served = [0]
    lock = threading.Lock()
    start = threading.Event()

    def one(k):
        start.wait()
        try:
            # From 100 loopback addresses (127.0.0.2-101), as many hosts would: one
            # address past its allowance of handshakes in progress is turned away.
            src = ("127.0.0.%d" % (2 + k % 100), 0) if host.startswith("127.") else None
            raw = socket.create_connection((host, int(port)), timeout=15, source_address=src)
            s = ctx.wrap_socket(raw, server_hostname=host)
            s.sendall(hello(k + 1))
            if read_frames(s, 1, time.monotonic() + 15) == 1:
                with lock:
                    served[0] += 1
            raw.close()  # the TCP socket alone: no close_notify
        except (OSError, ssl.SSLError):
            pass

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    start.set()
    for t in threads:
        t.join(60)
    alive = sum(t.is_alive() for t in threads)
    print("flood: %d opens, %d served, %d hung, %.1f s" % (n, served[0], alive,
                                                            time.monotonic() - t0))
    return 1 if alive or served[0] < n else 0


def pending(host, port, cert, key, ca):
    ctx = context(cert, key, ca)
    raw = socket.create_connection((host, int(port)), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=host)
    calls = 300
    data = hello() + b"".join(get_option(k + 2) for k in range(calls))
    assert 4112 < len(data) < 16384, len(data)  # one record, more than the Hello read
    s.sendall(data)
    got = read_frames(s, calls + 1, time.monotonic() + 5)
    print("pending: %d of %d replies" % (got, calls + 1))
    s.close()
    return 0 if got == calls + 1 else 1


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    sys.exit({"plaintext": plaintext, "slowloris": slowloris, "flood": flood,
              "pending": pending}[mode](*args))
