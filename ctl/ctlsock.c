/* The control socket's connections: accepting (same user or root only),
 * framing, bounded non-blocking I/O, and the table of spawned children.
 * The socket file is made in ctl_listen.c; requests are handled in
 * ctl_serve.c; children and the status part are in ctl_children.c.
 *
 * Everything runs on libnuwa's control thread, which also holds the frozen
 * template: a client must never be able to stall it.  So every socket is
 * non-blocking, input and output are bounded per connection, a message that
 * cannot be framed closes its connection, a request must be complete within
 * CTL_REQUEST_MS of its first byte, and a full connection table makes room
 * for a new client: it evicts the client whose incomplete request is the
 * oldest, else the longest-idle client that is not waiting for a child.
 *
 * Memory comes from mmap, never malloc: application threads may be parked
 * anywhere (policy "any"), possibly inside malloc with an arena lock held. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"
#include "ctlsock_int.h"
#include "base.h"

#define OUT_KEEP (64 * 1024)      /* output mapping kept between replies */
#define ACCEPT_BURST 16
#define EVICT_IDLE_MS 2000

struct ctl_conn ctl_conns[CTL_MAX_CONN];
static unsigned next_serial;

/* ---- connections ------------------------------------------------------------ */

int ctl_conn_index(const struct ctl_conn *c)
{
	return (int)(c - ctl_conns);
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (c->fd < 0)
		return;
	nuwa_own_fd_drop(c->fd);
	c->fd = -1;
	for (int i = 0; i < c->nfds; i++)
		nuwa_own_fd_drop(c->fds[i]);
	c->nfds = 0;
	if (c->in)
		munmap(c->in, CTL_IN_CAP);
	if (c->out)
		munmap(c->out, c->out_cap);
	c->in = c->out = NULL;
	c->in_len = c->out_len = c->out_off = c->out_cap = 0;
	c->closing = 0;
	ctl_children_untold(c);
	/* Its children keep running; nobody waits for them any more. */
	int idx = ctl_conn_index(c);
	for (int i = 0; i < nuwa_children_n(); i++) {
		struct nuwa_child *ch = nuwa_child_at(i);
		if (ch->waiter == idx && ch->waiter_serial == c->serial)
			ch->waiter = -1;
	}
	c->waited = 0;
}

/* Make room for `room` more bytes of output. */
static int out_reserve(struct ctl_conn *c, size_t room)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	size_t need = c->out_len + room;
	if (need > CTL_OUT_MAX)
		return -EMSGSIZE;
	if (need <= c->out_cap)
		return 0;
	size_t cap = c->out_cap ? c->out_cap : OUT_KEEP;
	while (cap < need)
		cap *= 2;
	void *p = c->out ? mremap(c->out, c->out_cap, cap, MREMAP_MAYMOVE)
	                 : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	                        -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

int ctl_reply_begin(struct ctl_conn *c, struct ctl_buf *b, unsigned type, size_t room)
{
	if (c->fd < 0)
		return -1;   /* gone (or the template's, in a new child) */
	if (out_reserve(c, room) < 0) {
		nuwa_warn("control socket: reply of %zu bytes to pid %ld dropped, closing",
		          room, (long)c->pid);
		c->closing = 1;
		return -1;
	}
	ctl_begin(b, c->out + c->out_len, room, (uint16_t)type);
	return 0;
}

void ctl_reply_end(struct ctl_conn *c, struct ctl_buf *b)
{
	long n = ctl_end(b);
	if (n < 0) {
		nuwa_warn("control socket: reply to pid %ld too large, closing", (long)c->pid);
		c->closing = 1;
		return;
	}
	c->out_len += (size_t)n;
}

void ctl_reply_error(struct ctl_conn *c, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_ERROR, 64 + sizeof msg) < 0)
		return;
	ctl_put_i32(&b, CTL_F_ERRNO, err);
	ctl_put_str(&b, CTL_F_MESSAGE, msg);
	ctl_put_u32(&b, CTL_F_VERSION, CTL_VERSION);
	ctl_reply_end(c, &b);
}

