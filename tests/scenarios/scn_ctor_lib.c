/* scn_ctor_lib.c — libscn_ctor.so.  Its constructor runs before main and
 * creates thread A, which creates B (a sleeper loop) and C (waits on a
 * condition variable), then joins them.  Whether libnuwa's constructor has
 * run yet depends on the loader's order; either way libnuwa must find these
 * threads (it lists /proc/self/task) and resume them in every clone. */
#include "scn_ctor_lib.h"

#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

pthread_t scn_ctor_thread;
pid_t scn_ctor_tid;
volatile int scn_ctor_errors;
volatile int scn_ctor_grandchildren;
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stop;

static void *sleeper(void *a)
{
	__atomic_add_fetch(&scn_ctor_grandchildren, 1, __ATOMIC_SEQ_CST);
	unsigned long loops = 0;
	for (;;) {
		pthread_mutex_lock(&mx);
		int s = stop;
		pthread_mutex_unlock(&mx);
		if (s)
			break;
		struct timespec t0, t1, d = { 0, 20000000 };
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (nanosleep(&d, NULL) != 0)
			__atomic_add_fetch(&scn_ctor_errors, 1, __ATOMIC_SEQ_CST);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 20000000)
			__atomic_add_fetch(&scn_ctor_errors, 1, __ATOMIC_SEQ_CST);
		loops++;
	}
	return (void *)(uintptr_t)(loops ? 100 : 1);
}

static void *waiter(void *a)
{
	__atomic_add_fetch(&scn_ctor_grandchildren, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&mx);
	while (!stop)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
	return (void *)(uintptr_t)200;
}

static void *ctor_main(void *a)
{
	pthread_t b, c;
	void *rb = NULL, *rc = NULL;
	if (pthread_create(&b, NULL, sleeper, NULL) || pthread_create(&c, NULL, waiter, NULL)) {
		scn_ctor_errors++;
		return NULL;
	}
	if (pthread_join(b, &rb) || pthread_join(c, &rc))
		__atomic_add_fetch(&scn_ctor_errors, 1, __ATOMIC_SEQ_CST);
	if ((uintptr_t)rb != 100 || (uintptr_t)rc != 200)
		__atomic_add_fetch(&scn_ctor_errors, 1, __ATOMIC_SEQ_CST);
	return (void *)SCN_CTOR_RESULT;
}

void scn_ctor_stop(void)
{
	pthread_mutex_lock(&mx);
	stop = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
}

__attribute__((constructor)) static void start(void)
{
	scn_ctor_tid = (pid_t)syscall(SYS_gettid);
	if (pthread_create(&scn_ctor_thread, NULL, ctor_main, NULL))
		scn_ctor_errors = 1000;
}
