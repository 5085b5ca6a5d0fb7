/* Process resources that a raw fork does not carry into the child as the
 * program expects, one file each (mem_fork.c: MADV_DONTFORK memory;
 * timers.c: POSIX timers, itimers, alarm).  The fork path runs their steps
 * through these calls, each one marked "resources:" where it is made. */
#ifndef NUWA_RESOURCES_H
#define NUWA_RESOURCES_H

#include <stddef.h>

#include "ctlsock.h"   /* struct ctl_mem */

int  resources_prepare(char *err, size_t errlen); /* freeze held, once per freeze */
void resources_before_fork(void);     /* parent, right before each raw fork */
void resources_after_fork(void);      /* parent, right after it */
/* taking a pooled child (forked earlier): the state read before a fork,
 * read now, as memory ranges to copy into it; returns how many */
int  resources_spawn_image(struct ctl_mem *out, int max);
void resources_child_early(void);     /* child's control thread, first thing */
void resources_child_before_go(void); /* child, every thread cloned, none released */
void resources_finish(void);          /* freeze over (thaw, release) */

#endif
