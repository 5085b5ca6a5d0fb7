/* cli_test.h — helpers for the control-socket and `nuwa` command suites:
 * run commands with a deadline and capture their output, start background
 * processes in their own process group, talk the control protocol directly.
 *
 * Paths come from the environment set by tests/cli/meson.build:
 *   NUWA_CLI (the nuwa command), NUWA_MOCK (mock_template), NUWA_CLI_SCN
 *   (the scenario program), NUWA_LIB (libnuwa.so).
 * Every test gets its own runtime directory (ct_setup()). */
#ifndef NUWA_CLI_TEST_H
#define NUWA_CLI_TEST_H

#include <stddef.h>
#include <sys/types.h>

#include "ctl_proto.h"

const char *ct_path(const char *envname);   /* fails the test if unset */
/* The LD_PRELOAD value that loads lib: $NUWA_PRELOAD_FIRST (a sanitized
 * build's runtime, which must come first) then lib.  A static buffer. */
const char *ct_preload(const char *lib);

/* A fresh private directory; NUWA_RUNTIME_DIR=<it>/rt is set (not created).
 * Returns the base directory. */
const char *ct_setup(void);
const char *ct_rundir(void);

struct ct_out {
	int code;          /* exit status, 128+N if killed by N, -1 on timeout */
	char out[65536];
	char err[65536];
};
/* Run argv (argv[0] a path) with extra "K=V" entries (NULL-terminated or
 * NULL) to completion within timeout_ms; capture stdout and stderr. */
void ct_run(struct ct_out *o, const char *const *argv, const char *const *env, int timeout_ms);
/* Shorthand: nuwa with arguments, NULL-terminated. */
void ct_nuwa(struct ct_out *o, int timeout_ms, ...) __attribute__((sentinel));

/* A background process in its own process group; its stdout (and stderr if
 * err_too) goes to a pipe readable with ct_expect(). */
struct ct_bg {
	pid_t pid;
	int out;           /* read end */
	char buf[65536];
	size_t len;
};
void ct_start(struct ct_bg *b, const char *const *argv, const char *const *env, int err_too);
/* Read until buf contains needle (from offset 0) or timeout; 1 if found. */
int  ct_expect(struct ct_bg *b, const char *needle, int timeout_ms);
/* Read whatever is available now (keeps the process from blocking on a
 * full pipe); what does not fit in buf is dropped from the front. */
void ct_drain(struct ct_bg *b);
/* Count occurrences of needle in what was read so far. */
int  ct_count(const char *hay, const char *needle);
/* SIGKILL the whole process group and reap the leader. */
void ct_kill(struct ct_bg *b);
/* Wait for the leader to exit (it must be our child); status as in ct_out. */
int  ct_wait(struct ct_bg *b, int timeout_ms);

/* Start mock_template with extra env; returns its pid, socket in sock. */
pid_t ct_mock(struct ct_bg *b, const char *const *env, char *sock, size_t len);

/* Raw protocol client. */
int  ct_connect(const char *sock);           /* -errno on failure */
int  ct_send(int fd, const void *msg, size_t len);
/* One message into buf (valid until reused): 1, 0 on EOF, -errno. */
int  ct_recv(int fd, char *buf, size_t cap, struct ctl_msg *m, int timeout_ms);
/* HELLO: fills state (enum nuwa_state) and children; 0 or -errno. */
int  ct_hello(const char *sock, unsigned *state, unsigned *children);

/* /proc helpers */
int  ct_count_fds(pid_t pid);
long ct_rss_kb(pid_t pid);
int  ct_zombie_children(pid_t parent);        /* Z processes whose ppid is parent */
int  ct_threads(pid_t pid);
int  ct_sockets_in_rundir(void);                  /* *.sock files in ct_rundir() */
long ct_thread_ticks(pid_t pid, const char *comm);  /* utime + stime of the thread named comm, or -1 */
int  ct_alive(pid_t pid);
long long ct_now_ms(void);
void ct_sleep_ms(int ms);

#endif
