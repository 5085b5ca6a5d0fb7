/* ctlsock.h — what the control thread needs beyond nuwa_int.h to drive the
 * control socket (ctl/ctlsock.c, ctl/ctl_serve.c).  Everything here runs on
 * libnuwa's control thread only: no locking. */
#ifndef NUWA_CTLSOCK_H
#define NUWA_CTLSOCK_H

#include <stddef.h>

#define CTL_MAX_CONN 63                        /* client connections at once */
#define CTLSOCK_MAX_POLLFDS (1 + CTL_MAX_CONN) /* room ctlsock_pollfds() may use */

/* The control socket's part of `nuwa status`: its path and the children
 * spawned through it.  json=0: "socket: PATH\nspawned: ...\n" lines;
 * json=1: a fragment `"socket":"PATH","spawned":[{"pid":N,"waited":B},...]`
 * to put inside the status object.  Returns the length it needs (like
 * snprintf); writes at most len bytes including the NUL. */
size_t ctlsock_describe(char *buf, size_t len, int json);

/* Provided by the core: the process report for `nuwa status` and `nuwa
 * freeze` (mode, state, threads with what each is idle in, descriptors with
 * kind and policy, children).  Returns the length it needs, like snprintf;
 * writes at most len bytes including the NUL; buf may be NULL when len is 0.
 * json=1: one JSON object. */
size_t nuwa_status_text(char *buf, size_t len, int json);

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
