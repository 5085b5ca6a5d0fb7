/* Channels and the decision for each: rebuild in children, or share as a
 * plain fork() does.  A channel is rebuilt only when all its ends are in
 * this process (DESIGN.md section 3); the user's policy overrides that. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include "fdr.h"
#include "nuwa.h"
#include "base.h"

int fdr_chan_new(struct fdr_snap *s, int kind)
{
	struct fdr_chan *c = &s->chans[s->nchans];
	memset(c, 0, sizeof *c);
	c->kind = kind;
	c->newfd[0] = c->newfd[1] = -1;
	return s->nchans++;
}

int fdr_build_channels(struct fdr_snap *s)
{
	s->chans = fdr_alloc(&s->arena, (s->ndescs + 1) * sizeof *s->chans);
	if (!s->chans)
		return -ENOMEM;
	s->nchans = 0;
	for (int i = 0; i < s->ndescs; i++) {
		struct fdr_desc *d = &s->descs[i];
		const struct fdr_kind_ops *k = fdr_kind(d->kind);
		if (k->join) {
			k->join(s, d);   /* pipes, socketpairs: two ends, one channel */
			continue;
		}
		d->chan = fdr_chan_new(s, d->kind);
		d->end = 0;
		s->chans[d->chan].has[0] = 1;
		s->chans[d->chan].ino[0] = s->fds[d->repi].ino;
	}
	return 0;
}

/* The user's policy first, then the kind's own rule. */
static void decide_one(struct fdr_snap *s, int ci)
{
	struct fdr_chan *c = &s->chans[ci];
	int n = 0, nclose = 0, share = 0, recreate = 0, first = -1;
	for (int i = 0; i < s->nfds; i++) {
		struct fdr_fd *f = &s->fds[i];
		if (s->descs[f->desc].chan != ci)
			continue;
		if (first < 0)
			first = f->fd;
		n++;
		switch (f->override) {
		case NUWA_FD_CLOSE: f->close_in_child = 1; nclose++; break;
		case NUWA_FD_SHARE: share = 1; break;
		case NUWA_FD_RECREATE: recreate = 1; break;
		}
	}
	c->action = FDA_SHARE;
	if (n == nclose) { c->why = "closed in children (policy)"; return; }
	if (share)       { c->why = "shared (policy)"; return; }
	const struct fdr_kind_ops *k = fdr_kind(c->kind);
	if (k->decide) {
		k->decide(s, c, recreate, first);
		return;
	}
	if (recreate)
		nuwa_warn("fdremap: fd %d: a %s cannot be recreated; it stays shared", first, k->name);
	c->why = "shared";
}

void fdr_decide(struct fdr_snap *s)
{
	for (int i = 0; i < s->nchans; i++)
		decide_one(s, i);
	for (int k = 0; k < FDK__COUNT; k++)
		if (fdr_kind(k)->decided)
			fdr_kind(k)->decided(s);
}
