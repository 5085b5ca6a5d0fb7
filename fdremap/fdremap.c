/* fdremap: discover -> drain -> rebuild in child -> refill.
 *
 *   fdremap_prepare()      control thread, every application thread parked:
 *                          snapshot the descriptor table and the queued data;
 *                          the parent's channels are left as they were
 *   fdremap_child_setup()  in each child before any application thread runs:
 *                          new channels on the old numbers, refilled
 *   fdremap_finish()       parent, freeze over: drop the snapshot
 *
 * The snapshot lives in mmap'ed memory that children inherit; it is never
 * allocated with malloc (parked threads may hold its locks). */
#include <errno.h>
#include <string.h>
#include "fdr.h"
#include "fdremap.h"
#include "nuwa.h"
#include "base.h"

struct fdr_snap fdr_snap;

static void snap_drop(struct fdr_snap *s)
{
	fdr_arena_free(&s->arena);
	memset(s, 0, sizeof *s);
}

/* scan + decide, no side effects on the program's channels */
static int snap_take(struct fdr_snap *s, char *err, size_t errlen)
{
	int r = fdr_scan(s);
	if (r == 0)
		r = fdr_unix_probe(s);
	if (r == 0)
		r = fdr_build_channels(s);
	if (r < 0) {
		if (err)
			fdr_fmt(err, errlen, "fdremap: cannot read the descriptor table: %s", fdr_errname(r));
		snap_drop(s);
		return r;
	}
	fdr_mark_foreign(s);
	fdr_decide(s);
	fdr_epoll_resolve(s);
	return 0;
}

int fdremap_prepare(char *err, size_t errlen)
{
	struct fdr_snap *s = &fdr_snap;
	if (s->valid)
		fdremap_finish();
	int r = snap_take(s, err, errlen);
	if (r < 0)
		return r;
	fdr_hints_prune(s);
	for (int i = 0; i < s->nchans; i++) {
		struct fdr_chan *c = &s->chans[i];
		if (c->action != FDA_REBUILD)
			continue;
		if (c->kind == FDK_PIPE)
			r = fdr_pipe_drain(s, c);
		else if (c->kind == FDK_UNIX)
			r = fdr_sock_drain(s, c);
		else
			continue;
		if (r < 0) {
			if (err)
				fdr_fmt(err, errlen, "fdremap: cannot copy the data queued in %s %d: %s",
					fdr_kind_name(c->kind), i, fdr_errname(r));
			for (int j = 0; j <= i; j++)
				fdr_msgs_close_fds(&s->chans[j]);
			snap_drop(s);
			return r;
		}
	}
	s->valid = 1;
	return 0;
}

static int rebuild_chan(struct fdr_snap *s, struct fdr_chan *c)
{
	if (c->action == FDA_SHARE)
		return 0;
	if (c->kind == FDK_PIPE)
		return fdr_pipe_rebuild(s, c);
	if (c->kind == FDK_UNIX)
		return fdr_sock_rebuild(s, c);
	int ci = (int)(c - s->chans), err = 0;
	for (int i = 0; i < s->ndescs; i++) {
		struct fdr_desc *d = &s->descs[i];
		if (d->chan != ci)
			continue;
		int r = c->action == FDA_REOPEN ? fdr_reopen(s, d) : fdr_anon_rebuild(s, d);
		if (r < 0) {
			nuwa_warn("fdremap: fd %d: %s not rebuilt in the child (%s); it stays shared",
				  d->rep, fdr_kind_name(d->kind), fdr_errname(r));
			err = r;
		}
	}
	return err;
}

static int chan_rep(const struct fdr_snap *s, int ci)
{
	for (int i = 0; i < s->ndescs; i++)
		if (s->descs[i].chan == ci)
			return s->descs[i].rep;
	return -1;
}

