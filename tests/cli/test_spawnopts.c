/* A spawn's particulars against the real libnuwa: --env, --env-clear, --cwd
 * and --cgroup, applied in the child before its threads run again; bad
 * values refused before any fork, by nuwa and by the template. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "cli_test.h"

static struct ct_bg prog;
static struct ct_out o;
static const char *dir;
static char cg_made[8300];

/* A pid read from output: never 0 or -1, which kill() takes for our own
 * process group (the test runner's) or every process. */
static void kill_child(pid_t pid)
{
	if (pid > 1)
		kill(pid, SIGKILL);
}

static void teardown(void)
{
	ct_kill(&prog);
	if (cg_made[0]) {
		for (int i = 0; i < 500 && rmdir(cg_made) < 0 && errno == EBUSY; i++)
			ct_sleep_ms(10);   /* until its last task is released */
		cg_made[0] = 0;
	}
}

TestSuite(spawnopts, .fini = teardown, .timeout = 120);

#define CHECK(cond, ...) do { if (!(cond)) { ct_expect(&prog, "\1", 200); \
	fprintf(stderr, "---- program output ----\n%s\n", prog.buf); \
	cr_assert_fail(__VA_ARGS__); } } while (0)

/* cli_scn in template mode, frozen; returns its pid as a string in p. */
static pid_t frozen_template(char *p, size_t len, const char *const *env)
{
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--mode", "template", "--lib",
	                       ct_path("NUWA_LIB"), "--", ct_path("NUWA_CLI_SCN"), dir, "0", NULL };
	ct_start(&prog, argv, env, 1);
	snprintf(p, len, "%d", prog.pid);
	char warm[4096];
	snprintf(warm, sizeof warm, "%s/%d.warm", dir, prog.pid);
	for (int i = 0; i < 1000 && access(warm, F_OK) < 0; i++)
		ct_sleep_ms(10);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: exit %d: %s", o.code, o.err);
	return prog.pid;
}

static unsigned children_of(pid_t pid)
{
	char sock[4096];
	unsigned state = 0, children = 99;
	snprintf(sock, sizeof sock, "%s/%d.sock", ct_rundir(), pid);
	cr_assert(ct_hello(sock, &state, &children) == 0, "hello to %s", sock);
	return children;
}

Test(spawnopts, env_and_cwd)
{
	static const char *const env[] = { "KEEP=template", "OVER=old", NULL };
	char p[32];
	frozen_template(p, sizeof p, env);
	char sub[4096];
	snprintf(sub, sizeof sub, "%s/work dir", dir);
	cr_assert(mkdir(sub, 0755) == 0);
	/* --cwd relative to nuwa's directory: nuwa sends it absolute */
	char cwd_here[4096];
	cr_assert(getcwd(cwd_here, sizeof cwd_here));
	cr_assert(chdir(dir) == 0);
	ct_nuwa(&o, 20000, "spawn", "--stdio", "--wait", "--env", "OVER=new", "-e", "NEW=x",
	        "--env", "NEW=y", "--env", "EMPTY=", "--cwd", "work dir",
	        "--call", "cli_scn_env(str:OVER)", "--call", "cli_scn_env(str:NEW)",
	        "--call", "cli_scn_env(str:EMPTY)", "--call", "cli_scn_env(str:KEEP)",
	        "--call", "cli_scn_cwd()",
	        /* the program may change the environment afterwards */
	        "--call", "setenv(str:NEW, str:z, int:1)", "--call", "cli_scn_env(str:NEW)",
	        "--call", "setenv(str:LATER, str:l, int:0)", "--call", "cli_scn_env(str:LATER)",
	        "--call", "unsetenv(str:OVER)", "--call", "cli_scn_env(str:OVER)",
	        "--call", "cli_scn_env(str:KEEP)", "--call", "_exit(int:0)", p, NULL);
	cr_assert(chdir(cwd_here) == 0);
	char want[8192];
	snprintf(want, sizeof want,
	         "env OVER=new\nenv NEW=y\nenv EMPTY=\nenv KEEP=template\ncwd %s\n"
	         "env NEW=z\nenv LATER=l\nenv OVER unset\nenv KEEP=template\n", sub);
	CHECK(o.code == 0 && !strcmp(o.out, want), "exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s",
	      o.code, o.out, want, o.err);

	/* --env-clear: only what is given */
	ct_nuwa(&o, 20000, "spawn", "--stdio", "--wait", "--env-clear", "--env", "ONLY=1",
	        "--call", "cli_scn_envcount()", "--call", "cli_scn_env(str:KEEP)",
	        "--call", "cli_scn_env(str:ONLY)", "--call", "setenv(str:TWO, str:2, int:1)",
	        "--call", "cli_scn_envcount()", "--call", "_exit(int:0)", p, NULL);
	CHECK(o.code == 0 && !strcmp(o.out, "envcount 1\nenv KEEP unset\nenv ONLY=1\nenvcount 2\n"),
	      "env-clear: exit %d: [%s] %s", o.code, o.out, o.err);

	/* without options the child has the template's environment and
	 * directory, and the template itself is untouched */
	ct_nuwa(&o, 20000, "spawn", "--stdio", "--wait", "--call", "cli_scn_env(str:OVER)",
	        "--call", "cli_scn_env(str:NEW)", "--call", "_exit(int:0)", p, NULL);
	CHECK(o.code == 0 && !strcmp(o.out, "env OVER=old\nenv NEW unset\n"), "plain: [%s] %s",
	      o.out, o.err);
}

