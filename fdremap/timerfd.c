/* timerfd: clock and flags in fdinfo, the schedule from timerfd_gettime(),
 * unread expirations ("ticks:"); nothing is drained and the parent is not
 * touched.  The child gets a new timerfd on the same absolute schedule of
 * the timer's own clock, so parent and children keep one cadence. */
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include "fdr.h"

/* <linux/timerfd.h> clashes with glibc's headers; its one definition we need */
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static int timerfd_discover(struct fdr_snap *s, struct fdr_desc *d, const char *info)
{
	const char *v;
	if (!(v = fdr_field(info, "clockid:")))
		return -EINVAL;
	d->u.tfd.clockid = (int)strtol(v, NULL, 10);
	if ((v = fdr_field(info, "settime flags:")))
		d->u.tfd.flags = (int)strtol(v, NULL, 8);
	/* timerfd_gettime() first: for a periodic timer that fired several
	 * times it folds the overruns into the tick count fdinfo shows
	 * (fs/timerfd.c), without changing what the program will read. */
	struct itimerspec its;
	long r = sys_timerfd_gettime(d->rep, &its);
	if (r < 0)
		return (int)r;
	char buf[1024];
	if (fdr_fdinfo(d->rep, buf, sizeof buf) > 0 && (v = fdr_field(buf, "ticks:")))
		d->u.tfd.ticks = strtoull(v, NULL, 10);
	d->u.tfd.value = its.it_value;
	d->u.tfd.interval = its.it_interval;
	/* the absolute time of the next expiration on the timer's own clock:
	 * children keep the parent's phase */
	struct timespec now;
	if (sys_clock_gettime(d->u.tfd.clockid, &now) < 0)
		return -EINVAL;
	d->u.tfd.abs = ts_add(now, its.it_value);
	return 0;
}

static int timerfd_make(const struct fdr_desc *d)
{
	int fd = (int)sys_timerfd_create(d->u.tfd.clockid, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return fd;
	uint64_t ticks = d->u.tfd.ticks;
	if (d->u.tfd.value.tv_sec || d->u.tfd.value.tv_nsec) {
		struct itimerspec its = { .it_interval = d->u.tfd.interval };
		struct timespec next = d->u.tfd.abs, now;
		sys_clock_gettime(d->u.tfd.clockid, &now);
		/* a template child may be made long after the freeze: keep the
		 * phase, but periods that passed while frozen do not count */
		if (ts_cmp(next, now) < 0 && (d->u.tfd.interval.tv_sec || d->u.tfd.interval.tv_nsec)) {
			ticks++; /* the expiration that fell due */
			while (ts_cmp(next, now) < 0)
				next = ts_add(next, d->u.tfd.interval);
		}
		its.it_value = next;
		int fl = TFD_TIMER_ABSTIME | (d->u.tfd.flags & TFD_TIMER_CANCEL_ON_SET);
		long r = sys_timerfd_settime(fd, fl, &its, NULL);
		if (r < 0) {
			sys_close(fd);
			return (int)r;
		}
	}
	if (ticks) {
		long r = sys_ioctl(fd, TFD_IOC_SET_TICKS, &ticks);
		if (r < 0)
			nuwa_warn("fdremap: timerfd %d: %llu pending expirations lost in the child "
				  "(TFD_IOC_SET_TICKS: %s)", d->rep, (unsigned long long)ticks, fdr_errname(r));
	}
	return fd;
}

static int timerfd_rebuild(struct fdr_snap *s, struct fdr_desc *d)
{
	int fd = timerfd_make(d);
	if (fd < 0)
		return fd;
	return fdr_place(s, d, fd);
}

static size_t timerfd_describe(const struct fdr_desc *d, char *buf, size_t len, size_t at)
{
	return fdr_put(buf, len, at, " clock=%d interval=%ld.%09ld", d->u.tfd.clockid,
	               (long)d->u.tfd.interval.tv_sec, d->u.tfd.interval.tv_nsec);
}

const struct fdr_kind_ops fdr_kind_timerfd = {
	.name = "timerfd",
	.link = "anon_inode:[timerfd]",
	.fdinfo = 1,
	.discover = timerfd_discover,
	.decide = fdr_decide_own,
	.order = 3,
	.rebuild_desc = timerfd_rebuild,
	.describe = timerfd_describe,
};
