/* Fortified and inlined entry points of the blocking calls.
 *
 * Programs built with -D_FORTIFY_SOURCE (Debian builds everything with =2)
 * do not call read(), recv(), poll(), fgets() … when the compiler knows the
 * size of the buffer but not the length asked for: the inline wrappers of
 * <bits/unistd.h>, <bits/socket2.h>, <bits/poll2.h>, <bits/stdio2.h> and
 * <bits/wchar2.h> call glibc's __*_chk functions instead, which check the
 * length against the buffer, abort on an overflow and then call the
 * internal function (never the public symbol libnuwa interposes).  With
 * optimisation, <bits/stdio.h>'s extern inlines also turn getline() into
 * __getdelim() and getc_unlocked()/getchar_unlocked()/fgetc_unlocked() into
 * a buffer test plus __uflow().  These are all of glibc 2.36's exported
 * fortified or inline-only entry points that can block (nm -D libc.so.6 |
 * grep _chk: the others copy, format or write).
 *
 * Each wrapper is the public call's freeze point: publish idle, call the
 * real __*_chk (so an overflow still aborts, before anything is read),
 * clear; calls the kernel does not restart after a handler retry on
 * libnuwa's EINTR with the time left (retry.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <wchar.h>

#include "retry.h"

/* libnuwa is built with -U_FORTIFY_SOURCE: no header declares these. */
ssize_t __read_chk(int, void *, size_t, size_t);
ssize_t __pread_chk(int, void *, size_t, off_t, size_t);
ssize_t __pread64_chk(int, void *, size_t, off64_t, size_t);
ssize_t __recv_chk(int, void *, size_t, size_t, int);
ssize_t __recvfrom_chk(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
int __poll_chk(struct pollfd *, nfds_t, int, size_t);
int __ppoll_chk(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
char *__fgets_chk(char *, size_t, int, FILE *);
char *__fgets_unlocked_chk(char *, size_t, int, FILE *);
wchar_t *__fgetws_chk(wchar_t *, size_t, int, FILE *);
wchar_t *__fgetws_unlocked_chk(wchar_t *, size_t, int, FILE *);
size_t __fread_chk(void *, size_t, size_t, size_t, FILE *);
size_t __fread_unlocked_chk(void *, size_t, size_t, size_t, FILE *);
char *__gets_chk(char *, size_t);

REAL_DECL(ssize_t, __read_chk, (int, void *, size_t, size_t));
REAL_DECL(ssize_t, __pread_chk, (int, void *, size_t, off_t, size_t));
REAL_DECL(ssize_t, __pread64_chk, (int, void *, size_t, off64_t, size_t));
REAL_DECL(ssize_t, __recv_chk, (int, void *, size_t, size_t, int));
REAL_DECL(ssize_t, __recvfrom_chk, (int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *));
REAL_DECL(int, __poll_chk, (struct pollfd *, nfds_t, int, size_t));
REAL_DECL(int, __ppoll_chk, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t));
REAL_DECL(char *, __fgets_chk, (char *, size_t, int, FILE *));
REAL_DECL(char *, __fgets_unlocked_chk, (char *, size_t, int, FILE *));
REAL_DECL(wchar_t *, __fgetws_chk, (wchar_t *, size_t, int, FILE *));
REAL_DECL(wchar_t *, __fgetws_unlocked_chk, (wchar_t *, size_t, int, FILE *));
REAL_DECL(size_t, __fread_chk, (void *, size_t, size_t, size_t, FILE *));
REAL_DECL(size_t, __fread_unlocked_chk, (void *, size_t, size_t, size_t, FILE *));
REAL_DECL(char *, __gets_chk, (char *, size_t));
REAL_DECL(ssize_t, __getdelim, (char **, size_t *, int, FILE *));
REAL_DECL(int, __uflow, (FILE *));

/* ---- descriptors: as read/recv/poll in io.c and poll.c ---- */

NUWA_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	return FP_RETRY(FP_READ, REAL(__read_chk)(fd, buf, n, buflen));
}

