/* SIGEV_THREAD timers, made by libnuwa instead of glibc.
 *
 * glibc 2.36 (sysdeps/unix/sysv/linux/timer_create.c) turns SIGEV_THREAD
 * into a kernel timer with SIGEV_SIGNAL|SIGEV_THREAD_ID, signal SIGTIMER
 * (32, its SIGCANCEL) and si_value pointing at its own record, aimed at a
 * helper thread that it starts with every signal blocked but SIGSETXID.
 * That helper never runs libnuwa's park handler (a process with such a
 * timer cannot be frozen at all), and glibc keeps its tid in a hidden
 * variable (__timer_helper_tid) that would be stale in a child.
 *
 * So libnuwa does the same with a helper of its own, "nuwa-timer": made
 * with pthread_create like an application thread, it waits for SIGTIMER
 * in rt_sigtimedwait at a freeze point, is parked and resumed like any
 * thread, and its kernel timers follow it into every child (timers.c
 * re-aims SIGEV_THREAD_ID at its new tid).  Each expiry runs the
 * program's function on a new detached thread, with the program's
 * attributes and an empty signal mask, as glibc does.
 * The timer_t handed back is the kernel's timer id: glibc's timer_settime,
 * timer_gettime, timer_getoverrun and timer_delete take a non-negative
 * timer_t as a kernel id (kernel-posix-timers.h), so they work unchanged.
 * Nothing here runs on the frozen path: the program's own calls and the
 * helper may allocate. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nuwa_int.h"
#include "timer_thread.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif
#define SIGTIMER 32            /* glibc's SIGCANCEL, as glibc's own helper */

struct tthread {
	int kid;                   /* kernel timer id */
	void (*fn)(union sigval);
	union sigval val;
	int has_attr;
	size_t stacksize, guardsize;
	int policy, inherit, scope;
	struct sched_param param;
	struct tthread *next;
};

static nuwa_lock_t lock;
static struct tthread *list;
static volatile pid_t helper_tid;   /* 0: not started in this process */
static int atfork_done;

static unsigned long long sigbit(int s) { return 1ULL << (s - 1); }

struct call { void (*fn)(union sigval); union sigval val; };

static void *run_call(void *p)
{
	struct call c = *(struct call *)p;
	free(p);
	sigset_t none;
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	c.fn(c.val);
	return NULL;
}

static void fire(struct tthread *t)
{
	struct call *c = malloc(sizeof *c);
	if (!c)
		return;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	nuwa_cs_enter();
	nuwa_lock(&lock);
	struct tthread *p = list;
	while (p && p != t)
		p = p->next;
	if (p) {
		c->fn = p->fn;
		c->val = p->val;
		if (p->has_attr) {
			pthread_attr_setstacksize(&attr, p->stacksize);
			pthread_attr_setguardsize(&attr, p->guardsize);
			pthread_attr_setinheritsched(&attr, p->inherit);
			pthread_attr_setschedpolicy(&attr, p->policy);
			pthread_attr_setschedparam(&attr, &p->param);
			pthread_attr_setscope(&attr, p->scope);
		}
	}
	nuwa_unlock(&lock);
	nuwa_cs_leave();
	pthread_t th;
	if (!p || pthread_create(&th, &attr, run_call, c) != 0)
		free(c);   /* deleted meanwhile, or no thread: the expiry is lost */
	pthread_attr_destroy(&attr);
}

static void *helper_main(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "nuwa-timer");
	/* Everything blocked (no program signal lands here) but the park
	 * signal and glibc's SIGSETXID; SIGTIMER is taken by sigtimedwait. */
	unsigned long long mask = ~0ULL & ~sigbit(nuwa_park_sig) & ~sigbit(33);
	sys_sigprocmask(SIG_SETMASK, &mask, NULL);
	__atomic_store_n(&helper_tid, (pid_t)sys_gettid(), __ATOMIC_RELEASE);
	nuwa_futex_wake(&helper_tid, 1 << 30);
	unsigned long long want = sigbit(SIGTIMER);
	for (;;) {
		siginfo_t si;
		fp_enter(FP_SIGWAIT);
		long r = sys_sigtimedwait(&want, &si, NULL);
		fp_leave();
		if (r == SIGTIMER && si.si_code == SI_TIMER)
			fire(si.si_ptr);
	}
	return NULL;
}

