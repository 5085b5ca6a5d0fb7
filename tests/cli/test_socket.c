/* The control socket on its own (ctl/ctl*.c linked into mock_template with
 * a stand-in core): runtime directory rules, stale sockets, peer
 * credentials, hostile and concurrent clients. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_test.h"

static struct ct_bg mock;

static void teardown(void)
{
	ct_kill(&mock);
}

TestSuite(socket, .fini = teardown, .timeout = 60);

Test(socket, runtime_dir_is_private)
{
	ct_setup();
	char sock[256];
	pid_t pid = ct_mock(&mock, NULL, sock, sizeof sock);
	cr_assert_gt(pid, 0, "mock did not start: %s", mock.buf);
	struct stat st;
	cr_assert_eq(lstat(ct_rundir(), &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0700, "runtime dir mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_uid, geteuid());
	char want[512];
	snprintf(want, sizeof want, "%s/%d.sock", ct_rundir(), pid);
	cr_assert_str_eq(sock, want);
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 077, 0, "socket mode %o", st.st_mode & 07777);
	unsigned state = 9;
	cr_assert_eq(ct_hello(sock, &state, NULL), 0);
	cr_assert_eq(state, 0);
}

static void expect_refused(const char *why_substr)
{
	char sock[256];
	pid_t pid = ct_mock(&mock, (const char *const[]){ "MOCK_LOG=0", NULL }, sock, sizeof sock);
	cr_assert_eq(pid, -1, "mock started although %s", why_substr);
	cr_assert(strstr(mock.buf, "MOCK INITFAIL"), "%s", mock.buf);
}

Test(socket, runtime_dir_group_readable_refused)
{
	ct_setup();
	cr_assert_eq(mkdir(ct_rundir(), 0700), 0);
	chmod(ct_rundir(), 0750);
	expect_refused("the directory is group-readable");
}

Test(socket, runtime_dir_other_owner_refused)
{
	ct_setup();
	cr_assert_eq(mkdir(ct_rundir(), 0700), 0);
	cr_assert_eq(chown(ct_rundir(), 65534, 65534), 0);
	expect_refused("the directory belongs to another user");
}

Test(socket, runtime_dir_symlink_refused)
{
	const char *base = ct_setup();
	char real[300];
	snprintf(real, sizeof real, "%s/real", base);
	cr_assert_eq(mkdir(real, 0700), 0);
	cr_assert_eq(symlink(real, ct_rundir()), 0);
	expect_refused("the directory is a symlink");
}

/* A process that binds DIR/<its pid>.sock, closes it (no listener: what a
 * SIGKILLed libnuwa process leaves) and then execs the mock, which keeps
 * the pid and so meets the leftover under its own name.  keep_listening:
 * the listener stays open across exec (a live socket, as another pid
 * namespace sharing the directory would have).  kind: 's' socket, 'f'
 * regular file, 'l' symlink to a socket elsewhere. */
static pid_t start_with_leftover(char kind, int keep_listening, char *sock, size_t len)
{
	const char *base = ct_setup();
	mkdir(ct_rundir(), 0700);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	memset(&mock, 0, sizeof mock);
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		dup2(p[1], 1);
		char path[300];
		snprintf(path, sizeof path, "%s/%d.sock", ct_rundir(), getpid());
		if (kind == 'f') {
			close(open(path, O_CREAT | O_WRONLY, 0600));
		} else {
			char other[300];
			snprintf(other, sizeof other, "%s/elsewhere.sock", base);
			int fd = socket(AF_UNIX, SOCK_STREAM, 0);
			struct sockaddr_un a = { .sun_family = AF_UNIX };
			snprintf(a.sun_path, sizeof a.sun_path, "%.107s", kind == 'l' ? other : path);
			if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0)
				_exit(120);
			if (kind == 'l' && symlink(other, path) < 0)
				_exit(121);
			if (!keep_listening)
				close(fd);
		}
		setenv("MOCK_LOG", "0", 1);
		execl(ct_path("NUWA_MOCK"), "mock_template", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	mock.pid = pid;
	mock.out = p[0];
	ct_expect(&mock, "MOCK ", 5000);
	ct_expect(&mock, "\n", 1000);
	snprintf(sock, len, "%s/%d.sock", ct_rundir(), pid);
	return pid;
}

Test(socket, stale_socket_replaced)
{
	char sock[300];
	start_with_leftover('s', 0, sock, sizeof sock);
	cr_assert(strstr(mock.buf, "MOCK READY"), "stale socket not replaced: %s", mock.buf);
	cr_assert_eq(ct_hello(sock, NULL, NULL), 0, "the new socket does not answer");
}

