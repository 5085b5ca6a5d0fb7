/* mx_sync — locks held and contended across the freeze: mutexes, rwlocks,
 * condition variables, barriers, spinlocks, pthread_once, semaphores
 * (private, named and process-shared).  Every waiter must be in the same
 * place in every process, woken by that process alone, exactly once. */
#include "mx.h"

#include <fcntl.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

static pthread_t thr(void *(*fn)(void *), void *arg) { return scn_thread(fn, arg); }

/* ---- a mutex held by main, one waiter --------------------------------------- */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static volatile int held_got;
static pthread_t held_t;
static void *held_waiter(void *a) { pthread_mutex_lock(&held); held_got = 1; pthread_mutex_unlock(&held); return a; }
static void held_setup(mx_case *c) { pthread_mutex_lock(&held); held_t = thr(held_waiter, NULL); scn_sleep_ms(50); }
static void held_verify(mx_case *c)
{
	CHECK(c, !held_got, "the waiter got the mutex main holds");
	CHECK(c, pthread_mutex_unlock(&held) == 0, "main cannot unlock its mutex");
	scn_join(held_t, "waiter");
	CHECK(c, held_got == 1, "the waiter did not get the mutex");
}

/* ---- four threads contending for one mutex, through the freeze -------------- */
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static long shared_count;
static atomic_int cm_stop;
static pthread_t cm_t[4];
static long cm_local[4];
static void *cm_thread(void *a)
{
	long *mine = a;
	while (!atomic_load(&cm_stop)) {
		pthread_mutex_lock(&cm);
		shared_count++;
		(*mine)++;
		pthread_mutex_unlock(&cm);
		if (*mine % 256 == 0)
			scn_sleep_ms(1);
	}
	return NULL;
}
static void contended_setup(mx_case *c)
{
	for (int i = 0; i < 4; i++)
		cm_t[i] = thr(cm_thread, &cm_local[i]);
	scn_sleep_ms(50);
}
static void contended_verify(mx_case *c)
{
	long before = shared_count;
	scn_sleep_ms(100);
	CHECK(c, shared_count > before, "the contending threads do not run");
	atomic_store(&cm_stop, 1);
	for (int i = 0; i < 4; i++)
		scn_join(cm_t[i], "contender");
	long sum = cm_local[0] + cm_local[1] + cm_local[2] + cm_local[3];
	CHECK(c, sum == shared_count, "the counter is %ld, the threads counted %ld", shared_count, sum);
	CHECK(c, pthread_mutex_trylock(&cm) == 0 && pthread_mutex_unlock(&cm) == 0, "the mutex stays locked");
}

/* ---- rwlock: readers hold it, a writer waits ---------------------------------- */
static pthread_rwlock_t rw1 = PTHREAD_RWLOCK_INITIALIZER, rw2 = PTHREAD_RWLOCK_INITIALIZER;
static sem_t rd_release;
static atomic_int rd_in, wr_got, rd2_got;
static pthread_t rd_t[3], wr_t, rd2_t[3];
static void *rd_holder(void *a) { pthread_rwlock_rdlock(&rw1); atomic_fetch_add(&rd_in, 1); sem_wait(&rd_release); pthread_rwlock_unlock(&rw1); return a; }
static void *wr_waiter(void *a) { pthread_rwlock_wrlock(&rw1); atomic_store(&wr_got, 1); pthread_rwlock_unlock(&rw1); return a; }
static void readers_setup(mx_case *c)
{
	sem_init(&rd_release, 0, 0);
	for (int i = 0; i < 3; i++)
		rd_t[i] = thr(rd_holder, NULL);
	while (atomic_load(&rd_in) < 3)
		scn_sleep_ms(5);
	wr_t = thr(wr_waiter, NULL);
	scn_sleep_ms(50);
}
static void readers_verify(mx_case *c)
{
	CHECK(c, !atomic_load(&wr_got), "the writer got in while 3 readers hold the lock");
	CHECK(c, pthread_rwlock_tryrdlock(&rw1) == EBUSY || (pthread_rwlock_unlock(&rw1), 1), "tryrdlock");
	for (int i = 0; i < 3; i++)
		sem_post(&rd_release);
	for (int i = 0; i < 3; i++)
		scn_join(rd_t[i], "reader");
	scn_join(wr_t, "writer");
	CHECK(c, atomic_load(&wr_got) == 1, "the writer never got the lock");
}
static void *rd_waiter(void *a) { pthread_rwlock_rdlock(&rw2); atomic_fetch_add(&rd2_got, 1); pthread_rwlock_unlock(&rw2); return a; }
static void writer_setup(mx_case *c)
{
	pthread_rwlock_wrlock(&rw2);
	for (int i = 0; i < 3; i++)
		rd2_t[i] = thr(rd_waiter, NULL);
	scn_sleep_ms(50);
}
static void writer_verify(mx_case *c)
{
	CHECK(c, atomic_load(&rd2_got) == 0, "a reader got in while main holds the write lock");
	CHECK(c, pthread_rwlock_unlock(&rw2) == 0, "main cannot unlock its write lock");
	for (int i = 0; i < 3; i++)
		scn_join(rd2_t[i], "reader");
	CHECK(c, atomic_load(&rd2_got) == 3, "%d readers got the lock, want 3", atomic_load(&rd2_got));
}

