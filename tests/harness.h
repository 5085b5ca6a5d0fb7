/* harness.h — drive a scenario program under libnuwa from a criterion test.
 *
 * A scenario is a real program in $NUWA_SCENARIO_DIR, started with
 * LD_PRELOAD=$NUWA_LIB in its own process group, with pipes on its stdin,
 * stdout and stderr.  The clones libnuwa makes of it inherit those pipes:
 *
 *   - stdout/stderr are shared by the parent and every clone, so "every
 *     process has exited" is "both pipes reached EOF" (the clones are not
 *     our children: libnuwa forks them with exit_signal 0 and reaps them);
 *   - closing stdin is the "finish now" order: every process sees EOF on it.
 *
 * Scenario protocol (see scenarios/scn.h): the original process prints
 * "READY\n" once its workload is in place; at the end every process prints
 * one "RESULT pid=P clone=0|1 ok" or "RESULT pid=P clone=0|1 FAIL why" line.
 * libnuwa (NUWA_LOG=info, set by default here) logs "clone done: PIDS" on
 * stderr after each successful clone and "freeze failed: WHY" otherwise.
 *
 * Every wait is bounded.  On any failure the harness prints everything the
 * processes wrote to the test's stderr, kills the process group (clones
 * included) and fails the criterion test with a one-line reason.
 */
#ifndef NUWA_TEST_HARNESS_H
#define NUWA_TEST_HARNESS_H

#include <stddef.h>
#include <signal.h>
#include <sys/types.h>

struct nh_opts {
	const char *const *argv; /* extra arguments, NULL-terminated, or NULL */
	const char *const *env;  /* "KEY=VALUE" added last (override), "KEY"
				  * removes KEY; NULL-terminated, or NULL */
	int no_preload;          /* 1: run without LD_PRELOAD (reference run) */
	int trigger_sig;         /* signal nh_trigger() sends; 0 = SIGUSR2 */
};

struct nh_buf {
	char *data;              /* always NUL-terminated */
	size_t len, cap;
	int fd;                  /* -1 once EOF was read */
};

typedef struct nh_proc {
	char name[64];
	pid_t pid;               /* the original process (also its pgid) */
	int in_fd;               /* write end of its stdin, -1 once closed */
	struct nh_buf out, err;
	int trigger_sig;
	int reaped, wstatus;     /* parent's exit status once reaped */
	unsigned seed;           /* random seed used by nh_random_triggers */
	long long last_clone_ms; /* how long the last nh_clone waited */
} nh_proc;

/* Default timeouts (ms). */
#define NH_READY_MS   10000
#define NH_CLONE_MS   10000
#define NH_FINISH_MS  30000

/* Start scenario `name` from $NUWA_SCENARIO_DIR.  Always sets NUWA_MODE=clone
 * and NUWA_LOG=info (override them with opts->env); every other NUWA_* of the
 * test's environment is removed.  Fails the test if it cannot start. */
nh_proc *nh_start(const char *name, const struct nh_opts *opts);

/* Read whatever is available for up to timeout_ms (0: just drain). */
void nh_pump(nh_proc *p, int timeout_ms);

/* Occurrences of s in a NUL-terminated buffer. */
int nh_count(const char *hay, const char *s);

/* Wait until stdout (resp. stderr) holds at least `count` occurrences of s.
 * Returns 1, or 0 on timeout or when every writer is gone. */
int nh_wait_out(nh_proc *p, const char *s, int count, int timeout_ms);
int nh_wait_err(nh_proc *p, const char *s, int count, int timeout_ms);

/* Fail the test unless the scenario prints READY within NH_READY_MS. */
void nh_expect_ready(nh_proc *p);

/* Send the trigger signal (or any signal) to the original process / a pid. */
void nh_trigger(nh_proc *p);
void nh_kill(nh_proc *p, pid_t pid, int sig);

/* Trigger and wait for the next "clone done:" line of process `pid` (0: the
 * original process).  Fails the test if "freeze failed:" appears or nothing
 * comes within timeout_ms.  Returns the number of clone-done lines so far. */
int nh_clone(nh_proc *p, int timeout_ms);
int nh_clone_pid(nh_proc *p, pid_t pid, int timeout_ms);

/* n triggers, each after a random pause in [min_ms, max_ms] following the
 * previous "clone done" (seed printed; NH_SEED in the environment fixes it). */
void nh_random_triggers(nh_proc *p, int n, int min_ms, int max_ms);

/* Pids named on the "clone done:" lines logged by process `pid` (0: any).
 * Returns how many were stored in pids[0..max-1]. */
int nh_clone_pids(nh_proc *p, pid_t pid, pid_t *pids, int max);

/* Close stdin, read stdout and stderr to EOF and reap the original process,
 * all within timeout_ms.  On timeout: kill the group and fail the test. */
void nh_finish(nh_proc *p, int timeout_ms);

/* After nh_finish: exactly `processes` distinct pids printed "RESULT ... ok"
 * (one clone=0 line from the original pid, the rest clone=1 from other
 * pids), no FAIL line, and the original process exited with status 0. */
void nh_expect_results(nh_proc *p, int processes);

/* The standard run: start, READY, `triggers` clones (each waits for its
 * "clone done", then 100 ms; random_max_ms > 0: each after a random pause
 * of 10..random_max_ms ms instead), 300 ms of running, finish, and expect
 * 1 + triggers * clones_per_trigger processes ok. */
void nh_run_clones(const char *name, const struct nh_opts *opts, int triggers,
		   int clones_per_trigger, int random_max_ms);

/* Fail the test with the outputs dumped and the group killed. */
void nh_fail(nh_proc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Print both outputs to the test's stderr (diagnostics). */
void nh_dump(nh_proc *p, const char *why);

/* Kill the process group (SIGKILL), close pipes, free.  Safe to call twice
 * on the list of live processes: nh_cleanup_all() runs at exit and in suite
 * fini hooks so an aborted test leaves nothing behind. */
void nh_free(nh_proc *p);
void nh_cleanup_all(void);

/* Monotonic milliseconds. */
long long nh_now_ms(void);
void nh_sleep_ms(int ms);

#endif
