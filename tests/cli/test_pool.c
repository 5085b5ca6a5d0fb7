/* The pool of ready children (core/pool.c), end to end: cli_scn under the
 * real libnuwa, driven by `nuwa freeze --pool`, `nuwa pool`, `nuwa spawn`
 * and `nuwa status`.  (Every spawn test of e2e suite also runs with a pool:
 * meson test cli-e2e-pool.)  Nothing here depends on timing: every wait is
 * for a state, with a generous deadline. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_test.h"

static struct ct_bg prog;
static struct ct_out o;
static const char *dir;
static pid_t kids[64];
static int nkids;

static void teardown(void)
{
	for (int i = 0; i < nkids; i++)
		kill(kids[i], SIGKILL);
	nkids = 0;
	ct_kill(&prog);
}

TestSuite(pool, .fini = teardown, .timeout = 120);

#define CHECK(cond, ...) do { if (!(cond)) { \
	ct_expect(&prog, "\1", 300); \
	fprintf(stderr, "---- program output ----\n%s\n", prog.buf); \
	cr_assert_fail(__VA_ARGS__); } } while (0)

struct state { unsigned seq, gaps; unsigned long timer; int ok; };

static struct state read_state(pid_t pid)
{
	struct state s = { 0 };
	char path[512], buf[256];
	snprintf(path, sizeof path, "%s/%d.state", dir, pid);
	FILE *f = fopen(path, "re");
	if (f) {
		int p;
		if (fgets(buf, sizeof buf, f))
			s.ok = sscanf(buf, "pid=%d seq=%u gaps=%u ticks=%*u timer=%lu", &p, &s.seq,
			              &s.gaps, &s.timer) == 4 && p == pid;
		fclose(f);
	}
	return s;
}

static int has_state_file(pid_t pid)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%d.state", dir, pid);
	return access(path, F_OK) == 0;
}

/* Wait until pid reports a sequence above `above` (and a timer count above
 * `timer_above`), without gaps. */
static struct state progress(pid_t pid, unsigned above, unsigned long timer_above)
{
	long long deadline = ct_now_ms() + 10000;
	struct state s;
	do {
		ct_drain(&prog);
		s = read_state(pid);
		if (s.ok && s.seq > above && s.timer > timer_above)
			break;
		ct_sleep_ms(10);
	} while (ct_now_ms() < deadline);
	CHECK(s.ok && s.seq > above && s.timer > timer_above, "process %d made no progress "
	      "past seq %u / timer %lu (seq %u, timer %lu)", pid, above, timer_above, s.seq,
	      s.timer);
	CHECK(s.gaps == 0, "process %d lost pipe data: %u gaps", pid, s.gaps);
	return s;
}

/* cli_scn with a POSIX timer, running; frozen with --pool n (-1: no pool). */
static pid_t start_frozen(int n, char *p, size_t plen)
{
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--mode", "template", "--log", "info",
	                       "--lib", ct_path("NUWA_LIB"), "--", ct_path("NUWA_CLI_SCN"), dir,
	                       "0", NULL };
	const char *env[] = { "CLI_SCN_TIMER=1", NULL };
	ct_start(&prog, argv, env, 1);
	snprintf(p, plen, "%d", prog.pid);
	progress(prog.pid, 20, 0);
	char pool[16];
	snprintf(pool, sizeof pool, "%d", n);
	if (n >= 0)
		ct_nuwa(&o, 20000, "freeze", "--pool", pool, p, NULL);
	else
		ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: exit %d: %s", o.code, o.err);
	return prog.pid;
}

/* The pooled children `nuwa status` lists ("  pooled PID ready"), once
 * `ready` of them are ready; returns how many pids were put in out. */