Test(spawnopts, bad_values_refused_before_fork)
{
	char p[32];
	pid_t pid = frozen_template(p, sizeof p, NULL);
	char file[4096], longenv[20000];
	snprintf(file, sizeof file, "%s/plain-file", dir);
	int fd = open(file, O_WRONLY | O_CREAT, 0644);
	cr_assert(fd >= 0);
	close(fd);
	memset(longenv, 'v', sizeof longenv - 1);
	memcpy(longenv, "LONG=", 5);
	longenv[sizeof longenv - 1] = 0;
	struct { const char *opt, *val, *msg; } bad[] = {
		{ "--env", "NOEQUALS", "needs NAME=VALUE" },
		{ "--env", "=value", "the name is empty" },
		{ "--env", longenv, "at most" },
		{ "--cwd", "/nonexistent/nuwa", "No such file" },
		{ "--cwd", file, "not a directory" },
		{ "--cgroup", "/nonexistent/nuwa", "No such file" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ct_nuwa(&o, 20000, "spawn", bad[i].opt, bad[i].val, p, NULL);
		CHECK(o.code == 2 && strstr(o.err, bad[i].msg) && strstr(o.err, "\n") &&
		      strstr(o.err, bad[i].msg) < strstr(o.err, "\n"),
		      "%s %.40s: exit %d: %s", bad[i].opt, bad[i].val, o.code, o.err);
		CHECK(o.out[0] == 0, "a pid was printed: %s", o.out);
	}

	/* The template checks too (another client, or a directory that went
	 * away): raw requests, each refused with no child made. */
	char sock[4096];
	snprintf(sock, sizeof sock, "%s/%d.sock", ct_rundir(), pid);
	struct { uint16_t tag; const char *val; const char *msg; } raw[] = {
		{ CTL_F_ENV, "NOEQUALS", "needs NAME=VALUE" },
		{ CTL_F_ENV, "=x", "the name is empty" },
		{ CTL_F_CWD, "relative/dir", "not an absolute path" },
		{ CTL_F_CWD, "/nonexistent/nuwa", "no such file" },
		{ CTL_F_CWD, file, "not a directory" },
		{ CTL_F_CGROUP, "/nonexistent/nuwa", "no such file" },
		{ CTL_F_CGROUP, "/", "not a cgroup v2 directory" },
	};
	for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
		char mem[1024], in[65536];
		struct ctl_buf b;
		ctl_begin(&b, mem, sizeof mem, CTL_REQ_SPAWN);
		ctl_put_u32(&b, CTL_F_COUNT, 1);
		ctl_put_str(&b, raw[i].tag, raw[i].val);
		long n = ctl_end(&b);
		int c = ct_connect(sock);
		cr_assert(c >= 0);
		cr_assert(ct_send(c, mem, (size_t)n) == 0);
		struct ctl_msg m;
		const char *msg = "";
		cr_assert(ct_recv(c, in, sizeof in, &m, 10000) == 1);
		ctl_get_str(&m, CTL_F_MESSAGE, &msg);
		CHECK(m.type == CTL_REP_ERROR && strstr(msg, raw[i].msg), "%s: %s %s",
		      raw[i].val, ctl_type_name(m.type), msg);
		close(c);
	}
	CHECK(children_of(pid) == 0, "a child was made");
}

