/* load — 16 threads hammering mutexes, condition variables and pipes while
 * the triggers come (tests/core/test_load.c fires 100 in clone mode).
 *
 *   4 counters:   lock a shared mutex, bump the shared counter and their own;
 *   4 producers / 4 consumers: hand sequence numbers over a one-slot
 *                 buffer guarded by a mutex and two condition variables;
 *   2 writers / 2 readers: 4-byte sequence numbers through two pipes.
 * The original's threads sleep 1 ms every few hundred operations; a clone's
 * sleep 50 ms every 4.  The load that matters is the original's, at every
 * trigger: 100 clones at its rate would be some 1 000 runnable threads on
 * two cores (measured: a run queue of 900, 175 000 switches/s), and every
 * later freeze would measure how long a starved thread waits for its turn
 * (seconds), not libnuwa.  A clone's threads still all work on after its
 * resume, which is what its checks need.  After EOF each process stops them and
 * checks its own consistency: the shared counter is the sum of the threads'
 * counts; each consumer saw its producer's numbers in order, none lost or
 * doubled, up to the last one made; each pipe reader saw 1, 2, 3 ... up to
 * the last number its writer wrote, nothing more (a clone sharing a pipe
 * with another process would lose numbers or see foreign ones). */
#include "scn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static atomic_int stop;

/* Call once per operation; *left counts down to the next sleep. */
static void pace(int *left, int every)
{
	if (--*left > 0)
		return;
	int clone = scn_is_clone();
	scn_sleep_ms(clone ? 50 : 1);
	*left = clone ? 4 : every;
}

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static long shared_count, local_count[4];
static void *counter(void *a)
{
	long *mine = a;
	for (int left = 512; !atomic_load(&stop);) {
		pthread_mutex_lock(&cm);
		shared_count++;
		(*mine)++;
		pthread_mutex_unlock(&cm);
		pace(&left, 512);
	}
	return NULL;
}

struct slot {
	pthread_mutex_t m;
	pthread_cond_t full, empty;
	int has;
	long v, made, seen, bad;
};
static struct slot slots[4];
static void *producer(void *a)
{
	struct slot *s = a;
	int left = 256;
	for (long v = 1;; v++) {
		pthread_mutex_lock(&s->m);
		while (s->has && !atomic_load(&stop))
			pthread_cond_wait(&s->empty, &s->m);
		if (atomic_load(&stop)) {
			pthread_mutex_unlock(&s->m);
			return NULL;
		}
		s->v = v;
		s->has = 1;
		s->made = v;
		pthread_cond_signal(&s->full);
		pthread_mutex_unlock(&s->m);
		pace(&left, 256);
	}
}
static void *consumer(void *a)
{
	struct slot *s = a;
	pthread_mutex_lock(&s->m);
	for (;;) {
		while (!s->has && !atomic_load(&stop))
			pthread_cond_wait(&s->full, &s->m);
		if (s->has) {
			if (s->v != s->seen + 1)
				s->bad++;
			s->seen = s->v;
			s->has = 0;
			pthread_cond_signal(&s->empty);
		} else if (atomic_load(&stop)) {
			break;
		}
	}
	pthread_mutex_unlock(&s->m);
	return NULL;
}

struct pipe_pair { int fd[2]; uint32_t last_written, last_read, bad; };
static struct pipe_pair pipes[2];
static void *writer(void *a)
{
	struct pipe_pair *p = a;
	int left = 256;
	for (uint32_t v = 1; !atomic_load(&stop); v++) {
		if (write(p->fd[1], &v, 4) != 4) {
			p->bad++;
			return NULL;
		}
		p->last_written = v;
		pace(&left, 256);
	}
	close(p->fd[1]);   /* the reader sees EOF after the last number */
	return NULL;
}
static void *reader(void *a)
{
	struct pipe_pair *p = a;
	uint32_t v;
	for (;;) {
		ssize_t n = read(p->fd[0], &v, 4);
		if (n == 0)
			return NULL;
		if (n != 4) {
			if (n < 0 && errno == EINTR)
				continue;
			p->bad++;
			return NULL;
		}
		if (v != p->last_read + 1)
			p->bad++;
		p->last_read = v;
	}
}

int main(void)
{
	scn_init();
	pthread_t t[16];
	int n = 0;
	for (int i = 0; i < 4; i++) {
		pthread_mutex_init(&slots[i].m, NULL);
		pthread_cond_init(&slots[i].full, NULL);
		pthread_cond_init(&slots[i].empty, NULL);
	}
	for (int i = 0; i < 2; i++)
		if (pipe2(pipes[i].fd, O_CLOEXEC) != 0)
			return 2;
	for (int i = 0; i < 4; i++)
		t[n++] = scn_thread(counter, &local_count[i]);
	for (int i = 0; i < 4; i++) {
		t[n++] = scn_thread(producer, &slots[i]);
		t[n++] = scn_thread(consumer, &slots[i]);
	}
	for (int i = 0; i < 2; i++) {
		t[n++] = scn_thread(writer, &pipes[i]);
		t[n++] = scn_thread(reader, &pipes[i]);
	}
	scn_ready();
	scn_wait_eof();
	scn_watchdog(60);
	scn_phase("stopping the threads");
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++) {
		pthread_mutex_lock(&slots[i].m);
		pthread_cond_broadcast(&slots[i].full);
		pthread_cond_broadcast(&slots[i].empty);
		pthread_mutex_unlock(&slots[i].m);
	}
	for (int i = 0; i < n; i++)
		scn_join(t[i], "load thread");
	long sum = local_count[0] + local_count[1] + local_count[2] + local_count[3];
	if (sum != shared_count)
		scn_fail("shared counter %ld, the threads counted %ld", shared_count, sum);
	for (int i = 0; i < 4; i++)
		if (slots[i].bad || slots[i].seen != slots[i].made)
			scn_fail("hand-off %d: %ld out of order, last seen %ld, last made %ld", i, slots[i].bad,
				 slots[i].seen, slots[i].made);
	for (int i = 0; i < 2; i++)
		if (pipes[i].bad || pipes[i].last_read != pipes[i].last_written)
			scn_fail("pipe %d: %u bad reads, read up to %u, written up to %u", i, pipes[i].bad,
				 pipes[i].last_read, pipes[i].last_written);
	return scn_finish();
}
