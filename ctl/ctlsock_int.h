/* ctlsock_int.h — shared by the control socket's transport (ctlsock.c) and
 * its request handlers (ctl_serve.c).  Control thread only. */
#ifndef NUWA_CTLSOCK_INT_H
#define NUWA_CTLSOCK_INT_H

#include <stddef.h>
#include <sys/types.h>

#include "ctl_proto.h"
#include "ctlsock.h"

#define CTL_MAX_FDS 3             /* descriptors a request may carry */
#define CTL_IN_CAP (CTL_HDR_SIZE + CTL_MAX_REQUEST)
#define CTL_OUT_MAX (CTL_HDR_SIZE + CTL_MAX_REPLY + 65536)

struct ctl_conn {
	int fd;                  /* -1: free slot */
	unsigned serial;         /* bumped at every accept: children keep (slot, serial) */
	uid_t uid;
	pid_t pid;               /* peer, from SO_PEERCRED */
	char *in;                /* mmap'd, CTL_IN_CAP bytes */
	size_t in_len;
	char *out;               /* mmap'd on demand, out_cap bytes */
	size_t out_len, out_off, out_cap;
	int fds[CTL_MAX_FDS];    /* received with SCM_RIGHTS, not yet used */
	int nfds;
	int waited;              /* children this connection waits for */
	int closing;             /* send what is queued, then close */
	long long last_ms;       /* last activity (monotonic), for eviction */
	long long req_ms;        /* first byte of the request being read, 0: none */
};

extern struct ctl_conn ctl_conns[CTL_MAX_CONN];

/* Replies: begin reserves `room` bytes of output (0 on failure: the
 * connection is then marked closing), end queues the message. */
int  ctl_reply_begin(struct ctl_conn *c, struct ctl_buf *b, unsigned type, size_t room);
void ctl_reply_end(struct ctl_conn *c, struct ctl_buf *b);
void ctl_reply_error(struct ctl_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ctl_flush(struct ctl_conn *c);

/* Children spawned through the socket (entries of base/children.c). */
void ctl_child_wait(pid_t pid, struct ctl_conn *c);
void ctl_child_told(pid_t pid, struct ctl_conn *c);  /* its pid is queued on c */
void ctl_children_told_sent(struct ctl_conn *c);     /* c's output all sent: release */
void ctl_children_untold(struct ctl_conn *c);        /* c closes: kill the unsent */
int ctl_children_free(void);      /* room left in the list */
int ctl_children_live(void);      /* spawned and not yet reaped */
int ctl_conn_index(const struct ctl_conn *c);

/* One complete, framed request (ctl_serve.c). */
void ctl_handle(struct ctl_conn *c, const struct ctl_msg *m);

extern const struct ctl_core_ops *ctl_ops;   /* from ctlsock_init() */

/* `nuwa stop`: flush every reply, remove the socket, exit the process. */
void ctl_exit_process(int status) __attribute__((noreturn));


/* ctl_listen.c */
extern int ctl_listen_fd;
void ctl_forget_child_socket(pid_t pid);          /* a reaped child's leftover file */
void ctl_listen_if_pending(void);                 /* after ctlsock_after_app_fork() */
int  ctl_wait_socket(pid_t pid, int timeout_ms);  /* until DIR/PID.sock answers */

/* ctlsock.c */
void ctl_tables_init(void);
void ctl_reserve_take(void);   /* the descriptor kept for a full table */
void ctl_forget_all(const int *keep);
void ctl_conn_close(struct ctl_conn *c);

#endif
