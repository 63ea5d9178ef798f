"""sockrpc.socket itself, in the sandbox: data, addresses, errors, timeouts, non-blocking
mode, makefile's reference counting, UDP, IPv6, the GIL released while a call waits."""

import errno
import socket
import threading
import time
import unittest

import sockrpc
from sockrpc import _sockrpc
from support import PORTS, audit_lines

ECHO = ("127.0.0.1", PORTS.get("echo", 0))


class SandboxTest(unittest.TestCase):
    def test_no_network_without_the_broker(self):
        # The namespace has no interface up: Python's own socket cannot reach the servers.
        with sockrpc._std["socket"]() as s:
            self.assertNotEqual(s.connect_ex(ECHO), 0)


class StreamTest(unittest.TestCase):
    def test_echo_and_addresses(self):
        with sockrpc.socket() as s:
            self.assertEqual((s.family, s.type, s.proto),
                             (socket.AF_INET, socket.SOCK_STREAM, 0))
            s.connect(ECHO)
            self.assertEqual(s.getpeername(), ECHO)
            self.assertEqual(s.getsockname()[0], "127.0.0.1")
            s.sendall(b"x" * 100000)
            got = b""
            while len(got) < 100000:
                got += s.recv(65536)
            self.assertEqual(got, b"x" * 100000)
            buf = bytearray(10)
            s.send(b"abc")
            self.assertEqual(s.recv_into(buf), 3)
            self.assertEqual(bytes(buf[:3]), b"abc")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(10), b"")
        self.assertRaises(OSError, s.send, b"after close")

    def test_refused_is_connection_refused_error(self):
        with sockrpc.socket() as s:
            with self.assertRaises(ConnectionRefusedError) as cm:
                s.connect(("127.0.0.1", 1))
            self.assertEqual(cm.exception.errno, errno.ECONNREFUSED)
        with sockrpc.socket() as s:
            self.assertEqual(s.connect_ex(("127.0.0.1", 1)), errno.ECONNREFUSED)

    def test_denied_connect_names_the_rule_and_is_audited(self):
        with sockrpc.socket() as s:
            with self.assertRaises(PermissionError) as cm:
                s.connect(("127.0.0.1", 9))
        self.assertIn("policy:1", str(cm.exception))
        self.assertIn("the discard port is off limits", str(cm.exception))
        sid = sockrpc.session_id()
        lines = audit_lines(lambda e: e.get("op") == "connect" and e.get("port") == 9 and
                            e.get("session") == sid and e.get("decision") == "deny")
        self.assertTrue(lines, "the daemon did not audit the denied connect")
        self.assertTrue(lines[0]["rule"].endswith("policy:1"))
        # The session goes on.
        with sockrpc.socket() as s:
            s.connect(ECHO)

    def test_timeout(self):
        with sockrpc.socket() as s:
            s.settimeout(0.3)
            self.assertEqual(s.gettimeout(), 0.3)
            s.connect(ECHO)
            t0 = time.monotonic()
            with self.assertRaises(socket.timeout):
                s.recv(10)
            self.assertGreaterEqual(time.monotonic() - t0, 0.25)
            self.assertLess(time.monotonic() - t0, 2)
            s.settimeout(None)
            self.assertIsNone(s.gettimeout())
            s.sendall(b"still usable")
            self.assertEqual(s.recv(100), b"still usable")

    def test_default_timeout(self):
        socket.setdefaulttimeout(0.2)
        try:
            s = sockrpc.socket()
        finally:
            socket.setdefaulttimeout(None)
        with s:
            self.assertEqual(s.gettimeout(), 0.2)
            s.connect(ECHO)
            self.assertRaises(TimeoutError, s.recv, 1)

    def test_non_blocking(self):
        with sockrpc.socket() as s:
            s.connect(ECHO)
            s.setblocking(False)
            self.assertFalse(s.getblocking())
            self.assertEqual(s.gettimeout(), 0.0)
            with self.assertRaises(BlockingIOError):
                s.recv(10)
            s.send(b"now")
            deadline = time.monotonic() + 5
            while True:
                try:
                    self.assertEqual(s.recv(10), b"now")
                    break
                except BlockingIOError:
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.01)
        with sockrpc.create_server(("127.0.0.1", 0)) as srv:
            srv.setblocking(False)
            self.assertRaises(BlockingIOError, srv.accept)

    def test_makefile_keeps_the_socket_open(self):
        s = sockrpc.socket()
        s.connect(ECHO)
        f = s.makefile("rwb")
        s.close()  # as socket.socket: the file still uses the connection
        f.write(b"line one\n")
        f.flush()
        self.assertEqual(f.readline(), b"line one\n")
        text = s.makefile("rw", encoding="ascii")
        text.write("line two\n")
        text.flush()
        self.assertEqual(text.readline(), "line two\n")
        text.close()
        self.assertFalse(s._handle.state()[4], "closed while a file was open")
        f.close()
        self.assertTrue(s._handle.state()[4], "not closed with its last file")

    def test_server_accepts_through_the_broker(self):
        with sockrpc.create_server(("127.0.0.1", 0)) as srv:
            host, port = srv.getsockname()
            self.assertNotEqual(port, 0)
            with sockrpc.create_connection((host, port), timeout=5) as c:
                conn, addr = srv.accept()
                with conn:
                    self.assertEqual(addr, c.getsockname())
                    conn.sendall(b"hello")
                    self.assertEqual(c.recv(5), b"hello")

    def test_gil_is_released_while_a_call_waits(self):
        with sockrpc.socket() as idle, sockrpc.socket() as busy:
            idle.connect(ECHO)
            busy.connect(ECHO)
            idle.settimeout(3)
            waiter = threading.Thread(target=lambda: self.assertRaises(TimeoutError,
                                                                       idle.recv, 1))
            waiter.start()
            time.sleep(0.1)
            t0 = time.monotonic()
            for _ in range(20):
                busy.sendall(b"ping")
                self.assertEqual(busy.recv(4), b"ping")
            self.assertLess(time.monotonic() - t0, 1.5, "the waiting recv held the GIL")
            self.assertTrue(waiter.is_alive())
            waiter.join()

    def test_close_from_another_thread_unblocks_recv(self):
        s = sockrpc.socket()
        s.connect(ECHO)
        s.settimeout(10)  # a recv that held the GIL would end here, not hang the suite
        errors = []

        def wait():
            try:
                s.recv(10)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.1)
        s.close()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors[0].errno, errno.EBADF)


