/* mx_timer — timers armed when frozen: POSIX timers (signal to the process,
 * and to one thread), a disarmed one, setitimer(ITIMER_REAL), alarm().
 * fork() copies none of them; libnuwa re-creates them in a child
 * (DESIGN.md §5, §6): same id, same interval, firing on the same schedule. */
#include "mx.h"

#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define SIG_T1 (SIGRTMIN + 12)
#define SIG_T2 (SIGRTMIN + 13)

static timer_t t_periodic, t_off, t_thread;
static volatile sig_atomic_t thread_hits, thread_wrong;
static volatile pid_t target_tid;
static pthread_t target;
static sem_t target_go;

static void t2_handler(int sig)
{
	if ((pid_t)syscall(SYS_gettid) == target_tid)
		thread_hits++;
	else
		thread_wrong++;
}
static void *target_thread(void *a)
{
	target_tid = (pid_t)syscall(SYS_gettid);
	sem_wait(&target_go);
	target_tid = (pid_t)syscall(SYS_gettid);   /* a child's thread has a new tid */
	sem_wait(&target_go);
	return a;
}

static int wait_count(volatile sig_atomic_t *v, int n, int ms)
{
	int64_t end = scn_mono_ns() + (int64_t)ms * 1000000;
	int start = *v;
	while (*v - start < n && scn_mono_ns() < end)
		scn_sleep_ms(5);
	return *v - start;
}

static void posix_setup(mx_case *c)
{
	struct sigaction sa = { .sa_handler = mx_count_handler, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	MUST(sigaction(SIG_T1, &sa, NULL) == 0);
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIG_T1 };
	MUST(timer_create(CLOCK_MONOTONIC, &ev, &t_periodic) == 0);
	struct itimerspec it = { { 0, 20000000 }, { 0, 20000000 } };
	MUST(timer_settime(t_periodic, 0, &it, NULL) == 0);
	MUST(timer_create(CLOCK_MONOTONIC, &ev, &t_off) == 0);
}
static void posix_periodic_verify(mx_case *c)
{
	struct itimerspec it;
	CHECK(c, timer_gettime(t_periodic, &it) == 0 && it.it_interval.tv_nsec == 20000000 && !it.it_interval.tv_sec,
	      "timer_gettime: %s, interval %ld ns", strerror(errno), it.it_interval.tv_nsec);
	int n = wait_count(&mx_sigcount[SIG_T1], 5, 3000);
	CHECK(c, n >= 5, "%d expirations of a 20 ms timer in 3 s", n);
}
static void posix_disarmed_verify(mx_case *c)
{
	struct itimerspec it = { 0 }, z = { 0 };
	CHECK(c, timer_gettime(t_off, &it) == 0 && !memcmp(&it, &z, sizeof z), "the disarmed timer: %s",
	      strerror(errno));
	CHECK(c, timer_getoverrun(t_off) == 0, "overrun");
}

static void thread_setup(mx_case *c)
{
	struct sigaction sa = { .sa_handler = t2_handler, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	MUST(sigaction(SIG_T2, &sa, NULL) == 0);
	sem_init(&target_go, 0, 0);
	target = scn_thread(target_thread, NULL);
	while (!target_tid)
		scn_sleep_ms(2);
	struct sigevent ev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIG_T2 };
	ev._sigev_un._tid = target_tid;
	MUST(timer_create(CLOCK_MONOTONIC, &ev, &t_thread) == 0);
	struct itimerspec it = { { 0, 25000000 }, { 0, 25000000 } };
	MUST(timer_settime(t_thread, 0, &it, NULL) == 0);
}
/* The signal goes to the same thread (its new tid in a child), never another. */
static void thread_verify(mx_case *c)
{
	sem_post(&target_go);
	scn_sleep_ms(20);
	thread_wrong = 0;
	int n = wait_count(&thread_hits, 4, 3000);
	CHECK(c, n >= 4 && thread_wrong == 0, "%d expirations reached the target thread, %d another thread", n,
	      (int)thread_wrong);
	sem_post(&target_go);
	scn_join(target, "timer target");
	timer_delete(t_thread);
}

static void itimer_setup(mx_case *c)
{
	struct sigaction sa = { .sa_handler = mx_count_handler, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	MUST(sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval it = { { 0, 50000 }, { 0, 50000 } };
	MUST(setitimer(ITIMER_REAL, &it, NULL) == 0);
}
static void itimer_verify(mx_case *c)
{
	struct itimerval it;
	CHECK(c, getitimer(ITIMER_REAL, &it) == 0 && it.it_interval.tv_sec == 0 && it.it_interval.tv_usec == 50000,
	      "ITIMER_REAL interval %ld.%06ld, want 0.050000", (long)it.it_interval.tv_sec, (long)it.it_interval.tv_usec);
	int n = wait_count(&mx_sigcount[SIGALRM], 3, 3000);
	CHECK(c, n >= 3, "%d SIGALRMs of a 50 ms itimer in 3 s", n);
	struct itimerval z = { 0 };
	setitimer(ITIMER_REAL, &z, NULL);
}

static void alarm_setup(mx_case *c) { alarm(300); }
static void alarm_verify(mx_case *c)
{
	unsigned left = alarm(0);
	CHECK(c, left >= 200 && left <= 300, "alarm(300) has %u s left, want 200..300", left);
}

static mx_case cases[] = {
	{ "posix-timer-periodic", "timers", posix_setup, posix_periodic_verify },
	{ "posix-timer-disarmed", "timers", posix_setup, posix_disarmed_verify },
	{ "posix-timer-thread-id", "timers", thread_setup, thread_verify },
	{ "setitimer-real", "itimer", itimer_setup, itimer_verify },
	{ "alarm-pending", "alarm", alarm_setup, alarm_verify },
};

int main(int argc, char **argv)
{
	return mx_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
