/* libnuwa's two signals and how the program is kept from seeing them.
 *
 * - The park signal (SIGRTMAX-1 unless taken... fixed here) stops a thread in
 *   park_handler().  The program can neither block, catch nor ignore it:
 *   sigaction() on it fails with EINVAL (as glibc does for its own SIGCANCEL
 *   and SIGSETXID), and every mask the program installs has it removed.
 * - The trigger signal (NUWA_SIGNAL, default SIGUSR2) is blocked in every
 *   application thread and open only in the control thread, so the kernel
 *   delivers a process-directed `kill -USR2 PID` there.  The program sees a
 *   virtual disposition (what it last set) and masks without it.  If the
 *   program installs a real handler for it, the signal is handed over to the
 *   program (a warning says so) and the trigger is then the control socket
 *   or another NUWA_SIGNAL. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "freeze.h"

int nuwa_trigger_sig;
static struct sigaction app_trigger_action; /* what the program believes */
volatile int nuwa_trigger_handed_over;

REAL_DECL(int, sigaction, (int, const struct sigaction *, struct sigaction *));

static int raw_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	return (int)sys_sigprocmask(how, set, old);
}

void signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	/* Everything blocked while parked: the program's handlers must not
	 * run on a frozen thread.  (glibc's sigfillset leaves SIGCANCEL and
	 * SIGSETXID out, so setuid() in another process still works.) */
	sigfillset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sa.sa_sigaction = park_handler;
	REAL(sigaction)(nuwa_park_sig, &sa, NULL);
	parksig_note_installed();   /* what a freeze puts back (parksig.c) */

	if (nuwa_trigger_sig) {
		sa.sa_sigaction = trigger_handler;
		sigemptyset(&sa.sa_mask);
		REAL(sigaction)(nuwa_trigger_sig, &sa, NULL);
		app_trigger_action.sa_handler = SIG_DFL;
	}
}

/* Any application thread: the park signal open, the trigger closed. */
void signals_thread_setup(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, nuwa_park_sig);
	raw_sigmask(SIG_UNBLOCK, &s, NULL);
	if (nuwa_trigger_sig && !nuwa_trigger_handed_over) {
		sigemptyset(&s);
		sigaddset(&s, nuwa_trigger_sig);
		raw_sigmask(SIG_BLOCK, &s, NULL);
	}
}

/* The control thread: only the trigger open (and glibc's internal signals,
 * which sigfillset leaves out: setxid broadcasts must reach every thread). */
void nuwa_signals_block_for_control(void)
{
	sigset_t s;
	sigfillset(&s);
	if (nuwa_trigger_sig && !nuwa_trigger_handed_over)
		sigdelset(&s, nuwa_trigger_sig);
	raw_sigmask(SIG_SETMASK, &s, NULL);
}

int signals_trigger_is_ours(void)
{
	return nuwa_trigger_sig && !nuwa_trigger_handed_over;
}

/* Remove libnuwa's signals from a set the program passes to a call that
 * would block, wait for or consume them. */
int sigset_strip_nuwa(sigset_t *set)
{
	int changed = 0;
	if (sigismember(set, nuwa_park_sig) == 1)
		sigdelset(set, nuwa_park_sig), changed = 1;
	if (signals_trigger_is_ours() && sigismember(set, nuwa_trigger_sig) == 1)
		sigdelset(set, nuwa_trigger_sig), changed = 1;
	return changed;
}

/* A mask as the program may see it. */
void sigset_hide_nuwa(sigset_t *set)
{
	sigdelset(set, nuwa_park_sig);
	if (signals_trigger_is_ours()) {
		if (nuwa_self.app_blocks_trigger)
			sigaddset(set, nuwa_trigger_sig);
		else
			sigdelset(set, nuwa_trigger_sig);
	}
}

/* The mask to really install for `how`/`set` from the program. */
void sigmask_adjust(int how, const sigset_t *in, sigset_t *out)
{
	*out = *in;
	sigdelset(out, nuwa_park_sig);
	if (!signals_trigger_is_ours())
		return;
	int member = sigismember(in, nuwa_trigger_sig) == 1;
	switch (how) {
	case SIG_BLOCK:
		nuwa_self.app_blocks_trigger |= member;
		break;
	case SIG_UNBLOCK:
		if (member)
			nuwa_self.app_blocks_trigger = 0;
		sigdelset(out, nuwa_trigger_sig); /* stays blocked for real */
		break;
	case SIG_SETMASK:
		nuwa_self.app_blocks_trigger = member;
		sigaddset(out, nuwa_trigger_sig);
		break;
	}
}

/* sigaction() on the trigger signal. */
int signals_trigger_sigaction(const struct sigaction *act, struct sigaction *old)
{
	struct sigaction prev = app_trigger_action;
	if (act) {
		int real_handler = (act->sa_flags & SA_SIGINFO) ||
		                   (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN);
		if (real_handler) {
			char name[32];
			nuwa_warn("the program installs its own handler for %s, libnuwa's "
			          "trigger: the signal is left to the program; choose another "
			          "trigger with NUWA_SIGNAL (or use `nuwa freeze`)",
			          nuwa_signal_name(nuwa_trigger_sig, name, sizeof name));
			int r = REAL(sigaction)(nuwa_trigger_sig, act, NULL);
			if (r < 0)
				return r;
			nuwa_trigger_handed_over = 1;
			signals_trigger_handover();
		}
		app_trigger_action = *act;
	}
	if (old)
		*old = prev;
	return 0;
}

/* The program took the trigger signal: open it again in every thread that
 * did not block it itself (each thread edits the mask its park handler will
 * restore), and close it in the control thread. */
void signals_trigger_handover(void)
{
	pid_t pid = (pid_t)sys_getpid();
	registry_lock();
	for (struct nuwa_thread *t = registry_head; t; t = t->next)
		sys_tgkill(pid, t->tid, nuwa_park_sig);
	registry_unlock();
	control_note_handover();
}

/* Called first thing in the park handler. */
void signals_handover_fix_mask(ucontext_t *uc)
{
	if (!nuwa_self.app_blocks_trigger)
		sigdelset(&uc->uc_sigmask, nuwa_trigger_sig);
}
