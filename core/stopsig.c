/* A frozen template and the signals that end programs: SIGTERM, SIGINT,
 * SIGHUP (`kill`, `timeout`, systemd's stop, Ctrl-C, a closed terminal).
 *
 * While frozen, every application thread sits in its park handler with
 * every signal blocked (the handler's mask), and the control thread blocks
 * all but the trigger: a process-directed signal then stays pending in the
 * process's shared queue for ever.  The control thread watches for it with
 * a signalfd, which it only polls: poll() on a signalfd reports a signal of
 * its mask pending for the polling thread or for the process
 * (fs/signalfd.c signalfd_poll) and consumes nothing.  The template then
 * does what the program would have done:
 *
 *   disposition SIG_IGN     nothing (the signal is taken off the queue);
 *   a handler, or blocked   thaw: the program resumes exactly as it was
 *   in every thread (a      frozen, the signal is still pending for the
 *   sigwait() thread)       process, and the kernel delivers it to a thread
 *                           that does not block it (or sigwait() takes it);
 *   SIG_DFL                 end: the pooled children end, a warning names
 *                           the spawned children that keep running, waiting clients are told, the
 *                           socket file is removed, then the control thread
 *                           unblocks the signal and the default action ends
 *                           the process (the parent sees "killed by SIGTERM").
 *
 * A snapshot template (a child holding the image; the program's threads do
 * not run in it) cannot thaw: it ends, unless the signal is ignored.
 * The program's masks are in the parked threads' signal frames (uc_sigmask,
 * restored by rt_sigreturn).  Control thread only. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>

#include "ctlsock.h"
#include "freeze.h"
#include "pool.h"

static const int stop_sigs[] = { SIGTERM, SIGINT, SIGHUP };
#define NSTOP (int)(sizeof stop_sigs / sizeof stop_sigs[0])

static int sfd = -1;

/* The kernel's struct sigaction for rt_sigaction (arch/x86: handler,
 * flags, restorer, mask), not glibc's. */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static int watched(int sig)
{
	return !(sig == nuwa_trigger_sig && signals_trigger_is_ours());
}

int stopsig_pollfd(void)
{
	if (nuwa_state != NUWA_STATE_TEMPLATE) {
		if (sfd >= 0) {
			nuwa_own_fd_drop(sfd);
			sfd = -1;
		}
		return -1;
	}
	if (sfd < 0) {
		sigset_t s;
		sigemptyset(&s);
		for (int i = 0; i < NSTOP; i++)
			if (watched(stop_sigs[i]))
				sigaddset(&s, stop_sigs[i]);
		long fd = sys_signalfd4(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
		if (fd >= 0)
			sfd = nuwa_own_fd(nuwa_fd_high((int)fd));
	}
	return sfd;
}

/* Does some thread of the program take sig when it runs again? */
static int some_thread_takes(int sig)
{
	for (int i = 0; i < nuwa_ft.nslots; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->state == SLOT_PARKED && s->uc && !sigismember(&s->uc->uc_sigmask, sig))
			return 1;
	}
	return 0;
}

/* " 123 456 ..." of the children libnuwa made that are still running. */
static int list_children(char *buf, size_t len)
{
	size_t off = 0;
	int n = 0;
	buf[0] = 0;
	for (int i = 0; i < nuwa_children_n(); i++) {
		struct nuwa_child *c = nuwa_child_at(i);
		if (c->kind == NUWA_CHILD_APP || c->kind == NUWA_CHILD_FORK ||
		    c->kind == NUWA_CHILD_POOL)
			continue;   /* the program's own; the pool's end with it */
		n++;
		if (off + 16 < len)
			off += (size_t)snprintf(buf + off, len - off, " %d", c->pid);
		else if (off + 5 < len)
			off += (size_t)snprintf(buf + off, len - off, " ...");
	}
	return n;
}

__attribute__((noreturn)) static void end_with(int sig, const char *name)
{
	char kids[700], why[64];
	pool_end();   /* pooled children are copies not handed out yet: they go */
	int n = list_children(kids, sizeof kids);
	if (n)
		nuwa_warn("template ends on %s (the program's default action); %d spawned "
		          "child%s keep running:%s", name, n, n == 1 ? "" : "ren", kids);
	else
		nuwa_warn("template ends on %s (the program's default action)", name);
	snprintf(why, sizeof why, "ended on %s", name);
	ctlsock_shutdown(why);
	/* The default action, whatever the disposition (a snapshot template
	 * ends even when the program has a handler): SIG_DFL, then open the
	 * signal on this thread; the kernel delivers it on the way back from
	 * rt_sigprocmask and ends the whole process with it. */
	struct ksigaction dfl = { 0 };
	SC(SYS_rt_sigaction, sig, &dfl, 0, 8, 0, 0);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sys_sigprocmask(SIG_UNBLOCK, &s, NULL);
	sys_tgkill((pid_t)sys_getpid(), (pid_t)sys_gettid(), sig);
	sys_exit_group(128 + sig);
	__builtin_unreachable();
}

void stopsig_handle(void)
{
	sigset_t pending;
	if (nuwa_state != NUWA_STATE_TEMPLATE)
		return;   /* thawed meanwhile: the program's threads take it */
	if (SC(SYS_rt_sigpending, &pending, 8, 0, 0, 0, 0) < 0)
		return;
	for (int i = 0; i < NSTOP; i++) {
		int sig = stop_sigs[i];
		if (!watched(sig) || sigismember(&pending, sig) != 1)
			continue;
		char name[32];
		nuwa_signal_name(sig, name, sizeof name);
		struct ksigaction old;
		if (SC(SYS_rt_sigaction, sig, 0, &old, 8, 0, 0) < 0)
			continue;
		if (old.handler == SIG_IGN) {
			sigset_t s;
			sigemptyset(&s);
			sigaddset(&s, sig);
			struct timespec zero = { 0, 0 };
			sys_sigtimedwait(&s, NULL, &zero);   /* as the kernel would: dropped */
			nuwa_info("template: %s ignored, as the program ignores it", name);
			continue;
		}
		if (nuwa_snapshot_template)
			end_with(sig, name);
		if (old.handler != SIG_DFL || !some_thread_takes(sig)) {
			char kids[700];
			int n = list_children(kids, sizeof kids);
			nuwa_warn("template: %s is the program's to handle: thawing, so that it "
			          "takes it%s%s", name, n ? "; spawned children keep running:" : "",
			          n ? kids : "");
			nuwa_ctl_ops.thaw();
			return;   /* still pending: delivered as threads leave their handlers */
		}
		end_with(sig, name);
	}
}
