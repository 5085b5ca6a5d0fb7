/* Lock owners that are thread ids.
 *
 * glibc stores the owner's tid in error-checking, recursive, robust and PI
 * mutexes (__data.__owner, and for robust/PI also the lock word) and in a
 * write-locked rwlock (__data.__cur_writer).  In a child the thread that
 * holds such a lock has a new tid: unlock gives EPERM, a recursive relock
 * deadlocks, and rwlock_unlock even takes the writer for a reader.  Each
 * resumed thread remembers its former tids; the wrappers repair a lock only
 * on their slow paths (EPERM, contended lock) and only when its owner is one
 * of the caller's former tids, so a normal mutex's fast path pays nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "tls.h"

#define MUTEX_KIND_ROBUST 16     /* PTHREAD_MUTEX_ROBUST_NORMAL_NP */
#define MUTEX_KIND_PI 32         /* PTHREAD_MUTEX_PRIO_INHERIT_NP */
#define FUTEX_TID_MASK_ 0x3fffffff

void tls_note_new_tid(pid_t old_tid, pid_t new_tid)
{
	struct nuwa_thread *t = &nuwa_self;
	t->old_tids[t->ntids % NUWA_TID_HISTORY] = old_tid;
	t->ntids++;
	t->tid = new_tid;
}

static int is_former_tid(pid_t owner)
{
	struct nuwa_thread *t = &nuwa_self;
	int n = t->ntids < NUWA_TID_HISTORY ? t->ntids : NUWA_TID_HISTORY;
	if (owner == 0 || owner == t->tid)
		return 0;
	for (int i = 0; i < n; i++)
		if (t->old_tids[i] == owner)
			return 1;
	return 0;
}

int mutex_repair_owner(pthread_mutex_t *m)
{
	if (!nuwa_self.ntids)
		return 0;
	volatile struct __pthread_mutex_s *d = &m->__data;
	pid_t owner = d->__owner & FUTEX_TID_MASK_;
	if (!is_former_tid(owner))
		return 0;
	pid_t me = nuwa_self.tid;
	if (d->__kind & (MUTEX_KIND_ROBUST | MUTEX_KIND_PI)) {
		/* the lock word holds the owner's tid plus FUTEX_WAITERS and
		 * FUTEX_OWNER_DIED bits: keep the bits, swap the tid */
		int old = d->__lock;
		if ((old & FUTEX_TID_MASK_) == owner) {
			int new = (old & ~FUTEX_TID_MASK_) | me;
			__atomic_compare_exchange_n((int *)&d->__lock, &old, new, 0,
			                            __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
		}
	}
	d->__owner = me;
	return 1;
}

/* The targets of the pthread_mutex_lock and pthread_mutex_unlock wrappers
 * (interpose/sync.c): one indirect tail jump each.  They start out as
 * resolver stubs, so the wrappers test nothing; a resumed child switches
 * them once, before any of its threads runs, to repairing versions. */
static int resolve_lock(pthread_mutex_t *m);
static int resolve_unlock(pthread_mutex_t *m);
int (*tls_mutex_lock)(pthread_mutex_t *) = resolve_lock;
int (*tls_mutex_unlock)(pthread_mutex_t *) = resolve_unlock;
/* glibc's, for the repairing versions */
static int (*real_mutex_lock)(pthread_mutex_t *);
static int (*real_mutex_unlock)(pthread_mutex_t *);

/* Two threads may race here: both store the same pointer. */
static int resolve_lock(pthread_mutex_t *m)
{
	tls_mutex_lock = (int (*)(pthread_mutex_t *))nuwa_dlnext("pthread_mutex_lock");
	return tls_mutex_lock(m);
}

static int resolve_unlock(pthread_mutex_t *m)
{
	tls_mutex_unlock = (int (*)(pthread_mutex_t *))nuwa_dlnext("pthread_mutex_unlock");
	return tls_mutex_unlock(m);
}

/* In a resumed child a thread may hold m under a former tid (a recursive
 * relock would wait for itself forever): there, every lock goes through
 * this repair first. */
static int mutex_lock_repairing(pthread_mutex_t *m)
{
	mutex_repair_owner(m);
	return real_mutex_lock(m);
}

/* Error-checking, recursive and robust mutexes give EPERM to an unlock by
 * a thread whose tid is not the owner's (a default one checks nothing). */
static int mutex_unlock_repairing(pthread_mutex_t *m)
{
	int r = real_mutex_unlock(m);
	if (unlikely(r == EPERM) && mutex_repair_owner(m))
		r = real_mutex_unlock(m);
	return r;
}

/* Resolved at start-up, never in a child: dlsym takes the loader's lock,
 * which a thread frozen inside dlopen() holds in the child too (the child's
 * control thread would wait for it forever, before any thread resumes). */
void tls_owner_resolve(void)
{
	if (!real_mutex_lock) {
		real_mutex_lock = (int (*)(pthread_mutex_t *))nuwa_dlnext("pthread_mutex_lock");
		real_mutex_unlock = (int (*)(pthread_mutex_t *))nuwa_dlnext("pthread_mutex_unlock");
	}
}

void tls_enter_resumed_child(void)
{
	if (tls_mutex_lock != mutex_lock_repairing) {
		tls_mutex_lock = mutex_lock_repairing;
		tls_mutex_unlock = mutex_unlock_repairing;
	}
}

int rwlock_repair_writer(pthread_rwlock_t *rw)
{
	if (!nuwa_self.ntids)
		return 0;
	volatile int *w = &rw->__data.__cur_writer;
	if (!is_former_tid(*w))
		return 0;
	*w = nuwa_self.tid;
	return 1;
}

/* The robust mutexes a thread holds are on its robust list (glibc links
 * them through __data.__list; the kernel walks the list when the thread
 * dies and marks each mutex whose lock word holds the dying tid
 * FUTEX_OWNER_DIED — kernel/futex/core.c handle_futex_death).  With a
 * stale tid in the lock word a resumed thread that dies holding the mutex
 * would leave it locked forever, so rebind every entry to the new tid as
 * soon as the thread is resumed. */
struct robust_head {
	void *list;
	long futex_offset;
	void *list_op_pending;
};

void robust_list_rebind(void *head, pid_t old_tid, pid_t new_tid)
{
	struct robust_head *h = head;
	if (!h)
		return;
	int n = 0;
	for (void *e = h->list; e && e != (void *)&h->list && n < 4096; n++) {
		e = (void *)((uintptr_t)e & ~(uintptr_t)1); /* bit 0: PI flag */
		int *lock = (int *)((char *)e + h->futex_offset);
		pthread_mutex_t *m = (pthread_mutex_t *)lock;
		int v = __atomic_load_n(lock, __ATOMIC_RELAXED);
		while ((v & FUTEX_TID_MASK_) == old_tid &&
		       !__atomic_compare_exchange_n(lock, &v, (v & ~FUTEX_TID_MASK_) | new_tid, 0,
		                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			;
		if (m->__data.__owner == old_tid)
			m->__data.__owner = new_tid;
		e = *(void **)e;
	}
}
