/* nuwa.h — opt-in API of libnuwa.
 *
 * libnuwa freezes every thread of a running program, forks it, and resumes
 * every thread in the child.  Programs need not know about it (LD_PRELOAD);
 * this header is for programs that want to drive it or react to it.
 * Reference and example: docs/api.md.
 *
 * Works whether or not libnuwa is loaded.  Each function below is, in
 * programs, a small inline stand-in that finds libnuwa's function of the
 * same name at run time (dlsym(RTLD_DEFAULT), once) and calls it.  So a
 * program built with `pkg-config --cflags --libs libnuwa` needs no -lnuwa:
 * run plainly, every call returns -ENOSYS and the program carries on; run
 * with libnuwa preloaded (`nuwa run`, LD_PRELOAD) or linked with -lnuwa, the
 * calls do their work.
 *
 * All functions return a negative errno value on failure (never set errno)
 * unless stated otherwise.  -ENOSYS means libnuwa is not loaded.  Because of
 * that, test the yes/no functions with `> 0` (or `== 1`), not as booleans.
 */
#ifndef NUWA_H
#define NUWA_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NUWA_API_VERSION 3

/* What happens to descriptor fd in children (nuwa_fd_policy). */
enum nuwa_fd_policy {
	NUWA_FD_AUTO = 0,     /* rebuild channels internal to the process, share the rest */
	NUWA_FD_SHARE = 1,    /* share the open file description, as fork() does */
	NUWA_FD_RECREATE = 2, /* give the child its own copy of the channel */
	NUWA_FD_CLOSE = 3,    /* close it in children */
};

/* nuwa_spawn() flags */
#define NUWA_SPAWN_STDIO 0x1  /* the child gets the caller's descriptors 0, 1, 2 */

/* Plain declarations where the functions are defined or linked directly:
 * inside libnuwa (NUWA_BUILDING_LIBNUWA, or any file compiled with its
 * private include path, where core/nuwa_int.h is visible), or when the
 * program asks for it with NUWA_NO_SHIMS (it then links with -lnuwa, or
 * declares the functions weak itself). */
#if defined(NUWA_BUILDING_LIBNUWA) || defined(NUWA_NO_SHIMS) || \
    (defined(__has_include) && __has_include("nuwa_int.h"))
#define NUWA__DIRECT 1
#endif

#ifdef NUWA__DIRECT

/* Freeze every thread, fork n children (1..1024) and resume everybody.
 * Like fork(): returns n in the caller's process (pids[0..n-1], if pids is not
 * NULL, receive the children's pids) and 0 in each child, where every thread
 * of the program is running again.  -EBUSY: a freeze is already under way;
 * -ETIMEDOUT: threads did not reach a freeze point in time (NUWA_FREEZE_POLICY
 * =idle); the program then goes on exactly as before. */
int nuwa_clone(int n, pid_t *pids);

/* Turn this process into a template, as `nuwa freeze PID` does: every
 * thread, the caller included, stays frozen and the process serves spawn
 * requests (nuwa_spawn(), `nuwa spawn`).  Call it from an application
 * thread.  Returns 1 in each spawned child (where the caller goes on, with
 * every other thread running again), 0 in the template once `nuwa thaw`
 * resumed it, or -errno with the program unchanged (-ETIMEDOUT, -EBUSY,
 * -EDEADLK from libnuwa's own thread, e.g. in a constructor). */
int nuwa_freeze(void);

/* From another process: ask the template template_pid (same user) for one
 * child.  flags: 0 or NUWA_SPAWN_STDIO.  Returns the child's pid; the child
 * belongs to the template (which reaps it), not to the caller.  -ESRCH: no
 * such process or it has no control socket; -EINVAL: it is not a template;
 * -EACCES: another user's; -ETIMEDOUT: no answer in 30 s. */
pid_t nuwa_spawn(pid_t template_pid, int flags);

/* From another process: make the template template_pid keep n children
 * (0..64; 0: none) forked ahead of time and resumed up to the release gate,
 * so that a spawn only has to release one, as `nuwa pool PID N` does (also
 * `nuwa freeze --pool N`, NUWA_POOL=N).  A spawn from the pool behaves
 * exactly like one without.  Returns how many pooled children are ready at
 * the time of the answer (0..n: call again with the same n to wait for
 * them), or -ESRCH, -EINVAL (not a template, or n out of range), -EACCES,
 * -ETIMEDOUT as for nuwa_spawn(). */
int nuwa_pool(pid_t template_pid, int n);

/* 1 in a process that is a template (frozen, serving spawns), else 0.
 * Every application thread of a template is frozen, so the program itself
 * only sees 0: this is for code libnuwa runs there and for debuggers. */
int nuwa_is_template(void);

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

/* What happens to descriptor fd in children (enum nuwa_fd_policy). */
int nuwa_fd_policy(int fd, int policy);

#else /* the run-time look-ups */

#include <dlfcn.h>
#include <errno.h>

/* The address of libnuwa's function name, or NULL when libnuwa is not
 * loaded.  Looked up once per calling file: libnuwa is either in the
 * process from its start (preloaded or linked) or not at all.
 * RTLD_DEFAULT is ((void *)0) in glibc and musl, and only defined there
 * with _GNU_SOURCE. */
static inline void *nuwa__sym(void **cache, const char *name)
{
	void *p = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
	if (!p) {
		p = dlsym((void *)0, name);
		if (!p)
			p = (void *)cache;   /* absent: remember that too */
		__atomic_store_n(cache, p, __ATOMIC_RELEASE);
	}
	return p == (void *)cache ? (void *)0 : p;
}

#define NUWA__CALL(ret, name, params, args)                                   \
	static inline ret name params                                         \
	{                                                                     \
		static void *cache;                                           \
		void *p = nuwa__sym(&cache, #name);                           \
		if (!p)                                                       \
			return -ENOSYS;                                       \
		return (__extension__ (ret (*) params)p) args;                \
	}

/* Same meaning as in the declarations above (read them with
 * NUWA_NO_SHIMS in mind, or docs/api.md). */
NUWA__CALL(int, nuwa_clone, (int n, pid_t *pids), (n, pids))
NUWA__CALL(int, nuwa_freeze, (void), ())
NUWA__CALL(pid_t, nuwa_spawn, (pid_t template_pid, int flags), (template_pid, flags))
NUWA__CALL(int, nuwa_pool, (pid_t template_pid, int n), (template_pid, n))
NUWA__CALL(int, nuwa_is_template, (void), ())
NUWA__CALL(int, nuwa_is_spawned, (void), ())
NUWA__CALL(int, nuwa_add_constructor, (void (*fn)(void *arg), void *arg), (fn, arg))
NUWA__CALL(int, nuwa_add_final_constructor, (void (*fn)(void *arg), void *arg), (fn, arg))
NUWA__CALL(int, nuwa_thread_skip, (void), ())
NUWA__CALL(int, nuwa_fd_policy, (int fd, int policy), (fd, policy))

#undef NUWA__CALL
#endif

#ifdef __cplusplus
}
#endif
#endif
