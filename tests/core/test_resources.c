/* Process resources a raw fork would not carry into a child as the program
 * expects (issue 10, classes 3 and 4): memory marked MADV_DONTFORK or
 * MADV_WIPEONFORK (tests/scenarios/mem_fork.c) and POSIX timers, itimers
 * and alarm (tests/scenarios/timers.c).  Two freezes of two clones each:
 * the second freeze must find the template as the program left it. */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(resources, .fini = nh_cleanup_all, .timeout = 120);

static void run(const char *name, const char *variant)
{
	const char *argv[] = { variant, NULL };
	const char *env[] = { "NUWA_CLONES=2", NULL };
	struct nh_opts o = { .argv = variant ? argv : NULL, .env = env };
	nh_run_clones(name, &o, 2, 2, 0);
}

Test(resources, madv_dontfork_and_wipeonfork) { run("mem_fork", NULL); }
Test(resources, timers_and_itimer_real) { run("timers", "itimer"); }
Test(resources, timers_and_alarm) { run("timers", "alarm"); }
Test(resources, timers_sigev_thread) { run("timers", "thread"); }
