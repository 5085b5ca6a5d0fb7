/* inotify: the child gets a new instance with the parent's watches, added
 * again by the path the inotify_add_watch() wrapper recorded, on the same
 * watch descriptor numbers.  fdinfo gives each watch's wd, mask and inode
 * ("inotify wd:1 ino:.. sdev:.. mask:.."); the path is used only if it
 * still names that inode.  Watch descriptors are handed out cyclically
 * (idr_alloc_cyclic in fs/notify/inotify/inotify_user.c), so numbers that
 * were skipped in the parent are skipped here by adding and removing a
 * placeholder watch; the IN_IGNORED events that removal queues are read
 * away before the program sees the instance.  Events already queued in the
 * parent's instance stay with the parent. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include "fdr.h"
#include "base.h"

static int inotify_discover(struct fdr_snap *s, struct fdr_desc *d, const char *info)
{
	int n = 0;
	for (const char *p = info; (p = strstr(p, "inotify wd:")); p += 11)
		n++;
	d->u.in.w = fdr_alloc(&s->arena, (n + 1) * sizeof *d->u.in.w);
	if (!d->u.in.w)
		return -ENOMEM;
	int k = 0;
	for (const char *p = info; k < n && (p = strstr(p, "inotify wd:")); p += 11) {
		struct fdr_watch *w = &d->u.in.w[k];
		const char *i = strstr(p, "ino:"), *sd = strstr(p, "sdev:"), *m = strstr(p, "mask:");
		if (!i || !sd || !m)
			return -EINVAL;
		w->wd = (int)strtol(p + 11, NULL, 16);
		w->ino = strtoul(i + 4, NULL, 16);
		w->sdev = (unsigned)strtoul(sd + 5, NULL, 16);
		w->mask = (uint32_t)strtoul(m + 5, NULL, 16);
		k++;
	}
	d->u.in.nw = k;
	/* sorted by wd: numbers are reproduced in increasing order */
	for (int a = 1; a < k; a++)
		for (int b = a; b > 0 && d->u.in.w[b - 1].wd > d->u.in.w[b].wd; b--) {
			struct fdr_watch t = d->u.in.w[b];
			d->u.in.w[b] = d->u.in.w[b - 1];
			d->u.in.w[b - 1] = t;
		}
	for (int j = 0; j < k; j++) {
		const char *why = NULL;
		struct fdr_watch *w = &d->u.in.w[j];
		w->path = fdr_hint_watch(d->rep, w->wd, w->ino, w->sdev, &why);
		if (w->path)
			w->path = fdr_strdup(&s->arena, w->path);
		else
			w->path = why ? fdr_strdup(&s->arena, why) : NULL, w->ino = 0;
	}
	return 0;
}

/* A directory no watch of this instance uses, as placeholder. */
static const char *placeholder(struct fdr_desc *d)
{
	static const char *const cand[] = { "/", "/dev", "/proc", "/sys", "/tmp", "/usr" };
	for (unsigned c = 0; c < sizeof cand / sizeof *cand; c++) {
		int used = 0;
		for (int j = 0; j < d->u.in.nw && !used; j++)
			used = d->u.in.w[j].ino && !strcmp(d->u.in.w[j].path, cand[c]);
		if (!used)
			return cand[c];
	}
	return NULL;
}

static int inotify_rebuild(struct fdr_snap *s, struct fdr_desc *d)
{
	int fd = (int)sys_inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return fd;
	const char *ph = placeholder(d);
	int next = 1; /* the next wd a new instance hands out */
	for (int j = 0; j < d->u.in.nw; j++) {
		struct fdr_watch *w = &d->u.in.w[j];
		if (!w->ino) {
			nuwa_warn("fdremap: inotify fd %d: watch %d not re-added in the child: %s",
				  d->rep, w->wd, w->path ? w->path : "unknown");
			continue;
		}
		/* skip to w->wd; a gap of more than 4096 numbers is not worth it */
		while (ph && next < w->wd && w->wd - next <= 4096) {
			long r = sys_inotify_add_watch(fd, ph, IN_ATTRIB);
			if (r < 0)
				break;
			sys_inotify_rm_watch(fd, (int)r);
			next = (int)r + 1;
		}
		long r = sys_inotify_add_watch(fd, w->path, w->mask);
		if (r < 0) {
			nuwa_warn("fdremap: inotify fd %d: watch %d on %s not re-added in the child: %s",
				  d->rep, w->wd, w->path, fdr_errname(r));
			continue;
		}
		next = (int)r + 1;
		if (r != w->wd)
			nuwa_warn("fdremap: inotify fd %d: watch on %s is wd %ld in the child (was %d)",
				  d->rep, w->path, r, w->wd);
	}
	/* read away the placeholders' IN_IGNORED events */
	char buf[4096];
	while (sys_read(fd, buf, sizeof buf) > 0)
		;
	return fdr_place(s, d, fd);
}

static size_t inotify_describe(const struct fdr_desc *d, char *buf, size_t len, size_t at)
{
	return fdr_put(buf, len, at, " watches=%d", d->u.in.nw);
}

const struct fdr_kind_ops fdr_kind_inotify = {
	.name = "inotify",
	.link = "anon_inode:inotify",
	.fdinfo = 1,
	.discover = inotify_discover,
	.decide = fdr_decide_own,
	.order = 5,
	.rebuild_desc = inotify_rebuild,
	.describe = inotify_describe,
};
