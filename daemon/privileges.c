/*
 * privileges.c - the worker's drop from root (see privileges.h): switch user, keep no
 * capability, and make sure nothing can give one back (bounding set emptied, no ambient
 * or inheritable set, no_new_privs). Uses the raw capget system call (no libcap).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "privileges.h"
#include "sockrpcd.h"

/* Capability numbers fit in two 32-bit words (_LINUX_CAPABILITY_U32S_3). */
#define CAP_NUMBERS_MAX 63

static int last_cap(void);
static int drop_bounding_set(void);
static int check_no_caps(void);

int
privileges_drop(const char *name, uid_t uid, gid_t gid)
{
	int err;

	if (uid == 0) {
		log_error("cannot drop privileges to %s: it is root", name);
		return -1;
	}
	/* Dropping from the bounding set needs CAP_SETPCAP, so it happens while still root. */
	if ((err = drop_bounding_set()) != 0) {
		log_error("cannot empty the capability bounding set: %s", strerror(-err));
		return -1;
	}
	/* Without PR_SET_KEEPCAPS, leaving uid 0 clears the permitted and effective sets. */
	if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0) {
		log_error("cannot drop to user %s: %s", name, strerror(errno));
		return -1;
	}
	/* EINVAL: a kernel before 4.3, which has no ambient set. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		log_error("cannot clear the ambient capabilities: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		log_error("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return -1;
	}
	if ((err = check_no_caps()) != 0) {
		log_error("privileges not dropped as intended: %s", strerror(-err));
		return -1;
	}
	log_info("worker running as %s (uid %u, gid %u) with no capabilities", name, (unsigned)uid,
	         (unsigned)gid);
	return 0;
}
/* The highest capability this kernel knows, which may exceed the headers' CAP_LAST_CAP. */
static int
last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int n = -1;

	if (f != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		fclose(f);
	}
	if (n >= 0 && n <= CAP_NUMBERS_MAX)
		return n;
	/* No /proc: probe; the kernel answers EINVAL past its last capability. */
	for (n = 0; n <= CAP_NUMBERS_MAX; n++)
		if (prctl(PR_CAPBSET_READ, n, 0, 0, 0) < 0)
			break;
	return n - 1;
}

static int
drop_bounding_set(void)
{
	int last = last_cap();

	for (int cap = 0; cap <= last; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return -errno;
	}
	return 0;
}

/* Reads the sets back: nothing anywhere, and no way back to root. */
static int
check_no_caps(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0}};

	if (syscall(SYS_capget, &hdr, data) != 0)
		return -errno;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].permitted || data[i].effective || data[i].inheritable)
			return -EPERM;
	for (int cap = 0; cap <= last_cap(); cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0)
			return -EPERM;
	if (setuid(0) == 0 || geteuid() == 0)
		return -EPERM;
	return 0;
}
