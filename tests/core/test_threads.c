/* Threads: 1, 8 and 64 of them computing and sleeping; spinners that never
 * reach a freeze point; threads made by a library constructor before main;
 * joinable, detached and constantly created/exiting threads; clones of a
 * clone; several clones per trigger.  Each scenario is cloned twice in a
 * row, and 20 times at random moments (see the scenario sources for what
 * every process checks). */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdlib.h>

TestSuite(threads, .fini = nh_cleanup_all, .timeout = 120);

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })

Test(threads, one_thread_twice)
{
	struct nh_opts o = { .argv = ARGV("1") };
	nh_run_clones("threads", &o, 2, 1, 0);
}

Test(threads, one_thread_random20)
{
	struct nh_opts o = { .argv = ARGV("1") };
	nh_run_clones("threads", &o, 20, 1, 60);
}

Test(threads, eight_threads_twice)
{
	struct nh_opts o = { .argv = ARGV("8") };
	nh_run_clones("threads", &o, 2, 1, 0);
}

Test(threads, eight_threads_random20)
{
	struct nh_opts o = { .argv = ARGV("8") };
	nh_run_clones("threads", &o, 20, 1, 60);
}

Test(threads, sixty_four_threads_twice)
{
	struct nh_opts o = { .argv = ARGV("64") };
	nh_run_clones("threads", &o, 2, 1, 0);
}

Test(threads, sixty_four_threads_random20)
{
	struct nh_opts o = { .argv = ARGV("64") };
	nh_run_clones("threads", &o, 20, 1, 60);
}

/* Spinners are parked where they are once the idle wait times out
 * (policy "any"); a short timeout keeps the test quick. */
Test(threads, spinners_twice)
{
	struct nh_opts o = { .argv = ARGV("2", "3"), .env = ENV("NUWA_FREEZE_TIMEOUT_MS=200") };
	nh_run_clones("spin", &o, 2, 1, 0);
}

Test(threads, spinners_random20)
{
	struct nh_opts o = { .argv = ARGV("2", "3"), .env = ENV("NUWA_FREEZE_TIMEOUT_MS=200") };
	nh_run_clones("spin", &o, 20, 1, 40);
}

/* A thread busy inside dlopen() (a module constructor spinning 600 ms) when
 * a 50 ms freeze times out: it is not parked inside the loader (where the
 * clone and the original would read on through one shared file offset),
 * but once it has left it (tests/scenarios/dlctor.c). */
Test(threads, busy_inside_dlopen_not_parked_there)
{
	struct nh_opts o = { .argv = ARGV(getenv("NUWA_SCENARIO_DIR")),
	                     .env = ENV("NUWA_FREEZE_TIMEOUT_MS=50") };
	nh_run_clones("dlctor", &o, 1, 1, 0);
}

Test(threads, constructor_threads_twice)
{
	nh_run_clones("ctor", NULL, 2, 1, 0);
}

Test(threads, constructor_threads_random20)
{
	nh_run_clones("ctor", NULL, 20, 1, 60);
}

Test(threads, lifecycle_twice)
{
	nh_run_clones("lifecycle", NULL, 2, 1, 0);
}

Test(threads, lifecycle_random20)
{
	nh_run_clones("lifecycle", NULL, 20, 1, 60);
}

Test(threads, three_clones_per_trigger)
{
	struct nh_opts o = { .argv = ARGV("8"), .env = ENV("NUWA_CLONES=3") };
	nh_run_clones("threads", &o, 2, 3, 0);
}

/* A clone is a complete libnuwa process: it can be frozen and cloned too. */
Test(threads, clone_of_a_clone)
{
	struct nh_opts o = { .argv = ARGV("8") };
	nh_proc *p = nh_start("threads", &o);
	nh_expect_ready(p);
	nh_clone(p, NH_CLONE_MS);
	pid_t cand[16], child = 0;
	int n = nh_clone_pids(p, p->pid, cand, 16);
	for (int i = 0; i < n && !child; i++)   /* the number that is a live process of ours */
		if (cand[i] != p->pid && getpgid(cand[i]) == p->pid)
			child = cand[i];
	if (!child)
		nh_fail(p, "cannot find the clone's pid in the \"clone done:\" line");
	nh_clone_pid(p, child, NH_CLONE_MS);
	nh_clone_pid(p, child, NH_CLONE_MS);
	nh_clone(p, NH_CLONE_MS);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 5);
	nh_free(p);
}

/* Triggers faster than freezes: each one either makes a clone or is merged
 * with one under way; whatever the count, every clone made is complete. */
Test(threads, trigger_burst)
{
	struct nh_opts o = { .argv = ARGV("8") };
	nh_proc *p = nh_start("threads", &o);
	nh_expect_ready(p);
	for (int i = 0; i < 5; i++) {
		nh_trigger(p);
		nh_sleep_ms(2);
	}
	int done = 0;
	long long quiet_since = nh_now_ms(), end = nh_now_ms() + 15000;
	while (nh_now_ms() - quiet_since < 1500 && nh_now_ms() < end) {
		nh_pump(p, 100);
		int n = nh_count(p->err.data, "clone done:");
		if (n != done)
			done = n, quiet_since = nh_now_ms();
	}
	if (done < 1 || done > 5)
		nh_fail(p, "%d clones for 5 quick triggers", done);
	if (nh_count(p->err.data, "freeze failed:"))
		nh_fail(p, "a freeze failed");
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1 + done);
	nh_free(p);
}
