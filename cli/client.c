/* Client side of the control socket: find a process's socket, connect,
 * exchange framed messages (ctl/ctl_proto.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctl_rundir.h"

int client_rundir(char *buf, size_t len)
{
	return ctl_rundir_path(buf, len);
}

static int is_pid(const char *s)
{
	if (!*s || *s == '0')
		return 0;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	return strlen(s) < 11;
}

/* The process may run with another runtime directory than ours (another
 * environment, or another user when we are root): the kernel lists every
 * bound Unix socket path in /proc/net/unix; look for ".../nuwa.../PID.sock". */
static int find_in_proc_net_unix(pid_t pid, char *out, size_t len)
{
	FILE *f = fopen("/proc/net/unix", "re");
	if (!f)
		return -1;
	char line[512], want[32];
	snprintf(want, sizeof want, "/%ld" CTL_SOCK_SUFFIX, (long)pid);
	size_t wl = strlen(want);
	int found = -1;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char *path = strrchr(line, ' ');
		if (!path || path[1] != '/')
			continue;
		path++;
		size_t pl = strlen(path);
		if (pl > wl && !strcmp(path + pl - wl, want) && strstr(path, "nuwa") &&
		    pl < len) {
			memcpy(out, path, pl + 1);
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* A Unix stream connect() blocks while the listener's backlog is full (a
 * process whose control thread does not accept): non-blocking, it fails
 * with EAGAIN at once instead, so retry until CONNECT_MS have passed. */
#define CONNECT_MS 10000
static int connect_bounded(int fd, const struct sockaddr_un *a)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	long long deadline = now_ms() + CONNECT_MS;
	int r;
	while ((r = connect(fd, (const struct sockaddr *)a, sizeof *a)) < 0 &&
	       (errno == EAGAIN || errno == EINTR) && now_ms() < deadline)
		poll(NULL, 0, 10);
	int e = errno;
	fcntl(fd, F_SETFL, fl);
	errno = e;
	return r;
}

static int resolve(struct client *cl, const char *target)
{
	char dir[108];
	if (is_pid(target)) {
		cl->pid = (pid_t)atol(target);
		struct stat st;
		if (client_rundir(dir, sizeof dir) == 0 &&
		    ctl_sock_path(cl->path, sizeof cl->path, dir, cl->pid) == 0 &&
		    lstat(cl->path, &st) == 0)
			return EX_OK;
		if (find_in_proc_net_unix(cl->pid, cl->path, sizeof cl->path) == 0)
			return EX_OK;
		if (kill(cl->pid, 0) < 0 && errno == ESRCH)
			cli_err("%s: no such process", target);
		else
			cli_err("%s: no libnuwa control socket for this process (it was not "
			        "started under libnuwa, or libnuwa is disabled in it; see "
			        "'nuwa list')", target);
		return EX_NOPROC;
	}
	if (strchr(target, '/')) {
		if (strlen(target) >= sizeof cl->path) {
			cli_err("%s: socket path too long", target);
			return EX_USAGE;
		}
		strcpy(cl->path, target);
		cl->pid = 0;
		return EX_OK;
	}
	return cli_usage_err("'%s' is neither a PID nor a socket path", target);
}

int client_open(struct client *cl, const char *target)
{
	memset(cl, 0, sizeof *cl);
	cl->fd = -1;
	int r = resolve(cl, target);
	if (r != EX_OK)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		cli_err("socket: %s", strerror(errno));
		return EX_NUWA;
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, cl->path, strlen(cl->path) + 1);
	if (connect_bounded(fd, &a) < 0) {
		int e = errno;
		close(fd);
		if (e == EAGAIN)
			cli_err("%s: the process takes no connection on %s within %d s (its "
			        "control thread is busy or stuck)", target, cl->path,
			        CONNECT_MS / 1000);
		else if (e == ECONNREFUSED)
			cli_err("%s: nobody listens on %s (the process is gone)", target, cl->path);
		else if (e == ENOENT)
			cli_err("%s: no socket at %s", target, cl->path);
		else if (e == EACCES || e == EPERM)
			cli_err("%s: permission denied on %s (only the owner of the process or "
			        "root may control it)", target, cl->path);
		else
			cli_err("%s: cannot connect to %s: %s", target, cl->path, strerror(e));
		return EX_NOPROC;
	}
	/* Who answers?  A socket of ours (or root's), and for a PID, that pid:
	 * guards against a stale name reused by another process. */
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
		if (geteuid() != 0 && cr.uid != geteuid() && cr.uid != 0) {
			close(fd);
			cli_err("%s: %s belongs to uid %u, not to you: refused", target, cl->path,
			        (unsigned)cr.uid);
			return EX_NOPROC;
		}
		if (cl->pid && cr.pid && cr.pid != cl->pid) {
			close(fd);
			cli_err("%s: %s is served by pid %ld, not %ld", target, cl->path,
			        (long)cr.pid, (long)cl->pid);
			return EX_NOPROC;
		}
		if (!cl->pid)
			cl->pid = cr.pid;
	}
	cl->fd = fd;
	return EX_OK;
}