/* Send what is queued without blocking; close when done if asked to. */
void ctl_flush(struct ctl_conn *c)
{
	while (c->fd >= 0 && c->out_off < c->out_len) {
		struct iovec iov = { c->out + c->out_off, c->out_len - c->out_off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		long n = sys_sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (n == -EINTR)
				continue;
			if (n != -EAGAIN)
				ctl_conn_close(c);   /* EPIPE: the client is gone */
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->fd < 0)
		return;
	c->out_off = c->out_len = 0;
	ctl_children_told_sent(c);
	if (c->out_cap > OUT_KEEP) {
		/* A big status reply must not leave its memory behind. */
		munmap(c->out, c->out_cap);
		c->out = NULL;
		c->out_cap = 0;
	}
	if (c->closing)
		ctl_conn_close(c);
}

static void take_fds(struct ctl_conn *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
			if (c->nfds < CTL_MAX_FDS) {
				c->fds[c->nfds++] = nuwa_own_fd(nuwa_fd_high(fd));
			} else {
				sys_close(fd);
				c->closing = 1;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		c->closing = 1;  /* the kernel dropped descriptors: too many sent */
}

/* Handle every complete request in the input buffer, one at a time: the
 * next is looked at only once the previous reply has been sent. */
static void process_input(struct ctl_conn *c)
{
	while (c->fd >= 0 && !c->closing && c->out_off == c->out_len && c->in_len) {
		struct ctl_msg m;
		long size = ctl_frame(c->in, c->in_len, CTL_MAX_REQUEST, &m);
		if (size == 0)
			return;
		if (size < 0) {
			if (size == -EPROTO)
				ctl_reply_error(c, EPROTO, "not a nuwa control message (bad magic)");
			else if (size == -EPROTONOSUPPORT)
				ctl_reply_error(c, EPROTONOSUPPORT, "protocol version %u is not "
				                "supported: this process speaks version %u",
				                m.version, CTL_VERSION);
			else
				ctl_reply_error(c, EMSGSIZE, "request of %u bytes is over the limit "
				                "of %u", m.len, CTL_MAX_REQUEST);
			c->closing = 1;
		} else if (ctl_validate(&m) < 0) {
			ctl_reply_error(c, EPROTO, "malformed %s request: bad fields",
			                ctl_type_name(m.type));
		} else {
			ctl_handle(c, &m);
		}
		/* Descriptors not taken by the request are not kept. */
		for (int i = 0; i < c->nfds; i++)
			nuwa_own_fd_drop(c->fds[i]);
		c->nfds = 0;
		if (c->fd < 0)
			return;
		if (size > 0) {
			memmove(c->in, c->in + size, c->in_len - (size_t)size);
			c->in_len -= (size_t)size;
			/* what is left is the start of the next request */
			c->req_ms = c->in_len ? nuwa_now_ms() : 0;
		}
		ctl_flush(c);
	}
	if (c->fd >= 0 && c->closing && c->out_off == c->out_len)
		ctl_conn_close(c);
}

static void conn_read(struct ctl_conn *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * (CTL_MAX_FDS + 1))];
	} ctrl;
	struct iovec iov = { c->in + c->in_len, CTL_IN_CAP - c->in_len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf,
	                     .msg_controllen = sizeof ctrl.buf };
	if (iov.iov_len == 0) {
		/* Cannot happen: a whole request fits and is consumed at once. */
		ctl_conn_close(c);
		return;
	}
	long n = sys_recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (n != -EAGAIN && n != -EINTR)
			ctl_conn_close(c);
		return;
	}
	take_fds(c, &mh);
	if (n == 0) {
		/* Client gone, possibly mid-request: the partial request is dropped
		 * unhandled, so it changes nothing. */
		ctl_conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	c->last_ms = nuwa_now_ms();
	if (!c->req_ms)
		c->req_ms = c->last_ms;
	process_input(c);
}

/* A request is being read and is not complete yet. */
static int incomplete(const struct ctl_conn *c)
{
	struct ctl_msg m;
	return c->fd >= 0 && c->req_ms && c->in_len &&
	       ctl_frame(c->in, c->in_len, CTL_MAX_REQUEST, &m) == 0;
}

/* A full table: the oldest incomplete request goes first (a slow or
 * stalled client: whoever comes next is served), else the longest-idle
 * client that waits for nothing. */
