/* timeouts once|loop [TOLERANCE_MS] — every kind of timed wait, interrupted
 * by freezes.  Nothing ever wakes these calls: each must end by timing out,
 * never with EINTR, never before its deadline (CLOCK_MONOTONIC, computed
 * before the call) and at most TOLERANCE_MS (default 300) after it — in the
 * original process and in every clone, where the deadline is the original
 * one.
 *
 *   once: one 3-second wait per thread (the triggers come during it);
 *   loop: waits of 100..400 ms (sleep(): 1 s) again and again until EOF.
 */
#include "scn.h"

#include <errno.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

typedef int (*call_fn)(int ms, int64_t *deadline, char *why, size_t len);

static int pipe_fds[2], ep;
static sem_t sem;
static pthread_mutex_t cmx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;      /* held by main */
static pthread_rwlock_t rdheld = PTHREAD_RWLOCK_INITIALIZER;  /* rd-held by main */
static pthread_t never_exits;
static volatile int never_exits_joined;
static volatile int eof_seen;
static int loop_mode, tolerance_ms = 300;

#define SIG_TW (SIGRTMIN + 6)

static int64_t mono_deadline(int ms)
{
	return scn_mono_ns() + (int64_t)ms * 1000000;
}
/* Realtime deadline read after the monotonic one: it can only be later. */
static struct timespec rt_deadline(int ms)
{
	return scn_ts_from_ns(scn_now_ns(CLOCK_REALTIME) + (int64_t)ms * 1000000);
}
static struct timespec rel(int ms)
{
	return scn_ts_from_ns((int64_t)ms * 1000000);
}

#define EXPECT(cond, ...) do { if (!(cond)) { snprintf(why, len, __VA_ARGS__); return -1; } } while (0)

