/* Keeping the park handler in place against a program that installs its
 * own with raw system calls (DESIGN.md §6 "Raw rt_sigaction").
 *
 * sigaction() on the park signal fails (core/signals.c), but a runtime that
 * talks to the kernel itself — the Go runtime reads every handler back with
 * rt_sigaction and installs its own for every signal it can — replaces
 * libnuwa's handler without libnuwa seeing it.  A freeze would then reach
 * the program's handler, which drops the signal, and no thread would park.
 *
 * The kernel tells which handler is in place at any time: rt_sigaction(sig,
 * NULL, &old) (kernel/signal.c do_sigaction) returns the handler, flags,
 * restorer and mask of the process's one table (shared by every thread,
 * CLONE_SIGHAND).  So every freeze begins with parksig_take(): if the
 * handler in place is not park_handler, the program's action is kept aside
 * and libnuwa's put back, for the freeze and, in template mode, for the
 * template's whole life.  parksig_give_back() reinstalls the program's
 * action exactly as the kernel returned it: in the process once its freeze
 * is over (thaw, clone done, abandoned freeze), and in every child once
 * each thread is resumed, before any runs (fork.c, child_steps[]).
 *
 * Our action is the one signals_install() made, read back from the kernel
 * (glibc filled in SA_RESTORER and its __restore_rt: on x86-64 the kernel
 * needs a restorer to build the frame).  If the program's action had
 * SA_ONSTACK, ours takes it too while the freeze lasts: such a program
 * (Go: a small signal stack per thread, goroutine stacks of a few KiB)
 * counts on its handlers running on the alternate stack, and the park
 * handler's frame is large (the kernel's signal frame with xsave state,
 * the saved context).
 *
 * Raw system calls only, no lock: parksig_take() runs on the control thread
 * as a freeze begins, parksig_give_back() as it ends or in a child before
 * GO, when application threads may be parked anywhere. */
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "freeze.h"