/* The cgroup v2 hierarchy, wherever it is mounted (/proc/self/mountinfo:
 * field 5 is the mount point, the type follows " - "). */
static int cgroup2_root(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f)) {
		char mnt[4096], *dash = strstr(line, " - cgroup2 ");
		if (dash && sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			snprintf(out, len, "%s", mnt);
			found = 1;
		}
	}
	if (f)
		fclose(f);
	return found;
}

Test(spawnopts, cgroup_errors)
{
	char p[32];
	pid_t pid = frozen_template(p, sizeof p, NULL);
	/* not a cgroup at all: the test's own directory */
	ct_nuwa(&o, 20000, "spawn", "--cgroup", dir, p, NULL);
	CHECK(o.code == 1 && strstr(o.err, "not a cgroup v2 directory"), "exit %d: %s", o.code,
	      o.err);
	/* a cgroup v1 hierarchy, if this machine has one */
	static const char *v1[] = { "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids",
	                            "/sys/fs/cgroup/cpu" };
	for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++) {
		struct statfs sf;
		if (statfs(v1[i], &sf) == 0 && sf.f_type == CGROUP_SUPER_MAGIC) {
			ct_nuwa(&o, 20000, "spawn", "--cgroup", v1[i], p, NULL);
			CHECK(o.code == 1 && strstr(o.err, "cgroup v1"), "v1: exit %d: %s", o.code,
			      o.err);
			break;
		}
	}
	CHECK(children_of(pid) == 0, "a child was made");
}

/* A cgroup of our own for the test, under the one this test runs in, in
 * the cgroup2 hierarchy; skips the test when this machine cannot make one.
 * self: our cgroup's path inside the hierarchy ("" for the root). */
static void make_test_cgroup(char *path, size_t len, char *self, size_t selflen)
{
	char root[4096];
	if (!cgroup2_root(root, sizeof root))
		cr_skip_test("no cgroup v2 hierarchy mounted here");
	self[0] = 0;
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(self, selflen, "%.2000s", strcmp(line + 3, "/") ? line + 3 : "");
		}
	if (f)
		fclose(f);
	snprintf(path, len, "%.2000s%.2000s/nuwa-test-%d", root, self, getpid());
	if (mkdir(path, 0755) < 0)
		cr_skip_test("cannot create a cgroup under %s%s: %s (not delegated to us)", root,
		             self, strerror(errno));
	snprintf(cg_made, sizeof cg_made, "%s", path);
	char procs[8400];
	snprintf(procs, sizeof procs, "%s/cgroup.procs", path);
	if (access(procs, W_OK) < 0)
		cr_skip_test("%s is not writable", procs);
}

