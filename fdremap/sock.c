/* Unix socketpairs (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET).
 *
 * Which socket is whose peer: NETLINK_SOCK_DIAG (UNIX_DIAG_PEER, as `ss -x`
 * does), which also gives the shutdown state; the socketpair() wrapper's
 * hint covers kernels without unix_diag.
 *
 * Queued data is copied without being consumed: with SO_PEEK_OFF set,
 * every recvmsg(MSG_PEEK) continues where the previous one stopped
 * (socket(7)), the technique CRIU uses to dump unix queues.  The parent's
 * queues stay exactly as they were (boundaries, SCM_RIGHTS, credentials,
 * shutdown), so nothing has to be written back and nothing can fail there.
 * A child writes the copy into its new pair; for a stream, the cut into
 * skbs decides whether the sender is full, so sock_mem.c does that part. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/sockios.h>
#include "fdr.h"
#include "base.h"

#ifndef TCP_LISTEN
#define TCP_LISTEN 10
#endif

/* One exact unix_diag lookup; 0 on success.  The sender's charge
 * (SK_MEMINFO_WMEM_ALLOC) tells whether its stream queue is full (sock_mem.c). */
static int diag_one(int nl, unsigned ino, struct fdr_desc *d)
{
	long buf[1024];
	long n = fdr_unix_diag(nl, ino, UDIAG_SHOW_PEER | UDIAG_SHOW_NAME | UDIAG_SHOW_MEMINFO, buf, sizeof buf);
	if (n <= 0)
		return -1;
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			return -1;
		struct unix_diag_msg *m = NLMSG_DATA(h);
		if (m->udiag_ino != ino)
			continue;
		d->u.sk.type = m->udiag_type;
		d->u.sk.listening = m->udiag_state == TCP_LISTEN;
		int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
		struct nlattr *a = (struct nlattr *)(m + 1);
		while (len >= (int)sizeof *a && a->nla_len >= sizeof *a && a->nla_len <= len) {
			void *v = a + 1;
			if (a->nla_type == UNIX_DIAG_PEER)
				d->u.sk.peer = *(unsigned *)v;
			else if (a->nla_type == UNIX_DIAG_NAME)
				d->u.sk.named = 1;
			else if (a->nla_type == UNIX_DIAG_SHUTDOWN)
				d->u.sk.shut = *(unsigned char *)v;
			else if (a->nla_type == UNIX_DIAG_MEMINFO &&
				 a->nla_len >= NLA_HDRLEN + (SK_MEMINFO_WMEM_ALLOC + 1) * sizeof(unsigned))
				d->u.sk.wmem = ((unsigned *)v)[SK_MEMINFO_WMEM_ALLOC];
			int al = NLA_ALIGN(a->nla_len);
			len -= al;
			a = (struct nlattr *)((char *)a + al);
		}
		return 0;
	}
	return -1;
}

static int getopt_int(int fd, int opt)
{
	int v = 0;
	socklen_t l = sizeof v;
	return sys_getsockopt(fd, SOL_SOCKET, opt, &v, &l) < 0 ? -1 : v;
}

static int unix_probe(struct fdr_snap *s)
{
	int nl = -1;
	for (int i = 0; i < s->ndescs; i++) {
		struct fdr_desc *d = &s->descs[i];
		if (d->kind != FDK_UNIX)
			continue;
		int fd = d->rep;
		unsigned long ino = s->fds[d->repi].ino, hpeer;
		int htype;
		d->u.sk.wmem = -1;
		if (nl == -1)
			nl = (int)sys_socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		if (nl < 0 || diag_one(nl, (unsigned)ino, d) < 0) {
			d->u.sk.type = getopt_int(fd, SO_TYPE);
			d->u.sk.listening = getopt_int(fd, SO_ACCEPTCONN) == 1;
		}
		if (fdr_hint_pair(ino, &hpeer, &htype)) {
			d->u.sk.hinted = 1;
			d->u.sk.peer = hpeer;
			d->u.sk.type = htype;
		}
		d->u.sk.passcred = getopt_int(fd, SO_PASSCRED);
		d->u.sk.rcvlowat = getopt_int(fd, SO_RCVLOWAT);
		d->u.sk.peekoff = getopt_int(fd, SO_PEEK_OFF);
		d->u.sk.sndbuf = getopt_int(fd, SO_SNDBUF);
		d->u.sk.rcvbuf = getopt_int(fd, SO_RCVBUF);
		socklen_t l = sizeof(struct timeval);
		sys_getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &d->u.sk.rcvtimeo, &l);
		l = sizeof(struct timeval);
		sys_getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &d->u.sk.sndtimeo, &l);
	}
	if (nl >= 0)
		sys_close(nl);
	return 0;
}

