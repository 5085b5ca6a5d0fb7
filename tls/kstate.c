/* Per-thread kernel state that a task made by clone() does not inherit from
 * the thread it stands in for: saved by the thread itself in its park
 * handler, restored by its new task in the child.
 *
 * - robust futex list: per task, reset by fork and by clone
 *   (kernel/fork.c: futex_init_task) — without it, a thread dying while
 *   holding a robust mutex would not mark it EOWNERDEAD;
 * - rseq area: glibc >= 2.35 registers one per thread (__rseq_offset);
 *   clone(CLONE_VM) starts unregistered (kernel/rseq.c rseq_fork);
 * - thread name (comm), CPU affinity, scheduling policy and nice value are
 *   copied from the *cloning* task, i.e. the wrong thread.
 * The signal mask and the sigaltstack need nothing: rt_sigreturn restores
 * both from the signal frame (arch/x86/kernel/signal_64.c). */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys.h"
#include "tls.h"

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

static struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)nuwa_thread_pointer() + __rseq_offset);
}

void tls_save(struct tls_state *t)
{
	long len = 0;
	if (sys_get_robust_list(0, &t->robust_head, &len) < 0)
		t->robust_head = NULL, len = 0;
	t->robust_len = (size_t)len;
	t->rseq_registered = __rseq_size > 0 && (int32_t)rseq_area()->cpu_id >= 0;
	if (sys_prctl(PR_GET_NAME, t->name) < 0)
		t->name[0] = 0;
	t->has_affinity = sched_getaffinity(0, sizeof t->affinity, &t->affinity) == 0;
	/* Policy, priority and nice value in one call (sched_getattr(2),
	 * Linux 3.14; struct sched_attr's first 48 bytes, SCHED_ATTR_SIZE_VER0):
	 * every parked thread pays for this, all of them at once. */
	struct { uint32_t size, policy; uint64_t flags; int32_t nice; uint32_t prio;
	         uint64_t rt[3]; } a = { 0 };
	if (SC(SYS_sched_getattr, 0, &a, sizeof a, 0, 0, 0) == 0) {
		t->sched_policy = (int)(a.policy & ~(uint32_t)SCHED_RESET_ON_FORK);
		t->sched_param.sched_priority = (int)a.prio;
		t->nice = a.nice;
		return;
	}
	t->sched_policy = sched_getscheduler(0);
	if (t->sched_policy < 0 || sched_getparam(0, &t->sched_param) < 0)
		t->sched_policy = -1;
	errno = 0;
	t->nice = getpriority(PRIO_PROCESS, 0);
	if (errno)
		t->nice = 0;
}

/* cloner: the state the new task inherited from the task that cloned it
 * (NULL for the forker, which fork() left as it was).  Only what differs
 * from it costs a system call. */
void tls_restore(const struct tls_state *t, const struct tls_state *cloner)
{
	if (t->robust_head)
		sys_set_robust_list(t->robust_head, t->robust_len);
	if (!cloner)
		return; /* fork() kept the rest of the forker's state */
	if (t->rseq_registered) {
		unsigned len = __rseq_size < 32 ? 32 : __rseq_size;
		long r = sys_rseq(rseq_area(), len, 0, RSEQ_SIG);
		if (r < 0)
			nuwa_warn("resumed thread %ld: rseq registration failed: errno %ld",
			          (long)sys_gettid(), -r);
	}
	/* The raw call: the task gets back the kernel's name it had, nothing
	 * new happens to the thread.  An interposer of prctl() must not see
	 * it: ASan's records the name in its thread registry and CHECK-fails
	 * there for a thread parked inside ASan's own thread start-up. */
	if (t->name[0] && strcmp(t->name, cloner->name))
		sys_prctl(PR_SET_NAME, t->name);
	/* changing the affinity costs a migration: only when it differs */
	if (t->has_affinity && (!cloner->has_affinity || !CPU_EQUAL(&t->affinity, &cloner->affinity)))
		sched_setaffinity(0, sizeof t->affinity, &t->affinity);
	if (t->sched_policy >= 0 &&
	    (t->sched_policy != cloner->sched_policy ||
	     t->sched_param.sched_priority != cloner->sched_param.sched_priority) &&
	    sched_setscheduler(0, t->sched_policy, &t->sched_param) < 0)
		nuwa_warn("resumed thread %ld: cannot restore scheduling policy %d",
		          (long)sys_gettid(), t->sched_policy);
	if (t->nice != cloner->nice)
		setpriority(PRIO_PROCESS, 0, t->nice);
}
