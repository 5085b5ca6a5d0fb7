/* End to end: the real libnuwa preloaded by `nuwa run` into cli_scn (threads
 * + pipe + eventfd + epoll), driven by the `nuwa` command. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_test.h"

static struct ct_bg prog;
static struct ct_out o;
static const char *dir;
static pid_t kids[1100];
static int nkids;

static void teardown(void)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] > 1)   /* kill(0) would take the test runner's group along */
			kill(kids[i], SIGKILL);
	nkids = 0;
	ct_kill(&prog);
}

TestSuite(e2e, .fini = teardown, .timeout = 120);

static void dump(void)
{
	ct_expect(&prog, "\1", 300);   /* whatever it printed so far */
	fprintf(stderr, "---- program output ----\n%s\n------------------------\n", prog.buf);
}

#define CHECK(cond, ...) do { if (!(cond)) { dump(); cr_assert_fail(__VA_ARGS__); } } while (0)

struct state { unsigned seq, gaps; int ok; };

static struct state read_state(pid_t pid)
{
	struct state s = { 0, 0, 0 };
	char path[512], buf[256];
	snprintf(path, sizeof path, "%s/%d.state", dir, pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (fgets(buf, sizeof buf, f)) {
			int p;
			s.ok = sscanf(buf, "pid=%d seq=%u gaps=%u", &p, &s.seq, &s.gaps) == 3 && p == pid;
		}
		fclose(f);
	}
	return s;
}

/* Wait until pid reports a sequence number above `above`, without gaps. */
static struct state progress(pid_t pid, unsigned above, int timeout_ms)
{
	long long deadline = ct_now_ms() + timeout_ms;
	struct state s;
	do {
		ct_drain(&prog);
		s = read_state(pid);
		if (s.ok && s.seq > above)
			break;
		ct_sleep_ms(10);
	} while (ct_now_ms() < deadline);
	CHECK(s.ok && s.seq > above, "process %d made no progress past %u (seq %u)", pid, above,
	      s.seq);
	CHECK(s.gaps == 0, "process %d lost pipe data: %u gaps (a channel is shared)", pid, s.gaps);
	return s;
}

static const char *log_level = "info";

static pid_t start(const char *mode, const char *warm, const char *const *extra_env)
{
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--mode", mode, "--log", log_level,
	                       "--lib", ct_path("NUWA_LIB"), "--", ct_path("NUWA_CLI_SCN"), dir,
	                       warm, NULL };
	ct_start(&prog, argv, extra_env, 1);
	return prog.pid;
}

static pid_t spawn_one(const char *target)
{
	ct_nuwa(&o, 20000, "spawn", target, NULL);
	CHECK(o.code == 0, "nuwa spawn %s: exit %d: %s", target, o.code, o.err);
	pid_t k = (pid_t)atol(o.out);
	CHECK(k > 0, "no pid printed: %s", o.out);
	kids[nkids++] = k;
	return k;
}

static void expect_state(const char *target, const char *state)
{
	char want[64];
	snprintf(want, sizeof want, "state %s", state);
	ct_nuwa(&o, 10000, "status", target, NULL);
	CHECK(o.code == 0 && strstr(o.out, want), "status of %s: want '%s': %s %s", target, want,
	      o.out, o.err);
}

Test(e2e, template_mode)
{
	pid_t pid = start("template", "0", NULL);
	char p[32];
	snprintf(p, sizeof p, "%d", pid);
	progress(pid, 50, 10000);
	int threads = ct_threads(pid);

	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: exit %d: %s", o.code, o.err);
	CHECK(strstr(o.out, "frozen, template ready") && strstr(o.out, "idle in"),
	      "freeze report: %s", o.out);
	ct_sleep_ms(100);
	struct state frozen = read_state(pid);
	for (int i = 0; i < 3; i++) {
		pid_t k = spawn_one(p);
		progress(k, frozen.seq + 50, 10000);
		CHECK(ct_threads(k) == threads, "child %d has %d threads, template %d", k,
		      ct_threads(k), threads);
		/* the template is intact: still frozen, same threads, no progress */
		struct state t = read_state(pid);
		CHECK(t.seq == frozen.seq, "the frozen template moved: %u -> %u", frozen.seq, t.seq);
		CHECK(ct_threads(pid) == threads, "template lost threads");
		expect_state(p, "template");
	}
	/* all three keep working, each on its own channels */
	struct state s[3];
	for (int i = 0; i < 3; i++)
		s[i] = read_state(kids[i]);
	for (int i = 0; i < 3; i++)
		progress(kids[i], s[i].seq + 50, 10000);

	ct_nuwa(&o, 10000, "thaw", p, NULL);
	CHECK(o.code == 0, "thaw: %s", o.err);
	progress(pid, frozen.seq + 50, 10000);
	expect_state(p, "running");
}

