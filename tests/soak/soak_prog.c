/* soak_prog — the template of the soak (tests/soak/soak): a few threads with
 * state to check.  Before the freeze:
 *   - a pipe holds 1000 pattern bytes (an internal channel: each child has
 *     its own copy);
 *   - a heap table of 4096 numbers, and its checksum;
 *   - two threads asleep in a condition variable and in poll().
 * soak_work(), called in each child by `nuwa spawn --call 'soak_work()'`,
 * checks all of it, does some work, and ends the child: exit status 0 when
 * everything was as in the template, 1 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int pfd[2];
static uint64_t *table, table_sum;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stop;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static void *sleeper(void *a)
{
	pthread_mutex_lock(&m);
	while (!stop)
		pthread_cond_wait(&cv, &m);
	pthread_mutex_unlock(&m);
	return a;
}

static void *poller(void *a)
{
	int q[2];
	if (pipe(q) != 0)
		abort();
	struct pollfd p = { q[0], POLLIN, 0 };
	for (;;)
		poll(&p, 1, -1);
	return a;
}

void soak_work(void)
{
	unsigned char b[1200];
	int ok = 1;
	if (fcntl(pfd[0], F_SETFL, O_NONBLOCK) != 0)
		ok = 0;
	ssize_t n = read(pfd[0], b, sizeof b);
	ok &= n == 1000;
	for (int i = 0; ok && i < 1000; i++)
		ok &= b[i] == (unsigned char)(i * 7 + 3);
	uint64_t s = 0;
	for (int i = 0; i < 4096; i++)
		s += table[i];
	ok &= s == table_sum;
	/* some work of its own: a fresh allocation and a thread */
	uint64_t *w = malloc(1 << 20);
	for (int i = 0; w && i < (1 << 17); i++)
		w[i] = mix((uint64_t)i);
	ok &= w != NULL && w[12345] == mix(12345);
	free(w);
	pthread_t t;
	void *rv = NULL;
	ok &= pthread_create(&t, NULL, sleeper, NULL) == 0;
	pthread_mutex_lock(&m);
	stop = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&m);
	ok &= pthread_join(t, &rv) == 0;
	_exit(ok ? 0 : 1);
}

int main(void)
{
	unsigned char b[1000];
	for (int i = 0; i < 1000; i++)
		b[i] = (unsigned char)(i * 7 + 3);
	if (pipe(pfd) != 0 || write(pfd[1], b, 1000) != 1000)
		return 2;
	table = malloc(4096 * sizeof *table);
	for (int i = 0; i < 4096; i++)
		table_sum += table[i] = mix((uint64_t)i + 1);
	pthread_t t1, t2;
	pthread_create(&t1, NULL, sleeper, NULL);
	pthread_create(&t2, NULL, poller, NULL);
	(void)!write(1, "READY\n", 6);
	char c;
	while (read(0, &c, 1) > 0)   /* until stdin closes */
		;
	return 0;
}
