/* A thread blocked in each freeze point of DESIGN.md §2 (poll … flock):
 * every call returns what it would without libnuwa, in the original and in
 * every clone (tests/scenarios/freezepoints.c). */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(freezepoints, .fini = nh_cleanup_all, .timeout = 120);

Test(freezepoints, twice)
{
	nh_run_clones("freezepoints", NULL, 2, 1, 0);
}

Test(freezepoints, random20)
{
	nh_run_clones("freezepoints", NULL, 20, 1, 80);
}
