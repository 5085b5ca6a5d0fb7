/* ctor — threads created before main by a shared library's constructor
 * (libscn_ctor.so: thread A, which itself created B and C before main).
 * main checks they were there before it started, and after EOF stops them
 * and joins A, whose value is only right if B and C ended normally. */
#include "scn.h"
#include "scn_ctor_lib.h"

#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

static int count_tasks(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

int main(void)
{
	scn_init();
	/* A, B and C exist before main does anything. */
	for (int i = 0; i < 500 && scn_ctor_grandchildren < 2; i++)
		scn_sleep_ms(2);
	if (scn_ctor_grandchildren != 2)
		scn_fail("the constructor's thread did not start its two threads");
	if (count_tasks() < 4)
		scn_fail("only %d tasks, want main + 3 library threads (+ libnuwa)", count_tasks());
	if (scn_ctor_tid != getpid())
		scn_fail("the constructor did not run on the main thread");
	scn_ready();
	scn_wait_eof();
	scn_watchdog(20);
	scn_ctor_stop();
	void *r = scn_join(scn_ctor_thread, "joining the constructor's thread");
	if ((uintptr_t)r != SCN_CTOR_RESULT)
		scn_fail("constructor thread returned %p", r);
	if (scn_ctor_errors)
		scn_fail("%d failures in the library's threads", scn_ctor_errors);
	return scn_finish();
}
