/* The pool of a template: children forked ahead of time and resumed up to
 * the release gate (Firefox OS Nuwa's spare process, Android's USAP pool).
 *
 * A pooled child has done every step of the resume but one: descriptors
 * rebuilt, lock owners switched, every thread cloned back at its own thread
 * pointer with its new tid — and none released.  Its control thread then
 * blocks on a SOCK_SEQPACKET socketpair shared with the template only (the
 * pool channel); the program runs nothing there (no timer is armed yet, no
 * descriptor read or written, no control socket made).  A spawn takes one:
 * the template sends what is particular to this spawn, the child applies it
 * (fork.c, phase SPAWN) and from there on is a spawned child like any other,
 * on its ready channel (base/child_ready.c): ready, released once its pid
 * has reached the requester, then GO.
 *
 *   template                          pooled child (control thread)
 *   --------                          -----------------------------
 *   2 socketpairs, fork_child(pooled)  -> EARLY .. RESUMING, threads cloned
 *                             pool <-  'R'          then recvmsg() blocks
 *   spawn request: take one
 *   TAKE {ranges, fns} + SCM_RIGHTS -> copy the ranges in place; SPAWN:
 *        [the range bytes, scattered]   stdio, constructors, setup_fn,
 *   (pool channel closed)               control socket; BEFORE_GO: timers
 *                            ready <-  'R' (ready), waits for its release
 *   SPAWNED {pid} sent, release  ->   GO; final constructors, --call
 *
 * The messages keep their boundaries (SOCK_SEQPACKET).  A pooled child's
 * leader carries PR_SET_PDEATHSIG until GO (child_ready.c), so one whose
 * template dies goes with it; a closed pool channel (0 bytes) ends it too.
 * The template refills in the background: one fork per control-loop turn,
 * so requests already queued are served first, after REFILL_DELAY_MS unless
 * the pool is empty.  A pooled child is an entry of base/children.c of kind
 * NUWA_CHILD_POOL (its pidfd is polled and reaped by the control loop like
 * any child's) and becomes NUWA_CHILD_SPAWN when taken.
 * Control thread only; nothing here calls malloc. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "ctl_proto.h"   /* CTL_MAX_POOL */
#include "ctlsock.h"
#include "freeze.h"
#include "pool.h"
#include "resources.h"

#define REFILL_DELAY_MS 30
#define TAKE_MAGIC 0x4e55504cu         /* "NUPL" */
#define TAKE_WAIT_MS 10000             /* a taken child that never gets ready */
#define MSG_READY 'R'

/* The take message's fixed part; the range bytes follow as a second
 * message, received straight into place. */
struct take_msg {
	uint32_t magic;
	uint32_t nmem;
	uint32_t nstdio;
	uint32_t pad;
	uint64_t setup_fn, child_fn, arg;
	struct { uint64_t p, n; } mem[CTL_SPAWN_MEM + POOL_CORE_MEM];
};

struct pool_entry {
	pid_t pid;
	int fd;                            /* the template's end */
	int ready;
};

static struct pool_entry pool[CTL_MAX_POOL];
static int npool, want;
static long long refill_at = -1;      /* CLOCK_MONOTONIC ms; -1: nothing due */
static int taken, refilled;            /* since the template froze: for status */

/* ---- template side ----------------------------------------------------------- */

static void schedule(int delay_ms)
{
	long long at = nuwa_now_ms() + delay_ms;
	if (refill_at < 0 || at < refill_at)
		refill_at = at;
}

static void entry_drop(int i, int kill_it)
{
	struct pool_entry *e = &pool[i];
	struct nuwa_child *c = nuwa_child_find(e->pid);
	/* SIGKILL through the pidfd: while the entry exists its pid cannot be
	 * another process's (base/children.c); the control loop reaps it. */
	if (kill_it && c && c->pidfd >= 0)
		SC(SYS_pidfd_send_signal, c->pidfd, SIGKILL, 0, 0, 0, 0);
	nuwa_own_fd_drop(e->fd);
	pool[i] = pool[--npool];
}