Test(e2e, snapshot_mode)
{
	pid_t pid = start("snapshot", "0", NULL);
	char p[32];
	snprintf(p, sizeof p, "%d", pid);
	progress(pid, 50, 10000);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: exit %d: %s", o.code, o.err);
	int tp = 0;
	char *t = strstr(o.out, "template is pid ");
	CHECK(t && sscanf(t, "template is pid %d", &tp) == 1 && tp > 0 && tp != pid,
	      "no template pid: %s", o.out);
	kids[nkids++] = tp;
	struct state orig = progress(pid, 0, 1000);
	progress(pid, orig.seq + 50, 10000);   /* the original runs on */
	char tps[32];
	snprintf(tps, sizeof tps, "%d", tp);
	expect_state(tps, "template");
	for (int i = 0; i < 3; i++) {
		pid_t k = spawn_one(i == 0 ? p : tps);   /* via the original: redirected */
		progress(k, 50, 10000);
		expect_state(tps, "template");
	}
	struct state now = read_state(pid);
	progress(pid, now.seq + 50, 10000);
}

Test(e2e, clone_mode)
{
	pid_t pid = start("clone", "0", NULL);
	char p[32];
	snprintf(p, sizeof p, "%d", pid);
	progress(pid, 50, 10000);
	for (int i = 0; i < 3; i++) {
		ct_nuwa(&o, 20000, "freeze", p, NULL);
		CHECK(o.code == 0, "clone %d: exit %d: %s", i, o.code, o.err);
		int k = 0;
		char *c = strstr(o.out, "clone ");
		CHECK(c && sscanf(c, "clone %d", &k) == 1 && k > 0, "no clone pid: %s", o.out);
		kids[nkids++] = k;
		progress(k, 50, 10000);
		struct state s = read_state(pid);
		progress(pid, s.seq + 50, 10000);
	}
}

Test(e2e, stdio_wait_and_sigint)
{
	pid_t pid = start("template", "0", NULL);
	char p[32];
	snprintf(p, sizeof p, "%d", pid);
	progress(pid, 20, 10000);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);

	ct_nuwa(&o, 20000, "spawn", "--stdio", "--wait", "--call", "cli_scn_say(str:\"hello, caller\")",
	        "--call", "_exit(int:3)", p, NULL);
	CHECK(o.code == 3, "exit code %d (want 3): %s", o.code, o.err);
	/* stdout is the child's alone: exactly what it printed, no pid */
	CHECK(strcmp(o.out, "hello, caller\n") == 0, "stdout is not the child's output: [%s]", o.out);
	CHECK(strstr(o.err, "nuwa spawn: child "), "no pid on stderr: [%s]", o.err);

	struct ct_bg w;
	const char *argv[] = { ct_path("NUWA_CLI"), "spawn", "--stdio", "--wait", p, NULL };
	ct_start(&w, argv, NULL, 1);
	CHECK(ct_expect(&w, "nuwa spawn: child ", 10000) && ct_expect(&w, "\n", 10000),
	      "no pid from spawn --wait: %s", w.buf);
	pid_t k = (pid_t)atol(strstr(w.buf, "nuwa spawn: child ") + 18);
	kids[nkids++] = k;
	progress(k, 50, 10000);
	kill(w.pid, SIGINT);
	int code = ct_wait(&w, 10000);
	CHECK(code == 128 + SIGINT, "nuwa spawn --wait exited %d after SIGINT", code);
	CHECK(!ct_alive(k), "child %d survived the forwarded SIGINT", k);
	ct_kill(&w);
	expect_state(p, "template");
}

