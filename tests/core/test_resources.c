/* Process resources a raw fork would not carry into a child as the program
 * expects (issue 10, classes 3 and 4): memory marked MADV_DONTFORK or
 * MADV_WIPEONFORK (tests/scenarios/mem_fork.c) and POSIX timers, itimers
 * and alarm (tests/scenarios/timers.c).  Two freezes of two clones each:
 * the second freeze must find the template as the program left it. */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(resources, .fini = nh_cleanup_all, .timeout = 120);

static void run_env(const char *name, const char *variant, const char *extra_env)
{
	const char *argv[] = { variant, NULL };
	const char *env[] = { "NUWA_CLONES=2", extra_env, NULL };
	struct nh_opts o = { .argv = variant ? argv : NULL, .env = env };
	nh_run_clones(name, &o, 2, 2, 0);
}

static void run(const char *name, const char *variant) { run_env(name, variant, NULL); }

Test(resources, madv_dontfork_and_wipeonfork) { run("mem_fork", NULL); }
Test(resources, timers_and_itimer_real) { run("timers", "itimer"); }
Test(resources, timers_and_alarm) { run("timers", "alarm"); }
Test(resources, timers_sigev_thread) { run("timers", "thread"); }
/* CRIU's way, as on kernels without PR_TIMER_CREATE_RESTORE_IDS: the
 * scenario's ids have a gap (a timer deleted before the others). */
Test(resources, timers_ids_in_creation_order)
{
	run_env("timers", "thread", "NUWA_TIMERS_IN_ORDER=1");
}
