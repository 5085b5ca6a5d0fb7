/* gosig handler|block — a program that takes signals over with raw system
 * calls, the way the Go runtime does (issue 10 class 5).
 *
 *  handler  main reads libnuwa's park-signal handler back with a raw
 *           rt_sigaction and installs its own in its place (SA_ONSTACK |
 *           SA_SIGINFO | SA_RESTART, every signal masked, its own restorer:
 *           Go's flags), and every worker thread installs it again, each
 *           on its own sigaltstack, asleep in raw futex waits.  The handler
 *           counts its calls and checks it runs on the alternate stack.  The
 *           program sends the signal to a worker once before the freeze and
 *           once at the end, in the original and in each clone: its handler
 *           must be back exactly as it installed it (raw rt_sigaction) and
 *           must have run exactly twice — libnuwa's park signals never
 *           reached it.
 *  sigm     a worker blocks, with a raw rt_sigprocmask, every signal
 *           glibc lets a program block, the park signal included, for good
 *           (Go's os/signal thread, ensureSigM), asleep in a raw futex
 *           wait: it is parked anyway, and every thread works in every
 *           clone.
 *  block    a worker named "blocker" blocks every signal with a raw
 *           rt_sigprocmask (glibc's own two included, which only a raw
 *           call can block) and sleeps in a raw futex wait: a freeze must
 *           fail naming it ("blocks signal N (SigBlk …)"), and the program
 *           runs on.
 *
 * The signal is the park signal, SIGRTMAX-1 (docs/design.md). */
#include "scn.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NWORKERS 4
#define ALTSTACK (64 * 1024)

struct ksigaction {              /* the kernel's, x86-64 */
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

/* Go's sigreturn trampoline: rt_sigreturn, nothing else. */
void gosig_restorer(void);
__asm__(".text\n.globl gosig_restorer\n.type gosig_restorer,@function\n"
        "gosig_restorer:\n\tmov $15, %eax\n\tsyscall\n\thlt\n");

static int sig, block;
static volatile int calls, off_altstack;
static volatile int stop;
static volatile pid_t target_tid;
/* Threads done with their set-up.  READY only once all are: a worker that
 * installed its handler after the freeze began would put the program's
 * handler back in the middle of it, and libnuwa's park signals would reach
 * the program (seen: "ran 3 times", sent by the template to workers 1-3,
 * under load) — a thing the Go runtime never does after start-up. */
static volatile int set_up;
static struct ksigaction installed;   /* as the kernel returned it after install */

static long raw_sigaction(int s, const struct ksigaction *a, struct ksigaction *o)
{
	return syscall(SYS_rt_sigaction, s, a, o, 8);
}

/* Who sent each signal the handler saw (si_code, si_pid, the receiving
 * tid), for the failure message. */
static struct { int code, pid, tid; } seen[8];

static void handler(int s, siginfo_t *si, void *uc)
{
	(void)uc;
	stack_t ss;
	if (s != sig || sigaltstack(NULL, &ss) < 0 || !(ss.ss_flags & SS_ONSTACK))
		off_altstack++;
	int n = __atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST);
	if (n < 8) {
		seen[n].code = si->si_code;
		seen[n].pid = si->si_pid;
		seen[n].tid = (int)syscall(SYS_gettid);
	}
}

static void install(void)
{
	struct ksigaction a = { (void *)handler, SA_ONSTACK | SA_SIGINFO | SA_RESTART | SA_RESTORER,
	                        (void *)gosig_restorer, ~0ULL };
	if (raw_sigaction(sig, &a, NULL) < 0)
		scn_fail("raw rt_sigaction: %s", strerror(errno));
}

static void futex_wait(volatile int *w, int v)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);  /* raw, untimed */
}

static void *worker(void *arg)
{
	int i = (int)(intptr_t)arg;
	stack_t ss = { .ss_sp = malloc(ALTSTACK), .ss_size = ALTSTACK };
	if (!ss.ss_sp || sigaltstack(&ss, NULL) < 0)
		scn_fail("sigaltstack: %s", strerror(errno));
	if (!block)
		install();
	if (i == 0)
		target_tid = scn_gettid();
	__atomic_add_fetch(&set_up, 1, __ATOMIC_SEQ_CST);
	while (!stop)
		futex_wait(&stop, 0);
	/* Off the alternate stack, and free it: once the thread is gone
	 * nothing points to it (LeakSanitizer reports it). */
	stack_t off = { .ss_flags = SS_DISABLE };
	sigaltstack(&off, NULL);
	free(ss.ss_sp);
	return NULL;
}

