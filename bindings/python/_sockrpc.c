/*
 * _sockrpc.c - the CPython extension under the `sockrpc` package: one Handle type over an
 * sr_socket and the module functions over the shared sr_client. It maps sr_error to
 * Python's exceptions and releases the GIL around every call that talks to the daemon.
 * Python's socket semantics (addresses, timeouts, makefile, TLS) live in the package's
 * Python files.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sockrpc.h"

/* One session per process, opened on first use; libsockrpc is thread-safe. */
static sr_client *client;
static pthread_mutex_t client_mu = PTHREAD_MUTEX_INITIALIZER;
static char client_path[4096];
static bool client_path_set;

/* Runs the statements with the GIL released: every call that may wait on the daemon. */
#define WITHOUT_GIL(...)                                                                           \
	do {                                                                                       \
		PyThreadState *ts_ = PyEval_SaveThread();                                          \
		__VA_ARGS__;                                                                       \
		PyEval_RestoreThread(ts_);                                                         \
	} while (0)

typedef struct {
	PyObject_HEAD sr_socket *s; /* owned; freed (and closed if open) by dealloc */
} Handle;

static PyTypeObject HandleType;

/* Raises the Python exception for err and returns NULL. */
static PyObject *
raise_sr(const sr_error *err)
{
	PyObject *exc = PyExc_OSError;
	int no;

	switch (err->code) {
	case SR_EDENIED:
		no = EACCES;
		break;
	case SR_ETIMEDOUT:
		/* As Python's socket: TimeoutError("timed out"), without an errno. */
		PyErr_Format(PyExc_TimeoutError, "timed out (%s)", err->message);
		return NULL;
	case SR_EWOULDBLOCK:
		no = EAGAIN;
		break;
	case SR_ECLOSED:
		no = EBADF;
		break;
	case SR_EUNSUPPORTED:
		no = err->sys_errno != 0 ? err->sys_errno : ENOPROTOOPT;
		break;
	case SR_ELIMIT:
		no = ENOBUFS;
		break;
	case SR_EPROTO:
		no = EPROTO;
		break;
	case SR_EDAEMON:
		no = err->sys_errno != 0 ? err->sys_errno : ECONNABORTED;
		break;
	case SR_ESTATE:
		no = err->sys_errno != 0 ? err->sys_errno : EINVAL;
		break;
	case SR_EBADHANDLE:
		no = EBADF;
		break;
	default:
		no = err->sys_errno != 0 ? err->sys_errno : EINVAL;
		break;
	}
	/* OSError(errno, text) picks the subclass: ConnectionRefusedError, PermissionError... */
	PyObject *v = Py_BuildValue("(is)", no, err->message);
	if (v != NULL) {
		PyErr_SetObject(exc, v);
		Py_DECREF(v);
	}
	return NULL;
}

/* Called without the GIL. */
static sr_client *
shared_client(sr_error *err)
{
	sr_client *c;

	pthread_mutex_lock(&client_mu);
	if (client == NULL)
		client = sr_client_open(client_path_set ? client_path : NULL, err);
	c = client;
	pthread_mutex_unlock(&client_mu);
	return c;
}

static PyObject *
handle_wrap(sr_socket *s)
{
	Handle *h = PyObject_New(Handle, &HandleType);

	if (h == NULL) {
		WITHOUT_GIL(sr_socket_free(s));
		return NULL;
	}
	h->s = s;
	return (PyObject *)h;
}

/* Handle(family, type, proto) */
static PyObject *
handle_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	int family, stype, proto = 0;
	sr_socket *s = NULL;
	sr_client *c;
	sr_error err;

	if (!PyArg_ParseTuple(args, "ii|i", &family, &stype, &proto))
		return NULL;
	WITHOUT_GIL(c = shared_client(&err),
	            s = c != NULL ? sr_socket_new(c, family, stype, proto, &err) : NULL);
	if (s == NULL)
		return raise_sr(&err);
	return handle_wrap(s);
}

static void
handle_dealloc(Handle *h)
{
	sr_socket *s = h->s;

	h->s = NULL;
	if (s != NULL) {
		WITHOUT_GIL(sr_socket_free(s));
	}
	PyObject_Free(h);
}

/* Runs CALL without the GIL; a result of -1 raises. */
#define CALL_OR_RAISE(call)                                                                        \
	do {                                                                                       \
		int rc_;                                                                           \
		WITHOUT_GIL(rc_ = (call));                                                         \
		if (rc_ == -1)                                                                     \
			return raise_sr(&err);                                                     \
	} while (0)

