"""TLS over a brokered socket: ssl.SSLContext.wrap_bio (MemoryBIO) behind the part of
ssl.SSLSocket's interface that http.client, urllib, smtplib and ftplib use. install()
makes SSLContext.wrap_socket return it for a sockrpc.socket; a real socket (one handed
back by the daemon) is wrapped by ssl itself as before."""

import ssl as _ssl

from . import socket as _brokered

_RECV_CHUNK = 65536
_orig_wrap_socket = _ssl.SSLContext.wrap_socket


class TLSSocket:
    """A TLS client or server session over a sockrpc.socket, which it owns."""

    def __init__(self, sock, context, server_side=False, do_handshake_on_connect=True,
                 suppress_ragged_eofs=True, server_hostname=None, session=None):
        if server_side and server_hostname:
            raise ValueError("server_hostname can only be specified in client mode")
        if context.check_hostname and not server_side and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        self._sock = sock
        self.context = context
        self.server_side = server_side
        self.server_hostname = server_hostname
        self.suppress_ragged_eofs = suppress_ragged_eofs
        self._incoming = _ssl.MemoryBIO()
        self._outgoing = _ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(self._incoming, self._outgoing, server_side,
                                        server_hostname, session=session)
        self._io_refs = 0
        self._closed = False
        if do_handshake_on_connect:
            try:
                connected = sock.getpeername() is not None
            except OSError:
                connected = False
            if connected:
                self.do_handshake()

    # --- the engine: run an SSLObject call, moving bytes between the BIOs and the socket
    def _flush(self):
        data = self._outgoing.read()
        if data:
            self._sock.sendall(data)

    def _run(self, op, *args):
        while True:
            try:
                result = op(*args)
            except _ssl.SSLWantReadError:
                self._flush()
                data = self._sock.recv(_RECV_CHUNK)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            except _ssl.SSLWantWriteError:
                self._flush()
                continue
            self._flush()
            return result

    def do_handshake(self, block=False):
        self._run(self._sslobj.do_handshake)

    def read(self, len=1024, buffer=None):
        try:
            if buffer is not None:
                return self._run(self._sslobj.read, len, buffer)
            return self._run(self._sslobj.read, len)
        except _ssl.SSLError as e:
            if isinstance(e, _ssl.SSLZeroReturnError) or (
                    e.errno == _ssl.SSL_ERROR_EOF and self.suppress_ragged_eofs):
                return 0 if buffer is not None else b""
            raise

    def write(self, data):
        return self._run(self._sslobj.write, data)

    # --- socket methods
    def recv(self, buflen=1024, flags=0):
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv() on %s" %
                             type(self).__name__)
        return self.read(buflen)

    def recv_into(self, buffer, nbytes=None, flags=0):
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv_into()")
        if not nbytes:
            nbytes = memoryview(buffer).nbytes
        return self.read(nbytes, buffer)

    def send(self, data, flags=0):
        if flags:
            raise ValueError("non-zero flags not allowed in calls to send()")
        return self.write(data)

    def sendall(self, data, flags=0):
        view = memoryview(data).cast("B")
        sent = 0
        while sent < len(view):
            sent += self.send(view[sent:])

    def pending(self):
        return self._sslobj.pending()

    def unwrap(self):
        """Sends close_notify and returns the brokered socket underneath."""
        self._run(self._sslobj.unwrap)
        sock, self._sock = self._sock, None
        return sock

    def getpeercert(self, binary_form=False):
        return self._sslobj.getpeercert(binary_form)

    def cipher(self):
        return self._sslobj.cipher()

    def shared_ciphers(self):
        return self._sslobj.shared_ciphers()

    def version(self):
        return self._sslobj.version()

    def selected_alpn_protocol(self):
        return self._sslobj.selected_alpn_protocol()

    def compression(self):
        return self._sslobj.compression()

    def get_channel_binding(self, cb_type="tls-unique"):
        return self._sslobj.get_channel_binding(cb_type)

    @property
    def session(self):
        return self._sslobj.session

    @property
    def session_reused(self):
        return self._sslobj.session_reused

    def __getattr__(self, name):
        # gettimeout, settimeout, setsockopt, getsockname, getpeername, family, fileno...
        if name.startswith("__") or self.__dict__.get("_sock") is None:
            raise AttributeError(name)
        return getattr(self._sock, name)

    def makefile(self, *args, **kw):
        return _brokered.makefile(self, *args, **kw)

    def _decref_socketios(self):
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def close(self):
        self._closed = True
        if self._io_refs <= 0 and self._sock is not None:
            self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def __repr__(self):
        return "<sockrpc TLSSocket over %r>" % (self._sock,)


def _wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                 suppress_ragged_eofs=True, server_hostname=None, session=None):
    if isinstance(sock, _brokered):
        return TLSSocket(sock, self, server_side, do_handshake_on_connect,
                         suppress_ragged_eofs, server_hostname, session)
    return _orig_wrap_socket(self, sock, server_side, do_handshake_on_connect,
                             suppress_ragged_eofs, server_hostname, session)


def install():
    _ssl.SSLContext.wrap_socket = _wrap_socket


def uninstall():
    _ssl.SSLContext.wrap_socket = _orig_wrap_socket