/* ---- condvar: five waiters, woken one token at a time ------------------------- */
static pthread_mutex_t cv_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int tokens, cv_woken, cv_waiting;
static pthread_t cv_t[5];
static void *cv_waiter(void *a)
{
	pthread_mutex_lock(&cv_m);
	cv_waiting++;
	while (tokens == 0)
		pthread_cond_wait(&cv, &cv_m);
	tokens--;
	cv_woken++;
	pthread_mutex_unlock(&cv_m);
	return a;
}
static void cv_setup(mx_case *c)
{
	for (int i = 0; i < 5; i++)
		cv_t[i] = thr(cv_waiter, NULL);
	for (int n = 0; n < 5;) {
		pthread_mutex_lock(&cv_m);
		n = cv_waiting;
		pthread_mutex_unlock(&cv_m);
		scn_sleep_ms(5);
	}
}
static void cv_verify(mx_case *c)
{
	for (int i = 1; i <= 5; i++) {
		pthread_mutex_lock(&cv_m);
		tokens++;
		pthread_cond_signal(&cv);
		pthread_mutex_unlock(&cv_m);
		int64_t end = scn_mono_ns() + 5000000000LL, w;
		do {
			pthread_mutex_lock(&cv_m);
			w = cv_woken;
			pthread_mutex_unlock(&cv_m);
			if (w < i)
				scn_sleep_ms(2);
		} while (w < i && scn_mono_ns() < end);
		CHECK(c, w == i, "after %d signals %lld waiters woke", i, (long long)w);
	}
	for (int i = 0; i < 5; i++)
		scn_join(cv_t[i], "waiter");
	CHECK(c, pthread_cond_destroy(&cv) == 0, "pthread_cond_destroy");
}

/* ---- semaphores ------------------------------------------------------------- */
static sem_t s_wait, s_count;
static atomic_int s_done;
static pthread_t s_t[3];
static void *s_waiter(void *a) { sem_wait(&s_wait); atomic_fetch_add(&s_done, 1); return a; }
static void sem_setup(mx_case *c)
{
	sem_init(&s_wait, 0, 0);
	sem_init(&s_count, 0, 7);
	for (int i = 0; i < 3; i++)
		s_t[i] = thr(s_waiter, NULL);
	scn_sleep_ms(50);
}
static void sem_waiters_verify(mx_case *c)
{
	CHECK(c, atomic_load(&s_done) == 0, "a waiter returned without a post");
	for (int i = 0; i < 3; i++)
		sem_post(&s_wait);
	for (int i = 0; i < 3; i++)
		scn_join(s_t[i], "sem waiter");
	int v = -1;
	sem_getvalue(&s_wait, &v);
	CHECK(c, atomic_load(&s_done) == 3 && v == 0, "%d waiters returned, value %d", atomic_load(&s_done), v);
}
static void sem_count_verify(mx_case *c)
{
	int n = 0;
	while (sem_trywait(&s_count) == 0)
		n++;
	CHECK(c, n == 7 && errno == EAGAIN, "%d trywaits succeeded, want 7", n);
}

/* A named semaphore is shared by every process: its 5 units are taken once
 * in all (tally). */
static sem_t *named;
static char named_name[64];
static void named_setup(mx_case *c)
{
	snprintf(named_name, sizeof named_name, "/nuwa-mx-%d", (int)getpid());
	MUST((named = sem_open(named_name, O_CREAT | O_EXCL, 0600, 5)) != SEM_FAILED);
}
static void named_verify(mx_case *c)
{
	while (sem_trywait(named) == 0)
		c->tally++;
	if (!mx_child())
		sem_unlink(named_name);
}

/* A process-shared mutex in MAP_SHARED memory: every process adds 1000 under
 * it; the original, last, finds 4000. */
