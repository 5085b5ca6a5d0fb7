/* Robustness (issue 12): a frozen template obeys SIGTERM, SIGINT and SIGHUP;
 * the program's own fork() children leave no socket file; slow clients
 * cannot lock the control socket; a --call runs with the program's signal
 * mask; nothing on the frozen path takes a lock a parked thread can hold;
 * injected failures (NUWA_TEST_FAULT) end with a clear error and leave the
 * template intact.  The program is robust_scn under `nuwa run`. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_test.h"

#define CTL_MAX_CONN 63   /* ctl/ctlsock.h: clients served at once */

static struct ct_bg prog;
static struct ct_out o;
static const char *dir;
static pid_t kids[64];
static int nkids;
static char P[32];

static void teardown(void)
{
	for (int i = 0; i < nkids; i++)
		kill(kids[i], SIGKILL);
	nkids = 0;
	ct_kill(&prog);
}

TestSuite(signals, .fini = teardown, .timeout = 120);
TestSuite(sockets, .fini = teardown, .timeout = 400);
TestSuite(call, .fini = teardown, .timeout = 240);
TestSuite(fault, .fini = teardown, .timeout = 240);

static void dump(void)
{
	ct_expect(&prog, "\1", 300);   /* whatever it printed so far */
	fprintf(stderr, "---- program output ----\n%s\n------------------------\n", prog.buf);
}

#define CHECK(cond, ...) do { if (!(cond)) { dump(); cr_assert_fail(__VA_ARGS__); } } while (0)

/* `nuwa run --mode MODE -- robust_scn DIR ARGS...` with extra environment;
 * waits for READY.  P is the pid as a string. */
static const char *log_level = "info";
static int ready_ms = 20000;

static pid_t start_env(const char *mode, const char *const *env, const char *a1, const char *a2,
                       const char *a3)
{
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--mode", mode, "--log", log_level, "--lib",
	                       ct_path("NUWA_LIB"), "--", ct_path("NUWA_ROBUST_SCN"), dir,
	                       a1, a2, a3, NULL };
	ct_start(&prog, argv, env, 1);
	snprintf(P, sizeof P, "%d", prog.pid);
	CHECK(ct_expect(&prog, "READY", ready_ms), "robust_scn not ready");
	return prog.pid;
}

static pid_t start(const char *a1, const char *a2)
{
	return start_env("template", NULL, a1, a2, NULL);
}

static unsigned read_seq(pid_t pid, unsigned *gaps)
{
	char path[512], buf[256];
	snprintf(path, sizeof path, "%s/%d.state", dir, pid);
	FILE *f = fopen(path, "re");
	unsigned seq = 0, g = 0;
	int p = 0;
	if (f) {
		if (!fgets(buf, sizeof buf, f) ||
		    sscanf(buf, "pid=%d seq=%u gaps=%u", &p, &seq, &g) != 3 || p != pid)
			seq = 0;
		fclose(f);
	}
	if (gaps)
		*gaps = g;
	return seq;
}

/* pid makes progress past `above` without losing pipe data. */
static unsigned progress(pid_t pid, unsigned above)
{
	long long deadline = ct_now_ms() + 15000;
	unsigned s, gaps = 0;
	while ((s = read_seq(pid, &gaps)) <= above && ct_now_ms() < deadline) {
		ct_drain(&prog);
		ct_sleep_ms(10);
	}
	CHECK(s > above, "process %d made no progress past %u", pid, above);
	CHECK(gaps == 0, "process %d lost pipe data (%u gaps)", pid, gaps);
	return s;
}

static void freeze(void)
{
	ct_nuwa(&o, 20000, "freeze", P, NULL);
	CHECK(o.code == 0, "freeze: exit %d: %s", o.code, o.err);
}

static pid_t spawn1(void)
{
	ct_nuwa(&o, 20000, "spawn", P, NULL);
	CHECK(o.code == 0, "spawn: exit %d: %s", o.code, o.err);
	pid_t k = (pid_t)atol(o.out);
	CHECK(k > 0, "no pid: %s", o.out);
	kids[nkids++] = k;
	return k;
}

