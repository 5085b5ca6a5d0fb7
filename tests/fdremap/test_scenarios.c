/* fdremap under the real core: scenario programs (tests/scenarios/fd_*.c)
 * preloaded with libnuwa, cloned by the trigger signal or nuwa_clone(). */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(fd, .fini = nh_cleanup_all, .timeout = 120);

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void two_clones(const char *name, const struct nh_opts *o)
{
	nh_proc *p = nh_start(name, o);
	nh_expect_ready(p);
	nh_clone(p, NH_CLONE_MS);
	nh_clone(p, NH_CLONE_MS);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 3);
	nh_free(p);
}

/* queued data exactly once everywhere; 10 000 self-pipe wake-ups each */
Test(fd, channels_queued_data_and_wakeups) { two_clones("fd_channels", NULL); }

/* each process's epoll loop sees exactly its own events */
Test(fd, epoll_loop_own_events) { two_clones("fd_epoll", NULL); }

/* programs that close every descriptor above 2 at start-up */
Test(fd, close_loop_at_startup)
{
	struct nh_opts o = { .argv = ARGV("loop") };
	two_clones("fd_closeall", &o);
}
Test(fd, close_range_at_startup)
{
	struct nh_opts o = { .argv = ARGV("range") };
	two_clones("fd_closeall", &o);
}
Test(fd, closefrom_at_startup)
{
	struct nh_opts o = { .argv = ARGV("from") };
	two_clones("fd_closeall", &o);
}

/* 200 nuwa_clone() rounds with 50 channels: no descriptor leaks */
Test(fd, no_leak_200_clones)
{
	nh_proc *p = nh_start("fd_leak", NULL);
	nh_expect_ready(p);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1);
	nh_free(p);
}

/* a bad NUWA_FDS leaves libnuwa inert with a one-line error */
Test(fd, nuwa_fds_bad_spec)
{
	struct nh_opts bad = { .env = ((const char *const[]){ "NUWA_FDS=5=maybe", NULL }) };
	nh_proc *p = nh_start("fd_closeall", &bad);
	nh_expect_ready(p);
	nh_pump(p, 200);
	cr_assert(nh_count(p->err.data, "NUWA_FDS") >= 1, "no error about NUWA_FDS:\n%s", p->err.data);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1);
	nh_free(p);
}

/* NUWA_FDS=share on the self-pipe (fds 3 and 4 after close-all): parent and
 * clone share it again, so their wake-ups cross -- the override is applied
 * (and the scenario's check is able to fail). */
Test(fd, nuwa_fds_share_override)
{
	struct nh_opts o = { .argv = ARGV("loop"), .env = ((const char *const[]){ "NUWA_FDS=3=share,4=share", NULL }) };
	nh_proc *p = nh_start("fd_closeall", &o);
	nh_expect_ready(p);
	nh_clone(p, NH_CLONE_MS);
	nh_finish(p, NH_FINISH_MS);
	cr_assert(nh_count(p->out.data, "FAIL") >= 1, "shared self-pipe did not cross:\n%s", p->out.data);
	nh_free(p);
}
