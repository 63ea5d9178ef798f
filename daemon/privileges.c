/*
 * privileges.c - the drop from root (see privileges.h): switch user, keep exactly the two
 * capabilities a policy can grant to brokered sockets, and make sure nothing can give the
 * rest back (bounding set emptied of them, no ambient or inheritable set, no_new_privs).
 * Uses the raw capget/capset system calls so the daemon needs no libcap.
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

/* What brokered sockets may need, and so all the daemon keeps: binding ports below 1024
 * and opening raw sockets, each only where the policy allows it. */
static const int kept_caps[] = { CAP_NET_BIND_SERVICE, CAP_NET_RAW };

/* Capability numbers fit in two 32-bit words (_LINUX_CAPABILITY_U32S_3). */
#define CAP_NUMBERS_MAX 63

static bool is_kept(int cap);
static int last_cap(void);
static int drop_bounding_set(void);
static int set_kept_caps(void);
static int check_kept_caps(void);

int
privileges_drop(const char *user)
{
	const char *name = user ? user : PRIVILEGES_DEFAULT_USER;
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	int err;

	if (geteuid() != 0)
		return 0;
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		if (user != NULL) {
			log_error("--user %s: no such user", user);
			return -1;
		}
		log_warn("no user '%s': running as root (create it, or give --user)", name);
		return 0;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0) {
		log_warn("user %s is root: running with all privileges", name);
		return 0;
	}
	/* Keep the permitted set across setuid; effective is rebuilt by capset below. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
		log_error("prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
		return -1;
	}
	/* Dropping from the bounding set needs CAP_SETPCAP, so it happens while still root. */
	if ((err = drop_bounding_set()) != 0) {
		log_error("cannot reduce the capability bounding set: %s", strerror(-err));
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0) {
		log_error("cannot drop to user %s: %s", name, strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
		log_error("prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
		return -1;
	}
	if ((err = set_kept_caps()) != 0) {
		log_error("capset: %s", strerror(-err));
		return -1;
	}
	/* Ambient capabilities would survive an exec; the daemon never needs any. EINVAL:
	 * a kernel before 4.3, which has no ambient set. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		log_error("cannot clear the ambient capabilities: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		log_error("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return -1;
	}
	if ((err = check_kept_caps()) != 0) {
		log_error("privileges not dropped as intended: %s", strerror(-err));
		return -1;
	}
	log_info("running as %s (uid %u, gid %u) with CAP_NET_BIND_SERVICE and CAP_NET_RAW",
	         name, (unsigned)uid, (unsigned)gid);
	return 0;
}

static bool
is_kept(int cap)
{
	for (size_t i = 0; i < sizeof(kept_caps) / sizeof(kept_caps[0]); i++)
		if (kept_caps[i] == cap)
			return true;
	return false;
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
		if (is_kept(cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return -errno;
	}
	return 0;
}

static int
set_kept_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	for (size_t i = 0; i < sizeof(kept_caps) / sizeof(kept_caps[0]); i++) {
		data[CAP_TO_INDEX(kept_caps[i])].permitted |= CAP_TO_MASK(kept_caps[i]);
		data[CAP_TO_INDEX(kept_caps[i])].effective |= CAP_TO_MASK(kept_caps[i]);
	}
	if (syscall(SYS_capset, &hdr, data) != 0)
		return -errno;
	return 0;
}

/* Reads the sets back: exactly the kept capabilities, and no way back to root. */
static int
check_kept_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, data) != 0)
		return -errno;
	for (int cap = 0; cap <= CAP_NUMBERS_MAX; cap++) {
		unsigned idx = CAP_TO_INDEX(cap);
		__u32 mask = CAP_TO_MASK(cap);
		bool want = is_kept(cap);

		if (((data[idx].permitted & mask) != 0) != want ||
		    ((data[idx].effective & mask) != 0) != want || (data[idx].inheritable & mask))
			return -EPERM;
	}
	if (setuid(0) == 0 || geteuid() == 0)
		return -EPERM;
	return 0;
}
