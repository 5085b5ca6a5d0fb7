/* timers itimer|alarm|thread — POSIX timers, interval timers and alarm().
 *
 * Before READY the program makes (after a throw-away timer, so that ids
 * have a gap):
 *   T1  CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+2, value 0x1111, every 20 ms
 *   T2  CLOCK_MONOTONIC, SIGEV_THREAD_ID at worker "target", SIGRTMIN+3,
 *       value 0x2222, every 30 ms
 *   T3  CLOCK_BOOTTIME, SIGEV_NONE, first expiry in 1000 s, then every 7 s
 *   T4  CLOCK_REALTIME, SIGEV_SIGNAL, never armed
 *   ITIMER_PROF 1000 s of CPU, then every 500 s (never fires here)
 * and, by variant:
 *   itimer  setitimer(ITIMER_REAL) every 25 ms (SIGALRM)
 *   alarm   alarm(1000)
 *   thread  also T5, SIGEV_THREAD every 20 ms (glibc runs it on a thread)
 * The process-directed signals are blocked in every thread but a "sink"
 * thread, T2's only in the target, so that no other call sees EINTR.
 *
 * After EOF every process (the original and each clone) checks that the
 * program's timer ids still work (timer_gettime on each, no EINVAL) and
 * name the same timers (each its own interval, T4 disarmed, T3's time
 * left at most 1000 s), the itimers' intervals and time left, that T1, T2
 * (on the target thread, with their values) and SIGALRM (itimer) and T5
 * (thread) go on firing, that T2 never fires on another thread, and that
 * timer_settime re-arms T1. */
#include "scn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

enum { ITIMER, ALARM, THREAD } variant;
static timer_t t1, t2, t3, t4, t5;
static pthread_t target_th, sink_th;
static volatile int done;
static volatile int n1, n2, n2_wrong, nalrm, nbadval, n5;
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started;

#define MS(x) ((long)(x) * 1000000L)

static void on_t1(int s, siginfo_t *si, void *uc)
{
	(void)s; (void)uc;
	if (done)
		return;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 0x1111)
		nbadval++;
	n1++;
}

static void on_t2(int s, siginfo_t *si, void *uc)
{
	(void)s; (void)uc;
	if (done)
		return;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 0x2222)
		nbadval++;
	if (pthread_equal(pthread_self(), target_th))
		n2++;
	else
		n2_wrong++;
}

static void on_alrm(int s) { (void)s; nalrm++; }
static void on_t5(union sigval v) { if (v.sival_int == 0x5555) n5++; else nbadval++; }

static void block_timer_signals(int how, int which)
{
	sigset_t s;
	sigemptyset(&s);
	if (which & 1) {
		sigaddset(&s, SIGRTMIN + 2);
		sigaddset(&s, SIGALRM);
		sigaddset(&s, SIGPROF);
	}
	if (which & 2)
		sigaddset(&s, SIGRTMIN + 3);
	pthread_sigmask(how, &s, NULL);
}

/* sink (arg 1) and target (arg 2): open their signals, wait for them */
static volatile pid_t target_tid;
static void *waiter(void *arg)
{
	int which = (int)(intptr_t)arg;
	block_timer_signals(SIG_UNBLOCK, which);
	pthread_mutex_lock(&mx);
	if (which == 2)
		target_tid = scn_gettid();
	started++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	while (!done)
		pause();   /* a freeze point; each timer signal ends it */
	return NULL;
}
static void mk(timer_t *t, clockid_t clk, int notify, int sig, int val, pid_t tid)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = notify;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_int = val;
	if (notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = tid;
	if (notify == SIGEV_THREAD)
		sev.sigev_notify_function = on_t5;
	if (timer_create(clk, &sev, t) != 0)
		scn_fail("timer_create: %s", strerror(errno));
}

static void arm(timer_t t, long first_ns, long every_ns)
{
	struct itimerspec its = { scn_ts_from_ns(every_ns), scn_ts_from_ns(first_ns) };
	if (timer_settime(t, 0, &its, NULL) != 0)
		scn_fail("timer_settime: %s", strerror(errno));
}

static int64_t ts_ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }
static int64_t tv_us(struct timeval t) { return (int64_t)t.tv_sec * 1000000 + t.tv_usec; }

static void check_timer(const char *name, timer_t t, int64_t every, int64_t max_left, int armed)
{
	struct itimerspec its;
	if (timer_gettime(t, &its) != 0) {
		scn_fail("%s: timer_gettime: %s (the timer is gone)", name, strerror(errno));
		return;
	}
	if (ts_ns(its.it_interval) != every)
		scn_fail("%s: interval %lld ns, expected %lld", name,
		         (long long)ts_ns(its.it_interval), (long long)every);
	int64_t left = ts_ns(its.it_value);
	if (armed && (left <= 0 || left > max_left))
		scn_fail("%s: %lld ns left, expected (0, %lld]", name, (long long)left,
		         (long long)max_left);
	if (!armed && left != 0)
		scn_fail("%s: armed (%lld ns left), expected disarmed", name, (long long)left);
}

/* CPU itimers: setitimer() rounds the time up by one tick (kernel
 * set_cpu_itimer), so up to a second more than asked is accepted. */