Test(e2e, call_arguments_and_errors)
{
	pid_t pid = start("template", "0", NULL);
	char p[32], sock[300];
	snprintf(p, sizeof p, "%d", pid);
	snprintf(sock, sizeof sock, "%s/%d.sock", ct_rundir(), pid);
	progress(pid, 20, 10000);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);
	ct_nuwa(&o, 20000, "spawn", "--call",
	        "cli_scn_tag(int:-7, long:-9000000000, double:0.125, str:\"x, y\", ptr:null)",
	        "--call", "setenv(str:MODE, str:worker, int:1)",
	        "--call", "cli_scn_tag(int:2147483647, long:0x10, double:-1e300, str:, ptr:null)",
	        p, NULL);
	CHECK(o.code == 0, "spawn: %s", o.err);
	pid_t k = (pid_t)atol(o.out);
	kids[nkids++] = k;
	char path[512], buf[1024] = "";
	snprintf(path, sizeof path, "%s/%d.call", dir, k);
	long long deadline = ct_now_ms() + 10000;
	FILE *f;
	while (ct_now_ms() < deadline) {
		if ((f = fopen(path, "re"))) {
			size_t n = fread(buf, 1, sizeof buf - 1, f);
			buf[n] = 0;
			fclose(f);
			if (ct_count(buf, "\n") == 2)
				break;
		}
		ct_sleep_ms(10);
	}
	CHECK(!strcmp(buf, "i=-7 l=-9000000000 d=0.125 s=[x, y] p=null\n"
	                   "i=2147483647 l=16 d=-1e+300 s=[] p=null\n"), "calls: [%s]", buf);
	progress(k, 50, 10000);

	unsigned before = 0;
	cr_assert_eq(ct_hello(sock, NULL, &before), 0);
	ct_nuwa(&o, 20000, "spawn", "-n", "3", "--call", "cli_scn_tag(int:1, long:1, double:1, "
	        "str:a, ptr:null)", "--call", "not_a_symbol_anywhere()", p, NULL);
	CHECK(o.code == 1 && strstr(o.err, "unknown symbol 'not_a_symbol_anywhere'"),
	      "exit %d: %s", o.code, o.err);
	CHECK(o.out[0] == 0, "pids printed for a refused spawn: %s", o.out);
	/* too few arguments cannot be detected (C has no signatures at run
	 * time): the call happens with garbage, documented */
	ct_nuwa(&o, 20000, "spawn", "--call", "cli_scn_tag(int:1, long:1)", p, NULL);
	int made = o.code == 0;
	if (made)
		kids[nkids++] = (pid_t)atol(o.out);
	ct_nuwa(&o, 20000, "spawn", "--call", "cli_scn_tag(int:x)", p, NULL);
	CHECK(o.code == 2, "syntax error: exit %d", o.code);
	unsigned after = 0;
	cr_assert_eq(ct_hello(sock, NULL, &after), 0);
	CHECK(after <= before + made, "children were made by refused spawns (%u -> %u)", before,
	      after);
}

/* 1 000 spawns in a row from the real template: every child is reaped and
 * the template's descriptors and memory stay flat. */
Test(e2e, thousand_spawns, .timeout = 300)
{
	log_level = "warn";   /* 2 000 lines of "resumed" are no help here */
	pid_t pid = start("template", "0", NULL);
	char p[32], sock[300];
	snprintf(p, sizeof p, "%d", pid);
	snprintf(sock, sizeof sock, "%s/%d.sock", ct_rundir(), pid);
	progress(pid, 20, 10000);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);

	char mem[256];
	struct ctl_buf b;
	ctl_begin(&b, mem, sizeof mem, CTL_REQ_SPAWN);
	ctl_put_u32(&b, CTL_F_COUNT, 1);
	ctl_put_str(&b, CTL_F_CALL, "_exit(int:0)");
	long len = ctl_end(&b);
	int fds0 = 0;
	long rss0 = 0;
	for (int i = 0; i < 1000; i++) {
		if (i == 50) {   /* after warm-up: tables, mappings touched once */
			unsigned live = 1;
			for (int t = 0; t < 500 && (live || ct_zombie_children(pid)); t++) {
				ct_sleep_ms(10);
				ct_hello(sock, NULL, &live);
			}
			ct_sleep_ms(100);   /* the server closes our last connection */
			fds0 = ct_count_fds(pid);
			rss0 = ct_rss_kb(pid);
		}
		ct_drain(&prog);
		int fd = ct_connect(sock);
		CHECK(fd >= 0, "spawn %d: connect: %s", i, strerror(-fd));
		CHECK(ct_send(fd, mem, (size_t)len) == 0, "send");
		char buf[4096];
		struct ctl_msg m;
		int r = ct_recv(fd, buf, sizeof buf, &m, 30000);
		CHECK(r == 1 && m.type == CTL_REP_SPAWNED, "spawn %d: reply %d type %u", i, r,
		      r == 1 ? m.type : 0);
		r = ct_recv(fd, buf, sizeof buf, &m, 10000);
		CHECK(r == 1 && m.type == CTL_REP_OK, "spawn %d: no OK", i);
		close(fd);
	}
	int z = 0;
	unsigned live = 1;
	for (int t = 0; t < 500 && ((z = ct_zombie_children(pid)) || live); t++) {
		ct_sleep_ms(10);
		ct_hello(sock, NULL, &live);
	}
	CHECK(z == 0, "%d zombies left", z);
	int fds = 0;
	for (int t = 0; t < 100 && (fds = ct_count_fds(pid)) > fds0; t++)
		ct_sleep_ms(20);   /* connections are closed asynchronously */
	long rss = ct_rss_kb(pid);
	CHECK(fds == fds0, "template descriptors: %d after 50 spawns, %d after 1000", fds0, fds);
	CHECK(rss < rss0 + 1024, "template memory: %ld kB after 50 spawns, %ld after 1000",
	      rss0, rss);
	expect_state(p, "template");
	unsigned children = 99;
	cr_assert_eq(ct_hello(sock, NULL, &children), 0);
	CHECK(children == 0, "%u children still listed", children);
}