static void *blocker(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), block == 2 ? "blocker" : "sigm");
	/* sigm: glibc's sigfillset (SIGCANCEL and SIGSETXID left out);
	 * block: really everything */
	sigset_t all;
	sigfillset(&all);
	uint64_t m;
	memcpy(&m, &all, sizeof m);
	if (block == 2)
		m = ~0ULL;
	if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &m, NULL, 8) < 0)
		scn_fail("raw rt_sigprocmask: %s", strerror(errno));
	__atomic_store_n(&target_tid, scn_gettid(), __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&set_up, 1, __ATOMIC_SEQ_CST);
	while (!stop)
		futex_wait(&stop, 0);
	return NULL;
}

static pthread_t target;

/* Send the signal to worker 0 (pthread_kill: its tid as the TCB has it,
 * which is the new one in a clone) and wait (bounded) for the handler. */
static void poke(int want)
{
	int e = pthread_kill(target, sig);
	if (e)
		scn_fail("pthread_kill: %s", strerror(e));
	for (int i = 0; i < 5000 && calls < want; i++)
		scn_sleep_ms(1);
	if (calls != want) {
		char who[256] = "";
		size_t off = 0;
		for (int i = 0; i < calls && i < 8 && off < sizeof who - 40; i++)
			off += (size_t)snprintf(who + off, sizeof who - off, " [code %d from pid %d to tid %d]",
			                        seen[i].code, seen[i].pid, seen[i].tid);
		scn_fail("the program's handler ran %d times, expected %d (pid %d):%s", calls, want,
		         (int)getpid(), who);
	}
	if (off_altstack)
		scn_fail("the program's handler ran off its sigaltstack %d times", off_altstack);
}

static void check_handler_back(void)
{
	struct ksigaction now;
	if (raw_sigaction(sig, NULL, &now) < 0) {
		scn_fail("raw rt_sigaction read: %s", strerror(errno));
		return;
	}
	if (memcmp(&now, &installed, sizeof now))
		scn_fail("handler of signal %d is %p flags %#lx restorer %p mask %#llx, the program "
		         "installed %p flags %#lx restorer %p mask %#llx", sig, now.handler, now.flags,
		         now.restorer, (unsigned long long)now.mask, installed.handler,
		         installed.flags, installed.restorer, (unsigned long long)installed.mask);
}

int main(int argc, char **argv)
{
	scn_init();
	sig = SIGRTMAX - 1;
	block = argc < 2 ? 0 : !strcmp(argv[1], "block") ? 2 : !strcmp(argv[1], "sigm");
	pthread_t t[NWORKERS + 1];
	int nt = 0;
	if (!block) {
		struct ksigaction libnuwa;
		raw_sigaction(sig, NULL, &libnuwa);   /* Go keeps it to forward to */
		install();
		raw_sigaction(sig, NULL, &installed);
		if (installed.handler != (void *)handler)
			scn_fail("could not install the handler");
		for (; nt < NWORKERS; nt++)
			t[nt] = scn_thread(worker, (void *)(intptr_t)nt);
	} else {
		t[nt++] = scn_thread(blocker, NULL);
		t[nt++] = scn_thread(worker, (void *)(intptr_t)1);
	}
	while (!__atomic_load_n(&target_tid, __ATOMIC_SEQ_CST) ||
	       __atomic_load_n(&set_up, __ATOMIC_SEQ_CST) < nt)
		scn_sleep_ms(1);
	target = t[0];
	if (!block)
		poke(1);
	scn_ready();
	scn_wait_eof();
	scn_watchdog(20);
	scn_phase("checking the handler");
	if (!block) {
		check_handler_back();
		poke(2);
	}
	stop = 1;
	syscall(SYS_futex, &stop, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
	for (int i = 0; i < nt; i++)
		scn_join(t[i], "worker");
	return scn_finish();
}
