/* fd_channels — data in flight and self-pipe wake-ups across clones.
 *
 * Before READY: a pipe and a stream socketpair with 100 KiB queued, a dgram
 * socketpair with 50 datagrams and a seqpacket pair with 50 records of
 * varied sizes, an eventfd (count 5) and a semaphore eventfd (count 3).  A
 * second thread waits in read() on a self-pipe and answers each wake-up
 * byte on an ack pipe.  After EOF every process (original and clones):
 *  - reads exactly the queued data, in order, once;
 *  - does 10 000 wake-up round trips; each answer must carry its own byte
 *    (a clone that shared the pipes would steal or receive foreign bytes).
 */
#include "scn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#define BIG (100 * 1024)
static int qpipe[2], qstream[2], qdgram[2], qseq[2], efd, sem;
static int wake[2], ack[2];

static unsigned char pat(size_t i, unsigned seed)
{
	uint64_t x = scn_mix((uint64_t)i * 131 + seed);
	return (unsigned char)(x >> 24);
}
static int rsize(int i) { return 1 + (i * 977) % 3000; }

static void *waiter(void *arg)
{
	(void)arg;
	for (;;) {
		unsigned char b;
		ssize_t r = read(wake[0], &b, 1);
		if (r != 1) {
			scn_fail("waiter: read %zd: %s", r, strerror(errno));
			return NULL;
		}
		if (b == 0)
			return NULL;
		if (write(ack[1], &b, 1) != 1)
			scn_fail("waiter: ack: %s", strerror(errno));
	}
}

static void write_all(int fd, const unsigned char *b, size_t n)
{
	while (n) {
		ssize_t r = write(fd, b, n);
		if (r <= 0) {
			scn_fail("queueing: %s", strerror(errno));
			return;
		}
		b += r;
		n -= (size_t)r;
	}
}

static void check_bytes(const char *what, int fd, size_t n, unsigned seed)
{
	static unsigned char buf[BIG];
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf, n - got);
		if (r <= 0) {
			scn_fail("%s: read %zd (%s) after %zu of %zu bytes", what, r, r ? strerror(errno) : "EOF", got, n);
			return;
		}
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pat(got + (size_t)i, seed)) {
				scn_fail("%s: byte %zu differs", what, got + (size_t)i);
				return;
			}
		got += (size_t)r;
	}
	if (read(fd, buf, 1) != -1 || errno != EAGAIN)
		scn_fail("%s: more than %zu bytes queued", what, n);
}

static void check_records(const char *what, int fd, unsigned seed)
{
	unsigned char buf[4096];
	for (int i = 0; i < 50; i++) {
		ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r != rsize(i)) {
			scn_fail("%s: record %d has %zd bytes, want %d", what, i, r, rsize(i));
			return;
		}
		for (ssize_t k = 0; k < r; k++)
			if (buf[k] != pat((size_t)k, seed + (unsigned)i)) {
				scn_fail("%s: record %d differs", what, i);
				return;
			}
	}
	if (recv(fd, buf, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
		scn_fail("%s: more than 50 records", what);
}

int main(void)
{
	scn_init();
	static unsigned char buf[BIG];
	if (pipe2(qpipe, O_NONBLOCK) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, qstream) ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, qdgram) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, qseq) || pipe(wake) || pipe(ack))
		scn_fail("setup: %s", strerror(errno));
	fcntl(qpipe[0], F_SETPIPE_SZ, 256 * 1024);
	int big = 1 << 20;
	setsockopt(qstream[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	for (size_t i = 0; i < BIG; i++)
		buf[i] = pat(i, 1);
	write_all(qpipe[1], buf, BIG);
	for (size_t i = 0; i < BIG; i++)
		buf[i] = pat(i, 2);
	for (size_t off = 0; off < BIG; off += 8192)
		write_all(qstream[0], buf + off, BIG - off < 8192 ? BIG - off : 8192);
	for (int i = 0; i < 50; i++) {
		for (int k = 0; k < rsize(i); k++)
			buf[k] = pat((size_t)k, 100 + (unsigned)i);
		if (send(qdgram[0], buf, (size_t)rsize(i), 0) != rsize(i))
			scn_fail("dgram %d: %s", i, strerror(errno));
		for (int k = 0; k < rsize(i); k++)
			buf[k] = pat((size_t)k, 300 + (unsigned)i);
		if (send(qseq[0], buf, (size_t)rsize(i), 0) != rsize(i))
			scn_fail("seqpacket %d: %s", i, strerror(errno));
	}
	efd = eventfd(5, EFD_NONBLOCK);
	sem = eventfd(3, EFD_NONBLOCK | EFD_SEMAPHORE);
	pthread_t t = scn_thread(waiter, NULL);
	scn_ready();
	scn_wait_eof();
	scn_watchdog(60);

	scn_phase("queued data");
	check_bytes("pipe", qpipe[0], BIG, 1);
	check_bytes("stream", qstream[1], BIG, 2);
	check_records("dgram", qdgram[1], 100);
	check_records("seqpacket", qseq[1], 300);
	uint64_t v = 0;
	if (read(efd, &v, 8) != 8 || v != 5)
		scn_fail("eventfd: %llu, want 5", (unsigned long long)v);
	for (int i = 0; i < 3; i++)
		if (read(sem, &v, 8) != 8 || v != 1)
			scn_fail("semaphore read %d", i);
	if (read(sem, &v, 8) != -1)
		scn_fail("semaphore: more than 3");

	scn_phase("wake-ups");
	unsigned char mine = (unsigned char)(1 + getpid() % 250);
	for (int i = 0; i < 10000 && !scn_failed(); i++) {
		unsigned char b;
		if (write(wake[1], &mine, 1) != 1 || read(ack[0], &b, 1) != 1) {
			scn_fail("wake-up %d: %s", i, strerror(errno));
			break;
		}
		if (b != mine)
			scn_fail("wake-up %d answered with another process's byte %u (mine %u)", i, b, mine);
	}
	unsigned char zero = 0;
	if (write(wake[1], &zero, 1) != 1)
		scn_fail("stop: %s", strerror(errno));
	scn_join(t, "waiter");
	return scn_finish();
}
