/* eventfd: its whole state is in fdinfo ("eventfd-count:", and
 * "eventfd-semaphore:" since Linux 6.6), so nothing is drained and the
 * parent is not touched; the child gets a new eventfd with the same counter.
 * "eventfd-id:" tells aliases apart without kcmp. */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include "fdr.h"

static long eventfd_id(const char *info)
{
	const char *v = fdr_field(info, "eventfd-id:");
	return v ? strtol(v, NULL, 10) : -1;
}

static int eventfd_discover(struct fdr_snap *s, struct fdr_desc *d, const char *info)
{
	const char *v;
	if (!(v = fdr_field(info, "eventfd-count:")))
		return -EINVAL;
	d->u.efd.count = strtoull(v, NULL, 16);
	/* "eventfd-semaphore:" since Linux 6.6; older kernels lose the flag */
	d->u.efd.sem = (v = fdr_field(info, "eventfd-semaphore:")) ? atoi(v) : 0;
	return 0;
}

static int eventfd_rebuild(struct fdr_snap *s, struct fdr_desc *d)
{
	int fd = (int)sys_eventfd2(0, EFD_CLOEXEC | EFD_NONBLOCK | (d->u.efd.sem ? EFD_SEMAPHORE : 0));
	if (fd < 0)
		return fd;
	if (d->u.efd.count) {
		long r = sys_write(fd, &d->u.efd.count, sizeof d->u.efd.count);
		if (r < 0)
			nuwa_warn("fdremap: eventfd %d: counter not restored: %s", d->rep, fdr_errname(r));
	}
	return fdr_place(s, d, fd);
}

static size_t eventfd_describe(const struct fdr_desc *d, char *buf, size_t len, size_t at)
{
	return fdr_put(buf, len, at, " count=%llu%s", (unsigned long long)d->u.efd.count,
	               d->u.efd.sem ? " semaphore" : "");
}

const struct fdr_kind_ops fdr_kind_eventfd = {
	.name = "eventfd",
	.link = "anon_inode:[eventfd]",
	.fdinfo = 1,
	.id = eventfd_id,
	.discover = eventfd_discover,
	.decide = fdr_decide_own,
	.order = 2,
	.rebuild_desc = eventfd_rebuild,
	.describe = eventfd_describe,
};