static struct ctl_conn *free_slot(void)
{
	struct ctl_conn *slow = NULL, *idle = NULL;
	long long now = nuwa_now_ms();
	for (int i = 0; i < CTL_MAX_CONN; i++) {
		struct ctl_conn *c = &ctl_conns[i];
		if (c->fd < 0)
			return c;
		if (c->waited || c->out_off != c->out_len)
			continue;
		if (incomplete(c)) {
			if (!slow || c->req_ms < slow->req_ms)
				slow = c;
		} else if (now - c->last_ms >= EVICT_IDLE_MS && (!idle || c->last_ms < idle->last_ms)) {
			idle = c;
		}
	}
	struct ctl_conn *victim = slow ? slow : idle;
	if (victim) {
		nuwa_info("control socket: dropping %s client pid %ld to make room",
		          slow ? "a slow" : "an idle", (long)victim->pid);
		ctl_conn_close(victim);
	}
	return victim;
}

/* Requests not complete CTL_REQUEST_MS after their first byte: an error
 * reply, and the connection is closed once it is sent. */
static void expire_requests(void)
{
	long long now = nuwa_now_ms();
	for (int i = 0; i < CTL_MAX_CONN; i++) {
		struct ctl_conn *c = &ctl_conns[i];
		if (!incomplete(c) || now - c->req_ms < CTL_REQUEST_MS)
			continue;
		nuwa_info("control socket: request from pid %ld not complete after %d ms: closing",
		          (long)c->pid, CTL_REQUEST_MS);
		c->in_len = 0;
		c->req_ms = 0;
		ctl_reply_error(c, ETIMEDOUT, "request not complete %d ms after its first byte",
		                CTL_REQUEST_MS);
		c->closing = 1;
		ctl_flush(c);
	}
}

int ctlsock_timeout_ms(void)
{
	long long now = nuwa_now_ms(), next = -1;
	for (int i = 0; i < CTL_MAX_CONN; i++) {
		struct ctl_conn *c = &ctl_conns[i];
		if (!incomplete(c))
			continue;
		long long left = c->req_ms + CTL_REQUEST_MS - now;
		if (next < 0 || left < next)
			next = left < 0 ? 0 : left;
	}
	return next < 0 ? -1 : next > 1000000 ? 1000000 : (int)next;
}

