/* rp.h — helpers for the real-program suite: run an unmodified program under
 * `nuwa run`, freeze it, spawn children, talk to one child at a time.
 *
 * Every case follows the same script (tests/realprogs/README.md):
 *   start → store state → freeze → spawn 2 → each child serves with the state
 *   → a change in one child is absent from the other → a signal to one child
 *   acts only there → a third child has the template's state (template
 *   unchanged) → stop.
 *
 * Talking to one child: the children share the template's listening socket,
 * so a connection reaches whichever process accepts first.  rp_only(r, X)
 * stops (SIGSTOP) every other child until rp_all(): a stopped process is off
 * every wait queue (epoll, EPOLLEXCLUSIVE or not, and blocking accept), so
 * the next connection or datagram is taken by X.  The template is frozen and
 * takes nothing. */
#ifndef NUWA_RP_H
#define NUWA_RP_H

#include <stddef.h>
#include <sys/types.h>

#define RP_MAXKIDS 4

struct rp {
	const char *name;
	char dir[200];          /* the case's private temporary directory */
	char why[2048];         /* the failures, first first */
	pid_t tmpl;             /* the program started by `nuwa run` */
	pid_t kid[RP_MAXKIDS];  /* spawned children, in order */
	int nkids;
	int port;               /* a free loopback port chosen at run time */
	long long ms;           /* the case's wall time */
};

/* Record a failure (after the first, appended as "| then: ..."); -1. */
int rp_fail(struct rp *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Property lines read as specs: REQUIRE(condition, "what was seen", ...). */
#define REQUIRE(cond, ...) do { if (!(cond)) return rp_fail(r, __VA_ARGS__); } while (0)
#define CHECK(call) do { if ((call) < 0) return -1; } while (0)

/* The first ELF executable named prog on PATH (then the sbin directories a
 * non-root PATH lacks); NULL if none.  Wrapper scripts (pyenv shims) are
 * passed over: libnuwa is preloaded into the program itself. */
const char *rp_which(const char *prog, char *buf, size_t cap);
/* A loopback port free for TCP and UDP now. */
int rp_free_port(void);
/* dir/name into buf. */
const char *rp_path(struct rp *r, const char *name, char *buf, size_t cap);
int rp_write_file(const char *path, const char *text);
long long rp_now_ms(void);
void rp_sleep_ms(int ms);

/* `nuwa run --log debug --log-file DIR/nuwa.log -- argv...` with
 * NUWA_RUNTIME_DIR=DIR/rt, stdout and stderr to DIR/prog.log. */
int rp_start(struct rp *r, const char *const *argv, const char *const *env);
/* Run nuwa with the arguments (NULL-terminated) within timeout_ms; output
 * (stdout and stderr) in out.  Returns the exit status, -1 on timeout. */
int rp_nuwa(struct rp *r, char *out, size_t cap, int timeout_ms, ...) __attribute__((sentinel));
/* Run argv (a path first) the same way. */
int rp_exec(struct rp *r, const char *const *argv, char *out, size_t cap, int timeout_ms);
int rp_freeze(struct rp *r);
/* Spawn n more children (appended to r->kid). */
int rp_spawn(struct rp *r, int n);
/* `nuwa stop` the template, then end every child still running. */
void rp_stop(struct rp *r);

/* Only child i takes connections until rp_all(). */
int rp_only(struct rp *r, int i);
void rp_all(struct rp *r);

/* How a spawned child ended, from the template's (debug) log: "killed by
 * signal 11, Segmentation fault", "exited with status 0", or "gone". */
const char *rp_death(struct rp *r, pid_t pid);
int rp_alive(pid_t pid);                      /* exists and is not a zombie */
int rp_wait_gone(pid_t pid, int timeout_ms);  /* 1 once it is gone */
int rp_threads(pid_t pid);

/* Connect to 127.0.0.1:port, send req, read until the reply contains
 * `until` (or EOF if until is NULL); reply NUL-terminated in resp.  Returns
 * the reply length, -1 on error or timeout. */
int rp_tcp(int port, const char *req, char *resp, size_t cap, const char *until,
           int timeout_ms);
/* A connected TCP socket (non-blocking) to 127.0.0.1:port, or -1; and one
 * exchange on it, as rp_tcp. */
int rp_connect(int port, int timeout_ms);
int rp_converse(int fd, const char *req, char *resp, size_t cap, const char *until,
                int timeout_ms);
/* GET path (HTTP/1.1, Connection: close) from child i alone (i < 0:
 * whoever answers); the whole reply in resp; fails unless it is a 200. */
int rp_http(struct rp *r, int i, const char *path, char *resp, size_t cap);
/* How many mappings of pid are marked MADV_DONTFORK (VmFlags dc). */
int rp_dontfork_maps(pid_t pid);
/* Wait until 127.0.0.1:port accepts (a TCP connect succeeds). */
int rp_wait_tcp(int port, int timeout_ms);
/* One DNS query for NAME type A over UDP to 127.0.0.1:port: 1 and the first
 * address in addr if answered with one, 0 if answered without, -1 if no
 * answer came. */
int rp_dns_a(int port, const char *name, char *addr, size_t cap, int timeout_ms);

/* The number after prefix in text (first occurrence), -1 if none. */
long rp_field(const char *text, const char *prefix);
/* `nuwa status` says the template is still a template. */
int rp_still_template(struct rp *r);

/* With RP_TRACE set: a timestamped step on stderr. */
void rp_trace(struct rp *r, const char *what);

/* Print DIR/prog.log and DIR/nuwa.log (their ends) to stderr. */
void rp_dump(struct rp *r);

#endif