struct nuwa_ksigaction {        /* the kernel's struct sigaction, x86-64 */
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

static struct nuwa_ksigaction ours;  /* as installed by signals_install() */
static struct nuwa_ksigaction app;   /* the program's, while taken */
static int ours_known;
#define FALLBACK_SIG 32              /* glibc's SIGCANCEL, below */
static struct nuwa_ksigaction libc_cancel;
static volatile int fallback_on;
static void fallback_settle(void);
/* 1 while libnuwa holds the park signal in place of the program's handler:
 * copied into children, which give it back before their threads run. */
volatile int nuwa_parksig_taken;

void parksig_note_installed(void)
{
	ours_known = sys_rt_sigaction(nuwa_park_sig, NULL, &ours) == 0 &&
	             ours.handler == (void *)park_handler;
}

int parksig_take(void)
{
	struct nuwa_ksigaction cur;
	if (!ours_known || sys_rt_sigaction(nuwa_park_sig, NULL, &cur) < 0 ||
	    cur.handler == (void *)park_handler)
		return 0;
	struct nuwa_ksigaction mine = ours;
	mine.flags |= cur.flags & SA_ONSTACK;
	if (sys_rt_sigaction(nuwa_park_sig, &mine, NULL) < 0)
		return 0;
	if (!nuwa_parksig_taken) {
		/* a second take in the same freeze keeps the first saved action:
		 * it is the program's (the second found a re-install of it) */
		app = cur;
		nuwa_parksig_taken = 1;
	}
	nuwa_info("the program replaced libnuwa's park handler (signal %d) with its own "
	          "(%s, with a raw rt_sigaction, as the Go runtime does): taken back for "
	          "the freeze, given back after it", nuwa_park_sig,
	          cur.handler == SIG_DFL ? "SIG_DFL" : cur.handler == SIG_IGN ? "SIG_IGN"
	                                                                       : "a handler");
	return 1;
}

void parksig_give_back(void)
{
	if (fallback_on) {
		fallback_settle();
		sys_rt_sigaction(FALLBACK_SIG, &libc_cancel, NULL);
		fallback_on = 0;
		for (int i = 0; i < nuwa_ft.nslots; i++)
			nuwa_ft.slots[i].fallback = 0;
		if (!nuwa_parksig_taken)   /* ours again, without SIGCANCEL in its mask */
			sys_rt_sigaction(nuwa_park_sig, &ours, NULL);
	}
	if (!nuwa_parksig_taken)
		return;
	sys_rt_sigaction(nuwa_park_sig, &app, NULL);
	nuwa_parksig_taken = 0;
}

/* ---- a thread that blocks the park signal ------------------------------
 * The Go runtime's os/signal thread (ensureSigM) blocks, with a raw
 * rt_sigprocmask, every signal it may block, the park signal included, for
 * its whole life: that signal stays pending and the thread never parks.
 * What no thread of a glibc process blocks is glibc's SIGCANCEL (32):
 * glibc's sigprocmask and sigfillset leave it out, and Go never blocks it
 * (runtime sigtable: _SigUnblock, issue 6997).  glibc sends it only for an
 * asynchronous pthread_cancel (nptl/pthread_cancel.c).  So such a thread is
 * parked through SIGCANCEL: park_handler takes its place for the freeze and
 * glibc's handler comes back with the program's park handler. */

static uint64_t sigbit(int sig) { return 1ULL << (sig - 1); }

/* While SIGCANCEL is ours, both of our actions block it: a SIGCANCEL
 * arriving while a thread parks (it may be parking through the park signal
 * it had just unblocked) must wait, not nest a second park. */
static void widen(struct nuwa_ksigaction *a) { a->mask |= sigbit(FALLBACK_SIG); }

int parksig_fallback_kill(struct park_slot *s)
{
	char blk[17];
	if (task_blocks_signal(s->tid, nuwa_park_sig, blk) != 1 ||
	    task_blocks_signal(s->tid, FALLBACK_SIG, blk) != 0)
		return -1;
	if (!fallback_on) {
		struct nuwa_ksigaction mine = ours, park;
		if (!ours_known || sys_rt_sigaction(FALLBACK_SIG, NULL, &libc_cancel) < 0 ||
		    sys_rt_sigaction(nuwa_park_sig, NULL, &park) < 0 ||
		    park.handler != (void *)park_handler)
			return -1;
		mine.flags |= libc_cancel.flags & SA_ONSTACK;
		widen(&mine);
		widen(&park);
		if (sys_rt_sigaction(nuwa_park_sig, &park, NULL) < 0 ||
		    sys_rt_sigaction(FALLBACK_SIG, &mine, NULL) < 0)
			return -1;
		fallback_on = 1;
	}
	nuwa_info("thread %d blocks the park signal %d (SigBlk %s): parking it through "
	          "signal %d", (int)s->tid, nuwa_park_sig, blk, FALLBACK_SIG);
	s->fallback = 1;
	return (int)sys_tgkill((pid_t)sys_getpid(), s->tid, FALLBACK_SIG);
}

/* glibc's SIGCANCEL handler must never see one of ours: in this process it
 * would mark the thread cancelled (nptl sigcancel_handler checks only the
 * sender's pid and SI_TKILL).  A thread we sent one to and that did not
 * park (a failed freeze) takes it in our handler, which finds nothing to do;
 * wait (bounded) until none is pending before glibc's comes back. */
static void fallback_settle(void)
{
	char hex[17];
	for (int tries = 0; tries < 1000; tries++) {
		int pending = 0;
		for (int i = 0; i < nuwa_ft.nslots; i++)
			if (nuwa_ft.slots[i].fallback && nuwa_ft.slots[i].tid > 0 &&
			    task_sig_line(nuwa_ft.slots[i].tid, "\nSigPnd:\t", FALLBACK_SIG, hex) == 1)
				pending = 1;
		if (!pending)
			return;
		struct timespec ms = { 0, 1000000 };
		sys_nanosleep(&ms, NULL);
	}
	nuwa_warn("a SIGCANCEL sent by libnuwa is still pending; glibc's handler is back anyway");
}

/* A released thread, still in the park handler with the park signal
 * blocked (the handler's mask): take any park signal still queued for it
 * (a repeat sent while it was parking).  The program's handler is about to
 * be back and must never see one of libnuwa's.  The park signal is a
 * real-time signal, queued once per send: loop until none is left. */
void parksig_drain_self(const struct park_slot *s)
{
	struct timespec zero = { 0, 0 };
	uint64_t set = sigbit(nuwa_park_sig);
	if (nuwa_parksig_taken)
		while (sys_sigtimedwait(&set, NULL, &zero) == nuwa_park_sig)
			;
	/* SIGCANCEL only where we sent one: another thread's (the timer
	 * helper's SIGEV_THREAD_ID signal 32) is not ours to take */
	set = sigbit(FALLBACK_SIG);
	if (s->fallback)
		while (sys_sigtimedwait(&set, NULL, &zero) == FALLBACK_SIG)
			;
}
