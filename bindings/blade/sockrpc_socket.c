/*
 * sockrpc_socket.c - a Blade native module that replaces Blade's `_socket` with
 * sockets brokered by sockrpcd. Installed as dist/sockrpc_socket.so beside a blade
 * executable, it registers under the built-in's name after it, so every program that
 * interpreter runs (libs/socket.b, libs/http...) uses the broker unchanged.
 *
 * Each function takes the arguments of Blade's own, checks them the same way and
 * returns the same shapes; failures return -1 and leave their text for
 * `_socket.error(-1)`, as errno does for Blade's. The constants are Blade's own fields,
 * plus `SOCKRPC = true`. The data functions are in io.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blade_module.h"

CREATE_MODULE_LOADER(socket); /* Blade's built-in, exported by libblade.so */

static b_native_fn builtins[BL_FN_COUNT];

b_native_fn
bl_builtin(enum bl_fn fn)
{
	return builtins[fn];
}

bool
bl_call_builtin(enum bl_fn fn, b_vm *vm, int arg_count, b_value *args)
{
	bool ok;

	errno = 0;
	ok = builtins[fn](vm, arg_count, args);
	if (ok && IS_NUMBER(args[-1]) && AS_NUMBER(args[-1]) == -1)
		bl_err_errno(errno);
	return ok;
}

BL_METHOD(error)
{
	const char *message;

	ENFORCE_ARG_COUNT(error, 1);
	ENFORCE_ARG_TYPE(error, 0, IS_NUMBER);
	if (AS_NUMBER(args[0]) == -1 && (message = bl_err_message()) != NULL)
		RETURN_STRING(message);
	RETURN_NIL;
}

