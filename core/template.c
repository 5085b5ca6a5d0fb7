/* What a trigger, nuwa_clone(), nuwa_freeze() and the control socket ask
 * for, on the control thread: the freeze -> fork -> resume path from the
 * top.  Each operation is freeze_all() (freeze.c), a snapshot of the
 * descriptors (fdremap), fork_child() once per child (fork.c), and
 * freeze_release() unless the process stays a template.
 *
 *   clone      freeze, fork n children, everybody resumes
 *   template   freeze and stay frozen; spawn forks one child; thaw resumes
 *   snapshot   freeze, fork one child that stays frozen as the template,
 *              resume the original at once
 *
 * fork_child() returns only in the parent: a new child's control thread
 * goes on in a fresh control loop (control.c), never back up this path. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ctlsock.h"
#include "fdremap.h"
#include "freeze.h"
#include "pool.h"
#include "resources.h"

/* What a child gets besides memory, read while the freeze is held: the
 * descriptor table (fdremap) and the process resources a raw fork does not
 * carry (resources.h: timers, MADV_DONTFORK memory).  The program's own
 * children that are gone no longer count as libnuwa's (fdremap asks the
 * list).  0, or -errno with err filled and nothing held. */
static int snapshot_fds(char *err, size_t errlen)
{
	nuwa_children_prune();
	/* every program thread is parked: a holder of ld.so's locks is one */
	pid_t in_loader = tls_rtld_holder();
	fdremap_loader_frozen(in_loader != 0);
	if (in_loader)
		nuwa_debug("thread %d is frozen inside the loader", (int)in_loader);
	int r = fdremap_prepare(err, errlen);
	if (r == 0 && (r = resources_prepare(err, errlen)) < 0)
		fdremap_finish();
	return r;
}

/* The freeze is over: drop what snapshot_fds() took. */
static void snapshot_drop(void)
{
	fdremap_finish();
	resources_finish();
}

static void fork_failed(pid_t pid)
{
	if (pid == -ESRCH)
		nuwa_err("fork failed: the program's main thread has exited; "
		         "libnuwa forks from it (see docs/limits.md)");
	else if (pid == -EAGAIN && nuwa_children_full())
		nuwa_err("fork refused: %d children of this process are alive, the most "
		         "libnuwa keeps track of", nuwa_children_max());
	else
		nuwa_err("fork failed: %s", nuwa_strerror(-pid));
}

/* Freeze, fork n children, resume everybody.  Returns the number of
 * children, or -errno.  for_api: the children belong to the program
 * (SIGCHLD, waitpid), as fork()'s do. */
static int do_clone(int n, pid_t *pids, int for_api, int timeout_ms)
{
	char err[2048];
	struct timespec t0 = ts_now(CLOCK_MONOTONIC);
	int r = freeze_all(timeout_ms, err, sizeof err);
	if (r < 0) {
		nuwa_err("freeze failed: %s", err);
		return r;
	}
	struct timespec t1 = ts_now(CLOCK_MONOTONIC);
	if ((r = snapshot_fds(err, sizeof err)) < 0) {
		nuwa_err("freeze failed: %s", err);   /* "fdremap: ..." or a resource */
		freeze_release();
		return r;
	}
	struct timespec t2 = ts_now(CLOCK_MONOTONIC);
	char list[1024];
	size_t off = 0;
	int made = 0;
	list[0] = 0;
	const struct fork_req req = { .exit_signal = for_api ? SIGCHLD : 0 };
	for (int i = 0; i < n; i++) {
		int pidfd = -1;
		pid_t pid = fork_child(&req, &pidfd);
		if (pid < 0) {
			r = pid;
			fork_failed(pid);
			break;
		}
		if (for_api) {
			/* the program's child: no descriptor of ours stays behind */
			sys_close(pidfd);
			pidfd = -1;
		}
		nuwa_child_add(pid, pidfd, for_api ? NUWA_CHILD_APP : NUWA_CHILD_CLONE);
		if (pids)
			pids[made] = pid;
		made++;
		if (off < sizeof list - 16)
			off += (size_t)snprintf(list + off, sizeof list - off, " %d", pid);
	}
	struct timespec t3 = ts_now(CLOCK_MONOTONIC);
	snapshot_drop();
	freeze_release();
	struct timespec t4 = ts_now(CLOCK_MONOTONIC);
	nuwa_debug("clone timing (us): freeze %ld, descriptors %ld, fork %ld, release %ld",
	           us_between(t0, t1), us_between(t1, t2), us_between(t2, t3), us_between(t3, t4));
	if (made)
		nuwa_info("clone done: %d children:%s", made, list);
	return made ? made : r;
}

