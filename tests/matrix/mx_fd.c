/* mx_fd — every kind of descriptor, empty, with data, and full.
 *
 * Internal channels (pipes, socketpairs, eventfd, epoll, timerfd, signalfd,
 * inotify) are the process's own: every process must find exactly the
 * state of the freeze (the same bytes, records, counts, schedule, mask) and
 * nothing another process did.  Shared descriptors (a listening TCP socket,
 * a TCP connection, a regular file) are shared as after fork(): what one
 * process takes, the others do not get (the tallies). */
#include "mx.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

static char rbuf[4 << 20];

/* ---- pipes ---------------------------------------------------------------- */

struct chan { int fd[2]; long bytes; int count; int size; uint32_t seed; };
static struct chan p_empty, p_data, p_full, p_big;

static void pipe_empty_setup(mx_case *c)
{
	MUST(pipe2(p_empty.fd, O_NONBLOCK | O_CLOEXEC) == 0);
}
static void pipe_empty_verify(mx_case *c)
{
	char b[16];
	int pid = getpid();
	CHECK(c, read(p_empty.fd[0], b, 1) == -1 && errno == EAGAIN, "an empty pipe gave data or %s", strerror(errno));
	CHECK(c, (fcntl(p_empty.fd[0], F_GETFL) & O_NONBLOCK) && (fcntl(p_empty.fd[1], F_GETFL) & O_NONBLOCK),
	      "O_NONBLOCK lost");
	CHECK(c, (fcntl(p_empty.fd[0], F_GETFD) & FD_CLOEXEC), "FD_CLOEXEC lost");
	CHECK(c, write(p_empty.fd[1], &pid, 4) == 4, "write: %s", strerror(errno));
	int got = 0;
	CHECK(c, read(p_empty.fd[0], &got, 4) == 4 && got == pid, "own bytes came back as %d", got);
	CHECK(c, read(p_empty.fd[0], b, 1) == -1 && errno == EAGAIN, "more than its own bytes");
}

static void pipe_data_setup(mx_case *c)
{
	MUST(pipe2(p_data.fd, O_CLOEXEC) == 0);
	p_data.bytes = 3000;
	mx_fill(rbuf, 3000, 11);
	MUST(write(p_data.fd[1], rbuf, 3000) == 3000);
}
static void pipe_data_verify(mx_case *c)
{
	CHECK(c, !(fcntl(p_data.fd[0], F_GETFL) & O_NONBLOCK), "a blocking pipe became non-blocking");
	MUST(mx_nonblock(p_data.fd[0]));
	long n = mx_drain(p_data.fd[0], rbuf, sizeof rbuf);
	CHECK(c, n == 3000, "read %ld bytes, want exactly 3000", n);
	CHECK(c, n == 3000 && mx_check_pattern(rbuf, 3000, 11), "the bytes differ");
}

static void fill_pipe_setup(struct chan *ch, int size)
{
	MUST(pipe2(ch->fd, O_NONBLOCK | O_CLOEXEC) == 0);
	if (size)
		MUST(fcntl(ch->fd[1], F_SETPIPE_SZ, size) >= size);
	ch->size = fcntl(ch->fd[1], F_GETPIPE_SZ);
	ch->seed = 21;
	ch->bytes = mx_fill_fd(ch->fd[1], ch->seed, 4096);
	MUST(ch->bytes > 0);
}
static void fill_pipe_verify(mx_case *c, struct chan *ch)
{
	int sz = fcntl(ch->fd[1], F_GETPIPE_SZ);
	CHECK(c, sz == ch->size, "pipe size %d, want %d", sz, ch->size);
	CHECK(c, write(ch->fd[1], "x", 1) == -1 && errno == EAGAIN, "a full pipe took another byte");
	long n = mx_drain(ch->fd[0], rbuf, sizeof rbuf);
	CHECK(c, n == ch->bytes, "read %ld bytes, want exactly %ld", n, ch->bytes);
	int ok = 1;
	for (long off = 0; ok && off < n; off += 4096)
		ok = mx_check_pattern(rbuf + off, (size_t)(n - off < 4096 ? n - off : 4096),
				      ch->seed + (uint32_t)off);
	CHECK(c, ok, "the bytes differ");
}
static void pipe_full_setup(mx_case *c) { fill_pipe_setup(&p_full, 0); }
static void pipe_full_verify(mx_case *c) { fill_pipe_verify(c, &p_full); }
static void pipe_big_setup(mx_case *c) { fill_pipe_setup(&p_big, 1 << 20); }
static void pipe_big_verify(mx_case *c) { fill_pipe_verify(c, &p_big); }