BL_METHOD(create)
{
	int family, type, protocol;
	sr_client *c;
	sr_socket *s;
	struct entry *e;
	sr_error err;

	ENFORCE_ARG_COUNT(create, 3);
	ENFORCE_ARG_TYPE(create, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(create, 1, IS_NUMBER);
	ENFORCE_ARG_TYPE(create, 2, IS_NUMBER);
	family = (int)AS_NUMBER(args[0]);
	type = (int)AS_NUMBER(args[1]);
	protocol = (int)AS_NUMBER(args[2]);
	if ((c = bl_client(&err)) == NULL ||
	    (s = sr_socket_new(c, family, type, protocol, &err)) == NULL ||
	    (e = bl_entry_new(s, family, type, protocol, &err)) == NULL) {
		bl_err_sr(&err);
		RETURN_NUMBER(-1);
	}
	RETURN_NUMBER(e->id);
}

/*
 * Whether Blade's ssl package (its TLSSocket, packages/ssl/ssl/socket.b) called: it
 * hands the id to OpenSSL, which needs the real socket.
 */
static bool
tls_caller(b_vm *vm)
{
	for (int i = vm->frame_count - 1; i >= 0; i--) {
		b_obj_func *fn =
		    vm->frames[i].closure != NULL ? vm->frames[i].closure->function : NULL;
		const char *file = fn != NULL && fn->module != NULL ? fn->module->file : NULL;
		size_t n = file != NULL ? strlen(file) : 0;

		if (n >= 13 && strcmp(file + n - 13, "/ssl/socket.b") == 0)
			return true;
	}
	return false;
}

/*
 * Puts the real socket fd on e's number (dup2 over the placeholder) and ends the
 * daemon's handle: from now on Blade's own functions serve e.
 */
static void
go_native(struct entry *e, int fd)
{
	sr_error ignored;

	dup2(fd, e->id); /* atomic: the number never reads closed meanwhile */
	close(fd);
	e->native = true;
	/* Ended, not freed: a call another thread began on it fails (closed) instead of
	 * touching freed memory; the last reference frees it. */
	sr_close(e->s, &ignored);
}

/*
 * A connect for TLS: the policy must hand the connected socket back. Returns 0, or -1
 * with the reason as the thread's last error.
 */
static int
connect_for_tls(struct entry *e, const char *host, int port, int timeout_ms)
{
#ifdef SOCKRPC_BLADE_HANDBACK
	sr_error err;
	sr_client *c = bl_client(&err);
	int fd;

	if (c == NULL) {
		bl_err_sr(&err);
		return -1;
	}
	fd = sr_connect_fd(c, e->family, e->type, host, port, timeout_ms, &err);
	if (fd == -1) {
		if (err.code == SR_EDENIED)
			bl_err_text(
			    "TLS needs the socket itself, and the policy does not hand it back "
			    "(descriptor handback): %s",
			    err.message);
		else
			bl_err_sr(&err);
		return -1;
	}
	go_native(e, fd);
	return 0;
#else
	(void)e;
	bl_err_text("TLS needs the socket itself (descriptor handback, granted by the policy's "
	            "handback option), which this libsockrpc cannot receive: connect to %s:%d "
	            "refused",
	            host, port);
	return -1;
#endif
}

BL_METHOD(connect)
{
	struct entry *e;
	sr_error err;
	const char *host;
	int port, timeout, rc;

	ENFORCE_ARG_COUNT(connect, 6);
	ENFORCE_ARG_TYPE(connect, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(connect, 1, IS_STRING);
	ENFORCE_ARG_TYPE(connect, 2, IS_NUMBER);
	ENFORCE_ARG_TYPE(connect, 3, IS_NUMBER);
	ENFORCE_ARG_TYPE(connect, 4, IS_NUMBER);
	ENFORCE_ARG_TYPE(connect, 5, IS_BOOL);
	BL_ENTRY_OR_RETURN(e, args[0], connect);
	host = AS_C_STRING(args[1]);
	port = (int)AS_NUMBER(args[2]);
	timeout = (int)AS_NUMBER(args[4]);
	/* Blade waits up to a positive timeout; 0 (or less) is a connect without limit. */
	if (e->type == SOCK_STREAM && tls_caller(vm)) {
		rc = connect_for_tls(e, host, port, timeout > 0 ? timeout : 0);
	} else {
		rc = sr_connect(e->s, host, port, timeout > 0 ? timeout : 0, &err);
		if (rc == -1)
			bl_err_sr(&err);
	}
	/* Blade's connect leaves the descriptor non-blocking after a timed connect unless
	 * the socket says it is blocking; its later reads and sends behave so. */
	if (rc == 0 && timeout > 0 && !AS_BOOL(args[5])) {
		e->nonblocking = true;
		if (e->native) /* the socket itself: as Blade's own connect leaves it */
			fcntl(e->id, F_SETFL, fcntl(e->id, F_GETFL) | O_NONBLOCK);
	}
	bl_entry_put(e);
	RETURN_NUMBER(rc);
}

BL_METHOD(bind)
{
	struct entry *e;
	sr_error err;
	const char *host;
	int rc;

	ENFORCE_ARG_COUNT(bind, 4);
	ENFORCE_ARG_TYPE(bind, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(bind, 1, IS_STRING);
	ENFORCE_ARG_TYPE(bind, 2, IS_NUMBER);
	ENFORCE_ARG_TYPE(bind, 3, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], bind);
	host = AS_C_STRING(args[1]);
	rc = sr_bind(e->s, (int)AS_NUMBER(args[2]), host[0] == '\0' ? "*" : host, &err);
	bl_entry_put(e);
	if (rc == -1) {
		/* An address that does not parse or resolve: Blade raises, as its getaddrinfo
		 * fails. */
		if (err.code == SR_EINVAL || (err.code == SR_EOS && err.sys_errno == EAFNOSUPPORT))
			RETURN_VALUE_ERROR("address not valid or unsupported");
		bl_err_sr(&err);
	}
	RETURN_NUMBER(rc);
}

BL_METHOD(listen)
{
	struct entry *e;
	sr_error err;
	int rc;

	ENFORCE_ARG_COUNT(listen, 2);
	ENFORCE_ARG_TYPE(listen, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(listen, 1, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], listen);
	rc = sr_listen(e->s, (int)AS_NUMBER(args[1]), &err);
	bl_entry_put(e);
	if (rc == -1)
		bl_err_sr(&err);
	RETURN_NUMBER(rc);
}

/* One accept as Blade's descriptor would do it: at once when non-blocking, else up to
 * the receive timeout, or without limit when none is set. */
static sr_socket *
accept_once(struct entry *e, sr_error *err)
{
	sr_socket *peer;
	sr_error ignored;

	if (e->nonblocking) {
		if (sr_set_blocking(e->s, false, err) == -1)
			return NULL;
		peer = sr_accept(e->s, err);
		sr_set_blocking(e->s, true, &ignored);
		return peer;
	}
	if (e->sr_rcvtimeo_ms != e->rcvtimeo_ms) {
		if (sr_set_option(e->s, SO_RCVTIMEO, e->rcvtimeo_ms, err) == -1)
			return NULL;
		e->sr_rcvtimeo_ms = e->rcvtimeo_ms;
	}
	return sr_accept(e->s, err);
}

BL_METHOD(accept)
{
	struct entry *e, *ne;
	sr_socket *peer;
	const sr_state *st;
	sr_error err;
	b_obj_list *result;
	bool tls;

	ENFORCE_ARG_COUNT(accept, 1);
	ENFORCE_ARG_TYPE(accept, 0, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], accept);
	tls = tls_caller(vm);
	peer = accept_once(e, &err);
	bl_entry_put(e);
	if (peer == NULL) {
		bl_err_sr(&err);
		RETURN_ERROR("client accept failed");
	}
	st = sr_socket_state(peer);
	result = (b_obj_list *)GC(new_list(vm));
	write_list(vm, result, NUMBER_VAL(0));
	write_list(vm, result, OBJ_VAL(copy_string(vm, st->host, (int)strlen(st->host))));
	write_list(vm, result, NUMBER_VAL(st->port));
	ne = bl_entry_new(peer, st->family, st->type, st->protocol, &err);
	if (ne == NULL) {
		bl_err_sr(&err);
		RETURN_ERROR("client accept failed");
	}
	if (tls) {
#ifdef SOCKRPC_BLADE_HANDBACK
		int fd = sr_socket_take_fd(ne->s, &err);

		if (fd != -1) {
			go_native(ne, fd);
		} else {
			bl_entry_remove(ne);
			bl_entry_put(ne);
			RETURN_ERROR(
			    "TLS needs the accepted socket itself, and the policy does not "
			    "hand it back (descriptor handback): %s",
			    err.message);
		}
#else
		bl_entry_remove(ne);
		bl_entry_put(ne);
		RETURN_ERROR(
		    "TLS needs the accepted socket itself (descriptor handback), which this "
		    "libsockrpc cannot receive");
#endif
	}
	result->items.values[0] = NUMBER_VAL(ne->id);
	RETURN_OBJ(result);
}

BL_METHOD(close)
{
	struct entry *e;
	sr_error err;

	ENFORCE_ARG_COUNT(close, 1);
	ENFORCE_ARG_TYPE(close, 0, IS_NUMBER);
	e = bl_entry_get((int)AS_NUMBER(args[0]));
	if (e == NULL || bl_entry_remove(e) == -1) {
		if (e != NULL)
			bl_entry_put(e);
		bl_err_errno(EBADF);
		RETURN_NUMBER(-1);
	}
	/* Wakes any call another thread has waiting on it; the handle and the descriptor
	 * go with the last reference. */
	if (!e->native)
		sr_close(e->s, &err);
	bl_entry_put(e);
	RETURN_NUMBER(0);
}

BL_METHOD(shutdown)
{
	struct entry *e;
	sr_error err;
	int rc;

	ENFORCE_ARG_COUNT(shutdown, 2);
	ENFORCE_ARG_TYPE(shutdown, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(shutdown, 1, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], shutdown);
	rc = sr_shutdown(e->s, (int)AS_NUMBER(args[1]), &err);
	bl_entry_put(e);
	if (rc == -1)
		bl_err_sr(&err);
	RETURN_NUMBER(rc);
}

BL_METHOD(setsockopt)
{
	struct entry *e;
	sr_error err;
	int option, rc = 0;
	long value;

	ENFORCE_ARG_COUNT(setsockopt, 3);
	ENFORCE_ARG_TYPE(setsockopt, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(setsockopt, 1, IS_NUMBER);
	option = (int)AS_NUMBER(args[1]);
	/* Blade's own checks of the value: milliseconds, linger seconds, else a boolean. */
	if (option == SO_SNDTIMEO || option == SO_RCVTIMEO || option == SO_LINGER)
		ENFORCE_ARG_TYPE(setsockopt, 2, IS_NUMBER);
	else
		ENFORCE_ARG_TYPE(setsockopt, 2, IS_BOOL);
	BL_ENTRY_OR_RETURN(e, args[0], setsockopt);
	if (option == SO_SNDTIMEO || option == SO_RCVTIMEO || option == SO_LINGER) {
		value = (long)AS_NUMBER(args[2]);
	} else {
		value = AS_BOOL(args[2]) ? 1 : 0;
	}
	if ((option == SO_SNDTIMEO || option == SO_RCVTIMEO) && value < 0) {
		bl_err_errno(EDOM); /* the kernel's answer to a negative timeval */
		rc = -1;
	} else if (option == SO_RCVTIMEO) {
		/* Kept here: each wait gives the daemon's handle the timeout it needs. */
		e->rcvtimeo_ms = (int)value;
	} else {
		if (option == SO_LINGER && value < 0)
			value = 0;
		rc = sr_set_option(e->s, option, value, &err);
		if (rc == -1)
			bl_err_sr(&err);
		else if (option == SO_SNDTIMEO)
			e->sndtimeo_ms = (int)value;
	}
	bl_entry_put(e);
	RETURN_NUMBER(rc);
}

BL_METHOD(getsockopt)
{
	struct entry *e;
	sr_error err;
	int option;
	long value = 0;

	ENFORCE_ARG_COUNT(getsockopt, 2);
	ENFORCE_ARG_TYPE(getsockopt, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(getsockopt, 1, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], getsockopt);
	option = (int)AS_NUMBER(args[1]);
	if (option == SO_RCVTIMEO || option == SO_SNDTIMEO) {
		value = option == SO_RCVTIMEO ? e->rcvtimeo_ms : e->sndtimeo_ms;
		bl_entry_put(e);
		RETURN_NUMBER(value);
	}
	/* Blade reads 0 when getsockopt fails. */
	if (sr_get_option(e->s, option, &value, &err) == -1) {
		bl_err_sr(&err);
		value = 0;
	}
	bl_entry_put(e);
	if (option == SO_ERROR) {
		if (value == 0)
			RETURN_NIL;
		RETURN_STRING(strerror((int)value));
	}
	RETURN_NUMBER(value);
}

BL_METHOD(setblocking)
{
	struct entry *e;

	ENFORCE_ARG_COUNT(setblocking, 2);
	ENFORCE_ARG_TYPE(setblocking, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(setblocking, 1, IS_BOOL);
	BL_ENTRY_OR_RETURN(e, args[0], setblocking);
	/* The daemon's handle stays blocking; each call waits, or not, as Blade's would. */
	e->nonblocking = !AS_BOOL(args[1]);
	bl_entry_put(e);
	RETURN_TRUE;
}

static void
info_add(b_vm *vm, b_obj_dict *dict, const char *key, b_value value)
{
	dict_add_entry(vm, dict, GC_L_STRING(key, (int)strlen(key)), value);
}

BL_METHOD(getsockinfo)
{
	struct entry *e;
	sr_sockinfo info;
	sr_error err;
	b_obj_dict *dict;
	int rc;

	ENFORCE_ARG_COUNT(getsockinfo, 1);
	ENFORCE_ARG_TYPE(getsockinfo, 0, IS_NUMBER);
	e = bl_entry_get((int)AS_NUMBER(args[0]));
	if (e != NULL && e->native) {
		bl_entry_put(e);
		return bl_call_builtin(BL_FN_getsockinfo, vm, arg_count, args);
	}
	rc = e != NULL ? sr_info(e->s, &info, &err) : -1;
	if (e != NULL)
		bl_entry_put(e);
	dict = (b_obj_dict *)GC(new_dict(vm));
	if (rc == -1) {
		info_add(vm, dict, "address", NIL_VAL);
		info_add(vm, dict, "ipv6", NIL_VAL);
		info_add(vm, dict, "port", NUMBER_VAL(-1));
		info_add(vm, dict, "family", NUMBER_VAL(-1));
		RETURN_OBJ(dict);
	}
	/* Blade's shape: the address in `address` (IPv4) or `ipv6`, the other empty. */
	info_add(vm, dict, "address", info.ipv6 ? GC_L_STRING("", 0) : GC_STRING(info.address));
	info_add(vm, dict, "ipv6", info.ipv6 ? GC_STRING(info.address) : GC_L_STRING("", 0));
	info_add(vm, dict, "port", NUMBER_VAL(info.port));
	info_add(vm, dict, "family", NUMBER_VAL(info.family));
	RETURN_OBJ(dict);
}

BL_METHOD(getaddrinfo)
{
	const char *type = "http";
	sr_addrinfo *ai;
	sr_client *c;
	sr_error err;
	b_obj_dict *dict;
	int family;

	ENFORCE_ARG_COUNT(getaddrinfo, 3);
	ENFORCE_ARG_TYPE(getaddrinfo, 0, IS_STRING);
	ENFORCE_ARG_TYPE(getaddrinfo, 2, IS_NUMBER);
	if (!IS_NIL(args[1])) {
		ENFORCE_ARG_TYPE(getaddrinfo, 1, IS_STRING);
		type = AS_C_STRING(args[1]);
	}
	family = (int)AS_NUMBER(args[2]);
	/* Blade returns the first address of the family asked, so nothing for AF_UNSPEC. */
	if (family == AF_UNSPEC || (c = bl_client(&err)) == NULL ||
	    sr_get_address_info(c, AS_C_STRING(args[0]), type, family, &ai, &err) == -1)
		RETURN_NIL;
	for (size_t i = 0; i < ai->count; i++) {
		if (ai->addresses[i].family != family)
			continue;
		dict = (b_obj_dict *)GC(new_dict(vm));
		info_add(vm, dict, "canonical_name",
		         ai->canonical_name[0] != '\0' ? GC_STRING(ai->canonical_name) : NIL_VAL);
		info_add(vm, dict, "ip",
		         family == AF_INET || family == AF_INET6 ? GC_STRING(ai->addresses[i].ip)
		                                                 : GC_L_STRING("", 0));
		sr_addrinfo_free(ai);
		RETURN_OBJ(dict);
	}
	sr_addrinfo_free(ai);
	RETURN_NIL;
}

/* `_socket.SOCKRPC`: true, so a program can tell the broker is in use. */
static b_value
sockrpc_marker(b_vm *vm)
{
	(void)vm;
	return TRUE_VAL;
}

/* What Blade calls for dist/sockrpc_socket.so: the one symbol the module exports. */
__attribute__((visibility("default"))) CREATE_MODULE_LOADER(sockrpc_socket)
{
	static const struct {
		const char *name;
		b_native_fn fn;
	} ours[BL_FN_COUNT] = {
	    {"create", bl_create},
	    {"connect", bl_connect},
	    {"send", bl_send},
	    {"recv", bl_recv},
	    {"read", bl_read},
	    {"setsockopt", bl_setsockopt},
	    {"getsockopt", bl_getsockopt},
	    {"bind", bl_bind},
	    {"listen", bl_listen},
	    {"accept", bl_accept},
	    {"error", bl_error},
	    {"close", bl_close},
	    {"shutdown", bl_shutdown},
	    {"getsockinfo", bl_getsockinfo},
	    {"getaddrinfo", bl_getaddrinfo},
	    {"setblocking", bl_setblocking},
	    {"sendto", bl_sendto},
	    {"recvfrom", bl_recvfrom},
	};
	static b_func_reg functions[BL_FN_COUNT + 1];
	static b_field_reg fields[160];
	static b_module_reg module;
	b_module_reg *builtin = blade_module_loader_socket(vm);
	size_t n = 0;

	for (int i = 0; i < BL_FN_COUNT; i++) {
		functions[i] = (b_func_reg){ours[i].name, false, ours[i].fn};
		for (b_func_reg *f = builtin->functions; f->name != NULL; f++)
			if (strcmp(f->name, ours[i].name) == 0)
				builtins[i] = f->function;
		if (builtins[i] == NULL)
			return NULL; /* not the Blade this was built for */
	}
	functions[BL_FN_COUNT] = (b_func_reg){NULL, false, NULL};
	/* Blade's constants, to the value, and the marker. */
	for (b_field_reg *f = builtin->fields; f->name != NULL && n + 2 < 160; f++)
		fields[n++] = *f;
	fields[n++] = (b_field_reg){"SOCKRPC", true, sockrpc_marker};
	fields[n] = (b_field_reg){NULL, false, NULL};
	module = *builtin; /* the name "_socket", the preloader (SIGPIPE ignored)... */
	module.functions = functions;
	module.fields = fields;
	return &module;
}