class OptionTest(unittest.TestCase):
    def test_options_of_every_level(self):
        with sockrpc.socket() as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.assertEqual(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 42)
            self.assertEqual(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE), 42)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
            self.assertEqual(s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS), 0x10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
            self.assertEqual(s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), 1)
            with self.assertRaises(OSError) as cm:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            self.assertEqual(cm.exception.errno, errno.ENOPROTOOPT)
            with self.assertRaises(PermissionError) as cm:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 5)
            self.assertIn("setting IP_TTL denied by policy", str(cm.exception))
            self.assertIn("policy:2", str(cm.exception))
            self.assertTrue(audit_lines(lambda e: e.get("op") == "option" and
                                        e.get("option_name") == "IP_TTL" and
                                        e.get("decision") == "deny"))
        with sockrpc.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            # A join reaches the daemon as ip_mreq and needs a rule naming it (none here).
            mreq = socket.inet_aton("239.1.2.3") + socket.inet_aton("127.0.0.1")
            with self.assertRaises(PermissionError) as cm:
                u.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            self.assertIn("IP_ADD_MEMBERSHIP 9151314451121635843", str(cm.exception))
            with self.assertRaises(OSError) as cm:
                u.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq + b"\x01\0\0\0")
            self.assertEqual(cm.exception.errno, errno.EOPNOTSUPP)
        with sockrpc.socket(socket.AF_INET6) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.assertEqual(s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), 1)


class DatagramAndIPv6Test(unittest.TestCase):
    def test_udp_echo(self):
        with sockrpc.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            server = ("127.0.0.1", PORTS["udp"])
            self.assertEqual(u.sendto(b"datagram", server), 8)
            data, addr = u.recvfrom(100)
            self.assertEqual((data, addr), (b"DATAGRAM", server))
            u.sendto(b"flags", 0, server)
            buf = bytearray(64)
            n, addr = u.recvfrom_into(buf)
            self.assertEqual(bytes(buf[:n]), b"FLAGS")

    def test_ipv6_loopback(self):
        with sockrpc.socket(socket.AF_INET6) as s:
            s.connect(("::1", PORTS["echo6"]))
            self.assertEqual(s.getpeername(), ("::1", PORTS["echo6"], 0, 0))
            self.assertEqual(s.getsockname()[0], "::1")
            s.sendall(b"six")
            self.assertEqual(s.recv(3), b"six")
        with sockrpc.create_connection(("::1", PORTS["echo6"])) as s:
            self.assertEqual(s.family, socket.AF_INET6)


class NamesTest(unittest.TestCase):
    def test_getaddrinfo(self):
        infos = sockrpc.getaddrinfo("localhost", "http", socket.AF_INET, socket.SOCK_STREAM)
        self.assertIn((socket.AF_INET, socket.SOCK_STREAM, 0, "", ("127.0.0.1", 80)),
                      [(f, t, 0, c, a) for f, t, _, c, a in infos])
        self.assertEqual(sockrpc.gethostbyname("localhost"), "127.0.0.1")
        self.assertEqual(sockrpc.getaddrinfo("::1", 5, socket.AF_INET6)[0][4], ("::1", 5, 0, 0))
        with self.assertRaises(socket.gaierror):
            sockrpc.getaddrinfo("localhost", "no-such-service")
        with self.assertRaises(socket.gaierror):
            sockrpc.getaddrinfo("localhost", 80, flags=socket.AI_NUMERICHOST)
        sid = sockrpc.session_id()
        self.assertTrue(audit_lines(lambda e: e.get("op") == "resolve" and
                                    e.get("session") == sid),
                        "the name was not resolved by the daemon")


if __name__ == "__main__":
    unittest.main()
