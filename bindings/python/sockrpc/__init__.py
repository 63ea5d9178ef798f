"""sockrpc - Python's socket interface over sockrpcd, the socket broker.

A process with no network of its own (a network namespace, a container that sees only the
daemon's Unix socket) gets sockets from the daemon: ``sockrpc.socket`` has the interface of
``socket.socket``; ``sockrpc.install()`` puts it and the name resolution functions into the
``socket`` module, so that ``http.client``, ``urllib.request``, ``smtplib``, ``ftplib``,
``xmlrpc.client`` and ``socketserver`` use the broker unchanged. The daemon is found at
``$SOCKRPC_SOCKET`` (else libsockrpc's default path), or at ``set_socket_path(path)``.
"""

import errno as _errno
import io as _io
import math as _math
import os as _os
import socket as _socket

from . import _sockrpc

__all__ = [
    "socket", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
    "getfqdn", "create_connection", "create_server", "install", "uninstall",
    "set_socket_path", "session_id",
]

# The socket module as it was before install(): constants, exceptions and the real classes.
_std = {name: getattr(_socket, name) for name in (
    "socket", "SocketType", "create_connection", "create_server", "getaddrinfo",
    "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getfqdn")}
_GLOBAL_DEFAULT_TIMEOUT = _socket._GLOBAL_DEFAULT_TIMEOUT
_TYPE_FLAGS = getattr(_socket, "SOCK_NONBLOCK", 0) | getattr(_socket, "SOCK_CLOEXEC", 0)

if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_sockrpc._after_fork_child)


def set_socket_path(path):
    """Use the daemon at path (None: $SOCKRPC_SOCKET or the default) for the session not
    yet opened; the session opens at the first socket or resolution."""
    _sockrpc.set_path(None if path is None else _os.fspath(path))


def session_id():
    """The id the daemon gave this process's session (opens it if needed)."""
    return _sockrpc.session_id()


def _ms(seconds):
    return max(1, _math.ceil(seconds * 1000))


def _host_port(family, address, binding=False):
    """A Python address as (host, port) for the library."""
    if family == _socket.AF_UNIX:
        return _os.fsdecode(address), 0
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError("%s(): AF_INET%s address must be tuple, not %s" % (
            "bind" if binding else "connect", "6" if family == _socket.AF_INET6 else "",
            type(address).__name__))
    host, port = address[0], address[1]
    if not isinstance(port, int):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(port).__name__)
    if not 0 <= port <= 65535:
        raise OverflowError("port must be 0-65535.")
    if host in ("", None):
        host = "::" if family == _socket.AF_INET6 else "0.0.0.0"
    elif host == "<broadcast>":
        host = "255.255.255.255"
    return host, port


_MEMBERSHIP = (_socket.IP_ADD_MEMBERSHIP, _socket.IP_DROP_MEMBERSHIP)


def _membership(mreq):
    """A struct ip_mreq (group, interface address), or an ip_mreqn without an interface
    index, as the wire's integer: the group in the low 32 bits, the interface above."""
    if len(mreq) not in (8, 12) or (len(mreq) == 12 and mreq[8:] != bytes(4)):
        raise OSError(_errno.EOPNOTSUPP, "only ip_mreq (group, interface address) is brokered")
    value = int.from_bytes(mreq[4:8], "big") << 32 | int.from_bytes(mreq[0:4], "big")
    return value - (1 << 64) if value >= 1 << 63 else value


def _address(family, host, port):
    if family == _socket.AF_UNIX:
        return host
    if family == _socket.AF_INET6:
        return (host, port, 0, 0)
    return (host, port)


