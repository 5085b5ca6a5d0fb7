/* Control-socket requests -> core calls (protocol in ctl_proto.h).
 *
 * Each request is checked against the process state first, so that a
 * request in the wrong state gets a clear error and changes nothing:
 *     running  : freeze, status, hello
 *     freezing : status, hello              (only seen from another thread)
 *     template : spawn, pool, thaw, stop, status, hello
 * In snapshot mode the original process keeps running after its freeze and
 * a forked child holds the image; spawn requests sent to the original are
 * answered with that child's pid (CTL_F_REDIRECT_PID) and `nuwa` follows. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ctlsock_int.h"
#include "ffcall.h"
#include "spawnopts.h"

_Static_assert(CTL_STATE_RUNNING == 0 && CTL_STATE_FREEZING == 1 &&
               CTL_STATE_TEMPLATE == 2, "ctl_state_name() order");
_Static_assert(CTL_MODE_CLONE == 0 && CTL_MODE_TEMPLATE == 1 && CTL_MODE_SNAPSHOT == 2,
               "ctl_mode_name() order");

static struct ctl_info info(void)
{
	struct ctl_info i;
	ctl_ops->info(&i);
	return i;
}

static int live_template_pid(void)
{
	/* the snapshot child, in the list until the core has reaped it */
	for (int i = 0; i < nuwa_children_n(); i++)
		if (nuwa_child_at(i)->kind == NUWA_CHILD_TEMPLATE)
			return nuwa_child_at(i)->pid;
	return 0;
}

static void reply_ok_simple(struct ctl_conn *c)
{
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_OK, 64) == 0)
		ctl_reply_end(c, &b);
}

static void do_hello(struct ctl_conn *c)
{
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_OK, 128) < 0)
		return;
	struct ctl_info in = info();
	int tp = in.state == CTL_STATE_TEMPLATE ? getpid() : live_template_pid();
	ctl_put_i32(&b, CTL_F_PID, getpid());
	ctl_put_u32(&b, CTL_F_STATE, (uint32_t)in.state);
	ctl_put_u32(&b, CTL_F_MODE, (uint32_t)in.mode);
	ctl_put_i32(&b, CTL_F_TEMPLATE_PID, tp);
	ctl_put_u32(&b, CTL_F_CHILDREN, (uint32_t)ctl_children_live());
	ctl_put_u32(&b, CTL_F_VERSION, CTL_VERSION);
	ctl_reply_end(c, &b);
}

/* The core's report, followed in text mode by the control socket's own part.
 * Sized with a first call (like snprintf) and written in place. */
static void put_status_text(struct ctl_buf *b, int json, size_t room)
{
	char *s = ctl_reserve_str(b, CTL_F_TEXT, room);
	if (!s)
		return;
	size_t n = ctl_ops->status(s, room + 1, json);
	if (n > room)
		n = room;
	ctl_commit_str(b, s, n);
}

static size_t status_room(int json)
{
	/* + slack: threads may change state between the sizing and the write */
	return ctl_ops->status(NULL, 0, json) + 4096;
}

static void do_status(struct ctl_conn *c, const struct ctl_msg *m)
{
	uint32_t json = 0;
	ctl_get_u32(m, CTL_F_JSON, &json);
	size_t room = status_room(!!json);
	if (room > CTL_MAX_REPLY - 256)
		room = CTL_MAX_REPLY - 256;
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_OK, room + 256) < 0)
		return;
	put_status_text(&b, !!json, room);
	ctl_reply_end(c, &b);
}

/* Snapshot and clone modes need more than a freeze; a core that lacks them
 * leaves them NULL in its table, and a request gets an error reply. */
static void reply_frozen(struct ctl_conn *c, pid_t template_pid, const pid_t *kids, int n)
{
	size_t room = status_room(0) + (size_t)n * 16;
	if (room > CTL_MAX_REPLY - 256)
		room = CTL_MAX_REPLY - 256;
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_OK, room + 256) < 0)
		return;
	ctl_put_i32(&b, CTL_F_PID, getpid());
	ctl_put_i32(&b, CTL_F_TEMPLATE_PID, template_pid);
	if (kids) {
		/* clone mode: the new processes, one "clone PID" line each */
		char *s = ctl_reserve_str(&b, CTL_F_TEXT, room);
		size_t off = 0;
		for (int i = 0; s && i < n && off < room; i++)
			off += (size_t)snprintf(s + off, room + 1 - off, "clone %d\n", kids[i]);
		ctl_commit_str(&b, s, off < room ? off : room);
		ctl_put_u32(&b, CTL_F_COUNT, (uint32_t)n);
	} else {
		put_status_text(&b, 0, room);
	}
	ctl_reply_end(c, &b);
}

