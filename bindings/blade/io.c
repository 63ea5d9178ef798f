/*
 * io.c - the data functions of `_socket` (send, recv, read, sendto, recvfrom) over
 * libsockrpc, with the waits of Blade's own module: recv waits for data up to the
 * receive timeout or 500 ms, read fills its length on a blocking socket, and a
 * socket left non-blocking (set_blocking(false), or by connect) never waits.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "blade_module.h"

static bool blade_string(b_vm *vm, b_value *args, char *buf, size_t len);

/* Blade's recv waits this long for data when no receive timeout is set. */
#define RECV_DEFAULT_WAIT_MS 500

/* Gives the daemon's handle the receive timeout a wait needs: the user's, or the
 * 500 ms of recv; a wait with no limit loops on it (see wait_forever()). */
static int
ensure_rcvtimeo(struct entry *e, sr_error *err)
{
	int want = e->rcvtimeo_ms > 0 ? e->rcvtimeo_ms : RECV_DEFAULT_WAIT_MS;

	if (e->sr_rcvtimeo_ms == want)
		return 0;
	if (sr_set_option(e->s, SO_RCVTIMEO, want, err) == -1)
		return -1;
	e->sr_rcvtimeo_ms = want;
	return 0;
}

/* Whether a wait that timed out goes on: Blade's blocking calls other than recv wait
 * without limit unless the user set a receive timeout. */
static bool
wait_forever(const struct entry *e, const sr_error *err)
{
	return err->code == SR_ETIMEDOUT && e->rcvtimeo_ms <= 0;
}

/* The bytes a message value stands for, as Blade's send reads them: a file's content
 * (*owned set, free it), a string's or bytes' own, else the value's text. */
static int
message_bytes(b_vm *vm, b_value data, bool files, const char **out, size_t *len, char **owned)
{
	*owned = NULL;
	if (IS_STRING(data)) {
		*out = AS_STRING(data)->chars;
		*len = (size_t)AS_STRING(data)->length;
	} else if (IS_BYTES(data)) {
		*out = (const char *)AS_BYTES(data)->bytes.bytes;
		*len = (size_t)AS_BYTES(data)->bytes.count;
	} else if (files && IS_FILE(data)) {
		char *path = realpath(AS_FILE(data)->path->chars, NULL);
		FILE *fp;
		long size;

		if (path == NULL) {
			bl_err_errno(ENOENT);
			return -1;
		}
		fp = fopen(path, "rb");
		free(path);
		if (fp == NULL) {
			bl_err_errno(errno);
			return -1;
		}
		if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 ||
		    (*owned = malloc((size_t)size + 1)) == NULL) {
			bl_err_errno(errno != 0 ? errno : ENOMEM);
			fclose(fp);
			return -1;
		}
		rewind(fp);
		*len = fread(*owned, 1, (size_t)size, fp);
		fclose(fp);
		*out = *owned;
	} else {
		b_obj_string *text = value_to_string(vm, data);

		*out = text->chars;
		*len = (size_t)text->length;
	}
	return 0;
}

BL_METHOD(send)
{
	const char *data;
	char *owned;
	size_t len, done = 0;
	struct entry *e;
	sr_error err;
	bool dont_wait;
	int flags;

	ENFORCE_ARG_COUNT(send, 3);
	ENFORCE_ARG_TYPE(send, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(send, 2, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], send);
	if (message_bytes(vm, args[1], true, &data, &len, &owned) == -1) {
		bl_entry_put(e);
		RETURN_NUMBER(-1);
	}
	flags = (int)AS_NUMBER(args[2]);
	/* Blade's send on a non-blocking socket without a send timeout gives up (-1) as soon
	 * as the socket would block; otherwise it sends everything, or what it could before
	 * the send timeout. */
	dont_wait = e->nonblocking && e->sndtimeo_ms <= 0;
	while (done < len) {
		long n = sr_send(e->s, data + done, len - done,
		                 flags | (dont_wait ? MSG_DONTWAIT : 0), &err);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (err.code == SR_ETIMEDOUT && !dont_wait)
			break;
		bl_err_sr(&err);
		free(owned);
		bl_entry_put(e);
		RETURN_NUMBER(-1);
	}
	free(owned);
	bl_entry_put(e);
	RETURN_NUMBER((double)done);
}

BL_METHOD(recv)
{
	struct entry *e;
	sr_error err;
	char *buf = NULL;
	size_t len = 0;
	long length;
	int flags, rc;

	ENFORCE_ARG_COUNT(recv, 3);
	ENFORCE_ARG_TYPE(recv, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(recv, 1, IS_NUMBER);
	ENFORCE_ARG_TYPE(recv, 2, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], recv);
	length = (long)AS_NUMBER(args[1]);
	flags = (int)AS_NUMBER(args[2]);
	if (ensure_rcvtimeo(e, &err) == -1) {
		bl_err_sr(&err);
		bl_entry_put(e);
		RETURN_NUMBER(-1);
	}
	/* recv(0) asks only whether data is pending: Blade returns "" then, nil at end of
	 * stream, and times out otherwise. A peek of one byte tells the three apart. */
	if (length == 0)
		rc = sr_receive(e->s, 1, flags | MSG_PEEK, &buf, &len, &err);
	else
		rc = sr_receive(e->s, length < 0 ? -1 : length, flags, &buf, &len, &err);
	bl_entry_put(e);
	if (rc == -1) {
		bl_err_sr(&err);
		RETURN_NUMBER(-1);
	}
	if (len == 0) {
		free(buf);
		RETURN_NIL;
	}
	if (length == 0)
		len = 0;
	return blade_string(vm, args, buf, len);
}

