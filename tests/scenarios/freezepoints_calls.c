/* freezepoints_calls.c — the blocking call of each freezepoints thread and
 * the checks of what it returned (see freezepoints.c). */
#include "freezepoints.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

char lockpath[64], flockpath[64];

pthread_mutex_t go_mx = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;
int go;                         /* set by main after EOF */
volatile int stop_sleepers;
pthread_mutex_t held_mx = PTHREAD_MUTEX_INITIALIZER;   /* held by main */
pthread_mutex_t held_tmx = PTHREAD_MUTEX_INITIALIZER;  /* held by main */
pthread_rwlock_t held_rw = PTHREAD_RWLOCK_INITIALIZER; /* wr-held by main */
sem_t sem_a, sem_b, sem_c;
int sp_recv[2], sp_recvfrom[2], sp_recvmsg[2];
int listen_fd;
pid_t helper;
pthread_t join_target;
static __thread volatile sig_atomic_t got_usr1;

void on_usr1(int s) { (void)s; got_usr1 = 1; }

static void check_int(struct fp *f, long r, long want)
{
	if (r != want)
		scn_fail("%s returned %ld (want %ld): %s", f->name, r, want,
			 r < 0 ? strerror(errno) : "-");
}

static void check_err(struct fp *f, int e)
{
	if (e)
		scn_fail("%s returned error %d: %s", f->name, e, strerror(e));
}

static struct timespec abs_in(clockid_t c, int secs)
{
	return scn_ts_from_ns(scn_now_ns(c) + (int64_t)secs * 1000000000);
}