/* Has the child said it is ready?  Non-blocking; the one byte is all it
 * sends before it is taken. */
static void poll_ready(struct pool_entry *e)
{
	char b;
	if (!e->ready && sys_recvfrom(e->fd, &b, 1, MSG_DONTWAIT) == 1 && b == MSG_READY)
		e->ready = 1;
}

/* A pooled child has two channels: the pool's (its spawn comes there) and
 * the ready channel every spawned child has (base/child_ready.c: it says
 * when it is ready, waits for its release, and dies with the template
 * until then). */
static int fill_one(void)
{
	int sv[2], rv[2];
	long r = sys_socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
	if (r < 0)
		return (int)r;
	int tfd = nuwa_own_fd(nuwa_fd_high(sv[0]));
	int cfd = nuwa_own_fd(nuwa_fd_high(sv[1]));
	if ((r = nuwa_ready_open(rv)) < 0) {
		nuwa_own_fd_drop(tfd);
		nuwa_own_fd_drop(cfd);
		return (int)r;
	}
	const struct fork_req req = { .pooled = 1, .pool_fd = cfd, .pool_peer = tfd,
	                              .ready_fd = rv[1], .ready_peer = rv[0] };
	int pidfd = -1;
	pid_t pid = fork_child(&req, &pidfd);
	nuwa_own_fd_drop(cfd);
	nuwa_own_fd_drop(rv[1]);
	struct nuwa_child *c = pid > 0 ? nuwa_child_add(pid, pidfd, NUWA_CHILD_POOL) : NULL;
	if (!c) {
		nuwa_own_fd_drop(tfd);    /* a child past the table reads EOF and exits */
		nuwa_own_fd_drop(rv[0]);
		return pid < 0 ? pid : -EAGAIN;
	}
	c->ready_fd = rv[0];
	pool[npool++] = (struct pool_entry){ .pid = pid, .fd = tfd };
	refilled++;
	nuwa_debug("pool: child %d forked (%d of %d)", pid, npool, want);
	return 0;
}

int pool_set(int n, char *err, size_t errlen)
{
	if (nuwa_state != NUWA_STATE_TEMPLATE) {
		snprintf(err, errlen, "not a template");
		return -EINVAL;
	}
	if (n < 0 || n > CTL_MAX_POOL) {
		snprintf(err, errlen, "the pool holds 0 to %d children", CTL_MAX_POOL);
		return -EINVAL;
	}
	if (n != want)
		nuwa_info("pool: keeping %d children ready", n);
	want = n;
	while (npool > want)
		entry_drop(npool - 1, 1);
	if (npool < want)
		schedule(0);
	int ready = 0;
	for (int i = 0; i < npool; i++) {
		poll_ready(&pool[i]);
		ready += pool[i].ready;
	}
	return ready;
}

void pool_end(void)
{
	while (npool)
		entry_drop(npool - 1, 1);
	want = 0;
	refill_at = -1;
	taken = refilled = 0;
}

int pool_timeout_ms(void)
{
	if (refill_at < 0)
		return -1;
	long long d = refill_at - nuwa_now_ms();
	return d < 0 ? 0 : (int)d;
}

void pool_tick(void)
{
	if (refill_at < 0 || nuwa_now_ms() < refill_at)
		return;
	refill_at = -1;
	if (nuwa_state != NUWA_STATE_TEMPLATE || npool >= want)
		return;
	if (nuwa_children_full()) {
		/* no child may be made (base/children.c): look again in 1 s */
		static int said;
		if (!said++)
			nuwa_info("pool: %d children alive, the most libnuwa keeps track of: "
			          "the pool refills once some have ended", nuwa_children_max());
		schedule(1000);
		return;
	}
	int r = fill_one();
	if (r < 0) {
		nuwa_warn("pool: cannot fork a child: %s; trying again in 1 s", nuwa_strerror(-r));
		schedule(1000);
	} else if (npool < want) {
		schedule(0);   /* the next turn of the loop: requests go first */
	}
}

