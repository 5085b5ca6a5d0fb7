/* ctlsock.h — the control socket as the core sees it (ctl/).  Everything
 * here runs on libnuwa's control thread only: no locking.
 *
 * The socket server reaches the process it controls only through the table
 * of operations handed to ctlsock_init(): core/template.c is one
 * implementation, tests/cli/mock_template.c (a single-threaded stand-in that
 * forks plainly) the other, so the two cannot drift apart. */
#ifndef NUWA_CTLSOCK_H
#define NUWA_CTLSOCK_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "base.h"
#include "spawnopts.h"

/* The values of CTL_F_STATE and CTL_F_MODE (ctl_proto.h) */
enum ctl_state { CTL_STATE_RUNNING, CTL_STATE_FREEZING, CTL_STATE_TEMPLATE };
enum ctl_mode { CTL_MODE_CLONE, CTL_MODE_TEMPLATE, CTL_MODE_SNAPSHOT };

struct ctl_info {
	int state;               /* enum ctl_state */
	int mode;                /* enum ctl_mode: what `nuwa freeze` does */
	int clones;              /* clone mode: children per freeze */
	int timeout_ms;          /* a freeze's default timeout */
};

/* What the server asks of the process.  Each call returns in the process
 * that made it (the parent); in a new child, the child's control thread
 * goes on in a fresh control loop, never back into the request.  err gets
 * a one-line reason when a call fails with -errno. */
struct ctl_core_ops {
	void   (*info)(struct ctl_info *out);
	/* running -> template: every thread frozen and kept parked */
	int    (*freeze)(int timeout_ms, char *err, size_t errlen);
	/* one child of the template, which takes on o (spawnopts.h: stdio,
	 * environment, directory, cgroup, process group) with
	 * spawn_opts_apply() before any program thread runs; child_fn(arg)
	 * runs in it after every thread has resumed.
	 * Returns once the child is ready (every thread runs; its entry in
	 * base/children.c then holds a ready_fd, and the child is killed by the
	 * template's death until nuwa_child_release() says its requester knows
	 * it) or has died: the pid, or -errno with err filled. */
	pid_t  (*spawn)(const struct spawn_opts *o, void (*child_fn)(void *), void *arg,
	                char *err, size_t errlen);
	int    (*thaw)(void);    /* template -> running, exactly as before */
	/* `nuwa stop`: the replies are flushed and the socket removed; end the
	 * process with this status, without running the program's atexit
	 * handlers (its threads are frozen) */
	__attribute__((noreturn)) void (*stop)(int status);
	/* snapshot mode: a child keeps the frozen image; the template's pid */
	pid_t  (*snapshot)(int timeout_ms, char *err, size_t errlen);
	/* clone mode: n children, everybody resumes; n, pids[] filled */
	int    (*clone)(int n, int timeout_ms, pid_t *pids, char *err, size_t errlen);
	/* the process report for `nuwa status` and `nuwa freeze`: the length
	 * it needs, like snprintf (buf may be NULL when len is 0); json=1: one
	 * JSON object */
	size_t (*status)(char *buf, size_t len, int json);
};

/* Make this process's socket; 0 or -errno.  ops stays the server's. */
int  ctlsock_init(const struct ctl_core_ops *ops);
int  ctlsock_pollfds(struct pollfd *pfd, int max);  /* fds to watch, returns count */
void ctlsock_dispatch(const struct pollfd *pfd, int n);
void ctlsock_child_exited(const struct nuwa_child *c, int wstatus); /* reaped */
/* In a new child, before its threads resume: the connections and the
 * socket were the parent's; make this process's own.  keep: descriptors
 * received for the child's stdio that must stay open (NULL: none). */
void ctlsock_after_spawn(const int *keep);

#define CTL_MAX_CONN 63                        /* client connections at once */
#define CTLSOCK_MAX_POLLFDS (1 + CTL_MAX_CONN) /* room ctlsock_pollfds() may use */

/* The control socket's part of `nuwa status`: its path and the children
 * spawned through it.  json=0: "socket: PATH\nspawned: ...\n" lines;
 * json=1: a fragment
 * `"socket":"PATH","spawned_children":[{"pid":N,"waited":B},...]`
 * to put inside the status object.  Returns the length it needs (like
 * snprintf); writes at most len bytes including the NUL. */
size_t ctlsock_describe(char *buf, size_t len, int json);

/* For the core's plain-fork path (control_after_app_fork()), instead of
 * ctlsock_after_spawn(): drop the parent's connections at once and make
 * this process's socket later, from its control thread's first
 * ctlsock_pollfds() call, so that fork()+exec() costs no bind(). */
void ctlsock_after_app_fork(void);
/* For an exec() wrapper: remove this process's socket file (the new
 * program will not serve it). */
void ctlsock_before_exec(void);

/* Path of this process's control socket, "" when there is none. */
const char *ctlsock_path(void);

#endif
