/*
 * privileges.c - the drop from root (see privileges.h). Issue #5 completes this with
 * capability retention; until then a root daemon stays root unless --user is given.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "privileges.h"
#include "sockrpcd.h"

int
privileges_drop(const char *user)
{
	struct passwd *pw;

	if (geteuid() != 0 || user == NULL)
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		log_error("--user %s: no such user", user);
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_error("cannot drop to user %s: %s", user, strerror(errno));
		return -1;
	}
	return 0;
}
