/* The syntax of a spawn's --env, --cwd and --cgroup values, checked alike by
 * the `nuwa` command (before it connects) and by the template (before it
 * forks), and the reasons they give.  No I/O, no allocation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spawnopts.h"

/* strerror() may take the locale lock: the few reasons that can come up
 * in a spawn's checks, by name, and the number otherwise. */
const char *spawn_err_text(int e, char *buf, size_t len)
{
	switch (e) {
	case ENOENT: return "no such file or directory";
	case ENOTDIR: return "not a directory";
	case EACCES: return "permission denied";
	case EPERM: return "operation not permitted";
	case ELOOP: return "too many symbolic links";
	case ENAMETOOLONG: return "name too long";
	case EROFS: return "read-only file system";
	case EBUSY: return "device or resource busy";
	case ESRCH: return "no such process";
	case ENOMEM: return "out of memory";
	default:
		snprintf(buf, len, "errno %d", e);
		return buf;
	}
}

/* NAME=VALUE: the name is what comes before the first '=' (that is how
 * getenv() reads an entry), so it must be there and not be empty.  Any
 * other byte is allowed, as in execve()'s envp. */
int spawn_env_check(const char *entry, char *err, size_t errlen)
{
	const char *eq = strchr(entry, '=');
	size_t n = strlen(entry);
	if (!eq) {
		snprintf(err, errlen, "--env '%.64s%s': needs NAME=VALUE", entry, n > 64 ? "..." : "");
		return -EINVAL;
	}
	if (eq == entry) {
		snprintf(err, errlen, "--env '%.64s%s': the name is empty", entry, n > 64 ? "..." : "");
		return -EINVAL;
	}
	if (n > SPAWN_MAX_ENV_LEN) {
		snprintf(err, errlen, "--env %.*s=...: %zu bytes, at most %d", (int)(eq - entry) < 64 ?
		         (int)(eq - entry) : 64, entry, n, SPAWN_MAX_ENV_LEN);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* The template has its own working directory: paths travel absolute. */
int spawn_path_check(const char *what, const char *path, char *err, size_t errlen)
{
	size_t n = strlen(path);
	if (n == 0 || path[0] != '/') {
		snprintf(err, errlen, "%s '%.200s': not an absolute path", what, path);
		return -EINVAL;
	}
	if (n > SPAWN_MAX_PATH) {
		snprintf(err, errlen, "%s: path of %zu bytes, at most %d", what, n, SPAWN_MAX_PATH);
		return -ENAMETOOLONG;
	}
	return 0;
}
