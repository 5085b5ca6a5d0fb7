/* tls/ — what makes a resumed task the *same* thread: the tid in glibc's
 * TCB (tcb.c), the per-thread kernel state that clone() does not carry
 * (kstate.c), and lock owners that are tids (owner.c).  Used by core/'s
 * park handler (save) and fork/resume (restore), and by the lock wrappers. */
#ifndef NUWA_TLS_H
#define NUWA_TLS_H

#include <pthread.h>
#include <sched.h>
#include <stddef.h>

#include "base.h"

/* per-thread kernel state that fork/clone does not carry */
struct tls_state {
	void *robust_head;
	size_t robust_len;
	int rseq_registered;
	char name[16];
	int has_affinity;
	cpu_set_t affinity;
	int sched_policy;
	struct sched_param sched_param;
	int nice;
};

/* tcb.c */
extern void *nuwa_main_tcb;                /* pthread_self() of the main thread */
void tls_init(void);                       /* control thread, at start */
int  tls_tid_offset(void);
void tls_set_tid(void *tcb, pid_t tid);
pid_t *tls_tid_ptr(void *tcb);

/* kstate.c */
void tls_save(struct tls_state *t);        /* in the park handler */
void tls_restore(const struct tls_state *t, const struct tls_state *cloner); /* resumed task */

/* owner.c: former tids, and repairs on the lock wrappers' slow paths */
void tls_note_new_tid(pid_t old_tid, pid_t new_tid);
void robust_list_rebind(void *head, pid_t old_tid, pid_t new_tid);
/* rtld.c: ld.so's own recursive locks held by old_tid get new_tid */
void tls_rtld_init(void);                 /* at start-up */
void tls_rtld_rebind(pid_t old_tid, pid_t new_tid);
int  tls_rtld_held_by(pid_t tid);         /* inside the loader (racy read) */
pid_t tls_rtld_holder(void);              /* a tid inside the loader, or 0 */
int  mutex_repair_owner(pthread_mutex_t *m);
int  rwlock_repair_writer(pthread_rwlock_t *rw);
/* pthread_mutex_lock's and _unlock's targets; hidden: the wrappers load
 * them PC-relative, not through the GOT */
extern int (*tls_mutex_lock)(pthread_mutex_t *) __attribute__((visibility("hidden")));
extern int (*tls_mutex_unlock)(pthread_mutex_t *) __attribute__((visibility("hidden")));
void tls_owner_resolve(void);            /* at start-up: the real mutex functions */
void tls_enter_resumed_child(void);  /* a resumed child: locks repair first */

#endif
