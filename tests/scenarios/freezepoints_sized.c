/* freezepoints_sized.c — blocking calls whose length the compiler cannot
 * see (a volatile), into buffers whose size it can.  Built plain they are
 * the public functions; built with -O2 -D_FORTIFY_SOURCE=2 or =3 the
 * inline wrappers of glibc's headers turn them into __read_chk,
 * __recv_chk, __recvfrom_chk, __poll_chk, __ppoll_chk, __fgets_chk,
 * __fgets_unlocked_chk, __fread_chk, __fread_unlocked_chk, __fgetws_chk,
 * and the -O2 inlines getline into __getdelim, getc_unlocked into __uflow
 * (tests/core/test_freezepoints.c checks the imports).  Each is woken like
 * its unsized sibling in freezepoints_calls.c: EOF on stdin, or main's
 * shutdown of the socketpair. */
#include "freezepoints.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

static volatile size_t len1 = 1;     /* lengths the compiler cannot see */
static volatile int len64 = 64;
static volatile nfds_t nfds1 = 1;

static void want(struct fp *f, long r, long w)
{
	if (r != w)
		scn_fail("%s returned %ld (want %ld): %s", f->name, r, w,
		         r < 0 ? strerror(errno) : "-");
}

static FILE *stdin_copy(void)
{
	FILE *in = fdopen(dup(0), "r");
	if (!in)
		scn_fail("fdopen: %s", strerror(errno));
	return in;
}

static void eof_check(struct fp *f, FILE *in, int got_eof)
{
	if (!got_eof || !feof(in))
		scn_fail("%s: no clean EOF (error=%d)", f->name, ferror(in));
}

void fp_read_sized(struct fp *f)
{
	char buf[64];
	int fd = dup(0);
	f->entered = 1;
	want(f, read(fd, buf, len1), 0);
}
void fp_recv_sized(struct fp *f)
{
	char buf[64];
	f->entered = 1;
	want(f, recv(sp_recv[0], buf, len1, 0), 0);
}
void fp_recvfrom_sized(struct fp *f)
{
	char buf[64];
	f->entered = 1;
	want(f, recvfrom(sp_recvfrom[0], buf, len1, 0, NULL, NULL), 0);
}
void fp_poll_sized(struct fp *f)
{
	struct pollfd p[2] = { { .fd = 0, .events = POLLIN } };
	f->entered = 1;
	want(f, poll(p, nfds1, -1), 1);
}
void fp_ppoll_sized(struct fp *f)
{
	struct pollfd p[2] = { { .fd = 0, .events = POLLIN } };
	f->entered = 1;
	want(f, ppoll(p, nfds1, NULL, NULL), 1);
}
void fp_fgets_sized(struct fp *f)
{
	char line[64];
	FILE *in = stdin_copy();
	f->entered = 1;
	eof_check(f, in, fgets(line, len64, in) == NULL);
}
void fp_fgets_unlocked_sized(struct fp *f)
{
	char line[64];
	FILE *in = stdin_copy();
	f->entered = 1;
	eof_check(f, in, fgets_unlocked(line, len64, in) == NULL);
}
void fp_fread_sized(struct fp *f)
{
	char buf[64];
	FILE *in = stdin_copy();
	f->entered = 1;
	eof_check(f, in, fread(buf, 1, len1, in) == 0);
}
void fp_fread_unlocked_sized(struct fp *f)
{
	char buf[64];
	FILE *in = stdin_copy();
	f->entered = 1;
	eof_check(f, in, fread_unlocked(buf, 1, len1, in) == 0);
}
void fp_fgetws_sized(struct fp *f)
{
	wchar_t line[16];
	FILE *in = stdin_copy();
	f->entered = 1;
	eof_check(f, in, fgetws(line, len64 / 4, in) == NULL);
}
void fp_fgetwc(struct fp *f)
{
	FILE *in = stdin_copy();
	f->entered = 1;
	eof_check(f, in, fgetwc(in) == WEOF);
}
void fp_getline(struct fp *f)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *in = stdin_copy();
	f->entered = 1;
	eof_check(f, in, getline(&line, &cap, in) == -1);
	free(line);
}
void fp_getc_unlocked(struct fp *f)
{
	FILE *in = stdin_copy();
	f->entered = 1;
	eof_check(f, in, getc_unlocked(in) == EOF);
}

/* pread cannot block on a pipe or socket (ESPIPE): check in setup that the
 * sized pread and pread64 (__pread_chk, __pread64_chk) read what is there. */
void sized_pread_check(void)
{
	char path[64], buf[64] = { 0 };
	snprintf(path, sizeof path, "/tmp/nuwa-scn-fp-pread-%d", (int)getpid());
	FILE *w = fopen(path, "w");
	if (!w || fputs("0123456789", w) < 0 || fclose(w))
		scn_fail("pread file: %s", strerror(errno));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	if (pread(fd, buf, len1 + 2, 4) != 3 || memcmp(buf, "456", 3))
		scn_fail("pread: want \"456\", got \"%s\"", buf);
	if (pread64(fd, buf, len1 + 1, 8) != 2 || memcmp(buf, "89", 2))
		scn_fail("pread64: want \"89\", got \"%.2s\"", buf);
	close(fd);
}

/* `freezepoints overflow`: a read longer than its buffer.  A fortified
 * build must abort in __read_chk ("buffer overflow detected") before
 * reading, libnuwa preloaded or not. */
void sized_overflow(void)
{
	char buf[8];
	volatile size_t n = sizeof buf * 2;
	long r = read(0, buf, n);
	scn_out("overflow: read returned %ld, no abort\n", r);
}
