/* Failure paths: NUWA_FREEZE_POLICY=idle with a busy thread gives up within
 * the timeout, names the thread, and leaves the program's output exactly as
 * without the trigger; a later trigger, once the thread is idle, succeeds.
 * Invalid configuration: one clear error line, libnuwa inert, the program
 * runs as it does without libnuwa. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(fault, .fini = nh_cleanup_all, .timeout = 60);

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* stdout without the RESULT line (it names the pid, which differs per run). */
static char *stdout_body(nh_proc *p)
{
	char *s = malloc(p->out.len + 1), *o = s;
	for (const char *l = p->out.data; *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l + 1) : strlen(l);
		if (strncmp(l, "RESULT ", 7)) {
			memcpy(o, l, len);
			o += len;
		}
		l += len;
	}
	*o = 0;
	return s;
}

/* The stderr line (complete) that contains s, or NULL. */
static char *err_line(nh_proc *p, const char *s)
{
	static char line[1024];
	for (const char *l = p->err.data; *l;) {
		const char *nl = strchr(l, '\n');
		if (!nl)
			break;
		snprintf(line, sizeof line, "%.*s", (int)(nl - l), l);
		if (strstr(line, s))
			return line;
		l = nl + 1;
	}
	return NULL;
}

#define IDLE_ENV ENV("NUWA_FREEZE_POLICY=idle", "NUWA_FREEZE_TIMEOUT_MS=500")

static char *reference_run_of(const char *name, const struct nh_opts *o, int run_ms)
{
	nh_proc *p = nh_start(name, o);
	nh_expect_ready(p);
	nh_pump(p, run_ms);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1);
	char *body = stdout_body(p);
	nh_free(p);
	return body;
}

static char *reference_run(const struct nh_opts *o, int run_ms)
{
	return reference_run_of("fault", o, run_ms);
}

/* Each test runs on the three builds of the scenario (plain, -O2 with
 * _FORTIFY_SOURCE=2 and =3, tests/scenarios/meson.build): the fortified
 * ones block their reader thread in __read_chk. */
static void busy_thread_fails_cleanly(const char *name)
{
	struct nh_opts o = { .env = IDLE_ENV };
	char *ref = reference_run_of(name, &o, 1500);

	nh_proc *p = nh_start(name, &o);
	nh_expect_ready(p);
	if (!nh_wait_err(p, "SPINNER tid=", 1, 2000))
		nh_fail(p, "the spinner did not say its tid");
	int tid = atoi(strstr(p->err.data, "SPINNER tid=") + 12);
	long long t0 = nh_now_ms();
	nh_trigger(p);
	if (!nh_wait_err(p, "freeze failed:", 1, 5000))
		nh_fail(p, "no \"freeze failed:\" within 5 s of the trigger");
	long long took = nh_now_ms() - t0;
	if (took < 450 || took > 500 + 1500)
		nh_fail(p, "the freeze gave up after %lld ms, timeout is 500 ms", took);
	nh_pump(p, 100);
	char *line = err_line(p, "freeze failed:");
	char stid[16];
	snprintf(stid, sizeof stid, "%d", tid);
	if (!line || !strstr(line, "spinner") || !strstr(line, stid))
		nh_fail(p, "the failure does not name the busy thread (spinner, tid %d): %s", tid,
			line ? line : "(no complete line)");
	nh_pump(p, 1500 - (int)took > 0 ? 1500 - (int)took : 0);
	nh_finish(p, NH_FINISH_MS);
	if (nh_count(p->err.data, "clone done:"))
		nh_fail(p, "a clone was made although the freeze failed");
	nh_expect_results(p, 1);
	char *body = stdout_body(p);
	if (strcmp(body, ref))
		nh_fail(p, "stdout differs from the run without trigger:\n--- reference\n%s--- "
			"this run\n%s", ref, body);
	free(body);
	free(ref);
	nh_free(p);
}

Test(fault, idle_policy_busy_thread_fails_cleanly) { busy_thread_fails_cleanly("fault"); }
Test(fault, idle_policy_busy_thread_fails_cleanly_fortify2)
{
	busy_thread_fails_cleanly("fault-fortify2");
}
Test(fault, idle_policy_busy_thread_fails_cleanly_fortify3)
{
	busy_thread_fails_cleanly("fault-fortify3");
}

/* Spinner busy for 1 s: the first trigger fails, one after it succeeds. */
static void later_trigger_succeeds(const char *name)
{
	struct nh_opts o = { .argv = ARGV("1000"),
			     .env = ENV("NUWA_FREEZE_POLICY=idle", "NUWA_FREEZE_TIMEOUT_MS=300") };
	nh_proc *p = nh_start(name, &o);
	nh_expect_ready(p);
	nh_trigger(p);
	if (!nh_wait_err(p, "freeze failed:", 1, 3000))
		nh_fail(p, "no \"freeze failed:\" while the spinner spins");
	nh_pump(p, 1200);
	nh_clone(p, NH_CLONE_MS);
	nh_clone(p, NH_CLONE_MS);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 3);
	nh_free(p);
}