/* ---- descriptor waits: stdin EOF wakes them ---- */
static void fp_poll(struct fp *f)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	f->entered = 1;
	check_int(f, poll(&p, 1, -1), 1);
}
static void fp_ppoll(struct fp *f)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	f->entered = 1;
	check_int(f, ppoll(&p, 1, NULL, NULL), 1);
}
static void fp_select(struct fp *f)
{
	fd_set r;
	FD_ZERO(&r);
	FD_SET(0, &r);
	f->entered = 1;
	check_int(f, select(1, &r, NULL, NULL, NULL), 1);
}
static void fp_pselect(struct fp *f)
{
	fd_set r;
	FD_ZERO(&r);
	FD_SET(0, &r);
	f->entered = 1;
	check_int(f, pselect(1, &r, NULL, NULL, NULL, NULL), 1);
}
static int epoll_on_stdin(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0)
		scn_fail("epoll setup: %s", strerror(errno));
	return ep;
}
static void fp_epoll_wait(struct fp *f)
{
	struct epoll_event ev;
	int ep = epoll_on_stdin();
	f->entered = 1;
	check_int(f, epoll_wait(ep, &ev, 1, -1), 1);
}
static void fp_epoll_pwait(struct fp *f)
{
	struct epoll_event ev;
	int ep = epoll_on_stdin();
	f->entered = 1;
	check_int(f, epoll_pwait(ep, &ev, 1, -1, NULL), 1);
}
static void fp_epoll_pwait2(struct fp *f)
{
	struct epoll_event ev;
	int ep = epoll_on_stdin();
	f->entered = 1;
	check_int(f, epoll_pwait2(ep, &ev, 1, NULL, NULL), 1);
}
static void fp_read(struct fp *f)
{
	char c;
	int fd = dup(0);
	f->entered = 1;
	check_int(f, read(fd, &c, 1), 0);
}
static void fp_readv(struct fp *f)
{
	char c;
	struct iovec iov = { &c, 1 };
	int fd = dup(0);
	f->entered = 1;
	check_int(f, readv(fd, &iov, 1), 0);
}
static void fp_fgets(struct fp *f)
{
	char line[64];
	FILE *in = fdopen(dup(0), "r");
	f->entered = 1;
	if (fgets(line, sizeof line, in) != NULL || !feof(in))
		scn_fail("fgets: no clean EOF (error=%d)", ferror(in));
}
/* ---- sockets: shutdown / connect by main ---- */
static void fp_recv(struct fp *f)
{
	char c;
	f->entered = 1;
	check_int(f, recv(sp_recv[0], &c, 1, 0), 0);
}
static void fp_recvfrom(struct fp *f)
{
	char c;
	f->entered = 1;
	check_int(f, recvfrom(sp_recvfrom[0], &c, 1, 0, NULL, NULL), 0);
}
static void fp_recvmsg(struct fp *f)
{
	char c;
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	f->entered = 1;
	check_int(f, recvmsg(sp_recvmsg[0], &m, 0), 0);
}
static void fp_accept(struct fp *f)
{
	f->entered = 1;
	int c = accept(listen_fd, NULL, NULL);
	if (c < 0)
		scn_fail("accept: %s", strerror(errno));
	else
		close(c);
}
/* ---- pthread objects: main acts after EOF ---- */
static void fp_cond_wait(struct fp *f)
{
	int e = 0;
	pthread_mutex_lock(&go_mx);
	f->entered = 1;
	while (!go && !e)
		e = pthread_cond_wait(&go_cv, &go_mx);
	pthread_mutex_unlock(&go_mx);
	check_err(f, e);
}
static void fp_cond_timedwait(struct fp *f)
{
	int e = 0;
	struct timespec dl = abs_in(CLOCK_REALTIME, 60);
	pthread_mutex_lock(&go_mx);
	f->entered = 1;
	while (!go && !e)
		e = pthread_cond_timedwait(&go_cv, &go_mx, &dl);
	pthread_mutex_unlock(&go_mx);
	check_err(f, e);
}
static void fp_cond_clockwait(struct fp *f)
{
	int e = 0;
	struct timespec dl = abs_in(CLOCK_MONOTONIC, 60);
	pthread_mutex_lock(&go_mx);
	f->entered = 1;
	while (!go && !e)
		e = pthread_cond_clockwait(&go_cv, &go_mx, CLOCK_MONOTONIC, &dl);
	pthread_mutex_unlock(&go_mx);
	check_err(f, e);
}
static void fp_mutex_lock(struct fp *f)
{
	f->entered = 1;
	int e = pthread_mutex_lock(&held_mx);
	check_err(f, e);
	if (!e)
		check_err(f, pthread_mutex_unlock(&held_mx));
}
static void fp_mutex_timedlock(struct fp *f)
{
	struct timespec dl = abs_in(CLOCK_REALTIME, 60);
	f->entered = 1;
	int e = pthread_mutex_timedlock(&held_tmx, &dl);
	check_err(f, e);
	if (!e)
		check_err(f, pthread_mutex_unlock(&held_tmx));
}
static void rw_done(struct fp *f, int e)
{
	check_err(f, e);
	if (!e)
		check_err(f, pthread_rwlock_unlock(&held_rw));
}
static void fp_rdlock(struct fp *f) { f->entered = 1; rw_done(f, pthread_rwlock_rdlock(&held_rw)); }
static void fp_wrlock(struct fp *f) { f->entered = 1; rw_done(f, pthread_rwlock_wrlock(&held_rw)); }
static void fp_timedrdlock(struct fp *f)
{
	struct timespec dl = abs_in(CLOCK_REALTIME, 60);
	f->entered = 1;
	rw_done(f, pthread_rwlock_timedrdlock(&held_rw, &dl));
}
static void fp_timedwrlock(struct fp *f)
{
	struct timespec dl = abs_in(CLOCK_REALTIME, 60);
	f->entered = 1;
	rw_done(f, pthread_rwlock_timedwrlock(&held_rw, &dl));
}
void *join_target_fn(void *a)
{
	(void)a;
	struct pollfd p = { .fd = 0, .events = POLLIN };
	while (poll(&p, 1, -1) != 1)
		;
	return (void *)(uintptr_t)0xabcdef;
}
static void fp_join(struct fp *f)
{
	void *v = NULL;
	f->entered = 1;
	int e = pthread_join(join_target, &v);
	check_err(f, e);
	if (!e && v != (void *)(uintptr_t)0xabcdef)
		scn_fail("pthread_join: value %p, want 0xabcdef", v);
}
static void fp_sem_wait(struct fp *f) { f->entered = 1; check_int(f, sem_wait(&sem_a), 0); }
static void fp_sem_timedwait(struct fp *f)
{
	struct timespec dl = abs_in(CLOCK_REALTIME, 60);
	f->entered = 1;
	check_int(f, sem_timedwait(&sem_b, &dl), 0);
}
static void fp_sem_clockwait(struct fp *f)
{
	struct timespec dl = abs_in(CLOCK_MONOTONIC, 60);
	f->entered = 1;
	check_int(f, sem_clockwait(&sem_c, CLOCK_MONOTONIC, &dl), 0);
}
/* ---- sleeps: loop until stopped, every sleep checked ---- */
static void sleep_check(struct fp *f, int r, int64_t t0, int64_t want_ns)
{
	int64_t el = scn_mono_ns() - t0;
	if (r != 0)
		scn_fail("%s returned %d (errno %s)", f->name, r, strerror(errno));
	else if (el < want_ns)
		scn_fail("%s returned after %lld ns, asked %lld", f->name, (long long)el,
			 (long long)want_ns);
}
static void fp_nanosleep(struct fp *f)
{
	while (!stop_sleepers) {
		struct timespec ts = { 0, 200000000 };
		int64_t t0 = scn_mono_ns();
		f->entered = 1;
		sleep_check(f, nanosleep(&ts, NULL), t0, 200000000);
	}
}
static void fp_clock_nanosleep(struct fp *f)
{
	while (!stop_sleepers) {
		struct timespec ts = { 0, 200000000 };
		int64_t t0 = scn_mono_ns();
		f->entered = 1;
		sleep_check(f, clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), t0, 200000000);
	}
}
static void fp_clock_nanosleep_abs(struct fp *f)
{
	while (!stop_sleepers) {
		int64_t t0 = scn_mono_ns();
		struct timespec dl = scn_ts_from_ns(t0 + 200000000);
		f->entered = 1;
		sleep_check(f, clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL), t0,
			    200000000);
	}
}
static void fp_sleep(struct fp *f)
{
	while (!stop_sleepers) {
		int64_t t0 = scn_mono_ns();
		f->entered = 1;
		sleep_check(f, (int)sleep(1), t0, 1000000000);
	}
}
static void fp_usleep(struct fp *f)
{
	while (!stop_sleepers) {
		int64_t t0 = scn_mono_ns();
		f->entered = 1;
		sleep_check(f, usleep(200000), t0, 200000000);
	}
}
/* ---- signals: sent by main after EOF ---- */
static void fp_pause(struct fp *f)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	f->entered = 1;
	while (!got_usr1) {
		int r = pause();
		int e = errno;
		if (!got_usr1)   /* main keeps sending until done: a racing send is ok */
			scn_fail("pause returned %d (%s) without SIGUSR1", r, strerror(e));
	}
}
static void fp_sigsuspend(struct fp *f)
{
	sigset_t s;
	pthread_sigmask(SIG_BLOCK, NULL, &s);
	sigdelset(&s, SIGUSR1);
	f->entered = 1;
	int r = sigsuspend(&s);
	if (r != -1 || errno != EINTR || !got_usr1)
		scn_fail("sigsuspend returned %d (%s), got_usr1=%d", r, strerror(errno), got_usr1);
}
static void fp_sigwaitinfo(struct fp *f)
{
	sigset_t s;
	siginfo_t si;
	sigemptyset(&s);
	sigaddset(&s, SIG_WI);
	f->entered = 1;
	int r = sigwaitinfo(&s, &si);
	if (r != SIG_WI || si.si_value.sival_int != 77)
		scn_fail("sigwaitinfo returned %d (%s), value %d", r, strerror(errno),
			 si.si_value.sival_int);
}
static void fp_sigtimedwait(struct fp *f)
{
	sigset_t s;
	siginfo_t si;
	struct timespec ts = { 60, 0 };
	sigemptyset(&s);
	sigaddset(&s, SIG_TW);
	f->entered = 1;
	int r = sigtimedwait(&s, &si, &ts);
	if (r != SIG_TW || si.si_value.sival_int != 78)
		scn_fail("sigtimedwait returned %d (%s)", r, strerror(errno));
}
static void fp_sigwait(struct fp *f)
{
	sigset_t s;
	int sig = 0;
	sigemptyset(&s);
	sigaddset(&s, SIG_W);
	f->entered = 1;
	int e = sigwait(&s, &sig);
	if (e || sig != SIG_W)
		scn_fail("sigwait returned %d, sig %d", e, sig);
}
/* ---- processes and file locks: the helper exits at EOF ---- */
static void fp_waitpid(struct fp *f)
{
	int st = 0;
	f->entered = 1;
	pid_t r = waitpid(helper, &st, 0);
	if (scn_is_clone()) {
		/* The helper is the original's child, not the clone's. */
		if (r != -1 || errno != ECHILD)
			scn_fail("waitpid in a clone returned %d (%s), want ECHILD", (int)r,
				 strerror(errno));
	} else if (r != helper || !WIFEXITED(st) || WEXITSTATUS(st) != 42) {
		scn_fail("waitpid returned %d status 0x%x (%s), want %d exit 42", (int)r, st,
			 strerror(errno), (int)helper);
	}
}
static void fp_fcntl_setlkw(struct fp *f)
{
	int fd = open(lockpath, O_RDWR | O_CLOEXEC);
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	f->entered = 1;
	check_int(f, fcntl(fd, F_SETLKW, &l), 0);
	l.l_type = F_UNLCK;
	fcntl(fd, F_SETLK, &l);
	close(fd);
}
static void fp_fcntl_ofd_setlkw(struct fp *f)
{
	int fd = open(lockpath, O_RDWR | O_CLOEXEC);
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	f->entered = 1;
	check_int(f, fcntl(fd, F_OFD_SETLKW, &l), 0);
	l.l_type = F_UNLCK;
	fcntl(fd, F_OFD_SETLK, &l);
	close(fd);
}
static void fp_flock(struct fp *f)
{
	int fd = open(flockpath, O_RDWR | O_CLOEXEC);
	f->entered = 1;
	check_int(f, flock(fd, LOCK_EX), 0);
	flock(fd, LOCK_UN);
	close(fd);
}