/* ---- socketpairs ---------------------------------------------------------- */

static struct chan sp[3][3];   /* [type][empty, data, full] */
static const int sp_types[3] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET };
#define NREC 20
static size_t rec_len(int i) { return 1 + (size_t)i * 37; }

static void sp_setup(mx_case *c, int t, int state)
{
	struct chan *ch = &sp[t][state];
	MUST(socketpair(AF_UNIX, sp_types[t] | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ch->fd) == 0);
	ch->seed = 31 + (uint32_t)t;
	if (state == 1) {
		if (sp_types[t] == SOCK_STREAM) {
			mx_fill(rbuf, 5000, ch->seed);
			MUST(send(ch->fd[0], rbuf, 5000, 0) == 5000);
			MUST(send(ch->fd[1], "back", 4, 0) == 4);
			ch->bytes = 5000;
		} else {
			for (int i = 0; i < NREC; i++) {
				mx_fill(rbuf, rec_len(i), ch->seed + (uint32_t)i);
				MUST(send(ch->fd[0], rbuf, rec_len(i), 0) == (ssize_t)rec_len(i));
			}
			MUST(send(ch->fd[1], "back", 4, 0) == 4);
			ch->count = NREC;
		}
	} else if (state == 2) {
		if (sp_types[t] == SOCK_STREAM) {
			ch->bytes = mx_fill_fd(ch->fd[0], ch->seed, 4096);
		} else {
			for (;; ch->count++) {
				mx_fill(rbuf, 512, ch->seed + (uint32_t)ch->count);
				if (send(ch->fd[0], rbuf, 512, 0) != 512)
					break;
			}
			MUST(errno == EAGAIN && ch->count > 0);
		}
	}
}

static void sp_verify(mx_case *c, int t, int state)
{
	struct chan *ch = &sp[t][state];
	int stream = sp_types[t] == SOCK_STREAM;
	int type = 0;
	socklen_t tl = sizeof type;
	getsockopt(ch->fd[0], SOL_SOCKET, SO_TYPE, &type, &tl);
	CHECK(c, type == sp_types[t], "socket type %d, want %d", type, sp_types[t]);
	long extra = 0;
	if (state == 2) {
		char x[512] = { 0 };
		ssize_t n = send(ch->fd[0], x, stream ? 1 : 512, 0);
		CHECK(c, n == -1 && errno == EAGAIN, "a full socket took %zd more bytes", n);
		extra = n > 0 ? n : 0;
	}
	if (stream) {
		long n = mx_drain(ch->fd[1], rbuf, sizeof rbuf) - extra;   /* the extra at the end */
		long want = state == 0 ? 0 : ch->bytes;
		CHECK(c, n == want, "read %ld bytes, want exactly %ld", n, want);
		int ok = 1;
		for (long off = 0; ok && off < n; off += state == 2 ? 4096 : n)
			ok = mx_check_pattern(rbuf + off, (size_t)(state == 2 && n - off > 4096 ? 4096 : n - off),
					      ch->seed + (uint32_t)(state == 2 ? off : 0));
		CHECK(c, ok, "the bytes differ");
	} else {
		int want = state == 0 ? 0 : ch->count, got = 0;
		for (;; got++) {
			ssize_t n = recv(ch->fd[1], rbuf, sizeof rbuf, 0);
			if (n < 0) {
				CHECK(c, errno == EAGAIN, "recv: %s", strerror(errno));
				break;
			}
			size_t len = state == 1 ? rec_len(got) : 512;
			if (got >= want || (size_t)n != len || !mx_check_pattern(rbuf, len, ch->seed + (uint32_t)got)) {
				mx_fail(c, "record %d: %zd bytes or contents differ (want %zu)", got, n, len);
				break;
			}
		}
		CHECK(c, got == want, "%d records, want exactly %d", got, want);
	}
	char b[8];
	ssize_t n = recv(ch->fd[0], b, sizeof b, 0);
	if (state == 1)
		CHECK(c, n == 4 && !memcmp(b, "back", 4), "the reverse direction lost its 4 bytes (%zd)", n);
	else
		CHECK(c, n == -1 && errno == EAGAIN, "the reverse direction is not empty (%zd)", n);
	int pid = getpid(), got = 0;
	CHECK(c, state == 2 || (send(ch->fd[1], &pid, 4, 0) == 4 && recv(ch->fd[0], &got, 4, 0) == 4 && got == pid),
	      "own message came back as %d", got);
}
#define SP(T, S, NAME) \
	static void sp_##NAME##_setup(mx_case *c) { sp_setup(c, T, S); } \
	static void sp_##NAME##_verify(mx_case *c) { sp_verify(c, T, S); }
