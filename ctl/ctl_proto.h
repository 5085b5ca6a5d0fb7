/* ctl_proto.h — the control-socket protocol, shared by libnuwa (server side,
 * ctl/ctlsock.c) and the `nuwa` command (client side, cli/).
 *
 * Transport: a SOCK_STREAM Unix socket.  Every message is
 *
 *     header  (12 bytes, host byte order: both ends are on this machine)
 *         char     magic[4]   "NUWA"
 *         uint16_t version    CTL_VERSION
 *         uint16_t type       enum ctl_type
 *         uint32_t len        payload bytes that follow, <= the receiver's limit
 *     payload: a sequence of fields, each
 *         uint16_t tag        enum ctl_tag
 *         uint32_t vlen       value bytes that follow
 *         value               i32/u32: 4 bytes; string: bytes + one NUL, no NUL inside
 *
 * A receiver ignores tags it does not know (forward compatibility) and
 * rejects a payload whose fields do not exactly cover it.  A message with a
 * bad magic, another version, or a length over the limit cannot be resynced
 * on a stream: the server answers CTL_REP_ERROR and closes the connection.
 *
 * Descriptors (the requester's stdin/stdout/stderr for a spawn) travel as
 * SCM_RIGHTS on the sendmsg() that carries the request's first byte; the
 * request says how many with CTL_F_STDIO.
 *
 * Nothing here allocates memory or does I/O: libnuwa's control thread may run
 * while application threads are parked, one of them possibly inside malloc.
 */
#ifndef NUWA_CTL_PROTO_H
#define NUWA_CTL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define CTL_MAGIC "NUWA"
#define CTL_VERSION 1
#define CTL_HDR_SIZE 12
#define CTL_FIELD_HDR 6
#define CTL_MAX_REQUEST (64u * 1024)          /* payload limit, client -> server */
#define CTL_MAX_REPLY   (4u * 1024 * 1024)    /* payload limit, server -> client */
#define CTL_MAX_SPAWN   1024                  /* children per spawn request */
#define CTL_MAX_CALLS   16                    /* --call specs per spawn request */
#define CTL_MAX_POOL    64                    /* children a template keeps ready */

enum ctl_type {
	/* requests */
	CTL_REQ_HELLO = 1,   /* -> OK {PID, STATE, MODE, TEMPLATE_PID, CHILDREN, VERSION} */
	CTL_REQ_STATUS = 2,  /* {JSON} -> OK {TEXT} */
	CTL_REQ_FREEZE = 3,  /* {TIMEOUT_MS, [POOL]} -> OK {PID, TEMPLATE_PID, TEXT} */
	CTL_REQ_SPAWN = 4,   /* {COUNT, WAIT, CALL..., STDIO, ENV..., ENV_CLEAR, CWD,
	                        CGROUP, PGRP} -> SPAWNED... then OK {COUNT},
	                        or ERROR {COUNT = children made before the error};
	                        with WAIT, later one EXITED per child */
	CTL_REQ_THAW = 5,    /* -> OK */
	CTL_REQ_STOP = 6,    /* -> OK {CHILDREN}, then the template exits */
	CTL_REQ_SIGNAL = 7,  /* {PID, SIGNAL}: to a child this connection waits for -> OK */
	CTL_REQ_POOL = 32,   /* {COUNT}: a template keeps COUNT children ready -> OK {COUNT, POOL = ready now} */
	/* replies */
	CTL_REP_OK = 0x100,
	CTL_REP_ERROR = 0x101,   /* {ERRNO, MESSAGE, [REDIRECT_PID], [VERSION]} */
	CTL_REP_SPAWNED = 0x102, /* {PID} */
	CTL_REP_EXITED = 0x103,  /* {PID, WSTATUS}: a waited-for child was reaped */
};