class socket:
    """socket(family=AF_INET, type=SOCK_STREAM, proto=0): a socket held by sockrpcd, with
    the interface of socket.socket. It has no descriptor of its own: fileno() is -1."""

    def __new__(cls, family=-1, type=-1, proto=-1, fileno=None, *, _handle=None):
        # A descriptor makes a real socket: once install() has patched the socket module,
        # its own functions (socketpair, fromfd, a real socket's accept) come here with one.
        if fileno is not None:
            return _std["socket"](family, type, proto, fileno)
        return super().__new__(cls)

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None, *, _handle=None):
        family = _socket.AF_INET if family == -1 else family
        type = _socket.SOCK_STREAM if type == -1 else type
        proto = 0 if proto == -1 else proto
        self._family, self._type, self._proto = family, type & ~_TYPE_FLAGS, proto
        self._handle = _handle if _handle is not None else _sockrpc.Handle(
            family, self._type, proto)
        self._io_refs = 0
        self._closed = False  # close() was called; the handle closes with the last file
        self._real_closed = False
        # What the daemon's handle holds, so settimeout() sends only what changes.
        self._h_blocking, self._h_ms = True, 0
        self._timeout = None
        if type & getattr(_socket, "SOCK_NONBLOCK", 0):
            self.settimeout(0)
        elif _socket.getdefaulttimeout() is not None:
            self.settimeout(_socket.getdefaulttimeout())

    # --- object protocol
    def __enter__(self):
        return self

    def __exit__(self, *args):
        if not self._closed:
            self.close()

    def __repr__(self):
        s = "<sockrpc.socket%s family=%s, type=%s, proto=%d" % (
            " [closed]" if self._closed else "", self.family, self.type, self._proto)
        if not self._closed:
            try:
                s += ", laddr=%s" % (self.getsockname(),)
            except OSError:
                pass
        return s + ">"

    def __getstate__(self):
        raise TypeError("cannot pickle %r object" % type(self).__name__)

    @property
    def family(self):
        return _socket.AddressFamily(self._family)

    @property
    def type(self):
        return _socket.SocketKind(self._type)

    @property
    def proto(self):
        return self._proto

    def fileno(self):
        return -1

    def _check(self):
        if self._real_closed:
            raise OSError(_errno.EBADF, "Bad file descriptor")

    # --- connections
    def connect(self, address):
        self._check()
        host, port = _host_port(self._family, address)
        timeout_ms = _ms(self._timeout) if self._timeout else 0
        self._handle.connect(host, port, timeout_ms)
        # A non-blocking handle's connect starts the connection and returns; as Python's,
        # say so unless it is already done (a later call on the handle shows the end).
        if self._timeout == 0 and not self._handle.state()[2]:
            raise BlockingIOError(_errno.EINPROGRESS, "Operation now in progress")

    def connect_ex(self, address):
        try:
            self.connect(address)
        except TimeoutError:
            return _errno.EAGAIN if self._timeout else _errno.ETIMEDOUT
        except OSError as e:
            if e.errno is None:
                raise
            return e.errno
        return 0

    def bind(self, address):
        self._check()
        host, port = _host_port(self._family, address, binding=True)
        self._handle.bind(host, port)

    def listen(self, backlog=128):
        self._check()
        self._handle.listen(min(max(backlog, 0), 65535))

    def accept(self):
        """Returns (socket, address) for the next connection."""
        self._check()
        h = self._handle.accept()
        sock = socket(self._family, self._type, self._proto, _handle=h)
        host, port = h.state()[:2]
        # As Python's: the new socket is blocking unless a default timeout is set.
        return sock, _address(self._family, host, port)

    def getsockname(self):
        self._check()
        if self._family == _socket.AF_UNIX:
            return self._handle.sockname()[0]
        host, port = self._handle.sockname()
        return _address(self._family, host, port)

    def getpeername(self):
        self._check()
        host, port, connected = self._handle.state()[:3]
        if not connected:
            raise OSError(_errno.ENOTCONN, "Transport endpoint is not connected")
        return _address(self._family, host, port)

    # --- data
    def send(self, data, flags=0):
        self._check()
        return self._handle.send(data, flags)

    def sendall(self, data, flags=0):
        self._check()
        view = memoryview(data).cast("B")
        sent = 0
        while sent < len(view):
            sent += self._handle.send(view[sent:], flags)

    def sendto(self, data, flags_or_address, address=None):
        self._check()
        if address is None:
            flags, address = 0, flags_or_address
        else:
            flags = flags_or_address
        host, port = _host_port(self._family, address)
        return self._handle.sendto(data, flags, host, port)

    def recv(self, bufsize, flags=0):
        self._check()
        return self._handle.recv(bufsize, flags)

    def recv_into(self, buffer, nbytes=0, flags=0):
        self._check()
        return self._handle.recv_into(buffer, nbytes, flags)

    def recvfrom(self, bufsize, flags=0):
        self._check()
        data, host, port = self._handle.recvfrom(bufsize, flags)
        return data, _address(self._family, host, port)

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        mv = memoryview(buffer).cast("B")
        data, address = self.recvfrom(nbytes or len(mv), flags)
        mv[:len(data)] = data
        return len(data), address

    def shutdown(self, how):
        self._check()
        self._handle.shutdown(how)

    # --- options and modes
    def setsockopt(self, level, optname, value, optlen=None):
        self._check()
        if value is None:
            raise OSError(_errno.EINVAL, "Invalid argument")
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value)
            if level == _socket.IPPROTO_IP and optname in _MEMBERSHIP:
                value = _membership(value)
            elif len(value) != 4:
                raise OSError(_errno.EOPNOTSUPP, "only integer options are brokered")
            else:
                value = int.from_bytes(value, "little", signed=True)
        self._handle.setsockopt(level, optname, int(value))

    def getsockopt(self, level, optname, buflen=None):
        self._check()
        value = self._handle.getsockopt(level, optname)
        if buflen is None:
            return value
        return value.to_bytes(4, "little", signed=True)[:buflen]

    def gettimeout(self):
        return self._timeout

    def settimeout(self, value):
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._check()
        blocking = value != 0
        ms = _ms(value) if value else 0
        if blocking != self._h_blocking:
            self._handle.setblocking(blocking)
            self._h_blocking = blocking
        if blocking and ms != self._h_ms:
            self._handle.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, ms)
            self._handle.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO, ms)
            self._h_ms = ms
        self._timeout = value

    def setblocking(self, flag):
        self.settimeout(None if flag else 0.0)

    def getblocking(self):
        return self._timeout != 0

    # --- files (as CPython's socket.py: the socket stays open while a file uses it)
    def makefile(self, mode="r", buffering=None, *, encoding=None, errors=None, newline=None):
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError("invalid mode %r (only r, w, b allowed)" % (mode,))
        writing = "w" in mode
        reading = "r" in mode or not writing
        binary = "b" in mode
        rawmode = ("r" if reading else "") + ("w" if writing else "")
        raw = _socket.SocketIO(self, rawmode)
        self._io_refs += 1
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = _io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        if reading and writing:
            buffer = _io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = _io.BufferedReader(raw, buffering)
        else:
            buffer = _io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        text = _io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode
        return text

    def _decref_socketios(self):
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def _real_close(self):
        self._real_closed = True
        self._handle.close()

    def close(self):
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def detach(self):
        raise OSError(_errno.EOPNOTSUPP, "a brokered socket has no descriptor to detach")

    def dup(self):
        raise OSError(_errno.EOPNOTSUPP, "a brokered socket cannot be duplicated")