/* NUWA_FREEZE_ON_IDLE_MS: the program computes for 1.5 s (busy), then its
 * threads go idle; the freeze comes after that and not before. */
Test(e2e, freeze_on_idle)
{
	const char *argv_mode = "template";
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--mode", argv_mode, "--log", "info",
	                       "--freeze-on-idle", "300", "--lib", ct_path("NUWA_LIB"), "--",
	                       ct_path("NUWA_CLI_SCN"), dir, "1500", NULL };
	long long t0 = ct_now_ms();
	ct_start(&prog, argv, NULL, 1);
	char sock[300];
	snprintf(sock, sizeof sock, "%s/%d.sock", ct_rundir(), prog.pid);
	unsigned state = 0;
	long long frozen_at = 0;
	while (ct_now_ms() - t0 < 15000) {
		if (ct_hello(sock, &state, NULL) == 0 && state == 2) {
			frozen_at = ct_now_ms() - t0;
			break;
		}
		ct_sleep_ms(20);
	}
	CHECK(frozen_at > 0, "never froze");
	CHECK(frozen_at >= 1500 + 300 - 50, "froze after %lld ms, before warm-up + idle time",
	      frozen_at);
	char warm[512];
	snprintf(warm, sizeof warm, "%s/%d.warm", dir, prog.pid);
	struct stat st;
	CHECK(stat(warm, &st) == 0, "froze before the warm-up finished");
}

/* nuwa stop: the template exits 0, its children run on and stay reachable. */
Test(e2e, stop_and_list)
{
	pid_t pid = start("template", "0", NULL);
	char p[32];
	snprintf(p, sizeof p, "%d", pid);
	progress(pid, 20, 10000);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);
	pid_t k1 = spawn_one(p), k2 = spawn_one(p);
	ct_nuwa(&o, 10000, "list", NULL);
	char row[64];
	snprintf(row, sizeof row, "%-8d template", pid);
	CHECK(o.code == 0 && strstr(o.out, row), "list: %s", o.out);
	ct_nuwa(&o, 10000, "stop", p, NULL);
	CHECK(o.code == 0 && strstr(o.out, "2 spawned children keep running"), "stop: %d %s %s",
	      o.code, o.out, o.err);
	int code = ct_wait(&prog, 10000);
	CHECK(code == 0, "the template exited %d", code);
	struct state s1 = read_state(k1), s2 = read_state(k2);
	progress(k1, s1.seq + 50, 10000);
	progress(k2, s2.seq + 50, 10000);
	char k[32];
	snprintf(k, sizeof k, "%d", k1);
	expect_state(k, "running");
	ct_nuwa(&o, 10000, "status", p, NULL);
	CHECK(o.code == 3, "the stopped template still answers: %d", o.code);
}

/* The real library's `nuwa status` shows its control socket and the
 * children spawned through it (the same text as the mock's, from the same
 * ctlsock_describe()), in text and in JSON. */