int fdremap_child_setup(void)
{
	struct fdr_snap *s = &fdr_snap;
	if (!s->valid)
		return 0;
	s->pid = (pid_t)sys_getpid();
	int err = 0, r;
	/* order: plain channels, then sockets (their in-flight descriptors may be
	 * channels rebuilt just before), epolls last (targets must be in place) */
	static const int order[] = { FDK_PIPE, FDK_EVENTFD, FDK_TIMERFD, FDK_SIGNALFD, FDK_INOTIFY,
				     FDK_FILE, FDK_DIR, FDK_CHR, FDK_BLK, FDK_FIFO, FDK_UNIX, FDK_EPOLL };
	for (unsigned o = 0; o < sizeof order / sizeof *order; o++)
		for (int i = 0; i < s->nchans; i++)
			if (s->chans[i].kind == order[o] && (r = rebuild_chan(s, &s->chans[i])) < 0) {
				nuwa_warn("fdremap: %s channel of fd %d not fully rebuilt: %s",
					  fdr_kind_name(s->chans[i].kind), chan_rep(s, i), fdr_errname(r));
				err = r;
			}
	for (int i = 0; i < s->ndescs; i++)
		if (s->descs[i].kind == FDK_EPOLL && s->chans[s->descs[i].chan].action == FDA_REBUILD &&
		    (r = fdr_epoll_register(s, &s->descs[i])) < 0)
			err = r;
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i].close_in_child)
			sys_close(s->fds[i].fd);
	/* descriptors held for in-flight SCM_RIGHTS were sent again: drop ours */
	for (int i = 0; i < s->nchans; i++)
		fdr_msgs_close_fds(&s->chans[i]);
	/* later freezes in this child start from a clean state */
	snap_drop(s);
	return err;
}

void fdremap_finish(void)
{
	struct fdr_snap *s = &fdr_snap;
	if (!s->valid)
		return;
	for (int i = 0; i < s->nchans; i++)
		fdr_msgs_close_fds(&s->chans[i]);
	snap_drop(s);
}

/* ---- introspection ---------------------------------------------------------- */

static size_t put(char *buf, size_t len, size_t at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#include <stdarg.h>
#include <stdio.h>
static size_t put(char *buf, size_t len, size_t at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(at < len ? buf + at : NULL, at < len ? len - at : 0, fmt, ap);
	va_end(ap);
	return at + (n > 0 ? (size_t)n : 0);
}

static const char *pol_name(const struct fdr_snap *s, const struct fdr_fd *f)
{
	if (f->close_in_child)
		return "close";
	switch (s->chans[s->descs[f->desc].chan].action) {
	case FDA_REBUILD: return "recreate";
	case FDA_REOPEN:  return "reopen";
	}
	return "share";
}

static size_t detail(const struct fdr_snap *s, const struct fdr_fd *f, char *buf, size_t len, size_t at)
{
	const struct fdr_desc *d = &s->descs[f->desc];
	const struct fdr_chan *c = &s->chans[d->chan];
	at = put(buf, len, at, "%s", f->link);
	switch (d->kind) {
	case FDK_PIPE: at = put(buf, len, at, " %s end", d->end ? "write" : "read"); break;
	case FDK_UNIX:
		at = put(buf, len, at, " %s peer=%lu", d->u.sk.type == 1 ? "stream" : d->u.sk.type == 2 ? "dgram" :
			 d->u.sk.type == 5 ? "seqpacket" : "other", d->u.sk.peer);
		if (d->u.sk.listening)
			at = put(buf, len, at, " listening");
		break;
	case FDK_EVENTFD:
		at = put(buf, len, at, " count=%llu%s", (unsigned long long)d->u.efd.count,
			 d->u.efd.sem ? " semaphore" : "");
		break;
	case FDK_TIMERFD:
		at = put(buf, len, at, " clock=%d interval=%ld.%09ld", d->u.tfd.clockid,
			 (long)d->u.tfd.interval.tv_sec, d->u.tfd.interval.tv_nsec);
		break;
	case FDK_SIGNALFD: at = put(buf, len, at, " mask=%llx", (unsigned long long)d->u.sfd.mask); break;
	case FDK_EPOLL:    at = put(buf, len, at, " registrations=%d", d->u.ep.nregs); break;
	case FDK_INOTIFY:  at = put(buf, len, at, " watches=%d", d->u.in.nw); break;
	}
	if (d->nfd > 1)
		at = put(buf, len, at, " aliases=%d", d->nfd);
	return put(buf, len, at, " (%s)", c->why ? c->why : "");
}

size_t fdremap_describe(char *buf, size_t len)
{
	struct fdr_snap s;
	memset(&s, 0, sizeof s);
	if (len)
		buf[0] = 0;
	if (snap_take(&s, NULL, 0) < 0)
		return put(buf, len, 0, "fdremap: cannot read the descriptor table\n");
	size_t at = 0;
	for (int i = 0; i < s.nfds; i++) {
		const struct fdr_fd *f = &s.fds[i];
		at = put(buf, len, at, "%d %s %s ", f->fd, fdr_kind_name(f->kind), pol_name(&s, f));
		at = detail(&s, f, buf, len, at);
		at = put(buf, len, at, "\n");
	}
	snap_drop(&s);
	return at;
}