Test(socket, live_socket_not_stolen)
{
	char sock[300];
	start_with_leftover('s', 1, sock, sizeof sock);
	cr_assert(strstr(mock.buf, "MOCK INITFAIL"), "a live socket was replaced: %s", mock.buf);
}

Test(socket, non_socket_file_not_replaced)
{
	char sock[300];
	start_with_leftover('f', 0, sock, sizeof sock);
	cr_assert(strstr(mock.buf, "MOCK INITFAIL"), "a regular file was replaced: %s", mock.buf);
	struct stat st;
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
}

Test(socket, symlink_not_followed)
{
	char sock[300];
	start_with_leftover('l', 0, sock, sizeof sock);
	cr_assert(strstr(mock.buf, "MOCK INITFAIL"), "a symlink was accepted: %s", mock.buf);
	struct stat st;
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the symlink was removed or replaced");
}

/* Another uid: first through the filesystem (the private directory keeps it
 * out), then past it (a hard link to the socket in a public directory, the
 * socket made world-writable): SO_PEERCRED must still refuse. */
Test(socket, other_uid_refused)
{
	const char *base = ct_setup();
	char sock[256];
	pid_t pid = ct_mock(&mock, (const char *const[]){ "MOCK_LOG=1", NULL }, sock, sizeof sock);
	cr_assert_gt(pid, 0);
	const char *nuwa = ct_path("NUWA_CLI");
	static struct ct_out o;
	char pids[32];
	snprintf(pids, sizeof pids, "%d", pid);

	const char *a1[] = { "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
	                     "--clear-groups", nuwa, "status", sock, NULL };
	ct_run(&o, a1, NULL, 10000);
	cr_assert_eq(o.code, 3, "through the private dir: exit %d, err: %s", o.code, o.err);
	cr_assert(strstr(o.err, "ermission denied"), "%s", o.err);

	char pub[300], link_path[320];
	snprintf(pub, sizeof pub, "%s/pub", base);
	cr_assert_eq(mkdir(pub, 0777), 0);
	chmod(pub, 0777);
	snprintf(link_path, sizeof link_path, "%s/x.sock", pub);
	cr_assert_eq(link(sock, link_path), 0, "link: %s", strerror(errno));
	cr_assert_eq(chmod(link_path, 0666), 0);
	const char *a2[] = { "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
	                     "--clear-groups", nuwa, "status", link_path, NULL };
	ct_run(&o, a2, NULL, 10000);
	/* refused by SO_PEERCRED: "cannot be reached (permission)", as at the dir */
	cr_assert_eq(o.code, 3, "past the dir: exit %d, out: %s err: %s", o.code, o.out, o.err);
	cr_assert(strstr(o.err, "only the same user or root"), "%s", o.err);
	cr_assert_eq(o.out[0], 0, "a refused client got a status: %s", o.out);
	const char *a3[] = { "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
	                     "--clear-groups", nuwa, "spawn", link_path, NULL };
	ct_run(&o, a3, NULL, 10000);
	cr_assert_eq(o.code, 3, "spawn past the dir: exit %d, err: %s", o.code, o.err);
	cr_assert(strstr(o.err, "only the same user or root"), "%s", o.err);
	/* the same request as root works, and the refusal was logged */
	ct_nuwa(&o, 10000, "status", link_path, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	cr_assert(strstr(o.out, "state running"), "%s", o.out);
	ct_expect(&mock, "", 0);
}

/* ---- hostile clients ------------------------------------------------------- */

static unsigned rnd_state;
static unsigned rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

/* One hostile exchange on a fresh connection. */
static void hostile(const char *sock, int kind)
{
	int fd = ct_connect(sock);
	cr_assert_geq(fd, 0, "connect failed: %s", strerror(-fd));
	char msg[CTL_HDR_SIZE + 2048];
	size_t len = 0;
	struct ctl_buf b;
	switch (kind) {
	case 0:   /* random bytes */
		len = 1 + rnd() % 300;
		for (size_t i = 0; i < len; i++)
			msg[i] = (char)rnd();
		break;
	case 1: { /* a good header, random payload */
		ctl_begin(&b, msg, sizeof msg, (uint16_t)(1 + rnd() % 9));
		size_t pl = rnd() % 200;
		for (size_t i = 0; i < pl; i++)
			msg[CTL_HDR_SIZE + i] = (char)rnd();
		b.len += pl;
		len = (size_t)ctl_end(&b);
		break;
	}
	case 2: { /* oversized length */
		ctl_begin(&b, msg, sizeof msg, CTL_REQ_STATUS);
		len = (size_t)ctl_end(&b);
		uint32_t big = CTL_MAX_REQUEST + 1 + rnd() % 100000;
		memcpy(msg + 8, &big, 4);
		break;
	}
	case 3: { /* another version */
		ctl_begin(&b, msg, sizeof msg, CTL_REQ_HELLO);
		len = (size_t)ctl_end(&b);
		uint16_t v = (uint16_t)(2 + rnd() % 100);
		memcpy(msg + 4, &v, 2);
		break;
	}
	case 4: { /* well-formed fields with wrong sizes or duplicates */
		ctl_begin(&b, msg, sizeof msg, (uint16_t)(1 + rnd() % 7));
		int nf = 1 + rnd() % 6;
		for (int i = 0; i < nf; i++) {
			uint16_t tag = (uint16_t)(1 + rnd() % 20);
			uint32_t vl = rnd() % 9;
			memcpy(b.p + b.len, &tag, 2);
			memcpy(b.p + b.len + 2, &vl, 4);
			b.len += 6;
			for (uint32_t k = 0; k < vl; k++)
				b.p[b.len++] = (char)rnd();
		}
		len = (size_t)ctl_end(&b);
		break;
	}
	default: { /* a valid request, truncated, then the client leaves */
		ctl_begin(&b, msg, sizeof msg, (uint16_t)(1 + rnd() % 7));
		ctl_put_u32(&b, CTL_F_COUNT, 1);
		ctl_put_str(&b, CTL_F_CALL, "mock_record(int:1, long:2, double:3, str:x, ptr:null)");
		len = (size_t)ctl_end(&b);
		len = rnd() % len;
		break;
	}
	}
	ct_send(fd, msg, len);
	if (kind != 5 && rnd() % 2) {
		/* read the answer (an error, or a reply for a lucky valid one) */
		char buf[65536];
		struct ctl_msg m;
		ct_recv(fd, buf, sizeof buf, &m, 2000);
	}
	close(fd);
}

Test(socket, hostile_messages_leave_it_serving, .timeout = 240)
{
	ct_setup();
	char sock[256];
	/* freezes fail, so no message, even a lucky valid one, changes state */
	pid_t pid = ct_mock(&mock, (const char *const[]){ "MOCK_FREEZE_FAIL=1", NULL }, sock,
	                    sizeof sock);
	cr_assert_gt(pid, 0);
	rnd_state = (unsigned)getpid();
	cr_assert_eq(ct_hello(sock, NULL, NULL), 0);   /* the loop runs: its fds exist */
	ct_sleep_ms(100);   /* and that connection is closed again */
	int fds0 = ct_count_fds(pid);
	long rss0 = ct_rss_kb(pid);
	for (int i = 0; i < 10000; i++) {
		hostile(sock, (int)(rnd() % 6));
		if (i % 1000 == 999) {
			unsigned state = 9;
			cr_assert_eq(ct_hello(sock, &state, NULL), 0, "not serving after %d messages", i + 1);
			cr_assert_eq(state, 0, "state changed");
		}
	}
	unsigned state = 9, children = 9;
	cr_assert_eq(ct_hello(sock, &state, &children), 0);
	cr_assert_eq(state, 0);
	cr_assert_eq(children, 0);
	cr_assert(ct_alive(pid));
	cr_assert_eq(ct_count(mock.buf, "MOCK CHILD"), 0, "a child was spawned: %s", mock.buf);
	/* Connections are closed asynchronously: give the server a moment. */
	int fds = 0;
	for (int t = 0; t < 100 && (fds = ct_count_fds(pid)) > fds0; t++)
		ct_sleep_ms(20);
	cr_assert_leq(fds, fds0, "descriptors grew from %d to %d", fds0, fds);
	long rss = ct_rss_kb(pid);
	cr_assert_lt(rss, rss0 + 2048, "memory grew from %ld to %ld kB", rss0, rss);
}

/* Descriptors sent with a request that does not take them, or too many. */
Test(socket, stray_descriptors_closed)
{
	ct_setup();
	char sock[256];
	pid_t pid = ct_mock(&mock, NULL, sock, sizeof sock);
	cr_assert_eq(ct_hello(sock, NULL, NULL), 0);
	ct_sleep_ms(100);   /* the server closes that connection asynchronously */
	int fds0 = ct_count_fds(pid);
	for (int i = 0; i < 50; i++) {
		int fd = ct_connect(sock);
		char mem[128];
		struct ctl_buf b;
		ctl_begin(&b, mem, sizeof mem, i % 2 ? CTL_REQ_STATUS : CTL_REQ_SPAWN);
		ctl_put_u32(&b, CTL_F_STDIO, 3);
		long n = ctl_end(&b);
		int sent[8] = { 0, 1, 2, 0, 1, 2, 0, 1 };
		int nsend = i % 3 == 0 ? 8 : 3;
		union { struct cmsghdr a; char buf[CMSG_SPACE(sizeof sent)]; } c;
		struct iovec iov = { mem, (size_t)n };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
		                     .msg_controllen = CMSG_SPACE(sizeof(int) * nsend) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nsend);
		memcpy(CMSG_DATA(cm), sent, sizeof(int) * nsend);
		cr_assert_geq(sendmsg(fd, &mh, MSG_NOSIGNAL), 0);
		char buf[65536];
		struct ctl_msg m;
		ct_recv(fd, buf, sizeof buf, &m, 2000);
		close(fd);
	}
	int fds = 0;
	for (int t = 0; t < 100 && (fds = ct_count_fds(pid)) > fds0; t++)
		ct_sleep_ms(20);
	cr_assert_eq(fds, fds0, "received descriptors leaked: %d -> %d", fds0, fds);
	cr_assert_eq(ct_count(mock.buf, "MOCK CHILD"), 0);
}