SP(0, 0, stream_empty) SP(0, 1, stream_data) SP(0, 2, stream_full)
SP(1, 0, dgram_empty) SP(1, 1, dgram_data) SP(1, 2, dgram_full)
SP(2, 0, seq_empty) SP(2, 1, seq_data) SP(2, 2, seq_full)

/* ---- eventfd -------------------------------------------------------------- */

static int ev_zero, ev_count, ev_sem;
static void eventfd_setup(mx_case *c)
{
	MUST((ev_zero = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) >= 0);
	MUST((ev_count = eventfd(12345, EFD_NONBLOCK | EFD_CLOEXEC)) >= 0);
	MUST((ev_sem = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC | EFD_SEMAPHORE)) >= 0);
}
static void eventfd_zero_verify(mx_case *c)
{
	uint64_t v = 0;
	CHECK(c, read(ev_zero, &v, 8) == -1 && errno == EAGAIN, "a zero eventfd read %llu", (unsigned long long)v);
	CHECK(c, eventfd_write(ev_zero, 7) == 0 && read(ev_zero, &v, 8) == 8 && v == 7, "own count came back as %llu",
	      (unsigned long long)v);
}
static void eventfd_count_verify(mx_case *c)
{
	uint64_t v = 0;
	CHECK(c, read(ev_count, &v, 8) == 8 && v == 12345, "count %llu, want 12345", (unsigned long long)v);
	CHECK(c, read(ev_count, &v, 8) == -1 && errno == EAGAIN, "counted twice");
}
static void eventfd_sem_verify(mx_case *c)
{
	uint64_t v;
	int n = 0;
	while (read(ev_sem, &v, 8) == 8 && v == 1)
		n++;
	CHECK(c, n == 3 && errno == EAGAIN, "%d semaphore reads of 1, want exactly 3", n);
}

/* ---- epoll ---------------------------------------------------------------- */