Test(spawnopts, cgroup_v2_child_is_born_inside)
{
	char self[4096], path[8300];
	make_test_cgroup(path, sizeof path, self, sizeof self);
	char p[32];
	frozen_template(p, sizeof p, NULL);
	char procs[8400];
	snprintf(procs, sizeof procs, "%s/cgroup.procs", path);

	ct_nuwa(&o, 20000, "spawn", "--stdio", "--wait", "--cgroup", path,
	        "--call", "cli_scn_cgroup()", "--call", "_exit(int:0)", p, NULL);
	char want[8400];
	snprintf(want, sizeof want, "cgroup %s/nuwa-test-%d\n", self, getpid());
	CHECK(o.code == 0 && !strcmp(o.out, want), "exit %d: [%s] want [%s] %s", o.code, o.out,
	      want, o.err);

	/* a running child is listed in the cgroup, with all its threads */
	ct_nuwa(&o, 20000, "spawn", "--cgroup", path, p, NULL);
	CHECK(o.code == 0, "spawn: %s", o.err);
	pid_t kid = (pid_t)atol(o.out);
	/* once its threads are back (they resume after the pid is sent), every
	 * one of them is in the cgroup: cgroup.threads lists tids */
	char tpath[8400];
	snprintf(tpath, sizeof tpath, "%s/cgroup.threads", path);
	char buf[4096] = "", tbuf[4096] = "";
	int threads = 0, listed = 0;
	for (long long end = ct_now_ms() + 10000; ct_now_ms() < end; ct_sleep_ms(10)) {
		threads = ct_threads(kid);
		int fd = open(procs, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		fd = open(tpath, O_RDONLY);
		n = fd >= 0 ? read(fd, tbuf, sizeof tbuf - 1) : -1;
		if (fd >= 0)
			close(fd);
		tbuf[n > 0 ? n : 0] = 0;
		listed = ct_count(tbuf, "\n");
		if (threads >= 5 && listed == threads)
			break;
	}
	char kids[32];
	snprintf(kids, sizeof kids, "%d\n", kid);
	kill_child(kid);
	CHECK(!strcmp(buf, kids) && threads >= 5 && listed == threads,
	      "cgroup.procs: [%s], child %d with %d threads, %d in cgroup.threads", buf, kid,
	      threads, listed);
}

/* nuwa status: one memory line per process, from smaps_rollup, with the
 * template's pages shared by its children (text and JSON agree on who). */
Test(spawnopts, status_shows_memory)
{
	char p[32];
	pid_t pid = frozen_template(p, sizeof p, NULL);
	pid_t kid[2];
	for (int i = 0; i < 2; i++) {
		ct_nuwa(&o, 20000, "spawn", p, NULL);
		CHECK(o.code == 0, "spawn: %s", o.err);
		kid[i] = (pid_t)atol(o.out);
	}
	ct_nuwa(&o, 10000, "status", p, NULL);
	CHECK(o.code == 0 && strstr(o.out, "\nmemory (kB"), "status: %s %s", o.out, o.err);
	pid_t who[3] = { pid, kid[0], kid[1] };
	for (int i = 0; i < 3; i++) {
		char key[64];
		snprintf(key, sizeof key, "%s %7d  rss ", i ? "  child   " : "  template", who[i]);
		char *l = strstr(o.out, key);
		long rss, pss, uss, shared;
		CHECK(l && sscanf(l + strlen(key), "%ld pss %ld uss %ld shared %ld", &rss, &pss, &uss,
		      &shared) == 4, "no memory line for %d: %s", who[i], o.out);
		CHECK(rss > 0 && pss > 0 && pss <= rss && uss < rss && shared > 0 &&
		      uss + shared == rss, "%d: rss %ld pss %ld uss %ld shared %ld", who[i], rss, pss,
		      uss, shared);
	}
	CHECK(strstr(o.out, "  children: 2, resident "), "no summary: %s", o.out);

	ct_nuwa(&o, 10000, "status", "--json", p, NULL);
	CHECK(o.code == 0, "status --json: %s", o.err);
	char want[128];
	snprintf(want, sizeof want, "\"memory\":[{\"pid\":%d,\"role\":\"template\",\"rss_kb\":", pid);
	CHECK(strstr(o.out, want), "json: %s", o.out);
	for (int i = 0; i < 2; i++) {
		snprintf(want, sizeof want, "{\"pid\":%d,\"role\":\"child\",\"rss_kb\":", kid[i]);
		CHECK(strstr(o.out, want), "json, child %d: %s", kid[i], o.out);
	}
	CHECK(!strcmp(o.out + strlen(o.out) - 3, "]}\n"), "json does not end the object: %s",
	      o.out + strlen(o.out) - 20);
	for (int i = 0; i < 2; i++)
		kill_child(kid[i]);
}

/* Where the fork cannot place the child (here: mock_template's plain
 * fork(), as on a kernel without CLONE_INTO_CGROUP), spawn_opts_apply()
 * moves it, before it runs anything else. */
Test(spawnopts, cgroup_joined_by_the_child_itself)
{
	char self[4096], path[8300], sock[256];
	make_test_cgroup(path, sizeof path, self, sizeof self);
	ct_setup();
	ct_mock(&prog, NULL, sock, sizeof sock);
	ct_nuwa(&o, 10000, "freeze", sock, NULL);
	CHECK(o.code == 0, "freeze mock: %s", o.err);
	ct_nuwa(&o, 10000, "spawn", "--cgroup", path, "--env", "MOCK_SEEN=1", sock, NULL);
	CHECK(o.code == 0, "spawn: exit %d: %s", o.code, o.err);
	pid_t kid = (pid_t)atol(o.out);
	CHECK(ct_expect(&prog, "MOCK CHILD ", 10000), "no child: %s", prog.buf);
	char cg[256], buf[4096] = "", want[8400];
	snprintf(cg, sizeof cg, "/proc/%d/cgroup", kid);
	int fd = open(cg, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof want, "0::%s/nuwa-test-%d\n", self, getpid());
	kill_child(kid);
	CHECK(strstr(buf, want), "child %d: %s, want %s", kid, buf, want);
}

/* A child taken from the pool (forked before the request) gets the same
 * options: its setup_fn reads them from the ranges copied into it, and it
 * joins the cgroup by path. */
Test(spawnopts, options_of_a_pooled_child)
{
	static const char *const env[] = { "NUWA_POOL=2", "KEEP=template", NULL };
	char p[32];
	frozen_template(p, sizeof p, env);
	for (long long end = ct_now_ms() + 30000;; ct_sleep_ms(20)) {
		ct_nuwa(&o, 10000, "status", p, NULL);
		if (strstr(o.out, "pool 2: 2 ready"))
			break;
		CHECK(ct_now_ms() < end, "the pool never filled: %s", o.out);
	}
	char self[4096] = "", path[8300] = "", want[8400] = "";
	char root[4096];
	int have_cg = 0;
	if (cgroup2_root(root, sizeof root)) {
		FILE *f = fopen("/proc/self/cgroup", "re");
		char line[4096];
		while (f && fgets(line, sizeof line, f))
			if (!strncmp(line, "0::", 3)) {
				line[strcspn(line, "\n")] = 0;
				snprintf(self, sizeof self, "%.2000s", strcmp(line + 3, "/") ? line + 3 : "");
			}
		if (f)
			fclose(f);
		snprintf(path, sizeof path, "%.2000s%.2000s/nuwa-test-%d", root, self, getpid());
		if (mkdir(path, 0755) == 0) {
			snprintf(cg_made, sizeof cg_made, "%s", path);
			have_cg = 1;
		}
	}
	const char *argv[40];
	int n = 0;
	argv[n++] = "spawn";
	argv[n++] = "--stdio";
	argv[n++] = "--wait";
	argv[n++] = "--env";
	argv[n++] = "NEW=pooled";
	argv[n++] = "--cwd";
	argv[n++] = "/";
	if (have_cg) {
		argv[n++] = "--cgroup";
		argv[n++] = path;
	}
	argv[n++] = "--call";
	argv[n++] = "cli_scn_env(str:NEW)";
	argv[n++] = "--call";
	argv[n++] = "cli_scn_env(str:KEEP)";
	argv[n++] = "--call";
	argv[n++] = "cli_scn_cwd()";
	if (have_cg) {
		argv[n++] = "--call";
		argv[n++] = "cli_scn_cgroup()";
	}
	argv[n++] = "--call";
	argv[n++] = "_exit(int:0)";
	argv[n++] = p;
	argv[n] = NULL;
	const char *full[42] = { ct_path("NUWA_CLI") };
	memcpy(full + 1, argv, sizeof(char *) * (size_t)(n + 1));
	ct_run(&o, full, NULL, 20000);
	snprintf(want, sizeof want, "env NEW=pooled\nenv KEEP=template\ncwd /\n");
	if (have_cg)
		snprintf(want + strlen(want), sizeof want - strlen(want), "cgroup %s/nuwa-test-%d\n",
		         self, getpid());
	CHECK(o.code == 0 && !strcmp(o.out, want), "exit %d: [%s] want [%s] %s", o.code, o.out,
	      want, o.err);
	ct_nuwa(&o, 10000, "status", p, NULL);
	CHECK(strstr(o.out, "; 1 taken"), "the child was not the pool's: %s", o.out);
}
