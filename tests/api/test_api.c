/* The opt-in API (issue 4): examples/nuwa_demo.c built with
 * `pkg-config --cflags --libs libnuwa` works plainly (every call -ENOSYS),
 * preloaded (nuwa_freeze makes a template; nuwa_spawn and `nuwa spawn`
 * children run the constructors before and the final constructors after
 * their threads resume, without the nuwa_thread_skip() thread, with the
 * descriptor policy applied; `nuwa thaw` returns 0 to nuwa_freeze) and
 * linked with -lnuwa.
 *
 * The example prints "ROLE: key=value" lines (see its header); these tests
 * read them.  Every process gets a deadline; helpers from tests/cli. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_test.h"

#define RUN_MS 20000

/* ---- building the example -------------------------------------------------- */

static void sh(struct ct_out *o, const char *script)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	ct_run(o, argv, NULL, 60000);
}

/* Compile the example with the libnuwa.pc found in pcdir (plus pkg-config
 * options popts, e.g. --define-variable) and extra link flags. */
static void build_example(const char *pcdir, const char *popts, const char *extra,
                          const char *bin)
{
	char script[4096];
	snprintf(script, sizeof script,
	         "export PKG_CONFIG_PATH='%s' PKG_CONFIG_LIBDIR=/nonexistent; "
	         "'%s' -Wall -Wextra -Werror $(pkg-config %s --cflags libnuwa) -o '%s' '%s' "
	         "$(pkg-config %s --libs libnuwa) -pthread %s",
	         pcdir, ct_path("NUWA_CC"), popts, bin, ct_path("NUWA_EXAMPLE"), popts, extra);
	struct ct_out o;
	sh(&o, script);
	cr_assert_eq(o.code, 0, "building the example failed:\n%s\n%s%s", script, o.out, o.err);
}

/* Built against the build tree's meson-uninstalled/libnuwa-uninstalled.pc. */
static const char *example(const char *base)
{
	static char bin[512];
	char pcdir[512];
	snprintf(bin, sizeof bin, "%s/nuwa_demo", base);
	snprintf(pcdir, sizeof pcdir, "%s/meson-uninstalled", ct_path("NUWA_BUILD_ROOT"));
	build_example(pcdir, "", "", bin);
	return bin;
}

/* ---- reading its output -------------------------------------------------------- */