static PyObject *
handle_connect(Handle *h, PyObject *args)
{
	const char *host;
	int port, timeout_ms;
	sr_error err;

	if (!PyArg_ParseTuple(args, "sii", &host, &port, &timeout_ms))
		return NULL;
	CALL_OR_RAISE(sr_connect(h->s, host, port, timeout_ms, &err));
	Py_RETURN_NONE;
}

static PyObject *
handle_bind(Handle *h, PyObject *args)
{
	const char *host;
	int port;
	sr_error err;

	if (!PyArg_ParseTuple(args, "si", &host, &port))
		return NULL;
	CALL_OR_RAISE(sr_bind(h->s, port, host, &err));
	Py_RETURN_NONE;
}

static PyObject *
handle_listen(Handle *h, PyObject *args)
{
	int backlog;
	sr_error err;

	if (!PyArg_ParseTuple(args, "i", &backlog))
		return NULL;
	CALL_OR_RAISE(sr_listen(h->s, backlog, &err));
	Py_RETURN_NONE;
}

static PyObject *
handle_accept(Handle *h, PyObject *unused)
{
	sr_socket *a;
	sr_error err;

	WITHOUT_GIL(a = sr_accept(h->s, &err));
	if (a == NULL)
		return raise_sr(&err);
	return handle_wrap(a);
}

static PyObject *
handle_send(Handle *h, PyObject *args)
{
	Py_buffer buf;
	int flags = 0;
	long n;
	sr_error err;

	if (!PyArg_ParseTuple(args, "y*|i", &buf, &flags))
		return NULL;
	WITHOUT_GIL(n = sr_send(h->s, buf.buf, buf.len, flags, &err));
	PyBuffer_Release(&buf);
	if (n == -1)
		return raise_sr(&err);
	return PyLong_FromLong(n);
}

static PyObject *
handle_sendto(Handle *h, PyObject *args)
{
	Py_buffer buf;
	const char *host;
	int port, flags;
	long n;
	sr_error err;

	if (!PyArg_ParseTuple(args, "y*isi", &buf, &flags, &host, &port))
		return NULL;
	WITHOUT_GIL(n = sr_send_to(h->s, host, port, buf.buf, buf.len, flags, &err));
	PyBuffer_Release(&buf);
	if (n == -1)
		return raise_sr(&err);
	return PyLong_FromLong(n);
}

static PyObject *
handle_recv(Handle *h, PyObject *args)
{
	Py_ssize_t len;
	int flags = 0, rc;
	char *out = NULL;
	size_t out_len = 0;
	PyObject *r;
	sr_error err;

	if (!PyArg_ParseTuple(args, "n|i", &len, &flags))
		return NULL;
	if (len < 0) {
		PyErr_SetString(PyExc_ValueError, "negative buffersize in recv");
		return NULL;
	}
	if (len == 0)
		return PyBytes_FromStringAndSize(NULL, 0);
	WITHOUT_GIL(rc = sr_receive(h->s, len, flags, &out, &out_len, &err));
	if (rc == -1)
		return raise_sr(&err);
	r = PyBytes_FromStringAndSize(out, out_len);
	free(out);
	return r;
}

/* recv_into(buffer, nbytes, flags) -> count */
static PyObject *
handle_recv_into(Handle *h, PyObject *args)
{
	Py_buffer buf;
	Py_ssize_t len = 0;
	int flags = 0, rc;
	char *out = NULL;
	size_t out_len = 0;
	sr_error err;

	if (!PyArg_ParseTuple(args, "w*|ni", &buf, &len, &flags))
		return NULL;
	if (len < 0 || len > buf.len) {
		PyBuffer_Release(&buf);
		PyErr_SetString(PyExc_ValueError, "buffer too small for requested bytes");
		return NULL;
	}
	if (len == 0)
		len = buf.len;
	if (len == 0) {
		PyBuffer_Release(&buf);
		return PyLong_FromLong(0);
	}
	WITHOUT_GIL(rc = sr_receive(h->s, len, flags, &out, &out_len, &err));
	if (rc == 0)
		memcpy(buf.buf, out, out_len);
	PyBuffer_Release(&buf);
	free(out);
	if (rc == -1)
		return raise_sr(&err);
	return PyLong_FromSize_t(out_len);
}

