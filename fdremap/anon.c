/* eventfd, timerfd and signalfd: their whole state is in fdinfo (and
 * timerfd_gettime), so nothing is drained and the parent is not touched.
 * Also: files reopened for NUWA_FD_RECREATE. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include "fdr.h"
#include "base.h"

/* <linux/timerfd.h> clashes with glibc's headers; its one definition we need */
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static int timerfd_read(struct fdr_desc *d, const char *info)
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

static int timerfd_make(struct fdr_desc *d)
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

int fdr_anon_read(struct fdr_snap *s, struct fdr_desc *d, const char *info)
{
	const char *v;
	switch (d->kind) {
	case FDK_EVENTFD:
		if (!(v = fdr_field(info, "eventfd-count:")))
			return -EINVAL;
		d->u.efd.count = strtoull(v, NULL, 16);
		/* "eventfd-semaphore:" since Linux 6.6; older kernels lose the flag */
		d->u.efd.sem = (v = fdr_field(info, "eventfd-semaphore:")) ? atoi(v) : 0;
		return 0;
	case FDK_TIMERFD:
		return timerfd_read(d, info);
	case FDK_SIGNALFD:
		if (!(v = fdr_field(info, "sigmask:")))
			return -EINVAL;
		d->u.sfd.mask = strtoull(v, NULL, 16);
		return 0;
	case FDK_EPOLL:
		return fdr_epoll_parse(s, d, info);
	case FDK_INOTIFY:
		return fdr_inotify_parse(s, d, info);
	}
	return 0;
}

int fdr_anon_rebuild(struct fdr_snap *s, struct fdr_desc *d)
{
	int fd;
	switch (d->kind) {
	case FDK_EVENTFD:
		fd = (int)sys_eventfd2(0, EFD_CLOEXEC | EFD_NONBLOCK | (d->u.efd.sem ? EFD_SEMAPHORE : 0));
		if (fd < 0)
			return fd;
		if (d->u.efd.count) {
			long r = sys_write(fd, &d->u.efd.count, sizeof d->u.efd.count);
			if (r < 0)
				nuwa_warn("fdremap: eventfd %d: counter not restored: %s", d->rep, fdr_errname(r));
		}
		return fdr_place(s, d, fd);
	case FDK_TIMERFD:
		fd = timerfd_make(d);
		if (fd < 0)
			return fd;
		return fdr_place(s, d, fd);
	case FDK_SIGNALFD:
		fd = (int)sys_signalfd4(-1, &d->u.sfd.mask, SFD_CLOEXEC | SFD_NONBLOCK);
		if (fd < 0)
			return fd;
		return fdr_place(s, d, fd);
	case FDK_EPOLL:
		return fdr_epoll_create(s, d);
	case FDK_INOTIFY:
		return fdr_inotify_rebuild(s, d);
	}
	return 0;
}

/* NUWA_FD_RECREATE on a file, directory or device: a new open file
 * description of the same object with its own offset, like open() again. */
int fdr_reopen(struct fdr_snap *s, struct fdr_desc *d)
{
	int fl = d->flflags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NONBLOCK | O_CLOEXEC);
	int fd = fdr_proc_reopen(d->rep, fl | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fd;
	if (d->u.file.pos > 0)
		sys_lseek(fd, d->u.file.pos, SEEK_SET);
	return fdr_place(s, d, fd);
}
