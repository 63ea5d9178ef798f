/*
 * binding.h - the Blade `_socket` replacement's shared parts: the process's one
 * sr_client, the table of sockets by id, and the thread's last error (what
 * `_socket.error(-1)` reports, as Blade's reads errno).
 *
 * An id is a real descriptor number: a placeholder descriptor the binding owns while
 * the socket lives in the daemon (brokered), or, once the policy hands the socket
 * back, the real socket itself, dup2()ed onto that number (native). A native entry
 * is served by Blade's own built-in functions, which work on descriptors.
 */
#ifndef SOCKRPC_BLADE_BINDING_H
#define SOCKRPC_BLADE_BINDING_H

#include <stdbool.h>

#include <sockrpc.h>

struct entry {
	int id;              /* the descriptor number Blade sees */
	sr_socket *s;        /* owned; ended (not freed) once native */
	_Atomic bool native; /* the socket itself sits at id (handed back) */
	int family, type, protocol;
	/* What the stock module's descriptor would have set (emulated, no round trip);
	 * atomic, as Blade's threads may share a socket. */
	_Atomic bool nonblocking;   /* O_NONBLOCK: set_blocking(false), or left by connect */
	_Atomic int rcvtimeo_ms;    /* SO_RCVTIMEO, 0 none */
	_Atomic int sndtimeo_ms;    /* SO_SNDTIMEO, 0 none */
	_Atomic int sr_rcvtimeo_ms; /* the receive timeout the daemon's handle has, 0 none */
	int refs;                   /* the table's reference plus one a call in progress */
};

/* The process's client, opened on first use from $SOCKRPC_SOCKET; NULL with *err. */
sr_client *bl_client(sr_error *err);

/* A new entry for s (taken) on a fresh placeholder descriptor; NULL with *err. */
struct entry *bl_entry_new(sr_socket *s, int family, int type, int protocol, sr_error *err);
/* The entry of id with a reference taken, or NULL (the error is EBADF). */
struct entry *bl_entry_get(int id);
void bl_entry_put(struct entry *e);
/* Removes e from the table (its id then reads EBADF) and drops the table's reference;
 * the caller still holds its own. Returns -1 if it was removed already. */
int bl_entry_remove(struct entry *e);

/* The thread's last error. */
void bl_err_errno(int sys_errno);
void bl_err_sr(const sr_error *err); /* an OS error reads as its errno's text */
void bl_err_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The text _socket.error(-1) returns, NULL when there is none or it is a would-block. */
const char *bl_err_message(void);

#endif
