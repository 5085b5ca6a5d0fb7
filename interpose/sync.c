/* pthread mutexes, rwlocks, condition variables, join, semaphores.
 *
 * Lock owners that are tids go stale in a child; tls/owner.c repairs them
 * on slow paths only (EPERM, EBUSY, or any lock in a resumed child). */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>

#include "nuwa_int.h"
#include "tls.h"

REAL_DECL(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *));
REAL_DECL(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *));
REAL_DECL(int, pthread_rwlock_rdlock, (pthread_rwlock_t *));
REAL_DECL(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t *));
REAL_DECL(int, pthread_rwlock_wrlock, (pthread_rwlock_t *));
REAL_DECL(int, pthread_rwlock_trywrlock, (pthread_rwlock_t *));
REAL_DECL(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t *, const struct timespec *));
REAL_DECL(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t *, const struct timespec *));
REAL_DECL(int, pthread_rwlock_clockrdlock, (pthread_rwlock_t *, clockid_t, const struct timespec *));
REAL_DECL(int, pthread_rwlock_clockwrlock, (pthread_rwlock_t *, clockid_t, const struct timespec *));
REAL_DECL(int, pthread_rwlock_unlock, (pthread_rwlock_t *));
REAL_DECL(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *));
REAL_DECL(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *));
REAL_DECL(int, pthread_cond_clockwait, (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *));
REAL_DECL(int, pthread_join, (pthread_t, void **));
REAL_DECL(int, pthread_timedjoin_np, (pthread_t, void **, const struct timespec *));
REAL_DECL(int, pthread_clockjoin_np, (pthread_t, void **, clockid_t, const struct timespec *));
REAL_DECL(int, sem_wait, (sem_t *));
REAL_DECL(int, sem_timedwait, (sem_t *, const struct timespec *));
REAL_DECL(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *));

/* ---- mutexes ----
 * The hot paths: lock and unlock are one indirect tail jump each (2
 * instructions per lock+unlock pair on top of glibc's, docs/benchmarks.md).
 * No idle word is published around a lock: a thread that waits for a
 * contended mutex sleeps in FUTEX_WAIT, interruptibly (state S), and the
 * freeze protocol counts a task asleep in a system call as idle
 * (core/tasksleep.c).  The untimed FUTEX_WAIT returns -ERESTARTSYS to a
 * signal, which SA_RESTART (the park handler has it) turns into a restart
 * (arch/x86/kernel/signal.c handle_signal), and glibc loops on any wake-up
 * anyway: the program never sees the park.
 *
 * The function pointers start out as resolver stubs, so the wrappers test
 * nothing; in a resumed child lock and unlock are switched once to
 * repairing versions (lock owners are tids: both live in tls/owner.c). */

static int resolve_trylock(pthread_mutex_t *m);
static int (*mutex_trylock_fn)(pthread_mutex_t *) = resolve_trylock;

/* Two threads may race here: both store the same pointer. */
static int resolve_trylock(pthread_mutex_t *m)
{
	mutex_trylock_fn = (int (*)(pthread_mutex_t *))nuwa_dlnext("pthread_mutex_trylock");
	return mutex_trylock_fn(m);
}

NUWA_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
	return tls_mutex_lock(m);
}

NUWA_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = mutex_trylock_fn(m);
	if (unlikely(r == EBUSY) && mutex_repair_owner(m))
		r = mutex_trylock_fn(m);
	return r;
}

NUWA_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
	return tls_mutex_unlock(m);
}

NUWA_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
	mutex_repair_owner(m);
	fp_enter(FP_MUTEX_LOCK);
	int r = REAL(pthread_mutex_timedlock)(m, abs);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t c, const struct timespec *abs)
{
	mutex_repair_owner(m);
	fp_enter(FP_MUTEX_LOCK);
	int r = REAL(pthread_mutex_clocklock)(m, c, abs);
	fp_leave();
	return r;
}

/* ---- rwlocks ---- */