/* Returns the bytes as Blade's recv and read build their string (a buffer of Blade's
 * allocator, taken), so that the two read the same; frees buf. */
static bool
blade_string(b_vm *vm, b_value *args, char *buf, size_t len)
{
	char *text = ALLOCATE(char, len + 1);

	if (len > 0)
		memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	RETURN_T_STRING(text, (int)len);
}

/* Appends part to *all (grown with Blade's allocator's rules: malloc). */
static int
append(char **all, size_t *have, const char *part, size_t n)
{
	char *grown = realloc(*all, *have + n + 1);

	if (grown == NULL)
		return -1;
	memcpy(grown + *have, part, n);
	*have += n;
	*all = grown;
	return 0;
}

BL_METHOD(read)
{
	struct entry *e;
	sr_error err;
	char *all = NULL, *part;
	size_t have = 0, n;
	long length;
	int flags;

	ENFORCE_ARG_COUNT(read, 3);
	ENFORCE_ARG_TYPE(read, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(read, 1, IS_NUMBER);
	ENFORCE_ARG_TYPE(read, 2, IS_NUMBER);
	length = (long)AS_NUMBER(args[1]);
	flags = (int)AS_NUMBER(args[2]);
	if (length <= 0)
		length = 1024;
	e = bl_entry_get((int)AS_NUMBER(args[0]));
	if (e == NULL)
		RETURN_L_STRING("", 0); /* Blade's recv fails, and read returns what it has */
	if (e->native) {
		bl_entry_put(e);
		return bl_builtin(BL_READ)(vm, arg_count, args);
	}
	/* Blade's read: recv until length bytes, end of stream or an error (the receive
	 * timeout, or "would block" on a non-blocking socket); never fails. */
	if (!e->nonblocking && ensure_rcvtimeo(e, &err) == -1)
		length = 0;
	while ((long)have < length) {
		if (sr_receive(e->s, length - (long)have,
		               flags | (e->nonblocking ? MSG_DONTWAIT : 0), &part, &n,
		               &err) == -1) {
			if (!e->nonblocking && wait_forever(e, &err))
				continue;
			break;
		}
		if (n == 0 || append(&all, &have, part, n) == -1) {
			free(part);
			break;
		}
		free(part);
	}
	bl_entry_put(e);
	return blade_string(vm, args, all, have);
}

BL_METHOD(sendto)
{
	const char *data;
	char *owned;
	size_t len;
	struct entry *e;
	sr_error err;
	long n;

	ENFORCE_ARG_COUNT(sendto, 6);
	ENFORCE_ARG_TYPE(sendto, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(sendto, 2, IS_NUMBER);
	ENFORCE_ARG_TYPE(sendto, 3, IS_STRING);
	ENFORCE_ARG_TYPE(sendto, 4, IS_NUMBER);
	ENFORCE_ARG_TYPE(sendto, 5, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], sendto);
	/* As Blade's: a file is sent as its text, not its content. */
	message_bytes(vm, args[1], false, &data, &len, &owned);
	n = sr_send_to(e->s, AS_C_STRING(args[3]), (int)AS_NUMBER(args[4]), data, len,
	               (int)AS_NUMBER(args[2]) | (e->nonblocking ? MSG_DONTWAIT : 0), &err);
	bl_entry_put(e);
	if (n == -1) {
		bl_err_sr(&err);
		RETURN_NUMBER(-1);
	}
	RETURN_NUMBER((double)n);
}

BL_METHOD(recvfrom)
{
	struct entry *e;
	sr_error err;
	char *buf = NULL, host[64];
	size_t len = 0;
	long length;
	int flags, port = 0, rc;
	b_obj_list *result;

	ENFORCE_ARG_COUNT(recvfrom, 3);
	ENFORCE_ARG_TYPE(recvfrom, 0, IS_NUMBER);
	ENFORCE_ARG_TYPE(recvfrom, 1, IS_NUMBER);
	ENFORCE_ARG_TYPE(recvfrom, 2, IS_NUMBER);
	BL_ENTRY_OR_RETURN(e, args[0], recvfrom);
	length = (long)AS_NUMBER(args[1]);
	flags = (int)AS_NUMBER(args[2]);
	if (length <= 0)
		length = 8192;
	if (e->nonblocking) {
		rc = sr_receive_from(e->s, length, flags | MSG_DONTWAIT, &buf, &len, host, &port,
		                     &err);
	} else if ((rc = ensure_rcvtimeo(e, &err)) == 0) {
		do
			rc = sr_receive_from(e->s, length, flags, &buf, &len, host, &port, &err);
		while (rc == -1 && wait_forever(e, &err));
	}
	bl_entry_put(e);
	if (rc == -1) {
		bl_err_sr(&err);
		RETURN_NUMBER(-1);
	}
	result = (b_obj_list *)GC(new_list(vm));
	/* As Blade's: the data as a C string, so it ends at the first NUL byte. */
	write_list(vm, result, OBJ_VAL(copy_string(vm, buf, (int)strnlen(buf, len))));
	write_list(vm, result, OBJ_VAL(copy_string(vm, host, (int)strlen(host))));
	write_list(vm, result, NUMBER_VAL(port));
	free(buf);
	RETURN_OBJ(result);
}