SocketType = socket


# --- names, resolved by the daemon (nothing is looked up locally, nothing leaks)
def _literal_family(host):
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host)
            return family
        except (OSError, TypeError):
            pass
    return None


def _resolve(host, family):
    """[(family, ip)] and the canonical name for host, by the daemon unless a literal."""
    literal = _literal_family(host)
    if literal is not None:
        if family not in (0, literal):
            raise _socket.gaierror(_socket.EAI_ADDRFAMILY,
                                   "Address family for hostname not supported")
        return host, [(literal, host)]
    try:
        canonical, addresses = _sockrpc.getaddrinfo(host, None, family)
    except (PermissionError, TimeoutError):
        raise
    except OSError as e:
        raise _socket.gaierror(_socket.EAI_NONAME,
                               "Name or service not known (%s)" % e.strerror) from None
    if family:
        addresses = [a for a in addresses if a[0] == family]
    if not addresses:
        raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
    return canonical, addresses


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """As socket.getaddrinfo, resolved by the daemon."""
    if isinstance(host, bytes):
        host = host.decode("idna")
    if port is None:
        port = 0
    elif isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        if port.isdigit():
            port = int(port)
        elif flags & _socket.AI_NUMERICSERV:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
        else:
            try:  # /etc/services, read locally: no network
                port = _socket.getservbyname(port)
            except OSError:
                raise _socket.gaierror(_socket.EAI_SERVICE, "Servname not supported") from None
    if host is None:
        passive = flags & _socket.AI_PASSIVE
        addresses = []
        if family in (0, _socket.AF_INET6):
            addresses.append((_socket.AF_INET6, "::" if passive else "::1"))
        if family in (0, _socket.AF_INET):
            addresses.append((_socket.AF_INET, "0.0.0.0" if passive else "127.0.0.1"))
        canonical = ""
    else:
        if flags & _socket.AI_NUMERICHOST and _literal_family(host) is None:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
        canonical, addresses = _resolve(host, family)
    kinds = [(type, proto)] if type else [
        (_socket.SOCK_STREAM, _socket.IPPROTO_TCP), (_socket.SOCK_DGRAM, _socket.IPPROTO_UDP)]
    result = []
    for i, (af, ip) in enumerate(addresses):
        for kind, pr in kinds:
            name = canonical if (flags & _socket.AI_CANONNAME and i == 0) else ""
            result.append((_socket.AddressFamily(af), _socket.SocketKind(kind), pr or 0, name,
                           _address(af, ip, port)))
    return result


