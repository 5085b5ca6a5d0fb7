/* Unix stream queues: a rebuilt queue is full exactly when the template's is.
 *
 * Kernel facts relied on (net/unix/af_unix.c; checked on x86-64 6.18):
 *  - unix_stream_sendmsg charges every skb's truesize to the SENDER
 *    (skb_set_owner_w, sk_wmem_alloc); the receiver is charged nothing;
 *  - before it allocates each skb, sock_alloc_send_pskb waits, or fails with
 *    EAGAIN, while sk_wmem_alloc >= sk_sndbuf: a write that finds room takes
 *    a whole skb even when that skb goes past sk_sndbuf;
 *  - a write is cut into skbs of at most sk_sndbuf/2 - 64 and
 *    SKB_MAX_HEAD(0) + 32 KiB bytes, and a unix stream never appends to a
 *    queued skb: a write of at most min(sk_sndbuf/2 - 64, 32 KiB) is one skb;
 *  - an skb's truesize grows with its length, is at least its length and
 *    the truesize t1 of a 1-byte skb (768), and at most
 *    len + min(len, 4096) + 2 t1 (kmalloc buckets of the head, page-aligned
 *    frags);
 *  - NETLINK_SOCK_DIAG with UDIAG_SHOW_MEMINFO returns SK_MEMINFO_WMEM_ALLOC
 *    and SK_MEMINFO_SNDBUF of a unix socket (net/unix/diag.c).
 * So "full" depends on how the bytes were cut into skbs, which a peek cannot
 * see (MSG_PEEK reads across skbs), but the sender's charge can be read.
 *
 * The snapshot records each sender's wmem_alloc (sock.c, diag_one).  In the
 * child:
 *  - template not full: the bytes go back in sendmsg calls as long as the
 *    descriptors in flight allow; the kernel cuts them into its largest skbs,
 *    the cheapest layout, so the child is not full either.  No netlink.
 *  - template full: writes of one skb each, each chosen from the charge read
 *    back after the previous one so that the sender cannot be full before
 *    the last byte and is full after it: big skbs while the rest could still
 *    fill what is left, then smaller ones, whose overhead makes up the
 *    difference.  Bytes that cannot cost sk_sndbuf even at one per skb (the
 *    template's reader took part of a large skb) leave the child not full.
 * Should a write still find the sender full, the rest goes in under a raised
 * send buffer, set back after: the child ends full, and no byte is lost. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include "fdr.h"
#include "base.h"

long fdr_unix_diag(int nl, unsigned ino, unsigned show, void *buf, size_t len)
{
	struct { struct nlmsghdr h; struct unix_diag_req r; } req;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = ino;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
	req.r.udiag_show = show;
	if (sys_sendto(nl, &req, sizeof req, 0) < 0)
		return -1;
	return sys_recvfrom(nl, buf, len, 0);
}

/* The sender's charge and limit, read back after each write (child side). */
struct meter {
	int nl;
	unsigned long ino;
	long w, sndbuf;
	long t1, tl;           /* truesize of a 1-byte skb and of an lmax one */
	long lmax;             /* the largest write that is one skb */
};

static int unix_mem(int nl, unsigned long ino, long *w, long *sndbuf)
{
	long buf[256];
	long n = fdr_unix_diag(nl, (unsigned)ino, UDIAG_SHOW_MEMINFO, buf, sizeof buf);
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; n > 0 && NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			return -1;
		struct unix_diag_msg *m = NLMSG_DATA(h);
		if (m->udiag_ino != ino)
			continue;
		int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
		struct nlattr *a = (struct nlattr *)(m + 1);
		while (len >= (int)sizeof *a && a->nla_len >= sizeof *a && a->nla_len <= len) {
			const unsigned *v = (const unsigned *)(a + 1);
			if (a->nla_type == UNIX_DIAG_MEMINFO &&
			    a->nla_len >= NLA_HDRLEN + (SK_MEMINFO_SNDBUF + 1) * sizeof *v) {
				*w = v[SK_MEMINFO_WMEM_ALLOC];
				*sndbuf = v[SK_MEMINFO_SNDBUF];
				return 0;
			}
			len -= NLA_ALIGN(a->nla_len);
			a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
		}
		return -1;
	}
	return -1;
}

