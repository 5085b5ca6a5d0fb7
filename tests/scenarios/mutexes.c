/* mutexes — locks that record their owner's tid, held across the freeze.
 *
 * glibc stores the owner's kernel tid in error-checking, recursive and
 * robust mutexes and in a write-locked rwlock (__cur_writer); in a clone
 * every tid has changed, so without repair unlock gives EPERM, a recursive
 * relock deadlocks and the rwlock unlock is taken for a reader's.
 *
 *  - holder H holds a normal, an error-checking, a recursive (twice) and a
 *    robust mutex and a write-locked rwlock; one waiter blocks on each;
 *  - main holds an error-checking and a recursive mutex and an rwlock;
 *  - thread R holds a robust mutex and exits without unlocking it after
 *    EOF: the next locker must get EOWNERDEAD (needs the robust list to be
 *    registered for the resumed thread);
 *  - two cyclers lock/unlock all kinds in a loop with a sleep inside the
 *    critical section until EOF, so random triggers find them holding.
 * After EOF every unlock must return 0, relocks by the owner must give
 * EDEADLK (error-checking) or succeed (recursive), waiters must get the
 * locks, and every lock must be destroyable at the end.
 */
#include "scn.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t m_norm, m_err, m_rec, m_rob, m_rob_exit, main_err, main_rec;
static pthread_mutex_t c_err, c_rec, c_rob;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t main_rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t c_rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t go_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;
static int go;
static volatile int holding, waiters_in;
static volatile int stop_cycling;

#define WANT(call, want) do { \
	int e_ = (call); \
	if (e_ != (want)) \
		scn_fail("%s: %s = %s, want %s", __func__, #call, strerror(e_), strerror(want)); \
} while (0)

static void init_mutex(pthread_mutex_t *m, int type, int robust)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, type);
	if (robust)
		pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

static struct timespec in_ms(int ms)
{
	return scn_ts_from_ns(scn_now_ns(CLOCK_REALTIME) + (int64_t)ms * 1000000);
}

static void wait_go(void)
{
	pthread_mutex_lock(&go_mx);
	while (!go)
		pthread_cond_wait(&go_cv, &go_mx);
	pthread_mutex_unlock(&go_mx);
}

static void *holder(void *a)
{
	(void)a;
	WANT(pthread_mutex_lock(&m_norm), 0);
	WANT(pthread_mutex_lock(&m_err), 0);
	WANT(pthread_mutex_lock(&m_rec), 0);
	WANT(pthread_mutex_lock(&m_rec), 0);
	WANT(pthread_mutex_lock(&m_rob), 0);
	WANT(pthread_rwlock_wrlock(&rw), 0);
	__atomic_add_fetch(&holding, 1, __ATOMIC_SEQ_CST);
	wait_go();
	struct timespec dl = in_ms(1000);
	/* ETIMEDOUT here = the owner field still names the old tid. */
	WANT(pthread_mutex_timedlock(&m_err, &dl), EDEADLK);
	WANT(pthread_mutex_unlock(&m_err), 0);
	dl = in_ms(1000);
	WANT(pthread_mutex_timedlock(&m_rec, &dl), 0);  /* recursive relock */
	WANT(pthread_mutex_unlock(&m_rec), 0);
	WANT(pthread_mutex_unlock(&m_rec), 0);
	WANT(pthread_mutex_unlock(&m_rec), 0);
	WANT(pthread_mutex_unlock(&m_rec), EPERM);      /* count really reached 0 */
	WANT(pthread_mutex_unlock(&m_rob), 0);
	WANT(pthread_mutex_unlock(&m_norm), 0);
	WANT(pthread_rwlock_unlock(&rw), 0);
	return NULL;
}

static void *robust_exiter(void *a)
{
	(void)a;
	WANT(pthread_mutex_lock(&m_rob_exit), 0);
	__atomic_add_fetch(&holding, 1, __ATOMIC_SEQ_CST);
	wait_go();
	return NULL;   /* exits holding m_rob_exit: the kernel marks it OWNER_DIED */
}

static void *waiter(void *arg)
{
	pthread_mutex_t *m = arg;
	__atomic_add_fetch(&waiters_in, 1, __ATOMIC_SEQ_CST);
	WANT(pthread_mutex_lock(m), 0);
	WANT(pthread_mutex_unlock(m), 0);
	return NULL;
}

static void *rw_waiter(void *a)
{
	(void)a;
	__atomic_add_fetch(&waiters_in, 1, __ATOMIC_SEQ_CST);
	WANT(pthread_rwlock_rdlock(&rw), 0);
	WANT(pthread_rwlock_unlock(&rw), 0);
	return NULL;
}

static void *cycler(void *a)
{
	unsigned long rounds = 0;
	(void)a;
	while (!stop_cycling) {
		WANT(pthread_mutex_lock(&c_err), 0);
		WANT(pthread_mutex_lock(&c_rec), 0);
		WANT(pthread_mutex_lock(&c_rec), 0);
		WANT(pthread_mutex_lock(&c_rob), 0);
		WANT(pthread_rwlock_wrlock(&c_rw), 0);
		usleep(300);                 /* a freeze point with everything held */
		WANT(pthread_mutex_trylock(&c_err), EBUSY);
		WANT(pthread_rwlock_unlock(&c_rw), 0);
		WANT(pthread_mutex_unlock(&c_rob), 0);
		WANT(pthread_mutex_unlock(&c_rec), 0);
		WANT(pthread_mutex_unlock(&c_rec), 0);
		WANT(pthread_mutex_unlock(&c_err), 0);
		if (scn_failed())
			break;
		usleep(300);
		rounds++;
	}
	return (void *)rounds;
}

