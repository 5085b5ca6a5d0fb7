/* Thread lifecycle: pthread_create, pthread_exit, fork. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "nuwa_int.h"

REAL_DECL(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *));
REAL_DECL(void, pthread_exit, (void *));
REAL_DECL(pid_t, fork, (void));

struct start {
	void *(*fn)(void *);
	void *arg;
	int app_blocks_trigger;
};

static void *thread_trampoline(void *p)
{
	struct start st = *(struct start *)p;
	free(p);
	nuwa_self.app_blocks_trigger = st.app_blocks_trigger;
	signals_thread_setup();
	registry_add_self();
	void *ret = st.fn(st.arg);
	registry_remove_self();
	return ret;
}

NUWA_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr,
                               void *(*fn)(void *), void *arg)
{
	nuwa_ensure_init();
	if (nuwa_inert)
		return REAL(pthread_create)(t, attr, fn, arg);
	struct start *st = malloc(sizeof *st);
	if (!st)
		return EAGAIN;
	*st = (struct start){ fn, arg, nuwa_self.app_blocks_trigger };
	lifecycle_enter(FP_PTHREAD_CREATE);
	int r = REAL(pthread_create)(t, attr, thread_trampoline, st);
	lifecycle_leave();
	if (r)
		free(st);
	return r;
}

NUWA_EXPORT void pthread_exit(void *ret)
{
	registry_remove_self();
	REAL(pthread_exit)(ret);
	__builtin_unreachable();
}

NUWA_EXPORT pid_t fork(void)
{
	nuwa_ensure_init();
	if (nuwa_inert)
		return REAL(fork)();
	lifecycle_enter(FP_FORK);
	pid_t r = REAL(fork)();
	lifecycle_leave();
	if (r > 0)
		forkwatch_note(r);   /* its socket file goes when it ends */
	return r;
}