/* A plain fork() child has no helper and no timers (fork(2)). */
static void after_app_fork(void)
{
	helper_tid = 0;
	struct tthread *p = list;
	list = NULL;
	lock.v = 0;
	while (p) {
		struct tthread *n = p->next;
		free(p);
		p = n;
	}
}

static int start_helper(void)
{
	if (__atomic_load_n(&helper_tid, __ATOMIC_ACQUIRE))
		return 0;
	static nuwa_lock_t start_lock;
	nuwa_cs_enter();
	nuwa_lock(&start_lock);
	int r = 0;
	if (!helper_tid) {
		if (!atfork_done)
			atfork_done = pthread_atfork(NULL, NULL, after_app_fork) == 0;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_t th;
		r = pthread_create(&th, &attr, helper_main, NULL);
		pthread_attr_destroy(&attr);
		while (!r && !__atomic_load_n(&helper_tid, __ATOMIC_ACQUIRE))
			nuwa_futex_wait(&helper_tid, 0, NULL);
	}
	nuwa_unlock(&start_lock);
	nuwa_cs_leave();
	return r;
}

int timer_thread_create(clockid_t clock, const struct sigevent *sev, timer_t *id)
{
	struct tthread *t = calloc(1, sizeof *t);
	if (!t) {
		errno = EAGAIN;
		return -1;
	}
	int r = start_helper();
	if (r) {
		free(t);
		errno = EAGAIN;
		return -1;
	}
	t->fn = sev->sigev_notify_function;
	t->val = sev->sigev_value;
	pthread_attr_t *a = sev->sigev_notify_attributes;
	if (a) {
		t->has_attr = 1;
		pthread_attr_getstacksize(a, &t->stacksize);
		pthread_attr_getguardsize(a, &t->guardsize);
		pthread_attr_getinheritsched(a, &t->inherit);
		pthread_attr_getschedpolicy(a, &t->policy);
		pthread_attr_getschedparam(a, &t->param);
		pthread_attr_getscope(a, &t->scope);
	}
	struct sigevent k;
	memset(&k, 0, sizeof k);
	k.sigev_notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
	k.sigev_signo = SIGTIMER;
	k.sigev_value.sival_ptr = t;
	k._sigev_un._tid = helper_tid;
	int kid;
	long e = sys_timer_create(clock, &k, &kid);
	if (e < 0) {
		free(t);
		errno = (int)-e;   /* the program's timer_create() fails as glibc's would */
		return -1;
	}
	t->kid = kid;
	nuwa_cs_enter();
	nuwa_lock(&lock);
	t->next = list;
	list = t;
	nuwa_unlock(&lock);
	nuwa_cs_leave();
	*id = (timer_t)(intptr_t)kid;
	return 0;
}

int timer_thread_delete(timer_t id, int *r)
{
	if ((intptr_t)id < 0 || (intptr_t)id > 0x7fffffff)
		return 0;
	int kid = (int)(intptr_t)id;
	nuwa_cs_enter();
	nuwa_lock(&lock);
	struct tthread **pp = &list, *t = NULL;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->kid == kid) {
			t = *pp;
			*pp = t->next;
			break;
		}
	nuwa_unlock(&lock);
	nuwa_cs_leave();
	if (!t)
		return 0;
	long e = sys_timer_delete(kid);
	if (e < 0)
		errno = (int)-e;   /* the program's timer_delete() result */
	*r = e < 0 ? -1 : 0;
	free(t);
	return 1;
}
