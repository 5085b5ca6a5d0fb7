/* Fault injection (issue 12): with NUWA_TEST_FAULT, the named steps of a
 * clone, a spawn and a snapshot fail as their system call could; the
 * template or the requester killed mid-spawn; the children list full
 * (NUWA_TEST_MAX_CHILDREN).  Each ends with a clear error and leaves the
 * template, its children and the original program as they were. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "robust_test.h"

TestSuite(fault, .fini = teardown, .timeout = 240);

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

/* ---- the end of the children list --------------------------------------------------- */

/* Children of pid, zombies included (/proc/PID/task/TID/children). */
static int children_of(pid_t pid)
{
	char path[300];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/children", pid, e->d_name);
		FILE *f = fopen(path, "re");
		for (long c; f && fscanf(f, "%ld", &c) == 1;)
			n++;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static void expect_children(int want, const char *when)
{
	long long deadline = ct_now_ms() + 10000;
	while (children_of(prog.pid) != want && ct_now_ms() < deadline)
		ct_sleep_ms(20);
	int n = children_of(prog.pid), z = ct_zombie_children(prog.pid);
	CHECK(n == want && z == 0, "%s: the template has %d children (%d zombies), want %d", when,
	      n, z, want);
}

static void expect_refused(const char *when)
{
	ct_nuwa(&o, 20000, "spawn", P, NULL);
	CHECK(o.code == 1 && strstr(o.err, "too many children: 3 are alive"),
	      "%s: spawn past the list: exit %d: %s", when, o.code, o.err);
}

/* A child that would find no place in the list is never forked: nobody
 * would reap it (a zombie) or remove its socket.  The spawn fails with a
 * clear error, and succeeds again once a child has ended; the pool fills
 * only what the list has room for. */
Test(fault, children_list_full)
{
	const char *env[] = { "NUWA_TEST_MAX_CHILDREN=3", NULL };
	start_env("template", env, "sig=dfl", NULL, NULL);
	progress(prog.pid, 20);
	freeze();
	pid_t a = spawn1(), b = spawn1(), c = spawn1();
	expect_refused("3 spawned");
	ct_nuwa(&o, 20000, "spawn", "-n", "2", P, NULL);
	CHECK(o.code == 1 && strstr(o.err, "too many children"), "spawn -n 2: exit %d: %s",
	      o.code, o.err);
	expect_children(3, "after the refused spawns");
	progress(c, 20);

	kill(a, SIGKILL);
	expect_children(2, "one child killed");
	pid_t d = spawn1();
	progress(d, 20);
	expect_refused("a child replaced");

	/* a pool of 2 with one place left: one pooled child, no more */
	kill(b, SIGKILL);
	expect_children(2, "another child killed");
	ct_nuwa(&o, 10000, "pool", P, "2", NULL);
	CHECK(o.code == 0, "pool 2: exit %d: %s", o.code, o.err);
	expect_children(3, "a pool of 2 with one place");
	ct_sleep_ms(1500);   /* the pool looks again every second */
	expect_children(3, "the pool retried");
	pid_t e = spawn1();  /* the pooled one */
	progress(e, 20);
	expect_refused("the pool taken");
	expect_children(3, "the pool taken");
	CHECK(ct_alive(c) && ct_alive(d) && ct_alive(e), "a spawned child died");
	kill(c, SIGKILL);
	expect_children(2, "a third child killed");
	expect_intact();
}
