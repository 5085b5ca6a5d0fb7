/* nuwa.h — opt-in API of libnuwa.
 *
 * libnuwa freezes every thread of a running program, forks it, and resumes
 * every thread in the child.  Programs need not know about it (LD_PRELOAD);
 * this header is for programs that want to drive it or react to it.
 *
 * All functions return a negative errno value on failure (never set errno)
 * unless stated otherwise.  -ENOSYS means libnuwa is not loaded.
 */
#ifndef NUWA_H
#define NUWA_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NUWA_API_VERSION 1

/* Freeze every thread, fork n children (1..1024) and resume everybody.
 * Like fork(): returns n in the caller's process (pids[0..n-1], if pids is not
 * NULL, receive the children's pids) and 0 in each child, where every thread
 * of the program is running again.  -EBUSY: a freeze is already under way;
 * -ETIMEDOUT: threads did not reach a freeze point in time (NUWA_FREEZE_POLICY
 * =idle); the program then goes on exactly as before. */
int nuwa_clone(int n, pid_t *pids);

/* 1 in a process that libnuwa forked from a frozen image, 0 otherwise. */
int nuwa_is_spawned(void);

/* Functions run in every child: constructors before the program's threads
 * resume (only libnuwa's thread runs then), final constructors right after.
 * Use them to reseed random generators or reopen logs.  Up to 64 each. */
int nuwa_add_constructor(void (*fn)(void *arg), void *arg);
int nuwa_add_final_constructor(void (*fn)(void *arg), void *arg);

/* The calling thread is not resumed in children (its stack stays as it was;
 * it must hold no lock that the others need). */
int nuwa_thread_skip(void);

/* What happens to descriptor fd in children. */
enum nuwa_fd_policy {
	NUWA_FD_AUTO = 0,     /* rebuild channels internal to the process, share the rest */
	NUWA_FD_SHARE = 1,    /* share the open file description, as fork() does */
	NUWA_FD_RECREATE = 2, /* give the child its own copy of the channel */
	NUWA_FD_CLOSE = 3,    /* close it in children */
};
int nuwa_fd_policy(int fd, int policy);

#ifdef __cplusplus
}
#endif
#endif
