/* Directory listings for /proc (tasks, descriptors, processes): getdents64
 * into a stack buffer, no malloc, no libc lock — the control thread walks
 * them while application threads are parked, possibly inside malloc. */
#include <fcntl.h>

#include "base.h"
#include "sys.h"

struct linux_dirent64 {
	unsigned long long d_ino;
	long long d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

int nuwa_dir_open(int at, const char *path)
{
	return (int)sys_openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
}

int nuwa_dir_numbers(int dfd, nuwa_dir_fn *fn, void *arg)
{
	char buf[4096];
	long len;
	while ((len = sys_getdents64(dfd, buf, sizeof buf)) > 0)
		for (long off = 0; off < len;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			int r = fn(dfd, d->d_name, arg);
			if (r)
				return r;
		}
	return len < 0 ? (int)len : 0;
}

int nuwa_dir_walk(int at, const char *path, nuwa_dir_fn *fn, void *arg)
{
	int dfd = nuwa_dir_open(at, path);
	if (dfd < 0)
		return dfd;
	int r = nuwa_dir_numbers(dfd, fn, arg);
	sys_close(dfd);
	return r;
}
