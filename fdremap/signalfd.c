/* signalfd: its state is the signal mask in fdinfo ("sigmask:"); the child
 * gets a new signalfd on the same mask.  Pending signals are per process
 * and fork() does not pass them on anyway. */
#include <errno.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include "fdr.h"

static int signalfd_discover(struct fdr_snap *s, struct fdr_desc *d, const char *info)
{
	const char *v;
	if (!(v = fdr_field(info, "sigmask:")))
		return -EINVAL;
	d->u.sfd.mask = strtoull(v, NULL, 16);
	return 0;
}

static int signalfd_rebuild(struct fdr_snap *s, struct fdr_desc *d)
{
	int fd = (int)sys_signalfd4(-1, &d->u.sfd.mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return fd;
	return fdr_place(s, d, fd);
}

static size_t signalfd_describe(const struct fdr_desc *d, char *buf, size_t len, size_t at)
{
	return fdr_put(buf, len, at, " mask=%llx", (unsigned long long)d->u.sfd.mask);
}

const struct fdr_kind_ops fdr_kind_signalfd = {
	.name = "signalfd",
	.link = "anon_inode:[signalfd]",
	.fdinfo = 1,
	.discover = signalfd_discover,
	.decide = fdr_decide_own,
	.order = 4,
	.rebuild_desc = signalfd_rebuild,
	.describe = signalfd_describe,
};
