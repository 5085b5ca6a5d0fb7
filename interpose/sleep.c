/* Sleeps.  A sleep interrupted by libnuwa's park signal must neither return
 * early nor report EINTR; in a child it must end at the original deadline.
 * So relative sleeps are turned into an absolute CLOCK_MONOTONIC deadline
 * (Linux measures nanosleep on CLOCK_MONOTONIC) and waited for with
 * clock_nanosleep(TIMER_ABSTIME) until done, or interrupted by one of the
 * program's own signals.  (In a child, the kernel's restart block for an
 * interrupted nanosleep belonged to the old task: restart_syscall returns
 * EINTR there, which lands here too.) */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "nuwa_int.h"

REAL_DECL(int, clock_nanosleep, (clockid_t, int, const struct timespec *, struct timespec *));

static int valid_ts(const struct timespec *t)
{
	return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L;
}

/* Sleep until `deadline` on clock c.  Returns 0, or an errno value (EINTR
 * for the program's own signal, with *left set). */
static int sleep_until(clockid_t c, struct timespec deadline, struct timespec *left, int fp)
{
	unsigned s = fp_enter(fp);
	int r;
	for (;;) {
		r = REAL(clock_nanosleep)(c, TIMER_ABSTIME, &deadline, NULL);
		if (r != EINTR)
			break;
		if (!fp_ours(s)) {
			if (left)
				*left = ts_sub(deadline, ts_now(c));
			break;
		}
		s = nuwa_self.sigcount;
	}
	fp_leave();
	return r;
}

NUWA_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	if (!valid_ts(req)) {
		errno = EINVAL;
		return -1;
	}
	struct timespec dl = ts_add(ts_now(CLOCK_MONOTONIC), *req);
	int r = sleep_until(CLOCK_MONOTONIC, dl, rem, FP_NANOSLEEP);
	if (r) {
		errno = r;
		return -1;
	}
	return 0;
}

NUWA_EXPORT int clock_nanosleep(clockid_t c, int flags, const struct timespec *req,
                                struct timespec *rem)
{
	if (!valid_ts(req))
		return EINVAL;
	if (flags & TIMER_ABSTIME)
		return sleep_until(c, *req, NULL, FP_CLOCK_NANOSLEEP);
	struct timespec now;
	if (clock_gettime(c, &now) < 0)
		return errno == EINVAL ? EINVAL : errno;
	return sleep_until(c, ts_add(now, *req), rem, FP_CLOCK_NANOSLEEP);
}

NUWA_EXPORT unsigned int sleep(unsigned int secs)
{
	struct timespec req = { secs, 0 }, left = { 0, 0 };
	struct timespec dl = ts_add(ts_now(CLOCK_MONOTONIC), req);
	if (sleep_until(CLOCK_MONOTONIC, dl, &left, FP_SLEEP) == EINTR)
		/* as glibc: the unslept seconds, rounded to nearest */
		return (unsigned)left.tv_sec + (left.tv_nsec >= 500000000L);
	return 0;
}

NUWA_EXPORT int usleep(useconds_t us)
{
	struct timespec req = { us / 1000000, (long)(us % 1000000) * 1000 };
	struct timespec dl = ts_add(ts_now(CLOCK_MONOTONIC), req);
	int r = sleep_until(CLOCK_MONOTONIC, dl, NULL, FP_USLEEP);
	if (r) {
		errno = r;
		return -1;
	}
	return 0;
}
