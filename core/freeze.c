/* The freeze protocol, run on libnuwa's control thread (DESIGN.md §2):
 *   1. hold back thread creation and fork() (lifecycle),
 *   2. park idle threads as soon as they are seen idle; wait, up to the
 *      timeout, for the busy ones to reach a freeze point,
 *   3. then either park the busy ones where they are (policy "any") or give
 *      up naming them and release everybody (policy "idle"),
 *   4. re-list /proc/self/task until the set of tasks is stable and every
 *      task is parked (threads made by raw clone or by libc are tasks too).
 * Nothing here allocates or takes a lock that a parked thread could hold. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "freeze.h"

volatile int nuwa_freezing;
volatile int nuwa_state;
long long nuwa_last_freeze_us;

struct task_list { pid_t *tids, me; int n, max; };

/* How long past the freeze timeout a busy thread inside the loader is let
 * run before it is parked anyway (a constructor that never returns). */
#define LOADER_GRACE_S 1

static int add_task(int dfd, const char *name, void *arg)
{
	struct task_list *l = arg;
	pid_t t = (pid_t)atoi(name);
	if (t != l->me && l->n < l->max)
		l->tids[l->n++] = t;
	return 0;
}

/* Tids of this process but the caller's, without malloc. */
static int list_tasks(pid_t *tids, int max)
{
	struct task_list l = { tids, (pid_t)sys_gettid(), 0, max };
	int r = nuwa_dir_walk(AT_FDCWD, "/proc/self/task", add_task, &l);
	return r < 0 ? r : l.n;
}

static struct park_slot *slot_add(pid_t tid)
{
	int n = nuwa_ft.nslots;
	if (n >= NUWA_MAX_THREADS)
		return NULL;
	struct park_slot *s = &nuwa_ft.slots[n];
	memset(s, 0, sizeof *s);
	s->tid = tid;
	s->state = SLOT_LISTED;
	s->cmd = CMD_WAIT;
	s->is_main = tid == (pid_t)sys_getpid();
	__atomic_store_n(&nuwa_ft.nslots, n + 1, __ATOMIC_RELEASE);
	return s;
}

/* What a not-yet-parked thread is doing, for error messages. */
static int thread_idle_state(pid_t tid, int *known)
{
	int idle = FP_BUSY;
	registry_lock();
	struct nuwa_thread *t = registry_find(tid);
	*known = t != NULL;
	if (t)
		idle = t->idle;
	registry_unlock();
	return idle;
}

static void describe_unparked(char *err, size_t len, const char *why)
{
	size_t off = (size_t)snprintf(err, len, "%s:", why);
	for (int i = 0; i < nuwa_ft.nslots && off < len; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (!s->present || s->state == SLOT_PARKED)
			continue;
		char name[16], blk[17];
		int known;
		int idle = thread_idle_state(s->tid, &known);
		nuwa_task_comm(s->tid, name, sizeof name);
		if (s->state == SLOT_SIGNALLED && task_blocks_signal(s->tid, nuwa_park_sig, blk) == 1) {
			/* masked with a raw rt_sigprocmask: the signal waits, pending */
			off += (size_t)snprintf(err + off, len - off, " tid %d (%s) blocks signal %d "
			                        "(SigBlk %s), libnuwa's park signal;", s->tid, name,
			                        nuwa_park_sig, blk);
			continue;
		}
		off += (size_t)snprintf(err + off, len - off, " tid %d (%s) %s, task state %c;",
		                        s->tid, name,
		                        !known ? "busy, not created through pthread_create"
		                        : idle ? freeze_point_name(idle) : "busy (not at a freeze point)",
		                        task_state(s->tid));
	}
	if (off && off < len && err[off - 1] == ';')
		err[off - 1] = 0;
}

/* Every registered thread idle at a freeze point gets a slot before the
 * first /proc listing, which takes 100-300 us for 64 tasks (measured): they
 * park while it runs.  One pass under the registry lock, not a lookup per
 * task.  Returns how many were put in list. */
