/* eventfd, timerfd, signalfd, epoll, inotify. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include "ut.h"

static void eventfd_check(int e, int s, const char *who)
{
	uint64_t v = 0;
	UT_CHECK(read(e, &v, 8) == 8 && v == 5, "%s: normal eventfd read %llu", who, (unsigned long long)v);
	UT_CHECK(read(e, &v, 8) == -1 && errno == EAGAIN, "%s: normal eventfd not empty", who);
	for (int i = 0; i < 3; i++)
		UT_CHECK(read(s, &v, 8) == 8 && v == 1, "%s: semaphore read %d gave %llu", who, i, (unsigned long long)v);
	UT_CHECK(read(s, &v, 8) == -1 && errno == EAGAIN, "%s: semaphore not empty", who);
}

static void eventfd_child(void *arg)
{
	int *fds = arg;
	UT_CHECK(strstr(ut_fdinfo(fds[1]), "eventfd-semaphore: 1") != NULL, "semaphore flag");
	UT_CHECK(ut_cloexec(fds[0]) && !ut_cloexec(fds[1]), "FD_CLOEXEC");
	eventfd_check(fds[0], fds[1], "child");
	uint64_t seven = 7;
	UT_CHECK(write(fds[0], &seven, 8) == 8, "write");
}

Test(anon, eventfd_normal_and_semaphore)
{
	ut_protect_existing();
	int fds[2] = { eventfd(5, EFD_NONBLOCK | EFD_CLOEXEC), eventfd(3, EFD_NONBLOCK | EFD_SEMAPHORE) };
	ut_prepare();
	pid_t pid = ut_child(eventfd_child, fds);
	fdremap_finish();
	ut_wait(pid);
	ut_fails = 0;
	eventfd_check(fds[0], fds[1], "parent"); /* the child's write of 7 is not here */
	cr_assert_eq(ut_fails, 0);
}

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ll + t.tv_nsec;
}

/* pending expirations survive; the next ones keep the 50 ms period */
static void timer_check(int t, const char *who)
{
	uint64_t n = 0;
	UT_CHECK(read(t, &n, 8) == 8 && n >= 2, "%s: %llu pending expirations, want >= 2", who, (unsigned long long)n);
	struct itimerspec its;
	timerfd_gettime(t, &its);
	UT_CHECK(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 50000000, "%s: interval", who);
	int64_t t0 = now_ns();
	uint64_t total = 0;
	while (total < 6) {
		struct pollfd pfd = { t, POLLIN, 0 };
		poll(&pfd, 1, 1000);
		if (read(t, &n, 8) == 8)
			total += n;
		else
			UT_CHECK(errno == EAGAIN, "%s: read %s", who, strerror(errno));
		if (now_ns() - t0 > 2000000000ll)
			break;
	}
	int64_t ms = (now_ns() - t0) / 1000000;
	UT_CHECK(total >= 6 && ms >= 250 && ms <= 420, "%s: %llu expirations in %lld ms (want 6 in ~300)",
		 who, (unsigned long long)total, (long long)ms);
}

static void timer_child(void *arg)
{
	int t = *(int *)arg;
	UT_CHECK(strstr(ut_fdinfo(t), "clockid: 1") != NULL, "clock");
	timer_check(t, "child");
}

Test(anon, timerfd_periodic_cadence)
{
	ut_protect_existing();
	int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	struct itimerspec its = { { 0, 50000000 }, { 0, 50000000 } };
	cr_assert_eq(timerfd_settime(t, 0, &its, NULL), 0);
	usleep(130000); /* two expirations pending */
	ut_prepare();
	pid_t pid = ut_child(timer_child, &t);
	fdremap_finish();
	ut_fails = 0;
	timer_check(t, "parent");
	cr_assert_eq(ut_fails, 0);
	ut_wait(pid);
}

static void sig_child(void *arg)
{
	int sfd = *(int *)arg;
	UT_CHECK(strstr(ut_fdinfo(sfd), "sigmask:\t0000000000004200") != NULL, "mask: %s", ut_fdinfo(sfd));
	struct signalfd_siginfo si;
	int got = 0;
	for (int i = 0; i < 2000 && got < 2; i++) {
		struct pollfd pfd = { sfd, POLLIN, 0 };
		poll(&pfd, 1, 10);
		while (read(sfd, &si, sizeof si) == sizeof si)
			got |= si.ssi_signo == SIGUSR1 ? 1 : si.ssi_signo == SIGTERM ? 2 : 0;
	}
	UT_CHECK(got == 3, "child's signalfd got 0x%x", got);
}

Test(anon, signalfd_reaches_only_the_childs)
{
	ut_protect_existing();
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigaddset(&m, SIGTERM);
	sigprocmask(SIG_BLOCK, &m, NULL);
	int sfd = signalfd(-1, &m, SFD_NONBLOCK);
	ut_prepare();
	pid_t pid = ut_child(sig_child, &sfd);
	fdremap_finish();
	usleep(20000);
	kill(pid, SIGUSR1);
	kill(pid, SIGTERM);
	ut_wait(pid);
	struct signalfd_siginfo si;
	cr_assert_eq(read(sfd, &si, sizeof si), -1, "the parent's signalfd saw signal %d", si.ssi_signo);
}