struct shm { pthread_mutex_t m; long count; };
static struct shm *shm;
static void pshared_setup(mx_case *c)
{
	shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	MUST(shm != MAP_FAILED);
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	MUST(pthread_mutex_init(&shm->m, &a) == 0);
}
static void pshared_verify(mx_case *c)
{
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&shm->m);
		long v = shm->count;
		if (i % 100 == 0)
			sched_yield();
		shm->count = v + 1;
		pthread_mutex_unlock(&shm->m);
	}
	if (!mx_child())
		CHECK(c, shm->count == 4000, "the shared counter is %ld, want 4000", shm->count);
}

/* ---- a barrier with three of four threads waiting ----------------------------- */
static pthread_barrier_t bar;
static atomic_int serial;
static pthread_t bar_t[3];
static void *bar_waiter(void *a)
{
	if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD)
		atomic_fetch_add(&serial, 1);
	return a;
}
static void barrier_setup(mx_case *c)
{
	MUST(pthread_barrier_init(&bar, NULL, 4) == 0);
	for (int i = 0; i < 3; i++)
		bar_t[i] = thr(bar_waiter, NULL);
	scn_sleep_ms(50);
}
static void barrier_verify(mx_case *c)
{
	bar_waiter(NULL);
	for (int i = 0; i < 3; i++)
		scn_join(bar_t[i], "barrier waiter");
	CHECK(c, atomic_load(&serial) == 1, "%d serial threads, want 1", atomic_load(&serial));
	CHECK(c, pthread_barrier_destroy(&bar) == 0, "pthread_barrier_destroy");
}

/* ---- a spinlock held by main, a thread spinning on it (busy) ------------------- */
static pthread_spinlock_t spin;
static atomic_int spin_got;
static pthread_t spin_t;
static void *spinner(void *a) { pthread_spin_lock(&spin); atomic_store(&spin_got, 1); pthread_spin_unlock(&spin); return a; }
static void spin_setup(mx_case *c)
{
	pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
	pthread_spin_lock(&spin);
	spin_t = thr(spinner, NULL);
}
static void spin_verify(mx_case *c)
{
	CHECK(c, !atomic_load(&spin_got), "the spinner got the held spinlock");
	pthread_spin_unlock(&spin);
	scn_join(spin_t, "spinner");
	CHECK(c, atomic_load(&spin_got) == 1, "the spinner never got it");
}

/* ---- pthread_once: the init routine in progress, a second caller waiting ------- */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static sem_t once_release;
static atomic_int once_runs, once_in;
static pthread_t once_t[2];
static void once_init(void) { atomic_store(&once_in, 1); sem_wait(&once_release); atomic_fetch_add(&once_runs, 1); }
static void *once_caller(void *a) { pthread_once(&once, once_init); return a; }
static void once_setup(mx_case *c)
{
	sem_init(&once_release, 0, 0);
	once_t[0] = thr(once_caller, NULL);
	while (!atomic_load(&once_in))
		scn_sleep_ms(5);
	once_t[1] = thr(once_caller, NULL);
	scn_sleep_ms(50);
}
static void once_verify(mx_case *c)
{
	CHECK(c, atomic_load(&once_runs) == 0, "the init routine finished before its release");
	sem_post(&once_release);
	scn_join(once_t[0], "once caller");
	scn_join(once_t[1], "once waiter");
	pthread_once(&once, once_init);
	CHECK(c, atomic_load(&once_runs) == 1, "the init routine ran %d times, want 1", atomic_load(&once_runs));
}

static mx_case cases[] = {
	{ "mutex-held-waiter", "sync", held_setup, held_verify },
	{ "mutex-contended", "sync", contended_setup, contended_verify },
	{ "rwlock-readers-writer-waits", "sync", readers_setup, readers_verify },
	{ "rwlock-writer-readers-wait", "sync", writer_setup, writer_verify },
	{ "condvar-five-waiters", "sync", cv_setup, cv_verify },
	{ "sem-waiters", "sync", sem_setup, sem_waiters_verify },
	{ "sem-count", "sync", sem_setup, sem_count_verify },
	{ "sem-named-shared", "sync", named_setup, named_verify, 5 },
	{ "mutex-pshared-memory", "sync", pshared_setup, pshared_verify },
	{ "barrier-three-waiting", "sync", barrier_setup, barrier_verify },
	{ "spinlock-held-spinner", "sync", spin_setup, spin_verify },
	{ "once-in-progress", "sync", once_setup, once_verify },
};

int main(int argc, char **argv)
{
	return mx_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
