/* identity — what a thread is, besides its memory: pthread_self(), its
 * name (as pthread_getname_np and /proc/self/task/TID/comm see it), CPU
 * affinity, scheduling policy, signal mask and alternate signal stack; for
 * main also getpid() == gettid().  Every thread records all of it before
 * READY, then loops (sleep, check) until EOF; after EOF main also sends each
 * thread a signal with pthread_kill (which goes through the tid glibc keeps
 * in the thread's TCB) and the handler checks it runs on the right thread.
 */
#include "scn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NWORK 6
#define ALTSZ (64 * 1024)

struct ident {
	pthread_t self;
	char name[16];
	cpu_set_t cpus;
	int policy;
	struct sched_param prio;
	sigset_t mask;
	stack_t alt;
};

struct thr {
	pthread_t t;
	int idx;
	struct ident id;
	volatile int ready;
	volatile pid_t handler_tid;     /* gettid() seen by the SIGUSR1 handler */
	volatile uintptr_t handler_sp;  /* an address on the handler's stack */
};

static struct thr thr[NWORK + 1];   /* [0] is main */
static volatile int eof_seen;
static __thread struct thr *me;
static cpu_set_t allowed;
static volatile pid_t main_tid_now;

static void on_usr1(int s)
{
	volatile int here = s;
	if (me) {
		me->handler_sp = (uintptr_t)&here;
		me->handler_tid = scn_gettid();
	}
}

static int comm_of(pid_t tid, char *buf, size_t len)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/task/%d/comm", (int)tid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static void read_ident(struct ident *id)
{
	memset(id, 0, sizeof *id);
	id->self = pthread_self();
	pthread_getname_np(pthread_self(), id->name, sizeof id->name);
	CPU_ZERO(&id->cpus);
	pthread_getaffinity_np(pthread_self(), sizeof id->cpus, &id->cpus);
	pthread_getschedparam(pthread_self(), &id->policy, &id->prio);
	pthread_sigmask(SIG_BLOCK, NULL, &id->mask);
	sigaltstack(NULL, &id->alt);
}

static void compare(struct thr *t)
{
	struct ident now;
	char comm[32];
	read_ident(&now);
	const char *who = t->id.name;
	if (!pthread_equal(now.self, t->id.self))
		scn_fail("%s: pthread_self changed", who);
	if (strcmp(now.name, t->id.name))
		scn_fail("%s: pthread_getname_np says \"%s\"", who, now.name);
	if (comm_of(scn_gettid(), comm, sizeof comm) || strcmp(comm, t->id.name))
		scn_fail("%s: /proc/self/task/%d/comm says \"%s\"", who, (int)scn_gettid(), comm);
	if (!CPU_EQUAL(&now.cpus, &t->id.cpus))
		scn_fail("%s: CPU affinity changed (%d cpus, was %d)", who, CPU_COUNT(&now.cpus),
			 CPU_COUNT(&t->id.cpus));
	if (now.policy != t->id.policy || now.prio.sched_priority != t->id.prio.sched_priority)
		scn_fail("%s: scheduling policy %d/%d, was %d/%d", who, now.policy,
			 now.prio.sched_priority, t->id.policy, t->id.prio.sched_priority);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&now.mask, s) != sigismember(&t->id.mask, s)) {
			scn_fail("%s: signal %d is %sblocked now", who, s,
				 sigismember(&now.mask, s) ? "" : "not ");
			break;
		}
	if (now.alt.ss_sp != t->id.alt.ss_sp || now.alt.ss_size != t->id.alt.ss_size ||
	    now.alt.ss_flags != t->id.alt.ss_flags)
		scn_fail("%s: sigaltstack %p/%zu/%d, was %p/%zu/%d", who, now.alt.ss_sp,
			 now.alt.ss_size, now.alt.ss_flags, t->id.alt.ss_sp, t->id.alt.ss_size,
			 t->id.alt.ss_flags);
}

