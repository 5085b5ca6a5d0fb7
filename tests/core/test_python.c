/* A real program: CPython with eight threads (GIL hand-offs, time.sleep,
 * a threading.Condition queue), frozen and cloned twice in a row and 20
 * times at random moments; every process checks its own state
 * (tests/scenarios/python_threads.py). */
#include "harness.h"

#include <criterion/criterion.h>


TestSuite(python, .fini = nh_cleanup_all, .timeout = 120);

Test(python, threads_twice)
{
	nh_run_clones("python_threads", NULL, 2, 1, 0);
}

Test(python, threads_random20)
{
	nh_run_clones("python_threads", NULL, 20, 1, 60);
}