Test(e2e, status_socket_and_children)
{
	pid_t pid = start("template", "0", NULL);
	char p[32], want[512];
	snprintf(p, sizeof p, "%d", pid);
	progress(pid, 20, 10000);
	ct_nuwa(&o, 10000, "status", p, NULL);
	snprintf(want, sizeof want, "socket: %s/%d.sock\n", getenv("NUWA_RUNTIME_DIR"), pid);
	CHECK(o.code == 0 && strstr(o.out, want), "status lacks '%s': %s %s", want, o.out, o.err);
	CHECK(strstr(o.out, "spawned children running: 0\n"), "%s", o.out);

	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: exit %d: %s", o.code, o.err);
	pid_t k1 = spawn_one(p), k2 = spawn_one(p);
	ct_nuwa(&o, 10000, "status", p, NULL);
	CHECK(o.code == 0 && strstr(o.out, want), "status lacks '%s': %s", want, o.out);
	CHECK(strstr(o.out, "spawned children running: 2\n"), "%s", o.out);
	char line[64];
	snprintf(line, sizeof line, "  child %d\n", k1);
	CHECK(strstr(o.out, line), "no '%s' line: %s", line, o.out);
	snprintf(line, sizeof line, "  child %d\n", k2);
	CHECK(strstr(o.out, line), "no '%s' line: %s", line, o.out);

	ct_nuwa(&o, 10000, "status", "--json", p, NULL);
	snprintf(want, sizeof want, "\"socket\":\"%s/%d.sock\"", getenv("NUWA_RUNTIME_DIR"), pid);
	CHECK(o.code == 0 && strstr(o.out, want), "json status lacks %s: %s", want, o.out);
	snprintf(want, sizeof want, "{\"pid\":%d,\"waited\":false}", k1);
	CHECK(strstr(o.out, "\"spawned_children\":[") && strstr(o.out, want), "%s", o.out);

	/* a child that ended is no longer listed */
	kill(k1, SIGKILL);
	for (int t = 0; t < 200; t++) {
		ct_nuwa(&o, 10000, "status", p, NULL);
		if (strstr(o.out, "spawned children running: 1\n"))
			break;
		ct_sleep_ms(20);
	}
	CHECK(strstr(o.out, "spawned children running: 1\n"), "%s", o.out);
}

static int wait_sockets(int want, int timeout_ms)
{
	long long deadline = ct_now_ms() + timeout_ms;
	int n;
	while ((n = ct_sockets_in_rundir()) != want && ct_now_ms() < deadline)
		ct_sleep_ms(20);
	return n;
}

/* A process that ends without libnuwa's exit path (SIGKILL) leaves no
 * control socket: the template removes each child's when it reaps it, and
 * `nuwa run` the program's own once the program has ended. */
Test(e2e, no_socket_left_by_killed_processes)
{
	pid_t pid = start("template", "0", NULL);
	char p[32];
	snprintf(p, sizeof p, "%d", pid);
	progress(pid, 20, 10000);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);
	ct_nuwa(&o, 60000, "spawn", "-n", "100", p, NULL);
	CHECK(o.code == 0, "spawn -n 100: exit %d: %s", o.code, o.err);
	int first = nkids;
	for (char *s = o.out; *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : s + strlen(s))
		if (atol(s) > 0)
			kids[nkids++] = (pid_t)atol(s);
	CHECK(nkids - first == 100, "%d pids printed", nkids - first);
	/* each child made its own socket */
	CHECK(wait_sockets(101, 20000) == 101, "%d sockets for the template and 100 children",
	      ct_sockets_in_rundir());

	for (int i = first; i < nkids; i++)
		kill(kids[i], SIGKILL);
	int n = wait_sockets(1, 20000);
	CHECK(n == 1, "%d sockets left after 100 children were killed (want the template's)", n);
	for (int i = first; i < nkids; i++)
		CHECK(!ct_alive(kids[i]), "child %d survived SIGKILL", kids[i]);
	expect_state(p, "template");

	kill(pid, SIGKILL);
	ct_wait(&prog, 10000);
	n = wait_sockets(0, 20000);
	CHECK(n == 0, "%d sockets left after the template under nuwa run was killed", n);
}

/* A program that changed its uid after start makes its children's control
 * sockets in the runtime directory of the uid it has then (/tmp/nuwa-EUID),
 * where `nuwa` finds them by pid; the template removes a dead child's. */