int main(void)
{
	scn_init();
	init_mutex(&m_norm, PTHREAD_MUTEX_NORMAL, 0);
	init_mutex(&m_err, PTHREAD_MUTEX_ERRORCHECK, 0);
	init_mutex(&m_rec, PTHREAD_MUTEX_RECURSIVE, 0);
	init_mutex(&m_rob, PTHREAD_MUTEX_NORMAL, 1);
	init_mutex(&m_rob_exit, PTHREAD_MUTEX_ERRORCHECK, 1);
	init_mutex(&main_err, PTHREAD_MUTEX_ERRORCHECK, 0);
	init_mutex(&main_rec, PTHREAD_MUTEX_RECURSIVE, 0);
	init_mutex(&c_err, PTHREAD_MUTEX_ERRORCHECK, 0);
	init_mutex(&c_rec, PTHREAD_MUTEX_RECURSIVE, 0);
	init_mutex(&c_rob, PTHREAD_MUTEX_ERRORCHECK, 1);

	WANT(pthread_mutex_lock(&main_err), 0);
	WANT(pthread_mutex_lock(&main_rec), 0);
	WANT(pthread_mutex_lock(&main_rec), 0);
	WANT(pthread_rwlock_wrlock(&main_rw), 0);
	pthread_t h = scn_thread(holder, NULL), r = scn_thread(robust_exiter, NULL);
	while (holding < 2)
		scn_sleep_ms(1);
	pthread_t w[5];
	w[0] = scn_thread(waiter, &m_norm);
	w[1] = scn_thread(waiter, &m_err);
	w[2] = scn_thread(waiter, &m_rec);
	w[3] = scn_thread(waiter, &m_rob);
	w[4] = scn_thread(rw_waiter, NULL);
	pthread_t cy[2] = { scn_thread(cycler, NULL), scn_thread(cycler, NULL) };
	while (waiters_in < 5)
		scn_sleep_ms(1);
	scn_sleep_ms(100);   /* let the waiters block in the kernel */
	scn_ready();

	scn_wait_eof();
	scn_watchdog(20);
	scn_phase("main's own locks");
	WANT(pthread_mutex_trylock(&m_err), EBUSY);
	WANT(pthread_mutex_trylock(&m_rec), EBUSY);
	WANT(pthread_mutex_trylock(&m_rob), EBUSY);
	WANT(pthread_rwlock_tryrdlock(&rw), EBUSY);
	struct timespec dl = in_ms(1000);
	WANT(pthread_mutex_timedlock(&main_err, &dl), EDEADLK);
	WANT(pthread_mutex_unlock(&main_err), 0);
	WANT(pthread_mutex_unlock(&main_err), EPERM);
	dl = in_ms(1000);
	WANT(pthread_mutex_timedlock(&main_rec, &dl), 0);
	for (int i = 0; i < 3; i++)
		WANT(pthread_mutex_unlock(&main_rec), 0);
	WANT(pthread_mutex_unlock(&main_rec), EPERM);
	WANT(pthread_rwlock_unlock(&main_rw), 0);
	WANT(pthread_rwlock_tryrdlock(&main_rw), 0);
	WANT(pthread_rwlock_unlock(&main_rw), 0);
	WANT(pthread_rwlock_trywrlock(&main_rw), 0);
	WANT(pthread_rwlock_unlock(&main_rw), 0);

	scn_phase("holder's unlocks and waiters");
	pthread_mutex_lock(&go_mx);
	go = 1;
	pthread_cond_broadcast(&go_cv);
	pthread_mutex_unlock(&go_mx);
	scn_join(h, "joining the holder");
	for (int i = 0; i < 5; i++)
		scn_join(w[i], "joining waiters (lock never handed over?)");
	scn_join(r, "joining the robust exiter");
	scn_phase("robust mutex of an exited owner");
	dl = in_ms(2000);
	/* ETIMEDOUT = the exiting thread's robust list was not registered. */
	WANT(pthread_mutex_timedlock(&m_rob_exit, &dl), EOWNERDEAD);
	WANT(pthread_mutex_consistent(&m_rob_exit), 0);
	WANT(pthread_mutex_unlock(&m_rob_exit), 0);

	scn_phase("joining cyclers");
	stop_cycling = 1;
	for (int i = 0; i < 2; i++)
		scn_join(cy[i], "joining cyclers");

	scn_phase("relock and destroy everything");
	pthread_mutex_t *all[] = { &m_norm, &m_err, &m_rec, &m_rob, &m_rob_exit, &main_err,
				   &main_rec, &c_err, &c_rec, &c_rob };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		WANT(pthread_mutex_trylock(all[i]), 0);
		WANT(pthread_mutex_unlock(all[i]), 0);
		WANT(pthread_mutex_destroy(all[i]), 0);
	}
	pthread_rwlock_t *rws[] = { &rw, &main_rw, &c_rw };
	for (size_t i = 0; i < 3; i++) {
		WANT(pthread_rwlock_trywrlock(rws[i]), 0);
		WANT(pthread_rwlock_unlock(rws[i]), 0);
		WANT(pthread_rwlock_destroy(rws[i]), 0);
	}
	return scn_finish();
}