static void do_freeze(struct ctl_conn *c, const struct ctl_msg *m)
{
	struct ctl_info in = info();
	if (in.state == CTL_STATE_TEMPLATE) {
		ctl_reply_error(c, EALREADY, "pid %ld is already a template", (long)getpid());
		return;
	}
	if (in.state != CTL_STATE_RUNNING) {
		ctl_reply_error(c, EBUSY, "pid %ld: a freeze is already under way", (long)getpid());
		return;
	}
	int32_t timeout = 0;
	if (ctl_get_i32(m, CTL_F_TIMEOUT_MS, &timeout) < 0 || timeout <= 0)
		timeout = in.timeout_ms;
	char err[512] = "";
	int r;
	uint32_t pool = 0;
	int have_pool = ctl_get_u32(m, CTL_F_POOL, &pool) == 0;
	if (have_pool && (in.mode != CTL_MODE_TEMPLATE || !ctl_ops->pool)) {
		ctl_reply_error(c, EINVAL, "freeze --pool: only a template keeps a pool (this "
		                "process is in %s mode)", ctl_mode_name((unsigned)in.mode));
		return;
	}
	if (have_pool && pool > CTL_MAX_POOL) {
		ctl_reply_error(c, EINVAL, "freeze --pool: at most %d children", CTL_MAX_POOL);
		return;
	}
	switch (in.mode) {
	case CTL_MODE_SNAPSHOT:
		if (!ctl_ops->snapshot) {
			ctl_reply_error(c, EOPNOTSUPP, "snapshot mode is not supported by this libnuwa");
			return;
		}
		r = ctl_ops->snapshot(timeout, err, sizeof err);
		break;
	case CTL_MODE_CLONE: {
		if (!ctl_ops->clone) {
			ctl_reply_error(c, EOPNOTSUPP, "clone mode: freezing over the socket is not "
			                "supported by this libnuwa (use the trigger signal)");
			return;
		}
		static pid_t kids[CTL_MAX_SPAWN];
		int n = in.clones < CTL_MAX_SPAWN ? in.clones : CTL_MAX_SPAWN;
		r = ctl_ops->clone(n, timeout, kids, err, sizeof err);
		if (r > 0)
			reply_frozen(c, 0, kids, r);
		else if (r < 0)
			ctl_reply_error(c, -r, "clone failed: %s", err[0] ? err : nuwa_strerror(-r));
		return;
	}
	default:
		r = ctl_ops->freeze(timeout, err, sizeof err);
		if (r == 0 && have_pool && (r = ctl_ops->pool((int)pool, err, sizeof err)) < 0) {
			ctl_ops->thaw();   /* as before the request */
			ctl_reply_error(c, -r, "freeze --pool: %s", err[0] ? err : nuwa_strerror(-r));
			return;
		}
		r = r < 0 ? r : 0;
		break;
	}
	if (r < 0) {
		ctl_reply_error(c, -r, "freeze failed: %s", err[0] ? err : nuwa_strerror(-r));
		return;
	}
	if (r > 0) {
		if (ctl_wait_socket(r, 2000) < 0)
			nuwa_warn("snapshot template %d: no control socket yet", r);
	}
	reply_frozen(c, r > 0 ? r : getpid(), NULL, 0);
}

static int not_template(struct ctl_conn *c, const char *what)
{
	int state = info().state;
	if (state == CTL_STATE_TEMPLATE)
		return 0;
	int tp = live_template_pid();
	if (tp > 0 && !strcmp(what, "spawn")) {
		struct ctl_buf b;
		if (ctl_reply_begin(c, &b, CTL_REP_ERROR, 256) == 0) {
			ctl_put_i32(&b, CTL_F_ERRNO, EAGAIN);
			ctl_put_str(&b, CTL_F_MESSAGE, "this process is running; its snapshot "
			            "template is another process");
			ctl_put_i32(&b, CTL_F_REDIRECT_PID, tp);
			ctl_reply_end(c, &b);
		}
		return 1;
	}
	ctl_reply_error(c, EINVAL, "cannot %s: pid %ld is not a template (it is %s); "
	                "freeze it first with 'nuwa freeze %ld'", what, (long)getpid(),
	                ctl_state_name((unsigned)state), (long)getpid());
	return 1;
}

