/* Pipes and unix socketpairs: same numbers and flags, own channel in the
 * child, queued data present exactly once in parent and child. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "ut.h"

#define KIB100 (100 * 1024)

struct pipe_case { int r, w, alias; unsigned long ino; };

static void pipe_child(void *arg)
{
	struct pipe_case *c = arg;
	UT_CHECK(ut_ino(c->r) != c->ino, "child still has the parent's pipe");
	UT_CHECK(ut_ino(c->r) == ut_ino(c->w), "read and write end of different pipes");
	UT_CHECK(ut_same_file(c->r, c->alias), "alias no longer one description with fd %d", c->r);
	UT_CHECK(ut_flags(c->r) & O_NONBLOCK, "O_NONBLOCK lost on read end");
	UT_CHECK(!(ut_flags(c->w) & O_NONBLOCK), "O_NONBLOCK appeared on write end");
	UT_CHECK(!ut_cloexec(c->r) && ut_cloexec(c->w) && ut_cloexec(c->alias), "FD_CLOEXEC differs");
	UT_CHECK(fcntl(c->r, F_GETPIPE_SZ) == 256 * 1024, "pipe size %d", fcntl(c->r, F_GETPIPE_SZ));
	UT_CHECK(ut_read_pattern(c->r, KIB100, 7), "queued data");
	UT_CHECK(write(c->w, "child", 5) == 5, "write");
	char b[8];
	UT_CHECK(read(c->alias, b, 8) == 5 && !memcmp(b, "child", 5), "own wake-up");
}

Test(channels, pipe_100k_queued_aliases_flags)
{
	ut_protect_existing();
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(fcntl(p[0], F_SETPIPE_SZ, 256 * 1024), 256 * 1024);
	static unsigned char buf[KIB100];
	ut_fill(buf, sizeof buf, 0, 7);
	cr_assert_eq(ut_write_all(p[1], buf, sizeof buf), 0);
	ut_nonblock(p[0], 1);
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	struct pipe_case c = { p[0], p[1], fcntl(p[0], F_DUPFD_CLOEXEC, 40), ut_ino(p[0]) };
	ut_prepare();
	pid_t pid = ut_child(pipe_child, &c);
	fdremap_finish();
	ut_wait(pid);
	cr_assert_eq(ut_ino(p[0]), c.ino);
	cr_assert(ut_read_pattern(p[0], KIB100, 7), "parent's queued data");
}

static void packets_child(void *arg)
{
	int *p = arg;
	char m[64];
	UT_CHECK(ut_flags(p[1]) & O_DIRECT, "O_DIRECT lost on the write end");
	for (int i = 0; i < 20; i++) {
		ssize_t r = read(p[0], m, sizeof m);
		UT_CHECK(r == 1 + i * 3 && m[0] == 'a' + i, "packet %d: %zd bytes", i, r);
	}
	UT_CHECK(read(p[0], m, 1) == -1 && errno == EAGAIN, "extra packets");
}

Test(channels, packet_pipe_child)
{
	ut_protect_existing();
	int p[2];
	cr_assert_eq(pipe2(p, O_DIRECT | O_NONBLOCK), 0);
	cr_assert(fcntl(p[0], F_SETPIPE_SZ, 128 * 1024) > 0); /* a slot per packet */
	char m[64];
	for (int i = 0; i < 20; i++) {
		memset(m, 'a' + i, sizeof m);
		cr_assert_eq(write(p[1], m, 1 + i * 3), 1 + i * 3);
	}
	ut_prepare();
	pid_t pid = ut_child(packets_child, p);
	fdremap_finish();
	ut_wait(pid);
	for (int i = 0; i < 20; i++) {
		ssize_t r = read(p[0], m, sizeof m);
		cr_assert_eq(r, 1 + i * 3, "parent's packet %d has %zd bytes", i, r);
		cr_assert_eq(m[0], 'a' + i);
	}
	cr_assert_eq(read(p[0], m, 1), -1);
}

/* ---- socketpairs --------------------------------------------------------- */

struct sp_case { int sv[2]; int type; unsigned long ino0; };

static int sizes(int i) { return 1 + (i * 977) % 3000; }

