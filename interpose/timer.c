/* timer_create and timer_delete: SIGEV_THREAD timers are libnuwa's
 * (core/timer_thread.c); every other timer goes to glibc unchanged, and
 * the kernel alone tells what it holds (core/timers.c). */
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "nuwa_int.h"
#include "timer_thread.h"

REAL_DECL(int, timer_create, (clockid_t, struct sigevent *, timer_t *));
REAL_DECL(int, timer_delete, (timer_t));

NUWA_EXPORT int timer_create(clockid_t clock, struct sigevent *sev, timer_t *id)
{
	nuwa_ensure_init();
	if (nuwa_inert || !sev || sev->sigev_notify != SIGEV_THREAD)
		return REAL(timer_create)(clock, sev, id);
	return timer_thread_create(clock, sev, id);
}

NUWA_EXPORT int timer_delete(timer_t id)
{
	int r;
	if (timer_thread_delete(id, &r))
		return r;
	return REAL(timer_delete)(id);
}
