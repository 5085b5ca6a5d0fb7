/* condvar [HANDOFFS] — producer/consumer hand-offs through a one-slot
 * buffer with pthread_cond_signal only (never broadcast), running while the
 * triggers come, then HANDOFFS (default 100 000) more hand-offs after EOF in
 * every process: a ghost waiter left in the condvar by a freeze would
 * swallow a signal and hang them (the watchdog reports it).  Four more
 * threads wait on a second condvar for tokens handed out one cond_signal at
 * a time after EOF.  At the end both condvars must be destroyed
 * (pthread_cond_destroy returns 0, and returns at all: glibc waits there
 * for waiters it believes in).
 */
#include "scn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BURST 200
#define NTOKW 4

static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static long slot;            /* 0 = empty, else the item */
static volatile int eof_seen;

static pthread_mutex_t tmx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tcv = PTHREAD_COND_INITIALIZER;
static int tokens, tok_waiting;
static volatile int progress_producer;
static long handoffs = 100000;

static void put(long v)
{
	pthread_mutex_lock(&mx);
	while (slot != 0)
		pthread_cond_wait(&not_full, &mx);
	slot = v;
	pthread_cond_signal(&not_empty);
	pthread_mutex_unlock(&mx);
}

static long take(void)
{
	pthread_mutex_lock(&mx);
	while (slot == 0)
		pthread_cond_wait(&not_empty, &mx);
	long v = slot;
	slot = 0;
	pthread_cond_signal(&not_full);
	pthread_mutex_unlock(&mx);
	return v;
}

static void *producer(void *a)
{
	long next = 1;
	(void)a;
	/* Before EOF: bursts, so the triggers find both threads in cond_wait,
	 * in the mutex, or between the two. */
	while (!eof_seen) {
		for (int i = 0; i < BURST; i++)
			put(next++);
		progress_producer = 1;
		scn_sleep_ms(3);
	}
	long end = next + handoffs;
	while (next < end)
		put(next++);
	put(-1);   /* end marker */
	return (void *)next;
}

static void *consumer(void *a)
{
	long last = 0, after = 0;
	(void)a;
	for (;;) {
		long v = take();
		if (v == -1)
			break;
		if (v != last + 1) {
			scn_fail("consumer: got item %ld after %ld", v, last);
			return NULL;
		}
		last = v;
		if (eof_seen)
			after++;
	}
	return (void *)after;
}

static void *token_waiter(void *a)
{
	(void)a;
	pthread_mutex_lock(&tmx);
	tok_waiting++;
	while (tokens == 0)
		pthread_cond_wait(&tcv, &tmx);
	tokens--;
	pthread_mutex_unlock(&tmx);
	return NULL;
}

int main(int argc, char **argv)
{
	scn_init();
	if (argc > 1)
		handoffs = atol(argv[1]);
	pthread_t p = scn_thread(producer, NULL), c = scn_thread(consumer, NULL);
	pthread_t tw[NTOKW];
	for (int i = 0; i < NTOKW; i++)
		tw[i] = scn_thread(token_waiter, NULL);
	for (;;) {
		pthread_mutex_lock(&tmx);
		int n = tok_waiting;
		pthread_mutex_unlock(&tmx);
		if (n == NTOKW && progress_producer)
			break;
		scn_sleep_ms(2);
	}
	scn_ready();
	scn_wait_eof();
	scn_watchdog(25);
	eof_seen = 1;

	scn_phase("handing out tokens one cond_signal at a time");
	for (int i = 0; i < NTOKW; i++) {
		pthread_mutex_lock(&tmx);
		tokens++;
		pthread_cond_signal(&tcv);
		pthread_mutex_unlock(&tmx);
	}
	for (int i = 0; i < NTOKW; i++)
		scn_join(tw[i], "joining token waiters (lost wake-up?)");
	scn_phase("pthread_cond_destroy(token condvar)");
	int e = pthread_cond_destroy(&tcv);
	if (e)
		scn_fail("pthread_cond_destroy(token condvar): %s", strerror(e));

	scn_phase("hand-offs after EOF (lost wake-up?)");
	scn_join(p, "hand-offs after EOF: joining the producer (lost wake-up?)");
	long after = (long)scn_join(c, "hand-offs after EOF: joining the consumer");
	/* Items the consumer took after it saw eof_seen: at least handoffs. */
	if (after < handoffs)
		scn_fail("only %ld hand-offs after EOF, want %ld", after, handoffs);
	scn_phase("pthread_cond_destroy(hand-off condvars)");
	if ((e = pthread_cond_destroy(&not_empty)) || (e = pthread_cond_destroy(&not_full)))
		scn_fail("pthread_cond_destroy(hand-off condvar): %s", strerror(e));
	if ((e = pthread_mutex_destroy(&mx)))
		scn_fail("pthread_mutex_destroy: %s", strerror(e));
	return scn_finish();
}
