/* Unit tests of fdremap without the core: the test binary links the fdremap
 * sources and interpose/fd.c with tiny stubs (stubs.c) and plays the core's
 * part itself: set up channels, fdremap_prepare(), fork(), the child runs
 * fdremap_child_setup() and checks its state, the parent checks its own. */
#ifndef NUWA_FDREMAP_UT_H
#define NUWA_FDREMAP_UT_H

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "fdremap.h"
#include "nuwa.h"

/* Everything open now (criterion's own pipes and sockets) keeps the plain
 * fork() behaviour: a test only rebuilds what it creates. */
void ut_protect_existing(void);

/* fdremap_prepare() must succeed. */
void ut_prepare(void);

/* fork; the child runs fdremap_child_setup() and fn(arg), then _exits with
 * the number of failed UT_CHECKs.  Returns the pid. */
pid_t ut_child(void (*fn)(void *), void *arg);
/* wait (bounded) for a child of ut_child and assert it passed */
void ut_wait(pid_t pid);

/* checks usable in children (and parents): print and count */
extern int ut_fails;
#define UT_CHECK(cond, ...) do { if (!(cond)) { ut_fails++; \
	fprintf(stderr, "[%d] %s:%d: check failed: %s: ", (int)getpid(), __FILE__, __LINE__, #cond); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

unsigned long ut_ino(int fd);
int  ut_same_file(int a, int b);            /* kcmp KCMP_FILE in this process */
int  ut_fd_open(int fd);
int  ut_cloexec(int fd);
int  ut_flags(int fd);                       /* F_GETFL */
void ut_nonblock(int fd, int on);
int  ut_count_fds(void);
char *ut_fdinfo(int fd);                     /* static buffer */
unsigned char ut_pat(size_t i, unsigned seed);
void ut_fill(unsigned char *b, size_t n, size_t off, unsigned seed);
/* read exactly n bytes that must match the pattern, then EAGAIN (fd non-blocking) */
int  ut_read_pattern(int fd, size_t n, unsigned seed);
int  ut_write_all(int fd, const void *b, size_t n);

/* log lines the stubbed nuwa_log received */
extern char ut_log[65536];
void ut_log_clear(void);

#endif