void pool_child_exited(pid_t pid)
{
	for (int i = 0; i < npool; i++)
		if (pool[i].pid == pid) {
			nuwa_info("pool: child %d died before it was taken; replacing it", pid);
			entry_drop(i, 0);
			schedule(0);
			return;
		}
}

static int send_take(int fd, const struct ctl_spawn *sp)
{
	struct take_msg m = { .magic = TAKE_MAGIC, .nstdio = sp->stdio ? 3 : 0,
	                      .setup_fn = (uintptr_t)sp->setup_fn,
	                      .child_fn = (uintptr_t)sp->child_fn, .arg = (uintptr_t)sp->arg };
	struct iovec iov[CTL_SPAWN_MEM + POOL_CORE_MEM];
	struct ctl_mem core[POOL_CORE_MEM];
	/* What the core itself carries: the timers' time left, read now, as a
	 * child forked now would have it (resources: timers). */
	int ncore = resources_spawn_image(core, POOL_CORE_MEM);
	for (int i = 0; i < sp->nmem + ncore; i++) {
		const struct ctl_mem *r = i < sp->nmem ? &sp->mem[i] : &core[i - sp->nmem];
		if (!r->n)
			continue;
		m.mem[m.nmem].p = (uintptr_t)r->p;
		m.mem[m.nmem].n = r->n;
		iov[m.nmem] = (struct iovec){ (void *)r->p, r->n };
		m.nmem++;
	}
	union { struct cmsghdr h; char b[CMSG_SPACE(3 * sizeof(int))]; } ctrl;
	struct iovec hv = { &m, sizeof m };
	struct msghdr mh = { .msg_iov = &hv, .msg_iovlen = 1 };
	if (sp->stdio) {
		mh.msg_control = ctrl.b;
		mh.msg_controllen = sizeof ctrl.b;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(3 * sizeof(int));
		memcpy(CMSG_DATA(c), sp->stdio, 3 * sizeof(int));
	}
	long n = sys_sendmsg(fd, &mh, MSG_NOSIGNAL);
	if (n != (long)sizeof m)
		return n < 0 ? (int)n : -EIO;
	if (m.nmem) {
		struct msghdr dh = { .msg_iov = iov, .msg_iovlen = m.nmem };
		n = sys_sendmsg(fd, &dh, MSG_NOSIGNAL);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

pid_t pool_take(const struct ctl_spawn *sp)
{
	while (npool) {
		/* A ready child first, else the oldest (it gets there soonest). */
		int pick = 0;
		for (int i = 0; i < npool; i++) {
			poll_ready(&pool[i]);
			if (pool[i].ready) {
				pick = i;
				break;
			}
		}
		pid_t pid = pool[pick].pid;
		int sent = send_take(pool[pick].fd, sp);
		/* Taken or lost: out of the pool (its channel closes; what was
		 * sent is read first), which refills, at once if now empty. */
		entry_drop(pick, sent < 0);
		schedule(npool ? REFILL_DELAY_MS : 0);
		struct nuwa_child *c = nuwa_child_find(pid);
		if (sent < 0 || !c) {
			nuwa_warn("pool: child %d could not be given its spawn; trying the next", pid);
			continue;
		}
		/* A spawned child from here on, answered like any other: once it
		 * is ready (every thread resumed, this spawn applied, none
		 * released), and released once its pid is sent. */
		c->kind = NUWA_CHILD_SPAWN;
		char err[256];
		if (control_child_await_ready(c, TAKE_WAIT_MS, err, sizeof err) < 0) {
			nuwa_warn("pool: %s; trying the next", err);
			continue;
		}
		taken++;
		return pid;
	}
	return -EAGAIN;
}

size_t pool_describe(char *buf, size_t len, int json)
{
	size_t n = 0;
#define OUT(...) do { \
		int k_ = snprintf(buf ? buf + (n < len ? n : len) : NULL, \
		                  n < len ? len - n : 0, __VA_ARGS__); \
		if (k_ > 0) n += (size_t)k_; \
	} while (0)
	int ready = 0;
	for (int i = 0; i < npool; i++) {
		poll_ready(&pool[i]);
		ready += pool[i].ready;
	}
	if (json) {
		OUT("\"pool\":{\"size\":%d,\"ready\":%d,\"preparing\":%d,\"taken\":%d,"
		    "\"forked\":%d,\"children\":[", want, ready, npool - ready, taken, refilled);
		for (int i = 0; i < npool; i++)
			OUT("%s{\"pid\":%d,\"ready\":%s}", i ? "," : "", pool[i].pid,
			    pool[i].ready ? "true" : "false");
		OUT("]}");
	} else if (want || npool) {
		OUT("pool %d: %d ready, %d preparing; %d taken, %d forked since the freeze\n",
		    want, ready, npool - ready, taken, refilled);
		for (int i = 0; i < npool; i++)
			OUT("  pooled %d %s\n", pool[i].pid, pool[i].ready ? "ready" : "preparing");
	}
#undef OUT
	return n;
}

/* ---- child side ------------------------------------------------------------- */

/* Every new child: the template's ends are not ours (a pooled child keeps
 * its own end, keep). */
void pool_child_forget(int keep)
{
	for (int i = 0; i < npool; i++)
		if (pool[i].fd != keep)
			nuwa_own_fd_drop(pool[i].fd);
	npool = want = taken = refilled = 0;
	refill_at = -1;
}

static struct ctl_spawn child_spawn;
static int child_stdio[3];

const struct ctl_spawn *pool_child_wait(int fd)
{
	char b = MSG_READY;
	sys_sendto(fd, &b, 1, MSG_NOSIGNAL);
	struct take_msg m;
	union { struct cmsghdr h; char b[CMSG_SPACE(3 * sizeof(int))]; } ctrl;
	long n;
	for (;;) {
		struct iovec iov = { &m, sizeof m };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b,
		                     .msg_controllen = sizeof ctrl.b };
		n = sys_recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			sys_exit_group(0);   /* the template ended the pool, or is gone */
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (n != (long)sizeof m || m.magic != TAKE_MAGIC || m.nmem > CTL_SPAWN_MEM +
		    POOL_CORE_MEM || (m.nstdio && (!c || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len != CMSG_LEN(3 * sizeof(int))))) {
			nuwa_err("pool: malformed take message");
			sys_exit_group(127);
		}
		if (m.nstdio) {
			memcpy(child_stdio, CMSG_DATA(c), sizeof child_stdio);
			/* Out of the way of 0, 1, 2, which install_stdio() overwrites
			 * in order (the kernel gave the lowest free numbers). */
			for (int i = 0; i < 3; i++)
				child_stdio[i] = nuwa_fd_high(child_stdio[i]);
		}
		break;
	}
	if (m.nmem) {
		/* The ranges, straight to their addresses: this memory is the
		 * template's image, which only this thread uses now. */
		struct iovec iov[CTL_SPAWN_MEM + POOL_CORE_MEM];
		size_t total = 0;
		for (uint32_t i = 0; i < m.nmem; i++) {
			iov[i] = (struct iovec){ (void *)(uintptr_t)m.mem[i].p, m.mem[i].n };
			total += m.mem[i].n;
		}
		struct msghdr dh = { .msg_iov = iov, .msg_iovlen = m.nmem };
		while ((n = sys_recvmsg(fd, &dh, 0)) == -EINTR)
			;
		if (n != (long)total) {
			nuwa_err("pool: take message cut short (%ld of %zu bytes)", n, total);
			sys_exit_group(127);
		}
	}
	nuwa_own_fd_drop(fd);   /* taken: the pool is done with us */
	child_spawn = (struct ctl_spawn){
		.stdio = m.nstdio ? child_stdio : NULL,
		.setup_fn = (void (*)(void *))(uintptr_t)m.setup_fn,
		.child_fn = (void (*)(void *))(uintptr_t)m.child_fn,
		.arg = (void *)(uintptr_t)m.arg,
	};
	return &child_spawn;
}

