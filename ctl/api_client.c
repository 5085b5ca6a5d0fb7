/* nuwa_spawn(): the client side of the control socket, for programs that
 * launch children of a template themselves instead of running `nuwa spawn`.
 *
 * Runs on an application thread of the caller (a launcher process with
 * libnuwa loaded), so it uses the ordinary libc calls: a wait in poll() is
 * then an idle freeze point like any other, should the launcher itself be
 * frozen meanwhile.  Protocol: ctl/ctl_proto.h; socket path: ctl_rundir.h. */
#define NUWA_BUILDING_LIBNUWA 1
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "ctl_rundir.h"
#include "nuwa.h"
#include "base.h"

#define SPAWN_REPLY_MS 30000
#define MAX_HOPS 2           /* snapshot mode: the original names its template */

/* Connect to the template's socket and check who answers (SO_PEERCRED):
 * a stale file reused by another process's socket must not get our stdio. */
static int spawn_connect(pid_t pid)
{
	char dir[108], path[108];
	if (ctl_rundir_path(dir, sizeof dir) < 0 || ctl_sock_path(path, sizeof path, dir, pid) < 0)
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(fd);
		/* ENOENT: no socket (not running libnuwa, or gone); ECONNREFUSED:
		 * a file left by a dead process. */
		return e == EACCES || e == EPERM ? -EACCES : -ESRCH;
	}
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (cr.pid != pid || (cr.uid != geteuid() && cr.uid != 0)) {
		close(fd);
		return cr.pid != pid ? -ESRCH : -EACCES;
	}
	return fd;
}

static int send_request(int fd, int stdio)
{
	char mem[128];
	struct ctl_buf b;
	ctl_begin(&b, mem, sizeof mem, CTL_REQ_SPAWN);
	ctl_put_u32(&b, CTL_F_COUNT, 1);
	ctl_put_u32(&b, CTL_F_WAIT, 0);
	ctl_put_u32(&b, CTL_F_STDIO, stdio ? 3 : 0);
	long n = ctl_end(&b);
	if (n < 0)
		return (int)n;
	static const int fds[3] = { 0, 1, 2 };
	return ctl_send_with_fds(fd, mem, (size_t)n, fds, stdio ? 3 : 0);
}

/* Read replies until the spawn is over.  Returns the child's pid, -errno,
 * or 0 with *redirect set (snapshot mode: ask that process instead). */
static pid_t read_replies(int fd, pid_t *redirect)
{
	/* Replies to a one-child spawn are small: SPAWNED, then OK or ERROR. */
	char buf[4096];
	size_t have = 0;
	pid_t child = 0;
	long long deadline = nuwa_now_ms() + SPAWN_REPLY_MS;
	for (;;) {
		struct ctl_msg m;
		long sz = have ? ctl_frame(buf, have, sizeof buf - CTL_HDR_SIZE, &m) : 0;
		if (sz < 0)
			return -EPROTO;
		if (sz > 0) {
			if (ctl_validate(&m) < 0)
				return -EPROTO;
			int32_t v = 0;
			switch (m.type) {
			case CTL_REP_SPAWNED:
				if (ctl_get_i32(&m, CTL_F_PID, &v) < 0 || v <= 0)
					return -EPROTO;
				child = v;
				break;
			case CTL_REP_OK:
				return child > 0 ? child : -EPROTO;
			case CTL_REP_ERROR:
				if (ctl_get_i32(&m, CTL_F_REDIRECT_PID, &v) == 0 && v > 0) {
					*redirect = v;
					return 0;
				}
				if (ctl_get_i32(&m, CTL_F_ERRNO, &v) < 0 || v <= 0)
					v = EIO;
				return -v;
			default:
				return -EPROTO;
			}
			memmove(buf, buf + sz, have - (size_t)sz);
			have -= (size_t)sz;
			continue;
		}
		if (have == sizeof buf)
			return -EPROTO;
		long long left = deadline - nuwa_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)   /* closed without an answer: the template went away */
			return child > 0 ? child : -ECONNRESET;
		have += (size_t)n;
	}
}

NUWA_EXPORT pid_t nuwa_spawn(pid_t template_pid, int flags)
{
	if (template_pid <= 0 || (flags & ~NUWA_SPAWN_STDIO))
		return -EINVAL;
	pid_t target = template_pid;
	for (int hop = 0; hop < MAX_HOPS; hop++) {
		int fd = spawn_connect(target);
		if (fd < 0)
			return fd;
		int r = send_request(fd, flags & NUWA_SPAWN_STDIO);
		/* Even when the send failed: a template that refused us at once
		 * (too many clients) wrote its reason before closing. */
		pid_t redirect = 0, pid = read_replies(fd, &redirect);
		close(fd);
		if (r < 0 && pid == -ECONNRESET)
			pid = r;
		if (pid != 0 || redirect <= 0)
			return pid;
		nuwa_debug("nuwa_spawn: %d runs on; asking its snapshot template %d",
		           target, redirect);
		target = redirect;
	}
	return -ELOOP;
}

/* nuwa_pool(): `nuwa pool PID N` from a program.  One request, one reply
 * (OK or ERROR), read whole. */
NUWA_EXPORT int nuwa_pool(pid_t template_pid, int n)
{
	if (template_pid <= 0 || n < 0 || n > CTL_MAX_POOL)
		return -EINVAL;
	int fd = spawn_connect(template_pid);
	if (fd < 0)
		return fd;
	char mem[64];
	struct ctl_buf b;
	ctl_begin(&b, mem, sizeof mem, CTL_REQ_POOL);
	ctl_put_u32(&b, CTL_F_COUNT, (uint32_t)n);
	long len = ctl_end(&b);
	int r = len < 0 ? (int)len : ctl_send_with_fds(fd, mem, (size_t)len, NULL, 0);
	char buf[1024];
	size_t have = 0;
	long long deadline = nuwa_now_ms() + SPAWN_REPLY_MS;
	while (r == 0) {
		struct ctl_msg m;
		long sz = have ? ctl_frame(buf, have, sizeof buf - CTL_HDR_SIZE, &m) : 0;
		if (sz < 0 || (sz > 0 && ctl_validate(&m) < 0)) {
			r = -EPROTO;
		} else if (sz > 0) {
			int32_t e = 0;
			uint32_t ready = 0;
			if (m.type == CTL_REP_OK) {
				ctl_get_u32(&m, CTL_F_POOL, &ready);
				r = (int)ready;
				break;
			}
			if (m.type != CTL_REP_ERROR || ctl_get_i32(&m, CTL_F_ERRNO, &e) < 0 || e <= 0)
				e = EPROTO;
			r = -e;
		} else if (have == sizeof buf) {
			r = -EPROTO;
		} else {
			long long left = deadline - nuwa_now_ms();
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int k = left > 0 ? poll(&pfd, 1, (int)left) : 0;
			if (left <= 0) {
				r = -ETIMEDOUT;
			} else if (k < 0 && errno != EINTR) {
				r = -errno;
			} else if (k > 0) {
				ssize_t got = recv(fd, buf + have, sizeof buf - have, 0);
				if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
					r = -ECONNRESET;
				else if (got > 0)
					have += (size_t)got;
			}
		}
	}
	close(fd);
	return r;
}