static void check_itimer(const char *name, int which, int64_t every_us, int64_t max_left_us)
{
	if (which != ITIMER_REAL)
		max_left_us += 1000000;
	struct itimerval v;
	if (getitimer(which, &v) != 0) {
		scn_fail("%s: getitimer: %s", name, strerror(errno));
		return;
	}
	if (tv_us(v.it_interval) != every_us)
		scn_fail("%s: interval %lld us, expected %lld", name,
		         (long long)tv_us(v.it_interval), (long long)every_us);
	/* a periodic ITIMER_REAL reads 0 left while its SIGALRM is pending
	 * (the kernel re-arms it when the signal is taken) */
	int64_t min_left = which == ITIMER_REAL && every_us ? 0 : 1;
	if (tv_us(v.it_value) < min_left || tv_us(v.it_value) > max_left_us)
		scn_fail("%s: %lld us left, expected [%lld, %lld]", name,
		         (long long)tv_us(v.it_value), (long long)min_left, (long long)max_left_us);
}

/* Wait (bounded, generous: no timing precision) until *counter passes
 * its value at entry. */
static void expect_fires(const char *name, volatile int *counter)
{
	if (scn_failed())
		return;   /* the timers are broken already: do not wait for them */
	int start = *counter;
	for (int i = 0; i < 1000 && *counter == start; i++)
		scn_sleep_ms(10);
	if (*counter == start)
		scn_fail("%s did not fire in 10 s", name);
}

int main(int argc, char **argv)
{
	scn_init();
	const char *v = argc > 1 ? argv[1] : "itimer";
	variant = !strcmp(v, "alarm") ? ALARM : !strcmp(v, "thread") ? THREAD : ITIMER;

	struct sigaction sa = { .sa_sigaction = on_t1, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigaction(SIGRTMIN + 2, &sa, NULL);
	sa.sa_sigaction = on_t2;
	sigaction(SIGRTMIN + 3, &sa, NULL);
	struct sigaction sb = { .sa_handler = on_alrm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sb, NULL);
	sigaction(SIGPROF, &sb, NULL);
	block_timer_signals(SIG_BLOCK, 3);   /* inherited by every thread */

	sink_th = scn_thread(waiter, (void *)(intptr_t)1);
	target_th = scn_thread(waiter, (void *)(intptr_t)2);
	pthread_mutex_lock(&mx);
	while (started < 2)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
	timer_t gap;
	mk(&gap, CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
	mk(&t1, CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 2, 0x1111, 0);
	mk(&t2, CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 3, 0x2222, target_tid);
	mk(&t3, CLOCK_BOOTTIME, SIGEV_NONE, 0, 0, 0);
	mk(&t4, CLOCK_REALTIME, SIGEV_SIGNAL, SIGRTMIN + 2, 0x1111, 0);
	if (variant == THREAD)
		mk(&t5, CLOCK_MONOTONIC, SIGEV_THREAD, 0, 0x5555, 0);
	timer_delete(gap);
	arm(t1, MS(20), MS(20));
	arm(t2, MS(30), MS(30));
	arm(t3, 1000 * MS(1000), 7 * MS(1000));
	if (variant == THREAD)
		arm(t5, MS(20), MS(20));
	struct itimerval prof = { { 500, 0 }, { 1000, 0 } };
	if (setitimer(ITIMER_PROF, &prof, NULL) != 0)
		scn_fail("setitimer(ITIMER_PROF): %s", strerror(errno));
	if (variant == ITIMER) {
		struct itimerval real = { { 0, 25000 }, { 0, 25000 } };
		if (setitimer(ITIMER_REAL, &real, NULL) != 0)
			scn_fail("setitimer(ITIMER_REAL): %s", strerror(errno));
	} else if (variant == ALARM) {
		alarm(1000);
	}
	expect_fires("T1 before the freeze", &n1);

	scn_ready();
	scn_wait_eof();
	scn_watchdog(30);
	const char *who = scn_is_clone() ? "clone" : "original";
	scn_phase("timer checks");
	check_timer("T1", t1, MS(20), MS(20), 1);
	check_timer("T2", t2, MS(30), MS(30), 1);
	check_timer("T3", t3, 7 * MS(1000), 1000 * MS(1000), 1);
	check_timer("T4", t4, 0, 0, 0);
	if (variant == THREAD)
		check_timer("T5", t5, MS(20), MS(20), 1);
	check_itimer("ITIMER_PROF", ITIMER_PROF, 500 * 1000000LL, 1000 * 1000000LL);
	if (variant == ITIMER)
		check_itimer("ITIMER_REAL", ITIMER_REAL, 25000, 25000);
	if (variant == ALARM)
		check_itimer("alarm", ITIMER_REAL, 0, 1000 * 1000000LL);
	scn_phase("timers firing");
	expect_fires("T1", &n1);
	expect_fires("T2 (on its target thread)", &n2);
	if (variant == ITIMER)
		expect_fires("ITIMER_REAL", &nalrm);
	if (variant == THREAD)
		expect_fires("T5 (SIGEV_THREAD)", &n5);
	/* re-arm: the id is the program's, and works like any timer */
	arm(t1, MS(10), MS(10));
	check_timer("T1 re-armed", t1, MS(10), MS(10), 1);
	expect_fires("T1 re-armed", &n1);
	if (n2_wrong)
		scn_fail("%s: T2 fired %d times on a thread other than its target", who, n2_wrong);
	if (nbadval)
		scn_fail("%s: %d timer notifications with a wrong si_code or value", who, nbadval);
	if (variant == ITIMER && nalrm == 0)
		scn_fail("no SIGALRM");

	scn_phase("stop");
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	setitimer(ITIMER_PROF, &off, NULL);
	if (variant == THREAD)
		timer_delete(t5);
	timer_delete(t1);
	timer_delete(t2);
	done = 1;
	pthread_kill(target_th, SIGRTMIN + 3);   /* not through the timers: */
	pthread_kill(sink_th, SIGRTMIN + 2);     /* they may be what failed */
	scn_join(target_th, "target");
	scn_join(sink_th, "sink");
	return scn_finish();
}
