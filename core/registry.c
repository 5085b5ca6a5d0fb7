/* Thread registry: every application thread that libnuwa knows (the main
 * thread and every thread made through pthread_create) has a record in its
 * own static TLS, linked here so that the control thread can read what each
 * one is doing.  All changes happen inside a libnuwa critical section so a
 * thread is never parked while holding the registry lock. */
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nuwa_int.h"

struct nuwa_thread *registry_head;
static nuwa_lock_t registry_mutex;
static pthread_key_t exit_key;
static int exit_key_ok;

void registry_lock(void)
{
	nuwa_cs_enter();
	nuwa_lock(&registry_mutex);
}

void registry_unlock(void)
{
	nuwa_unlock(&registry_mutex);
	nuwa_cs_leave();
}

/* Runs for every exit path of a thread (return, pthread_exit, cancellation):
 * TSD destructors are run by glibc's start_thread after the start routine. */
static void exit_key_destructor(void *p)
{
	registry_remove_self();
}

void registry_init(void)
{
	if (!exit_key_ok && pthread_key_create(&exit_key, exit_key_destructor) == 0)
		exit_key_ok = 1;
}

void registry_add_self(void)
{
	struct nuwa_thread *t = &nuwa_self;
	if (t->registered)
		return;
	t->tid = (pid_t)sys_gettid();
	registry_lock();
	t->prev = NULL;
	t->next = registry_head;
	if (registry_head)
		registry_head->prev = t;
	registry_head = t;
	t->registered = 1;
	registry_unlock();
	if (exit_key_ok)
		pthread_setspecific(exit_key, t);
}

void registry_remove_self(void)
{
	struct nuwa_thread *t = &nuwa_self;
	if (!t->registered)
		return;
	registry_lock();
	if (t->prev)
		t->prev->next = t->next;
	else
		registry_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
	t->registered = 0;
	registry_unlock();
}

struct nuwa_thread *registry_find(pid_t tid)
{
	for (struct nuwa_thread *t = registry_head; t; t = t->next)
		if (t->tid == tid)
			return t;
	return NULL;
}

/* After the program's own fork(): only the forking thread exists in the
 * child, and its records of the other threads are dead memory. */
void registry_reset_after_fork(void)
{
	struct nuwa_thread *t = &nuwa_self;
	registry_mutex.v = 0;
	registry_head = NULL;
	t->registered = 0;
	t->cs_depth = 0;
	t->park_pending = 0;
	t->ntids = 0;
	registry_add_self();
}

/* ---- lifecycle: thread creation and fork() are kept out of a freeze ---- */

static volatile int lifecycle_inflight;

void lifecycle_enter(int fp)
{
	for (;;) {
		__atomic_add_fetch(&lifecycle_inflight, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&nuwa_freezing, __ATOMIC_SEQ_CST))
			return;
		/* A freeze is being set up or held: step back and wait as if
		 * idle at a freeze point, so that the freeze can park us. */
		if (__atomic_sub_fetch(&lifecycle_inflight, 1, __ATOMIC_SEQ_CST) == 0)
			nuwa_futex_wake(&lifecycle_inflight, 1);
		nuwa_self.idle = fp;
		while (__atomic_load_n(&nuwa_freezing, __ATOMIC_SEQ_CST))
			nuwa_futex_wait(&nuwa_freezing, 1, NULL);
		nuwa_self.idle = FP_BUSY;
	}
}

void lifecycle_leave(void)
{
	if (__atomic_sub_fetch(&lifecycle_inflight, 1, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&nuwa_freezing, __ATOMIC_SEQ_CST))
		nuwa_futex_wake(&lifecycle_inflight, 1);
}

int lifecycle_wait_quiet_until(struct timespec deadline)
{
	int v;
	while ((v = __atomic_load_n(&lifecycle_inflight, __ATOMIC_SEQ_CST)) != 0) {
		if (ts_cmp(ts_now(CLOCK_MONOTONIC), deadline) >= 0)
			return -1;
		struct timespec ms = { 0, 1000000 };
		nuwa_futex_wait(&lifecycle_inflight, v, &ms);
	}
	return 0;
}

void lifecycle_reset_after_fork(void)
{
	lifecycle_inflight = 1; /* the forking thread is still inside fork() */
}
