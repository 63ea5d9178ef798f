/*
 * blade_module.h - what the `_socket` functions share: Blade's module API, the
 * binding's table, and Blade's built-in functions, which serve the ids whose
 * socket was handed back (a real descriptor, as Blade's own module expects).
 */
#ifndef SOCKRPC_BLADE_MODULE_H
#define SOCKRPC_BLADE_MODULE_H

#include <errno.h>

#include <blade.h>

#include "binding.h"

/* The 18 functions, in the order of Blade's module. */
enum bl_fn {
	BL_FN_create,
	BL_FN_connect,
	BL_FN_send,
	BL_FN_recv,
	BL_FN_read,
	BL_FN_setsockopt,
	BL_FN_getsockopt,
	BL_FN_bind,
	BL_FN_listen,
	BL_FN_accept,
	BL_FN_error,
	BL_FN_close,
	BL_FN_shutdown,
	BL_FN_getsockinfo,
	BL_FN_getaddrinfo,
	BL_FN_setblocking,
	BL_FN_sendto,
	BL_FN_recvfrom,
	BL_FN_COUNT
};
#define BL_READ BL_FN_read

/* Blade's built-in function fn. */
b_native_fn bl_builtin(enum bl_fn fn);
/* Calls it, and records its errno as the thread's last error when it fails (-1). */
bool bl_call_builtin(enum bl_fn fn, b_vm *vm, int arg_count, b_value *args);

/* Looks up the entry of the id in idv into e, or returns -1 (EBADF) from the calling
 * function; a handed-back socket goes to Blade's own function instead. */
#define BL_ENTRY_OR_RETURN(e, idv, fn)                                                             \
	do {                                                                                       \
		(e) = bl_entry_get((int)AS_NUMBER(idv));                                           \
		if ((e) == NULL) {                                                                 \
			bl_err_errno(EBADF);                                                       \
			RETURN_NUMBER(-1);                                                         \
		}                                                                                  \
		if ((e)->native) {                                                                 \
			bl_entry_put(e);                                                           \
			return bl_call_builtin(BL_FN_##fn, vm, arg_count, args);                   \
		}                                                                                  \
	} while (0)

/* A `_socket` function (a prefix of our own: libblade.so exports its own names). */
#define BL_METHOD(name) bool bl_##name(b_vm *vm, int arg_count, b_value *args)
BL_METHOD(send);
BL_METHOD(recv);
BL_METHOD(read);
BL_METHOD(sendto);
BL_METHOD(recvfrom);

#endif