static struct fdr_desc *side_desc(struct fdr_snap *s, struct fdr_chan *c, int side)
{
	for (int i = 0; i < s->ndescs; i++)
		if (&s->chans[s->descs[i].chan] == c && s->descs[i].end == side)
			return &s->descs[i];
	return NULL;
}

/* Our description that in-flight descriptor fd is, so that a child sends
 * its own rebuilt channel rather than the parent's. */
static int desc_of_file(struct fdr_snap *s, int fd)
{
	if (!s->kcmp_ok)
		return -1;
	for (int i = 0; i < s->ndescs; i++)
		if (fdr_kcmp_file(s->pid, s->pid, fd, s->descs[i].rep) == 0)
			return i;
	return -1;
}

static int peek_queue(struct fdr_snap *s, int fd, int type, struct fdr_msg **tail)
{
	int avail = 0;
	if (sys_ioctl(fd, SIOCINQ, &avail) < 0)
		avail = 0;
	int dgram = type != SOCK_STREAM;
	if (!dgram && avail <= 0)
		return 0;
	/* A stream peek asks for all that is left, into one buffer: once its
	 * buffer is full, unix_stream_read_generic(MSG_PEEK) goes on over the
	 * next skbs with empty chunks and takes the descriptors of the first
	 * that carries some, which the next peek then reports again. */
	char *all = dgram ? NULL : fdr_alloc(&s->arena, (size_t)avail);
	size_t got = 0;
	union { struct cmsghdr h; char b[CMSG_SPACE(253 * sizeof(int))]; } cb;
	int zero = 0;
	for (long iter = 0; iter < 1000000; iter++) {
		size_t want = (size_t)avail - got;
		char *buf = all ? all + got : NULL;
		if (dgram) {
			/* size of the next record: MSG_TRUNC returns its real length */
			char one;
			long r = sys_recvfrom(fd, &one, 1, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
			if (r < 0)
				return r == -EAGAIN ? 0 : (int)r;
			if (r == 0 && ++zero > 1)
				return 0; /* EOF, or empty records we cannot tell apart */
			/* that peek moved the peek offset by one byte if r > 0: undo it */
			int off = getopt_int(fd, SO_PEEK_OFF);
			if (r > 0 && off > 0) {
				off -= 1;
				sys_setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off);
			}
			want = (size_t)r;
			buf = fdr_alloc(&s->arena, want ? want : 1);
		}
		if (!buf)
			return -ENOMEM;
		struct iovec iov = { buf, want };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof cb };
		long r = sys_recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r == -EAGAIN ? 0 : (int)r;
		if (r == 0 && !dgram)
			return 0;
		struct fdr_msg *m = fdr_alloc(&s->arena, sizeof *m);
		if (!m)
			return -ENOMEM;
		m->len = (size_t)r;
		m->data = buf;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			m->fds = fdr_alloc(&s->arena, k * sizeof(int));
			m->fdesc = fdr_alloc(&s->arena, k * sizeof(int));
			if (!m->fds || !m->fdesc)
				return -ENOMEM;
			memcpy(m->fds, CMSG_DATA(c), k * sizeof(int));
			m->nfds = k;
			for (int j = 0; j < k; j++)
				m->fdesc[j] = desc_of_file(s, m->fds[j]);
		}
		if (mh.msg_flags & MSG_CTRUNC)
			nuwa_warn("fdremap: socket fd %d: descriptors in flight were truncated", fd);
		*tail = m;
		tail = &m->next;
		if (!dgram && (got += (size_t)r) >= (size_t)avail)
			return 0;
	}
	return 0;
}