/* recvfrom(nbytes, flags) -> (data, host, port) */
static PyObject *
handle_recvfrom(Handle *h, PyObject *args)
{
	Py_ssize_t len;
	int flags = 0, rc, port = 0;
	char *out = NULL, host[64] = "";
	size_t out_len = 0;
	PyObject *r;
	sr_error err;

	if (!PyArg_ParseTuple(args, "n|i", &len, &flags))
		return NULL;
	if (len < 0) {
		PyErr_SetString(PyExc_ValueError, "negative buffersize in recvfrom");
		return NULL;
	}
	WITHOUT_GIL(rc = sr_receive_from(h->s, len, flags, &out, &out_len, host, &port, &err));
	if (rc == -1)
		return raise_sr(&err);
	r = Py_BuildValue("(y#si)", out != NULL ? out : "", (Py_ssize_t)out_len, host, port);
	free(out);
	return r;
}

static PyObject *
handle_shutdown(Handle *h, PyObject *args)
{
	int how;
	sr_error err;

	if (!PyArg_ParseTuple(args, "i", &how))
		return NULL;
	CALL_OR_RAISE(sr_shutdown(h->s, how, &err));
	Py_RETURN_NONE;
}

static PyObject *
handle_close(Handle *h, PyObject *unused)
{
	sr_error err;

	CALL_OR_RAISE(sr_close(h->s, &err));
	Py_RETURN_NONE;
}

static PyObject *
handle_setsockopt(Handle *h, PyObject *args)
{
	int level, option;
	long value;
	sr_error err;

	if (!PyArg_ParseTuple(args, "iil", &level, &option, &value))
		return NULL;
	CALL_OR_RAISE(sr_set_option_level(h->s, level, option, value, &err));
	Py_RETURN_NONE;
}

static PyObject *
handle_getsockopt(Handle *h, PyObject *args)
{
	int level, option;
	long value = 0;
	sr_error err;

	if (!PyArg_ParseTuple(args, "ii", &level, &option))
		return NULL;
	CALL_OR_RAISE(sr_get_option_level(h->s, level, option, &value, &err));
	return PyLong_FromLong(value);
}

static PyObject *
handle_setblocking(Handle *h, PyObject *args)
{
	int blocking;
	sr_error err;

	if (!PyArg_ParseTuple(args, "p", &blocking))
		return NULL;
	CALL_OR_RAISE(sr_set_blocking(h->s, blocking, &err));
	Py_RETURN_NONE;
}

/* sockname() -> (address, port) */
static PyObject *
handle_sockname(Handle *h, PyObject *unused)
{
	sr_sockinfo info;
	sr_error err;

	CALL_OR_RAISE(sr_info(h->s, &info, &err));
	return Py_BuildValue("(si)", info.address, info.port);
}

/* state() -> (host, port, is_connected, is_listening, is_closed, is_bound) */
static PyObject *
handle_state(Handle *h, PyObject *unused)
{
	const sr_state *st = sr_socket_state(h->s);

	return Py_BuildValue("(siOOOO)", st->host, st->port, st->is_connected ? Py_True : Py_False,
	                     st->is_listening ? Py_True : Py_False,
	                     st->is_closed ? Py_True : Py_False, st->is_bound ? Py_True : Py_False);
}

#ifdef SOCKRPC_HAVE_HANDBACK
/* take_fd() -> a descriptor of the connected socket, which the handle gives up. */
static PyObject *
handle_take_fd(Handle *h, PyObject *unused)
{
	int fd;
	sr_error err;

	WITHOUT_GIL(fd = sr_socket_take_fd(h->s, &err));
	if (fd == -1)
		return raise_sr(&err);
	return PyLong_FromLong(fd);
}
#endif