static void expect_state(const char *state)
{
	char want[64];
	snprintf(want, sizeof want, "state %s", state);
	ct_nuwa(&o, 10000, "status", P, NULL);
	CHECK(o.code == 0 && strstr(o.out, want), "status: want '%s': exit %d %s %s", want, o.code,
	      o.out, o.err);
}

static int file_has(const char *suffix, pid_t pid, const char *text, int timeout_ms)
{
	char path[512], buf[256];
	snprintf(path, sizeof path, "%s/%d.%s", dir, pid, suffix);
	long long deadline = ct_now_ms() + timeout_ms;
	do {
		FILE *f = fopen(path, "re");
		if (f) {
			size_t n = fread(buf, 1, sizeof buf - 1, f);
			buf[n] = 0;
			fclose(f);
			if (strstr(buf, text))
				return 1;
		}
		ct_sleep_ms(10);
	} while (ct_now_ms() < deadline);
	return 0;
}

static int sockets_in_rundir(void)
{
	int n = 0;
	DIR *d = opendir(ct_rundir());
	for (struct dirent *e; d && (e = readdir(d));)
		n += strstr(e->d_name, ".sock") != NULL;
	if (d)
		closedir(d);
	return n;
}

static int socket_exists(pid_t pid)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, "%s/%d.sock", ct_rundir(), pid);
	return lstat(path, &st) == 0;
}

