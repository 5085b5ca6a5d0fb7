/* thaw_exit — the shortest template: a worker thread, nuwa_freeze() from
 * main, and exit as soon as the call returns.  Checks that `nuwa thaw`
 * still gets its reply from a program that exits at once (exit 7), and
 * that a spawned child gets 1 (exit 0).  Built with the public header
 * only, so the calls go through its run-time look-ups. */
#include <nuwa.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *idle(void *arg)
{
	for (;;)
		pause();
	return arg;
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, idle, NULL);
	printf("pid %d\n", (int)getpid());
	fflush(stdout);
	int r = nuwa_freeze();
	return r == 0 ? 7 : r == 1 ? 0 : 1;
}