/* Best effort, one short message to a client we will not serve. */
static void refuse(int fd, int err, const char *msg)
{
	char mem[512];
	struct ctl_buf b;
	ctl_begin(&b, mem, sizeof mem, CTL_REP_ERROR);
	ctl_put_i32(&b, CTL_F_ERRNO, err);
	ctl_put_str(&b, CTL_F_MESSAGE, msg);
	long n = ctl_end(&b);
	if (n > 0) {
		struct iovec iov = { mem, (size_t)n };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		(void)sys_sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	sys_close(fd);
}

/* A full descriptor table.  accept4() failing with EMFILE/ENFILE leaves
 * the connection queued, so poll() reports it again at once and the
 * control thread would spin.  Make room for one descriptor, take the
 * connection, tell the client why, and close it:
 *  - a descriptor kept in reserve is closed (the idiom of libuv and nginx)
 *    when it lies under the soft RLIMIT_NOFILE (a program may lower the
 *    limit after we took it: a free slot above the limit is no room);
 *  - else the soft limit is raised by one for the accept, if the hard
 *    limit allows (the usual case: programs lower the soft limit only);
 *  - else nothing can be accepted: wait 100 ms before polling again. */
static int reserve_fd = -1;
static int table_full_logged;

void ctl_reserve_take(void)
{
	if (reserve_fd < 0 && (reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		reserve_fd = nuwa_own_fd(nuwa_fd_high(reserve_fd));
}

static void accept_table_full(int err)
{
	if (!table_full_logged++)
		nuwa_warn("control socket: the process has no free descriptor (%s): "
		          "refusing clients until it closes some",
		          err == EMFILE ? "EMFILE" : "ENFILE");
	struct rlimit rl, raised;
	int have_rl = getrlimit(RLIMIT_NOFILE, &rl) == 0;
	int fd = -1;
	if (reserve_fd >= 0 && (!have_rl || rl.rlim_cur == RLIM_INFINITY ||
	                        (rlim_t)reserve_fd < rl.rlim_cur)) {
		nuwa_own_fd_drop(reserve_fd);
		reserve_fd = -1;
		fd = (int)sys_accept4(ctl_listen_fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
	} else if (have_rl && rl.rlim_cur < rl.rlim_max) {
		raised = rl;
		raised.rlim_cur++;
		if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
			fd = (int)sys_accept4(ctl_listen_fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (fd >= 0)
		refuse(fd, err, "the process has no free file descriptor: it cannot serve "
		       "a request until it closes some");
	else
		sys_ppoll(NULL, 0, NUWA_MS_TS(100));
	ctl_reserve_take();
}

static void accept_clients(void)
{
	for (int k = 0; k < ACCEPT_BURST; k++) {
		int fd = (int)sys_accept4(ctl_listen_fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -EMFILE || fd == -ENFILE) {
			accept_table_full(-fd);
			continue;
		}
		if (fd < 0)
			return;   /* EAGAIN, or a client that gave up (ECONNABORTED) */
		table_full_logged = 0;
		struct ucred cr;
		socklen_t len = sizeof cr;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
			sys_close(fd);
			continue;
		}
		/* Only the same user or root may drive this process: a request
		 * can fork it and run its functions. */
		if (cr.uid != geteuid() && cr.uid != 0) {
			nuwa_warn("control socket: refused connection from uid %u (pid %ld)",
			          (unsigned)cr.uid, (long)cr.pid);
			refuse(fd, EACCES, "permission denied: only the same user or root may "
			       "control this process");
			continue;
		}
		struct ctl_conn *c = free_slot();
		if (!c) {
			refuse(fd, EAGAIN, "too many clients at once, try again");
			continue;
		}
		void *in = mmap(NULL, CTL_IN_CAP, PROT_READ | PROT_WRITE,
		                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (in == MAP_FAILED) {
			refuse(fd, ENOMEM, "out of memory");
			continue;
		}
		memset(c, 0, sizeof *c);
		c->fd = nuwa_own_fd(nuwa_fd_high(fd));
		c->serial = ++next_serial;
		c->uid = cr.uid;
		c->pid = cr.pid;
		c->in = in;
		c->last_ms = nuwa_now_ms();
	}
}

int ctlsock_pollfds(struct pollfd *pfd, int max)
{
	ctl_listen_if_pending();
	expire_requests();
	if (ctl_listen_fd >= 0)
		ctl_reserve_take();
	int n = 0;
	if (ctl_listen_fd >= 0 && n < max)
		pfd[n++] = (struct pollfd){ .fd = ctl_listen_fd, .events = POLLIN };
	for (int i = 0; i < CTL_MAX_CONN && n < max; i++) {
		struct ctl_conn *c = &ctl_conns[i];
		if (c->fd < 0)
			continue;
		/* While a reply is queued, wait for room to send it and read no more:
		 * a client that never reads cannot make us buffer without end. */
		short ev = c->out_off < c->out_len ? POLLOUT : POLLIN;
		pfd[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
	}
	return n;
}

static struct ctl_conn *conn_by_fd(int fd)
{
	for (int i = 0; i < CTL_MAX_CONN; i++)
		if (ctl_conns[i].fd == fd && fd >= 0)
			return &ctl_conns[i];
	return NULL;
}

void ctlsock_dispatch(const struct pollfd *pfd, int n)
{
	int accept_ready = 0;
	for (int i = 0; i < n; i++) {
		if (!pfd[i].revents || pfd[i].fd < 0)
			continue;
		if (pfd[i].fd == ctl_listen_fd) {
			accept_ready = 1;
			continue;
		}
		struct ctl_conn *c = conn_by_fd(pfd[i].fd);
		if (!c)
			continue;  /* closed while handling an earlier entry */
		if (pfd[i].revents & POLLOUT) {
			ctl_flush(c);
			if (c->fd >= 0)
				process_input(c);  /* requests that waited for the reply */
		}
		if (c->fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			conn_read(c);
	}
	/* Accept last: a new connection may reuse the number of one closed
	 * above, and must not be given that one's poll results. */
	if (accept_ready && ctl_listen_fd >= 0)
		accept_clients();
}

void ctl_tables_init(void)
{
	for (int i = 0; i < CTL_MAX_CONN; i++)
		ctl_conns[i].fd = -1;
}

/* In a new child: the connections and children were the template's. */
void ctl_forget_all(const int *keep)
{
	for (int i = 0; i < CTL_MAX_CONN; i++) {
		struct ctl_conn *c = &ctl_conns[i];
		/* The stdio being handed to this very child stays open for the
		 * core to install; it is no longer ours to track. */
		for (int k = 0; keep && c->fd >= 0 && k < c->nfds; k++)
			if (c->fds[k] == keep[0] || c->fds[k] == keep[1] || c->fds[k] == keep[2]) {
				nuwa_own_fd_forget(c->fds[k]);
				c->fds[k] = -1;
			}
		ctl_conn_close(c);
	}
}