Test(e2e, uid_changed_after_start)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to change uid (CI runs as root)");
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--log", "info", "--lib",
	                       ct_path("NUWA_LIB"), "--", ct_path("NUWA_UID_DROP"), NULL };
	ct_start(&prog, argv, NULL, 1);
	CHECK(ct_expect(&prog, "dropped ", 10000), "no uid drop");
	char p[32];
	snprintf(p, sizeof p, "%d", prog.pid);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);
	pid_t k = spawn_one(p);
	char sock[128];
	snprintf(sock, sizeof sock, "/tmp/nuwa-65534/%d.sock", k);
	struct stat st;
	long long deadline = ct_now_ms() + 10000;
	while (lstat(sock, &st) < 0 && ct_now_ms() < deadline)
		ct_sleep_ms(10);
	CHECK(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == 65534,
	      "no socket of uid 65534 at %s", sock);
	char kp[32];
	snprintf(kp, sizeof kp, "%d", k);
	expect_state(kp, "running");
	kill(k, SIGKILL);
	while (lstat(sock, &st) == 0 && ct_now_ms() < deadline + 10000)
		ct_sleep_ms(10);
	CHECK(lstat(sock, &st) < 0, "the dead child's socket %s is left", sock);
	expect_state(p, "template");
}

/* A process whose descriptor table is full: the control thread does not
 * spin on the connection it cannot accept, `nuwa` gets a clear error at
 * once, and the process is controllable again once it closes some. */
Test(e2e, full_descriptor_table)
{
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--lib", ct_path("NUWA_LIB"), "--",
	                       ct_path("NUWA_FD_FILL"), NULL };
	ct_start(&prog, argv, NULL, 1);
	CHECK(ct_expect(&prog, "full ", 10000), "the table did not fill");
	char p[32];
	snprintf(p, sizeof p, "%d", prog.pid);
	ct_nuwa(&o, 20000, "status", p, NULL);
	CHECK(o.code == 1 && strstr(o.err, "no free file descriptor"),
	      "status of a full process: exit %d: %s", o.code, o.err);
	/* one client more, then a second without anyone retrying: no spin */
	ct_nuwa(&o, 20000, "status", p, NULL);
	CHECK(o.code == 1, "second status: exit %d: %s", o.code, o.err);
	long t0 = ct_thread_ticks(prog.pid, "nuwa-control");
	CHECK(t0 >= 0, "no nuwa-control thread");
	ct_sleep_ms(1000);
	long t1 = ct_thread_ticks(prog.pid, "nuwa-control");
	CHECK(t1 - t0 < 20, "the control thread used %ld ticks in 1 s (spinning)", t1 - t0);
	kill(prog.pid, SIGUSR1);
	CHECK(ct_expect(&prog, "freed", 10000), "fds not freed");
	ct_nuwa(&o, 20000, "status", p, NULL);
	CHECK(o.code == 0 && strstr(o.out, "state running"), "status once freed: exit %d: %s",
	      o.code, o.err);
}

/* NUWA_LOG_FILE's descriptor is libnuwa's own: nuwa status does not list it
 * as the program's, and the log keeps working in a spawned child. */
Test(e2e, log_file_is_libnuwa_own)
{
	char logenv[512], logpath[400];
	dir = ct_setup();
	snprintf(logpath, sizeof logpath, "%s/nuwa.log", dir);
	snprintf(logenv, sizeof logenv, "NUWA_LOG_FILE=%s", logpath);
	pid_t pid = start("template", "0", (const char *const[]){ logenv, NULL });
	char p[32];
	snprintf(p, sizeof p, "%d", pid);
	progress(pid, 20, 10000);
	int logfd = -1;
	for (int fd = 3; fd < 4096 && logfd < 0; fd++) {
		char l[64], t[512];
		snprintf(l, sizeof l, "/proc/%d/fd/%d", pid, fd);
		ssize_t n = readlink(l, t, sizeof t - 1);
		if (n > 0 && (t[n] = 0, !strcmp(t, logpath)))
			logfd = fd;
	}
	CHECK(logfd >= 0, "the log file is not open in %d", pid);
	ct_nuwa(&o, 20000, "status", p, NULL);
	CHECK(o.code == 0, "status: %s", o.err);
	char line[32];
	snprintf(line, sizeof line, "  fd %d ", logfd);
	CHECK(!strstr(o.out, line), "status lists libnuwa's log fd %d:\n%s", logfd, o.out);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);
	pid_t k = spawn_one(p);
	char want[64];
	snprintf(want, sizeof want, "in child %d", k);
	long long deadline = ct_now_ms() + 10000;
	int found = 0;
	while (!found && ct_now_ms() < deadline) {
		FILE *f = fopen(logpath, "re");
		char buf[256];
		while (f && fgets(buf, sizeof buf, f))
			found |= strstr(buf, want) != NULL;
		if (f)
			fclose(f);
		if (!found)
			ct_sleep_ms(20);
	}
	CHECK(found, "the child %d logged nothing to %s", k, logpath);
}