static int pooled(const char *p, int ready, pid_t *out, int max)
{
	char want[64];
	snprintf(want, sizeof want, ": %d ready, 0 preparing", ready);
	long long deadline = ct_now_ms() + 20000;
	do {
		ct_drain(&prog);
		ct_nuwa(&o, 10000, "status", p, NULL);
		CHECK(o.code == 0, "status: %s", o.err);
		if (strstr(o.out, want))
			break;
		ct_sleep_ms(20);
	} while (ct_now_ms() < deadline);
	CHECK(strstr(o.out, want), "the pool never had %d ready children: %s", ready, o.out);
	/* the pool's lines, "pooled PID ready|preparing" (the memory section
	 * names pooled children too: "pooled PID rss ...") */
	int n = 0;
	for (const char *s = o.out; (s = strstr(s, "  pooled ")) && n < max; s++) {
		int pid = 0;
		char what[16] = "";
		if (sscanf(s + 9, "%d %15s", &pid, what) == 2 &&
		    (!strcmp(what, "ready") || !strcmp(what, "preparing")))
			out[n++] = pid;
	}
	return n;
}

static int in(pid_t k, const pid_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == k)
			return 1;
	return 0;
}

static pid_t spawn_one(const char *p)
{
	ct_nuwa(&o, 20000, "spawn", p, NULL);
	CHECK(o.code == 0, "spawn: exit %d: %s", o.code, o.err);
	pid_t k = (pid_t)atol(o.out);
	CHECK(k > 0, "no pid printed: %s", o.out);
	kids[nkids++] = k;
	return k;
}

static int count_timers(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/timers", pid);
	FILE *f = fopen(path, "re");
	int n = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		n += strncmp(line, "ID:", 3) == 0;
	fclose(f);
	return n;
}

/* A pooled child runs nothing of the program: no state file, no timer (it
 * is re-created at the release), not a spawned child.  Taken, it is the
 * child of the spawn, and the pool is refilled. */
Test(pool, idle_until_taken_then_refilled)
{
	char p[32];
	pid_t pid = start_frozen(2, p, sizeof p);
	pid_t pl[8];
	int n = pooled(p, 2, pl, 8);
	CHECK(n == 2, "%d pooled children listed: %s", n, o.out);
	CHECK(strstr(o.out, "spawned children running: 0\n") && strstr(o.out, "children 0\n"),
	      "pooled children reported as spawned: %s", o.out);
	CHECK(count_timers(pid) == 1, "the template has %d POSIX timers", count_timers(pid));
	for (int i = 0; i < n; i++) {
		CHECK(ct_alive(pl[i]), "pooled child %d is gone", pl[i]);
		CHECK(ct_threads(pl[i]) == ct_threads(pid), "pooled child %d has %d threads, the "
		      "template %d", pl[i], ct_threads(pl[i]), ct_threads(pid));
		CHECK(count_timers(pl[i]) == 0, "pooled child %d has its timer already", pl[i]);
	}
	/* Long enough for a running copy to write its state many times over. */
	ct_sleep_ms(300);
	for (int i = 0; i < n; i++)
		CHECK(!has_state_file(pl[i]), "pooled child %d wrote its state file", pl[i]);

	struct state frozen = read_state(pid);
	pid_t k = spawn_one(p);
	CHECK(in(k, pl, n), "child %d did not come from the pool", k);
	/* it runs, on its own channels, and its timer fires from the release on */
	progress(k, frozen.seq + 50, frozen.timer + 20);
	CHECK(count_timers(k) == 1, "taken child %d has %d timers", k, count_timers(k));
	pid_t pl2[8];
	int n2 = pooled(p, 2, pl2, 8);
	CHECK(n2 == 2 && !in(k, pl2, n2), "the pool was not refilled: %s", o.out);
	CHECK(strstr(o.out, "1 taken"), "status does not count the taken child: %s", o.out);
	CHECK(strstr(o.out, "spawned children running: 1\n"), "%s", o.out);
	CHECK(read_state(pid).seq == frozen.seq, "the template moved");
}

/* A burst larger than the pool: the pool first, then fresh forks; every
 * child runs. */
