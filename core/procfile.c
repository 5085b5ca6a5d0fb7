/* Line-by-line reading of /proc files while every application thread is
 * parked (one of them may hold the malloc or stdio lock): open/read/close
 * system calls into a buffer the caller owns.
 *
 * seq_file (fs/seq_file.c) hands out whole records per read() as long as
 * they fit, but a read may still end inside a line: the partial line is
 * moved to the front of the buffer and completed by the next read. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "procfile.h"
#include "sys.h"

int nuwa_proc_lines(const char *path, char *buf, size_t cap,
                    int (*fn)(char *line, void *arg), void *arg)
{
	int fd = (int)sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	size_t have = 0;       /* bytes of an unfinished line at buf[0] */
	int cutting = 0;       /* skipping the tail of an over-long line */
	int r = 0;
	for (;;) {
		long n = sys_read(fd, buf + have, cap - 1 - have);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0) {
			if (have && !cutting) {
				buf[have] = 0;
				r = fn(buf, arg);
			}
			break;
		}
		size_t end = have + (size_t)n, start = 0;
		for (size_t i = have; i < end; i++) {
			if (buf[i] != '\n')
				continue;
			buf[i] = 0;
			if (!cutting && (r = fn(buf + start, arg)) != 0)
				goto out;
			cutting = 0;
			start = i + 1;
		}
		have = end - start;
		if (start && have)
			memmove(buf, buf + start, have);
		if (have == cap - 1) {
			/* one line fills the buffer: hand out its head, skip the rest */
			buf[have] = 0;
			if (!cutting && (r = fn(buf, arg)) != 0)
				goto out;
			cutting = 1;
			have = 0;
		}
	}
out:
	sys_close(fd);
	return r;
}

unsigned long long nuwa_parse_ull(const char **pp, int base)
{
	const char *p = *pp;
	unsigned long long v = 0;
	for (;; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		v = v * (unsigned)base + (unsigned)d;
	}
	*pp = p;
	return v;
}