static PyMethodDef handle_methods[] = {
    {"connect", (PyCFunction)handle_connect, METH_VARARGS, "connect(host, port, timeout_ms)"},
    {"bind", (PyCFunction)handle_bind, METH_VARARGS, "bind(host, port)"},
    {"listen", (PyCFunction)handle_listen, METH_VARARGS, "listen(backlog)"},
    {"accept", (PyCFunction)handle_accept, METH_NOARGS, "accept() -> Handle"},
    {"send", (PyCFunction)handle_send, METH_VARARGS, "send(data, flags) -> count"},
    {"sendto", (PyCFunction)handle_sendto, METH_VARARGS, "sendto(data, flags, host, port)"},
    {"recv", (PyCFunction)handle_recv, METH_VARARGS, "recv(n, flags) -> bytes"},
    {"recv_into", (PyCFunction)handle_recv_into, METH_VARARGS, "recv_into(buf, n, flags)"},
    {"recvfrom", (PyCFunction)handle_recvfrom, METH_VARARGS, "recvfrom(n, flags)"},
    {"shutdown", (PyCFunction)handle_shutdown, METH_VARARGS, "shutdown(how)"},
    {"close", (PyCFunction)handle_close, METH_NOARGS, "close()"},
    {"setsockopt", (PyCFunction)handle_setsockopt, METH_VARARGS, "setsockopt(lvl, opt, v)"},
    {"getsockopt", (PyCFunction)handle_getsockopt, METH_VARARGS, "getsockopt(lvl, opt)"},
    {"setblocking", (PyCFunction)handle_setblocking, METH_VARARGS, "setblocking(flag)"},
    {"sockname", (PyCFunction)handle_sockname, METH_NOARGS, "sockname() -> (addr, port)"},
    {"state", (PyCFunction)handle_state, METH_NOARGS, "the state of the last reply"},
#ifdef SOCKRPC_HAVE_HANDBACK
    {"take_fd", (PyCFunction)handle_take_fd, METH_NOARGS, "take_fd() -> fd"},
#endif
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_sockrpc.Handle",
    .tp_basicsize = sizeof(Handle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a socket handle held by sockrpcd",
    .tp_new = handle_new,
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_methods = handle_methods,
};

/* getaddrinfo(host, service, family) -> (canonical, [(family, ip), ...]) */
static PyObject *
mod_getaddrinfo(PyObject *self, PyObject *args)
{
	const char *host, *service = NULL;
	int family, rc = -1;
	sr_addrinfo *ai = NULL;
	sr_client *c;
	PyObject *list, *r;
	sr_error err;

	if (!PyArg_ParseTuple(args, "szi", &host, &service, &family))
		return NULL;
	WITHOUT_GIL(c = shared_client(&err),
	            rc = c != NULL ? sr_get_address_info(c, host, service, family, &ai, &err) : -1);
	if (rc == -1)
		return raise_sr(&err);
	if ((list = PyList_New(0)) == NULL)
		goto fail;
	for (size_t i = 0; i < ai->count; i++) {
		PyObject *t = Py_BuildValue("(is)", ai->addresses[i].family, ai->addresses[i].ip);
		if (t == NULL || PyList_Append(list, t) == -1) {
			Py_XDECREF(t);
			Py_DECREF(list);
			goto fail;
		}
		Py_DECREF(t);
	}
	r = Py_BuildValue("(sN)", ai->canonical_name, list);
	sr_addrinfo_free(ai);
	return r;
fail:
	sr_addrinfo_free(ai);
	return NULL;
}

/* set_path(path): the daemon's socket for the session not yet opened (None: the default). */
static PyObject *
mod_set_path(PyObject *self, PyObject *args)
{
	const char *path = NULL;

	if (!PyArg_ParseTuple(args, "z", &path))
		return NULL;
	if (path != NULL && strlen(path) >= sizeof(client_path)) {
		PyErr_SetString(PyExc_ValueError, "path too long");
		return NULL;
	}
	pthread_mutex_lock(&client_mu);
	client_path_set = path != NULL;
	if (path != NULL)
		strcpy(client_path, path);
	pthread_mutex_unlock(&client_mu);
	Py_RETURN_NONE;
}

/*
 * A forked child must not share the parent's session (replies would go to whichever
 * process reads first): it opens its own on first use. The parent's client is left
 * allocated, as its threads are gone in the child.
 */
static PyObject *
mod_after_fork_child(PyObject *self, PyObject *unused)
{
	pthread_mutex_init(&client_mu, NULL);
	client = NULL;
	Py_RETURN_NONE;
}

static PyObject *
mod_session_id(PyObject *self, PyObject *unused)
{
	sr_client *c;
	sr_error err;

	WITHOUT_GIL(c = shared_client(&err));
	if (c == NULL)
		return raise_sr(&err);
	return PyLong_FromUnsignedLongLong(sr_client_session_id(c));
}

static PyMethodDef module_methods[] = {
    {"getaddrinfo", mod_getaddrinfo, METH_VARARGS, "getaddrinfo(host, service, family)"},
    {"set_path", mod_set_path, METH_VARARGS, "set_path(path or None)"},
    {"session_id", mod_session_id, METH_NOARGS, "the session id the daemon gave"},
    {"_after_fork_child", mod_after_fork_child, METH_NOARGS, "forget the parent's session"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, .m_name = "_sockrpc",        .m_doc = "libsockrpc for Python",
    .m_size = -1,          .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__sockrpc(void)
{
	PyObject *m;

	if (PyType_Ready(&HandleType) < 0)
		return NULL;
	if ((m = PyModule_Create(&module_def)) == NULL)
		return NULL;
	Py_INCREF(&HandleType);
	if (PyModule_AddObject(m, "Handle", (PyObject *)&HandleType) < 0) {
		Py_DECREF(&HandleType);
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
