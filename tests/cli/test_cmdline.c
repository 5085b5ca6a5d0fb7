/* The `nuwa` command: arguments, help, exit codes, and every verb against
 * mock_template (the real socket code over a stand-in core, whose spawns
 * are real forks). */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_test.h"

static struct ct_bg mock;
static struct ct_out o;
static pid_t spawned[64];
static int nspawned;

static void teardown(void)
{
	for (int i = 0; i < nspawned; i++)
		kill(spawned[i], SIGKILL);
	nspawned = 0;
	ct_kill(&mock);
}

TestSuite(cmdline, .fini = teardown, .timeout = 60);

/* Remember the pids a spawn printed (for cleanup and checks). */
static int collect(const char *out, pid_t *pids, int max)
{
	int n = 0;
	for (const char *p = out; *p && n < max;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || *end != '\n')
			break;
		pids[n++] = (pid_t)v;
		if (nspawned < 64)
			spawned[nspawned++] = (pid_t)v;
		p = end + 1;
	}
	return n;
}

#define EXPECT_USAGE(part, ...) do { \
		ct_nuwa(&o, 5000, __VA_ARGS__, NULL); \
		cr_assert_eq(o.code, 2, "exit %d for usage error, err: %s", o.code, o.err); \
		cr_assert(strstr(o.err, part), "message lacks '%s': %s", part, o.err); \
		cr_assert(strstr(o.err, "--help"), "no hint to --help: %s", o.err); \
		cr_assert_eq(ct_count(o.err, "\n"), 2, "not a one-line error: %s", o.err); \
	} while (0)

Test(cmdline, usage_errors)
{
	ct_setup();
	EXPECT_USAGE("unknown command 'frobnicate'", "frobnicate");
	EXPECT_USAGE("unknown option '--bogus'", "--bogus");
	EXPECT_USAGE("missing PID", "freeze");
	EXPECT_USAGE("missing PID", "status");
	EXPECT_USAGE("missing PID or SOCKET", "spawn");
	EXPECT_USAGE("unexpected argument '2'", "thaw", "1", "2");
	EXPECT_USAGE("-n needs a number from 1 to 1024", "spawn", "-n", "0", "1");
	EXPECT_USAGE("-n needs a number from 1 to 1024", "spawn", "-n", "x", "1");
	EXPECT_USAGE("--timeout needs milliseconds", "freeze", "--timeout", "-5", "1");
	EXPECT_USAGE("unknown option '--timeout'", "status", "--timeout", "5", "1");
	EXPECT_USAGE("unknown option '--json'", "thaw", "--json", "1");
	EXPECT_USAGE("needs a value", "spawn", "1", "--call");
	EXPECT_USAGE("bad --call", "spawn", "--call", "f(int:abc)", "1");
	EXPECT_USAGE("bad --call", "spawn", "--call", "f(int:99999999999)", "1");
	EXPECT_USAGE("bad --call", "spawn", "--call", "f(float:1)", "1");
	EXPECT_USAGE("bad --call", "spawn", "--call", "f(ptr:0x1234)", "1");
	EXPECT_USAGE("bad --call", "spawn", "--call", "f(str:\"open)", "1");
	EXPECT_USAGE("bad --call", "spawn", "--call", "f", "1");
	EXPECT_USAGE("bad --call", "spawn", "--call", "1f()", "1");
	EXPECT_USAGE("neither a PID nor a socket path", "status", "abc");
	EXPECT_USAGE("--mode must be", "run", "--mode", "fast", "--", "/bin/true");
	EXPECT_USAGE("--signal", "run", "--signal", "KILL", "--", "/bin/true");
	EXPECT_USAGE("--log must be", "run", "--log", "loud", "--", "/bin/true");
	EXPECT_USAGE("missing PROG", "run", "--mode", "template");
	EXPECT_USAGE("unexpected argument", "list", "x");
}

