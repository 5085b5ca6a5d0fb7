/* Memory the program marked MADV_DONTFORK, carried into every child
 * (mem_fork.c).  Steps of the fork path, in order: */
#ifndef NUWA_MEM_FORK_H
#define NUWA_MEM_FORK_H

#include <stddef.h>

int  mem_fork_prepare(char *err, size_t errlen); /* freeze held: list the mappings (0 or -errno) */
void mem_fork_lift(void);          /* parent, before each raw fork: MADV_DOFORK */
void mem_fork_lower(void);         /* parent after it, and first thing in the child: MADV_DONTFORK */
void mem_fork_finish(void);        /* freeze over: forget the list */
int  mem_fork_count(void);         /* mappings listed by the current freeze */

#endif