/* CPU ticks (utime + stime) of the thread named comm in pid, or -1. */
static long thread_ticks(pid_t pid, const char *comm)
{
	char path[384], buf[512];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	long ticks = -1;
	for (struct dirent *e; d && (e = readdir(d));) {
		snprintf(path, sizeof path, "/proc/%d/task/%s/stat", pid, e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		char *c = strchr(buf, '('), *r = strrchr(buf, ')');
		if (!c || !r || (size_t)(r - c - 1) != strlen(comm) || strncmp(c + 1, comm, strlen(comm)))
			continue;
		unsigned long ut, st;
		if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
			ticks = (long)(ut + st);
	}
	if (d)
		closedir(d);
	return ticks;
}

/* ---- 1. a frozen template ends on SIGTERM, SIGINT, SIGHUP as the program would ---- */

static const int term_sigs[] = { SIGTERM, SIGINT, SIGHUP };

/* Default action: the template ends with the signal, names the spawned
 * children that keep running, and leaves no socket file. */
Test(signals, default_action_ends_template)
{
	for (int i = 0; i < 3; i++) {
		int sig = term_sigs[i];
		start("sig=dfl", NULL);
		progress(prog.pid, 20);
		freeze();
		pid_t a = spawn1(), b = spawn1();
		progress(a, 20);
		kill(prog.pid, sig);
		int code = ct_wait(&prog, 10000);
		CHECK(code == 128 + sig, "template exited %d after signal %d (want %d)", code, sig,
		      128 + sig);
		char want[64];
		snprintf(want, sizeof want, " %d", a);
		CHECK(ct_expect(&prog, "keep running", 2000) && strstr(prog.buf, want),
		      "no warning naming child %d", a);
		snprintf(want, sizeof want, " %d", b);
		CHECK(strstr(prog.buf, want), "the warning does not name child %d", b);
		CHECK(!socket_exists(prog.pid), "the template's socket file is left");
		CHECK(ct_alive(a) && ct_alive(b), "spawned children did not survive the template");
		progress(b, read_seq(b, NULL));
		teardown();
	}
}

/* Ignored: nothing happens, the template serves on and does not spin. */
Test(signals, ignored_signal_changes_nothing)
{
	start("sig=ign", NULL);
	progress(prog.pid, 20);
	freeze();
	for (int i = 0; i < 3; i++)
		kill(prog.pid, term_sigs[i]);
	long t0 = thread_ticks(prog.pid, "nuwa-control");
	ct_sleep_ms(1000);
	long t1 = thread_ticks(prog.pid, "nuwa-control");
	CHECK(ct_alive(prog.pid), "the template died of an ignored signal");
	CHECK(t0 >= 0 && t1 - t0 < 20, "the control thread used %ld ticks in 1 s (spinning)",
	      t1 - t0);
	expect_state("template");
	pid_t k = spawn1();
	progress(k, 20);
	ct_nuwa(&o, 10000, "thaw", P, NULL);
	CHECK(o.code == 0, "thaw: %s", o.err);
	progress(prog.pid, read_seq(prog.pid, NULL));
}

/* A handler: the template thaws and the program's handler runs (the
 * program then returns from main). */
Test(signals, handler_runs_after_thaw)
{
	for (int i = 0; i < 3; i++) {
		int sig = term_sigs[i];
		start("sig=handler", NULL);
		progress(prog.pid, 20);
		freeze();
		pid_t k = spawn1();
		kill(prog.pid, sig);
		char want[32];
		snprintf(want, sizeof want, "handled %d", sig);
		CHECK(file_has("sig", prog.pid, want, 10000), "the handler of %d did not run", sig);
		int code = ct_wait(&prog, 10000);
		CHECK(code == 0, "program exited %d after its handler (want 0)", code);
		CHECK(ct_alive(k), "the spawned child died with the template");
		CHECK(!file_has("sig", k, "handled", 100), "the child got the template's signal");
		teardown();
	}
}

/* Blocked in every thread and taken by sigwait(): the program is thawed and
 * its sigwait() thread gets the signal. */
Test(signals, sigwait_thread_gets_it_after_thaw)
{
	start("sig=block", NULL);
	progress(prog.pid, 20);
	freeze();
	kill(prog.pid, SIGTERM);
	CHECK(file_has("sig", prog.pid, "waited 15", 10000), "sigwait() did not get SIGTERM");
	CHECK(ct_wait(&prog, 10000) == 0, "program did not exit 0");
}

/* ---- 2. the program's own fork() children leave no socket file ------------------- */

Test(sockets, fork_children_leave_no_socket, .timeout = 400)
{
	log_level = "warn";   /* 1000 children: not a line each */
	ready_ms = 200000;    /* 1000 forks on a loaded machine */
	pid_t pid = start_env("template", NULL, "forks=1000", NULL, NULL);
	CHECK(strstr(prog.buf, "REAPED 1000"), "not every child was reaped");
	long long deadline = ct_now_ms() + 60000;
	while (sockets_in_rundir() != 1 && ct_now_ms() < deadline)
		ct_sleep_ms(50);
	int n = sockets_in_rundir();
	CHECK(n == 1 && socket_exists(pid), "%d socket files in the runtime directory after "
	      "1000 fork children ended (want only the program's)", n);
	ct_nuwa(&o, 10000, "status", P, NULL);
	CHECK(o.code == 0 && strstr(o.out, "state running"), "status: %s", o.err);
}

/* ---- 3. slow clients cannot lock others out ---------------------------------------- */

struct trickle { const char *sock; int fds[CTL_MAX_CONN]; volatile int stop; int sent; };

static void *trickler(void *arg)
{
	struct trickle *t = arg;
	char req[64];
	struct ctl_buf b;
	ctl_begin(&b, req, sizeof req, CTL_REQ_HELLO);
	long len = ctl_end(&b);
	for (int k = 0; !t->stop && k < len - 1; k++) {
		for (int i = 0; i < CTL_MAX_CONN; i++)
			if (t->fds[i] >= 0)
				(void)!send(t->fds[i], req + k, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		t->sent = k + 1;
		for (int w = 0; w < 100 && !t->stop; w++)
			ct_sleep_ms(10);
	}
	return NULL;
}

Test(sockets, tricklers_do_not_lock_out)
{
	pid_t pid = start("sig=dfl", NULL);
	progress(pid, 20);
	freeze();
	static struct trickle t;
	char sock[400];
	snprintf(sock, sizeof sock, "%s/%d.sock", ct_rundir(), pid);
	t.sock = sock;
	t.stop = 0;
	for (int i = 0; i < CTL_MAX_CONN; i++)
		CHECK((t.fds[i] = ct_connect(sock)) >= 0, "connect %d: %s", i, strerror(-t.fds[i]));
	pthread_t th;
	pthread_create(&th, NULL, trickler, &t);
	while (t.sent < 2)
		ct_sleep_ms(10);
	long long t0 = ct_now_ms();
	ct_nuwa(&o, 10000, "status", P, NULL);
	CHECK(o.code == 0 && strstr(o.out, "state template"), "status with 63 tricklers: exit %d "
	      "after %lld ms: %s", o.code, ct_now_ms() - t0, o.err);
	/* a request must be complete within its deadline: the tricklers get an
	 * error and are closed after it, whoever else comes */
	int closed = 0;
	long long deadline = ct_now_ms() + 20000;
	while (closed < CTL_MAX_CONN - 1 && ct_now_ms() < deadline) {
		closed = 0;
		for (int i = 0; i < CTL_MAX_CONN; i++) {
			char c;
			ssize_t r = recv(t.fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK);
			/* an error reply or EOF: the server gave up on it */
			closed += r >= 0 || errno != EAGAIN;
		}
		ct_sleep_ms(50);
	}
	CHECK(closed >= CTL_MAX_CONN - 1, "only %d of %d tricklers were closed", closed,
	      CTL_MAX_CONN);
	t.stop = 1;
	pthread_join(th, NULL);
	/* and a new table full of slow requests does not keep `nuwa stop` out */
	for (int i = 0; i < CTL_MAX_CONN; i++) {
		close(t.fds[i]);
		t.fds[i] = ct_connect(sock);
		CHECK(t.fds[i] >= 0 && send(t.fds[i], "NU", 2, MSG_NOSIGNAL) == 2, "trickler %d", i);
	}
	ct_sleep_ms(200);
	ct_nuwa(&o, 10000, "stop", P, NULL);
	CHECK(o.code == 0, "stop with 63 slow clients: exit %d: %s", o.code, o.err);
	for (int i = 0; i < CTL_MAX_CONN; i++)
		close(t.fds[i]);
	CHECK(ct_wait(&prog, 10000) == 0, "the template did not stop");
}

/* ---- 4. --call runs with the program's signal mask ---------------------------------- */

static int spawn_wait_call(const char *call)
{
	ct_nuwa(&o, 20000, "spawn", "--wait", "--call", call, P, NULL);
	return o.code;
}

Test(call, signals_raised_by_a_call_kill_the_child)
{
	start("sig=dfl", NULL);
	progress(prog.pid, 20);
	freeze();
	int c = spawn_wait_call("raise(int:11)");
	CHECK(c == 128 + SIGSEGV, "--call raise(int:11): exit %d (want 139): %s", c, o.err);
	c = spawn_wait_call("abort()");
	CHECK(c == 128 + SIGABRT, "--call abort(): exit %d (want 134): %s", c, o.err);
	c = spawn_wait_call("robust_kill_self(int:10)");
	CHECK(c == 128 + SIGUSR1, "--call kill(getpid(), SIGUSR1): exit %d (want 138): %s", c,
	      o.err);
	c = spawn_wait_call("raise(int:15)");
	CHECK(c == 128 + SIGTERM, "--call raise(int:15): exit %d (want 143): %s", c, o.err);
	expect_state("template");
	pid_t k = spawn1();
	progress(k, 20);
}

/* ---- 5. nothing on the frozen path takes a lock a parked thread holds ---------------- */

Test(call, no_deadlock_with_threads_parked_in_malloc_and_dlopen, .timeout = 300)
{
	char dl[600];
	snprintf(dl, sizeof dl, "dlopen=%s", ct_path("NUWA_ROBUST_MOD"));
	const char *env[] = { "MALLOC_ARENA_MAX=1", "NUWA_FREEZE_POLICY=any",
	                      "NUWA_FREEZE_TIMEOUT_MS=20", NULL };
	start_env("template", env, "malloc", dl, NULL);
	progress(prog.pid, 20);
	for (int round = 0; round < 12; round++) {
		freeze();
		ct_nuwa(&o, 10000, "spawn", "--call", "robust_tag(str:tagged)", P, NULL);
		CHECK(o.code == 0, "round %d: spawn --call with a valid name: exit %d: %s", round,
		      o.code, o.err);
		pid_t k = (pid_t)atol(o.out);
		CHECK(k > 0, "round %d: no pid", round);
		CHECK(file_has("call", k, "tagged", 10000), "round %d: the call did not run", round);
		kill(k, SIGKILL);
		ct_nuwa(&o, 10000, "spawn", "--call", "robust_tga(str:x)", P, NULL);
		CHECK(o.code == 1 && strstr(o.err, "unknown symbol 'robust_tga'"),
		      "round %d: misspelled name: exit %d: %s", round, o.code, o.err);
		ct_nuwa(&o, 10000, "spawn", "--call", "no_such_function_at_all_xyz()", P, NULL);
		CHECK(o.code == 1, "round %d: unknown name: exit %d: %s", round, o.code, o.err);
		ct_nuwa(&o, 10000, "spawn", "--call", "environ()", P, NULL);
		CHECK(o.code == 1 && strstr(o.err, "not a function"), "round %d: data object: exit "
		      "%d: %s", round, o.code, o.err);
		ct_nuwa(&o, 10000, "thaw", P, NULL);
		CHECK(o.code == 0, "round %d: thaw: %s", round, o.err);
	}
	progress(prog.pid, read_seq(prog.pid, NULL));
}

/* ---- 6. fault injection --------------------------------------------------------------- */

/* After a failure: the template is still a template, a normal spawn works,
 * the child and the template (thawed) run with their pipes intact. */
static void expect_intact(void)
{
	expect_state("template");
	pid_t k = spawn1();
	progress(k, 20);
}

static pid_t start_fault(const char *spec)
{
	char env[256];
	snprintf(env, sizeof env, "NUWA_TEST_FAULT=%s", spec);
	const char *e[] = { env, NULL };
	pid_t pid = start_env("template", e, "sig=dfl", NULL, NULL);
	progress(pid, 20);
	return pid;
}

Test(fault, clone_fails)
{
	const char *specs[] = { "clone:EAGAIN", "clone:ENOMEM", "clone:EAGAIN:2" };
	const char *msgs[] = { "Resource temporarily unavailable", "Cannot allocate memory",
	                       "Resource temporarily unavailable" };
	for (int i = 0; i < 3; i++) {
		start_fault(specs[i]);
		freeze();
		for (int k = 0; k < (i == 2 ? 2 : 1); k++) {   /* :COUNT spawns fail */
			ct_nuwa(&o, 20000, "spawn", P, NULL);
			CHECK(o.code == 1 && strstr(o.err, msgs[i]), "spawn %d with %s: exit %d: %s",
			      k, specs[i], o.code, o.err);
		}
		expect_intact();
		teardown();
	}
}

/* Failures inside the child, before the program runs there: the child says
 * why and exits 127 before it is ready, the spawn fails with that reason;
 * the template is not affected. */
Test(fault, child_steps_fail)
{
	const char *specs[] = { "resume:EAGAIN", "resume:ENOMEM", "control:EAGAIN",
	                        "fdremap.pipe:EMFILE", "fdremap.pipe:ENOMEM",
	                        "fdremap.pipe:EAGAIN", "stdio:EMFILE" };
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		start_fault(specs[i]);
		freeze();
		if (!strncmp(specs[i], "stdio:", 6))
			ct_nuwa(&o, 20000, "spawn", "--stdio", P, NULL);
		else
			ct_nuwa(&o, 20000, "spawn", P, NULL);
		CHECK(o.code == 1 && strstr(o.err, "status 127 before it was ready"),
		      "spawn with %s: exit %d: %s", specs[i], o.code, o.err);
		CHECK(ct_expect(&prog, "injected", 5000), "%s: no error logged", specs[i]);
		expect_intact();
		ct_nuwa(&o, 10000, "thaw", P, NULL);
		CHECK(o.code == 0, "thaw: %s", o.err);
		progress(prog.pid, read_seq(prog.pid, NULL));
		teardown();
	}
}

/* A failure while the template takes its snapshot: the freeze fails, the
 * program runs on exactly as before, and the next freeze works. */
Test(fault, snapshot_fails)
{
	const char *specs[] = { "fdremap.drain:ENOMEM", "fdremap.drain:EMFILE" };
	for (int i = 0; i < 2; i++) {
		start_fault(specs[i]);
		ct_nuwa(&o, 20000, "freeze", P, NULL);
		CHECK(o.code == 1 && strstr(o.err, "fdremap"), "freeze with %s: exit %d: %s",
		      specs[i], o.code, o.err);
		CHECK(ct_expect(&prog, "injected", 5000), "%s: not logged", specs[i]);
		progress(prog.pid, read_seq(prog.pid, NULL));
		freeze();
		expect_intact();
		teardown();
	}
}

static pid_t template_pid(void)
{
	int tp = 0;
	char *t = strstr(o.out, "template is pid ");
	CHECK(t && sscanf(t, "template is pid %d", &tp) == 1 && tp > 0 && tp != prog.pid,
	      "no template pid: %s", o.out);
	return tp;
}

/* The template killed (SIGKILL) or stopped (SIGTERM) during a spawn of many
 * children: the requester ends with an error at once; in snapshot mode the
 * original program keeps running and can be frozen again. */
Test(fault, template_dies_during_spawn)
{
	const int sigs[] = { SIGKILL, SIGTERM };
	for (int i = 0; i < 2; i++) {
		start_env("snapshot", NULL, "sig=dfl", NULL, NULL);
		progress(prog.pid, 20);
		ct_nuwa(&o, 20000, "freeze", P, NULL);
		CHECK(o.code == 0, "freeze: %s", o.err);
		pid_t tp = template_pid();
		char T[32];
		snprintf(T, sizeof T, "%d", tp);
		struct ct_bg w;
		const char *argv[] = { ct_path("NUWA_CLI"), "spawn", "--wait", "-n", "20", T, NULL };
		ct_start(&w, argv, NULL, 1);
		CHECK(ct_expect(&w, "\n", 10000), "no child from spawn --wait -n 20: %s", w.buf);
		kill(tp, sigs[i]);
		/* the requester hears at once that the statuses will not come */
		int code = ct_wait(&w, 20000);
		CHECK(code == 125, "spawn --wait while the template got signal %d: exit %d "
		      "(want 125): %s", sigs[i], code, w.buf);
		ct_kill(&w);
		long long deadline = ct_now_ms() + 10000;
		while (ct_alive(tp) && ct_now_ms() < deadline)
			ct_sleep_ms(20);
		CHECK(!ct_alive(tp), "the template survived signal %d", sigs[i]);
		progress(prog.pid, read_seq(prog.pid, NULL));
		ct_nuwa(&o, 20000, "freeze", P, NULL);
		CHECK(o.code == 0, "freeze again after the template died: %s", o.err);
		snprintf(T, sizeof T, "%d", template_pid());
		ct_nuwa(&o, 20000, "spawn", T, NULL);
		CHECK(o.code == 0, "spawn from the new template: %s", o.err);
		kids[nkids++] = (pid_t)atol(o.out);
		progress(kids[nkids - 1], 20);
		kids[nkids++] = (pid_t)atol(T);
		teardown();
	}
}

/* The requester dies in the middle of its request (a partial message, or
 * killed while children are being made): the template changes nothing it
 * should not and serves the next request. */
Test(fault, requester_dies_mid_request)
{
	pid_t pid = start("sig=dfl", NULL);
	progress(pid, 20);
	freeze();
	char sock[400], req[64];
	snprintf(sock, sizeof sock, "%s/%d.sock", ct_rundir(), pid);
	struct ctl_buf b;
	ctl_begin(&b, req, sizeof req, CTL_REQ_SPAWN);
	ctl_put_u32(&b, CTL_F_COUNT, 1);
	long len = ctl_end(&b);
	unsigned before = 0, after = 0;
	cr_assert_eq(ct_hello(sock, NULL, &before), 0);
	for (int i = 0; i < 20; i++) {
		int fd = ct_connect(sock);
		CHECK(fd >= 0, "connect");
		ct_send(fd, req, (size_t)(i % (len - 1)) + 1);   /* never the whole request */
		close(fd);
	}
	cr_assert_eq(ct_hello(sock, NULL, &after), 0);
	CHECK(after == before, "partial requests made children (%u -> %u)", before, after);
	struct ct_bg w;
	const char *argv[] = { ct_path("NUWA_CLI"), "spawn", "-n", "100", P, NULL };
	ct_start(&w, argv, NULL, 1);
	CHECK(ct_expect(&w, "\n", 10000), "no child from spawn -n 100");
	ct_kill(&w);
	ct_drain(&w);
	expect_intact();
	ct_nuwa(&o, 10000, "thaw", P, NULL);
	CHECK(o.code == 0, "thaw: %s", o.err);
	progress(pid, read_seq(pid, NULL));
	/* the children of the killed requester keep running: teardown kills
	 * the process group, theirs too */
}