static int ep_empty, ep_ready, ep_idle, ep_rp[2], ep_ip[2];
static void epoll_setup(mx_case *c)
{
	MUST((ep_empty = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	MUST((ep_ready = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	MUST((ep_idle = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	MUST(pipe2(ep_rp, O_NONBLOCK | O_CLOEXEC) == 0 && pipe2(ep_ip, O_NONBLOCK | O_CLOEXEC) == 0);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0xfeedbeef01ULL };
	MUST(epoll_ctl(ep_ready, EPOLL_CTL_ADD, ep_rp[0], &e) == 0);
	e.data.u64 = 0xfeedbeef02ULL;
	MUST(epoll_ctl(ep_idle, EPOLL_CTL_ADD, ep_ip[0], &e) == 0);
	MUST(write(ep_rp[1], "R", 1) == 1);
}
static void epoll_empty_verify(mx_case *c)
{
	struct epoll_event e;
	CHECK(c, epoll_wait(ep_empty, &e, 1, 0) == 0, "an empty epoll reported an event");
	int p[2];
	MUST(pipe2(p, O_CLOEXEC) == 0);
	e.events = EPOLLIN;
	e.data.u64 = 99;
	CHECK(c, epoll_ctl(ep_empty, EPOLL_CTL_ADD, p[0], &e) == 0, "add: %s", strerror(errno));
	CHECK(c, write(p[1], "x", 1) == 1 && epoll_wait(ep_empty, &e, 1, 1000) == 1 && e.data.u64 == 99,
	      "a new registration does not work");
	close(p[0]);
	close(p[1]);
}
static void epoll_ready_verify(mx_case *c)
{
	struct epoll_event e[4];
	int n = epoll_wait(ep_ready, e, 4, 1000);
	CHECK(c, n == 1 && e[0].data.u64 == 0xfeedbeef01ULL && (e[0].events & EPOLLIN),
	      "%d events (data %#llx), want the one registered", n, n > 0 ? (unsigned long long)e[0].data.u64 : 0ULL);
	char b[4];
	CHECK(c, read(ep_rp[0], b, 4) == 1 && b[0] == 'R', "the ready byte is not there once");
	CHECK(c, epoll_wait(ep_ready, e, 4, 0) == 0, "still ready after the read");
}
static void epoll_idle_verify(mx_case *c)
{
	struct epoll_event e[4];
	CHECK(c, epoll_wait(ep_idle, e, 4, 0) == 0, "an idle registration reported an event");
	CHECK(c, write(ep_ip[1], "I", 1) == 1, "write");
	int n = epoll_wait(ep_idle, e, 4, 1000);
	CHECK(c, n == 1 && e[0].data.u64 == 0xfeedbeef02ULL,
	      "the registration does not follow this process's own pipe (%d events)", n);
}

/* ---- timerfd -------------------------------------------------------------- */

static int tf_off, tf_periodic, tf_future;
static void timerfd_setup(mx_case *c)
{
	MUST((tf_off = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) >= 0);
	MUST((tf_periodic = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) >= 0);
	MUST((tf_future = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC)) >= 0);
	struct itimerspec p = { { 0, 50000000 }, { 0, 50000000 } };
	MUST(timerfd_settime(tf_periodic, 0, &p, NULL) == 0);
	struct itimerspec f = { { 0, 0 }, { 600, 0 } };
	MUST(timerfd_settime(tf_future, 0, &f, NULL) == 0);
}
static void timerfd_off_verify(mx_case *c)
{
	struct itimerspec t;
	uint64_t v;
	CHECK(c, timerfd_gettime(tf_off, &t) == 0 && !t.it_value.tv_sec && !t.it_value.tv_nsec &&
	      !t.it_interval.tv_sec && !t.it_interval.tv_nsec, "a disarmed timerfd is armed");
	CHECK(c, read(tf_off, &v, 8) == -1 && errno == EAGAIN, "a disarmed timerfd expired");
}
static void timerfd_periodic_verify(mx_case *c)
{
	struct itimerspec t;
	uint64_t v = 0;
	CHECK(c, timerfd_gettime(tf_periodic, &t) == 0 && t.it_interval.tv_sec == 0 &&
	      t.it_interval.tv_nsec == 50000000, "interval %ld.%09ld, want 0.050000000",
	      (long)t.it_interval.tv_sec, t.it_interval.tv_nsec);
	(void)!read(tf_periodic, &v, 8);   /* what expired while frozen */
	struct pollfd p = { tf_periodic, POLLIN, 0 };
	CHECK(c, poll(&p, 1, 2000) == 1 && read(tf_periodic, &v, 8) == 8 && v >= 1,
	      "the periodic timer does not fire within 2 s");
}
static void timerfd_future_verify(mx_case *c)
{
	struct itimerspec t;
	uint64_t v;
	CHECK(c, timerfd_gettime(tf_future, &t) == 0 && t.it_value.tv_sec > 500 && t.it_value.tv_sec < 600 &&
	      !t.it_interval.tv_sec && !t.it_interval.tv_nsec,
	      "a one-shot 600 s timer has %ld s left (interval %ld)", (long)t.it_value.tv_sec,
	      (long)t.it_interval.tv_sec);
	CHECK(c, read(tf_future, &v, 8) == -1 && errno == EAGAIN, "it expired early");
}

/* ---- signalfd --------------------------------------------------------------
 * The signals are blocked in the main thread, which runs setup and verify,
 * and sent to it alone (raise): no other thread can take them. */

static int sfd_mask, sfd_pend;
#define SIG_SFD  (SIGRTMIN + 5)
#define SIG_PEND (SIGRTMIN + 6)
static void signalfd_setup(mx_case *c)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIG_SFD);
	sigaddset(&s, SIG_PEND);
	MUST(pthread_sigmask(SIG_BLOCK, &s, NULL) == 0);
	sigdelset(&s, SIG_PEND);
	MUST((sfd_mask = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC)) >= 0);
	sigemptyset(&s);
	sigaddset(&s, SIG_PEND);
	MUST((sfd_pend = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC)) >= 0);
	MUST(raise(SIG_PEND) == 0);
}
static void signalfd_mask_verify(mx_case *c)
{
	struct signalfd_siginfo si;
	CHECK(c, read(sfd_mask, &si, sizeof si) == -1 && errno == EAGAIN, "a signal was waiting");
	CHECK(c, raise(SIG_SFD) == 0, "raise");
	ssize_t n = read(sfd_mask, &si, sizeof si);
	CHECK(c, n == sizeof si && (int)si.ssi_signo == SIG_SFD && (pid_t)si.ssi_pid == getpid(),
	      "read %zd: signo %d pid %d, want %d from %d", n, n > 0 ? (int)si.ssi_signo : 0,
	      n > 0 ? (int)si.ssi_pid : 0, SIG_SFD, (int)getpid());
}
/* Pending signals are per task and fork() copies none (docs/limits.md): the
 * original reads the one it raised, exactly once; a child reads none. */
