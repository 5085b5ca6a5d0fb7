/* Robustness (issue 12): a frozen template obeys SIGTERM, SIGINT and SIGHUP;
 * the program's own fork() children leave no socket file; slow clients
 * cannot lock the control socket; a --call runs with the program's signal
 * mask; nothing on the frozen path takes a lock a parked thread can hold.
 * Injected failures and the end of the children list: test_fault.c.  The
 * program is robust_scn under `nuwa run` (robust_test.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "robust_test.h"

TestSuite(signals, .fini = teardown, .timeout = 120);
TestSuite(sockets, .fini = teardown, .timeout = 400);
TestSuite(call, .fini = teardown, .timeout = 240);

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
	long t0 = ct_thread_ticks(prog.pid, "nuwa-control");
	ct_sleep_ms(1000);
	long t1 = ct_thread_ticks(prog.pid, "nuwa-control");
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
	while (ct_sockets_in_rundir() != 1 && ct_now_ms() < deadline)
		ct_sleep_ms(50);
	int n = ct_sockets_in_rundir();
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