static int check_records(int fd, int n, unsigned seed)
{
	static unsigned char buf[8192];
	for (int i = 0; i < n; i++) {
		ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r != sizes(i)) {
			fprintf(stderr, "[%d] record %d: %zd bytes, want %d\n", (int)getpid(), i, r, sizes(i));
			return 0;
		}
		for (ssize_t k = 0; k < r; k++)
			if (buf[k] != ut_pat((size_t)k, seed + (unsigned)i)) {
				fprintf(stderr, "[%d] record %d byte %zd differs\n", (int)getpid(), i, k);
				return 0;
			}
	}
	if (recv(fd, buf, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN) {
		fprintf(stderr, "[%d] more than %d records\n", (int)getpid(), n);
		return 0;
	}
	return 1;
}

static void stream_child(void *arg)
{
	struct sp_case *c = arg;
	UT_CHECK(ut_ino(c->sv[0]) != c->ino0, "child still has the parent's socket");
	int t = 0;
	socklen_t l = sizeof t;
	getsockopt(c->sv[0], SOL_SOCKET, SO_TYPE, &t, &l);
	UT_CHECK(t == c->type, "type %d", t);
	if (c->type == SOCK_STREAM) {
		UT_CHECK(ut_read_pattern(c->sv[1], KIB100, 11), "queued 0->1");
		UT_CHECK(ut_read_pattern(c->sv[0], 5000, 12), "queued 1->0");
	} else {
		UT_CHECK(check_records(c->sv[1], 50, 100), "records 0->1");
		UT_CHECK(check_records(c->sv[0], 3, 200), "records 1->0");
	}
	UT_CHECK(send(c->sv[0], "x", 1, 0) == 1, "send");
	char b;
	UT_CHECK(recv(c->sv[1], &b, 1, MSG_DONTWAIT) == 1 && b == 'x', "own message");
}

