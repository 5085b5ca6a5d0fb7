/* Condition variables (cond_signal hand-offs, no lost wake-up, destroy
 * returns) and owner-recording locks (error-checking, recursive, robust
 * mutexes, write-locked rwlocks) across freezes; see
 * tests/scenarios/condvar.c and mutexes.c. */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(sync, .fini = nh_cleanup_all, .timeout = 150);

Test(sync, condvar_twice)
{
	nh_run_clones("condvar", NULL, 2, 1, 0);
}

/* 21 processes on 2 cores: 20 000 hand-offs each after EOF (the 100 000
 * of the issue are run by condvar_twice). */
Test(sync, condvar_random20)
{
	struct nh_opts o = { .argv = (const char *const[]){ "20000", NULL } };
	nh_run_clones("condvar", &o, 20, 1, 60);
}

Test(sync, mutexes_twice)
{
	nh_run_clones("mutexes", NULL, 2, 1, 0);
}

Test(sync, mutexes_random20)
{
	nh_run_clones("mutexes", NULL, 20, 1, 60);
}