NUWA_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
	int r = REAL(pthread_rwlock_tryrdlock)(l);
	if (likely(r != EBUSY))
		return r;
	rwlock_repair_writer(l);
	fp_enter(FP_RWLOCK);
	r = REAL(pthread_rwlock_rdlock)(l);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	int r = REAL(pthread_rwlock_trywrlock)(l);
	if (likely(r != EBUSY))
		return r;
	rwlock_repair_writer(l);
	fp_enter(FP_RWLOCK);
	r = REAL(pthread_rwlock_wrlock)(l);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *l, const struct timespec *abs)
{
	rwlock_repair_writer(l);
	fp_enter(FP_RWLOCK);
	int r = REAL(pthread_rwlock_timedrdlock)(l, abs);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *l, const struct timespec *abs)
{
	rwlock_repair_writer(l);
	fp_enter(FP_RWLOCK);
	int r = REAL(pthread_rwlock_timedwrlock)(l, abs);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t c, const struct timespec *abs)
{
	rwlock_repair_writer(l);
	fp_enter(FP_RWLOCK);
	int r = REAL(pthread_rwlock_clockrdlock)(l, c, abs);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t c, const struct timespec *abs)
{
	rwlock_repair_writer(l);
	fp_enter(FP_RWLOCK);
	int r = REAL(pthread_rwlock_clockwrlock)(l, c, abs);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *l)
{
	/* glibc tells a writer's unlock from a reader's by comparing
	 * __cur_writer with the caller's tid: repair before, not after. */
	if (unlikely(nuwa_self.ntids))
		rwlock_repair_writer(l);
	return REAL(pthread_rwlock_unlock)(l);
}

/* ---- condition variables: glibc treats an interrupted futex wait as a
 * spurious wake-up and re-checks, so no retry is needed here ---- */

NUWA_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	fp_enter(FP_COND_WAIT);
	int r = REAL(pthread_cond_wait)(c, m);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abs)
{
	fp_enter(FP_COND_WAIT);
	int r = REAL(pthread_cond_timedwait)(c, m, abs);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                                       const struct timespec *abs)
{
	fp_enter(FP_COND_WAIT);
	int r = REAL(pthread_cond_clockwait)(c, m, clk, abs);
	fp_leave();
	return r;
}

/* ---- join ---- */

NUWA_EXPORT int pthread_join(pthread_t t, void **ret)
{
	fp_enter(FP_JOIN);
	int r = REAL(pthread_join)(t, ret);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_timedjoin_np(pthread_t t, void **ret, const struct timespec *abs)
{
	fp_enter(FP_JOIN);
	int r = REAL(pthread_timedjoin_np)(t, ret, abs);
	fp_leave();
	return r;
}

NUWA_EXPORT int pthread_clockjoin_np(pthread_t t, void **ret, clockid_t c, const struct timespec *abs)
{
	fp_enter(FP_JOIN);
	int r = REAL(pthread_clockjoin_np)(t, ret, c, abs);
	fp_leave();
	return r;
}

/* ---- semaphores: sem_wait returns EINTR after any handler (sem_wait(3));
 * when the handler was ours, wait again (deadlines are absolute) ---- */

NUWA_EXPORT int sem_wait(sem_t *s)
{
	unsigned c = fp_enter(FP_SEM_WAIT);
	int r;
	while ((r = REAL(sem_wait)(s)) < 0 && errno == EINTR && fp_ours(c))
		c = nuwa_self.sigcount;
	fp_leave();
	return r;
}

NUWA_EXPORT int sem_timedwait(sem_t *s, const struct timespec *abs)
{
	unsigned c = fp_enter(FP_SEM_WAIT);
	int r;
	while ((r = REAL(sem_timedwait)(s, abs)) < 0 && errno == EINTR && fp_ours(c))
		c = nuwa_self.sigcount;
	fp_leave();
	return r;
}

NUWA_EXPORT int sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs)
{
	unsigned c = fp_enter(FP_SEM_WAIT);
	int r;
	while ((r = REAL(sem_clockwait)(s, clk, abs)) < 0 && errno == EINTR && fp_ours(c))
		c = nuwa_self.sigcount;
	fp_leave();
	return r;
}
