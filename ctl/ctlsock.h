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

/* The values of CTL_F_STATE and CTL_F_MODE (ctl_proto.h) */
enum ctl_state { CTL_STATE_RUNNING, CTL_STATE_FREEZING, CTL_STATE_TEMPLATE };
enum ctl_mode { CTL_MODE_CLONE, CTL_MODE_TEMPLATE, CTL_MODE_SNAPSHOT };

struct ctl_info {
	int state;               /* enum ctl_state */
	int mode;                /* enum ctl_mode: what `nuwa freeze` does */
	int clones;              /* clone mode: children per freeze */
	int timeout_ms;          /* a freeze's default timeout */
	int pool;                /* children the pool keeps (configured) */
};

/* A range of the template's memory that a spawned child needs as it is at
 * the request (the --call plan, the options of this spawn).  A child forked
 * for the request has it anyway; a pooled child was forked earlier, so the
 * core copies each range into it, at the same address (the child's memory is
 * a copy of the template's: same layout), before anything of the spawn runs
 * there. */
struct ctl_mem {
	const void *p;
	size_t n;
};
#define CTL_SPAWN_MEM 8

/* What is particular to one spawn, applied in the child after its threads
 * are cloned back and before they run (a pooled child: when it is taken).
 * A new per-spawn option is a field here, its value in a ctl_mem range, and
 * a function called from setup_fn. */
struct ctl_spawn {
	const int *stdio;                 /* 3 descriptors for 0, 1, 2, or NULL */
	void (*setup_fn)(void *arg);      /* every thread cloned, none running yet */
	void (*child_fn)(void *arg);      /* once every thread runs (--call) */
	void *arg;
	struct ctl_mem mem[CTL_SPAWN_MEM];/* what setup_fn/child_fn read */
	int nmem;
	/* > 2: a cgroup v2 directory (one of libnuwa's own descriptors, never
	 * 0-2) that a child forked for this spawn is born in (clone3
	 * CLONE_INTO_CGROUP, core/fork.c); setup_fn moves a child that was not
	 * (a pooled one, an older kernel) */
	int cgroup_fd;
};

/* What the server asks of the process.  Each call returns in the process
 * that made it (the parent); in a new child, the child's control thread
 * goes on in a fresh control loop, never back into the request.  err gets
 * a one-line reason when a call fails with -errno. */
struct ctl_core_ops {
	void   (*info)(struct ctl_info *out);
	/* running -> template: every thread frozen and kept parked */
	int    (*freeze)(int timeout_ms, char *err, size_t errlen);
	/* one child of the template (from its pool if it has one), with what
	 * sp says.  Returns once the child is ready (every thread resumed, none
	 * released; its entry in base/children.c then holds a ready_fd, and the
	 * child is killed by the template's death until nuwa_child_release()
	 * says its requester knows it) or has died: the pid, or -errno with err
	 * filled. */
	pid_t  (*spawn)(const struct ctl_spawn *sp, char *err, size_t errlen);
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
	/* template: keep n children forked ahead of time (0: no pool); how
	 * many are ready now, or -errno.  NULL when the core has no pool. */
	int    (*pool)(int n, char *err, size_t errlen);
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
/* The same for a child whose socket is made later, by ctlsock_listen() (a
 * pooled child has none while it waits in the pool). */
void ctlsock_after_spawn_deferred(const int *keep);
void ctlsock_listen(void);

#define CTL_MAX_CONN 63                        /* client connections at once */
/* A request must be complete this long after its first byte, or its
 * connection is closed with an error: a client trickling bytes cannot hold
 * a slot (and the table) for ever. */
#define CTL_REQUEST_MS 5000
/* The poll timeout the control loop must not exceed so that expired
 * requests are closed in time: ms until the next deadline, -1 for none. */
int  ctlsock_timeout_ms(void);
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

/* The process is about to end (a template taking SIGTERM): clients waiting
 * for children are told (ESHUTDOWN, "template PID <why>: ..."), replies are
 * flushed (at most 1 s) and the socket file is removed. */
void ctlsock_shutdown(const char *why);

/* Process pid (a child of ours) has ended: remove DIR/pid.sock if it is a
 * stale socket of ours (nobody listens on it). */
void ctlsock_forget_socket(pid_t pid);

/* For the _exit() wrappers: remove this process's socket file (no
 * destructor will).  Async-signal-safe. */
void ctlsock_before_exit(void);

/* Path of this process's control socket, "" when there is none. */
const char *ctlsock_path(void);

#endif
