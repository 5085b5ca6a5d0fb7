/* Pipes: drain what is queued (all threads are parked, so nobody else reads
 * or writes), write it straight back into the parent's pipe, keep a copy
 * for children.  Packet-mode pipes (O_DIRECT) keep their packet boundaries:
 * each read of up to PIPE_BUF bytes returns exactly one packet (pipe(7)).
 * Reads and writes go through fresh O_NONBLOCK descriptions opened via
 * /proc/self/fd, so the program's own descriptions keep their flags and a
 * surprise can only fail with EAGAIN, never block the control thread. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>
#include "fdr.h"
#include "base.h"

static int end_fd(struct fdr_snap *s, struct fdr_chan *c, int end, int *flags)
{
	for (int i = 0; i < s->ndescs; i++)
		if (&s->chans[s->descs[i].chan] == c && s->descs[i].end == end) {
			if (flags)
				*flags = s->descs[i].flflags;
			return s->descs[i].rep;
		}
	return -1;
}

static int pipe_drain(struct fdr_snap *s, struct fdr_chan *c)
{
	int wfl = 0, r0 = end_fd(s, c, 0, NULL), w0 = end_fd(s, c, 1, &wfl);
	c->pipesz = r0 >= 0 ? (int)sys_fcntl(r0, F_GETPIPE_SZ, 0) : (int)sys_fcntl(w0, F_GETPIPE_SZ, 0);
	if (r0 < 0 || w0 < 0)
		return 0; /* forced rebuild of a one-ended pipe: nothing of ours to move */
	int avail = 0;
	if (sys_ioctl(r0, FIONREAD, &avail) < 0 || avail <= 0)
		return 0;
	/* packet mode is a property of the writing description (pipe2(O_DIRECT)
	 * sets it on the write end only); reading honours each buffer's flag */
	int packet = (wfl & O_DIRECT) != 0;
	int rfd = fdr_proc_reopen(r0, O_RDONLY | O_NONBLOCK);
	if (rfd < 0)
		return rfd;
	int wfd = fdr_proc_reopen(w0, O_WRONLY | O_NONBLOCK);
	if (wfd < 0) {
		sys_close(rfd);
		return wfd;
	}
	/* open() refuses O_DIRECT on a pipe, F_SETFL takes it (fs/fcntl.c) */
	if (packet)
		sys_fcntl(wfd, F_SETFL, O_NONBLOCK | O_DIRECT);
	struct fdr_msg **tail = &c->q[0];
	int err = 0;
	size_t total = 0;
	while (total < (size_t)avail) {
		size_t want = packet ? PIPE_BUF : (size_t)avail - total;
		struct fdr_msg *m = fdr_alloc(&s->arena, sizeof *m);
		char *buf = fdr_alloc(&s->arena, want);
		if (!m || !buf) { err = -ENOMEM; break; }
		long r = sys_read(rfd, buf, want);
		if (r == -EINTR)
			continue;
		if (r <= 0) { err = r < 0 && r != -EAGAIN ? (int)r : 0; break; }
		m->data = buf;
		m->len = (size_t)r;
		*tail = m;
		tail = &m->next;
		total += (size_t)r;
	}
	/* back into the parent's pipe, in order; it held this much a moment ago */
	for (struct fdr_msg *m = c->q[0]; m; m = m->next) {
		int r = fdr_write_all(wfd, m->data, m->len);
		if (r < 0) {
			nuwa_err("fdremap: pipe fd %d: could not put back %zu queued bytes: %s",
				 r0, m->len, fdr_errname(r));
			err = r;
			break;
		}
	}
	sys_close(rfd);
	sys_close(wfd);
	return err;
}

