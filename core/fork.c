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
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "asan.h"
#include "ctlsock.h"
#include "fdremap.h"
#include "freeze.h"
#include "pool.h"
#include "resources.h"

#define TRAMPOLINE_STACK (16 * 1024)

static struct park_slot control_slot;   /* the control thread's own context */
static void *control_trampoline;        /* its clone stack in the child */
static struct park_slot *leader_slot;   /* the forker, in the child */
static pid_t fork_parent;               /* the forking process, for the child */
static int leader_ready_fd;             /* child: the ready channel (0: none) */
static volatile int leader_went;        /* child: the leader has answered the release */

int nuwa_spawned;
int nuwa_snapshot_template;

static const unsigned long resume_flags =
	CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
	CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;

/* The new task's first code, on the temporary clone stack (asan.h). */
NUWA_NO_ASAN static int resume_entry(void *arg)
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
	if (nuwa_children_full())
		return -EAGAIN; /* no entry for it: nobody would reap it */

	control_slot.tid = (pid_t)sys_gettid();
	control_slot.tcb = nuwa_thread_pointer();
	tls_save(&control_slot.tls);
	if (ctx_save(&control_slot.ctx) != 0) {
		/* we are the control thread of a new child */
		nuwa_asan_resumed_frame();
		child_control_resume(req);
	}
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

/* clone3(CLONE_INTO_CGROUP) (Linux 5.7): the child starts in the cgroup
 * (ctl_spawn.cgroup_fd, an open cgroup v2 directory), never runs anywhere
 * else, and charges nothing to the template's.  With stack 0 clone3 forks
 * like clone(): the child returns 0 on this stack.  A kernel without it
 * (ENOSYS: no clone3; E2BIG: clone_args too large for it; EINVAL: flag
 * unknown) gets a plain fork; the child joins the cgroup itself before its
 * threads run (setup_fn: ctl/spawnopts_apply.c), as a pooled child does. */