int tmpl_freeze(int timeout_ms, char *err, size_t errlen)
{
	int r = freeze_all(timeout_ms, err, errlen);
	if (r < 0)
		return r;
	if ((r = snapshot_fds(err, errlen)) < 0) {
		freeze_release();
		return r;
	}
	nuwa_state = NUWA_STATE_TEMPLATE;
	nuwa_info("template ready: %d threads frozen", nuwa_ft.nslots);
	if (nuwa_cfg.pool > 0)
		pool_set(nuwa_cfg.pool, err, errlen);   /* NUWA_POOL */
	notify_frozen(nuwa_ft.nslots);   /* Type=notify: ready once frozen */
	return 0;
}

/* How long a spawned child may take from its fork to "every thread runs"
 * (its nuwa_add_constructor hooks included) before the spawn gives up. */
#define SPAWN_READY_MS 10000

/* One child of the template, answered once it is ready: every thread
 * resumed, its child hooks run, none released (base/child_ready.c).  It
 * stays killable by the template's death until the control socket has told
 * the requester its pid (nuwa_child_release).  From the pool when it has
 * one (core/pool.c), else forked now: either way the same steps run in it,
 * in the same order (fork.c). */
static pid_t tmpl_spawn(const struct ctl_spawn *sp, char *err, size_t errlen)
{
	if (nuwa_state != NUWA_STATE_TEMPLATE)
		return -EINVAL;
	pid_t pid = pool_take(sp);
	if (pid > 0)
		return pid;
	int sv[2];
	int r = nuwa_ready_open(sv);
	if (r < 0) {
		snprintf(err, errlen, "cannot make the child's ready channel: %s", nuwa_strerror(r));
		return r;
	}
	const struct fork_req req = { .spawn = sp, .ready_fd = sv[1], .ready_peer = sv[0] };
	int fd = -1;
	struct timespec t0 = ts_now(CLOCK_MONOTONIC);
	pid = fork_child(&req, &fd);
	struct timespec t1 = ts_now(CLOCK_MONOTONIC);
	nuwa_own_fd_drop(sv[1]);
	struct nuwa_child *c = pid > 0 ? nuwa_child_add(pid, fd, NUWA_CHILD_SPAWN) : NULL;
	if (!c) {
		nuwa_own_fd_drop(sv[0]);   /* a child past the table: it dies on EOF */
		if (pid == -EAGAIN && nuwa_children_full())
			snprintf(err, errlen, "too many children: %d are alive, the most libnuwa "
			         "keeps track of", nuwa_children_max());
		else if (pid < 0)
			snprintf(err, errlen, "fork failed: %s", nuwa_strerror((int)pid));
		else
			snprintf(err, errlen, "too many children");
		return pid < 0 ? pid : -EAGAIN;
	}
	c->ready_fd = sv[0];
	if ((r = control_child_await_ready(c, SPAWN_READY_MS, err, errlen)) < 0) {
		nuwa_warn("spawn: %s", err);
		return r;
	}
	nuwa_debug("spawn timing (us): fork %ld, until the child was ready %ld", us_between(t0, t1),
	           us_between(t1, ts_now(CLOCK_MONOTONIC)));
	return pid;
}

static int tmpl_thaw(void)
{
	if (nuwa_state != NUWA_STATE_TEMPLATE)
		return -EINVAL;
	control_api_thawed();   /* a nuwa_freeze() waiting here returns 0 */
	pool_end();
	snapshot_drop();
	freeze_release();
	nuwa_info("thawed");
	notify_status("thawed: running, not a template");
	return 0;
}