void client_close(struct client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
	free(cl->buf);
	cl->buf = NULL;
	cl->len = cl->cap = 0;
}

int client_send(struct client *cl, const void *msg, size_t len, const int *fds, int nfds)
{
	return ctl_send_with_fds(cl->fd, msg, len, fds, nfds);
}


int client_recv(struct client *cl, struct ctl_msg *m, int timeout_ms, int extra_fd)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	/* Drop the message returned last time. */
	if (cl->last) {
		memmove(cl->buf, cl->buf + cl->last, cl->len - cl->last);
		cl->len -= cl->last;
		cl->last = 0;
	}
	for (;;) {
		if (cl->len) {
			long sz = ctl_frame(cl->buf, cl->len, CTL_MAX_REPLY, m);
			if (sz < 0)
				return (int)sz;
			if (sz > 0) {
				/* Leave it in the buffer until the next call. */
				if (ctl_validate(m) < 0)
					return -EPROTO;
				cl->last = (size_t)sz;
				return 1;
			}
		}
		if (cl->cap - cl->len < 65536) {
			size_t cap = cl->cap ? cl->cap * 2 : 131072;
			if (cap > CTL_HDR_SIZE + CTL_MAX_REPLY + 131072)
				return -EMSGSIZE;
			char *p = realloc(cl->buf, cap);
			if (!p)
				return -ENOMEM;
			cl->buf = p;
			cl->cap = cap;
		}
		struct pollfd pfd[2] = { { .fd = cl->fd, .events = POLLIN },
		                         { .fd = extra_fd, .events = POLLIN } };
		int wait = -1;
		if (deadline >= 0) {
			long long left = deadline - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			wait = left > 0x7fffffff ? 0x7fffffff : (int)left;
		}
		int r = poll(pfd, extra_fd >= 0 ? 2 : 1, wait);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		if (extra_fd >= 0 && (pfd[1].revents & POLLIN))
			return -EINTR;
		ssize_t n = recv(cl->fd, cl->buf + cl->len, cl->cap - cl->len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return 0;
			return -errno;
		}
		if (n == 0)
			return 0;
		cl->len += (size_t)n;
	}
}

void client_print_error(struct client *cl, const struct ctl_msg *m)
{
	const char *msg = NULL;
	int32_t e = 0;
	ctl_get_i32(m, CTL_F_ERRNO, &e);
	if (ctl_get_str(m, CTL_F_MESSAGE, &msg) < 0)
		msg = e ? strerror(e) : "request failed";
	if (cl->pid)
		cli_err("%ld: %s", (long)cl->pid, msg);
	else
		cli_err("%s: %s", cl->path, msg);
}

/* The process refused the connection itself (SO_PEERCRED: another user):
 * it cannot be controlled by us, like a socket we may not connect to. */
int client_refused(const struct ctl_msg *m)
{
	int32_t e = 0;
	return m->type == CTL_REP_ERROR && ctl_get_i32(m, CTL_F_ERRNO, &e) == 0 && e == EACCES;
}

int client_call(struct client *cl, struct ctl_buf *b, struct ctl_msg *m, int timeout_ms)
{
	long n = ctl_end(b);
	if (n < 0) {
		cli_err("request too large");
		return EX_USAGE;
	}
	int r = client_send(cl, b->p, (size_t)n, NULL, 0);
	if (r < 0) {
		/* The process may have refused us at once (another user, too many
		 * clients) and closed: its reason is waiting to be read. */
		if (client_recv(cl, m, 1000, -1) == 1 && m->type == CTL_REP_ERROR)
			return EX_OK;
		cli_err("%ld: cannot send the request: %s", (long)cl->pid, strerror(-r));
		return EX_PROTO;
	}
	r = client_recv(cl, m, timeout_ms, -1);
	if (r == 1)
		return EX_OK;
	if (r == 0)
		cli_err("%ld: the process closed the connection without a reply", (long)cl->pid);
	else if (r == -ETIMEDOUT)
		cli_err("%ld: no reply within %d ms", (long)cl->pid, timeout_ms);
	else if (r == -EPROTONOSUPPORT)
		cli_err("%ld: the process speaks another protocol version (this nuwa speaks "
		        "version %d): use the nuwa command of the same libnuwa", (long)cl->pid,
		        CTL_VERSION);
	else
		cli_err("%ld: bad reply: %s", (long)cl->pid, strerror(-r));
	return EX_PROTO;
}