static long fork_into_cgroup(const struct fork_req *req, int cgroup_fd, int *pidfd)
{
	struct clone_args a = {
		.flags = CLONE_PIDFD | CLONE_INTO_CGROUP,
		.pidfd = (uintptr_t)pidfd,
		.exit_signal = (uint64_t)req->exit_signal,
		.cgroup = (uint64_t)cgroup_fd,
	};
	long pid = SC(SYS_clone3, &a, sizeof a, 0, 0, 0, 0);
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
	const struct ctl_spawn *sp = s->fork_req->spawn;
	long pid = NUWA_FAULT("clone");
	if (pid == 0)
		pid = sp && sp->cgroup_fd > 2 ? fork_into_cgroup(s->fork_req, sp->cgroup_fd, &pidfd)
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

/* Wait for the control thread's GO: one word for every task of the child,
 * woken with one FUTEX_WAKE.  Then say we have left the slot: the next
 * freeze reuses the table, and waits for nuwa_ft.leaving to reach 0 first. */
static void wait_go(struct park_slot *s)
{
	while (!__atomic_load_n(&nuwa_ft.go, __ATOMIC_ACQUIRE))
		nuwa_futex_wait(&nuwa_ft.go, 0, NULL);
	/* The leader carries the parent-death signal (base/child_ready.c);
	 * released, it may outlive the parent: off before the program runs.
	 * The control thread closes the channel only after that (step
	 * "ready channel" waits for leader_went). */
	if (s == leader_slot && leader_ready_fd > 0) {
		nuwa_ready_child_go(leader_ready_fd);
		__atomic_store_n(&leader_went, 1, __ATOMIC_RELEASE);
		nuwa_futex_wake(&leader_went, 1);
	}
	__atomic_store_n(&s->state, SLOT_LISTED, __ATOMIC_RELEASE);
	if (__atomic_sub_fetch(&nuwa_ft.leaving, 1, __ATOMIC_ACQ_REL) == 0)
		nuwa_futex_wake(&nuwa_ft.leaving, 1);
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

/* The tasks to clone back in a child, shared by the two tasks that clone
 * them: the leader starts at once, the control thread joins once its own
 * steps are done.  A thread clone() costs some 20 us on a VM (copy_process:
 * task, kernel stack, the new task's first run); with two CPUs the calls
 * run side by side, and the leader's overlap the control thread's steps. */
static struct {
	int n;                     /* slots to clone */
	volatile int next;         /* next of idx[] to take */
	char *stacks;              /* their trampolines, one mapping */
	int idx[NUWA_MAX_THREADS];
} clones;
static struct tls_state leader_cloner;   /* the leader's state as it clones */

static void clones_plan(void)
{
	clones.n = 0;
	clones.next = 0;
	for (int i = 0; i < nuwa_ft.nslots; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->state == SLOT_PARKED && !s->skip)
			clones.idx[clones.n++] = i;
	}
	clones.stacks = clones.n ? map_stacks((size_t)clones.n) : NULL;
}

/* Clone slots until none is left; 0, or -errno. */
static int clones_take(const struct tls_state *cloner)
{
	for (;;) {
		int k = __atomic_fetch_add(&clones.next, 1, __ATOMIC_ACQ_REL);
		if (k >= clones.n)
			return 0;
		struct park_slot *s = &nuwa_ft.slots[clones.idx[k]];
		s->cloner = cloner;   /* read by the new task: clone() orders it */
		int r = clones.stacks ? NUWA_FAULT("resume") : -ENOMEM;
		if (r == 0)
			r = clone_resumed(s, clones.stacks + (size_t)(k + 1) * TRAMPOLINE_STACK);
		if (r < 0)
			return r;
	}
}

/* Copy-on-write, done ahead (MADV_POPULATE_WRITE, Linux 5.14).  A write
 * to a page the child shares with its parent makes the kernel copy it and
 * flush the old translation from every CPU that runs the child's mm
 * (do_wp_page -> ptep_clear_flush): once the child's threads run on both
 * CPUs, an IPI per fault, which on a VM is an exit each (perf: ~10 % of a
 * 64-thread spawn).  The leader, alone in the new mm, breaks the sharing
 * of what every resumed task writes first (its stack below the park
 * handler's frame, the stack it was interrupted on, its TCB and static
 * TLS) and of libnuwa's slots: flushes on one CPU, no IPI. */
static void populate(uintptr_t from, uintptr_t to)
{
	from &= ~(uintptr_t)4095;
	to = (to + 4095) & ~(uintptr_t)4095;
	if (to > from)
		SC(SYS_madvise, from, to - from, MADV_POPULATE_WRITE, 0, 0, 0);
}

static long populate_us;   /* child: how long populate_resumed() took */

/* A glibc thread's TCB tops its stack block, so an idle thread's stack
 * frames, its signal frame and its TCB lie within a few KiB: one range
 * when they are this close, else one each. */
#define ONE_RANGE (16 * 1024)

static void populate_resumed(void)
{
	struct timespec t0 = ts_now(CLOCK_MONOTONIC);
	populate((uintptr_t)&nuwa_ft.slots[0], (uintptr_t)&nuwa_ft.slots[nuwa_ft.nslots]);
	populate(control_slot.ctx.rsp - 32768, control_slot.ctx.rsp + 1);
	for (int k = 0; k < clones.n; k++) {
		struct park_slot *s = &nuwa_ft.slots[clones.idx[k]];
		uintptr_t lo = s->ctx.rsp - 2048, hi = s->ctx.rsp + 1;
		uintptr_t sp = s->uc ? (uintptr_t)s->uc->uc_mcontext.gregs[REG_RSP] : 0;
		uintptr_t tcb = (uintptr_t)s->tcb;
		if (sp > hi && sp - hi < ONE_RANGE)
			hi = sp + 1;
		else if (sp)
			populate(sp - 512, sp + 1);
		if (tcb + 4096 > hi && tcb + 4096 - lo < ONE_RANGE) {
			hi = tcb + 4096;
		} else {
			populate(tcb - 4096, tcb + 4096);
		}
		populate(lo, hi);
	}
	populate_us = us_between(t0, ts_now(CLOCK_MONOTONIC));
}

/* The forker, first task of the child.  Returns 1 when it must leave its
 * park handler (threads resume), 0 to stay parked (snapshot template). */
int child_leader_start(struct park_slot *s)
{
	/* Read once: the request is on the control thread's stack, which the
	 * child's control thread reuses as soon as it runs. */
	int stay = s->fork_req->stay_frozen, pooled = s->fork_req->pooled;
	int ready_fd = s->fork_req->ready_fd, ready_peer = s->fork_req->ready_peer;
	pid_t tid = (pid_t)sys_gettid();
	/* First: a child whose parent dies before releasing it dies too. */
	leader_ready_fd = ready_fd;
	leader_went = 0;   /* this process's own answer, not its parent's */
	if (ready_fd > 0)
		nuwa_ready_child_arm(ready_peer, fork_parent);
	nuwa_asan_child();
	/* The TCB still holds the parent's tid: pthread_kill, mutex owners
	 * and pthread_join read it.  fork() resets the robust list and the
	 * clear-child-tid address (kernel/fork.c), so register them again;
	 * rseq survives fork (rseq_fork copies it when !CLONE_VM). */
	tls_set_tid(s->tcb, tid);
	sys_set_tid_address(tls_tid_ptr(s->tcb));
	tls_restore(&s->tls, NULL);
	leader_slot = s;
	nuwa_spawned = 1;
	leader_cloner = s->tls;   /* fork() kept the forker's state as it was */

	if (stay) {
		/* A template child: stay parked as the forker of later spawns. */
		tls_note_new_tid(s->tid, tid);
		robust_list_rebind(s->tls.robust_head, s->tid, tid);
		tls_rtld_rebind(s->tid, tid);
		s->tid = tid;
		s->cmd = CMD_WAIT;
	} else {
		/* Resumed before the control thread exists; the others are
		 * listed to be cloned by the two of us. */
		note_resumed(s, tid);
		clones_plan();
		populate_resumed();
		/* A pooled child prepares at a lower priority (pool_priority()). */
		struct sched_param p = { 0 };
		if (pooled && s->tls.sched_policy == SCHED_OTHER &&
		    sched_setscheduler(0, SCHED_BATCH, &p) == 0)
			leader_cloner.sched_policy = SCHED_BATCH;
	}
	control_trampoline = map_stacks(1);
	int r = control_trampoline ? NUWA_FAULT("control") : -ENOMEM;
	if (r == 0)
		r = clone_resumed(&control_slot, (char *)control_trampoline + TRAMPOLINE_STACK);
	if (r < 0) {
		/* Nothing of the program has run here: the child just ends. */
		nuwa_err("child %ld cannot restart its control thread: %s; it exits (127) "
		         "before the program runs", (long)tid, nuwa_strerror(r));
		sys_exit_group(127);
	}
	if (stay)
		return 0;
	if ((r = clones_take(&leader_cloner)) < 0) {
		nuwa_err("child %ld cannot resume its threads: %s; it exits (127) before the "
		         "program runs", (long)tid, nuwa_strerror(r));
		sys_exit_group(127);
	}
	if (leader_cloner.sched_policy != s->tls.sched_policy) {
		struct sched_param p = { 0 };
		sched_setscheduler(0, s->tls.sched_policy, &p);
	}
	wait_go(s);
	return 1;
}

/* A task cloned in a child, right after jumping back into its handler. */
void child_resumed_thread(struct park_slot *s)
{
	pid_t tid = (pid_t)sys_gettid();
	tls_restore(&s->tls, s->cloner);   /* what the task that cloned us had */
	note_resumed(s, tid);
	wait_go(s);
}

/* 0, or -errno: then the child must not run (its 0, 1, 2 half changed). */
static int install_stdio(const int *fds)
{
	int e = NUWA_FAULT("stdio");
	for (int i = 0; i < 3 && e == 0; i++)
		if (fds[i] >= 0 && fds[i] != i) {
			long r = sys_dup3(fds[i], i, 0);
			if (r < 0)
				e = (int)r;
		}
	for (int i = 0; i < 3; i++)
		if (fds[i] > 2)
			sys_close(fds[i]);
	return e;
}

/* ---- the child's re-initialisation steps ------------------------------------ */
/* Run in this order, each in the phases it names:
 *   EARLY     every new child, first thing on its control thread
 *   FORKED    every new child, its control thread's own state
 *   TEMPLATE  a snapshot template child, which stays frozen after these
 *   RESUMING  a child whose threads resume, still before they run: the
 *             program must never see its descriptor table change under it
 *   (every thread cloned back; a pooled child waits here until taken)
 *   SPAWN     what is particular to this spawn (struct ctl_spawn): stdio,
 *             constructors, the options of the request; no thread runs yet
 *   BEFORE_GO every thread cloned with its new tid, none released yet
 *   RESUMED   once every thread runs
 *   APP_FORK  the child of the program's own fork(), on its forking thread
 *             (the only one left); its control thread is started last
 * A new kind of per-process state is one more line here; a new per-spawn
 * option is a field of struct ctl_spawn applied by its setup_fn (SPAWN). */
enum { EARLY = 1, FORKED = 2, TEMPLATE = 4, RESUMING = 8, SPAWN = 16, BEFORE_GO = 32,
       RESUMED = 64, APP_FORK = 128 };

/* This child's spawn: the request's (copied with the fork), or, in a pooled
 * child, what the template sent when it took it. */
static const struct ctl_spawn *child_spawn;

static void step_memory(const struct fork_req *r) { resources_child_early(); }
static void step_timers(const struct fork_req *r) { resources_child_before_go(); }
static void step_control(const struct fork_req *r) { control_child_reinit(); }
static void step_pool(const struct fork_req *r)
{
	pool_child_forget(r->pooled ? r->pool_fd : -1);
	if (r->pooled)
		nuwa_own_fd_drop(r->pool_peer);   /* the template's end, copied by the fork */
}
/* The template's connections go now, and this process's socket is made
 * (before its threads run: the program must not see its descriptor table
 * change under it); a pooled child makes it when it is taken. */
static void step_ctlsock(const struct fork_req *r)
{
	if (r->pooled)
		ctlsock_after_spawn_deferred(NULL);
	else
		ctlsock_after_spawn(r->spawn ? r->spawn->stdio : NULL);
}
static void step_listen(const struct fork_req *r) { ctlsock_listen(); }
static void step_signals(const struct fork_req *r) { nuwa_signals_block_for_control(); }
static void step_locks(const struct fork_req *r) { tls_enter_resumed_child(); }
/* A child that could not give itself its own channels would share them with
 * the template (and steal its data): it ends before the program runs. */
static void step_fds(const struct fork_req *r)
{
	int e = fdremap_child_setup();
	if (e < 0) {
		nuwa_err("child %ld: its descriptors could not be rebuilt (%s); it exits (127) "
		         "before the program runs", (long)sys_getpid(), nuwa_strerror(e));
		sys_exit_group(127);
	}
}
static void step_stdio(const struct fork_req *r)
{
	if (!child_spawn || !child_spawn->stdio)
		return;
	int e = install_stdio(child_spawn->stdio);
	if (e < 0) {
		nuwa_err("child %ld: cannot install the requester's standard descriptors (%s); "
		         "it exits (127) before the program runs", (long)sys_getpid(),
		         nuwa_strerror(e));
		sys_exit_group(127);
	}
}
static void step_ctors(const struct fork_req *r) { hooks_run_constructors(); }
static void step_setup(const struct fork_req *r)
{
	if (child_spawn && child_spawn->setup_fn)
		child_spawn->setup_fn(child_spawn->arg);
}
static void step_parksig(const struct fork_req *r) { parksig_give_back(); }
static void step_final(const struct fork_req *r) { hooks_run_final_constructors(); }
static void step_ready(const struct fork_req *r)
{
	if (r->ready_fd > 0)
		nuwa_ready_child_ready(r->ready_fd);
}
static void step_released(const struct fork_req *r)
{
	/* once the leader has answered the release (wait_go): done with it */
	if (r->ready_fd <= 0)
		return;
	while (!__atomic_load_n(&leader_went, __ATOMIC_ACQUIRE))
		nuwa_futex_wait(&leader_went, 0, NULL);
	nuwa_own_fd_drop(r->ready_fd);
	leader_ready_fd = 0;
}
/* --call runs on this control thread, which blocks every signal: a call
 * that raises one (raise(SIGSEGV), abort(), kill(getpid(), ...)) must act
 * as in the program.  The main thread's mask is in its park frame (the
 * kernel saved it there; rt_sigreturn restores it), still intact before GO:
 * the call runs with it (dispositions are the process's, already the
 * program's), libnuwa's park signal kept blocked. */
static sigset_t call_mask;
static void step_call_mask(const struct fork_req *r)
{
	if (child_spawn && child_spawn->child_fn && leader_slot && leader_slot->uc)
		call_mask = leader_slot->uc->uc_sigmask;
}
static void step_call(const struct fork_req *r)
{
	if (!child_spawn || !child_spawn->child_fn)
		return;
	sigset_t m = call_mask, old;
	sigaddset(&m, nuwa_park_sig);
	sys_sigprocmask(SIG_SETMASK, &m, &old);
	child_spawn->child_fn(child_spawn->arg);
	sys_sigprocmask(SIG_SETMASK, &old, NULL);
}
static void step_registry(const struct fork_req *r)
{
	nuwa_own_fd_after_fork();   /* before anything below drops a descriptor */
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
	{ "pool",               FORKED,   step_pool },      /* the template's pool ends */
	{ "control socket",     FORKED,   step_ctlsock },   /* the template's connections */
	{ "trigger signal",     FORKED,   step_signals },   /* open on this thread */
	{ "lock owners",        RESUMING, step_locks },     /* lock wrappers repair first */
	{ "descriptors",        RESUMING, step_fds },       /* fdremap: own channels */
	{ "stdio",              SPAWN,    step_stdio },     /* the requester's 0, 1, 2 */
	/* ctl_spawn.setup_fn: --env, --cwd, --cgroup, process group
	 * (ctl/spawnopts_apply.c), before the program's hooks, which see the
	 * child as the requester asked for it */
	{ "spawn options",      SPAWN,    step_setup },
	{ "constructors",       SPAWN,    step_ctors },     /* nuwa_add_constructor */
	{ "control socket",     SPAWN,    step_listen },    /* a pooled child's own */
	/* POSIX timers, itimers, alarm (core/timers.c): thread-aimed timers
	 * need the new tids */
	{ "timers",             TEMPLATE | BEFORE_GO, step_timers },
	/* the program's own handler for the park signal, if libnuwa took it
	 * back for the freeze (core/parksig.c); a template keeps libnuwa's */
	{ "park signal",        BEFORE_GO, step_parksig },
	{ "--call mask",        BEFORE_GO, step_call_mask },  /* the main thread's */
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

/* Clone, with the leader, every parked thread but the leader, which already
 * runs, and wait until every task has done its fixups (state RESUMED): no
 * thread runs the program yet.  Returns how many were cloned. */
static int resume_clone(void)
{
	int r = clones_take(&control_slot.tls);
	if (r < 0) {
		nuwa_err("child %ld cannot resume its threads: %s; it exits (127) before the "
		         "program runs", (long)sys_getpid(), nuwa_strerror(r));
		sys_exit_group(127);
	}
	for (int k = 0; k < clones.n; k++) {
		struct park_slot *s = &nuwa_ft.slots[clones.idx[k]];
		int st;
		while ((st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE)) == SLOT_PARKED)
			nuwa_futex_wait(&s->state, st, NULL);
	}
	/* The clone trampolines are left by now: every task jumped off its
	 * stack before reporting RESUMED. */
	if (clones.stacks)
		munmap(clones.stacks, (size_t)clones.n * TRAMPOLINE_STACK);
	clones.stacks = NULL;
	return clones.n;
}

/* Release them all at once, so no resumed thread sees another one with a
 * stale TCB tid: one store and one FUTEX_WAKE for every task. */
static void resume_go(void)
{
	int n = nuwa_ft.nslots, resumed = 0;
	for (int i = 0; i < n; i++)
		resumed += nuwa_ft.slots[i].state == SLOT_RESUMED;
	__atomic_store_n(&nuwa_ft.leaving, resumed, __ATOMIC_RELEASE);
	__atomic_store_n(&nuwa_ft.active, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&nuwa_freezing, 0, __ATOMIC_SEQ_CST);
	nuwa_futex_wake(&nuwa_freezing, 1 << 30);
	__atomic_store_n(&nuwa_ft.go, 1, __ATOMIC_RELEASE);
	nuwa_futex_wake(&nuwa_ft.go, 1 << 30);
}

/* A pooled child prepares at a lower priority: SCHED_BATCH (sched(7): never
 * preempts on wake-up; switching between it and SCHED_OTHER needs no
 * privilege, unlike a nice value taken back).  The tasks it clones inherit
 * it and put back their own policy (tls_restore() compares with the
 * cloner's, which is set to match). */
static void pool_priority(int low)
{
	static int saved = -1;
	struct sched_param p = { 0 };
	if (low) {
		saved = control_slot.tls.sched_policy;
		if (saved != SCHED_OTHER || sched_setscheduler(0, SCHED_BATCH, &p) < 0)
			saved = -1;
		else
			control_slot.tls.sched_policy = SCHED_BATCH;
	} else if (saved >= 0) {
		sched_setscheduler(0, saved, &p);
		control_slot.tls.sched_policy = saved;
		saved = -1;
	}
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
	tls_restore(&control_slot.tls, &leader_cloner);  /* cloned by the leader */
	control_slot.new_tid = tid;
	nuwa_self.tid = tid;
	/* Our own eventfd first, then open the trigger: a trigger that hits
	 * this child now must wake this control thread, not the parent's. */
	child_steps_run(FORKED, req);
	if (req->stay_frozen) {
		/* snapshot: this child keeps the frozen image and serves spawns */
		nuwa_spawned = 0;
		nuwa_snapshot_template = 1;
		nuwa_state = NUWA_STATE_TEMPLATE;
		child_steps_run(TEMPLATE, req);
		nuwa_info("snapshot template ready in process %ld", (long)sys_getpid());
		control_restart();
	}

	struct timespec t1 = ts_now(CLOCK_MONOTONIC);
	/* A child is a running process from here on, not a template (the
	 * constructors may ask nuwa_is_template()). */
	nuwa_state = NUWA_STATE_RUNNING;
	if (req->pooled)
		pool_priority(1);
	child_steps_run(RESUMING, req);
	struct timespec t2 = ts_now(CLOCK_MONOTONIC);
	int want = resume_clone();
	struct timespec t3 = ts_now(CLOCK_MONOTONIC);
	child_spawn = req->spawn;
	if (req->pooled) {
		pool_priority(0);
		child_spawn = pool_child_wait(req->pool_fd);   /* until taken */
	}
	struct timespec t4 = ts_now(CLOCK_MONOTONIC);
	child_steps_run(SPAWN, req);
	child_steps_run(BEFORE_GO, req);
	resume_go();
	struct timespec t5 = ts_now(CLOCK_MONOTONIC);
	nuwa_info("resumed %d threads in child %ld%s", want + 1, (long)sys_getpid(),
	          req->pooled ? " (from the pool)" : "");
	nuwa_debug("child timing (us): copy-on-write ahead %ld, own state %ld, before resume %ld, "
	           "threads cloned %ld, %s %ld, released %ld", populate_us, us_between(t0, t1),
	           us_between(t1, t2),
	           us_between(t2, t3), req->pooled ? "in the pool" : "-", us_between(t3, t4),
	           us_between(t4, t5));
	child_steps_run(RESUMED, req);
	control_restart();
}

int nuwa_is_child_of_freeze(void)
{
	return nuwa_spawned;
}