Test(cmdline, help_pages)
{
	static const char *const verbs[] = { "run", "freeze", "spawn", "status", "thaw", "stop",
	                                     "list" };
	ct_nuwa(&o, 5000, "--help", NULL);
	cr_assert_eq(o.code, 0);
	cr_assert(strstr(o.out, "Usage: nuwa COMMAND"), "%s", o.out);
	cr_assert(strstr(o.out, "Exit status"), "%s", o.out);
	ct_nuwa(&o, 5000, NULL);
	cr_assert_eq(o.code, 2, "no arguments: exit %d", o.code);
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
		char want[64];
		snprintf(want, sizeof want, "Usage: nuwa %s", verbs[i]);
		ct_nuwa(&o, 5000, verbs[i], "--help", NULL);
		cr_assert_eq(o.code, 0, "%s --help: exit %d", verbs[i], o.code);
		cr_assert(strstr(o.out, want), "%s --help: %s", verbs[i], o.out);
		cr_assert(strstr(o.out, "Exit status"), "%s --help lacks exit status", verbs[i]);
		ct_nuwa(&o, 5000, "help", verbs[i], NULL);
		cr_assert(strstr(o.out, want), "help %s: %s", verbs[i], o.out);
	}
	ct_nuwa(&o, 5000, "--version", NULL);
	cr_assert_eq(o.code, 0);
	cr_assert(strstr(o.out, "nuwa "), "%s", o.out);
}

Test(cmdline, no_such_process)
{
	ct_setup();
	ct_nuwa(&o, 5000, "status", "999999", NULL);
	cr_assert_eq(o.code, 3, "exit %d: %s", o.code, o.err);
	cr_assert(strstr(o.err, "no such process"), "%s", o.err);
	/* pid 1 exists but does not run libnuwa */
	ct_nuwa(&o, 5000, "freeze", "1", NULL);
	cr_assert_eq(o.code, 3, "exit %d: %s", o.code, o.err);
	cr_assert(strstr(o.err, "no libnuwa control socket"), "%s", o.err);
	ct_nuwa(&o, 5000, "spawn", "/nonexistent/x.sock", NULL);
	cr_assert_eq(o.code, 3, "exit %d: %s", o.code, o.err);
	ct_nuwa(&o, 5000, "spawn", "--wait", "/nonexistent/x.sock", NULL);
	cr_assert_eq(o.code, 125, "--wait: nuwa's own failure must be 125, got %d", o.code);
}

Test(cmdline, run_exec_errors)
{
	ct_setup();
	ct_nuwa(&o, 5000, "run", "--", "/nonexistent/prog", NULL);
	cr_assert_eq(o.code, 127, "exit %d: %s", o.code, o.err);
	ct_nuwa(&o, 5000, "run", "--", "/etc/passwd", NULL);
	cr_assert_eq(o.code, 126, "exit %d: %s", o.code, o.err);
	ct_nuwa(&o, 5000, "run", "--lib", "/nonexistent.so", "--", "/bin/true", NULL);
	cr_assert_eq(o.code, 125, "exit %d: %s", o.code, o.err);
}

/* nuwa run sets the environment and preloads libnuwa by absolute path,
 * from any directory. */