static void signalfd_pending_verify(mx_case *c)
{
	struct signalfd_siginfo si;
	int n = 0;
	while (read(sfd_pend, &si, sizeof si) == sizeof si)
		n += (int)si.ssi_signo == SIG_PEND;
	CHECK(c, n == (mx_child() ? 0 : 1), "%d pending signals read, want %d", n, mx_child() ? 0 : 1);
}

/* ---- inotify -------------------------------------------------------------- */

static int in_watch, in_queued, in_wd;
static char in_dir[512], in_dir2[512];
static void inotify_setup(mx_case *c)
{
	const char *d = getenv("MX_DIR");
	MUST(d);
	snprintf(in_dir, sizeof in_dir, "%s/inotify-w", d);
	snprintf(in_dir2, sizeof in_dir2, "%s/inotify-q", d);
	MUST(mkdir(in_dir, 0700) == 0 && mkdir(in_dir2, 0700) == 0);
	MUST((in_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) >= 0);
	MUST((in_queued = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) >= 0);
	MUST((in_wd = inotify_add_watch(in_watch, in_dir, IN_CREATE)) >= 0);
	MUST(inotify_add_watch(in_queued, in_dir2, IN_CREATE) >= 0);
	char p[600];
	snprintf(p, sizeof p, "%s/before-freeze", in_dir2);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	MUST(fd >= 0);
	close(fd);
}
/* Count events naming `name` (others' creations in the shared directory are
 * legitimate events too). */
static int inotify_count(int fd, const char *name, int *wd, int wait_ms)
{
	char buf[8192] __attribute__((aligned(8)));
	int n = 0;
	struct pollfd p = { fd, POLLIN, 0 };
	while (poll(&p, 1, wait_ms) == 1) {
		ssize_t len = read(fd, buf, sizeof buf);
		if (len <= 0)
			break;
		for (char *q = buf; q < buf + len;) {
			struct inotify_event *e = (void *)q;
			if (e->len && !strcmp(e->name, name)) {
				n++;
				*wd = e->wd;
			}
			q += sizeof *e + e->len;
		}
		wait_ms = 100;
	}
	return n;
}
static void inotify_watch_verify(mx_case *c)
{
	char name[32], p[600];
	int wd = -1;
	snprintf(name, sizeof name, "made-by-%d", (int)getpid());
	snprintf(p, sizeof p, "%s/%s", in_dir, name);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(c, fd >= 0, "create: %s", strerror(errno));
	close(fd);
	int n = inotify_count(in_watch, name, &wd, 2000);
	CHECK(c, n == 1 && wd == in_wd, "%d events for its own file (wd %d, want 1 on wd %d)", n, wd, in_wd);
}
/* docs/fdremap.md: events queued in the parent's instance stay with it. */
static void inotify_queued_verify(mx_case *c)
{
	int wd = -1;
	int n = inotify_count(in_queued, "before-freeze", &wd, mx_child() ? 0 : 1000);
	CHECK(c, n == (mx_child() ? 0 : 1), "%d queued events, want %d", n, mx_child() ? 0 : 1);
}

