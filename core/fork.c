/* Fork a frozen process and bring every thread back to life in the child.
 *
 * The application's main thread forks, from inside its park handler, with
 * the raw clone system call (not glibc's fork(): its child-side bookkeeping
 * is for a child that lost its threads; ours keeps them).  So the main
 * thread is the child's leader, getpid() == gettid() there, as in the
 * original.  In the child it clones libnuwa's control thread back; the
 * control thread rebuilds descriptors, runs constructors, clones every
 * other thread at its own thread pointer, and lets them all go at once.
 *
 *   parent control           parent main (parked)        child
 *   --------------           --------------------        -----
 *   ctx_save(control)
 *   main.cmd = FORK  ----->  clone(CLONE_PIDFD) ------>  main: fix TCB tid,
 *                                                         robust list; clone
 *                                                         control -> jumps to
 *                                                         control ctx
 *   <- fork_pid ---------    back to waiting              control: fds, hooks,
 *                                                         clone threads, GO
 */
#include <asm/prctl.h>
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdremap.h"
#include "freeze.h"
#include "resources.h"

#pragma weak fdremap_child_setup

#define TRAMPOLINE_STACK (16 * 1024)

static struct park_slot control_slot;   /* the control thread's own context */
static void *control_trampoline;        /* its clone stack in the child */
static struct park_slot *leader_slot;   /* the forker, in the child */

/* Set by the requester of a fork; read in the child. */
static const int *fork_stdio;
static int fork_stay_frozen;   /* snapshot mode: the child is a template */
static int fork_exit_signal;   /* 0, or SIGCHLD for nuwa_clone() children */

void freeze_fork_set_exit_signal(int sig)
{
	fork_exit_signal = sig;
}
static void (*fork_child_fn)(void *);
static void *fork_child_arg;

int nuwa_spawned;
extern void control_child_reinit(void);   /* control.c */
extern void nuwa_signals_block_for_control(void);

static const unsigned long resume_flags =
	CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
	CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;

static void *thread_pointer(void)
{
	void *fs = NULL;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
	return fs;
}

static long us_between(struct timespec a, struct timespec b)
{
	struct timespec d = ts_sub(b, a);
	return d.tv_sec * 1000000L + d.tv_nsec / 1000;
}

static int resume_entry(void *arg)
{
	struct park_slot *s = arg;
	ctx_jump(&s->ctx, (intptr_t)s);
}

/* clone() a task that continues s at its own thread pointer. */
static int clone_resumed(struct park_slot *s, void *stack_top)
{
	unsigned long flags = resume_flags;
	pid_t *tidp = NULL;
	if (s->tcb_shared)
		flags &= ~(CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID);
	else
		tidp = tls_tid_ptr(s->tcb);
	int r = clone(resume_entry, stack_top, (int)flags, s, tidp, s->tcb, tidp);
	return r < 0 ? -errno : r;
}