/* Snapshot mode: a child keeps the frozen image as the template; this
 * process goes on at once.  Returns the template's pid, or -errno with err
 * filled. */
static pid_t tmpl_snapshot(int timeout_ms, char *err, size_t errlen)
{
	int r = freeze_all(timeout_ms, err, errlen);
	if (r == 0 && (r = snapshot_fds(err, errlen)) < 0)
		freeze_release();
	if (r < 0)
		return r;
	const struct fork_req req = { .stay_frozen = 1 };
	int pidfd = -1;
	pid_t pid = fork_child(&req, &pidfd);
	if (pid > 0)
		nuwa_child_add(pid, pidfd, NUWA_CHILD_TEMPLATE);
	snapshot_drop();
	freeze_release();
	if (pid < 0)
		snprintf(err, errlen, "fork: %s", nuwa_strerror(-pid));
	else {
		nuwa_info("snapshot done: template is process %d", pid);
		notify_frozen(nuwa_ft.nslots);
	}
	return pid;
}

/* Clone mode through the control socket: n children, everybody resumes.
 * Returns n, or -errno. */
static int tmpl_clone(int n, int timeout_ms, pid_t *pids, char *err, size_t errlen)
{
	int r = do_clone(n, pids, 0, timeout_ms);
	if (r < 0)
		snprintf(err, errlen, "%s (details in the process's log)", nuwa_strerror(-r));
	return r;
}

int tmpl_api_clone(int n, pid_t *pids)
{
	return do_clone(n, pids, 1, 0);
}

/* The trigger signal (or NUWA_FREEZE_ON_IDLE_MS): what NUWA_MODE says. */
void tmpl_on_trigger(void)
{
	char err[2048];
	switch (nuwa_cfg.mode) {
	case NUWA_MODE_CLONE:
		do_clone(nuwa_cfg.clones, NULL, 0, 0);
		break;
	case NUWA_MODE_TEMPLATE:
		if (nuwa_state == NUWA_STATE_RUNNING && tmpl_freeze(0, err, sizeof err) < 0)
			nuwa_err("freeze failed: %s", err);
		break;
	case NUWA_MODE_SNAPSHOT:
		if (nuwa_state == NUWA_STATE_RUNNING && tmpl_snapshot(0, err, sizeof err) < 0)
			nuwa_err("freeze failed: %s", err);
		break;
	}
}

/* ---- the control socket's table ---------------------------------------------- */

static void ctl_info(struct ctl_info *out)
{
	*out = (struct ctl_info){ .state = nuwa_state, .mode = nuwa_cfg.mode,
	                          .clones = nuwa_cfg.clones, .timeout_ms = nuwa_cfg.timeout_ms,
	                          .pool = nuwa_cfg.pool };
}

/* The template exits without running the program's atexit handlers: its
 * threads are frozen and may hold any lock those handlers would take. */
__attribute__((noreturn)) static void tmpl_stop(int status)
{
	pool_end();
	sys_exit_group(status);
	__builtin_unreachable();
}

_Static_assert((int)NUWA_STATE_RUNNING == CTL_STATE_RUNNING &&
               (int)NUWA_STATE_FREEZING == CTL_STATE_FREEZING &&
               (int)NUWA_STATE_TEMPLATE == CTL_STATE_TEMPLATE, "state values");
_Static_assert((int)NUWA_MODE_CLONE == CTL_MODE_CLONE && (int)NUWA_MODE_TEMPLATE ==
               CTL_MODE_TEMPLATE && (int)NUWA_MODE_SNAPSHOT == CTL_MODE_SNAPSHOT, "modes");

/* What the control socket may ask of this process (ctl/ctlsock.h). */
const struct ctl_core_ops nuwa_ctl_ops = {
	.info = ctl_info,
	.freeze = tmpl_freeze,
	.spawn = tmpl_spawn,
	.thaw = tmpl_thaw,
	.stop = tmpl_stop,
	.snapshot = tmpl_snapshot,
	.clone = tmpl_clone,
	.status = nuwa_status_text,
	.pool = pool_set,
};
