/* Channels and the decision for each: rebuild in children, or share as a
 * plain fork() does.  A channel is rebuilt only when all its ends are in
 * this process (DESIGN.md section 3); the user's policy overrides that. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include "fdr.h"
#include "nuwa.h"
#include "base.h"

static int chan_new(struct fdr_snap *s, int kind)
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
		unsigned long ino = s->fds[d->repi].ino;
		if (d->kind == FDK_PIPE) {
			for (int k = 0; k < s->nchans; k++)
				if (s->chans[k].kind == FDK_PIPE && s->chans[k].ino[0] == ino)
					d->chan = k;
			if (d->chan < 0) {
				d->chan = chan_new(s, FDK_PIPE);
				s->chans[d->chan].ino[0] = ino;
				s->chans[d->chan].hinted = fdr_hint_pipe(ino);
			}
			s->chans[d->chan].has[d->end] = 1;
		} else if (d->kind == FDK_UNIX) {
			for (int k = 0; k < s->nchans && d->chan < 0; k++) {
				struct fdr_chan *c = &s->chans[k];
				if (c->kind == FDK_UNIX && (c->ino[0] == ino || c->ino[1] == ino)) {
					d->chan = k;
					d->end = c->ino[1] == ino;
				}
			}
			if (d->chan < 0) {
				d->chan = chan_new(s, FDK_UNIX);
				d->end = 0;
				struct fdr_chan *c = &s->chans[d->chan];
				c->ino[0] = ino;
				c->ino[1] = d->u.sk.peer;
				c->sotype = d->u.sk.type;
				c->hinted = d->u.sk.hinted;
			}
			struct fdr_chan *c = &s->chans[d->chan];
			c->has[d->end] = 1;
			c->shut[d->end] = d->u.sk.shut;
			c->named |= d->u.sk.named || d->u.sk.listening;
		} else {
			d->chan = chan_new(s, d->kind);
			d->end = 0;
			s->chans[d->chan].has[0] = 1;
			s->chans[d->chan].ino[0] = ino;
		}
	}
	return 0;
}

static int recreatable_file(int kind)
{
	return kind == FDK_FILE || kind == FDK_DIR || kind == FDK_CHR || kind == FDK_BLK || kind == FDK_FIFO;
}

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

	int both = c->has[0] && c->has[1];
	switch (c->kind) {
	case FDK_PIPE:
		if (recreate) { c->action = FDA_REBUILD; c->why = both ? "own pipe (policy)" : "new pipe, other end closed (policy)"; }
		else if (!both) c->why = "other end outside the process";
		else if (fdr_inherited(c->ino[0]) && !c->hinted) c->why = "inherited from the parent process";
		else if (c->foreign) c->why = "also held by a child process";
		else { c->action = FDA_REBUILD; c->why = "internal"; }
		return;
	case FDK_UNIX: {
		int t = c->sotype;
		int typeok = t == SOCK_STREAM || t == SOCK_DGRAM || t == SOCK_SEQPACKET;
		const char *no = NULL;
		if (!both) no = "peer outside the process";
		else if (!typeok) no = "unsupported socket type";
		else if ((fdr_inherited(c->ino[0]) || fdr_inherited(c->ino[1])) && !c->hinted) no = "inherited from the parent process";
		else if (c->foreign) no = "also held by a child process";
		if (!no) { c->action = FDA_REBUILD; c->why = recreate ? "own socketpair (policy)" : "internal"; return; }
		c->why = no;
		if (recreate)
			nuwa_warn("fdremap: fd %d: cannot recreate unix socket (%s); it stays shared", first, no);
		return;
	}
	case FDK_EVENTFD: case FDK_TIMERFD: case FDK_SIGNALFD: case FDK_EPOLL: case FDK_INOTIFY:
		if (c->foreign && !recreate) { c->why = "also held by a child process"; return; }
		c->action = FDA_REBUILD;
		c->why = recreate ? "own copy (policy)" : "internal";
		return;
	default:
		if (recreate && recreatable_file(c->kind)) {
			c->action = FDA_REOPEN;
			c->why = "reopened (policy)";
			return;
		}
		if (recreate)
			nuwa_warn("fdremap: fd %d: a %s cannot be recreated; it stays shared", first, fdr_kind_name(c->kind));
		c->why = "shared";
	}
}

void fdr_decide(struct fdr_snap *s)
{
	for (int i = 0; i < s->nchans; i++)
		decide_one(s, i);
}