Test(fault, idle_policy_later_trigger_succeeds) { later_trigger_succeeds("fault"); }
Test(fault, idle_policy_later_trigger_succeeds_fortify2)
{
	later_trigger_succeeds("fault-fortify2");
}
Test(fault, idle_policy_later_trigger_succeeds_fortify3)
{
	later_trigger_succeeds("fault-fortify3");
}

/* Bad configuration: run with var=value (NUWA_LOG left at its default). */
static void bad_config(const char *assignment)
{
	struct nh_opts ref_o = { .no_preload = 1 };
	char *ref = reference_run(&ref_o, 300);
	const char *env[] = { "NUWA_LOG", assignment, NULL };   /* "NUWA_LOG": unset */
	struct nh_opts o = { .env = env };
	nh_proc *p = nh_start("fault", &o);
	nh_expect_ready(p);
	nh_pump(p, 300);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1);
	char *body = stdout_body(p);
	if (strcmp(body, ref))
		nh_fail(p, "stdout differs from a run without libnuwa");
	/* stderr: the scenario's own SPINNER line plus exactly one line from libnuwa */
	char var[64], *eq;
	snprintf(var, sizeof var, "%s", assignment);
	eq = strchr(var, '=');
	*eq = 0;
	int nuwa_lines = 0, other = 0;
	const char *errl = NULL;
	for (const char *l = p->err.data; *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (!strncmp(l, "nuwa[", 5)) {
			nuwa_lines++;
			errl = l;
		} else if (strncmp(l, "SPINNER tid=", 12)) {
			other++;
		}
		l += len + (nl != NULL);
	}
	if (nuwa_lines != 1 || other)
		nh_fail(p, "want exactly one libnuwa line on stderr, got %d (+%d other lines)",
			nuwa_lines, other);
	char line[512];
	snprintf(line, sizeof line, "%.*s", (int)strcspn(errl, "\n"), errl);
	if (!strstr(line, var) || !strstr(line, eq + 1))
		nh_fail(p, "the error does not name %s and its value \"%s\": %s", var, eq + 1, line);
	free(body);
	free(ref);
	nh_free(p);
}

Test(bad_config, signal_name) { bad_config("NUWA_SIGNAL=BOGUS"); }
Test(bad_config, signal_number) { bad_config("NUWA_SIGNAL=999"); }
Test(bad_config, signal_uncatchable) { bad_config("NUWA_SIGNAL=SIGKILL"); }
Test(bad_config, signal_rt_overflow) { bad_config("NUWA_SIGNAL=RTMIN+99"); }
Test(bad_config, mode) { bad_config("NUWA_MODE=bogus"); }
Test(bad_config, clones_zero) { bad_config("NUWA_CLONES=0"); }
Test(bad_config, clones_negative) { bad_config("NUWA_CLONES=-2"); }
Test(bad_config, clones_text) { bad_config("NUWA_CLONES=abc"); }
Test(bad_config, clones_trailing) { bad_config("NUWA_CLONES=3x"); }
Test(bad_config, clones_too_many) { bad_config("NUWA_CLONES=100000"); }
Test(bad_config, timeout_text) { bad_config("NUWA_FREEZE_TIMEOUT_MS=abc"); }
Test(bad_config, timeout_negative) { bad_config("NUWA_FREEZE_TIMEOUT_MS=-5"); }
Test(bad_config, timeout_unit) { bad_config("NUWA_FREEZE_TIMEOUT_MS=10s"); }
Test(bad_config, policy) { bad_config("NUWA_FREEZE_POLICY=sometimes"); }
/* A signal the program's ordinary life sends itself would freeze it then. */
Test(bad_config, signal_chld) { bad_config("NUWA_SIGNAL=CHLD"); }
Test(bad_config, signal_alrm) { bad_config("NUWA_SIGNAL=SIGALRM"); }
Test(bad_config, signal_number_of_chld) { bad_config("NUWA_SIGNAL=17"); }
/* No wrap-around: 2^32+1 is not 1. */
Test(bad_config, signal_rt_wraps) { bad_config("NUWA_SIGNAL=RTMIN+4294967297"); }
Test(bad_config, signal_number_wraps) { bad_config("NUWA_SIGNAL=4294967308"); }
Test(bad_config, clones_leading_space) { bad_config("NUWA_CLONES= 3"); }
Test(bad_config, timeout_plus_sign) { bad_config("NUWA_FREEZE_TIMEOUT_MS=+500"); }
Test(bad_config, runtime_dir_relative) { bad_config("NUWA_RUNTIME_DIR=relative/dir"); }

/* A FIFO as the log would block the program at start-up until a reader
 * came (forever): refused. */
Test(bad_config, log_file_fifo)
{
	char path[64], assignment[96];
	snprintf(path, sizeof path, "/tmp/nuwa-fifo-test.%d", (int)getpid());
	unlink(path);
	cr_assert_eq(mkfifo(path, 0600), 0);
	snprintf(assignment, sizeof assignment, "NUWA_LOG_FILE=%s", path);
	bad_config(assignment);
	unlink(path);
}
