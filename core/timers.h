/* POSIX timers, interval timers and alarm() carried into every child
 * (timers.c).  Steps of the fork path, in order: */
#ifndef NUWA_TIMERS_H
#define NUWA_TIMERS_H

#include <stddef.h>

#include "ctlsock.h"   /* struct ctl_mem */

int  timers_prepare(char *err, size_t errlen); /* freeze held: list the timers (0 or -errno) */
void timers_sample(void);          /* parent, before each raw fork: read their clocks */
int  timers_image(struct ctl_mem *out, int max); /* sample now: the ranges a pooled child copies */
void timers_child_restore(void);   /* child, every thread cloned, before GO */
void timers_finish(void);          /* freeze over: forget the list */
int  timers_count(void);           /* POSIX timers listed by the current freeze */

#endif