def gethostbyname(hostname):
    return _resolve(hostname, _socket.AF_INET)[1][0][1]


def gethostbyname_ex(hostname):
    canonical, addresses = _resolve(hostname, _socket.AF_INET)
    return canonical or hostname, [], [ip for _, ip in addresses]


def gethostbyaddr(ip_address):
    """No reverse lookup is brokered: the name is what the daemon's resolver gives back."""
    canonical, addresses = _resolve(ip_address, 0)
    return canonical or ip_address, [], [ip for _, ip in addresses]


def getfqdn(name=""):
    name = name.strip()
    if not name or name in ("0.0.0.0", "::"):
        name = _socket.gethostname()
    if _literal_family(name) is not None:
        return name
    try:
        canonical, _ = _resolve(name, 0)
    except OSError:
        return name
    return canonical or name


# --- connections
_handback = True
_handback_refused = set()  # destinations whose rule said no handback: not asked again


def _handed_back(sock, sa, timeout):
    """The real socket.socket for a connected brokered sock, if the policy hands it back
    (a `handback` rule), else None and sock stays brokered. The connection is the same
    one: the daemon passes its descriptor and keeps no copy."""
    take_fd = getattr(sock._handle, "take_fd", None)
    if take_fd is None or not _handback or sa in _handback_refused:
        return None
    try:
        fd = take_fd()
    except OSError as e:
        # EACCES: no handback in the rule; EOPNOTSUPP/ENOPROTOOPT: a transport or daemon
        # that cannot pass descriptors. Either way the brokered socket goes on working.
        if isinstance(e, PermissionError) or e.errno in (_errno.EOPNOTSUPP,
                                                          _errno.ENOPROTOOPT):
            _handback_refused.add(sa)
            return None
        raise
    sock._closed = sock._real_closed = True  # the handle ended with the handback
    real = _std["socket"](sock._family, sock._type, sock._proto, fileno=fd)
    real.settimeout(timeout)
    return real


def create_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *,
                      all_errors=False):
    """As socket.create_connection: a real socket.socket if the policy hands the
    connection back (so ssl, selectors and asyncio work on it unchanged), else a brokered
    sockrpc.socket."""
    host, port = address
    if timeout is _GLOBAL_DEFAULT_TIMEOUT:
        timeout = _socket.getdefaulttimeout()
    errors = []
    for af, kind, proto, _, sa in getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
        sock = None
        try:
            sock = socket(af, kind, proto)
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sa)
            return _handed_back(sock, sa, timeout) or sock
        except OSError as e:
            errors.append(e)
            if sock is not None:
                sock.close()
            if isinstance(e, PermissionError) and not all_errors:
                break
    if not errors:
        raise OSError("getaddrinfo returns an empty list")
    if all_errors:
        raise ExceptionGroup("create_connection failed", errors)
    raise errors[0] if isinstance(errors[0], PermissionError) else errors[-1]


def create_server(address, *, family=_socket.AF_INET, backlog=None, reuse_port=False,
                  dualstack_ipv6=False):
    """As socket.create_server, listening in the daemon."""
    if dualstack_ipv6:
        raise ValueError("dualstack_ipv6 is not brokered")
    sock = socket(family, _socket.SOCK_STREAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog if backlog is not None else 128)
        return sock
    except BaseException:
        sock.close()
        raise


# --- install
_patched = {
    "socket": socket, "SocketType": socket, "create_connection": create_connection,
    "create_server": create_server, "getaddrinfo": getaddrinfo, "gethostbyname":
    gethostbyname, "gethostbyname_ex": gethostbyname_ex, "gethostbyaddr": gethostbyaddr,
    "getfqdn": getfqdn,
}


def install(handback=True):
    """Puts sockrpc into the socket module (and TLS over brokered sockets into ssl), so that
    code using socket from now on goes through the daemon. handback=False never asks
    for a real descriptor, even where the policy would grant one."""
    global _handback
    from . import _tls
    _handback = handback
    _handback_refused.clear()
    for name, value in _patched.items():
        setattr(_socket, name, value)
    _tls.install()


def uninstall():
    """Puts the socket and ssl modules back as they were."""
    from . import _tls
    for name, value in _std.items():
        setattr(_socket, name, value)
    _tls.uninstall()
