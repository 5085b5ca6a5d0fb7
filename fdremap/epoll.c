/* epoll: the interest list is shared after fork(), so a child gets a new
 * epoll instance with every registration of the parent's: same events
 * (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE, EPOLLWAKEUP kept) and data,
 * pointing at the child's rebuilt descriptors (which sit on the old
 * numbers), and at the shared ones for shared targets.
 *
 * fdinfo lists "tfd: N events: X data: Y pos: ino: sdev:" per registration.
 * A registration is keyed by (file, number at EPOLL_CTL_ADD time); if the
 * program closed that number but kept a dup, tfd no longer names the target
 * (epoll(7) Q6).  kcmp(KCMP_EPOLL_TFD) tells whether a descriptor is the
 * target; for such stale entries the child registers through the old number
 * again with a temporary alias, so EPOLL_CTL_MOD/DEL keep behaving the same. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <linux/kcmp.h>
#include "fdr.h"
#include "base.h"

static int epoll_discover(struct fdr_snap *s, struct fdr_desc *d, const char *info)
{
	int n = 0;
	for (const char *p = info; (p = strstr(p, "tfd:")); p += 4)
		n++;
	d->u.ep.regs = fdr_alloc(&s->arena, (n + 1) * sizeof *d->u.ep.regs);
	if (!d->u.ep.regs)
		return -ENOMEM;
	int k = 0;
	for (const char *p = info; k < n && (p = strstr(p, "tfd:")); p += 4) {
		struct fdr_epreg *r = &d->u.ep.regs[k];
		char *e;
		r->tfd = (int)strtol(p + 4, &e, 10);
		const char *v = strstr(e, "events:");
		const char *w = strstr(e, "data:");
		if (!v || !w)
			return -EINVAL;
		r->events = (uint32_t)strtoul(v + 7, NULL, 16);
		r->data = strtoull(w + 5, NULL, 16);
		const char *eol = strchr(e, '\n');
		const char *i = strstr(e, "ino:"), *sd = strstr(e, "sdev:");
		if (i && (!eol || i < eol))
			r->ino = strtoul(i + 4, NULL, 16);
		if (sd && (!eol || sd < eol))
			r->sdev = (unsigned)strtoul(sd + 5, NULL, 16);
		r->alias = r->tfd;
		k++;
	}
	d->u.ep.nregs = k;
	return 0;
}

struct kcmp_epoll_slot_ { uint32_t efd, tfd, toff; };

static int is_target(struct fdr_snap *s, int epfd, int tfd, int fd)
{
	struct kcmp_epoll_slot_ slot = { (uint32_t)epfd, (uint32_t)tfd, 0 };
	return sys_kcmp(s->pid, s->pid, KCMP_EPOLL_TFD, fd, &slot) == 0;
}

/* At freeze time: find a live descriptor for every registration. */
static void epoll_resolve(struct fdr_snap *s)
{
	for (int i = 0; i < s->ndescs; i++) {
		struct fdr_desc *d = &s->descs[i];
		if (d->kind != FDK_EPOLL || !s->kcmp_ok)
			continue;
		for (int k = 0; k < d->u.ep.nregs; k++) {
			struct fdr_epreg *r = &d->u.ep.regs[k];
			if (is_target(s, d->rep, r->tfd, r->tfd))
				continue;
			r->alias = -1;
			for (int j = 0; j < s->nfds && r->alias < 0; j++)
				if (is_target(s, d->rep, r->tfd, s->fds[j].fd))
					r->alias = s->fds[j].fd;
		}
	}
}

/* An empty instance on the old numbers; registered in epoll_register(). */
static int epoll_new(struct fdr_snap *s, struct fdr_desc *d)
{
	int fd = (int)sys_epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return fd;
	return fdr_place(s, d, fd);
}

static int cloexec_of(struct fdr_snap *s, int fd)
{
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i].fd == fd)
			return s->fds[i].cloexec;
	return 1;
}

static long add(int ep, int tfd, struct fdr_epreg *r)
{
	struct epoll_event ev = { .events = r->events, .data.u64 = r->data };
	long e = sys_epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	if (e == -EINVAL && (r->events & EPOLLEXCLUSIVE)) {
		ev.events &= ~EPOLLEXCLUSIVE;
		e = sys_epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
		if (e == 0)
			nuwa_warn("fdremap: epoll %d: fd %d registered without EPOLLEXCLUSIVE", ep, tfd);
	}
	return e;
}

/* In the child, once every descriptor sits on its number. */
static int epoll_register(struct fdr_snap *s, struct fdr_desc *d)
{
	int ep = d->rep, err = 0;
	for (int k = 0; k < d->u.ep.nregs; k++) {
		struct fdr_epreg *r = &d->u.ep.regs[k];
		if (nuwa_is_own_fd(r->tfd) && r->alias == r->tfd)
			continue;
		long e;
		if (r->alias == r->tfd) {
			e = add(ep, r->tfd, r);
		} else if (r->alias < 0) {
			e = -EBADF;
		} else {
			/* stale number: put the target on it for the ADD, then restore */
			int occ = (int)sys_fcntl(r->tfd, F_DUPFD_CLOEXEC, 0);
			e = sys_dup3(r->alias, r->tfd, O_CLOEXEC);
			if (e >= 0)
				e = add(ep, r->tfd, r);
			if (occ >= 0) {
				sys_dup3(occ, r->tfd, cloexec_of(s, r->tfd) ? O_CLOEXEC : 0);
				sys_close(occ);
			} else {
				sys_close(r->tfd);
			}
		}
		if (e < 0) {
			nuwa_warn("fdremap: epoll fd %d: registration of fd %d (events 0x%x) not restored: %s",
				  ep, r->tfd, r->events, fdr_errname(e));
			err = (int)e;
		}
	}
	return err;
}

static size_t epoll_describe(const struct fdr_desc *d, char *buf, size_t len, size_t at)
{
	return fdr_put(buf, len, at, " registrations=%d", d->u.ep.nregs);
}

const struct fdr_kind_ops fdr_kind_epoll = {
	.name = "epoll",
	.link = "anon_inode:[eventpoll]",
	.fdinfo = 1,
	.discover = epoll_discover,
	.decide = fdr_decide_own,
	.decided = epoll_resolve,
	.order = 12,                 /* last: its targets must be in place */
	.rebuild_desc = epoll_new,
	.refill = epoll_register,
	.describe = epoll_describe,
};
