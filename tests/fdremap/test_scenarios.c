/* fdremap under the real core: scenario programs (tests/scenarios/fd_*.c)
 * preloaded with libnuwa, cloned by the trigger signal or nuwa_clone(). */
#include "harness.h"

#include <linux/kcmp.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* full unix stream queues (written in 1 to 65536-byte writes) stay full in
 * each clone, a queue with room keeps room; every byte once, in order */
Test(fd, stream_full_stays_full) { two_clones("fd_streamfull", NULL); }

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

/* kcmp(2): 0 when fd in a and fd in b are one open file description. */
static long same_file(pid_t a, pid_t b, int fd)
{
	long r = syscall(SYS_kcmp, a, b, KCMP_FILE, fd, fd);
	cr_assert_geq(r, 0, "kcmp %d %d fd %d: %s", a, b, fd, strerror(errno));
	return r == 0;
}

/* NUWA_FDS=share on the self-pipe (fds 3 and 4 after close-all): parent and
 * clone hold the very same pipe again (kcmp: one open file description),
 * while the ack pipe (5 and 6), not overridden, is the clone's own.  The
 * shared pipe then lets wake-ups cross between the processes; whether one
 * crosses in a given run is up to the scheduler, so it is not what decides. */
Test(fd, nuwa_fds_share_override)
{
	struct nh_opts o = { .argv = ARGV("loop"), .env = ((const char *const[]){ "NUWA_FDS=3=share,4=share", NULL }) };
	nh_proc *p = nh_start("fd_closeall", &o);
	nh_expect_ready(p);
	nh_clone(p, NH_CLONE_MS);
	pid_t got[2];   /* "clone done: 1 children: PID": the count, then the pid */
	cr_assert_eq(nh_clone_pids(p, 0, got, 2), 2, "%s", p->err.data);
	pid_t kid = got[1];
	char resumed[64];   /* the clone rebuilds its descriptors before this */
	snprintf(resumed, sizeof resumed, "threads in child %d", kid);
	if (!nh_wait_err(p, resumed, 1, NH_CLONE_MS))
		nh_fail(p, "clone %d did not resume", kid);
	for (int fd = 3; fd <= 4; fd++)
		if (!same_file(p->pid, kid, fd))
			nh_fail(p, "fd %d: NUWA_FDS=share not applied, the clone has its own pipe", fd);
	for (int fd = 5; fd <= 6; fd++)
		if (same_file(p->pid, kid, fd))
			nh_fail(p, "fd %d: the ack pipe is shared, not rebuilt", fd);
	nh_finish(p, NH_FINISH_MS);
	nh_free(p);
}