static int sock_drain(struct fdr_snap *s, struct fdr_chan *c)
{
	for (int side = 0; side < 2; side++) {
		struct fdr_desc *d = side_desc(s, c, side);
		if (!d)
			continue;
		int fd = d->rep, zero = 0;
		if (sys_setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) < 0) {
			nuwa_warn("fdremap: socket fd %d: SO_PEEK_OFF unsupported; queued data not copied", fd);
			continue;
		}
		int r = peek_queue(s, fd, c->sotype, &c->q[side]);
		int old = d->u.sk.peekoff;
		sys_setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof old);
		if (r < 0)
			return r;
	}
	return 0;
}

void fdr_msgs_close_fds(struct fdr_chan *c)
{
	for (int side = 0; side < 2; side++)
		for (struct fdr_msg *m = c->q[side]; m; m = m->next)
			for (int j = 0; j < m->nfds; j++)
				sys_close(m->fds[j]);
}

/* SO_SNDBUF/SO_RCVBUF read back doubled (socket(7)): set half */
void fdr_sock_set_sndbuf(int fd, int sndbuf, int origfd)
{
	if (sndbuf > 0 && getopt_int(fd, SO_SNDBUF) != sndbuf) {
		int v = sndbuf / 2;
		if (sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) < 0 ||
		    getopt_int(fd, SO_SNDBUF) != sndbuf)
			if (sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) < 0)
				nuwa_warn("fdremap: socket fd %d: send buffer %d not restored", origfd, sndbuf);
	}
}

static void set_opts(int fd, struct fdr_desc *d, int origfd)
{
	fdr_sock_set_sndbuf(fd, d->u.sk.sndbuf, origfd);
	if (d->u.sk.rcvbuf > 0 && getopt_int(fd, SO_RCVBUF) != d->u.sk.rcvbuf) {
		int v = d->u.sk.rcvbuf / 2;
		if (sys_setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) < 0 ||
		    getopt_int(fd, SO_RCVBUF) != d->u.sk.rcvbuf)
			if (sys_setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0)
				nuwa_warn("fdremap: socket fd %d: receive buffer %d not restored", origfd, d->u.sk.rcvbuf);
	}
	if (d->u.sk.passcred > 0)
		sys_setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &d->u.sk.passcred, sizeof(int));
	if (d->u.sk.rcvlowat > 1)
		sys_setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &d->u.sk.rcvlowat, sizeof(int));
	struct timeval z = {0, 0};
	if (memcmp(&d->u.sk.rcvtimeo, &z, sizeof z))
		sys_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &d->u.sk.rcvtimeo, sizeof z);
	if (memcmp(&d->u.sk.sndtimeo, &z, sizeof z))
		sys_setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &d->u.sk.sndtimeo, sizeof z);
}

/* One sendmsg, gathering the messages after m (fdr.h); a stream may take
 * part of it, a record all or nothing. */
long fdr_sock_send(struct fdr_snap *s, int fd, const struct fdr_msg *m, size_t off, size_t len)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(253 * sizeof(int))]; } cb;
	struct iovec iov[16];
	int n = 0;
	for (const struct fdr_msg *p = m; p && len && n < 16; p = p->next) {
		size_t at = p == m ? off : 0, k = p->len - at < len ? p->len - at : len;
		if (k)
			iov[n++] = (struct iovec){ p->data + at, k };
		len -= k;
	}
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	if (m->nfds && off == 0) {
		mh.msg_control = &cb;
		mh.msg_controllen = CMSG_SPACE(m->nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(m->nfds * sizeof(int));
		int *out = (int *)CMSG_DATA(c);
		for (int j = 0; j < m->nfds; j++) {
			int k = m->fdesc[j];
			/* our rebuilt channel, now on the parent's number */
			out[j] = k >= 0 && s->chans[s->descs[k].chan].action == FDA_REBUILD ? s->descs[k].rep : m->fds[j];
		}
	}
	long r;
	while ((r = sys_sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL)) == -EINTR)
		;
	return r;
}