Test(cmdline, run_sets_environment)
{
	ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--mode", "snapshot", "--signal",
	                       "SIGUSR1", "--log", "error", "--freeze-on-idle", "250", "--",
	                       "/usr/bin/env", NULL };
	/* from another directory, through a relative path to nuwa */
	char cwd[4096];
	cr_assert(getcwd(cwd, sizeof cwd));
	cr_assert_eq(chdir("/"), 0);
	ct_run(&o, argv, NULL, 10000);
	cr_assert_eq(chdir(cwd), 0);
	cr_assert_eq(o.code, 0, "%s", o.err);
	cr_assert(strstr(o.out, "NUWA_MODE=snapshot\n"), "%s", o.out);
	cr_assert(strstr(o.out, "NUWA_SIGNAL=SIGUSR1\n"), "%s", o.out);
	cr_assert(strstr(o.out, "NUWA_LOG=error\n"), "%s", o.out);
	cr_assert(strstr(o.out, "NUWA_FREEZE_ON_IDLE_MS=250\n"), "%s", o.out);
	char *pre = strstr(o.out, "LD_PRELOAD=");
	cr_assert(pre, "%s", o.out);
	pre += 11;
	/* A sanitized build: its runtime first, then libnuwa (meson.build). */
	const char *first = getenv("NUWA_PRELOAD_FIRST");
	if (first && *first) {
		cr_assert(!strncmp(pre, first, strlen(first)) && pre[strlen(first)] == ' ',
		          "LD_PRELOAD does not start with NUWA_PRELOAD_FIRST (%s): %s", first, pre);
		pre += strlen(first) + 1;
	}
	cr_assert_eq(pre[0], '/', "LD_PRELOAD is not absolute: %s", pre);
	char lib[4096];
	sscanf(pre, "%4095s", lib);
	cr_assert(strstr(lib, "libnuwa.so"), "%s", lib);
	cr_assert_eq(access(lib, R_OK), 0, "%s does not exist", lib);
}

/* ---- verbs against the mock -------------------------------------------------- */

static pid_t start_mock(char *pidstr, size_t len)
{
	ct_setup();
	char sock[256];
	pid_t pid = ct_mock(&mock, NULL, sock, sizeof sock);
	cr_assert_gt(pid, 0, "%s", mock.buf);
	snprintf(pidstr, len, "%d", pid);
	return pid;
}

