/* cli.h — shared parts of the `nuwa` command. */
#ifndef NUWA_CLI_H
#define NUWA_CLI_H

#include <stddef.h>
#include <sys/types.h>

#include "ctl_proto.h"

/* Exit statuses (documented in docs/cli.md and `nuwa --help`). */
enum {
	EX_OK = 0,
	EX_FAIL = 1,        /* the process refused the request, or it failed */
	EX_USAGE = 2,       /* bad command line */
	EX_NOPROC = 3,      /* no such libnuwa process, or cannot connect to it */
	EX_PROTO = 4,       /* the connection broke or the reply made no sense */
	EX_NUWA = 125,      /* run, spawn --wait: nuwa itself failed (not the program) */
	EX_NOEXEC = 126,    /* run: PROG is not executable */
	EX_NOTFOUND = 127,  /* run: PROG not found */
};

extern const char *cli_verb;   /* for messages: "nuwa spawn: ..." */

void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: the message, a hint to --help, returns EX_USAGE. */
int cli_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parse a decimal integer in [lo, hi]; 0 or -1. */
int cli_parse_int(const char *s, long lo, long hi, long *out);

/* help.c */
void cli_print_help(const char *verb);       /* NULL: the overview */
int  cli_has_help(const char *verb);

/* client.c: one connection to a process's control socket */
struct client {
	int fd;
	pid_t pid;                /* the target's pid, 0 if given as a path */
	char path[108];
	char *buf;                /* receive buffer */
	size_t len, cap;
	size_t last;              /* size of the message returned last, still in buf */
};
/* target: PID or socket path.  Prints the reason and returns an exit code
 * (EX_NOPROC, EX_USAGE) on failure, EX_OK on success. */
int  client_open(struct client *cl, const char *target);
void client_close(struct client *cl);
/* Send one message (with descriptors).  0 or -errno. */
int  client_send(struct client *cl, const void *msg, size_t len, const int *fds, int nfds);
/* Receive one message: 1 = got it in *m (valid until the next call), 0 =
 * connection closed, -ETIMEDOUT, -EPROTO, ... (timeout_ms < 0: no limit).
 * Also returns early with -EINTR if the descriptor extra_fd (>= 0) becomes
 * readable. */
int  client_recv(struct client *cl, struct ctl_msg *m, int timeout_ms, int extra_fd);
/* Send a request built with b and wait for one reply; prints errors; returns
 * EX_OK with the reply in *m, or an exit code. */
int  client_call(struct client *cl, struct ctl_buf *b, struct ctl_msg *m, int timeout_ms);
/* An ERROR reply refusing us as another user (exit EX_NOPROC). */
int  client_refused(const struct ctl_msg *m);
/* Print an ERROR reply as "nuwa VERB: TARGET: message". */
void client_print_error(struct client *cl, const struct ctl_msg *m);
/* The runtime directory that `nuwa list` scans. */
int  client_rundir(char *buf, size_t len);

/* sockwatch.c: control sockets of processes that are gone */
/* Remove DIR/PID.sock if it is ours and nobody listens on it; 1 if removed. */
int  cli_remove_stale_socket(const char *dir, pid_t pid);
/* nuwa run, before exec: remove our socket once the program has ended. */
void cli_watch_own_socket(void);

/* verbs */
int cmd_run(int argc, char **argv);
int cmd_freeze(int argc, char **argv);
int cmd_spawn(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_thaw(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_pool(int argc, char **argv);

#endif