/* The line of `text` that starts with prefix (NULL if none), copied. */
static const char *line_of(const char *text, const char *prefix, char *buf, size_t len)
{
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (!strncmp(p, prefix, strlen(prefix))) {
			snprintf(buf, len, "%.*s", (int)n, p);
			return buf;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

/* The integer after "key=" in the line of text starting with prefix. */
static long field(const char *text, const char *prefix, const char *key)
{
	char line[512], want[64];
	if (!line_of(text, prefix, line, sizeof line))
		cr_assert_fail("no line starting with '%s' in:\n%s", prefix, text);
	snprintf(want, sizeof want, " %s=", key);
	const char *v = strstr(line, want);
	cr_assert(v, "no %s= in '%s'", key, line);
	return strtol(v + strlen(want), NULL, 10);
}

static int has(const char *text, const char *needle)
{
	return strstr(text, needle) != NULL;
}

/* The line prefix "ROLE: ..." that comes first among two in text. */
static void assert_before(const char *text, const char *first, const char *second)
{
	const char *a = strstr(text, first), *b = strstr(text, second);
	cr_assert(a && b, "missing '%s' or '%s' in:\n%s", first, second, text);
	cr_assert(a < b, "'%s' came after '%s':\n%s", first, second, text);
}

/* ---- a preloaded template --------------------------------------------------------- */

/* Processes started in the background: killed (whole process group) after
 * each test, passed or failed, so that no frozen template outlives it. */
static struct ct_bg *bgs[4];
static int nbgs;

static void bg_start(struct ct_bg *b, const char *const *argv, const char *const *env)
{
	ct_start(b, argv, env, 1);
	if (nbgs < 4)
		bgs[nbgs++] = b;
}

/* Its last line ("ROLE: worker_running=... skipped_thread_running=..."),
 * then its exit status. */
static int bg_finish(struct ct_bg *b)
{
	if (!ct_expect(b, "skipped_thread_running=", RUN_MS))
		return -1;
	return ct_wait(b, RUN_MS);
}

static void bg_cleanup(void)
{
	for (int i = 0; i < nbgs; i++)
		if (ct_alive(bgs[i]->pid))
			ct_kill(bgs[i]);
	nbgs = 0;
}

static char lib_env[8300];

static const char *const *preload_env(void)
{
	static const char *env[2];
	snprintf(lib_env, sizeof lib_env, "LD_PRELOAD=%s", ct_preload(ct_path("NUWA_LIB")));
	env[0] = lib_env;
	env[1] = NULL;
	return env;
}

/* Start bin (with env), wait until nuwa_freeze() made it a template.
 * Returns its pid (the one it printed: bin itself, a child of ours). */
static pid_t start_template(struct ct_bg *b, const char *bin, const char *const *env)
{
	const char *argv[] = { bin, NULL };
	bg_start(b, argv, env);
	cr_assert(ct_expect(b, "main: freezing", RUN_MS), "no freeze call:\n%s", b->buf);
	char line[128];
	cr_assert(line_of(b->buf, "setup: pid=", line, sizeof line));
	pid_t pid = (pid_t)atol(line + strlen("setup: pid="));
	cr_assert_eq(pid, b->pid);
	char sock[512];
	snprintf(sock, sizeof sock, "%s/%d.sock", ct_rundir(), (int)pid);
	unsigned state = 0;
	long long deadline = ct_now_ms() + RUN_MS;
	while (ct_now_ms() < deadline) {
		if (ct_hello(sock, &state, NULL) == 0 && state == 2 /* template */)
			return pid;
		ct_sleep_ms(20);
	}
	cr_assert_fail("%d did not become a template (state %u):\n%s", (int)pid, state, b->buf);
	return -1;
}

/* What a spawned child printed (ctor, final, child lines), checked. */
static long check_child(const char *out, int threads)
{
	/* constructors first, before the threads resume... */
	cr_assert_eq(field(out, "ctor:", "seq"), 1, "%s", out);
	cr_assert_eq(field(out, "ctor:", "threads_paused"), 1, "%s", out);
	cr_assert_eq(field(out, "ctor:", "spawned"), 1, "%s", out);
	cr_assert_eq(field(out, "ctor:", "template"), 0, "%s", out);
	/* ...final constructors once they run */
	cr_assert_eq(field(out, "final:", "seq"), 2, "%s", out);
	cr_assert_eq(field(out, "final:", "threads_running"), 1, "%s", out);
	cr_assert_eq(field(out, "final:", "spawned"), 1, "%s", out);
	cr_assert_eq(field(out, "final:", "template"), 0, "%s", out);
	assert_before(out, "ctor:", "child: worker_running");
	/* nuwa_freeze() returned 1 in the child */
	cr_assert_eq(field(out, "child: freeze", "freeze"), 1, "%s", out);
	cr_assert_eq(field(out, "child: freeze", "spawned"), 1, "%s", out);
	cr_assert_eq(field(out, "child: freeze", "template"), 0, "%s", out);
	cr_assert(has(out, "log_fd=closed"), "NUWA_FD_CLOSE not applied:\n%s", out);
	/* the nuwa_thread_skip() thread is not there, the others are */
	cr_assert_eq(field(out, "child: freeze", "threads"), threads, "%s", out);
	cr_assert_eq(field(out, "child: worker", "worker_running"), 1, "%s", out);
	cr_assert_eq(field(out, "child: worker", "skipped_thread_running"), 0, "%s", out);
	return field(out, "child: freeze", "random");
}

/* ---- tests ------------------------------------------------------------------------ */

TestSuite(api, .timeout = 60, .fini = bg_cleanup);

/* Not preloaded, not linked: every call returns -ENOSYS and the program
 * does its job unfrozen. */
Test(api, plain)
{
	const char *bin = example(ct_setup());
	struct ct_out o;
	const char *argv[] = { bin, NULL };
	ct_run(&o, argv, NULL, RUN_MS);
	cr_assert_eq(o.code, 0, "%s%s", o.out, o.err);
	cr_assert(has(o.out, "ctor=-38 final=-38 fd_policy=-38"), "%s", o.out);
	cr_assert(has(o.out, "setup: thread_skip=-38"), "%s", o.out);
	cr_assert(has(o.out, "main: freezing spawned=-38 template=-38"), "%s", o.out);
	cr_assert(has(o.out, "main: freeze=-38 "), "%s", o.out);
	cr_assert(has(o.out, "unfrozen: freeze=-38 spawned=-38 template=-38"), "%s", o.out);
	cr_assert(has(o.out, "log_fd=open"), "%s", o.out);
	cr_assert_eq(field(o.out, "unfrozen: worker", "skipped_thread_running"), 1, "%s", o.out);

	const char *spawn[] = { bin, "spawn", "1", NULL };
	ct_run(&o, spawn, NULL, RUN_MS);
	cr_assert_eq(o.code, 1);
	cr_assert(has(o.out, "launcher: spawn=-38 "), "%s", o.out);
}

/* The whole life of a template made by nuwa_freeze(). */
Test(api, preloaded_template)
{
	const char *bin = example(ct_setup());
	struct ct_bg t;
	pid_t tp = start_template(&t, bin, preload_env());
	int threads = ct_threads(tp);
	cr_assert_geq(threads, 4, "template has %d threads", threads);

	/* The frozen template is a template and not a spawned child, as its own
	 * interface reports it (the same state nuwa_is_template() and
	 * nuwa_is_spawned() read; no program thread runs there to call them). */
	char tps[16];
	snprintf(tps, sizeof tps, "%d", (int)tp);
	struct ct_out st;
	ct_nuwa(&st, RUN_MS, "status", "--json", tps, NULL);
	cr_assert_eq(st.code, 0, "%s%s", st.out, st.err);
	cr_assert(has(st.out, "\"state\":\"template\""), "%s", st.out);
	cr_assert(has(st.out, "\"spawned\":false"), "%s", st.out);

	/* 1: nuwa_spawn() from a preloaded launcher, with its stdio */
	const char *launch[] = { bin, "spawn", tps, NULL };
	struct ct_out a;
	ct_run(&a, launch, preload_env(), RUN_MS);
	cr_assert_eq(a.code, 0, "%s%s", a.out, a.err);
	long kid = field(a.out, "launcher:", "spawn");
	cr_assert_gt(kid, 0, "%s", a.out);
	cr_assert_neq(kid, tp);
	long r1 = check_child(a.out, threads - 1);

	/* 2: the nuwa command */
	struct ct_out b;
	ct_nuwa(&b, RUN_MS, "spawn", "--stdio", "--wait", tps, NULL);
	cr_assert_eq(b.code, 0, "%s%s", b.out, b.err);
	long r2 = check_child(b.out, threads - 1);

	/* 3: thaw; nuwa_freeze() returns 0 and everything runs as before */
	struct ct_out th;
	ct_nuwa(&th, RUN_MS, "thaw", tps, NULL);
	cr_assert_eq(th.code, 0, "%s%s", th.out, th.err);
	cr_assert_eq(bg_finish(&t), 0, "template:\n%s", t.buf);
	const char *out = t.buf;
	cr_assert_eq(field(out, "template: freeze", "freeze"), 0, "%s", out);
	cr_assert_eq(field(out, "template: freeze", "spawned"), 0, "%s", out);
	cr_assert_eq(field(out, "template: freeze", "template"), 0, "%s", out);
	cr_assert_eq(field(out, "template: freeze", "threads"), threads, "%s", out);
	cr_assert(has(out, "log_fd=open"), "%s", out);
	cr_assert_eq(field(out, "template: worker", "worker_running"), 1, "%s", out);
	cr_assert_eq(field(out, "template: worker", "skipped_thread_running"), 1, "%s", out);
	cr_assert(!has(out, "ctor:") && !has(out, "final:"), "hooks ran in the template:\n%s",
	          out);
	/* Reseeded in the final constructor: the children's draws differ from
	 * each other and from the template's own next draw, which is what a
	 * copy that did not reseed would have drawn. */
	long rt = field(out, "template: freeze", "random");
	cr_assert(r1 != r2 && r1 != rt && r2 != rt, "random: child %ld, %ld, template %ld",
	          r1, r2, rt);
}

/* nuwa_spawn() errors, and a freeze that fails leaves the program running. */
Test(api, errors)
{
	const char *bin = example(ct_setup());
	struct ct_out o;
	/* no such process */
	const char *none[] = { bin, "spawn", "2147483600", NULL };
	ct_run(&o, none, preload_env(), RUN_MS);
	cr_assert_eq(o.code, 1);
	cr_assert(has(o.out, "launcher: spawn=-3 "), "%s%s", o.out, o.err);

	/* a libnuwa process that is not a template: the busy example, whose
	 * freeze fails under NUWA_FREEZE_POLICY=idle */
	const char *busy[] = { bin, "--busy", NULL };
	const char *env[] = { preload_env()[0], "NUWA_FREEZE_POLICY=idle",
	                      "NUWA_FREEZE_TIMEOUT_MS=2000", "NUWA_LOG=error", NULL };
	struct ct_bg t;
	bg_start(&t, busy, env);
	cr_assert(ct_expect(&t, "setup: pid=", RUN_MS), "%s", t.buf);
	char pid[16];
	snprintf(pid, sizeof pid, "%d", (int)t.pid);
	const char *launch[] = { bin, "spawn", pid, NULL };
	ct_run(&o, launch, preload_env(), RUN_MS);
	cr_assert_eq(o.code, 1);
	cr_assert(has(o.out, "launcher: spawn=-22 "), "%s%s", o.out, o.err);

	cr_assert_eq(bg_finish(&t), 0, "%s", t.buf);
	cr_assert(has(t.buf, "main: freeze=-110 "), "%s", t.buf);
	cr_assert(has(t.buf, "unfrozen: freeze=-110 spawned=0 template=0"), "%s", t.buf);
	cr_assert(has(t.buf, "log_fd=open"), "%s", t.buf);
	cr_assert_eq(field(t.buf, "unfrozen: worker", "worker_running"), 1, "%s", t.buf);
}

/* Linked with -lnuwa (no LD_PRELOAD): the header finds the linked library. */
Test(api, linked)
{
	const char *base = ct_setup();
	char bin[512], pcdir[512], extra[1200], dir[512];
	snprintf(bin, sizeof bin, "%s/nuwa_demo_linked", base);
	snprintf(pcdir, sizeof pcdir, "%s/meson-uninstalled", ct_path("NUWA_BUILD_ROOT"));
	snprintf(dir, sizeof dir, "%s", ct_path("NUWA_LIB"));
	*strrchr(dir, '/') = 0;
	snprintf(extra, sizeof extra, "-L'%s' -lnuwa -Wl,-rpath,'%s'", dir, dir);
	build_example(pcdir, "", extra, bin);

	/* Linked with a sanitized libnuwa, the program needs the sanitizer's
	 * runtime loaded first all the same (meson.build). */
	static char first_env[4200];
	const char *first = getenv("NUWA_PRELOAD_FIRST");
	snprintf(first_env, sizeof first_env, "LD_PRELOAD=%s", first ? first : "");
	const char *const env[] = { first_env, NULL }, *const *lenv = first && *first ? env : NULL;
	struct ct_bg t;
	pid_t tp = start_template(&t, bin, lenv);
	char tps[16];
	snprintf(tps, sizeof tps, "%d", (int)tp);
	const char *launch[] = { bin, "spawn", tps, NULL };
	struct ct_out a;
	ct_run(&a, launch, lenv, RUN_MS);
	cr_assert_eq(a.code, 0, "%s%s", a.out, a.err);
	check_child(a.out, ct_threads(tp) - 1);
	struct ct_out th;
	ct_nuwa(&th, RUN_MS, "thaw", tps, NULL);
	cr_assert_eq(th.code, 0, "%s%s", th.out, th.err);
	cr_assert_eq(bg_finish(&t), 0, "%s", t.buf);
	cr_assert_eq(field(t.buf, "template: freeze", "freeze"), 0, "%s", t.buf);
}

/* The installed libnuwa.pc: header only (no -lnuwa), a `preload` variable
 * naming the installed library; the example builds with it. */
Test(api, installed_pc)
{
	const char *base = ct_setup();
	char dest[600], script[4096];
	snprintf(dest, sizeof dest, "%s/dest", base);
	struct ct_out o;
	snprintf(script, sizeof script, "'%s' install --no-rebuild -C '%s' --destdir '%s' --quiet "
	         ">/dev/null && find '%s' -name libnuwa.pc", ct_path("NUWA_MESON"),
	         ct_path("NUWA_BUILD_ROOT"), dest, dest);
	sh(&o, script);
	cr_assert_eq(o.code, 0, "meson install: %s%s", o.out, o.err);
	char pc[600];
	cr_assert(sscanf(o.out, "%599s", pc) == 1, "no libnuwa.pc installed:\n%s", o.out);
	*strrchr(pc, '/') = 0;   /* its directory */

	/* prefix as configured, relocated under dest */
	snprintf(script, sizeof script, "PKG_CONFIG_PATH='%s' pkg-config --variable=prefix libnuwa",
	         pc);
	sh(&o, script);
	cr_assert_eq(o.code, 0, "%s", o.err);
	o.out[strcspn(o.out, "\n")] = 0;
	cr_assert(o.out[0] == '/' && strlen(o.out) < 200, "prefix '%.200s'", o.out);
	char popts[1400];
	snprintf(popts, sizeof popts, "--define-variable=prefix='%s%.200s'", dest, o.out);

	snprintf(script, sizeof script, "export PKG_CONFIG_PATH='%s'; pkg-config %s --cflags "
	         "--libs libnuwa; pkg-config %s --variable=preload libnuwa", pc, popts, popts);
	sh(&o, script);
	cr_assert_eq(o.code, 0, "%s", o.err);
	cr_assert(!has(o.out, "-lnuwa"), "libnuwa.pc forces -lnuwa:\n%s", o.out);
	char inc[1400];
	snprintf(inc, sizeof inc, "-I%s", dest);
	cr_assert(has(o.out, inc), "Cflags do not point into the installation:\n%s", o.out);
	char preload[1400];
	cr_assert(sscanf(strchr(o.out, '\n') + 1, "%1399s", preload) == 1, "%s", o.out);
	struct stat st;
	cr_assert(strncmp(preload, dest, strlen(dest)) == 0 && stat(preload, &st) == 0,
	          "preload=%s is not the installed library", preload);

	char bin[700];
	snprintf(bin, sizeof bin, "%s/nuwa_demo", base);
	build_example(pc, popts, "", bin);
	/* plain */
	const char *argv[] = { bin, NULL };
	ct_run(&o, argv, NULL, RUN_MS);
	cr_assert_eq(o.code, 0, "%s%s", o.out, o.err);
	cr_assert(has(o.out, "unfrozen: freeze=-38 "), "%s", o.out);
	/* preloaded with the installed library it names */
	char env0[8300];
	snprintf(env0, sizeof env0, "LD_PRELOAD=%s", ct_preload(preload));
	const char *env[] = { env0, NULL };
	struct ct_bg t;
	pid_t tp = start_template(&t, bin, env);
	char tps[16];
	snprintf(tps, sizeof tps, "%d", (int)tp);
	const char *launch[] = { bin, "spawn", tps, NULL };
	ct_run(&o, launch, env, RUN_MS);
	cr_assert_eq(o.code, 0, "%s%s", o.out, o.err);
	check_child(o.out, ct_threads(tp) - 1);
	ct_nuwa(&o, RUN_MS, "thaw", tps, NULL);
	cr_assert_eq(o.code, 0, "%s%s", o.out, o.err);
	cr_assert_eq(bg_finish(&t), 0, "%s", t.buf);
	cr_assert(has(t.buf, "template: freeze=0 "), "%s", t.buf);
}

/* A program that exits as soon as nuwa_freeze() returns 0: `nuwa thaw`
 * still gets its reply (nuwa_freeze returns only once it is sent), and a
 * spawned child gets 1.  Five rounds: the race it guards is a timing one. */
Test(api, thaw_then_exit)
{
	ct_setup();
	const char *argv[] = { ct_path("NUWA_THAW_EXIT"), NULL };
	for (int round = 0; round < 5; round++) {
		struct ct_bg t;
		bg_start(&t, argv, preload_env());
		cr_assert(ct_expect(&t, "pid ", RUN_MS), "%s", t.buf);
		char sock[512], tps[16];
		snprintf(tps, sizeof tps, "%d", (int)t.pid);
		snprintf(sock, sizeof sock, "%s/%s.sock", ct_rundir(), tps);
		unsigned state = 0;
		for (long long end = ct_now_ms() + RUN_MS; ct_now_ms() < end; ct_sleep_ms(10))
			if (ct_hello(sock, &state, NULL) == 0 && state == 2)
				break;
		cr_assert_eq(state, 2, "round %d: not a template", round);
		struct ct_out o;
		ct_nuwa(&o, RUN_MS, "spawn", "--wait", tps, NULL);
		if (o.code != 0) {
			/* what every task of the child and the template is doing */
			char cmd[256];
			snprintf(cmd, sizeof cmd, "for t in /proc/%ld/task/* /proc/%s/task/*; do "
			         "echo \"$t: $(cut -d' ' -f3 $t/stat) $(cat $t/wchan) "
			         "$(cat $t/syscall 2>/dev/null)\"; done >&2", atol(o.out), tps);
			(void)!system(cmd);
			ct_expect(&t, "\1", 300);
			fprintf(stderr, "template's output:\n%s\n", t.buf);
		}
		cr_assert_eq(o.code, 0, "round %d: child exit %d: %s%s", round, o.code, o.out, o.err);
		ct_nuwa(&o, RUN_MS, "thaw", tps, NULL);
		cr_assert_eq(o.code, 0, "round %d: thaw: %s%s", round, o.out, o.err);
		cr_assert_eq(ct_wait(&t, RUN_MS), 7, "round %d", round);
		nbgs = 0;
	}
}