/* ---- epoll over 100 descriptors of mixed kinds --------------------------------------- */

struct ep_case { int ep, inner, fds[100], wfds[100]; char kind[100]; };

static uint32_t ev_of(int i)
{
	uint32_t e = EPOLLIN;
	if (i % 4 == 1) e |= EPOLLET;
	if (i % 4 == 2) e |= EPOLLONESHOT;
	if (i % 8 == 3) e |= EPOLLEXCLUSIVE;
	return e;
}

/* fire descriptor i: make it readable */
static void fire(struct ep_case *c, int i)
{
	uint64_t one = 1;
	if (c->kind[i] == 'e')
		write(c->fds[i], &one, 8);
	else
		write(c->wfds[i], "!", 1);
}

/* the set of data values epoll reports (outer, and the inner through it) */
static int collect(struct ep_case *c, uint64_t *seen, int max)
{
	struct epoll_event ev[128];
	int n = 0;
	int r = epoll_wait(c->ep, ev, 128, 100);
	for (int k = 0; k < r && n < max; k++) {
		if (ev[k].data.u64 == 0xEEEE) {
			struct epoll_event iev[128];
			int ir = epoll_wait(c->inner, iev, 128, 0);
			for (int j = 0; j < ir && n < max; j++)
				seen[n++] = iev[j].data.u64;
		} else {
			seen[n++] = ev[k].data.u64;
		}
	}
	return n;
}

static int only(const uint64_t *seen, int n, const int *want, int nw)
{
	if (n != nw)
		return 0;
	for (int i = 0; i < nw; i++) {
		int f = 0;
		for (int k = 0; k < n; k++)
			f |= seen[k] == 0xDA7A0000ull + (uint64_t)want[i];
		if (!f)
			return 0;
	}
	return 1;
}

static void epoll_child(void *arg)
{
	struct ep_case *c = arg;
	/* same registration list as the parent (compare the fdinfo lines) */
	char *mine = strdup(ut_fdinfo(c->ep));
	UT_CHECK(strstr(mine, "tfd:"), "no registrations");
	int want[] = { 4, 9, 33, 66, 2 };
	for (int i = 0; i < 5; i++)
		fire(c, want[i]);
	uint64_t seen[128];
	int n = collect(c, seen, 128);
	UT_CHECK(only(seen, n, want, 5), "child saw %d events", n);
	free(mine);
}

Test(anon, epoll_100_mixed_isolated)
{
	ut_protect_existing();
	struct ep_case c;
	c.ep = epoll_create1(EPOLL_CLOEXEC);
	c.inner = epoll_create1(0);
	for (int i = 0; i < 100; i++) {
		int k = i % 3;
		if (k == 0) {
			int p[2];
			pipe2(p, O_NONBLOCK);
			c.fds[i] = p[0], c.wfds[i] = p[1], c.kind[i] = 'p';
		} else if (k == 1) {
			c.fds[i] = c.wfds[i] = eventfd(0, EFD_NONBLOCK), c.kind[i] = 'e';
		} else {
			int sv[2];
			socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv);
			c.fds[i] = sv[0], c.wfds[i] = sv[1], c.kind[i] = 's';
		}
		struct epoll_event ev = { ev_of(i), { .u64 = 0xDA7A0000ull + (uint64_t)i } };
		/* every tenth lives in the nested epoll */
		cr_assert_eq(epoll_ctl(i % 10 == 9 ? c.inner : c.ep, EPOLL_CTL_ADD, c.fds[i], &ev), 0, "add %d", i);
	}
	struct epoll_event ev = { EPOLLIN, { .u64 = 0xEEEE } };
	cr_assert_eq(epoll_ctl(c.ep, EPOLL_CTL_ADD, c.inner, &ev), 0);
	char *before = strdup(ut_fdinfo(c.ep));
	ut_prepare();
	pid_t pid = ut_child(epoll_child, &c);
	fdremap_finish();
	ut_wait(pid);
	cr_assert_str_eq(ut_fdinfo(c.ep), before, "the parent's interest list changed");
	uint64_t seen[128];
	int n = collect(&c, seen, 128);
	cr_assert_eq(n, 0, "the parent saw %d of the child's events (first data %llx)", n,
		     n ? (unsigned long long)seen[0] : 0ull);
	int want[] = { 5, 19, 50 };
	for (int i = 0; i < 3; i++)
		fire(&c, want[i]);
	n = collect(&c, seen, 128);
	cr_assert(only(seen, n, want, 3), "parent saw %d events", n);
	free(before);
}