Test(pool, burst_larger_than_pool)
{
	char p[32];
	pid_t pid = start_frozen(2, p, sizeof p);
	pid_t pl[8];
	int n = pooled(p, 2, pl, 8);
	struct state frozen = read_state(pid);
	ct_nuwa(&o, 30000, "spawn", "-n", "6", p, NULL);
	CHECK(o.code == 0, "spawn -n 6: exit %d: %s", o.code, o.err);
	pid_t got[6];
	int m = 0, from_pool = 0;
	for (char *s = o.out; *s && m < 6; m++) {
		got[m] = (pid_t)strtol(s, &s, 10);
		kids[nkids++] = got[m];
		from_pool += in(got[m], pl, n);
		while (*s == '\n')
			s++;
	}
	CHECK(m == 6, "%d pids printed: %s", m, o.out);
	CHECK(from_pool == 2, "%d of the children came from the pool of 2", from_pool);
	for (int i = 0; i < 6; i++)
		for (int j = i + 1; j < 6; j++)
			CHECK(got[i] != got[j], "child %d given twice", got[i]);
	for (int i = 0; i < 6; i++)
		progress(got[i], frozen.seq + 30, frozen.timer + 5);
	pooled(p, 2, pl, 8);   /* refilled */
}

/* A pooled child killed from outside is replaced, and never reported. */
Test(pool, killed_pooled_child_is_replaced)
{
	char p[32];
	start_frozen(2, p, sizeof p);
	pid_t pl[8];
	int n = pooled(p, 2, pl, 8);
	CHECK(n == 2, "%s", o.out);
	kill(pl[0], SIGKILL);
	long long deadline = ct_now_ms() + 20000;
	pid_t now[8];
	int k;
	do {
		k = pooled(p, 2, now, 8);
	} while (in(pl[0], now, k) && ct_now_ms() < deadline);
	CHECK(k == 2 && !in(pl[0], now, k) && in(pl[1], now, k),
	      "killed pooled child %d not replaced: %s", pl[0], o.out);
	CHECK(strstr(o.out, "spawned children running: 0\n"), "%s", o.out);
	/* and a spawn still works */
	pid_t c = spawn_one(p);
	CHECK(in(c, now, k), "child %d did not come from the pool", c);
	progress(c, 30, 5);
}

/* Thaw and stop with a full pool: the pooled children end. */
Test(pool, thaw_and_stop_end_the_pool)
{
	char p[32];
	pid_t pid = start_frozen(2, p, sizeof p);
	pid_t pl[8];
	int n = pooled(p, 2, pl, 8);
	ct_nuwa(&o, 10000, "thaw", p, NULL);
	CHECK(o.code == 0, "thaw: %s", o.err);
	long long deadline = ct_now_ms() + 10000;
	while ((ct_alive(pl[0]) || ct_alive(pl[1])) && ct_now_ms() < deadline)
		ct_sleep_ms(10);
	for (int i = 0; i < n; i++)
		CHECK(!ct_alive(pl[i]), "pooled child %d survived the thaw", pl[i]);
	struct state s = read_state(pid);
	progress(pid, s.seq + 30, s.timer + 5);   /* the template runs again */

	/* frozen again without a pool, then one through `nuwa pool` */
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);
	ct_nuwa(&o, 10000, "status", p, NULL);
	CHECK(!strstr(o.out, "pooled"), "a pool after a freeze without one: %s", o.out);
	ct_nuwa(&o, 10000, "pool", p, "2", NULL);
	CHECK(o.code == 0 && strstr(o.out, "keeping 2 children ready"), "pool: %d %s %s", o.code,
	      o.out, o.err);
	n = pooled(p, 2, pl, 8);
	ct_nuwa(&o, 10000, "stop", p, NULL);
	CHECK(o.code == 0, "stop: %s", o.err);
	deadline = ct_now_ms() + 10000;
	while ((ct_alive(pl[0]) || ct_alive(pl[1]) || ct_alive(pid)) && ct_now_ms() < deadline)
		ct_sleep_ms(10);
	for (int i = 0; i < n; i++)
		CHECK(!ct_alive(pl[i]), "pooled child %d survived the stop", pl[i]);
}

