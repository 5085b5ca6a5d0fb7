/* Timed waits interrupted by freezes end at their original deadline, never
 * early, never with EINTR, at most 300 ms late, in the original and in the
 * clones (tests/scenarios/timeouts.c).  Timing-sensitive: this suite runs
 * alone (is_parallel: false) with one criterion job. */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(timeouts, .fini = nh_cleanup_all, .timeout = 90);

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* One 3 s wait per thread; both triggers land in it. */
Test(timeouts, three_seconds_twice)
{
	struct nh_opts o = { .argv = ARGV("once", "300") };
	nh_proc *p = nh_start("timeouts", &o);
	nh_expect_ready(p);
	nh_sleep_ms(300);
	nh_clone(p, NH_CLONE_MS);
	nh_sleep_ms(300);
	nh_clone(p, NH_CLONE_MS);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 3);
	nh_free(p);
}

/* Waits of 100..400 ms again and again; triggers at random moments. */
Test(timeouts, loop_random20)
{
	struct nh_opts o = { .argv = ARGV("loop", "300") };
	nh_run_clones("timeouts", &o, 20, 1, 80);
}