static int measure(struct meter *mt)
{
	return unix_mem(mt->nl, mt->ino, &mt->w, &mt->sndbuf);
}

/* t1 and tl, on a scratch socketpair with the same send buffer (truesize
 * depends only on the length: the same on any unix stream socket). */
static int probe_costs(struct meter *mt)
{
	static const char zeros[4096];
	int sv[2];
	if (sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	int half = (int)(mt->sndbuf / 2);
	sys_setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &half, sizeof half);
	struct iovec iov[8];
	int n = 0;
	for (long left = mt->lmax; left > 0 && n < 8; left -= (long)sizeof zeros)
		iov[n++] = (struct iovec){ (void *)zeros, left < (long)sizeof zeros ? (size_t)left : sizeof zeros };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	struct stat st;
	long w1 = 0, w2 = 0, sb;
	int e = sys_fstat(sv[0], &st) < 0 || sys_sendto(sv[0], zeros, 1, MSG_DONTWAIT) != 1 ||
		unix_mem(mt->nl, st.st_ino, &w1, &sb) < 0 ||
		sys_sendmsg(sv[0], &mh, MSG_DONTWAIT) != mt->lmax ||
		unix_mem(mt->nl, st.st_ino, &w2, &sb) < 0 ? -1 : 0;
	sys_close(sv[0]);
	sys_close(sv[1]);
	mt->t1 = w1;
	mt->tl = w2 - w1;
	return e < 0 || mt->t1 <= 1 || mt->tl < mt->lmax ? -1 : 0;
}

/* ---- the queue as a byte stream -------------------------------------------- */

struct cur { struct fdr_msg *m; size_t off; };   /* the next byte to send */

/* Bytes up to the next message that carries descriptors (they must start
 * a sendmsg of their own), or to the end. */
static long run_len(struct cur c)
{
	long n = (long)(c.m->len - c.off);
	for (struct fdr_msg *m = c.m->next; m && !m->nfds; m = m->next)
		n += (long)m->len;
	return n;
}

static void advance(struct cur *c, long n)
{
	while (c->m && (size_t)n >= c->m->len - c->off) {
		n -= (long)(c->m->len - c->off);
		c->m = c->m->next;
		c->off = 0;
	}
	if (c->m)
		c->off += (size_t)n;
}

/* Everything from c on, in as few writes as the descriptors allow; c
 * stays on the first byte not taken. */
static int refill_fast(struct fdr_snap *s, int fd, struct cur *c)
{
	while (c->m) {
		long r = fdr_sock_send(s, fd, c->m, c->off, (size_t)run_len(*c));
		if (r < 0)
			return (int)r;
		advance(c, r);
	}
	return 0;
}

/* The sender was found full before the end: setsockopt(SO_SNDBUF) raises
 * the limit (up to wmem_max) for the rest, and the old one comes back:
 * a charge at or above sk_sndbuf is what full means. */
static int refill_raised(struct fdr_snap *s, int fd, struct cur *c, int origfd)
{
	int old = 0, big = 1 << 30;
	socklen_t l = sizeof old;
	if (sys_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &old, &l) < 0)
		return -EAGAIN;
	nuwa_info("fdremap: socket fd %d: full before its last byte; the rest goes in under a raised send buffer", origfd);
	sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
	sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	int e = refill_fast(s, fd, c);
	fdr_sock_set_sndbuf(fd, old, origfd);
	return e;
}

static int refill_rest(struct fdr_snap *s, int fd, struct cur *c, int origfd)
{
	int e = refill_fast(s, fd, c);
	return e == -EAGAIN ? refill_raised(s, fd, c, origfd) : e;
}

/* ---- full: one skb per write ----------------------------------------------- */

static long lb(const struct meter *mt, long c) { return c > mt->t1 ? c : mt->t1; }
static long ub(const struct meter *mt, long c)
{
	long u = c + (c < 4096 ? c : 4096) + 2 * mt->t1;
	return u < mt->tl ? u : mt->tl;
}

