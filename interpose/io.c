/* Blocking I/O freeze points: reads, accepts, waits for children, file
 * locks, stdio reads.  With SA_RESTART (libnuwa's handlers use it) most of
 * these restart by themselves; FP_RETRY covers the ones the kernel does not
 * restart (socket timeouts, recvmmsg) and any EINTR caused by us. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "retry.h"

REAL_DECL(ssize_t, read, (int, void *, size_t));
REAL_DECL(ssize_t, readv, (int, const struct iovec *, int));
REAL_DECL(ssize_t, pread, (int, void *, size_t, off_t));
REAL_DECL(ssize_t, pread64, (int, void *, size_t, off_t));
REAL_DECL(ssize_t, recv, (int, void *, size_t, int));
REAL_DECL(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *, socklen_t *));
REAL_DECL(ssize_t, recvmsg, (int, struct msghdr *, int));
REAL_DECL(int, recvmmsg, (int, struct mmsghdr *, unsigned int, int, struct timespec *));
REAL_DECL(int, accept, (int, struct sockaddr *, socklen_t *));
REAL_DECL(int, accept4, (int, struct sockaddr *, socklen_t *, int));
REAL_DECL(pid_t, wait, (int *));
REAL_DECL(pid_t, waitpid, (pid_t, int *, int));
REAL_DECL(int, waitid, (idtype_t, id_t, siginfo_t *, int));
REAL_DECL(pid_t, wait3, (int *, int, struct rusage *));
REAL_DECL(pid_t, wait4, (pid_t, int *, int, struct rusage *));
REAL_DECL(int, flock, (int, int));
/* <fcntl.h> may redirect fcntl to fcntl64: name both symbols explicitly. */
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);
REAL_DECL(char *, fgets, (char *, int, FILE *));
REAL_DECL(int, fgetc, (FILE *));
REAL_DECL(int, getc, (FILE *));
REAL_DECL(int, getchar, (void));
REAL_DECL(size_t, fread, (void *, size_t, size_t, FILE *));
REAL_DECL(ssize_t, getdelim, (char **, size_t *, int, FILE *));
REAL_DECL(ssize_t, getline, (char **, size_t *, FILE *));

NUWA_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	return FP_RETRY(FP_READ, REAL(read)(fd, buf, n));
}

NUWA_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	return FP_RETRY(FP_READ, REAL(readv)(fd, iov, cnt));
}

/* pread: a disk read, or a FUSE/NFS file that does not answer.  The build
 * has _FILE_OFFSET_BITS=64, which renames pread to pread64 in <unistd.h>:
 * name both symbols explicitly (on x86-64 both take a 64-bit offset). */
NUWA_EXPORT ssize_t nuwa_wrap_pread(int fd, void *buf, size_t n, off_t off) __asm__("pread");
NUWA_EXPORT ssize_t nuwa_wrap_pread(int fd, void *buf, size_t n, off_t off)
{
	return FP_RETRY(FP_READ, REAL(pread)(fd, buf, n, off));
}

NUWA_EXPORT ssize_t nuwa_wrap_pread64(int fd, void *buf, size_t n, off_t off) __asm__("pread64");
NUWA_EXPORT ssize_t nuwa_wrap_pread64(int fd, void *buf, size_t n, off_t off)
{
	return FP_RETRY(FP_READ, REAL(pread64)(fd, buf, n, off));
}

NUWA_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	return FP_RETRY(FP_RECV, REAL(recv)(fd, buf, n, flags));
}

NUWA_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al)
{
	return FP_RETRY(FP_RECV, REAL(recvfrom)(fd, buf, n, flags, a, al));
}

NUWA_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	return FP_RETRY(FP_RECV, REAL(recvmsg)(fd, m, flags));
}

NUWA_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *t)
{
	return FP_RETRY(FP_RECV, REAL(recvmmsg)(fd, v, n, flags, t));
}

NUWA_EXPORT int accept(int fd, struct sockaddr *a, socklen_t *al)
{
	return FP_RETRY(FP_ACCEPT, REAL(accept)(fd, a, al));
}

NUWA_EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *al, int flags)
{
	return FP_RETRY(FP_ACCEPT, REAL(accept4)(fd, a, al, flags));
}

NUWA_EXPORT pid_t wait(int *st)
{
	return FP_RETRY(FP_WAIT, REAL(wait)(st));
}

NUWA_EXPORT pid_t waitpid(pid_t p, int *st, int opt)
{
	return FP_RETRY(FP_WAIT, REAL(waitpid)(p, st, opt));
}

NUWA_EXPORT int waitid(idtype_t t, id_t id, siginfo_t *si, int opt)
{
	return FP_RETRY(FP_WAIT, REAL(waitid)(t, id, si, opt));
}

NUWA_EXPORT pid_t wait3(int *st, int opt, struct rusage *ru)
{
	return FP_RETRY(FP_WAIT, REAL(wait3)(st, opt, ru));
}

NUWA_EXPORT pid_t wait4(pid_t p, int *st, int opt, struct rusage *ru)
{
	return FP_RETRY(FP_WAIT, REAL(wait4)(p, st, opt, ru));
}

NUWA_EXPORT int flock(int fd, int op)
{
	return FP_RETRY(FP_FLOCK, REAL(flock)(fd, op));
}

static int is_lock_wait(int cmd)
{
	return cmd == F_SETLKW || cmd == F_OFD_SETLKW;
}

/* The third argument is an int or a pointer: on x86-64 both travel in the
 * same register, so passing it on as a pointer is exact (glibc does so). */
NUWA_EXPORT int nuwa_wrap_fcntl(int fd, int cmd, ...) __asm__("fcntl");
NUWA_EXPORT int nuwa_wrap_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (likely(!is_lock_wait(cmd)))
		return REAL(fcntl)(fd, cmd, arg);
	return FP_RETRY(FP_FCNTL_LOCK, REAL(fcntl)(fd, cmd, arg));
}

NUWA_EXPORT int nuwa_wrap_fcntl64(int fd, int cmd, ...) __asm__("fcntl64");
NUWA_EXPORT int nuwa_wrap_fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (likely(!is_lock_wait(cmd)))
		return REAL(fcntl64)(fd, cmd, arg);
	return FP_RETRY(FP_FCNTL_LOCK, REAL(fcntl64)(fd, cmd, arg));
}

/* stdio reads reach read(2) through glibc's hidden aliases, never through
 * our read(): wrap the public entry points for "idle" only. */
#define STDIO_FP(call) ({ fp_enter(FP_STDIO_READ); __typeof__(call) r_ = (call); fp_leave(); r_; })

NUWA_EXPORT char *fgets(char *s, int n, FILE *f) { return STDIO_FP(REAL(fgets)(s, n, f)); }
NUWA_EXPORT int fgetc(FILE *f) { return STDIO_FP(REAL(fgetc)(f)); }
NUWA_EXPORT int getc(FILE *f) { return STDIO_FP(REAL(getc)(f)); }
NUWA_EXPORT int getchar(void) { return STDIO_FP(REAL(getchar)()); }
NUWA_EXPORT size_t fread(void *p, size_t sz, size_t n, FILE *f) { return STDIO_FP(REAL(fread)(p, sz, n, f)); }
NUWA_EXPORT ssize_t getdelim(char **l, size_t *n, int d, FILE *f) { return STDIO_FP(REAL(getdelim)(l, n, d, f)); }
NUWA_EXPORT ssize_t getline(char **l, size_t *n, FILE *f) { return STDIO_FP(REAL(getline)(l, n, f)); }