struct fp fps[] = {
	{ "poll", fp_poll }, { "ppoll", fp_ppoll }, { "select", fp_select },
	{ "pselect", fp_pselect }, { "epoll_wait", fp_epoll_wait },
	{ "epoll_pwait", fp_epoll_pwait }, { "epoll_pwait2", fp_epoll_pwait2 },
	{ "read", fp_read }, { "readv", fp_readv }, { "fgets", fp_fgets },
	{ "recv", fp_recv }, { "recvfrom", fp_recvfrom }, { "recvmsg", fp_recvmsg },
	{ "accept", fp_accept },
	{ "pthread_cond_wait", fp_cond_wait }, { "pthread_cond_timedwait", fp_cond_timedwait },
	{ "pthread_cond_clockwait", fp_cond_clockwait },
	{ "pthread_mutex_lock", fp_mutex_lock }, { "pthread_mutex_timedlock", fp_mutex_timedlock },
	{ "pthread_rwlock_rdlock", fp_rdlock }, { "pthread_rwlock_wrlock", fp_wrlock },
	{ "pthread_rwlock_timedrdlock", fp_timedrdlock },
	{ "pthread_rwlock_timedwrlock", fp_timedwrlock },
	{ "pthread_join", fp_join },
	{ "sem_wait", fp_sem_wait }, { "sem_timedwait", fp_sem_timedwait },
	{ "sem_clockwait", fp_sem_clockwait },
	{ "nanosleep", fp_nanosleep }, { "clock_nanosleep", fp_clock_nanosleep },
	{ "clock_nanosleep(ABSTIME)", fp_clock_nanosleep_abs }, { "sleep", fp_sleep },
	{ "usleep", fp_usleep },
	{ "pause", fp_pause }, { "sigsuspend", fp_sigsuspend },
	{ "sigwaitinfo", fp_sigwaitinfo }, { "sigtimedwait", fp_sigtimedwait },
	{ "sigwait", fp_sigwait },
	{ "waitpid", fp_waitpid }, { "fcntl(F_SETLKW)", fp_fcntl_setlkw },
	{ "fcntl(F_OFD_SETLKW)", fp_fcntl_ofd_setlkw }, { "flock", fp_flock },
	/* freezepoints_sized.c */
	{ "read(sized)", fp_read_sized }, { "recv(sized)", fp_recv_sized },
	{ "recvfrom(sized)", fp_recvfrom_sized }, { "poll(sized)", fp_poll_sized },
	{ "ppoll(sized)", fp_ppoll_sized }, { "fgets(sized)", fp_fgets_sized },
	{ "fgets_unlocked(sized)", fp_fgets_unlocked_sized }, { "fread(sized)", fp_fread_sized },
	{ "fread_unlocked(sized)", fp_fread_unlocked_sized },
	{ "fgetws(sized)", fp_fgetws_sized }, { "fgetwc", fp_fgetwc },
	{ "getline", fp_getline }, { "getc_unlocked", fp_getc_unlocked },
};
const int nfp = (int)(sizeof fps / sizeof fps[0]);