/* --stdio and --call reach a pooled child: they are sent when it is taken. */
Test(pool, stdio_and_call)
{
	char p[32];
	start_frozen(1, p, sizeof p);
	pid_t pl[8];
	int n = pooled(p, 1, pl, 8);
	ct_nuwa(&o, 20000, "spawn", "--stdio", "--wait", "--call",
	        "cli_scn_say(str:\"hello, caller\")", "--call", "_exit(int:3)", p, NULL);
	CHECK(o.code == 3, "exit code %d (want 3): %s", o.code, o.err);
	CHECK(strcmp(o.out, "hello, caller\n") == 0, "stdout is not the child's: [%s]", o.out);
	const char *c = strstr(o.err, "nuwa spawn: child ");
	CHECK(c && in((pid_t)atol(c + 18), pl, n), "the child did not come from the pool: %s",
	      o.err);
	/* a --call with arguments, on the refilled pool */
	n = pooled(p, 1, pl, 8);
	ct_nuwa(&o, 20000, "spawn", "--call", "cli_scn_tag(int:-3, long:0x10, double:2.5, "
	        "str:\"a, b\", ptr:null)", p, NULL);
	CHECK(o.code == 0, "spawn --call: %s", o.err);
	pid_t k = (pid_t)atol(o.out);
	kids[nkids++] = k;
	CHECK(in(k, pl, n), "child %d did not come from the pool", k);
	char path[512], buf[256] = "";
	snprintf(path, sizeof path, "%s/%d.call", dir, k);
	long long deadline = ct_now_ms() + 10000;
	FILE *f = NULL;
	while (!(f = fopen(path, "re")) && ct_now_ms() < deadline)
		ct_sleep_ms(10);
	CHECK(f, "no %s", path);
	CHECK(fgets(buf, sizeof buf, f), "empty %s", path);
	fclose(f);
	CHECK(!strcmp(buf, "i=-3 l=16 d=2.5 s=[a, b] p=null\n"), "call got: %s", buf);
}

/* The pool's size, changed on a live template; refused where there is none. */
Test(pool, resize_and_errors)
{
	char p[32];
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--mode", "template", "--log", "info",
	                       "--lib", ct_path("NUWA_LIB"), "--", ct_path("NUWA_CLI_SCN"), dir,
	                       "0", NULL };
	ct_start(&prog, argv, NULL, 1);
	snprintf(p, sizeof p, "%d", prog.pid);
	long long deadline = ct_now_ms() + 10000;
	while (!read_state(prog.pid).seq && ct_now_ms() < deadline)   /* no timer: timer=0 */
		ct_sleep_ms(10);
	ct_nuwa(&o, 10000, "pool", p, "2", NULL);
	CHECK(o.code == 1 && strstr(o.err, "not a template"), "pool on a running process: %d %s",
	      o.code, o.err);
	ct_nuwa(&o, 10000, "pool", p, "65", NULL);
	CHECK(o.code == 2, "pool 65: exit %d", o.code);
	ct_nuwa(&o, 20000, "freeze", p, NULL);
	CHECK(o.code == 0, "freeze: %s", o.err);
	pid_t pl[8];
	ct_nuwa(&o, 10000, "pool", p, "3", NULL);
	CHECK(o.code == 0, "pool 3: %s", o.err);
	CHECK(pooled(p, 3, pl, 8) == 3, "%s", o.out);
	ct_nuwa(&o, 10000, "pool", p, "1", NULL);
	CHECK(o.code == 0, "pool 1: %s", o.err);
	CHECK(pooled(p, 1, pl, 8) == 1, "%s", o.out);
	ct_nuwa(&o, 10000, "pool", p, "0", NULL);
	CHECK(o.code == 0 && strstr(o.out, "no pool"), "pool 0: %s %s", o.out, o.err);
	ct_nuwa(&o, 10000, "status", "--json", p, NULL);
	CHECK(strstr(o.out, "\"pool\":{\"size\":0,"), "json: %s", o.out);
}