/* Whether c bytes now, with r = rest - c after them, keep a way to end full
 * at the last byte: the sender not full after them (d is what it still has
 * room for), the rest able to fill what is left at one byte per skb, and
 * all of the rest but a last skb able to go in big skbs without filling it. */
static int fits(const struct meter *mt, long rest, long d, long c)
{
	long r = rest - c;
	if (r == 0)
		return lb(mt, c) >= d;
	long u = ub(mt, c);
	if (u >= d || r * mt->t1 < d - lb(mt, c))
		return 0;
	long bulk = r > mt->lmax ? r - mt->lmax : 0;
	return (bulk + mt->lmax - 1) / mt->lmax * mt->tl < d - u;
}

/* The next write: the largest that fits, at most one skb and one run. */
static long pick(const struct meter *mt, long rest, long d, long run)
{
	long c = rest < mt->lmax ? rest : mt->lmax;
	if (c > run)
		c = run;
	if (c == rest && lb(mt, c) >= d)
		return c;
	/* (rest - c) t1 >= d - c: the rest, as 1-byte skbs, still reach d */
	long most = rest * mt->t1 > d ? (rest * mt->t1 - d) / (mt->t1 - 1) : 1;
	if (c > most)
		c = most;
	while (c > 1 && !fits(mt, rest, d, c))
		c /= 2;
	return c > 0 ? c : 1;
}

static int refill_full(struct fdr_snap *s, int fd, struct cur c, long rest, struct meter *mt, int origfd)
{
	while (c.m) {
		long d = mt->sndbuf - mt->w;
		if (d <= 0)
			return refill_raised(s, fd, &c, origfd);
		long k = pick(mt, rest, d, run_len(c));
		int fds = c.off == 0 && c.m->nfds;
		long r = fdr_sock_send(s, fd, c.m, c.off, (size_t)k);
		if (r == -EAGAIN)
			return refill_raised(s, fd, &c, origfd);
		if (r < 0)
			return (int)r;
		advance(&c, r);
		rest -= r;
		if (r == 1 && !fds)
			mt->w += mt->t1;           /* a 1-byte skb: nothing to read back */
		else if (measure(mt) < 0)
			return refill_rest(s, fd, &c, origfd);
	}
	if (measure(mt) == 0 && mt->w < mt->sndbuf)
		nuwa_info("fdremap: socket fd %d: its queued bytes cannot be charged its %ld-byte send buffer (%ld); the rebuilt queue is not full",
			  origfd, mt->sndbuf, mt->w);
	return 0;
}

static long queue_len(const struct fdr_msg *q)
{
	long n = 0;
	for (; q; q = q->next)
		n += (long)q->len;
	return n;
}

int fdr_stream_refill(struct fdr_snap *s, int fd, struct fdr_msg *q, long wmem, long sndbuf, int origfd)
{
	struct cur c = { q, 0 };
	if (!q)
		return 0;
	if (wmem < 0 || sndbuf <= 0 || wmem < sndbuf)
		return refill_rest(s, fd, &c, origfd);
	struct meter mt = { .nl = -1 };
	struct stat st;
	int e;
	mt.nl = (int)sys_socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (mt.nl >= 0 && sys_fstat(fd, &st) == 0) {
		mt.ino = st.st_ino;
		/* the child's own limit (set_opts restored the template's) */
		if (measure(&mt) == 0)
			mt.lmax = mt.sndbuf / 2 - 64 < 32768 ? mt.sndbuf / 2 - 64 : 32768;
	}
	if (mt.lmax < 1 || probe_costs(&mt) < 0) {
		nuwa_info("fdremap: socket fd %d: send buffer accounting unreadable; the rebuilt queue may not be full", origfd);
		e = refill_rest(s, fd, &c, origfd);
	} else {
		e = refill_full(s, fd, c, queue_len(q), &mt, origfd);
	}
	if (mt.nl >= 0)
		sys_close(mt.nl);
	return e;
}
