/* Fork a frozen process and bring every thread back to life in the child.
 *
 * The application's main thread forks, from inside its park handler, with
 * the raw clone system call (not glibc's fork(): its child-side bookkeeping
 * is for a child that lost its threads; ours keeps them).  So the main
 * thread is the child's leader, getpid() == gettid() there, as in the
 * original.  In the child it clones libnuwa's control thread back; the
 * control thread runs the child's re-initialisation steps (child_steps[]
 * below), clones every other thread at its own thread pointer, lets them all
 * go at once, and goes on in a fresh control loop.  What to fork comes in an
 * explicit request (struct fork_req, nuwa_int.h); the forker finds it in
 * its slot, the child's control thread on its own (copied) stack.
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
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ctlsock.h"
#include "fdremap.h"
#include "freeze.h"
#include "resources.h"
#include "spawnopts.h"

#define TRAMPOLINE_STACK (16 * 1024)

static struct park_slot control_slot;   /* the control thread's own context */
static void *control_trampoline;        /* its clone stack in the child */
static struct park_slot *leader_slot;   /* the forker, in the child */
static pid_t fork_parent;               /* the forking process, for the child */
static int leader_ready_fd;             /* child: the ready channel (0: none) */

int nuwa_spawned;

static const unsigned long resume_flags =
	CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
	CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;

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
	pid_t pid = (pid_t)sys_getpid();
	for (int i = 0; i < nuwa_ft.nslots; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->tid == pid && s->state == SLOT_PARKED)
			return s;
	}
	return NULL;
}

__attribute__((noreturn)) static void child_control_resume(const struct fork_req *req);

