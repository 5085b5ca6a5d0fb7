/* threads N — N application threads (main included) computing and sleeping.
 *
 * Every thread runs CHUNKS rounds: a chunk of scn_mix() iterations kept in
 * registers and mirrored on its stack and in a global slot, then a short
 * sleep in one of four freeze points (nanosleep, usleep, poll, cond
 * timedwait).  The three copies must agree after every chunk, every sleep
 * must last at least what was asked and never fail with EINTR, and a stack
 * canary must survive.  When done, workers wait on a condition variable
 * for the stop order given after EOF; main joins them and checks the value
 * each returns.  With N == 1 main is the only application thread.
 */
#include "scn.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXT 256
#define CHUNK 5000
#define CHUNKS 150
#define SLEEP_MS 10

static int nthreads;
static volatile uint64_t mirror[MAXT];
static pthread_t selfs[MAXT];
static pthread_mutex_t stop_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;
static int stop;
static pthread_mutex_t ready_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cv = PTHREAD_COND_INITIALIZER;
static int started;

static void short_sleep(int idx, pthread_mutex_t *m, pthread_cond_t *c)
{
	int64_t t0 = scn_mono_ns();
	int r = 0, kind = idx % 4;
	switch (kind) {
	case 0: {
		struct timespec ts = { 0, SLEEP_MS * 1000000L };
		r = nanosleep(&ts, NULL);
		break;
	}
	case 1:
		r = usleep(SLEEP_MS * 1000);
		break;
	case 2:
		r = poll(NULL, 0, SLEEP_MS);
		break;
	case 3: {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl = scn_ts_from_ns((int64_t)dl.tv_sec * 1000000000 + dl.tv_nsec +
				    SLEEP_MS * 1000000L);
		pthread_mutex_lock(m);
		r = pthread_cond_timedwait(c, m, &dl);   /* nobody signals c */
		pthread_mutex_unlock(m);
		if (r == ETIMEDOUT)
			r = 0;
		else
			errno = r, r = -1;
		break;
	}
	}
	int64_t el = scn_mono_ns() - t0;
	static const char *names[] = { "nanosleep", "usleep", "poll", "cond_timedwait" };
	if (r != 0)
		scn_fail("thread %d: %s returned %d: %s", idx, names[kind], r, strerror(errno));
	else if (el < SLEEP_MS * 1000000L)
		scn_fail("thread %d: %s returned after %lld ns < %d ms", idx, names[kind],
			 (long long)el, SLEEP_MS);
}

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

/* The whole workload of one thread; returns its final value. */
static uint64_t work(int idx)
{
	volatile uint64_t canary[64];
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	uint64_t x = 0x1234567ULL * (uint64_t)(idx + 1);
	volatile uint64_t onstack = x;
	for (int i = 0; i < 64; i++)
		canary[i] = scn_mix((uint64_t)idx * 64 + (uint64_t)i);
	mirror[idx] = x;
	for (int ch = 0; ch < CHUNKS; ch++) {
		uint64_t y = onstack;
		for (int k = 0; k < CHUNK; k++)
			x = scn_mix(x);
		y = scn_mix_n(y, CHUNK);   /* same work from the stack copy */
		uint64_t g = scn_mix_n(mirror[idx], CHUNK);
		if (x != y || x != g) {
			scn_fail("thread %d chunk %d: register/stack/global copies differ", idx, ch);
			break;
		}
		onstack = x;
		mirror[idx] = x;
		short_sleep(idx, &m, &c);
		if (!pthread_equal(pthread_self(), selfs[idx]))
			scn_fail("thread %d: pthread_self changed", idx);
	}
	for (int i = 0; i < 64; i++)
		if (canary[i] != scn_mix((uint64_t)idx * 64 + (uint64_t)i)) {
			scn_fail("thread %d: stack canary %d changed", idx, i);
			break;
		}
	return x;
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	selfs[idx] = pthread_self();
	pthread_mutex_lock(&ready_mx);
	started++;
	pthread_cond_signal(&ready_cv);
	pthread_mutex_unlock(&ready_mx);
	uint64_t x = work(idx);
	pthread_mutex_lock(&stop_mx);
	while (!stop)
		pthread_cond_wait(&stop_cv, &stop_mx);
	pthread_mutex_unlock(&stop_mx);
	return (void *)(uintptr_t)(x ^ (uint64_t)idx);
}

int main(int argc, char **argv)
{
	scn_init();
	nthreads = argc > 1 ? atoi(argv[1]) : 8;
	if (nthreads < 1 || nthreads > MAXT) {
		scn_out("RESULT pid=%d clone=0 FAIL bad thread count\n", (int)getpid());
		return 2;
	}
	pthread_t t[MAXT];
	selfs[0] = pthread_self();
	for (int i = 1; i < nthreads; i++)
		t[i] = scn_thread(worker, (void *)(intptr_t)i);
	pthread_mutex_lock(&ready_mx);
	while (started < nthreads - 1)
		pthread_cond_wait(&ready_cv, &ready_mx);
	pthread_mutex_unlock(&ready_mx);
	/* Every task (libnuwa's included) must exist again in each clone. */
	int ntasks = count_tasks();
	scn_ready();

	uint64_t x0 = work(0);
	scn_wait_eof();
	int now = count_tasks();   /* before the watchdog adds its thread */
	if (now != ntasks)
		scn_fail("%d tasks in /proc/self/task, %d before the triggers", now, ntasks);
	scn_watchdog(25);
	pthread_mutex_lock(&stop_mx);
	stop = 1;
	pthread_cond_broadcast(&stop_cv);
	pthread_mutex_unlock(&stop_mx);
	if (!pthread_equal(pthread_self(), selfs[0]))
		scn_fail("main: pthread_self changed");
	if (x0 != mirror[0])
		scn_fail("main: final value differs from its mirror");
	for (int i = 1; i < nthreads; i++) {
		uint64_t r = (uint64_t)(uintptr_t)scn_join(t[i], "joining workers");
		if ((r ^ (uint64_t)i) != mirror[i])
			scn_fail("worker %d returned a value that differs from its mirror", i);
	}
	/* Every thread did the same number of iterations: check the value. */
	for (int i = 0; i < nthreads; i++)
		if (mirror[i] != scn_mix_n(0x1234567ULL * (uint64_t)(i + 1),
					   (uint64_t)CHUNK * CHUNKS)) {
			scn_fail("thread %d: final value is not mix^%d(seed)", i, CHUNK * CHUNKS);
			break;
		}
	return scn_finish();
}