static void socketpair_case(int type)
{
	ut_protect_existing();
	struct sp_case c = { .type = type };
	cr_assert_eq(socketpair(AF_UNIX, type | SOCK_NONBLOCK, 0, c.sv), 0);
	int big = 1 << 20;
	setsockopt(c.sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	setsockopt(c.sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	if (type == SOCK_STREAM) {
		static unsigned char buf[KIB100];
		ut_fill(buf, sizeof buf, 0, 11);
		/* in several writes, so the queue holds many skbs */
		for (size_t off = 0; off < sizeof buf; off += 10000) {
			size_t n = sizeof buf - off < 10000 ? sizeof buf - off : 10000;
			cr_assert_eq(ut_write_all(c.sv[0], buf + off, n), 0, "queueing 100 KiB");
		}
		ut_fill(buf, 5000, 0, 12);
		cr_assert_eq(ut_write_all(c.sv[1], buf, 5000), 0);
	} else {
		unsigned char buf[4096];
		for (int i = 0; i < 50; i++) {
			ut_fill(buf, (size_t)sizes(i), 0, 100 + (unsigned)i);
			cr_assert_eq(send(c.sv[0], buf, (size_t)sizes(i), 0), sizes(i), "record %d", i);
		}
		for (int i = 0; i < 3; i++) {
			ut_fill(buf, (size_t)sizes(i), 0, 200 + (unsigned)i);
			cr_assert_eq(send(c.sv[1], buf, (size_t)sizes(i), 0), sizes(i));
		}
	}
	c.ino0 = ut_ino(c.sv[0]);
	int sndbuf = 0;
	socklen_t l = sizeof sndbuf;
	getsockopt(c.sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &l);
	ut_prepare();
	pid_t pid = ut_child(stream_child, &c);
	fdremap_finish();
	ut_wait(pid);
	if (type == SOCK_STREAM) {
		cr_assert(ut_read_pattern(c.sv[1], KIB100, 11), "parent's 0->1");
		cr_assert(ut_read_pattern(c.sv[0], 5000, 12), "parent's 1->0");
	} else {
		cr_assert(check_records(c.sv[1], 50, 100), "parent's records 0->1");
		cr_assert(check_records(c.sv[0], 3, 200), "parent's records 1->0");
	}
	char b;
	cr_assert_eq(recv(c.sv[1], &b, 1, MSG_DONTWAIT), -1, "the child's message reached the parent");
}

Test(channels, stream_socketpair_100k) { socketpair_case(SOCK_STREAM); }
Test(channels, dgram_socketpair_50) { socketpair_case(SOCK_DGRAM); }
Test(channels, seqpacket_socketpair_50) { socketpair_case(SOCK_SEQPACKET); }

/* ---- descriptors in flight, shutdown state, buffer sizes --------------------- */

struct flight { int sv[2]; int p[2]; int sndbuf; };

static int recv_fd(int s, char *tag)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cb;
	struct iovec iov = { tag, 4 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof cb };
	if (recvmsg(s, &mh, MSG_DONTWAIT) != 4)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

static void flight_child(void *arg)
{
	struct flight *f = arg;
	char tag[5] = "";
	int fd = recv_fd(f->sv[1], tag);
	UT_CHECK(fd >= 0 && !strcmp(tag, "pipe"), "descriptor in flight lost");
	UT_CHECK(fd >= 0 && ut_same_file(fd, f->p[0]), "in-flight descriptor is not the child's own pipe");
	char b[8];
	ssize_t r = recv(f->sv[1], b, sizeof b, MSG_DONTWAIT);
	UT_CHECK(r == 4 && !memcmp(b, "tail", 4), "data after shutdown: %zd", r);
	UT_CHECK(recv(f->sv[1], b, sizeof b, MSG_DONTWAIT) == 0, "EOF after peer's SHUT_WR");
	UT_CHECK(send(f->sv[0], "z", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE, "SHUT_WR not restored");
	int v = 0;
	socklen_t l = sizeof v;
	getsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &v, &l);
	UT_CHECK(v == f->sndbuf, "SO_SNDBUF %d, want %d", v, f->sndbuf);
}

Test(channels, scm_rights_shutdown_bufsize)
{
	ut_protect_existing();
	struct flight f;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, f.sv), 0);
	cr_assert_eq(pipe(f.p), 0);
	int v = 50000;
	setsockopt(f.sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
	socklen_t l = sizeof f.sndbuf;
	getsockopt(f.sv[0], SOL_SOCKET, SO_SNDBUF, &f.sndbuf, &l);
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cb;
	struct iovec iov = { "pipe", 4 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof cb };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &f.p[0], sizeof(int));
	cr_assert_eq(sendmsg(f.sv[0], &mh, 0), 4);
	cr_assert_eq(send(f.sv[0], "tail", 4, 0), 4);
	shutdown(f.sv[0], SHUT_WR);
	int before = ut_count_fds();
	ut_prepare();
	pid_t pid = ut_child(flight_child, &f);
	fdremap_finish();
	ut_wait(pid);
	cr_assert_eq(ut_count_fds(), before, "descriptors leaked");
	char tag[5] = "";
	int fd = recv_fd(f.sv[1], tag);
	cr_assert(fd >= 0 && ut_same_file(fd, f.p[0]), "parent's in-flight descriptor");
	char b[8];
	cr_assert_eq(recv(f.sv[1], b, sizeof b, MSG_DONTWAIT), 4);
	cr_assert_eq(recv(f.sv[1], b, sizeof b, MSG_DONTWAIT), 0);
}

/* ---- self-pipe wake-up: each process only wakes itself ------------------------------ */

static void selfpipe_child(void *arg)
{
	int *p = arg;
	char b;
	for (int i = 0; i < 10000; i++) {
		if (write(p[1], "c", 1) != 1 || read(p[0], &b, 1) != 1 || b != 'c') {
			UT_CHECK(0, "wake-up %d", i);
			return;
		}
	}
}

Test(channels, self_pipe_wakeups_isolated)
{
	ut_protect_existing();
	int p[2];
	cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
	ut_prepare();
	pid_t pid = ut_child(selfpipe_child, p);
	fdremap_finish();
	char b;
	int stolen = 0;
	for (int i = 0; i < 10000; i++) {
		cr_assert_eq(write(p[1], "p", 1), 1);
		ssize_t r = read(p[0], &b, 1);
		if (r == 1 && b != 'p')
			stolen++;
		cr_assert(r == 1, "parent's wake-up %d lost", i);
	}
	ut_wait(pid);
	cr_assert_eq(stolen, 0);
	cr_assert_eq(read(p[0], &b, 1), -1);
}