pid_t fork_child(const struct fork_req *req, int *pidfd)
{
	struct park_slot *forker = find_forker();
	if (!forker)
		return -ESRCH; /* the main thread has exited: see docs/limits */

	control_slot.tid = (pid_t)sys_gettid();
	control_slot.tcb = nuwa_thread_pointer();
	tls_save(&control_slot.tls);
	if (ctx_save(&control_slot.ctx) != 0)
		child_control_resume(req);   /* we are the control thread of a new child */
	forker->fork_req = req;
	forker->fork_pid = 0;
	fork_parent = (pid_t)sys_getpid();
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

/* clone3(CLONE_INTO_CGROUP) (Linux 5.7): the child starts in the cgroup,
 * never runs anywhere else, and the parent needs no write to cgroup.procs.
 * With stack 0 clone3 forks like clone(): the child returns 0 on this
 * stack.  A kernel without it (ENOSYS: no clone3; E2BIG: clone_args too
 * large for it; EINVAL: flag unknown) gets a plain fork, and the child
 * joins the cgroup itself before its threads run (spawn_opts_apply). */
static int forked_into_cgroup;   /* in the child: it was */

static long fork_into_cgroup(const struct fork_req *req, int cgroup_fd, int *pidfd)
{
	struct clone_args a = {
		.flags = CLONE_PIDFD | CLONE_INTO_CGROUP,
		.pidfd = (uintptr_t)pidfd,
		.exit_signal = (uint64_t)req->exit_signal,
		.cgroup = (uint64_t)cgroup_fd,
	};
	long pid = SC(SYS_clone3, &a, sizeof a, 0, 0, 0, 0);
	if (pid == 0)
		forked_into_cgroup = 1;
	if (pid == -ENOSYS || pid == -E2BIG || pid == -EINVAL)
		pid = sys_clone_fork(CLONE_PIDFD | req->exit_signal, pidfd);
	return pid;
}

/* Runs on the main thread, in its park handler. */
int fork_in_forker(struct park_slot *s)
{
	int pidfd = -1;
	/* exit_signal 0 (triggers, spawns): the child is not a SIGCHLD child
	 * of the program, whose wait(-1) never sees it; libnuwa reaps it via
	 * its pidfd.  nuwa_clone() children are the caller's, as with fork(). */
	const struct spawn_opts *o = s->fork_req->opts;
	forked_into_cgroup = 0;
	long pid = o && o->cgroup_fd >= 0 ? fork_into_cgroup(s->fork_req, o->cgroup_fd, &pidfd)
	                                  : sys_clone_fork(CLONE_PIDFD | s->fork_req->exit_signal,
	                                                   &pidfd);
	if (pid == 0)
		return child_leader_start(s);
	s->fork_pid = (pid_t)pid;   /* or -errno */
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
	/* The leader carries the parent-death signal (base/child_ready.c);
	 * released, it may outlive the parent: off before the program runs. */
	if (s == leader_slot && leader_ready_fd > 0)
		nuwa_ready_child_go(leader_ready_fd);
	__atomic_store_n(&s->state, SLOT_LISTED, __ATOMIC_RELEASE);
	nuwa_futex_wake(&s->state, 1);
}

static void note_resumed(struct park_slot *s, pid_t tid)
{
	s->new_tid = tid;
	robust_list_rebind(s->tls.robust_head, s->tid, tid);
	tls_rtld_rebind(s->tid, tid);
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
	/* Read once: the request is on the control thread's stack, which the
	 * child's control thread reuses as soon as it runs. */
	int stay = s->fork_req->stay_frozen;
	int ready_fd = s->fork_req->ready_fd, ready_peer = s->fork_req->ready_peer;
	pid_t tid = (pid_t)sys_gettid();
	/* First: a child whose parent dies before releasing it dies too. */
	leader_ready_fd = ready_fd;
	if (ready_fd > 0)
		nuwa_ready_child_arm(ready_peer, fork_parent);
	/* The TCB still holds the parent's tid: pthread_kill, mutex owners
	 * and pthread_join read it.  fork() resets the robust list and the
	 * clear-child-tid address (kernel/fork.c), so register them again;
	 * rseq survives fork (rseq_fork copies it when !CLONE_VM). */
	tls_set_tid(s->tcb, tid);
	sys_set_tid_address(tls_tid_ptr(s->tcb));
	tls_restore(&s->tls, NULL);
	leader_slot = s;
	nuwa_spawned = 1;

	if (stay) {
		/* A template child: stay parked as the forker of later spawns. */
		tls_note_new_tid(s->tid, tid);
		robust_list_rebind(s->tls.robust_head, s->tid, tid);
		tls_rtld_rebind(s->tid, tid);
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
		sys_exit_group(127);
	}
	if (stay)
		return 0;
	wait_go(s);
	return 1;
}

/* A task cloned in a child, right after jumping back into its handler. */
void child_resumed_thread(struct park_slot *s)
{
	pid_t tid = (pid_t)sys_gettid();
	tls_restore(&s->tls, &control_slot.tls);   /* cloned by the control thread */
	note_resumed(s, tid);
	wait_go(s);
}

/* ---- the child's re-initialisation steps ------------------------------------ */
/* Run in this order, each in the phases it names:
 *   EARLY     every new child, first thing on its control thread
 *   FORKED    every new child, its control thread's own state
 *   TEMPLATE  a snapshot template child, which stays frozen after these
 *   RESUMING  a child whose threads resume, still before they run: the
 *             program must never see its descriptor table change under it
 *   BEFORE_GO every thread cloned with its new tid, none released yet
 *   RESUMED   once every thread runs
 *   APP_FORK  the child of the program's own fork(), on its forking thread
 *             (the only one left); its control thread is started last
 * A new kind of per-process state is one more line here. */
enum { EARLY = 1, FORKED = 2, TEMPLATE = 4, RESUMING = 8, BEFORE_GO = 16, RESUMED = 32,
       APP_FORK = 64 };

static void step_memory(const struct fork_req *r) { resources_child_early(); }
static void step_timers(const struct fork_req *r) { resources_child_before_go(); }
static void step_control(const struct fork_req *r) { control_child_reinit(); }
static void step_ctlsock(const struct fork_req *r)
{
	ctlsock_after_spawn(r->opts ? r->opts->stdio : NULL);
}
static void step_signals(const struct fork_req *r) { nuwa_signals_block_for_control(); }
static void step_locks(const struct fork_req *r) { tls_enter_resumed_child(); }
static void step_fds(const struct fork_req *r) { fdremap_child_setup(); }
/* Everything particular to this spawn, in one call (ctl/spawnopts.c).  A
 * child that cannot be what was asked for (it said why on its stderr) ends
 * before any program thread runs. */
static void step_spawn(const struct fork_req *r)
{
	if (!r->opts)
		return;
	struct spawn_opts o = *r->opts;
	o.cgroup_done = forked_into_cgroup;
	if (spawn_opts_apply(&o) < 0)
		sys_exit_group(127);
}
static void step_ctors(const struct fork_req *r) { hooks_run_constructors(); }
static void step_parksig(const struct fork_req *r) { parksig_give_back(); }
static void step_final(const struct fork_req *r) { hooks_run_final_constructors(); }
static void step_ready(const struct fork_req *r)
{
	if (r->ready_fd > 0)
		nuwa_ready_child_ready(r->ready_fd);
}
static void step_released(const struct fork_req *r)
{
	/* the leader has answered the release (wait_go): done with it */
	if (r->ready_fd > 0)
		nuwa_own_fd_drop(r->ready_fd);
	leader_ready_fd = 0;
}
static void step_call(const struct fork_req *r) { if (r->child_fn) r->child_fn(r->arg); }
static void step_registry(const struct fork_req *r)
{
	registry_reset_after_fork();
	lifecycle_reset_after_fork();
	nuwa_spawned = 0;
}
static void step_hints(const struct fork_req *r) { fdremap_after_app_fork(); }
static void step_app_control(const struct fork_req *r) { control_after_app_fork(); }

static const struct child_step {
	const char *what;
	unsigned when;
	void (*run)(const struct fork_req *r);
} child_steps[] = {
	/* MADV_DONTFORK memory back (core/mem_fork.c) */
	{ "memory",             EARLY,    step_memory },
	/* own eventfd, children forgotten, nuwa_clone()/nuwa_freeze() answered */
	{ "control thread",     FORKED,   step_control },
	{ "control socket",     FORKED,   step_ctlsock },   /* this process's own */
	{ "trigger signal",     FORKED,   step_signals },   /* open on this thread */
	{ "lock owners",        RESUMING, step_locks },     /* lock wrappers repair first */
	{ "descriptors",        RESUMING, step_fds },       /* fdremap: own channels */
	/* the requester's 0, 1, 2, --env, --cwd, --cgroup, process group */
	{ "spawn options",      RESUMING, step_spawn },
	{ "constructors",       RESUMING, step_ctors },     /* nuwa_add_constructor */
	/* POSIX timers, itimers, alarm (core/timers.c): thread-aimed timers
	 * need the new tids */
	{ "timers",             TEMPLATE | BEFORE_GO, step_timers },
	/* the program's own handler for the park signal, if libnuwa took it
	 * back for the freeze (core/parksig.c); a template keeps libnuwa's */
	{ "park signal",        BEFORE_GO, step_parksig },
	/* every thread resumed, none released yet: tell the parent and wait
	 * until it has told its requester (base/child_ready.c); nothing the
	 * program does after GO can be mistaken for a child not yet made */
	{ "ready",              BEFORE_GO, step_ready },
	{ "ready channel",      RESUMED,  step_released },
	{ "final constructors", RESUMED,  step_final },     /* nuwa_add_final_constructor */
	{ "--call",             RESUMED,  step_call },      /* nuwa spawn --call */
	{ "thread registry",    APP_FORK, step_registry },
	{ "descriptor hints",   APP_FORK, step_hints },
	{ "control thread",     APP_FORK, step_app_control },
};

static void child_steps_run(unsigned phase, const struct fork_req *req)
{
	for (size_t i = 0; i < sizeof child_steps / sizeof child_steps[0]; i++)
		if (child_steps[i].when & phase)
			child_steps[i].run(req);
}

/* The child of the program's own fork() (pthread_atfork, init.c). */
void fork_after_app_fork(void)
{
	child_steps_run(APP_FORK, NULL);
}

/* Clone every parked thread but the leader, which already runs, wait until
 * every task has done its fixups, then release them all at once, so no
 * resumed thread sees another one with a stale TCB tid.  Returns how many. */
static int resume_threads(const struct fork_req *req)
{
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
		int r = stacks ? clone_resumed(s, stacks + (size_t)(++k) * TRAMPOLINE_STACK) : -ENOMEM;
		if (r < 0) {
			nuwa_err("child: cannot resume thread %d: %s", s->tid, strerror(-r));
			sys_exit_group(127);
		}
	}
	for (int i = 0; i < n; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		int st;
		if ((s->skip && s->state == SLOT_PARKED))
			continue;
		while ((st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE)) == SLOT_PARKED)
			nuwa_futex_wait(&s->state, st, NULL);
	}
	child_steps_run(BEFORE_GO, req);
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
	return want;
}