static int registered_idle(struct park_slot **list)
{
	pid_t me = (pid_t)sys_gettid();
	int n = 0;
	registry_lock();
	for (struct nuwa_thread *t = registry_head; t; t = t->next) {
		int fp = t->idle;
		if (t->tid == me || fp == FP_BUSY)
			continue;
		struct park_slot *s = slot_add(t->tid);
		if (!s)
			break;   /* the listing reports the table full */
		s->idle_at = fp;
		s->kernel_nr = -1;
		s->state = SLOT_SIGNALLED;
		list[n++] = s;
	}
	registry_unlock();
	return n;
}

/* Publish the new target first (the last of them to park wakes us), then
 * signal each.  Returns the number of signals sent so far. */
static int send_park(struct park_slot **list, int n, int signalled)
{
	if (!n)
		return signalled;
	signalled += n;
	__atomic_store_n(&nuwa_ft.park_target, signalled, __ATOMIC_RELEASE);
	struct timespec now = ts_now(CLOCK_MONOTONIC);
	for (int k = 0; k < n; k++) {
		struct park_slot *s = list[k];
		s->signalled_at = now;
		if (sys_tgkill((pid_t)sys_getpid(), s->tid, nuwa_park_sig) < 0) {
			/* gone: it will never park */
			s->tid = -1, s->state = SLOT_EMPTY, s->present = 0;
			__atomic_store_n(&nuwa_ft.park_target, --signalled, __ATOMIC_RELEASE);
		}
	}
	return signalled;
}

/* Give up: every parked thread goes on exactly where it was. */
static void freeze_abandon(void)
{
	int n = nuwa_ft.nslots;
	for (int i = 0; i < n; i++)
		park_release_slot(&nuwa_ft.slots[i], CMD_RELEASE);
	freeze_release();
}