enum ctl_tag {
	CTL_F_ERRNO = 1,        /* i32, positive errno */
	CTL_F_MESSAGE = 2,      /* str, one line */
	CTL_F_TEXT = 3,         /* str, multi-line report */
	CTL_F_PID = 4,          /* i32 */
	CTL_F_COUNT = 5,        /* u32 */
	CTL_F_TIMEOUT_MS = 6,   /* i32, <= 0: the process's configured timeout */
	CTL_F_WAIT = 7,         /* u32 0/1 */
	CTL_F_JSON = 8,         /* u32 0/1 */
	CTL_F_CALL = 9,         /* str, repeated, in order */
	CTL_F_WSTATUS = 10,     /* i32, as from waitpid() */
	CTL_F_SIGNAL = 11,      /* i32 */
	CTL_F_STATE = 12,       /* u32 enum nuwa_state */
	CTL_F_MODE = 13,        /* u32 enum nuwa_mode */
	CTL_F_TEMPLATE_PID = 14,/* i32, the process that holds the template image */
	CTL_F_VERSION = 15,     /* u32, the sender's protocol version */
	CTL_F_STDIO = 16,       /* u32, descriptors attached (0 or 3) */
	CTL_F_CHILDREN = 17,    /* u32 */
	CTL_F_REDIRECT_PID = 18,/* i32, ask this process instead */
	/* a spawn's particulars (ctl/spawnopts.h), applied in each child before
	 * any of the program's threads runs again */
	CTL_F_ENV = 19,         /* str "NAME=VALUE", repeated, in order */
	CTL_F_ENV_CLEAR = 20,   /* u32 0/1: start from an empty environment */
	CTL_F_CWD = 21,         /* str, absolute path of the working directory */
	CTL_F_CGROUP = 22,      /* str, absolute path of a cgroup v2 directory */
	CTL_F_PGRP = 23,        /* i32: 0 the template's process group, -1 its
	                           own, N > 0 join group N (same session) */
	CTL_F_POOL = 40,        /* u32, FREEZE: children to keep in the pool; POOL reply: ready now */
};
#define CTL_F_LAST CTL_F_PGRP

/* Encoder over caller-provided memory.  Errors are sticky: check ctl_end(). */
struct ctl_buf {
	char *p;
	size_t cap, len;
	int err;                /* 0 or -EMSGSIZE */
};
void ctl_begin(struct ctl_buf *b, void *mem, size_t cap, uint16_t type);
void ctl_put_u32(struct ctl_buf *b, uint16_t tag, uint32_t v);
void ctl_put_i32(struct ctl_buf *b, uint16_t tag, int32_t v);
void ctl_put_str(struct ctl_buf *b, uint16_t tag, const char *s);
/* Reserve room for a string of up to max bytes; the caller writes it at the
 * returned pointer and commits the real length (< max) with ctl_commit_str. */
char *ctl_reserve_str(struct ctl_buf *b, uint16_t tag, size_t max);
void ctl_commit_str(struct ctl_buf *b, char *s, size_t n);
/* Fills in the length; returns the message size or -EMSGSIZE. */
long ctl_end(struct ctl_buf *b);

/* Decoding. */
struct ctl_msg {
	uint16_t type;
	uint16_t version;
	uint32_t len;
	const char *payload;
};
/* Looks at the first `have` bytes of a stream.  Returns 0 when more bytes
 * are needed, the total message size when one is complete, or
 * -EPROTO (bad magic), -EPROTONOSUPPORT (other version; *version set),
 * -EMSGSIZE (payload over max). */
long ctl_frame(const void *buf, size_t have, uint32_t max, struct ctl_msg *m);
/* 0 if the fields exactly cover the payload and every known tag has a
 * well-formed value; -EPROTO otherwise. */
int ctl_validate(const struct ctl_msg *m);
/* Field getters: 0, -ENOENT (absent) or -EPROTO (duplicate or malformed). */
int ctl_get_u32(const struct ctl_msg *m, uint16_t tag, uint32_t *v);
int ctl_get_i32(const struct ctl_msg *m, uint16_t tag, int32_t *v);
int ctl_get_str(const struct ctl_msg *m, uint16_t tag, const char **s);
/* The nth (0-based) occurrence of a repeatable string field, or NULL. */
const char *ctl_get_nth_str(const struct ctl_msg *m, uint16_t tag, unsigned nth);
unsigned ctl_count(const struct ctl_msg *m, uint16_t tag);

int ctl_send_with_fds(int fd, const void *msg, size_t len, const int *fds, int nfds);

const char *ctl_type_name(unsigned type);
const char *ctl_state_name(unsigned state);   /* running, freezing, template */
const char *ctl_mode_name(unsigned mode);     /* clone, template, snapshot */

#endif
