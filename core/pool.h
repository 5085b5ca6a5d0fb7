/* The pool of ready children of a template (pool.c). */
#ifndef NUWA_POOL_H
#define NUWA_POOL_H

#include <stddef.h>
#include <sys/types.h>

#include "ctlsock.h"

#define POOL_CORE_MEM 4   /* ranges the core adds to a take (timers) */

/* template side, control thread */
int    pool_set(int n, char *err, size_t errlen); /* keep n; how many are ready, or -errno */
void   pool_end(void);                 /* thaw, stop: the pooled children die */
/* a child of the pool given sp and ready (control_child_await_ready): its
 * pid, or -EAGAIN when the pool has none */
pid_t  pool_take(const struct ctl_spawn *sp);
int    pool_timeout_ms(void);          /* for the control loop's poll; -1: none */
void   pool_tick(void);                /* refill when due: at most one fork */
void   pool_child_exited(pid_t pid);   /* reaped: replaced */
size_t pool_describe(char *buf, size_t len, int json);

/* child side */
void   pool_child_forget(int keep);    /* every new child: the template's ends */
/* a pooled child, every thread cloned: wait until taken (then the channel
 * is closed); what to apply */
const struct ctl_spawn *pool_child_wait(int fd);

#endif