Test(cmdline, states_and_errors)
{
	char p[32];
	pid_t pid = start_mock(p, sizeof p);
	ct_nuwa(&o, 5000, "spawn", p, NULL);
	cr_assert_eq(o.code, 1, "spawn while running: exit %d", o.code);
	cr_assert(strstr(o.err, "not a template"), "%s", o.err);
	ct_nuwa(&o, 5000, "thaw", p, NULL);
	cr_assert_eq(o.code, 1);
	ct_nuwa(&o, 5000, "stop", p, NULL);
	cr_assert_eq(o.code, 1);
	cr_assert(ct_alive(pid), "stop while running killed it");

	ct_nuwa(&o, 5000, "freeze", p, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	cr_assert(strstr(o.out, "frozen, template ready"), "%s", o.out);
	cr_assert(strstr(o.out, "idle in poll"), "freeze report lacks the threads: %s", o.out);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	cr_assert_eq(o.code, 1);
	cr_assert(strstr(o.err, "already a template"), "%s", o.err);

	ct_nuwa(&o, 5000, "status", "--json", p, NULL);
	cr_assert_eq(o.code, 0);
	cr_assert(strstr(o.out, "\"state\":\"template\""), "%s", o.out);
	ct_nuwa(&o, 5000, "list", NULL);
	cr_assert_eq(o.code, 0);
	cr_assert(strstr(o.out, p) && strstr(o.out, "template"), "%s", o.out);

	ct_nuwa(&o, 5000, "thaw", p, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	ct_nuwa(&o, 5000, "status", p, NULL);
	cr_assert(strstr(o.out, "state running"), "%s", o.out);
}

Test(cmdline, freeze_failure_reported)
{
	ct_setup();
	char sock[256], p[32];
	pid_t pid = ct_mock(&mock, (const char *const[]){ "MOCK_FREEZE_FAIL=1", NULL }, sock,
	                    sizeof sock);
	snprintf(p, sizeof p, "%d", pid);
	ct_nuwa(&o, 5000, "freeze", "--timeout", "50", p, NULL);
	cr_assert_eq(o.code, 1);
	cr_assert(strstr(o.err, "freeze failed") && strstr(o.err, "stayed busy for 50 ms"),
	          "%s", o.err);
}

Test(cmdline, spawn_children)
{
	char p[32];
	pid_t pid = start_mock(p, sizeof p);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	ct_nuwa(&o, 10000, "spawn", "-n", "3", p, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	pid_t kids[8];
	cr_assert_eq(collect(o.out, kids, 8), 3, "%s", o.out);
	for (int i = 0; i < 3; i++) {
		cr_assert(ct_alive(kids[i]));
		/* each child runs its own control socket, in the running state */
		char k[32];
		snprintf(k, sizeof k, "%d", kids[i]);
		for (int t = 0; t < 100; t++) {
			ct_nuwa(&o, 5000, "status", k, NULL);
			if (o.code == 0)
				break;
			ct_sleep_ms(20);
		}
		cr_assert_eq(o.code, 0, "child %d: %s", kids[i], o.err);
		cr_assert(strstr(o.out, "state running"), "%s", o.out);
	}
	ct_nuwa(&o, 5000, "status", p, NULL);
	cr_assert(strstr(o.out, "spawned children running: 3"), "%s", o.out);
	cr_assert(ct_expect(&mock, "MOCK CHILD", 1000));
	(void)pid;
}

Test(cmdline, spawn_call_types)
{
	char p[32];
	start_mock(p, sizeof p);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	ct_nuwa(&o, 10000, "spawn", "--call",
	        "mock_record(int:-42, long:0x7fffffffffff, double:-2.5e-3, str:\"a, \\\"b\\\"\\n\", "
	        "ptr:null)", "--call", "mock_record( int : 7 , long:-1, double:inf, str: bare text ,"
	        "ptr:NULL)", p, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	pid_t kid;
	cr_assert_eq(collect(o.out, &kid, 1), 1);
	char want[256];
	snprintf(want, sizeof want, "CALL mock_record pid=%d i=-42 l=140737488355327 d=-0.0025 "
	         "s=[a, \"b\"\n] p=null", kid);
	cr_assert(ct_expect(&mock, want, 5000), "missing [%s] in [%s]", want, mock.buf);
	snprintf(want, sizeof want, "CALL mock_record pid=%d i=7 l=-1 d=inf s=[bare text] p=null",
	         kid);
	cr_assert(ct_expect(&mock, want, 5000), "missing [%s] in [%s]", want, mock.buf);
	/* in order */
	cr_assert_lt(strstr(mock.buf, "i=-42"), strstr(mock.buf, "i=7 "));
}

Test(cmdline, spawn_call_errors_make_no_child)
{
	char p[32];
	start_mock(p, sizeof p);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	ct_nuwa(&o, 5000, "spawn", "-n", "2", "--call", "mock_record(int:1)", "--call",
	        "no_such_function_anywhere(int:1)", p, NULL);
	cr_assert_eq(o.code, 1, "%s", o.err);
	cr_assert(strstr(o.err, "unknown symbol 'no_such_function_anywhere'"), "%s", o.err);
	ct_nuwa(&o, 5000, "spawn", "--call", "mock_data_object()", p, NULL);
	cr_assert_eq(o.code, 1);
	cr_assert(strstr(o.err, "is not a function"), "%s", o.err);
	ct_nuwa(&o, 5000, "status", p, NULL);
	cr_assert(strstr(o.out, "spawned children running: 0"), "%s", o.out);
	cr_assert_eq(ct_count(mock.buf, "MOCK CHILD"), 0);
	cr_assert_eq(ct_count(mock.buf, "CALL"), 0);
}

Test(cmdline, spawn_stdio_wait_exit_code)
{
	char p[32];
	start_mock(p, sizeof p);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	ct_nuwa(&o, 10000, "spawn", "--stdio", "--wait", "--call", "puts(str:hello from the child)",
	        "--call", "fflush(ptr:null)", "--call", "exit(int:7)", p, NULL);
	cr_assert_eq(o.code, 7, "exit %d, err %s", o.code, o.err);
	cr_assert(strstr(o.out, "hello from the child\n"), "child output not on our stdout: %s",
	          o.out);
	cr_assert_eq(ct_count(mock.buf, "hello from the child"), 0);
	/* killed by a signal: 128 + N */
	ct_nuwa(&o, 10000, "spawn", "--wait", "--call", "abort()", p, NULL);
	cr_assert_eq(o.code, 128 + SIGABRT, "exit %d, err %s", o.code, o.err);
	/* several children: the first failure */
	ct_nuwa(&o, 10000, "spawn", "-n", "3", "--wait", "--call", "exit(int:0)", p, NULL);
	cr_assert_eq(o.code, 0, "exit %d, err %s", o.code, o.err);
}

Test(cmdline, spawn_wait_forwards_sigint)
{
	char p[32];
	start_mock(p, sizeof p);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	struct ct_bg w;
	const char *argv[] = { ct_path("NUWA_CLI"), "spawn", "--stdio", "--wait", p, NULL };
	ct_start(&w, argv, NULL, 1);
	cr_assert(ct_expect(&w, "MOCK CHILD", 5000), "child did not start: %s", w.buf);
	int kid = 0;
	sscanf(strstr(w.buf, "MOCK CHILD"), "MOCK CHILD %d", &kid);
	cr_assert_gt(kid, 0);
	kill(w.pid, SIGINT);
	int code = ct_wait(&w, 5000);
	cr_assert_eq(code, 128 + SIGINT, "nuwa spawn exited %d: %s", code, w.buf);
	cr_assert(!ct_alive(kid), "the child survived SIGINT");
	ct_kill(&w);
}

Test(cmdline, stop_leaves_children_running)
{
	char p[32];
	pid_t pid = start_mock(p, sizeof p);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	ct_nuwa(&o, 5000, "spawn", "-n", "2", p, NULL);
	pid_t kids[2];
	cr_assert_eq(collect(o.out, kids, 2), 2);
	struct ct_bg w;
	const char *argv[] = { ct_path("NUWA_CLI"), "spawn", "--wait", p, NULL };
	ct_start(&w, argv, NULL, 1);
	cr_assert(ct_expect(&w, "\n", 5000));
	collect(w.buf, kids, 1);
	char sock[300];
	snprintf(sock, sizeof sock, "%s/%s.sock", ct_rundir(), p);
	ct_nuwa(&o, 5000, "stop", p, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	cr_assert(strstr(o.out, "3 spawned children keep running"), "%s", o.out);
	cr_assert_eq(ct_wait(&mock, 5000), 0, "the template did not exit 0");
	cr_assert_eq(ct_wait(&w, 5000), 125, "the waiting client: %s", w.buf);
	cr_assert(ct_expect(&w, "stopped", 2000), "%s", w.buf);
	for (int i = 0; i < nspawned; i++)
		cr_assert(ct_alive(spawned[i]), "child %d died with its template", spawned[i]);
	struct stat st;
	cr_assert_neq(lstat(sock, &st), 0, "the socket file was left behind");
	ct_kill(&w);
	(void)pid;
}

Test(cmdline, spawn_partial_failure)
{
	ct_setup();
	char sock[256], p[32];
	pid_t pid = ct_mock(&mock, (const char *const[]){ "MOCK_SPAWN_FAIL_AFTER=2", NULL }, sock,
	                    sizeof sock);
	snprintf(p, sizeof p, "%d", pid);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	ct_nuwa(&o, 10000, "spawn", "-n", "4", p, NULL);
	cr_assert_eq(o.code, 1);
	pid_t kids[4];
	cr_assert_eq(collect(o.out, kids, 4), 2, "%s", o.out);
	cr_assert(strstr(o.err, "after 2 children"), "%s", o.err);
}

Test(cmdline, snapshot_redirect)
{
	ct_setup();
	char sock[256], p[32];
	pid_t pid = ct_mock(&mock, (const char *const[]){ "MOCK_MODE=snapshot", NULL }, sock,
	                    sizeof sock);
	snprintf(p, sizeof p, "%d", pid);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	int tp = 0;
	char *t = strstr(o.out, "template is pid ");
	cr_assert(t && sscanf(t, "template is pid %d", &tp) == 1 && tp != pid, "%s", o.out);
	spawned[nspawned++] = tp;
	ct_nuwa(&o, 5000, "status", p, NULL);
	cr_assert(strstr(o.out, "state running"), "the original must run on: %s", o.out);
	ct_nuwa(&o, 5000, "list", NULL);
	char note[64];
	snprintf(note, sizeof note, "(template: pid %d)", tp);
	cr_assert(strstr(o.out, note), "%s", o.out);
	/* spawning from the original is redirected to the template */
	ct_nuwa(&o, 5000, "spawn", "-n", "2", p, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	cr_assert(strstr(o.err, "snapshot template"), "%s", o.err);
	pid_t kids[2];
	cr_assert_eq(collect(o.out, kids, 2), 2, "%s", o.out);
	char tps[32];
	snprintf(tps, sizeof tps, "%d", tp);
	ct_nuwa(&o, 5000, "status", tps, NULL);
	cr_assert(strstr(o.out, "state template") && strstr(o.out, "spawned children running: 2"),
	          "%s", o.out);
	ct_nuwa(&o, 5000, "status", p, NULL);
	cr_assert(strstr(o.out, "spawned children running: 0"), "%s", o.out);
}

Test(cmdline, clone_mode_freeze)
{
	ct_setup();
	char sock[256], p[32];
	pid_t pid = ct_mock(&mock, (const char *const[]){ "MOCK_MODE=clone", "MOCK_CLONES=2", NULL },
	                    sock, sizeof sock);
	snprintf(p, sizeof p, "%d", pid);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	cr_assert_eq(o.code, 0, "%s", o.err);
	cr_assert(strstr(o.out, "cloned 2 times"), "%s", o.out);
	cr_assert_eq(ct_count(o.out, "clone "), 2, "%s", o.out);
	int k = 0;
	sscanf(strstr(o.out, "clone "), "clone %d", &k);
	spawned[nspawned++] = k;
	char ks[32];
	snprintf(ks, sizeof ks, "%d", k);
	for (int t = 0; t < 100; t++) {
		ct_nuwa(&o, 5000, "status", ks, NULL);
		if (o.code == 0)
			break;
		ct_sleep_ms(20);
	}
	cr_assert_eq(o.code, 0, "a clone has no socket of its own: %s", o.err);
	ct_nuwa(&o, 5000, "status", p, NULL);
	cr_assert(strstr(o.out, "state running"), "%s", o.out);
}

/* Several clients spawn and wait at once: each gets its own children's
 * exit statuses, none of another's. */
Test(cmdline, concurrent_spawn_wait)
{
	char p[32];
	start_mock(p, sizeof p);
	ct_nuwa(&o, 5000, "freeze", p, NULL);
	static struct ct_bg w[8];
	char calls[8][32];
	for (int i = 0; i < 8; i++) {
		snprintf(calls[i], sizeof calls[i], "exit(int:%d)", 10 + i);
		const char *argv[] = { ct_path("NUWA_CLI"), "spawn", "-n", "3", "--wait", "--call",
		                       calls[i], p, NULL };
		ct_start(&w[i], argv, NULL, 1);
	}
	for (int i = 0; i < 8; i++) {
		int code = ct_wait(&w[i], 20000);
		ct_expect(&w[i], "\1", 100);
		cr_assert_eq(code, 10 + i, "client %d exited %d: %s", i, code, w[i].buf);
		cr_assert_eq(ct_count(w[i].buf, "\n"), 3, "client %d: %s", i, w[i].buf);
		ct_kill(&w[i]);
	}
	ct_nuwa(&o, 5000, "status", p, NULL);
	cr_assert(strstr(o.out, "spawned children running: 0"), "%s", o.out);
}
