/* fault [SPIN_MS] — a program whose stdout is deterministic, with a thread
 * named "spinner" that computes without ever reaching a freeze point (until
 * EOF, or for SPIN_MS ms and then it waits on a condvar).  Under
 * NUWA_FREEZE_POLICY=idle a trigger while it spins must fail, and the
 * program must go on exactly as if nothing happened: the harness compares
 * its stdout (RESULT line aside) with a run that got no trigger.
 * A reader thread blocks on stdin with a length unknown to the compiler
 * (__read_chk in the fortified builds, fault-fortify2/3).
 * The spinner's tid goes to stderr ("SPINNER tid=T") for the harness to
 * find in libnuwa's "freeze failed:" message.
 */
#include "scn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUND 200000

static volatile int eof_seen;
static int spin_ms;
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go;
static long slot, sum;

static void *spinner(void *a)
{
	uint64_t first = 0, r;
	long rounds = 0;
	(void)a;
	pthread_setname_np(pthread_self(), "spinner");
	scn_errf("SPINNER tid=%d\n", (int)scn_gettid());
	int64_t end = spin_ms ? scn_mono_ns() + (int64_t)spin_ms * 1000000 : INT64_MAX;
	do {
		r = scn_mix_n(42, ROUND);
		if (rounds++ == 0)
			first = r;
		else if (r != first)
			scn_fail("spinner: round %ld gave a different value", rounds);
	} while (!eof_seen && scn_mono_ns() < end);
	pthread_mutex_lock(&mx);
	while (!go)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
	return (void *)(uintptr_t)first;
}

static void *sleeper(void *a)
{
	(void)a;
	while (!eof_seen) {
		struct timespec t = { 0, 20000000 };
		int64_t t0 = scn_mono_ns();
		int r = nanosleep(&t, NULL);
		if (r != 0 || scn_mono_ns() - t0 < 20000000) {
			scn_fail("sleeper: nanosleep returned %d (%s) early or in error", r,
				 strerror(errno));
			return (void *)1;
		}
	}
	return NULL;
}

/* Reads stdin until EOF with a length the compiler cannot see: a fortified
 * build (-D_FORTIFY_SOURCE) calls __read_chk here, not read. */
static volatile size_t read_len = 16;

static void *reader(void *a)
{
	char buf[64];
	long r;
	int fd = dup(0);
	(void)a;
	while ((r = read(fd, buf, read_len)) > 0)
		;
	if (r < 0)
		scn_fail("reader: read returned %s", strerror(errno));
	close(fd);
	return NULL;
}

static void *consumer(void *a)
{
	(void)a;
	for (;;) {
		pthread_mutex_lock(&mx);
		while (slot == 0)
			pthread_cond_wait(&cv, &mx);
		long v = slot;
		slot = 0;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mx);
		if (v < 0)
			return NULL;
		sum += v;
	}
}

static void put(long v)
{
	pthread_mutex_lock(&mx);
	while (slot != 0)
		pthread_cond_wait(&cv, &mx);
	slot = v;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
}

int main(int argc, char **argv)
{
	scn_init();
	spin_ms = argc > 1 ? atoi(argv[1]) : 0;
	scn_out("fault: start\n");
	pthread_t sp = scn_thread(spinner, NULL), sl = scn_thread(sleeper, NULL);
	pthread_t co = scn_thread(consumer, NULL), rd = scn_thread(reader, NULL);
	scn_sleep_ms(50);
	scn_ready();
	scn_wait_eof();
	scn_watchdog(20);
	eof_seen = 1;
	pthread_mutex_lock(&mx);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	uint64_t r = (uint64_t)(uintptr_t)scn_join(sp, "joining the spinner");
	scn_out("spinner: every round gave 0x%016llx\n", (unsigned long long)r);
	scn_out("sleeper: %s\n", scn_join(sl, "joining the sleeper") ? "FAILED" : "ok");
	for (long i = 1; i <= 10000; i++)
		put(i);
	put(-1);
	scn_join(co, "joining the consumer");
	scn_join(rd, "joining the reader");
	scn_out("handoffs: sum=%ld\n", sum);
	return scn_finish();
}