/* The control thread of a new child: everything between "forked" and
 * "every thread runs"; then the control loop from the top. */
static void child_control_resume(const struct fork_req *req)
{
	pid_t tid = (pid_t)sys_gettid();
	if (control_trampoline) {
		munmap(control_trampoline, TRAMPOLINE_STACK);
		control_trampoline = NULL;
	}
	struct timespec t0 = ts_now(CLOCK_MONOTONIC);
	child_steps_run(EARLY, req);
	tls_restore(&control_slot.tls, &leader_slot->tls);  /* cloned by the leader */
	control_slot.new_tid = tid;
	nuwa_self.tid = tid;
	/* Our own eventfd first, then open the trigger: a trigger that hits
	 * this child now must wake this control thread, not the parent's. */
	child_steps_run(FORKED, req);
	if (req->stay_frozen) {
		/* snapshot: this child keeps the frozen image and serves spawns */
		nuwa_spawned = 0;
		nuwa_state = NUWA_STATE_TEMPLATE;
		child_steps_run(TEMPLATE, req);
		nuwa_info("snapshot template ready in process %ld", (long)sys_getpid());
		control_restart();
	}

	struct timespec t1 = ts_now(CLOCK_MONOTONIC);
	/* A child is a running process from here on, not a template (the
	 * constructors may ask nuwa_is_template()). */
	nuwa_state = NUWA_STATE_RUNNING;
	child_steps_run(RESUMING, req);
	struct timespec t2 = ts_now(CLOCK_MONOTONIC);
	int want = resume_threads(req);
	struct timespec t3 = ts_now(CLOCK_MONOTONIC);
	nuwa_info("resumed %d threads in child %ld", want + 1, (long)sys_getpid());
	nuwa_debug("child timing (us): own state %ld, before resume %ld, threads resumed %ld",
	           us_between(t0, t1), us_between(t1, t2), us_between(t2, t3));
	child_steps_run(RESUMED, req);
	control_restart();
}

int nuwa_is_child_of_freeze(void)
{
	return nuwa_spawned;
}
