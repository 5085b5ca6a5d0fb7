/* timespec arithmetic: deadlines for transparent retries, timers, timing
 * logs.  clock_gettime is the vDSO's: no system call, no lock. */
#include <limits.h>

#include "base.h"

struct timespec ts_now(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t;
}

struct timespec ts_add(struct timespec a, struct timespec b)
{
	a.tv_sec += b.tv_sec;
	a.tv_nsec += b.tv_nsec;
	if (a.tv_nsec >= 1000000000L) {
		a.tv_sec++;
		a.tv_nsec -= 1000000000L;
	}
	return a;
}

struct timespec ts_sub(struct timespec a, struct timespec b)
{
	struct timespec r = { 0, 0 };
	if (ts_cmp(a, b) <= 0)
		return r;
	r.tv_sec = a.tv_sec - b.tv_sec;
	r.tv_nsec = a.tv_nsec - b.tv_nsec;
	if (r.tv_nsec < 0) {
		r.tv_sec--;
		r.tv_nsec += 1000000000L;
	}
	return r;
}

int ts_cmp(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec < b.tv_sec ? -1 : 1;
	return a.tv_nsec < b.tv_nsec ? -1 : a.tv_nsec > b.tv_nsec;
}

int ts_to_ms_remaining(struct timespec deadline)
{
	struct timespec r = ts_sub(deadline, ts_now(CLOCK_MONOTONIC));
	long long ms = (long long)r.tv_sec * 1000 + (r.tv_nsec + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

long us_between(struct timespec a, struct timespec b)
{
	struct timespec d = ts_sub(b, a);
	return d.tv_sec * 1000000L + d.tv_nsec / 1000;
}

long long nuwa_now_ms(void)
{
	struct timespec t = ts_now(CLOCK_MONOTONIC);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}
