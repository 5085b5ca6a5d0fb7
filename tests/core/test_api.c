/* The opt-in C API (include/nuwa.h): nuwa_clone from main and from a
 * worker, preloaded and linked with -lnuwa (tests/scenarios/api.c). */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(api, .fini = nh_cleanup_all, .timeout = 60);

static void run(const char *name, int no_preload)
{
	struct nh_opts o = { .no_preload = no_preload };
	nh_proc *p = nh_start(name, &o);
	if (!nh_wait_out(p, "API done\n", 1, 15000))
		nh_fail(p, "the original did not finish its nuwa_clone calls");
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 4);
	nh_free(p);
}

Test(api, nuwa_clone_preloaded) { run("api", 0); }
Test(api, nuwa_clone_linked) { run("api_linked", 1); }
