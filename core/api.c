/* The exported opt-in API (include/nuwa.h).  nuwa_spawn(), which talks to
 * another process, is in api_client.c; nuwa_fd_policy() in fdremap/hints.c. */
#define NUWA_BUILDING_LIBNUWA 1
#include <errno.h>

#include "nuwa.h"
#include "nuwa_int.h"

/* core/control.c: post a freeze to the control thread and wait, parked with
 * the others; 1 in each child, 0 after thaw, or -errno. */

#define MAX_HOOKS 64

struct hook {
	void (*fn)(void *);
	void *arg;
};
static struct hook constructors[MAX_HOOKS], final_constructors[MAX_HOOKS];
static int nconstructors, nfinal;
static nuwa_lock_t hooks_lock;
/* 1 in a new child from its constructors to its final constructors: the
 * child still carries the template's state word then (fork.c sets it to
 * running once every thread runs), but it is not a template. */

static int add_hook(struct hook *tab, int *n, void (*fn)(void *), void *arg)
{
	if (!fn)
		return -EINVAL;
	int r = 0;
	nuwa_cs_enter();
	nuwa_lock(&hooks_lock);
	if (*n == MAX_HOOKS)
		r = -ENOSPC;
	else
		tab[(*n)++] = (struct hook){ fn, arg };
	nuwa_unlock(&hooks_lock);
	nuwa_cs_leave();
	return r;
}

static void run_hooks(const struct hook *tab, int n)
{
	for (int i = 0; i < n; i++)
		tab[i].fn(tab[i].arg);
}

/* Both run in a new child, on its control thread (core/fork.c). */
void hooks_run_constructors(void)
{
	run_hooks(constructors, nconstructors);
}

void hooks_run_final_constructors(void)
{
	run_hooks(final_constructors, nfinal);
}

NUWA_EXPORT int nuwa_add_constructor(void (*fn)(void *), void *arg)
{
	return add_hook(constructors, &nconstructors, fn, arg);
}

NUWA_EXPORT int nuwa_add_final_constructor(void (*fn)(void *), void *arg)
{
	return add_hook(final_constructors, &nfinal, fn, arg);
}

NUWA_EXPORT int nuwa_clone(int n, pid_t *pids)
{
	nuwa_ensure_init();
	if (nuwa_inert)
		return -ENOSYS;
	if (n < 1 || n > 1024)
		return -EINVAL;
	return control_request_clone(n, pids);
}

NUWA_EXPORT int nuwa_freeze(void)
{
	nuwa_ensure_init();
	if (nuwa_inert)
		return -ENOSYS;
	return control_request_freeze();
}

NUWA_EXPORT int nuwa_is_template(void)
{
	return nuwa_state == NUWA_STATE_TEMPLATE;
}

NUWA_EXPORT int nuwa_is_spawned(void)
{
	return nuwa_is_child_of_freeze();
}

NUWA_EXPORT int nuwa_thread_skip(void)
{
	nuwa_ensure_init();
	if (nuwa_inert)
		return -ENOSYS;
	nuwa_self.skip = 1;
	return 0;
}