static void *map_stacks(size_t n)
{
	void *p = mmap(NULL, n * TRAMPOLINE_STACK, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* ---- parent side ---------------------------------------------------------- */

static struct park_slot *find_forker(void)
{
	pid_t pid = (pid_t)syscall(SYS_getpid);
	for (int i = 0; i < nuwa_ft.nslots; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->tid == pid && s->state == SLOT_PARKED)
			return s;
	}
	return NULL;
}

static void child_control_resume(void);

pid_t freeze_fork_template_child(int *pidfd)
{
	fork_stay_frozen = 1;
	pid_t r = freeze_fork_child_with(NULL, NULL, NULL, pidfd);
	fork_stay_frozen = 0;
	return r;
}

pid_t freeze_fork_child_with(const int *stdio, void (*fn)(void *), void *arg, int *pidfd)
{
	struct park_slot *forker = find_forker();
	if (!forker)
		return -ESRCH; /* the main thread has exited: see docs/limits */

	fork_stdio = stdio;
	fork_child_fn = fn;
	fork_child_arg = arg;
	control_slot.tid = (pid_t)syscall(SYS_gettid);
	control_slot.tcb = thread_pointer();
	tls_save(&control_slot.tls);
	if (ctx_save(&control_slot.ctx) != 0) {
		/* We are the control thread of a new child. */
		child_control_resume();
		return 0;
	}
	forker->fork_pid = 0;
	resources_before_fork();   /* resources: timers' clocks, MADV_DOFORK */
	park_release_slot(forker, CMD_FORK);
	int c;
	while ((c = __atomic_load_n(&forker->cmd, __ATOMIC_ACQUIRE)) == CMD_FORK)
		nuwa_futex_wait(&forker->cmd, CMD_FORK, NULL);
	resources_after_fork();    /* resources: MADV_DONTFORK back */
	if (forker->fork_pid < 0)
		return forker->fork_pid;
	*pidfd = forker->fork_pidfd;
	return forker->fork_pid;
}

pid_t freeze_fork_child(int *pidfd)
{
	return freeze_fork_child_with(NULL, NULL, NULL, pidfd);
}

/* Runs on the main thread, in its park handler. */
int fork_in_forker(struct park_slot *s)
{
	int pidfd = -1;
	/* exit_signal 0 (triggers, spawns): the child is not a SIGCHLD child
	 * of the program, whose wait(-1) never sees it; libnuwa reaps it via
	 * its pidfd.  nuwa_clone() children are the caller's, as with fork(). */
	long pid = syscall(SYS_clone, CLONE_PIDFD | fork_exit_signal, NULL, &pidfd, NULL, NULL);
	if (pid == 0)
		return child_leader_start(s);
	s->fork_pid = pid < 0 ? -errno : (pid_t)pid;
	s->fork_pidfd = pidfd;
	__atomic_store_n(&s->cmd, CMD_WAIT, __ATOMIC_RELEASE);
	nuwa_futex_wake(&s->cmd, 2);
	return 0;
}

/* ---- child side ---------------------------------------------------------- */

/* Wait for the control thread's GO, then say we have left the slot: the
 * next freeze reuses the table, and must not do so under our feet. */
static void wait_go(struct park_slot *s)
{
	int c;
	while ((c = __atomic_load_n(&s->cmd, __ATOMIC_ACQUIRE)) != CMD_GO)
		nuwa_futex_wait(&s->cmd, c, NULL);
	__atomic_store_n(&s->state, SLOT_LISTED, __ATOMIC_RELEASE);
	nuwa_futex_wake(&s->state, 1);
}

static void note_resumed(struct park_slot *s, pid_t tid)
{
	s->new_tid = tid;
	robust_list_rebind(s->tls.robust_head, s->tid, tid);
	if (s->known && !s->tcb_shared) {
		tls_note_new_tid(s->tid, tid);
		nuwa_self.tid = tid;
	}
	__atomic_store_n(&s->state, SLOT_RESUMED, __ATOMIC_RELEASE);
	nuwa_futex_wake(&s->state, 1);
}

/* The forker, first task of the child.  Returns 1 when it must leave its
 * park handler (threads resume), 0 to stay parked (snapshot template). */
int child_leader_start(struct park_slot *s)
{
	/* Read once: the child's control thread resets it as soon as it runs. */
	int stay = fork_stay_frozen;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	/* The TCB still holds the parent's tid: pthread_kill, mutex owners
	 * and pthread_join read it.  fork() resets the robust list and the
	 * clear-child-tid address (kernel/fork.c), so register them again;
	 * rseq survives fork (rseq_fork copies it when !CLONE_VM). */
	tls_set_tid(s->tcb, tid);
	syscall(SYS_set_tid_address, tls_tid_ptr(s->tcb));
	tls_restore(&s->tls, NULL);
	leader_slot = s;
	nuwa_spawned = 1;

	if (stay) {
		/* A template child: stay parked as the forker of later spawns. */
		tls_note_new_tid(s->tid, tid);
		robust_list_rebind(s->tls.robust_head, s->tid, tid);
		s->tid = tid;
		s->cmd = CMD_WAIT;
	} else {
		/* Mark ourselves resumed before the control thread exists: it
		 * clones every slot still PARKED. */
		note_resumed(s, tid);
	}
	control_trampoline = map_stacks(1);
	if (!control_trampoline ||
	    clone_resumed(&control_slot, (char *)control_trampoline + TRAMPOLINE_STACK) < 0) {
		static const char msg[] = "libnuwa: child cannot restart its control thread\n";
		(void)!write(2, msg, sizeof msg - 1);
		syscall(SYS_exit_group, 127);
	}
	if (stay)
		return 0;
	wait_go(s);
	return 1;
}

/* A task cloned in a child, right after jumping back into its handler. */
void child_resumed_thread(struct park_slot *s)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);
	tls_restore(&s->tls, &control_slot.tls);   /* cloned by the control thread */
	note_resumed(s, tid);
	wait_go(s);
}

static void install_stdio(const int *fds)
{
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0 && fds[i] != i)
			syscall(SYS_dup3, fds[i], i, 0);
	for (int i = 0; i < 3; i++)
		if (fds[i] > 2)
			syscall(SYS_close, fds[i]);
}