/* Give thread t a distinctive identity. */
static void shape(struct thr *t)
{
	char name[16];
	snprintf(name, sizeof name, t->idx ? "ident-%d" : "ident-main", t->idx);
	pthread_setname_np(pthread_self(), name);
	int ncpu = CPU_COUNT(&allowed), k = t->idx % ncpu, c;
	for (c = 0; c < CPU_SETSIZE; c++)   /* the k-th allowed CPU */
		if (CPU_ISSET(c, &allowed) && k-- == 0)
			break;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(c, &one);
	if (t->idx % 2)   /* odd threads: a single CPU, even: all */
		pthread_setaffinity_np(pthread_self(), sizeof one, &one);
	struct sched_param sp = { 0 };
	int pol = t->idx % 3 == 1 ? SCHED_BATCH : t->idx % 3 == 2 ? SCHED_IDLE : SCHED_OTHER;
	if (pthread_setschedparam(pthread_self(), pol, &sp))
		scn_fail("%s: pthread_setschedparam failed", name);
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + 5 + t->idx);
	if (t->idx % 2)
		sigaddset(&m, SIGWINCH);
	if (t->idx % 3 == 0)
		sigaddset(&m, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	if (t->idx != 2) {   /* one thread keeps no altstack */
		stack_t ss = { .ss_sp = malloc(ALTSZ), .ss_size = ALTSZ };
		if (sigaltstack(&ss, NULL))
			scn_fail("%s: sigaltstack: %s", name, strerror(errno));
	}
	me = t;
	read_ident(&t->id);
}

static void *worker(void *arg)
{
	struct thr *t = arg;
	shape(t);
	t->ready = 1;
	while (!eof_seen) {
		scn_sleep_ms(20);
		compare(t);
		if (scn_failed())
			break;
	}
	/* wait for main's pthread_kill, then check where the handler ran */
	while (!t->handler_tid && !scn_failed())
		scn_sleep_ms(5);
	if (t->handler_tid != scn_gettid())
		scn_fail("%s: SIGUSR1 from pthread_kill ran on tid %d, not %d", t->id.name,
			 (int)t->handler_tid, (int)scn_gettid());
	uintptr_t lo = (uintptr_t)t->id.alt.ss_sp;
	if (t->id.alt.ss_size && (t->handler_sp < lo || t->handler_sp >= lo + t->id.alt.ss_size))
		scn_fail("%s: SA_ONSTACK handler did not run on the alternate stack", t->id.name);
	if (getpid() != main_tid_now)
		scn_fail("%s: getpid() %d is not main's tid %d", t->id.name, (int)getpid(),
			 (int)main_tid_now);
	return NULL;
}

int main(void)
{
	scn_init();
	sched_getaffinity(0, sizeof allowed, &allowed);
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
	sigaction(SIGUSR1, &sa, NULL);
	thr[0].idx = 0;
	shape(&thr[0]);
	for (int i = 1; i <= NWORK; i++) {
		thr[i].idx = i;
		thr[i].t = scn_thread(worker, &thr[i]);
	}
	for (int i = 1; i <= NWORK; i++)
		while (!thr[i].ready)
			scn_sleep_ms(1);
	scn_ready();

	scn_wait_eof();
	scn_watchdog(20);
	eof_seen = 1;
	compare(&thr[0]);
	if (getpid() != scn_gettid())
		scn_fail("main: getpid() %d != gettid() %d", (int)getpid(), (int)scn_gettid());
	main_tid_now = scn_gettid();
	for (int i = 1; i <= NWORK; i++) {
		int e = pthread_kill(thr[i].t, SIGUSR1);
		if (e)
			scn_fail("pthread_kill(%s): %s", thr[i].id.name, strerror(e));
	}
	for (int i = 1; i <= NWORK; i++)
		scn_join(thr[i].t, "joining workers");
	return scn_finish();
}