/* a child's epoll lists the same registrations (tfd, events, data) */
static void eplist_child(void *arg)
{
	const char *want = arg;
	int ep = atoi(want);
	want = strchr(want, '|') + 1;
	const char *got = ut_fdinfo(ep);
	/* compare "tfd: events: data:" of each line; ino differs for rebuilt targets */
	int n = 0;
	for (const char *p = got; (p = strstr(p, "tfd:")); p++)
		n++;
	UT_CHECK(n == 3, "child's epoll %d has %d registrations, not 3:\n%s", ep, n, got);
	for (const char *p = want; (p = strstr(p, "tfd:")); p++) {
		char line[80];
		const char *pos = strstr(p, "pos:");
		snprintf(line, sizeof line, "%.*s", (int)(pos - p), p);
		UT_CHECK(strstr(got, line) != NULL, "registration missing: %s\nchild's epoll %d:\n%s", line, ep, got);
	}
}

Test(anon, epoll_registrations_copied_stale_number)
{
	ut_protect_existing();
	int ep = epoll_create1(0);
	int p[2];
	cr_assert_geq(ep, 0);
	cr_assert_eq(pipe(p), 0);
	int e = eventfd(0, 0);
	cr_assert_geq(e, 0);
	struct epoll_event ev = { EPOLLIN | EPOLLET | EPOLLONESHOT, { .u64 = 0x1111 } };
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u64 = 0x2222;
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev), 0);
	/* registration under a number that is then closed, its dup kept (epoll(7) Q6) */
	int e2 = eventfd(0, 0);
	cr_assert_geq(e2, 0);
	ev.events = EPOLLIN;
	ev.data.u64 = 0x3333;
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, e2, &ev), 0);
	int keep = dup(e2);
	cr_assert_geq(keep, 0);
	close(e2);
	char before[8192];
	snprintf(before, sizeof before, "%d|%s", ep, ut_fdinfo(ep));
	/* the three registrations are what the child must find */
	int regs = 0;
	for (const char *q = before; (q = strstr(q, "tfd:")); q++)
		regs++;
	cr_assert_eq(regs, 3, "the parent's epoll has %d registrations:\n%s", regs, before);
	ut_prepare();
	pid_t pid = ut_child(eplist_child, before);
	fdremap_finish();
	ut_wait(pid);
}

/* ---- inotify ------------------------------------------------------------------------ */

struct in_case { int fd; char d1[64], d2[64], d3[64]; };

static void inotify_child(void *arg)
{
	struct in_case *c = arg;
	const char *info = ut_fdinfo(c->fd);
	UT_CHECK(strstr(info, "inotify wd:1 ") && strstr(info, "inotify wd:3 "), "watches: %s", info);
	UT_CHECK(!strstr(info, "inotify wd:4 "), "watch on a renamed directory re-added");
	UT_CHECK(strstr(ut_log, "watch 4") != NULL, "no warning for watch 4: %s", ut_log);
	char f[128];
	snprintf(f, sizeof f, "%s/new", c->d2);
	close(open(f, O_CREAT | O_WRONLY, 0600));
	char buf[4096] __attribute__((aligned(8)));
	ssize_t r = read(c->fd, buf, sizeof buf);
	struct inotify_event *ev = (struct inotify_event *)buf;
	UT_CHECK(r > 0 && ev->wd == 3 && (ev->mask & IN_CREATE) && !strcmp(ev->name, "new"),
		 "child's event: r=%zd wd=%d", r, r > 0 ? ev->wd : -1);
}

Test(anon, inotify_watches_readded)
{
	ut_protect_existing();
	struct in_case c;
	strcpy(c.d1, "/tmp/fdr-inoXXXXXX");
	strcpy(c.d2, "/tmp/fdr-inoXXXXXX");
	strcpy(c.d3, "/tmp/fdr-inoXXXXXX");
	cr_assert(mkdtemp(c.d1) && mkdtemp(c.d2) && mkdtemp(c.d3));
	c.fd = inotify_init1(IN_NONBLOCK);
	cr_assert_eq(inotify_add_watch(c.fd, c.d1, IN_CREATE), 1);
	int tmp = inotify_add_watch(c.fd, "/tmp", IN_DELETE);
	cr_assert_eq(tmp, 2);
	inotify_rm_watch(c.fd, tmp);
	char cwd[256];
	cr_assert(getcwd(cwd, sizeof cwd));
	cr_assert_eq(chdir("/tmp"), 0);
	/* relative to the cwd of that moment */
	cr_assert_eq(inotify_add_watch(c.fd, c.d2 + 5, IN_CREATE | IN_DELETE), 3);
	cr_assert_eq(chdir(cwd), 0);
	cr_assert_eq(inotify_add_watch(c.fd, c.d3, IN_CREATE), 4);
	char moved[80];
	snprintf(moved, sizeof moved, "%s-moved", c.d3);
	rename(c.d3, moved); /* the recorded path no longer names the watched directory */
	char buf[4096];
	while (read(c.fd, buf, sizeof buf) > 0)
		;
	ut_log_clear();
	ut_prepare();
	pid_t pid = ut_child(inotify_child, &c);
	fdremap_finish();
	ut_wait(pid);
	rmdir(moved);
	char f[128];
	snprintf(f, sizeof f, "%s/new", c.d2);
	unlink(f);
	rmdir(c.d1);
	rmdir(c.d2);
}