NUWA_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	return FP_RETRY(FP_READ, REAL(__pread_chk)(fd, buf, n, off, buflen));
}

NUWA_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen)
{
	return FP_RETRY(FP_READ, REAL(__pread64_chk)(fd, buf, n, off, buflen));
}

NUWA_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	return FP_RETRY(FP_RECV, REAL(__recv_chk)(fd, buf, n, buflen, flags));
}

NUWA_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                   struct sockaddr *a, socklen_t *al)
{
	return FP_RETRY(FP_RECV, REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, a, al));
}

/* poll and ppoll return EINTR after any handler (-ERESTARTNOHAND,
 * -ERESTART_RESTARTBLOCK): retried with the time left. */
NUWA_EXPORT int __poll_chk(struct pollfd *f, nfds_t n, int timeout, size_t flen)
{
	return FP_RETRY_MS(FP_POLL, timeout, REAL(__poll_chk)(f, n, timeout, flen));
}

NUWA_EXPORT int __ppoll_chk(struct pollfd *f, nfds_t n, const struct timespec *t,
                            const sigset_t *mask, size_t flen)
{
	sigset_t mbuf;
	const sigset_t *m = fp_wait_mask(mask, &mbuf);
	return FP_RETRY_TIMED(FP_PPOLL, t, REAL(__ppoll_chk)(f, n, FP_LEFT, m, flen));
}

/* ---- stdio: the read(2) underneath restarts (SA_RESTART); as in io.c,
 * these only publish idle ---- */
#define STDIO_FP(call) ({ fp_enter(FP_STDIO_READ); __typeof__(call) r_ = (call); fp_leave(); r_; })

NUWA_EXPORT char *__fgets_chk(char *s, size_t sz, int n, FILE *f)
{
	return STDIO_FP(REAL(__fgets_chk)(s, sz, n, f));
}

NUWA_EXPORT char *__fgets_unlocked_chk(char *s, size_t sz, int n, FILE *f)
{
	return STDIO_FP(REAL(__fgets_unlocked_chk)(s, sz, n, f));
}

NUWA_EXPORT wchar_t *__fgetws_chk(wchar_t *s, size_t sz, int n, FILE *f)
{
	return STDIO_FP(REAL(__fgetws_chk)(s, sz, n, f));
}

NUWA_EXPORT wchar_t *__fgetws_unlocked_chk(wchar_t *s, size_t sz, int n, FILE *f)
{
	return STDIO_FP(REAL(__fgetws_unlocked_chk)(s, sz, n, f));
}

NUWA_EXPORT size_t __fread_chk(void *p, size_t plen, size_t sz, size_t n, FILE *f)
{
	return STDIO_FP(REAL(__fread_chk)(p, plen, sz, n, f));
}

NUWA_EXPORT size_t __fread_unlocked_chk(void *p, size_t plen, size_t sz, size_t n, FILE *f)
{
	return STDIO_FP(REAL(__fread_unlocked_chk)(p, plen, sz, n, f));
}

NUWA_EXPORT char *__gets_chk(char *s, size_t sz)
{
	return STDIO_FP(REAL(__gets_chk)(s, sz));
}

/* getline() at -O2 (<bits/stdio.h>: getline is an inline __getdelim call). */
NUWA_EXPORT ssize_t __getdelim(char **restrict l, size_t *restrict n, int d, FILE *restrict f)
{
	return STDIO_FP(REAL(__getdelim)(l, n, d, f));
}

/* getc_unlocked() and friends at -O2 call __uflow() when the buffer is
 * empty (<bits/types/struct_FILE.h> __getc_unlocked_body).  glibc's own
 * callers reach it through a hidden alias, never through this symbol. */
NUWA_EXPORT int __uflow(FILE *f)
{
	return STDIO_FP(REAL(__uflow)(f));
}