/* ---- TCP (shared, as after fork) ------------------------------------------ */

static int tl_idle, tl_backlog, tl_client, tc_a, tc_b;
static int tcp_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	MUST(s >= 0 && bind(s, (void *)&a, sizeof a) == 0 && listen(s, 16) == 0);
	MUST(getsockname(s, (void *)&a, &l) == 0);
	*port = ntohs(a.sin_port);
	return s;
}
static int tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && connect(s, (void *)&a, sizeof a) != 0) {
		close(s);
		return -1;
	}
	return s;
}
static int port_idle, port_backlog;
static void tcp_setup(mx_case *c)
{
	tl_idle = tcp_listener(&port_idle);
	tl_backlog = tcp_listener(&port_backlog);
	MUST(mx_nonblock(tl_idle) && mx_nonblock(tl_backlog));
	MUST((tl_client = tcp_connect(port_backlog)) >= 0);
	MUST(send(tl_client, "queued", 6, 0) == 6);
	int p, l = tcp_listener(&p);
	MUST((tc_a = tcp_connect(p)) >= 0 && (tc_b = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
	close(l);
	mx_fill(rbuf, 100, 41);
	MUST(send(tc_a, rbuf, 100, 0) == 100 && mx_nonblock(tc_b));
	scn_sleep_ms(20);   /* on loopback the bytes are queued once send returns; margin */
}
/* Nobody connects while the children run: they find it empty; the original
 * then serves a connection of its own. */
static void tcp_listen_idle_verify(mx_case *c)
{
	struct sockaddr_in a;
	socklen_t l = sizeof a;
	int acc = 0;
	socklen_t al = sizeof acc;
	CHECK(c, getsockname(tl_idle, (void *)&a, &l) == 0 && ntohs(a.sin_port) == port_idle, "port changed");
	CHECK(c, getsockopt(tl_idle, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc == 1, "not listening");
	CHECK(c, accept(tl_idle, NULL, NULL) == -1 && errno == EAGAIN, "an idle listener had a connection");
	if (mx_child())
		return;
	int s = tcp_connect(port_idle), t = -1;
	struct pollfd p = { tl_idle, POLLIN, 0 };
	CHECK(c, s >= 0 && poll(&p, 1, 2000) == 1 && (t = accept(tl_idle, NULL, NULL)) >= 0,
	      "the original cannot serve a new connection");
	char b[2];
	CHECK(c, t >= 0 && send(s, "hi", 2, 0) == 2 && recv(t, b, 2, MSG_WAITALL) == 2 && !memcmp(b, "hi", 2),
	      "no data on the new connection");
	close(s);
	close(t);
}
/* The connection waiting in the backlog is accepted by exactly one process
 * (tally), which reads what the client sent before the freeze. */
static void tcp_listen_backlog_verify(mx_case *c)
{
	int t = accept4(tl_backlog, NULL, NULL, SOCK_CLOEXEC);
	if (t < 0) {
		CHECK(c, errno == EAGAIN, "accept: %s", strerror(errno));
		return;
	}
	c->tally++;
	char b[8];
	CHECK(c, recv(t, b, 6, MSG_WAITALL) == 6 && !memcmp(b, "queued", 6), "the queued bytes are not there");
	close(t);
}
/* A TCP connection inside the process is shared: the 100 queued bytes are
 * read once in all, whoever reads them (tally = bytes read). */
static void tcp_shared_verify(mx_case *c)
{
	long n = mx_drain(tc_b, rbuf, sizeof rbuf);
	CHECK(c, n >= 0, "read: %s", strerror(errno));
	if (n > 0)
		c->tally += n;
}

/* ---- a regular file (shared: one offset) ---------------------------------- */

static int f_rw, f_app;
static char f_path[512], f_app_path[512];
static void file_setup(mx_case *c)
{
	const char *d = getenv("MX_DIR");
	MUST(d);
	snprintf(f_path, sizeof f_path, "%s/file-data", d);
	snprintf(f_app_path, sizeof f_app_path, "%s/file-append", d);
	MUST((f_rw = open(f_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0);
	MUST((f_app = open(f_app_path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0);
	mx_fill(rbuf, 4096, 51);
	MUST(write(f_rw, rbuf, 4096) == 4096 && lseek(f_rw, 1000, SEEK_SET) == 1000);
}
static void file_verify(mx_case *c)
{
	CHECK(c, pread(f_rw, rbuf, 4096, 0) == 4096 && mx_check_pattern(rbuf, 4096, 51), "contents differ");
	if (mx_child()) {
		char line[32];
		int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
		CHECK(c, write(f_app, line, (size_t)n) == n, "append: %s", strerror(errno));
		return;
	}
	/* the original, after the children: the offset nobody moved, and exactly
	 * three records from three other processes through the shared O_APPEND */
	CHECK(c, lseek(f_rw, 0, SEEK_CUR) == 1000, "offset %ld, want 1000", (long)lseek(f_rw, 0, SEEK_CUR));
	FILE *f = fopen(f_app_path, "re");
	int pids[8], n = 0, p;
	while (f && n < 8 && fscanf(f, "%d", &p) == 1)
		pids[n++] = p;
	if (f)
		fclose(f);
	CHECK(c, n == 3 && pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2] &&
	      pids[0] != getpid() && pids[1] != getpid() && pids[2] != getpid(),
	      "%d records in the shared append-only file, want 3 from the 3 children", n);
}

static mx_case cases[] = {
	{ "pipe-empty", "fd", pipe_empty_setup, pipe_empty_verify },
	{ "pipe-data", "fd", pipe_data_setup, pipe_data_verify },
	{ "pipe-full", "fd", pipe_full_setup, pipe_full_verify },
	{ "pipe-full-1MiB", "fd", pipe_big_setup, pipe_big_verify },
	{ "stream-empty", "fd", sp_stream_empty_setup, sp_stream_empty_verify },
	{ "stream-data", "fd", sp_stream_data_setup, sp_stream_data_verify },
	{ "stream-full", "fd", sp_stream_full_setup, sp_stream_full_verify },
	{ "dgram-empty", "fd", sp_dgram_empty_setup, sp_dgram_empty_verify },
	{ "dgram-data", "fd", sp_dgram_data_setup, sp_dgram_data_verify },
	{ "dgram-full", "fd", sp_dgram_full_setup, sp_dgram_full_verify },
	{ "seqpacket-empty", "fd", sp_seq_empty_setup, sp_seq_empty_verify },
	{ "seqpacket-data", "fd", sp_seq_data_setup, sp_seq_data_verify },
	{ "seqpacket-full", "fd", sp_seq_full_setup, sp_seq_full_verify },
	{ "eventfd-zero", "fd", eventfd_setup, eventfd_zero_verify },
	{ "eventfd-count", "fd", eventfd_setup, eventfd_count_verify },
	{ "eventfd-semaphore", "fd", eventfd_setup, eventfd_sem_verify },
	{ "epoll-empty", "fd", epoll_setup, epoll_empty_verify },
	{ "epoll-ready", "fd", epoll_setup, epoll_ready_verify },
	{ "epoll-idle", "fd", epoll_setup, epoll_idle_verify },
	{ "timerfd-disarmed", "fd", timerfd_setup, timerfd_off_verify },
	{ "timerfd-periodic", "fd", timerfd_setup, timerfd_periodic_verify },
	{ "timerfd-oneshot", "fd", timerfd_setup, timerfd_future_verify },
	{ "signalfd-mask", "fd", signalfd_setup, signalfd_mask_verify },
	{ "signalfd-pending", "fd", signalfd_setup, signalfd_pending_verify },
	{ "inotify-watch", "fd", inotify_setup, inotify_watch_verify },
	{ "inotify-queued", "fd", inotify_setup, inotify_queued_verify },
	{ "tcp-listen-idle", "fd", tcp_setup, tcp_listen_idle_verify },
	{ "tcp-listen-backlog", "fd", tcp_setup, tcp_listen_backlog_verify, 1 },
	{ "tcp-connection-shared", "fd", tcp_setup, tcp_shared_verify, 100 },
	{ "file-shared-offset", "fd", file_setup, file_verify },
};

int main(int argc, char **argv)
{
	return mx_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