static int c_sleep(int ms, int64_t *dl, char *why, size_t len)
{
	unsigned s = (unsigned)(ms / 1000);
	*dl = mono_deadline((int)s * 1000);
	unsigned r = sleep(s);
	EXPECT(r == 0, "returned %u", r);
	return 0;
}
static int c_usleep(int ms, int64_t *dl, char *why, size_t len)
{
	*dl = mono_deadline(ms);
	int r = usleep((useconds_t)ms * 1000);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_nanosleep(int ms, int64_t *dl, char *why, size_t len)
{
	struct timespec t = rel(ms);
	*dl = mono_deadline(ms);
	int r = nanosleep(&t, NULL);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_clock_nanosleep(int ms, int64_t *dl, char *why, size_t len)
{
	struct timespec t = rel(ms);
	*dl = mono_deadline(ms);
	int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL);
	EXPECT(r == 0, "returned %s", strerror(r));
	return 0;
}
static int c_clock_nanosleep_abs(int ms, int64_t *dl, char *why, size_t len)
{
	*dl = mono_deadline(ms);
	struct timespec t = scn_ts_from_ns(*dl);
	int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
	EXPECT(r == 0, "returned %s", strerror(r));
	return 0;
}
static int c_poll(int ms, int64_t *dl, char *why, size_t len)
{
	struct pollfd p = { .fd = pipe_fds[0], .events = POLLIN };
	*dl = mono_deadline(ms);
	int r = poll(&p, 1, ms);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_ppoll(int ms, int64_t *dl, char *why, size_t len)
{
	struct pollfd p = { .fd = pipe_fds[0], .events = POLLIN };
	struct timespec t = rel(ms);
	*dl = mono_deadline(ms);
	int r = ppoll(&p, 1, &t, NULL);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_epoll_wait(int ms, int64_t *dl, char *why, size_t len)
{
	struct epoll_event e;
	*dl = mono_deadline(ms);
	int r = epoll_wait(ep, &e, 1, ms);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_epoll_pwait(int ms, int64_t *dl, char *why, size_t len)
{
	struct epoll_event e;
	*dl = mono_deadline(ms);
	int r = epoll_pwait(ep, &e, 1, ms, NULL);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_epoll_pwait2(int ms, int64_t *dl, char *why, size_t len)
{
	struct epoll_event e;
	struct timespec t = rel(ms);
	*dl = mono_deadline(ms);
	int r = epoll_pwait2(ep, &e, 1, &t, NULL);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_select(int ms, int64_t *dl, char *why, size_t len)
{
	fd_set s;
	FD_ZERO(&s);
	FD_SET(pipe_fds[0], &s);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	*dl = mono_deadline(ms);
	int r = select(pipe_fds[0] + 1, &s, NULL, NULL, &tv);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_pselect(int ms, int64_t *dl, char *why, size_t len)
{
	fd_set s;
	FD_ZERO(&s);
	FD_SET(pipe_fds[0], &s);
	struct timespec t = rel(ms);
	*dl = mono_deadline(ms);
	int r = pselect(pipe_fds[0] + 1, &s, NULL, NULL, &t, NULL);
	EXPECT(r == 0, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_sem_timedwait(int ms, int64_t *dl, char *why, size_t len)
{
	*dl = mono_deadline(ms);
	struct timespec t = rt_deadline(ms);
	int r = sem_timedwait(&sem, &t);
	EXPECT(r == -1 && errno == ETIMEDOUT, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_sem_clockwait(int ms, int64_t *dl, char *why, size_t len)
{
	*dl = mono_deadline(ms);
	struct timespec t = scn_ts_from_ns(*dl);
	int r = sem_clockwait(&sem, CLOCK_MONOTONIC, &t);
	EXPECT(r == -1 && errno == ETIMEDOUT, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_cond_timedwait(int ms, int64_t *dl, char *why, size_t len)
{
	int e = 0;
	*dl = mono_deadline(ms);
	struct timespec t = rt_deadline(ms);
	pthread_mutex_lock(&cmx);
	while (e == 0)   /* the condition never becomes true: spurious wake-ups loop */
		e = pthread_cond_timedwait(&cv, &cmx, &t);
	pthread_mutex_unlock(&cmx);
	EXPECT(e == ETIMEDOUT, "returned %s", strerror(e));
	return 0;
}
static int c_cond_clockwait(int ms, int64_t *dl, char *why, size_t len)
{
	int e = 0;
	*dl = mono_deadline(ms);
	struct timespec t = scn_ts_from_ns(*dl);
	pthread_mutex_lock(&cmx);
	while (e == 0)
		e = pthread_cond_clockwait(&cv, &cmx, CLOCK_MONOTONIC, &t);
	pthread_mutex_unlock(&cmx);
	EXPECT(e == ETIMEDOUT, "returned %s", strerror(e));
	return 0;
}
static int c_mutex_timedlock(int ms, int64_t *dl, char *why, size_t len)
{
	*dl = mono_deadline(ms);
	struct timespec t = rt_deadline(ms);
	int e = pthread_mutex_timedlock(&held, &t);
	EXPECT(e == ETIMEDOUT, "returned %s", strerror(e));
	return 0;
}
static int c_rwlock_timedwrlock(int ms, int64_t *dl, char *why, size_t len)
{
	*dl = mono_deadline(ms);
	struct timespec t = rt_deadline(ms);
	int e = pthread_rwlock_timedwrlock(&rdheld, &t);
	EXPECT(e == ETIMEDOUT, "returned %s", strerror(e));
	return 0;
}
static int c_sigtimedwait(int ms, int64_t *dl, char *why, size_t len)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIG_TW);
	struct timespec t = rel(ms);
	*dl = mono_deadline(ms);
	int r = sigtimedwait(&s, NULL, &t);
	EXPECT(r == -1 && errno == EAGAIN, "returned %d: %s", r, strerror(errno));
	return 0;
}
static int c_timedjoin(int ms, int64_t *dl, char *why, size_t len)
{
	*dl = mono_deadline(ms);
	struct timespec t = rt_deadline(ms);
	int e = pthread_timedjoin_np(never_exits, NULL, &t);
	if (e == 0)
		never_exits_joined = 1;   /* main must not join it again */
	EXPECT(e == ETIMEDOUT, "returned %d (%s), the thread has not exited", e, strerror(e));
	return 0;
}

static const struct { const char *name; call_fn fn; } calls[] = {
	{ "sleep", c_sleep }, { "usleep", c_usleep }, { "nanosleep", c_nanosleep },
	{ "clock_nanosleep", c_clock_nanosleep },
	{ "clock_nanosleep(ABSTIME)", c_clock_nanosleep_abs },
	{ "poll", c_poll }, { "ppoll", c_ppoll }, { "epoll_wait", c_epoll_wait },
	{ "epoll_pwait", c_epoll_pwait }, { "epoll_pwait2", c_epoll_pwait2 },
	{ "select", c_select }, { "pselect", c_pselect },
	{ "sem_timedwait", c_sem_timedwait }, { "sem_clockwait", c_sem_clockwait },
	{ "pthread_cond_timedwait", c_cond_timedwait },
	{ "pthread_cond_clockwait", c_cond_clockwait },
	{ "pthread_mutex_timedlock", c_mutex_timedlock },
	{ "pthread_rwlock_timedwrlock", c_rwlock_timedwrlock },
	{ "sigtimedwait", c_sigtimedwait }, { "pthread_timedjoin_np", c_timedjoin },
};
#define NCALLS ((int)(sizeof calls / sizeof calls[0]))

static volatile int waiters_joined;
static void *never_exits_fn(void *a)
{
	(void)a;
	while (!waiters_joined)   /* outlives every pthread_timedjoin_np */
		scn_sleep_ms(50);
	return NULL;
}

static int one(int i, int ms)
{
	char why[160] = "";
	int64_t dl = 0;
	int r = calls[i].fn(ms, &dl, why, sizeof why);
	int64_t late = scn_mono_ns() - dl;
	if (r) {
		scn_fail("%s(%d ms): %s", calls[i].name, ms, why);
		return -1;
	}
	if (late < 0) {
		scn_fail("%s(%d ms) returned %lld us before its deadline", calls[i].name, ms,
			 (long long)(-late / 1000));
		return -1;
	}
	if (late > (int64_t)tolerance_ms * 1000000) {
		scn_fail("%s(%d ms) returned %lld ms after its deadline", calls[i].name, ms,
			 (long long)(late / 1000000));
		return -1;
	}
	return 0;
}

static void *waiter(void *arg)
{
	int i = (int)(intptr_t)arg;
	unsigned seed = (unsigned)i * 7919u + (unsigned)getpid();
	if (!loop_mode)
		return (void *)(intptr_t)one(i, 3000);
	do {
		int ms = !strcmp(calls[i].name, "sleep") ? 1000 : 100 + (int)(rand_r(&seed) % 301);
		if (one(i, ms))
			break;
	} while (!eof_seen);
	return NULL;
}

int main(int argc, char **argv)
{
	scn_init();
	loop_mode = argc > 1 && !strcmp(argv[1], "loop");
	if (argc > 2)
		tolerance_ms = atoi(argv[2]);
	if (pipe(pipe_fds))
		return 2;
	ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };
	epoll_ctl(ep, EPOLL_CTL_ADD, pipe_fds[0], &ev);
	sem_init(&sem, 0, 0);
	pthread_mutex_lock(&held);
	pthread_rwlock_rdlock(&rdheld);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIG_TW);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	never_exits = scn_thread(never_exits_fn, NULL);
	pthread_t t[NCALLS];
	for (int i = 0; i < NCALLS; i++)
		t[i] = scn_thread(waiter, (void *)(intptr_t)i);
	scn_sleep_ms(50);
	scn_ready();
	scn_wait_eof();
	scn_watchdog(15);
	eof_seen = 1;
	for (int i = 0; i < NCALLS; i++)
		scn_join(t[i], calls[i].name);
	waiters_joined = 1;
	if (!never_exits_joined)
		scn_join(never_exits, "never_exits");
	pthread_mutex_unlock(&held);
	pthread_rwlock_unlock(&rdheld);
	return scn_finish();
}