/* ---- children that die young (issue 10 class 6) ---------------------------- */

static pid_t frozen_with(const char *const *env, char *p, size_t len)
{
	pid_t pid = start("template", "0", env);
	snprintf(p, len, "%d", pid);
	progress(pid, 25, 10000);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %d %s", o.code, o.err);
	return pid;
}

/* `nuwa status` (text and JSON) lists child `kid` as killed by SIGSEGV. */
static void status_lists_segv(const char *p, pid_t kid)
{
	char want[64];
	snprintf(want, sizeof want, "child %d signal 11 (SIGSEGV)", kid);
	long long end = ct_now_ms() + 10000;
	do {
		ct_nuwa(&o, 10000, "status", p, NULL);
	} while (!strstr(o.out, want) && ct_now_ms() < end && (ct_sleep_ms(20), 1));
	CHECK(o.code == 0 && strstr(o.out, want), "status does not list '%s': %s", want, o.out);
	snprintf(want, sizeof want, "{\"pid\":%d,\"signal\":11,\"signal_name\":\"SIGSEGV\"}", kid);
	ct_nuwa(&o, 10000, "status", "--json", p, NULL);
	CHECK(o.code == 0 && strstr(o.out, want), "status --json does not list %s: %s", want, o.out);
	snprintf(want, sizeof want, "warn: child %d was killed by signal 11 (SIGSEGV)", kid);
	CHECK(ct_expect(&prog, want, 5000), "the template did not warn '%s'", want);
}

/* A child that dies before it is ready is a failed spawn: exit 1, one line
 * naming the child and its signal, no pid on stdout; the template warns and
 * `nuwa status` lists it; the template goes on spawning. */
static void dies_before_ready(const char *how)
{
	char env_die[64], p[32];
	snprintf(env_die, sizeof env_die, "CLI_SCN_DIE=%s", how);
	const char *env[] = { env_die, NULL };
	frozen_with(env, p, sizeof p);
	ct_nuwa(&o, 20000, "spawn", p, NULL);
	CHECK(o.code == 1, "spawn of a child that dies (%s): exit %d, want 1: %s %s", how, o.code,
	      o.out, o.err);
	CHECK(o.out[0] == 0, "a pid was printed for a dead child: %s", o.out);
	CHECK(ct_count(o.err, "\n") == 1 && strstr(o.err, "killed by signal 11 (SIGSEGV) before it "
	      "was ready"), "want one line naming the signal: %s", o.err);
	const char *c = strstr(o.err, "child ");
	pid_t kid = c ? (pid_t)atol(c + 6) : 0;
	CHECK(kid > 0, "no child named: %s", o.err);
	status_lists_segv(p, kid);
}

Test(e2e, child_dies_in_constructor_before_go)
{
	dies_before_ready("ctor");
}

/* A child is ready once every thread is resumed, just before they are
 * released: one that crashes after that (in a final constructor, once its
 * threads run) was made, its pid is printed; its crash is then in the
 * template's log at warning level and in `nuwa status`. */
Test(e2e, child_dies_in_final_constructor_after_go)
{
	char p[32];
	const char *env[] = { "CLI_SCN_DIE=final", NULL };
	frozen_with(env, p, sizeof p);
	ct_nuwa(&o, 20000, "spawn", p, NULL);
	CHECK(o.code == 0, "spawn: exit %d: %s", o.code, o.err);
	pid_t kid = (pid_t)atol(o.out);
	CHECK(kid > 0, "no pid: %s", o.out);
	status_lists_segv(p, kid);
	/* with --wait, its death is the exit status */
	ct_nuwa(&o, 20000, "spawn", "--wait", p, NULL);
	CHECK(o.code == 128 + SIGSEGV, "spawn --wait: exit %d, want %d: %s", o.code,
	      128 + SIGSEGV, o.err);
}

/* --call runs after the child is ready: its _exit code is the spawn's. */
Test(e2e, call_exit_code_with_wait)
{
	char p[32];
	frozen_with(NULL, p, sizeof p);
	ct_nuwa(&o, 20000, "spawn", "--wait", "--call", "_exit(int:3)", p, NULL);
	CHECK(o.code == 3, "spawn --wait --call _exit(int:3): exit %d: %s", o.code, o.err);
	const struct ct_out *r = &o;
	pid_t kid = (pid_t)atol(r->out);
	CHECK(kid > 0, "no pid: %s", o.out);
	char want[64];
	snprintf(want, sizeof want, "child %d exit 3", kid);
	ct_nuwa(&o, 10000, "status", p, NULL);
	CHECK(strstr(o.out, want), "status does not list '%s': %s", want, o.out);
}

