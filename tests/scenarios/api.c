/* api — the opt-in C API: nuwa_clone() from main, then from a worker.
 *
 * Built twice: `api` references libnuwa's functions weakly and gets them
 * from LD_PRELOAD; `api_linked` is linked with -lnuwa and runs without
 * LD_PRELOAD.  Three workers count while the clones are made.
 *
 *  - nuwa_clone(0) and nuwa_clone(2000) are refused with -EINVAL;
 *  - main: nuwa_clone(2, pids) returns 2 with two distinct pids in the
 *    caller and 0 in each child, where nuwa_is_spawned() is 1, getpid() ==
 *    gettid() in main, and every worker is counting again;
 *  - then a worker calls nuwa_clone(1, pids) in the original process only:
 *    1 there, 0 in its child.
 * The original prints "API done" when both calls returned; 4 processes
 * report in the end.
 */
#include "scn.h"
#include "nuwa.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#pragma weak nuwa_clone
#pragma weak nuwa_is_spawned

#define NWORK 3

static volatile unsigned long counter[NWORK];
static volatile int eof_seen;
static volatile int worker_clone_now, worker_clone_done;
static int worker_clone_ret = -1;

static void expect_progress(const char *when)
{
	unsigned long before[NWORK];
	for (int i = 0; i < NWORK; i++)
		before[i] = counter[i];
	for (int tries = 0; tries < 200; tries++) {
		int all = 1;
		for (int i = 0; i < NWORK; i++)
			all &= counter[i] != before[i];
		if (all)
			return;
		scn_sleep_ms(5);
	}
	scn_fail("%s: workers are not running", when);
}

static void check_child(const char *who)
{
	if (!scn_is_clone())
		scn_fail("%s: nuwa_clone returned 0 but getpid() is the original pid", who);
	if (nuwa_is_spawned() != 1)
		scn_fail("%s: nuwa_is_spawned() = %d in a child", who, nuwa_is_spawned());
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	while (!eof_seen) {
		counter[idx]++;
		scn_sleep_ms(2);
		if (idx == 0 && worker_clone_now && !worker_clone_done) {
			pid_t pid = 0;
			int r = nuwa_clone(1, &pid);
			worker_clone_ret = r;
			if (r == 0) {
				check_child("worker's clone");
			} else if (r != 1 || pid <= 0 || pid == getpid()) {
				scn_fail("worker: nuwa_clone(1) returned %d, pid %d", r, (int)pid);
			}
			worker_clone_done = 1;
		}
	}
	return NULL;
}

int main(void)
{
	scn_init();
	if (!nuwa_clone || !nuwa_is_spawned) {
		scn_out("RESULT pid=%d clone=0 FAIL libnuwa's API is not there\n", (int)getpid());
		return 2;
	}
	if (nuwa_is_spawned() != 0)
		scn_fail("nuwa_is_spawned() = %d in the original", nuwa_is_spawned());
	int r;
	if ((r = nuwa_clone(0, NULL)) != -EINVAL)
		scn_fail("nuwa_clone(0) returned %d, want -EINVAL", r);
	if ((r = nuwa_clone(2000, NULL)) != -EINVAL)
		scn_fail("nuwa_clone(2000) returned %d, want -EINVAL", r);
	pthread_t t[NWORK];
	for (int i = 0; i < NWORK; i++)
		t[i] = scn_thread(worker, (void *)(intptr_t)i);
	expect_progress("before nuwa_clone");

	pid_t pids[2] = { 0, 0 };
	r = nuwa_clone(2, pids);
	if (r == 0) {
		check_child("main's clone");
		if (getpid() != scn_gettid())
			scn_fail("child main: getpid() %d != gettid() %d", (int)getpid(),
				 (int)scn_gettid());
		expect_progress("in a child of nuwa_clone");
	} else if (r != 2 || pids[0] <= 0 || pids[1] <= 0 || pids[0] == pids[1] ||
		   pids[0] == getpid() || pids[1] == getpid()) {
		scn_fail("nuwa_clone(2) returned %d, pids %d %d", r, (int)pids[0], (int)pids[1]);
	} else {
		expect_progress("after nuwa_clone in the original");
		worker_clone_now = 1;
		while (!worker_clone_done)
			scn_sleep_ms(2);
		if (!scn_is_clone()) {   /* not the worker's child */
			expect_progress("after the worker's nuwa_clone");
			scn_out("API done\n");
		}
	}
	scn_wait_eof();
	scn_watchdog(20);
	eof_seen = 1;
	for (int i = 0; i < NWORK; i++)
		scn_join(t[i], "joining workers");
	return scn_finish();
}
