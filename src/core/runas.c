/* The `user` parameter: the pooler is started as root (to bind a privileged port, read root-only
 * keys, write a pidfile in /run) and then gives up root for the named user, as PgBouncer does. */
#include "core/runas.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool already(const struct passwd *pw)
{
	return getuid() == pw->pw_uid && geteuid() == pw->pw_uid;
}

/* Group first, while still root; the uid last, and then check root cannot be had back. */
static bool drop_to(const struct passwd *pw, char *err, size_t errlen)
{
	const char *step = NULL;

	if (initgroups(pw->pw_name, pw->pw_gid) != 0)
		step = "initgroups";
	else if (setgid(pw->pw_gid) != 0)
		step = "setgid";
	else if (setuid(pw->pw_uid) != 0)
		step = "setuid";
	else if (pw->pw_uid != 0 && setuid(0) == 0)
		step = "dropping root (setuid(0) still works)";
	if (step) {
		snprintf(err, errlen, "user = %s: %s failed: %s", pw->pw_name, step, strerror(errno));
		return false;
	}
	return true;
}

bool runas_switch(const char *user, char *err, size_t errlen)
{
	errno = 0;
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		snprintf(err, errlen, "user = %s: no such Unix user%s%s", user, errno ? ": " : "",
			 errno ? strerror(errno) : "");
		return false;
	}
	if (already(pw))
		return true;
	if (geteuid() != 0) {
		snprintf(err, errlen,
			 "user = %s: only a pooler started as root can switch users (running as uid %u)",
			 user, (unsigned)geteuid());
		return false;
	}
	return drop_to(pw, err, errlen);
}