static void do_spawn(struct ctl_conn *c, const struct ctl_msg *m)
{
	if (not_template(c, "spawn"))
		return;
	uint32_t count = 1, wait = 0, nstdio = 0;
	int r = ctl_get_u32(m, CTL_F_COUNT, &count);
	if ((r < 0 && r != -ENOENT) || count < 1 || count > CTL_MAX_SPAWN) {
		ctl_reply_error(c, EINVAL, "spawn: count must be 1 to %d", CTL_MAX_SPAWN);
		return;
	}
	ctl_get_u32(m, CTL_F_WAIT, &wait);
	ctl_get_u32(m, CTL_F_STDIO, &nstdio);
	if ((nstdio != 0 && nstdio != 3) || (int)nstdio != c->nfds) {
		ctl_reply_error(c, EINVAL, "spawn: %u standard descriptors announced, %d "
		                "received (expected 0 or 3)", nstdio, c->nfds);
		return;
	}
	unsigned ncalls = ctl_count(m, CTL_F_CALL);
	if (ncalls > CTL_MAX_CALLS) {
		ctl_reply_error(c, E2BIG, "spawn: at most %d --call options", CTL_MAX_CALLS);
		return;
	}
	const char *calls[CTL_MAX_CALLS];
	for (unsigned i = 0; i < ncalls; i++)
		calls[i] = ctl_get_nth_str(m, CTL_F_CALL, i);
	char err[512];
	/* Resolve every symbol before the first fork: a typo makes no child. */
	if ((r = ffcall_plan_prepare(calls, (int)ncalls, err, sizeof err)) < 0) {
		ctl_reply_error(c, -r, "%s", err);
		return;
	}
	if (wait && ctl_children_free() < (int)count) {
		ctl_reply_error(c, EAGAIN, "spawn: too many children already being waited for");
		return;
	}

	/* A copy: the child's ctlsock_after_spawn() closes c->fds[] but must
	 * leave these open, and the core reads them after that. */
	static int stdio[3];
	memcpy(stdio, c->fds, sizeof stdio);
	struct ctl_spawn sp = { .stdio = nstdio ? stdio : NULL };
	if (ncalls) {
		sp.child_fn = ffcall_plan_run;
		sp.mem[sp.nmem].p = ffcall_plan_image(&sp.mem[sp.nmem].n);
		sp.nmem++;
	}
	/* --env, --cwd, --cgroup, the process group: every value checked
	 * before the first fork; applied by setup_fn in each child, which
	 * reads the struct and its strings (two memory ranges) */
	static struct spawn_opts opts;
	if ((r = spawn_opts_parse(&opts, m, err, sizeof err)) < 0) {
		ctl_reply_error(c, -r, "%s", err);
		return;
	}
	if (spawn_opts_any(&opts)) {
		sp.setup_fn = spawn_opts_setup;
		sp.arg = &opts;
		sp.mem[sp.nmem++] = (struct ctl_mem){ &opts, sizeof opts };
		sp.mem[sp.nmem].p = spawn_opts_arena(&sp.mem[sp.nmem].n);
		if (sp.mem[sp.nmem].n)
			sp.nmem++;
		sp.cgroup_fd = opts.cgroup_fd;
	}
	uint32_t made = 0;
	for (; made < count; made++) {
		char why[256] = "";
		pid_t pid = ctl_ops->spawn(&sp, why, sizeof why);
		if (pid < 0) {
			char msg[400];
			snprintf(msg, sizeof msg, "spawn failed after %u child%s: %s", made,
			         made == 1 ? "" : "ren", why[0] ? why : nuwa_strerror((int)-pid));
			struct ctl_buf b;
			if (ctl_reply_begin(c, &b, CTL_REP_ERROR, 512) == 0) {
				ctl_put_i32(&b, CTL_F_ERRNO, (int32_t)-pid);
				ctl_put_str(&b, CTL_F_MESSAGE, msg);
				ctl_put_u32(&b, CTL_F_COUNT, made);
				ctl_reply_end(c, &b);
			}
			spawn_opts_release(&opts);
			return;
		}
		struct ctl_buf b;
		if (ctl_reply_begin(c, &b, CTL_REP_SPAWNED, 32) == 0) {
			ctl_put_i32(&b, CTL_F_PID, pid);
			ctl_reply_end(c, &b);
		}
		/* The SPAWNED reply is queued before a possible EXITED one. */
		if (wait)
			ctl_child_wait(pid, c);
		/* Each pid goes out as soon as its child is ready, so that a
		 * requester whose template dies mid-request knows every child
		 * made so far; the child is released from its parent-death
		 * signal once its pid is sent (ctl_flush), and killed if the
		 * requester goes before that (ctl_conn_close). */
		ctl_child_told(pid, c);
		ctl_flush(c);
		if (c->fd < 0) {
			nuwa_info("spawn: the requester went away after %u children", made + 1);
			spawn_opts_release(&opts);
			return;
		}
	}
	spawn_opts_release(&opts);
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_OK, 32) == 0) {
		ctl_put_u32(&b, CTL_F_COUNT, made);
		ctl_reply_end(c, &b);
	}
}

