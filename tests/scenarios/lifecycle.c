/* lifecycle — joinable and detached threads across the freeze, and threads
 * being created and exiting all the time, so that triggers land while a
 * pthread_create or a thread exit is in flight.
 *
 *  - 4 joinable threads wait for EOF and return distinct values: joining a
 *    resumed thread in a clone must return its value;
 *  - 4 detached threads wait for EOF, then report through a counter;
 *  - 2 churners loop on pthread_create + pthread_join (value checked) and
 *    also start short detached threads; fast for CHURN_FAST_MS after start,
 *    then one round every 20 ms until EOF, so they never stop;
 *  - after EOF main creates and joins one more thread.
 */
#include "scn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NJOIN 4
#define NDET 4
#define NCHURN 2
#define CHURN_FAST_MS 2500

static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go;
static int det_waiting, det_done;
static volatile int stop_churn;
static int64_t fast_until;
static volatile int det_started, det_finished;   /* churned detached threads */

static void wait_go(void)
{
	pthread_mutex_lock(&mx);
	while (!go)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
}

static void *joinable(void *arg)
{
	pthread_t me = pthread_self();
	wait_go();
	if (!pthread_equal(me, pthread_self()))
		scn_fail("joinable thread: pthread_self changed");
	return (void *)((uintptr_t)arg * 3 + 0x1000);
}

static void *detached(void *arg)
{
	pthread_mutex_lock(&mx);
	det_waiting++;
	while (!go)
		pthread_cond_wait(&cv, &mx);
	det_done++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	return arg;
}

static void *short_lived(void *arg)
{
	return (void *)((uintptr_t)arg * 7 + 1);
}

static void *short_detached(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&det_finished, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *churner(void *arg)
{
	int idx = (int)(intptr_t)arg;
	uintptr_t rounds = 0;
	pthread_attr_t da;
	pthread_attr_init(&da);
	pthread_attr_setdetachstate(&da, PTHREAD_CREATE_DETACHED);
	while (!stop_churn) {
		pthread_t t;
		void *r;
		int e = pthread_create(&t, NULL, short_lived, (void *)rounds);
		if (e) {
			scn_fail("churner %d: pthread_create: %s", idx, strerror(e));
			break;
		}
		if ((e = pthread_join(t, &r)) || (uintptr_t)r != rounds * 7 + 1) {
			scn_fail("churner %d: join returned %d, value %p (round %lu)", idx, e, r,
				 (unsigned long)rounds);
			break;
		}
		if (rounds % 4 == 0) {
			__atomic_add_fetch(&det_started, 1, __ATOMIC_SEQ_CST);
			if ((e = pthread_create(&t, &da, short_detached, NULL))) {
				__atomic_sub_fetch(&det_started, 1, __ATOMIC_SEQ_CST);
				scn_fail("churner %d: detached pthread_create: %s", idx, strerror(e));
				break;
			}
		}
		rounds++;
		if (scn_mono_ns() > fast_until)
			scn_sleep_ms(20);
	}
	pthread_attr_destroy(&da);
	return (void *)rounds;
}

int main(void)
{
	scn_init();
	pthread_t j[NJOIN], c[NCHURN];
	pthread_attr_t da;
	pthread_attr_init(&da);
	pthread_attr_setdetachstate(&da, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < NJOIN; i++)
		j[i] = scn_thread(joinable, (void *)(uintptr_t)i);
	for (int i = 0; i < NDET; i++) {
		pthread_t t;
		if (pthread_create(&t, &da, detached, NULL))
			scn_fail("detached pthread_create failed");
	}
	fast_until = scn_mono_ns() + (int64_t)CHURN_FAST_MS * 1000000;
	for (int i = 0; i < NCHURN; i++)
		c[i] = scn_thread(churner, (void *)(intptr_t)i);
	for (;;) {
		pthread_mutex_lock(&mx);
		int n = det_waiting;
		pthread_mutex_unlock(&mx);
		if (n == NDET)
			break;
		scn_sleep_ms(2);
	}
	scn_ready();

	scn_wait_eof();
	scn_watchdog(20);
	stop_churn = 1;
	for (int i = 0; i < NCHURN; i++)
		if ((uintptr_t)scn_join(c[i], "joining churners") == 0)
			scn_fail("churner %d made no thread", i);
	pthread_mutex_lock(&mx);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	for (int i = 0; i < NJOIN; i++) {
		void *r = scn_join(j[i], "joining joinable threads");
		if ((uintptr_t)r != (uintptr_t)i * 3 + 0x1000)
			scn_fail("joinable thread %d returned %p", i, r);
	}
	scn_phase("waiting for the detached threads");
	pthread_mutex_lock(&mx);
	while (det_done < NDET)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
	scn_phase("waiting for churned detached threads");
	while (det_finished != det_started)
		scn_sleep_ms(5);
	scn_phase("creating a thread after EOF");
	pthread_t t = scn_thread(short_lived, (void *)(uintptr_t)5);
	if ((uintptr_t)scn_join(t, "joining a new thread") != 36)
		scn_fail("a thread created after EOF returned a wrong value");
	pthread_attr_destroy(&da);
	return scn_finish();
}
