/* The per-user runtime directory that holds control sockets (ctl_rundir.h).
 *
 * Why so strict: whoever can write to the directory can put a socket of
 * their own at DIR/PID.sock and receive the descriptors `nuwa spawn --stdio`
 * sends, or answer for a process.  /tmp is shared, so /tmp/nuwa-$UID may
 * have been created by someone else first: it is refused unless we own it
 * and nobody else may enter it.  The checks are made on an O_NOFOLLOW
 * descriptor (fstat), so a symlink planted at the path is refused too. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base.h"
#include "ctl_rundir.h"
#include "sys.h"

int ctl_rundir_path(char *buf, size_t len)
{
	const char *v = getenv("NUWA_RUNTIME_DIR");
	int n;
	if (v && v[0] == '/')
		n = snprintf(buf, len, "%s", v);
	else if ((v = getenv("XDG_RUNTIME_DIR")) && v[0] == '/')
		n = snprintf(buf, len, "%s/nuwa", v);
	else
		n = snprintf(buf, len, "/tmp/nuwa-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	/* "a/b/" and "a/b" are the same directory; keep the name canonical so
	 * that DIR/PID.sock has one spelling (it is matched in /proc/net/unix). */
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	return 0;
}

int ctl_rundir_open(const char *path, int create, char *err, size_t errlen)
{
	int made = 0;
	if (create) {
		if (mkdir(path, 0700) == 0)
			made = 1;
		else if (errno != EEXIST) {
			int e = errno;
			snprintf(err, errlen, "cannot create runtime directory %s: %s", path,
			         nuwa_strerror(e));
			return -e;
		}
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP || e == ENOTDIR)
			snprintf(err, errlen, "runtime directory %s is not a directory "
			         "(a symlink or a file is refused)", path);
		else
			snprintf(err, errlen, "cannot open runtime directory %s: %s", path,
			         nuwa_strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		sys_close(fd);
		snprintf(err, errlen, "cannot stat runtime directory %s: %s", path, nuwa_strerror(e));
		return -e;
	}
	if (made && (st.st_mode & 0777) != 0700 && fchmod(fd, 0700) == 0)
		st.st_mode = (st.st_mode & ~0777u) | 0700;  /* a umask took owner bits */
	if (st.st_uid != geteuid()) {
		sys_close(fd);
		snprintf(err, errlen, "runtime directory %s belongs to uid %u, not to uid %u: "
		         "refused (set NUWA_RUNTIME_DIR to a private directory)", path,
		         (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & 077) {
		sys_close(fd);
		snprintf(err, errlen, "runtime directory %s has mode %04o: refused, it must "
		         "be private (chmod 700 %s)", path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return fd;
}

int ctl_sock_path(char *buf, size_t len, const char *dir, pid_t pid)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	if (len > max)
		len = max;
	int n = snprintf(buf, len, "%s/%ld" CTL_SOCK_SUFFIX, dir, (long)pid);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

pid_t ctl_sock_name_pid(const char *name)
{
	char *end;
	if (name[0] < '1' || name[0] > '9')
		return -1;
	long v = strtol(name, &end, 10);
	if (strcmp(end, CTL_SOCK_SUFFIX) || v <= 0 || v > 0x7fffffff)
		return -1;
	return (pid_t)v;
}
