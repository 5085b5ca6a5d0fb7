/* Helpers of the fdremap unit tests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/kcmp.h>
#include "ut.h"

int ut_fails;

void ut_protect_existing(void)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert(d);
	int dfd = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dfd)
			nuwa_fd_policy(atoi(e->d_name), NUWA_FD_SHARE);
	closedir(d);
}

void ut_prepare(void)
{
	char err[256] = "";
	int r = fdremap_prepare(err, sizeof err);
	cr_assert_eq(r, 0, "fdremap_prepare: %d %s", r, err);
}

pid_t ut_child(void (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		alarm(60);
		ut_fails = 0;
		int r = fdremap_child_setup();
		UT_CHECK(r == 0, "fdremap_child_setup returned %d", r);
		if (fn)
			fn(arg);
		fflush(NULL);
		_exit(ut_fails ? 1 : 0);
	}
	return pid;
}

void ut_wait(pid_t pid)
{
	int st = 0;
	for (int i = 0; i < 60000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		cr_assert(r == 0, "waitpid: %s", strerror(errno));
		usleep(1000);
		if (i == 59999) {
			kill(pid, SIGKILL);
			cr_assert_fail("child %d did not finish", (int)pid);
		}
	}
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed (status 0x%x)", (int)pid, st);
}

unsigned long ut_ino(int fd)
{
	struct stat st;
	return fstat(fd, &st) ? 0 : st.st_ino;
}

int ut_same_file(int a, int b)
{
	return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, a, b) == 0;
}

int ut_fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }
int ut_cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }
int ut_flags(int fd) { return fcntl(fd, F_GETFL); }

void ut_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

int ut_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory itself */
}

char *ut_fdinfo(int fd)
{
	static char buf[65536];
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
	int f = open(p, O_RDONLY);
	ssize_t n = f < 0 ? 0 : read(f, buf, sizeof buf - 1);
	if (f >= 0)
		close(f);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

unsigned char ut_pat(size_t i, unsigned seed)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
	x ^= x >> 29;
	return (unsigned char)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

void ut_fill(unsigned char *b, size_t n, size_t off, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = ut_pat(off + i, seed);
}

int ut_write_all(int fd, const void *b, size_t n)
{
	const char *p = b;
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0)
			return -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int ut_read_pattern(int fd, size_t n, unsigned seed)
{
	static unsigned char buf[1 << 16];
	size_t got = 0;
	while (got < n) {
		size_t want = n - got < sizeof buf ? n - got : sizeof buf;
		ssize_t r = read(fd, buf, want);
		if (r <= 0) {
			fprintf(stderr, "[%d] fd %d: read %zd (%s) after %zu of %zu bytes\n",
				(int)getpid(), fd, r, r < 0 ? strerror(errno) : "EOF", got, n);
			return 0;
		}
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != ut_pat(got + (size_t)i, seed)) {
				fprintf(stderr, "[%d] fd %d: byte %zu differs\n", (int)getpid(), fd, got + (size_t)i);
				return 0;
			}
		got += (size_t)r;
	}
	char extra;
	ssize_t r = read(fd, &extra, 1);
	if (r != -1 || errno != EAGAIN) {
		fprintf(stderr, "[%d] fd %d: more than %zu bytes queued (read %zd)\n", (int)getpid(), fd, n, r);
		return 0;
	}
	return 1;
}
