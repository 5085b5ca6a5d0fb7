/* SIGEV_THREAD timers made by libnuwa instead of glibc (timer_thread.c). */
#ifndef NUWA_TIMER_THREAD_H
#define NUWA_TIMER_THREAD_H

#include <signal.h>
#include <time.h>

/* timer_create(clock, sev, id) for sev->sigev_notify == SIGEV_THREAD:
 * 0 or -1 with errno, as timer_create. */
int timer_thread_create(clockid_t clock, const struct sigevent *sev, timer_t *id);
/* 1 when id is such a timer (deleted here: 0 or -1 with errno in *r). */
int timer_thread_delete(timer_t id, int *r);

#endif