int freeze_all(int timeout_ms, char *err, size_t errlen)
{
	if (timeout_ms <= 0)
		timeout_ms = nuwa_cfg.timeout_ms;
	static pid_t tids[NUWA_MAX_THREADS];
	static struct park_slot *sig_list[NUWA_MAX_THREADS];
	struct timespec t0 = ts_now(CLOCK_MONOTONIC);
	struct timespec tmo = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	struct timespec deadline = ts_add(t0, tmo);
	struct timespec loader_until = ts_add(deadline, (struct timespec){ LOADER_GRACE_S, 0 });
	struct timespec hard = ts_add(loader_until, (struct timespec){ 2, 0 });
	int forced = 0, stable_rounds = 0, busy_parked = 0, kernel_parked = 0;

	if (nuwa_state != NUWA_STATE_RUNNING) {
		snprintf(err, errlen, "a freeze is already held");
		return -EBUSY;
	}
	/* A resumed child's tasks leave their slots after GO (fork.c); the
	 * table is rewritten below only once the last one has. */
	int lv;
	while ((lv = __atomic_load_n(&nuwa_ft.leaving, __ATOMIC_ACQUIRE)) > 0)
		nuwa_futex_wait(&nuwa_ft.leaving, lv, NULL);
	nuwa_ft.go = 0;
	nuwa_state = NUWA_STATE_FREEZING;
	__atomic_store_n(&nuwa_freezing, 1, __ATOMIC_SEQ_CST);
	if (lifecycle_wait_quiet_until(deadline) < 0) {
		snprintf(err, errlen, "a pthread_create() or fork() did not finish in %d ms",
		         timeout_ms);
		freeze_release();
		return -ETIMEDOUT;
	}
	/* A runtime may have replaced the park handler behind our back. */
	parksig_take();
	__atomic_store_n(&nuwa_ft.nslots, 0, __ATOMIC_RELEASE);
	nuwa_ft.parked = 0;
	nuwa_ft.park_target = 0;
	nuwa_ft.park_anyway = 0;
	__atomic_store_n(&nuwa_ft.active, 1, __ATOMIC_RELEASE);
	int signalled = send_park(sig_list, registered_idle(sig_list), 0); /* first ones only */

	for (;;) {
		int parked_before = __atomic_load_n(&nuwa_ft.parked, __ATOMIC_ACQUIRE);
		int n = list_tasks(tids, NUWA_MAX_THREADS);
		if (n < 0) {
			snprintf(err, errlen, "cannot list /proc/self/task: %s", nuwa_strerror(-n));
			freeze_abandon();
			return n;
		}
		int added = 0, all_parked = 1;
		for (int i = 0; i < nuwa_ft.nslots; i++)
			nuwa_ft.slots[i].present = 0;
		for (int i = 0; i < n; i++) {
			struct park_slot *s = freeze_slot_find(tids[i]);
			if (!s) {
				if (!(s = slot_add(tids[i]))) {
					snprintf(err, errlen, "more than %d threads", NUWA_MAX_THREADS);
					freeze_abandon();
					return -E2BIG;
				}
				added = 1;
			}
			s->present = 1;
		}
		/* The loader's grace is over: a busy task inside it parks there
		 * (park.c declines until then). */
		if (forced && !nuwa_ft.park_anyway &&
		    ts_cmp(ts_now(CLOCK_MONOTONIC), loader_until) >= 0)
			__atomic_store_n(&nuwa_ft.park_anyway, 1, __ATOMIC_RELEASE);
		/* Every idle task is signalled in one pass, and they park in
		 * parallel: decide first, then publish the target, then send. */
		int nsig = 0;
		for (int i = 0; i < nuwa_ft.nslots; i++) {
			struct park_slot *s = &nuwa_ft.slots[i];
			int st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
			if (!s->present) {
				if (st != SLOT_PARKED) /* the task exited */
					s->tid = -1, s->state = SLOT_EMPTY;
				continue;
			}
			if (st == SLOT_PARKED)
				continue;
			all_parked = 0;
			if (st == SLOT_SIGNALLED) {
				/* Signals are not lost, but a starved thread may take
				 * long to run its handler; a second signal is free and
				 * covers one consumed by a handler that found no slot. */
				struct timespec since = ts_sub(ts_now(CLOCK_MONOTONIC), s->signalled_at);
				if (since.tv_sec || since.tv_nsec > 200000000L) {
					/* replaced again while we wait? (a runtime
					 * that installs handlers late) */
					parksig_take();
					s->signalled_at = ts_now(CLOCK_MONOTONIC);
					if (parksig_fallback_kill(s) < 0)
						sys_tgkill((pid_t)sys_getpid(), s->tid, nuwa_park_sig);
				}
				continue;
			}
			if (st != SLOT_LISTED)
				continue;
			int known, idle = thread_idle_state(s->tid, &known);
			long nr = -1;
			/* Asleep in a system call outside any wrapper (a raw
			 * futex wait, a fortified read, …): as idle as in one. */
			if (!idle && (nr = task_syscall_asleep(s->tid)) >= 0)
				idle = FP_KERNEL;
			/* Asleep in a system call inside the loader (its open() of
			 * the object, a lock of its malloc): busy, see below. */
			if (idle == FP_KERNEL && tls_rtld_held_by(s->tid))
				idle = FP_BUSY;
			/* Busy inside the loader (it holds one of ld.so's locks):
			 * parked there, the child and the template would both read
			 * on through the file being loaded, whose offset they share
			 * (fork shares open file descriptions): one of them reads
			 * the ELF header at the other's offset (matrix:
			 * dlopen-during-freeze, "invalid ELF header").  It gets
			 * LOADER_GRACE_S more to leave the loader.  Looked at here
			 * so as not to signal in vain; the park handler decides,
			 * exactly (it may have entered the loader since). */
			if (!idle && forced && !nuwa_ft.park_anyway && tls_rtld_held_by(s->tid))
				continue;
			if (idle || forced) {
				s->idle_at = idle;
				s->kernel_nr = nr;
				if (idle == FP_KERNEL)
					kernel_parked++;
				else if (!idle)
					busy_parked++;
				s->state = SLOT_SIGNALLED;
				sig_list[nsig++] = s;
			}
		}
		signalled = send_park(sig_list, nsig, signalled);
		/* Done once a listing shows every task parked and none new, and
		 * it began after the last of them parked (no park since
		 * parked_before): a task made by a raw clone before its creator
		 * parked is then in it.  Else a second such listing decides. */
		stable_rounds = (all_parked && !added) ? stable_rounds + 1 : 0;
		if (stable_rounds >= 2 || (stable_rounds == 1 &&
		    __atomic_load_n(&nuwa_ft.parked, __ATOMIC_ACQUIRE) == parked_before))
			break;
		struct timespec now = ts_now(CLOCK_MONOTONIC);
		if (!forced && ts_cmp(now, deadline) >= 0) {
			if (nuwa_cfg.policy == NUWA_POLICY_IDLE) {
				char why[64];
				snprintf(why, sizeof why, "threads still busy after %d ms", timeout_ms);
				describe_unparked(err, errlen, why);
				freeze_abandon();
				return -ETIMEDOUT;
			}
			forced = 1;
			continue;
		}
		if (forced && ts_cmp(now, hard) >= 0) {
			describe_unparked(err, errlen, "threads did not run libnuwa's park handler "
			                  "within 2 s of its signal");
			freeze_abandon();
			return -ETIMEDOUT;
		}
		/* All parked: list once more at once (a task made by a raw clone
		 * before its parent parked shows there).  Else wait for the
		 * signalled ones to park (the last one wakes us), or, when only
		 * busy ones are left, nap until they reach a freeze point. */
		if (all_parked)
			continue;
		struct timespec nap = { 0, 100000 };
		int pk = __atomic_load_n(&nuwa_ft.parked, __ATOMIC_ACQUIRE);
		if (pk < signalled)
			nuwa_futex_wait(&nuwa_ft.parked, pk, &nap);
		else
			sys_nanosleep(&nap, NULL);
	}
	struct timespec dt = ts_sub(ts_now(CLOCK_MONOTONIC), t0);
	nuwa_last_freeze_us = dt.tv_sec * 1000000LL + dt.tv_nsec / 1000;
	int parked = 0;
	for (int i = 0; i < nuwa_ft.nslots; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->state == SLOT_PARKED)
			parked++;
	}
	/* Two tasks on one thread pointer (raw clone without CLONE_SETTLS):
	 * neither may have its TCB tid rewritten. */
	for (int i = 0; i < nuwa_ft.nslots; i++)
		for (int j = i + 1; j < nuwa_ft.nslots; j++)
			if (nuwa_ft.slots[i].state == SLOT_PARKED &&
			    nuwa_ft.slots[j].state == SLOT_PARKED &&
			    nuwa_ft.slots[i].tcb == nuwa_ft.slots[j].tcb)
				nuwa_ft.slots[i].tcb_shared = nuwa_ft.slots[j].tcb_shared = 1;
	nuwa_debug("freeze took %lld us: %d threads parked, %d of them busy, %d asleep "
	           "in a system call outside the freeze points",
	           nuwa_last_freeze_us, parked, busy_parked, kernel_parked);
	return 0;
}

/* The freeze is over in this process: let every parked thread go and wait
 * until each has left its slot (the table is reused by the next freeze). */
void freeze_release(void)
{
	int n = nuwa_ft.nslots;
	for (int i = 0; i < n; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->state == SLOT_PARKED)
			park_release_slot(s, CMD_RELEASE);
	}
	for (int i = 0; i < n; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		int st;
		while ((st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE)) == SLOT_PARKED)
			nuwa_futex_wait(&s->state, st, NULL);
	}
	__atomic_store_n(&nuwa_ft.active, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&nuwa_freezing, 0, __ATOMIC_SEQ_CST);
	nuwa_futex_wake(&nuwa_freezing, 1 << 30);
	nuwa_state = NUWA_STATE_RUNNING;
	/* every thread has left its handler: the program's own is back */
	parksig_give_back();
}