/* The control thread of a new child: everything between "forked" and
 * "every thread runs". */
static void child_control_resume(void)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);
	if (control_trampoline) {
		munmap(control_trampoline, TRAMPOLINE_STACK);
		control_trampoline = NULL;
	}
	struct timespec t0 = ts_now(CLOCK_MONOTONIC);
	resources_child_early();   /* resources: MADV_DONTFORK back */
	tls_restore(&control_slot.tls, &leader_slot->tls);  /* cloned by the leader */
	control_slot.new_tid = tid;
	nuwa_self.tid = tid;
	/* Our own eventfd first, then open the trigger: a trigger that hits
	 * this child now must wake this control thread, not the parent's. */
	control_child_reinit();
	nuwa_signals_block_for_control();
	if (fork_stay_frozen) {
		/* snapshot: this child keeps the frozen image and serves spawns */
		nuwa_spawned = 0;
		nuwa_state = NUWA_STATE_TEMPLATE;
		resources_child_before_go();   /* resources: timers */
		nuwa_info("snapshot template ready in process %ld", (long)syscall(SYS_getpid));
		return;
	}

	struct timespec t1 = ts_now(CLOCK_MONOTONIC);
	/* A child is a running process from here on, not a template (the
	 * constructors may ask nuwa_is_template()). */
	nuwa_state = NUWA_STATE_RUNNING;
	sync_enter_resumed_child();
	if (fdremap_child_setup)
		fdremap_child_setup();
	struct timespec t2 = ts_now(CLOCK_MONOTONIC);
	if (fork_stdio)
		install_stdio(fork_stdio);
	hooks_run_constructors();

	/* Clone every parked thread but the leader, which already runs. */
	int n = nuwa_ft.nslots, want = 0;
	for (int i = 0; i < n; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->state == SLOT_PARKED && !s->skip)
			want++;
	}
	char *stacks = want ? map_stacks((size_t)want) : NULL;
	int k = 0;
	for (int i = 0; i < n; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->state != SLOT_PARKED || s->skip)
			continue;
		if (!stacks || clone_resumed(s, stacks + (size_t)(++k) * TRAMPOLINE_STACK) < 0) {
			nuwa_err("child: cannot resume thread %d: %s", s->tid, strerror(errno));
			syscall(SYS_exit_group, 127);
		}
	}
	/* Wait until every task has done its fixups, then release them all at
	 * once, so no resumed thread sees another one with a stale TCB tid. */
	for (int i = 0; i < n; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		int st;
		if ((s->skip && s->state == SLOT_PARKED))
			continue;
		while ((st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE)) == SLOT_PARKED)
			nuwa_futex_wait(&s->state, st, NULL);
	}
	/* Every thread has its new tid, none runs yet: timers aimed at a
	 * thread (SIGEV_THREAD_ID) can be aimed at its new task. */
	resources_child_before_go();   /* resources: timers */
	struct timespec t3 = ts_now(CLOCK_MONOTONIC);
	__atomic_store_n(&nuwa_ft.active, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&nuwa_freezing, 0, __ATOMIC_SEQ_CST);
	nuwa_futex_wake(&nuwa_freezing, 1 << 30);
	for (int i = 0; i < n; i++)
		if (nuwa_ft.slots[i].state == SLOT_RESUMED)
			park_release_slot(&nuwa_ft.slots[i], CMD_GO);
	/* Every task must have seen GO before this process can freeze again
	 * (a new freeze rewrites the slots). */
	for (int i = 0; i < n; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		int st;
		while ((st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE)) == SLOT_RESUMED)
			nuwa_futex_wait(&s->state, st, NULL);
	}
	/* The clone trampolines are left by now: every task jumped off its
	 * stack before reporting RESUMED. */
	if (stacks)
		munmap(stacks, (size_t)want * TRAMPOLINE_STACK);
	nuwa_state = NUWA_STATE_RUNNING;
	struct timespec t4 = ts_now(CLOCK_MONOTONIC);
	nuwa_info("resumed %d threads in child %ld", want + 1, (long)syscall(SYS_getpid));
	nuwa_debug("child timing (us): own state %ld, descriptors %ld, threads cloned %ld, released %ld",
	           us_between(t0, t1), us_between(t1, t2), us_between(t2, t3), us_between(t3, t4));
	hooks_run_final_constructors();
	if (fork_child_fn)
		fork_child_fn(fork_child_arg);
}

int nuwa_is_child_of_freeze(void)
{
	return nuwa_spawned;
}
