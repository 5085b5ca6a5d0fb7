/* The park signal's handler: where every application thread waits while a
 * freeze is held, and where its copies come back to life in children.
 *
 * A parked thread saves what the kernel will not carry into a child (tls/)
 * and a context inside this very frame, then waits on a futex.  In a child,
 * a new task made with raw clone() at the thread's original thread pointer
 * jumps back into that context (fork.c), finishes its fixups and returns
 * from the handler: rt_sigreturn then restores every register, the signal
 * mask and the sigaltstack exactly as they were when the signal arrived. */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "asan.h"
#include "freeze.h"

struct freeze_table nuwa_ft;

struct park_slot *freeze_slot_find(pid_t tid)
{
	int n = __atomic_load_n(&nuwa_ft.nslots, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++)
		if (nuwa_ft.slots[i].tid == tid)
			return &nuwa_ft.slots[i];
	return NULL;
}

/* Wait for the control thread's word.  Returns 1 when this task became the
 * leader of a new child (it is the forker and fork_in_forker() ran the
 * child's side). */
static int park_wait(struct park_slot *s)
{
	for (;;) {
		int c = __atomic_load_n(&s->cmd, __ATOMIC_ACQUIRE);
		if (c == CMD_RELEASE)
			return 0;
		if (c == CMD_FORK) {
			if (fork_in_forker(s))
				return 1;
			continue;
		}
		nuwa_futex_wait(&s->cmd, c, NULL);
	}
}

void park_handler(int sig, siginfo_t *si, void *ucv)
{
	int saved_errno = errno;
	struct nuwa_thread *self = &nuwa_self;
	pid_t tid = (pid_t)sys_gettid();
	/* A task made by raw clone() may share another thread's TLS: only
	 * trust our record when it really is ours. */
	/* volatile: read again after ctx_save() returns a second time */
	volatile int self_ok = self->registered && self->tid == tid;

	if (unlikely(nuwa_trigger_handed_over))
		signals_handover_fix_mask(ucv);

	if (self_ok && self->cs_depth > 0) {
		/* Inside libnuwa's own bookkeeping: park when leaving it. */
		self->park_pending = 1;
		goto out;
	}
	if (self_ok)
		self->park_pending = 0;
	if (!__atomic_load_n(&nuwa_ft.active, __ATOMIC_ACQUIRE))
		goto out;
	struct park_slot *s = freeze_slot_find(tid);
	if (!s || s->state == SLOT_PARKED)
		goto out;
	if (__atomic_load_n(&s->cmd, __ATOMIC_ACQUIRE) == CMD_RELEASE)
		goto out; /* this freeze was abandoned before we got here */

	/* The control thread set idle_at to FP_KERNEL when it saw this task
	 * asleep in a system call outside the wrappers: keep that, unless
	 * the thread has since entered a freeze point. */
	int fp = self_ok ? self->idle : FP_BUSY;
	if (fp == FP_BUSY && !__atomic_load_n(&nuwa_ft.park_anyway, __ATOMIC_ACQUIRE) &&
	    tls_rtld_held_by(tid)) {
		/* Interrupted inside the loader, not at a freeze point: a child
		 * and the template would both read on through the object's file
		 * description (core/freeze.c, LOADER_GRACE_S).  Not here: the
		 * control thread signals again. */
		__atomic_store_n(&s->state, SLOT_LISTED, __ATOMIC_RELEASE);
		nuwa_futex_wake(&nuwa_ft.parked, 1);
		goto out;
	}
	if (fp != FP_BUSY || s->idle_at != FP_KERNEL)
		s->idle_at = fp;
	s->known = self_ok;
	s->skip = self_ok && self->skip;
	s->tcb = nuwa_thread_pointer();
	s->uc = ucv;
	tls_save(&s->tls);

	intptr_t r = ctx_save(&s->ctx);
	if (r == 0) {
		/* The control thread waits for as many parked tasks as it sent
		 * signals: the last of them wakes it (one FUTEX_WAKE per freeze,
		 * not one per task; a late target costs it only its nap). */
		__atomic_store_n(&s->state, SLOT_PARKED, __ATOMIC_RELEASE);
		if (__atomic_add_fetch(&nuwa_ft.parked, 1, __ATOMIC_ACQ_REL) >=
		    __atomic_load_n(&nuwa_ft.park_target, __ATOMIC_ACQUIRE))
			nuwa_futex_wake(&nuwa_ft.parked, 1);
		if (!park_wait(s)) {
			/* released in this process */
			parksig_drain_self(s);
			__atomic_store_n(&s->state, SLOT_LISTED, __ATOMIC_RELEASE);
			nuwa_futex_wake(&s->state, 1);
		}
	} else {
		/* A new task in a child, jumped here from fork.c. */
		nuwa_asan_resumed_frame();
		child_resumed_thread((struct park_slot *)r);
	}
out:
	if (self_ok)
		self->sigcount++;
	errno = saved_errno;
}

void park_release_slot(struct park_slot *s, int cmd)
{
	__atomic_store_n(&s->cmd, cmd, __ATOMIC_RELEASE);
	nuwa_futex_wake(&s->cmd, 1);
}

/* Runs in whatever thread the kernel picked (normally the control thread,
 * the only one that leaves the trigger signal unblocked). */
void trigger_handler(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	control_trigger();
	if (nuwa_self.registered && nuwa_self.tid == (pid_t)sys_gettid())
		nuwa_self.sigcount++;
	errno = saved_errno;
}