static int pipe_rebuild(struct fdr_snap *s, struct fdr_chan *c)
{
	int p[2], rfl = 0, wfl = 0;
	int r0 = end_fd(s, c, 0, &rfl), w0 = end_fd(s, c, 1, &wfl);
	(void)rfl;
	int fl = (w0 >= 0 ? wfl & O_DIRECT : 0) | O_CLOEXEC | O_NONBLOCK;
	long r = sys_pipe2(p, fl);
	if (r < 0)
		return (int)r;
	if (c->pipesz > 0 && sys_fcntl(p[0], F_GETPIPE_SZ, 0) != c->pipesz) {
		r = sys_fcntl(p[0], F_SETPIPE_SZ, c->pipesz);
		if (r < 0)
			nuwa_warn("fdremap: pipe fd %d: cannot set capacity %d: %s",
				  r0 >= 0 ? r0 : w0, c->pipesz, fdr_errname(r));
	}
	for (struct fdr_msg *m = c->q[0]; m; m = m->next) {
		int e = fdr_write_all(p[1], m->data, m->len);
		if (e < 0) {
			nuwa_err("fdremap: pipe fd %d: lost %zu queued bytes in the child: %s",
				 r0, m->len, fdr_errname(e));
			break;
		}
	}
	c->newfd[0] = p[0];
	c->newfd[1] = p[1];
	/* every description of each end: the first takes the new end itself, more
	 * descriptions of the same end (reopened via /proc) get their own */
	int used[2] = {0, 0}, err = 0;
	for (int i = 0; i < s->ndescs; i++) {
		struct fdr_desc *d = &s->descs[i];
		if (&s->chans[d->chan] != c)
			continue;
		int nfd;
		if (!used[d->end]) {
			nfd = (int)sys_fcntl(p[d->end], F_DUPFD_CLOEXEC, 0);
			used[d->end] = 1;
		} else {
			nfd = fdr_proc_reopen(p[d->end], d->end ? O_WRONLY : O_RDONLY);
		}
		if (nfd < 0) { err = nfd; continue; }
		int e = fdr_place(s, d, nfd);
		if (e < 0)
			err = e;
	}
	sys_close(p[0]);
	sys_close(p[1]);
	c->newfd[0] = c->newfd[1] = -1;
	return err;
}

/* The two ends of one pipe share its inode. */
static void pipe_join(struct fdr_snap *s, struct fdr_desc *d)
{
	unsigned long ino = s->fds[d->repi].ino;
	for (int k = 0; k < s->nchans; k++)
		if (s->chans[k].kind == FDK_PIPE && s->chans[k].ino[0] == ino)
			d->chan = k;
	if (d->chan < 0) {
		d->chan = fdr_chan_new(s, FDK_PIPE);
		s->chans[d->chan].ino[0] = ino;
		s->chans[d->chan].hinted = fdr_hint_pipe(ino);
	}
	s->chans[d->chan].has[d->end] = 1;
}

static void pipe_decide(struct fdr_snap *s, struct fdr_chan *c, int recreate, int fd)
{
	int both = c->has[0] && c->has[1];
	if (recreate) {
		c->action = FDA_REBUILD;
		c->why = both ? "own pipe (policy)" : "new pipe, other end closed (policy)";
	} else if (!both) {
		c->why = "other end outside the process";
	} else if (fdr_inherited(c->ino[0]) && !c->hinted) {
		c->why = "inherited from the parent process";
	} else if (c->foreign) {
		c->why = "also held by a child process";
	} else {
		c->action = FDA_REBUILD;
		c->why = "internal";
	}
}

static size_t pipe_describe(const struct fdr_desc *d, char *buf, size_t len, size_t at)
{
	return fdr_put(buf, len, at, " %s end", d->end ? "write" : "read");
}

const struct fdr_kind_ops fdr_kind_pipe = {
	.name = "pipe",
	.link = "pipe:[",
	.alias_by_flags = 1,
	.by_ino = 1,
	.join = pipe_join,
	.decide = pipe_decide,
	.drain = pipe_drain,
	.order = 1,
	.rebuild = pipe_rebuild,
	.describe = pipe_describe,
};