/* Clients that stall or never read must not delay the others. */
Test(socket, many_clients_at_once)
{
	ct_setup();
	char sock[256];
	pid_t pid = ct_mock(&mock, NULL, sock, sizeof sock);
	cr_assert_gt(pid, 0);

	/* a client stuck in the middle of a header */
	int stall = ct_connect(sock);
	ct_send(stall, "NUWA\1", 5);
	/* a client that floods status requests and reads nothing */
	int flood = ct_connect(sock);
	fcntl(flood, F_SETFL, O_NONBLOCK);
	char mem[64];
	struct ctl_buf b;
	ctl_begin(&b, mem, sizeof mem, CTL_REQ_STATUS);
	long n = ctl_end(&b);
	for (int i = 0; i < 20000; i++)
		if (send(flood, mem, (size_t)n, MSG_NOSIGNAL) < 0)
			break;

	/* 20 clients in parallel, each with 50 exchanges */
	long long t0 = ct_now_ms();
	pid_t kids[20];
	for (int k = 0; k < 20; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			for (int i = 0; i < 50; i++) {
				int r = ct_hello(sock, NULL, NULL);
				if (r < 0)
					_exit(-r > 0 && -r < 255 ? -r : 255);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < 20; k++) {
		int st;
		waitpid(kids[k], &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d failed: %s", k,
		          WIFEXITED(st) ? strerror(WEXITSTATUS(st)) : "killed");
	}
	/* A stalled server never answers; a loaded machine answers late. */
	long long dt = ct_now_ms() - t0;
	cr_assert_lt(dt, 60000, "1000 exchanges took %lld ms", dt);
	close(stall);
	close(flood);
	cr_assert_eq(ct_hello(sock, NULL, NULL), 0);
}

/* More idle connections than the table holds: the idle ones are dropped
 * to make room, and the server keeps answering. */
Test(socket, idle_clients_evicted)
{
	ct_setup();
	char sock[256];
	pid_t pid = ct_mock(&mock, NULL, sock, sizeof sock);
	cr_assert_gt(pid, 0);
	int idle[80];
	for (int i = 0; i < 80; i++)
		idle[i] = ct_connect(sock);
	ct_sleep_ms(2300);   /* past the idle threshold (2 s) */
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ct_hello(sock, NULL, NULL), 0, "not served with a full table (%d)", i);
	for (int i = 0; i < 80; i++)
		close(idle[i]);
}

/* A plain fork() of the program: the child makes its socket only when its
 * control loop runs, and removes it before exec(). */
Test(socket, app_fork_then_exec)
{
	ct_setup();
	char sock[256];
	pid_t pid = ct_mock(&mock, (const char *const[]){ "MOCK_APP_FORK=1", NULL }, sock,
	                    sizeof sock);
	cr_assert_gt(pid, 0);
	cr_assert(ct_expect(&mock, "APPFORK", 5000) && ct_expect(&mock, "\n", 5000) &&
	          ct_expect(&mock, " nosock sock unlinked\n", 5000), "%s", mock.buf);
	cr_assert_eq(ct_hello(sock, NULL, NULL), 0, "the parent's socket was disturbed");
}