static int sock_rebuild(struct fdr_snap *s, struct fdr_chan *c)
{
	int sv[2];
	long r = sys_socketpair(AF_UNIX, c->sotype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv);
	if (r < 0)
		return (int)r;
	struct fdr_desc *d[2] = { side_desc(s, c, 0), side_desc(s, c, 1) };
	for (int side = 0; side < 2; side++)
		if (d[side])
			set_opts(sv[side], d[side], d[side]->rep);
	/* data queued for side i was sent by side 1-i; send it again, in order:
	 * a stream as full as the template's was (sock_mem.c), records one by one */
	for (int side = 0; side < 2; side++) {
		struct fdr_desc *from = d[1 - side];
		long e = 0;
		if (c->sotype == SOCK_STREAM)
			e = fdr_stream_refill(s, sv[1 - side], c->q[side], from ? from->u.sk.wmem : -1,
					      from ? from->u.sk.sndbuf : 0, from ? from->rep : -1);
		for (struct fdr_msg *m = c->q[side]; c->sotype != SOCK_STREAM && m && e >= 0; m = m->next)
			e = fdr_sock_send(s, sv[1 - side], m, 0, m->len);
		if (e < 0)
			nuwa_err("fdremap: socket fd %d: could not requeue its queue in the child: %s",
				 d[side] ? d[side]->rep : -1, fdr_errname(e));
	}
	for (int side = 0; side < 2; side++) {
		int sh = c->shut[side] & 3; /* RCV_SHUTDOWN 1, SEND_SHUTDOWN 2 */
		if (sh)
			sys_shutdown(sv[side], sh == 3 ? SHUT_RDWR : sh == 1 ? SHUT_RD : SHUT_WR);
		if (d[side] && d[side]->u.sk.peekoff >= 0)
			sys_setsockopt(sv[side], SOL_SOCKET, SO_PEEK_OFF, &d[side]->u.sk.peekoff, sizeof(int));
	}
	int err = 0;
	for (int side = 0; side < 2; side++) {
		if (!d[side]) {
			sys_close(sv[side]);
			continue;
		}
		int e = fdr_place(s, d[side], sv[side]);
		if (e < 0)
			err = e;
	}
	return err;
}

static int is_unix(int fd)
{
	return getopt_int(fd, SO_DOMAIN) == AF_UNIX;
}

/* The two sides of a pair: this socket's inode, or its peer's. */
static void unix_join(struct fdr_snap *s, struct fdr_desc *d)
{
	unsigned long ino = s->fds[d->repi].ino;
	for (int k = 0; k < s->nchans && d->chan < 0; k++) {
		struct fdr_chan *c = &s->chans[k];
		if (c->kind == FDK_UNIX && (c->ino[0] == ino || c->ino[1] == ino)) {
			d->chan = k;
			d->end = c->ino[1] == ino;
		}
	}
	if (d->chan < 0) {
		d->chan = fdr_chan_new(s, FDK_UNIX);
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
}

static void unix_decide(struct fdr_snap *s, struct fdr_chan *c, int recreate, int fd)
{
	int t = c->sotype;
	int typeok = t == SOCK_STREAM || t == SOCK_DGRAM || t == SOCK_SEQPACKET;
	const char *no = NULL;
	if (!(c->has[0] && c->has[1]))
		no = "peer outside the process";
	else if (!typeok)
		no = "unsupported socket type";
	else if ((fdr_inherited(c->ino[0]) || fdr_inherited(c->ino[1])) && !c->hinted)
		no = "inherited from the parent process";
	else if (c->foreign)
		no = "also held by a child process";
	if (!no) {
		c->action = FDA_REBUILD;
		c->why = recreate ? "own socketpair (policy)" : "internal";
		return;
	}
	c->why = no;
	if (recreate)
		nuwa_warn("fdremap: fd %d: cannot recreate unix socket (%s); it stays shared", fd, no);
}

static size_t unix_describe(const struct fdr_desc *d, char *buf, size_t len, size_t at)
{
	int t = d->u.sk.type;
	at = fdr_put(buf, len, at, " %s peer=%lu", t == 1 ? "stream" : t == 2 ? "dgram" :
	             t == 5 ? "seqpacket" : "other", d->u.sk.peer);
	if (d->u.sk.listening)
		at = fdr_put(buf, len, at, " listening");
	return at;
}

const struct fdr_kind_ops fdr_kind_unix = {
	.name = "unix",
	.link = "socket:[",
	.is = is_unix,
	.unique_file = 1,
	.by_ino = 1,
	.discover_all = unix_probe,
	.join = unix_join,
	.decide = unix_decide,
	.drain = sock_drain,
	.order = 11,
	.rebuild = sock_rebuild,
	.describe = unix_describe,
};
