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
	for (int k = 0; r == 0 && k < FDK__COUNT; k++)
		if (fdr_kind(k)->discover_all)
			r = fdr_kind(k)->discover_all(s);   /* unix: peers via sock_diag */
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
		if (c->action != FDA_REBUILD || !fdr_kind(c->kind)->drain)
			continue;
		if ((r = NUWA_FAULT("fdremap.drain")) < 0 || (r = fdr_kind(c->kind)->drain(s, c)) < 0) {
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
	const struct fdr_kind_ops *k = fdr_kind(c->kind);
	if (c->action == FDA_SHARE)
		return 0;
	char step[40];
	fdr_fmt(step, sizeof step, "fdremap.%s", k->name);
	int f = NUWA_FAULT(step);
	if (f < 0)
		return f;
	if (k->rebuild)
		return k->rebuild(s, c);
	int ci = (int)(c - s->chans), err = 0;
	for (int i = 0; i < s->ndescs && k->rebuild_desc; i++) {
		struct fdr_desc *d = &s->descs[i];
		if (d->chan != ci)
			continue;
		int r = k->rebuild_desc(s, d);
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
	/* err: a channel of the program's own (FDA_REBUILD) is not the child's:
	 * it must not run.  A file reopened by policy (FDA_REOPEN) that cannot
	 * be stays shared, as after fork(): a warning only. */
	int err = 0, r;
	unsigned char failed[s->nchans > 0 ? s->nchans : 1];
	memset(failed, 0, sizeof failed);
	/* in the kinds' order: plain channels, then sockets (their in-flight
	 * descriptors may be channels rebuilt just before), epolls last (their
	 * targets must be in place) */
	int last = 0;
	for (int k = 0; k < FDK__COUNT; k++)
		if (fdr_kind(k)->order > last)
			last = fdr_kind(k)->order;
	for (int o = 1; o <= last; o++)
		for (int i = 0; i < s->nchans; i++)
			if (fdr_kind(s->chans[i].kind)->order == o &&
			    (r = rebuild_chan(s, &s->chans[i])) < 0) {
				nuwa_warn("fdremap: %s channel of fd %d not fully rebuilt: %s",
					  fdr_kind_name(s->chans[i].kind), chan_rep(s, i), fdr_errname(r));
				failed[i] = 1;
				if (s->chans[i].action == FDA_REBUILD)
					err = r;
			}
	/* Never refill a channel that is still the template's: its data would
	 * be there twice. */
	for (int i = 0; i < s->ndescs; i++) {
		const struct fdr_kind_ops *k = fdr_kind(s->descs[i].kind);
		int ci = s->descs[i].chan;
		if (!k->refill || s->chans[ci].action != FDA_REBUILD || failed[ci])
			continue;
		if ((r = k->refill(s, &s->descs[i])) < 0) {
			nuwa_warn("fdremap: fd %d not set up again in the child: %s",
				  s->descs[i].rep, fdr_errname(r));
			err = r;
		}
	}
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
	const struct fdr_kind_ops *k = fdr_kind(d->kind);
	at = fdr_put(buf, len, at, "%s", f->link);
	if (k->describe)
		at = k->describe(d, buf, len, at);
	if (d->nfd > 1)
		at = fdr_put(buf, len, at, " aliases=%d", d->nfd);
	return fdr_put(buf, len, at, " (%s)", c->why ? c->why : "");
}

size_t fdremap_describe(char *buf, size_t len)
{
	struct fdr_snap s;
	memset(&s, 0, sizeof s);
	if (len)
		buf[0] = 0;
	if (snap_take(&s, NULL, 0) < 0)
		return fdr_put(buf, len, 0, "fdremap: cannot read the descriptor table\n");
	size_t at = 0;
	for (int i = 0; i < s.nfds; i++) {
		const struct fdr_fd *f = &s.fds[i];
		at = fdr_put(buf, len, at, "%d %s %s ", f->fd, fdr_kind_name(f->kind), pol_name(&s, f));
		at = detail(&s, f, buf, len, at);
		at = fdr_put(buf, len, at, "\n");
	}
	snap_drop(&s);
	return at;
}
