/* Threads asleep in raw system calls (futex, timed futex, nanosleep,
 * epoll_wait, read), outside every libnuwa wrapper, are idle: a freeze
 * parks them at once instead of waiting out NUWA_FREEZE_TIMEOUT_MS, and
 * NUWA_FREEZE_POLICY=idle accepts them.  Every thread then works on in the
 * original and in each clone (tests/scenarios/rawsleep.c).
 *
 * The timeout is 30 s and each clone must be done within 10 s: a freeze
 * that waited for these threads would miss that by 20 s, and one that
 * parks them takes milliseconds, so no timing precision is relied on. */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(rawsleep, .fini = nh_cleanup_all, .timeout = 120);

#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void two_clones(const char *const *argv, const char *const *env)
{
	struct nh_opts o = { .argv = argv, .env = env };
	nh_proc *p = nh_start("rawsleep", &o);
	nh_expect_ready(p);
	for (int i = 0; i < 2; i++) {
		nh_clone(p, 10000);
		nh_pump(p, 100);
	}
	nh_pump(p, 300);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 3);
	nh_free(p);
}

Test(rawsleep, raw_calls_any_policy)
{
	two_clones(NULL, ENV("NUWA_FREEZE_TIMEOUT_MS=30000"));
}

Test(rawsleep, raw_calls_idle_policy)
{
	two_clones(NULL, ENV("NUWA_FREEZE_POLICY=idle", "NUWA_FREEZE_TIMEOUT_MS=30000"));
}

/* The reference: the same 64 threads in pthread_cond_wait, same bounds. */
Test(rawsleep, cond_wait_idle_policy)
{
	two_clones(ARGV("cond"), ENV("NUWA_FREEZE_POLICY=idle", "NUWA_FREEZE_TIMEOUT_MS=30000"));
}