static void do_thaw(struct ctl_conn *c)
{
	if (not_template(c, "thaw"))
		return;
	/* Reply first, then let the threads go: a program that exits as soon
	 * as it runs again would otherwise close the socket before the reply
	 * is on it.  A template thaws whenever it is asked to (state checked
	 * above), so the OK is true; the few bytes fit an idle socket's buffer. */
	reply_ok_simple(c);
	ctl_flush(c);
	int r = ctl_ops->thaw();
	if (r < 0)
		nuwa_err("thaw failed after its reply (errno %d)", -r);
}

/* The template exits; its children are not touched: they are reparented to
 * init (or the nearest subreaper) and keep running.  Clients waiting for
 * one of them are told that its status will not come. */
static void do_stop(struct ctl_conn *c)
{
	if (not_template(c, "stop"))
		return;
	int live = ctl_children_live();
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_OK, 64) == 0) {
		ctl_put_u32(&b, CTL_F_CHILDREN, (uint32_t)live);
		ctl_reply_end(c, &b);
	}
	for (int i = 0; i < CTL_MAX_CONN; i++) {
		struct ctl_conn *w = &ctl_conns[i];
		if (w->fd >= 0 && w->waited) {
			ctl_reply_error(w, ESHUTDOWN, "template %ld stopped: its children keep "
			                "running but their exit status cannot be reported",
			                (long)getpid());
			w->closing = 1;
		}
	}
	nuwa_info("stopped by pid %ld over the control socket; %d children keep running",
	          (long)c->pid, live);
	ctl_exit_process(0);
}

/* `nuwa pool PID N`: the pool of a live template, 0 to end it. */
static void do_pool(struct ctl_conn *c, const struct ctl_msg *m)
{
	if (not_template(c, "pool"))
		return;
	uint32_t n = 0;
	if (ctl_get_u32(m, CTL_F_COUNT, &n) < 0 || n > CTL_MAX_POOL) {
		ctl_reply_error(c, EINVAL, "pool: needs a count from 0 to %d", CTL_MAX_POOL);
		return;
	}
	if (!ctl_ops->pool) {
		ctl_reply_error(c, EOPNOTSUPP, "pool: not supported by this libnuwa");
		return;
	}
	char err[256] = "";
	int r = ctl_ops->pool((int)n, err, sizeof err);
	if (r < 0) {
		ctl_reply_error(c, -r, "pool: %s", err[0] ? err : nuwa_strerror(-r));
		return;
	}
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_OK, 32) == 0) {
		ctl_put_u32(&b, CTL_F_COUNT, n);
		ctl_put_u32(&b, CTL_F_POOL, (uint32_t)r);   /* ready now */
		ctl_reply_end(c, &b);
	}
}

static void do_signal(struct ctl_conn *c, const struct ctl_msg *m)
{
	int32_t pid = 0, sig = 0;
	if (ctl_get_i32(m, CTL_F_PID, &pid) < 0 || ctl_get_i32(m, CTL_F_SIGNAL, &sig) < 0 ||
	    sig < 1 || sig > SIGRTMAX) {
		ctl_reply_error(c, EINVAL, "signal: needs a pid and a signal number");
		return;
	}
	/* Only a child this very connection spawned and waits for. */
	struct nuwa_child *ch = nuwa_child_find(pid);
	if (!ch || ch->waiter != ctl_conn_index(c) || ch->waiter_serial != c->serial) {
		ctl_reply_error(c, ESRCH, "signal: %d is not a child this request waits for", pid);
		return;
	}
	/* Not reaped yet (the entry would be gone), so the pid is still this
	 * child's, even if it has exited: kill() cannot hit another process. */
	if (kill(pid, sig) < 0) {
		ctl_reply_error(c, errno, "signal %d to %d: %s", sig, pid, nuwa_strerror(errno));
		return;
	}
	reply_ok_simple(c);
}

void ctl_handle(struct ctl_conn *c, const struct ctl_msg *m)
{
	nuwa_debug("control socket: %s request from pid %ld", ctl_type_name(m->type),
	           (long)c->pid);
	switch (m->type) {
	case CTL_REQ_HELLO: do_hello(c); break;
	case CTL_REQ_STATUS: do_status(c, m); break;
	case CTL_REQ_FREEZE: do_freeze(c, m); break;
	case CTL_REQ_SPAWN: do_spawn(c, m); break;
	case CTL_REQ_THAW: do_thaw(c); break;
	case CTL_REQ_STOP: do_stop(c); break;
	case CTL_REQ_SIGNAL: do_signal(c, m); break;
	case CTL_REQ_POOL: do_pool(c, m); break;
	default:
		ctl_reply_error(c, EOPNOTSUPP, "unknown request type %u", m->type);
	}
}
