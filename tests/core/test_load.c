/* Load during freeze (issue 12): 16 threads hammer mutexes, condition
 * variables and pipes (tests/scenarios/load.c) while 100 triggers fire in
 * clone mode, each after a random pause; the original and all 100 clones
 * must pass their own consistency checks (counters conserved, hand-offs in
 * order, no pipe byte lost or doubled). */
#include <criterion/criterion.h>

#include "harness.h"

TestSuite(load, .fini = nh_cleanup_all, .timeout = 300);

Test(load, hundred_triggers_under_load)
{
	nh_proc *p = nh_start("load", NULL);
	nh_expect_ready(p);
	nh_random_triggers(p, 100, 5, 40);
	nh_finish(p, 120000);
	nh_expect_results(p, 101);
}
