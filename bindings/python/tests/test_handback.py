"""Handback (issue 16): where a rule says `handback`, create_connection returns a real
socket.socket made from the descriptor the daemon hands back, so selectors, asyncio and
ssl.SSLContext.wrap_socket work on it unchanged; elsewhere the socket stays brokered."""

import asyncio
import selectors
import socket
import unittest

import sockrpc
from sockrpc import _sockrpc
from support import PORTS, audit_lines

REAL = sockrpc._std["socket"]


@unittest.skipUnless(hasattr(_sockrpc.Handle, "take_fd"), "libsockrpc without handback")
class HandbackTest(unittest.TestCase):
    def setUp(self):
        sockrpc.install()

    def tearDown(self):
        sockrpc.uninstall()

    def test_create_connection_hands_back_a_real_socket(self):
        with socket.create_connection(("127.0.0.1", PORTS["echo"]), timeout=5) as s:
            self.assertIs(type(s), REAL)
            self.assertGreaterEqual(s.fileno(), 0)
            self.assertEqual(s.gettimeout(), 5)
            self.assertEqual(s.getpeername(), ("127.0.0.1", PORTS["echo"]))
            with selectors.DefaultSelector() as sel:
                sel.register(s, selectors.EVENT_READ)
                s.sendall(b"selected")
                self.assertTrue(sel.select(5))
                self.assertEqual(s.recv(100), b"selected")
        sid = sockrpc.session_id()
        self.assertTrue(audit_lines(lambda e: e.get("event") == "handback" and
                                    e.get("session") == sid and
                                    e.get("port") == PORTS["echo"]))

    def test_asyncio_streams_on_a_handed_back_socket(self):
        async def talk():
            sock = socket.create_connection(("127.0.0.1", PORTS["echo"]))
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(b"asyncio\n")
            line = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            await writer.wait_closed()
            return line
        self.assertEqual(asyncio.run(talk()), b"asyncio\n")

    def test_no_handback_rule_keeps_it_brokered(self):
        with socket.create_connection(("127.0.0.1", PORTS["http"]), timeout=5) as s:
            self.assertIsInstance(s, sockrpc.socket)
            s.sendall(b"GET /page HTTP/1.0\r\n\r\n")
            self.assertIn(b" 200 ", s.recv(100))

    def test_install_without_handback(self):
        sockrpc.install(handback=False)
        with socket.create_connection(("127.0.0.1", PORTS["echo"]), timeout=5) as s:
            self.assertIsInstance(s, sockrpc.socket)


if __name__ == "__main__":
    unittest.main()
