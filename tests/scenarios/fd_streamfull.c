/* fd_streamfull — full unix stream queues stay full in clones.
 *
 * A unix stream sender is charged each skb's truesize and gets EAGAIN once
 * the charge reaches its send buffer, so whether a queue is full depends on
 * the sizes it was written in.  Before READY, socketpairs (all non-blocking):
 *  - filled to EAGAIN with writes of 1, 100, 4096 and 65536 bytes;
 *  - filled with 65536-byte writes, then 10 bytes read (the first skb is
 *    still charged in full: still full);
 *  - a 4096-byte send buffer (8192 read back) filled with 1000-byte writes;
 *  - filled with 4096-byte writes, the 21st with a pipe's end in flight
 *    (SCM_RIGHTS, past the first 64 KiB);
 *  - filled with 4096-byte writes, then 8192 bytes read: room again.
 * After EOF every process (original and clones): a full pair takes no
 * 1-byte send (EAGAIN), the pair with room takes one, every byte arrives
 * exactly once, in order (with the extra byte last), and the descriptor in
 * flight arrives once, open.
 */
#include "scn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>

enum { NPAIR = 8, ROOM = NPAIR - 1 };
static const struct { const char *name; size_t chunk; int sndbuf; size_t consumed; int fdat; } spec[NPAIR] = {
	{ "1-byte writes", 1, 0, 0, 0 },
	{ "100-byte writes", 100, 0, 0, 0 },
	{ "4096-byte writes", 4096, 0, 0, 0 },
	{ "65536-byte writes", 65536, 0, 0, 0 },
	{ "65536-byte writes, 10 read", 65536, 0, 10, 0 },
	{ "1000-byte writes, small buffer", 1000, 4096, 0, 0 },
	{ "4096-byte writes, a descriptor in flight", 4096, 0, 0, 21 },
	{ "4096-byte writes, 8192 read", 4096, 0, 8192, 0 },
};
static int sp[NPAIR][2];
static size_t queued[NPAIR];     /* bytes written */
static int fdsgot[NPAIR];        /* descriptors received */
static int passed[2];            /* the pipe whose write end is in flight */

/* write(2), or sendmsg(2) with passed[1] in flight */
static ssize_t put(int fd, const void *b, size_t n, int withfd)
{
	if (!withfd)
		return write(fd, b, n);
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cb;
	struct iovec iov = { (void *)b, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof cb };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &passed[1], sizeof(int));
	return sendmsg(fd, &mh, 0);
}

static unsigned char pat(size_t i, unsigned seed)
{
	return (unsigned char)(scn_mix((uint64_t)i * 131 + seed) >> 24);
}

static void fill(int k)
{
	static unsigned char buf[65536];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp[k])) {
		scn_fail("socketpair: %s", strerror(errno));
		return;
	}
	if (spec[k].sndbuf && setsockopt(sp[k][0], SOL_SOCKET, SO_SNDBUF, &spec[k].sndbuf, sizeof(int)))
		scn_fail("%s: SO_SNDBUF: %s", spec[k].name, strerror(errno));
	for (int n = 1;; n++) {
		for (size_t i = 0; i < spec[k].chunk; i++)
			buf[i] = pat(queued[k] + i, (unsigned)k);
		ssize_t r = put(sp[k][0], buf, spec[k].chunk, n == spec[k].fdat);
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0) {
			scn_fail("%s: write: %s", spec[k].name, strerror(errno));
			return;
		}
		queued[k] += (size_t)r;
	}
	if (queued[k] == 0 || queued[k] < spec[k].chunk * (size_t)spec[k].fdat)
		scn_fail("%s: %zu bytes written", spec[k].name, queued[k]);
}

/* Read n bytes (all that is queued when all is set) and check them. */
static size_t take(int k, size_t from, size_t n, int all)
{
	static unsigned char buf[65536];
	size_t got = 0;
	while (got < n || all) {
		size_t want = n - got < sizeof buf ? n - got : sizeof buf;
		union { struct cmsghdr h; char b[CMSG_SPACE(4 * sizeof(int))]; } cb;
		struct iovec iov = { buf, all ? sizeof buf : want };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof cb };
		ssize_t r = recvmsg(sp[k][1], &mh, MSG_CMSG_CLOEXEC);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); r > 0 && c; c = CMSG_NXTHDR(&mh, c))
			for (size_t j = 0; c->cmsg_type == SCM_RIGHTS && j < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); j++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof fd);
				if (fcntl(fd, F_GETFD) < 0)
					scn_fail("%s: the descriptor in flight is not open", spec[k].name);
				close(fd);
				fdsgot[k]++;
			}
		if (r < 0 && errno == EAGAIN && all)
			break;
		if (r <= 0) {
			scn_fail("%s: read %zd (%s) after %zu bytes", spec[k].name, r, r ? strerror(errno) : "EOF", got);
			break;
		}
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pat(from + got + (size_t)i, (unsigned)k)) {
				scn_fail("%s: byte %zu differs", spec[k].name, from + got + (size_t)i);
				return got;
			}
		got += (size_t)r;
	}
	return got;
}

static void check(int k)
{
	unsigned char extra = pat(queued[k], (unsigned)k);
	ssize_t r = send(sp[k][0], &extra, 1, MSG_DONTWAIT);
	size_t want = queued[k] - spec[k].consumed;
	if (k == ROOM) {
		if (r != 1)
			scn_fail("%s: the pair with room took no byte: %zd (%s)", spec[k].name, r, strerror(errno));
		want += r == 1;
	} else if (r != -1 || errno != EAGAIN) {
		scn_fail("%s: a full socket took %zd more bytes (%s)", spec[k].name, r, r < 0 ? strerror(errno) : "no EAGAIN");
		want += r > 0 ? (size_t)r : 0;
	}
	size_t got = take(k, spec[k].consumed, 0, 1);
	if (got != want)
		scn_fail("%s: read %zu bytes, want exactly %zu", spec[k].name, got, want);
	if (fdsgot[k] != (spec[k].fdat > 0))
		scn_fail("%s: %d descriptors arrived, want %d", spec[k].name, fdsgot[k], spec[k].fdat > 0);
}

int main(void)
{
	scn_init();
	if (pipe2(passed, O_CLOEXEC))
		scn_fail("pipe: %s", strerror(errno));
	for (int k = 0; k < NPAIR; k++) {
		fill(k);
		if (spec[k].consumed && take(k, 0, spec[k].consumed, 0) != spec[k].consumed)
			scn_fail("%s: could not read %zu bytes", spec[k].name, spec[k].consumed);
	}
	for (int k = 0; k < NPAIR; k++) {   /* the next byte of the pattern */
		unsigned char x = pat(queued[k], (unsigned)k);
		ssize_t r = send(sp[k][0], &x, 1, MSG_DONTWAIT);
		queued[k] += r == 1;
		if ((r == 1) != (k == ROOM))
			scn_fail("%s: set-up: the template is %s", spec[k].name, k == ROOM ? "full" : "not full");
	}
	scn_ready();
	scn_wait_eof();
	scn_watchdog(60);
	scn_phase("checking queues");
	for (int k = 0; k < NPAIR; k++)
		check(k);
	return scn_finish();
}