/* A thread that crashes right after it resumes: the child was ready (the
 * spawn says so, or, should the crash ever come first, fails naming
 * SIGSEGV); the crash is in the template's log and in `nuwa status`.  Never
 * a silent pid. */
Test(e2e, child_thread_crashes_right_after_resume)
{
	char p[32];
	const char *env[] = { "CLI_SCN_DIE=thread", NULL };
	frozen_with(env, p, sizeof p);
	ct_nuwa(&o, 20000, "spawn", p, NULL);
	pid_t kid;
	if (o.code == 0) {
		kid = (pid_t)atol(o.out);
	} else {
		CHECK(o.code == 1 && strstr(o.err, "SIGSEGV"), "spawn: exit %d: %s", o.code, o.err);
		const char *c = strstr(o.err, "child ");
		kid = c ? (pid_t)atol(c + 6) : 0;
	}
	CHECK(kid > 0, "no child: %s %s", o.out, o.err);
	status_lists_segv(p, kid);
}

/* ---- the template dies mid-request (issue 12 item 5) ----------------------- */

/* Processes running this test's cli_scn (its DIR argument is unique),
 * zombies excluded; the template itself excluded. */
static int scn_processes(pid_t tmpl, pid_t *out, int max)
{
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		pid_t pid = (pid_t)atol(e->d_name);
		if (pid <= 0 || pid == tmpl)
			continue;
		char path[64], buf[4096];
		snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t k = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[k] = 0;
		for (size_t i = 0; i + 1 < k; i++)
			if (!buf[i])
				buf[i] = ' ';
		const char *scn = ct_path("NUWA_CLI_SCN");
		if (!strncmp(buf, scn, strlen(scn)) && strstr(buf, dir) && n < max)
			out[n++] = pid;
	}
	if (d)
		closedir(d);
	return n;
}

Test(e2e, template_killed_mid_spawn_leaves_no_unknown_child, .timeout = 120)
{
	char p[32];
	/* each child takes 30 ms in a constructor: 100 take 3 s or more */
	const char *env[] = { "CLI_SCN_CTOR_MS=30", NULL };
	pid_t tmpl = frozen_with(env, p, sizeof p);
	struct ct_bg sp;
	const char *argv[] = { ct_path("NUWA_CLI"), "spawn", "-n", "100", p, NULL };
	ct_start(&sp, argv, NULL, 0);
	long long end = ct_now_ms() + 30000;
	while (ct_count(sp.buf, "\n") < 10 && ct_now_ms() < end) {
		ct_drain(&sp);
		ct_sleep_ms(5);
	}
	int before = ct_count(sp.buf, "\n");
	kill(tmpl, SIGKILL);
	int code = ct_wait(&sp, 20000);
	ct_drain(&sp);
	CHECK(before >= 10, "only %d pids arrived in 30 s: pids are not sent as they are made",
	      before);
	int printed = ct_count(sp.buf, "\n");
	CHECK(printed < 100 && code != 0, "the request was not cut off (%d pids, exit %d)", printed,
	      code);
	pid_t told[100];
	int nt = 0;
	for (const char *l = sp.buf; *l && nt < 100; l = strchr(l, '\n') + 1) {
		told[nt++] = (pid_t)atol(l);
		if (!strchr(l, '\n'))
			break;
	}
	for (int i = 0; i < nt; i++)
		kids[nkids++] = told[i];
	/* Children nobody was told about die with the template (PDEATHSIG):
	 * give them a moment to be gone, then none may be left. */
	pid_t left[256];
	int nl = 0, unknown = 0;
	end = ct_now_ms() + 10000;
	do {
		nl = scn_processes(tmpl, left, 256);
		unknown = 0;
		for (int i = 0; i < nl; i++) {
			int known = 0;
			for (int j = 0; j < nt; j++)
				known |= left[i] == told[j];
			unknown += !known;
		}
	} while (unknown && ct_now_ms() < end && (ct_sleep_ms(20), 1));
	for (int i = 0; i < nl; i++)
		kill(left[i], SIGKILL);
	CHECK(!unknown, "%d children the client never printed keep running (%d printed, %d running)",
	      unknown, nt, nl);
	close(sp.out);
}
