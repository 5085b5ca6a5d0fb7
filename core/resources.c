/* The order of the resource steps around a raw fork (see resources.h). */
#include "mem_fork.h"
#include "resources.h"
#include "timers.h"

int resources_prepare(char *err, size_t errlen)
{
	int r = mem_fork_prepare(err, errlen);
	if (r == 0 && (r = timers_prepare(err, errlen)) < 0)
		mem_fork_finish();
	return r;
}

void resources_before_fork(void)
{
	timers_sample();
	mem_fork_lift();
}

void resources_after_fork(void)
{
	mem_fork_lower();
}

int resources_spawn_image(struct ctl_mem *out, int max)
{
	return timers_image(out, max);   /* MADV_DONTFORK: settled by the fork itself */
}

void resources_child_early(void)
{
	mem_fork_lower();
}

void resources_child_before_go(void)
{
	timers_child_restore();
}

void resources_finish(void)
{
	mem_fork_finish();
	timers_finish();
}
