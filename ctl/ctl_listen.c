/* The control socket itself: DIR/PID.sock in the private runtime directory
 * (ctl/ctl_rundir.c), made at start-up and again in every spawned child,
 * removed when the process exits normally or is stopped.
 *
 * libnuwa's descriptors are moved to high numbers (out of the way of
 * programs that expect low ones or dup2 onto fixed numbers) and registered
 * with fdremap, which then neither reports nor rebuilds them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_rundir.h"
#include "sys.h"
#include "ctlsock_int.h"
#include "base.h"

int ctl_listen_fd = -1;
static pid_t owner_pid;           /* the process that bound sock_path */
static dev_t sock_dev;
static ino_t sock_ino;
static char run_dir[108];        /* the configured directory (ctl_rundir.h) */
static uid_t run_dir_uid;         /* the effective uid it was configured for */
static char sock_path[108];
static int initialised;

/* ---- listening socket ------------------------------------------------------- */

/* A socket file at our name is a leftover of a process that had our pid and
 * died without removing it (SIGKILL): nothing can be listening on it, since
 * only one live process has this pid.  Replace it, but only when it really
 * is a socket that we own and a connect() is refused; never follow a link. */
static int clear_stale(int dirfd, const char *name, int quiet)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
		if (!quiet)
			nuwa_err("control socket: %s exists and is not a socket of ours: "
			         "refused", sock_path);
		return -EEXIST;
	}
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return -errno;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, sock_path, strlen(sock_path) + 1);
	int e = -(int)sys_connect(probe, (struct sockaddr *)&a, sizeof a);
	int r = e ? -1 : 0;
	sys_close(probe);
	if (r == 0 || e == EAGAIN) {
		/* Another pid namespace sharing the directory has this pid. */
		if (!quiet)
			nuwa_err("control socket: %s is in use by a live process: refused",
			         sock_path);
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED)
		return -e;
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	nuwa_debug("control socket: removed stale %s", sock_path);
	return 0;
}

/* The directory for a socket made now.  A program that changed its uid
 * since it started (a daemon dropping privileges: memcached -u, nginx's
 * workers) can no longer enter the directory configured for its first
 * uid, which is private to that uid: a socket is made in the default
 * directory of the uid the process has when it makes it, /tmp/nuwa-EUID.
 * `nuwa` finds it there by its pid (/proc/net/unix). */
static const char *dir_now(char *buf, size_t len)
{
	uid_t euid = geteuid();
	if (euid == run_dir_uid)
		return run_dir;
	snprintf(buf, len, "/tmp/nuwa-%u", (unsigned)euid);
	return buf;
}

static int ctl_listen(void)
{
	char err[256], name[32], dirbuf[sizeof run_dir];
	pid_t pid = getpid();
	const char *dir = dir_now(dirbuf, sizeof dirbuf);
	int dirfd = ctl_rundir_open(dir, 1, err, sizeof err);
	if (dirfd < 0) {
		nuwa_err("control socket disabled: %s", err);
		return dirfd;
	}
	int r = ctl_sock_path(sock_path, sizeof sock_path, dir, pid);
	if (r < 0) {
		nuwa_err("control socket disabled: path %s/%ld.sock is too long for a Unix "
		         "socket (108 bytes): set NUWA_RUNTIME_DIR", dir, (long)pid);
		goto out;
	}
	snprintf(name, sizeof name, "%ld" CTL_SOCK_SUFFIX, (long)pid);
	if ((r = clear_stale(dirfd, name, 0)) < 0)
		goto out;

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	fd = nuwa_own_fd(nuwa_fd_high(fd));
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, sock_path, strlen(sock_path) + 1);
	/* The directory was checked through dirfd; make sure the path still
	 * names that directory (it is ours and 0700, so only we or root could
	 * have swapped it) before binding by path. */
	struct stat ds, ps;
	if (fstat(dirfd, &ds) < 0 || lstat(dir, &ps) < 0 || ds.st_dev != ps.st_dev ||
	    ds.st_ino != ps.st_ino) {
		r = -ESTALE;
		nuwa_err("control socket disabled: %s changed while being checked", dir);
		nuwa_own_fd_drop(fd);
		goto out;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		nuwa_err("control socket disabled: cannot listen on %s: %s", sock_path,
		         nuwa_strerror(-r));
		nuwa_own_fd_drop(fd);
		goto out;
	}
	/* The directory already keeps others out; the socket itself need not
	 * be more open than that either (bind used the process umask). */
	fchmodat(dirfd, name, 0600, 0);
	struct stat ss;
	if (fstatat(dirfd, name, &ss, AT_SYMLINK_NOFOLLOW) == 0) {
		sock_dev = ss.st_dev;
		sock_ino = ss.st_ino;
	}
	ctl_listen_fd = fd;
	owner_pid = pid;
	nuwa_info("control socket: %s", sock_path);
	r = 0;
out:
	sys_close(dirfd);
	if (r < 0)
		sock_path[0] = 0;
	return r;
}

const struct ctl_core_ops *ctl_ops;

int ctlsock_init(const struct ctl_core_ops *ops)
{
	ctl_ops = ops;
	if (initialised)
		return ctl_listen_fd >= 0 ? 0 : -EALREADY;
	initialised = 1;
	ctl_tables_init();
	run_dir_uid = geteuid();
	if (ctl_rundir_path(run_dir, sizeof run_dir) < 0) {
		nuwa_err("control socket disabled: runtime directory path too long "
		         "(NUWA_RUNTIME_DIR or XDG_RUNTIME_DIR)");
		return -ENAMETOOLONG;
	}
	int r = ctl_listen();
	/* Now, not at the control thread's first poll: the program must find
	 * its descriptor table as it will stay (it may count it, fd_leak). */
	if (r == 0)
		ctl_reserve_take();
	return r;
}

const char *ctlsock_path(void)
{
	return sock_path;
}

/* Remove our socket file, if it is still the one we bound. */
static void unlink_socket(void)
{
	struct stat st;
	if (!sock_path[0] || owner_pid != getpid())
		return;
	if (lstat(sock_path, &st) == 0 && st.st_dev == sock_dev && st.st_ino == sock_ino)
		unlink(sock_path);
	sock_path[0] = 0;
}

/* Normal exit of the program (exit() or return from main). */
__attribute__((destructor)) static void ctlsock_fini(void)
{
	unlink_socket();
}

/* A reaped child cannot remove its own socket file when it ended with
 * _exit() or a signal.  Its pid is free again only now, so a file at its
 * name is a leftover unless a new process with that pid has already bound
 * it: the connect() probe in clear_stale() tells them apart. */
void ctl_forget_child_socket(pid_t pid)
{
	char name[32], err[256], dirbuf[sizeof run_dir];
	if (!run_dir[0] || ctl_listen_fd < 0)
		return;
	const char *dir = dir_now(dirbuf, sizeof dirbuf);
	int dirfd = ctl_rundir_open(dir, 0, err, sizeof err);
	if (dirfd < 0)
		return;
	char saved[sizeof sock_path];
	memcpy(saved, sock_path, sizeof saved);
	snprintf(name, sizeof name, "%ld" CTL_SOCK_SUFFIX, (long)pid);
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
	    ctl_sock_path(sock_path, sizeof sock_path, dir, pid) == 0)
		clear_stale(dirfd, name, 1);   /* uses sock_path for the probe */
	memcpy(sock_path, saved, sizeof saved);
	sys_close(dirfd);
}

void ctlsock_forget_socket(pid_t pid)
{
	ctl_forget_child_socket(pid);
}

/* ---- new child, process exit -------------------------------------------------- */

void ctlsock_after_spawn(const int *keep)
{
	/* Everything here was the template's.  Only close: shutdown() would act
	 * on the open file descriptions the template still uses. */
	int had = ctl_listen_fd >= 0;   /* else the parent already said why not */
	ctl_forget_all(keep);
	nuwa_own_fd_drop(ctl_listen_fd);
	ctl_listen_fd = -1;
	sock_path[0] = 0;        /* the template's file: not ours to remove */
	if (had)
		ctl_listen();
}

/* A pooled child: it runs none of the program's code until it is taken, and
 * takes no connection either; its socket comes with the release. */
static int listen_pending;

void ctlsock_after_spawn_deferred(const int *keep)
{
	int had = ctl_listen_fd >= 0;
	ctl_forget_all(keep);
	nuwa_own_fd_drop(ctl_listen_fd);
	ctl_listen_fd = -1;
	sock_path[0] = 0;
	listen_pending = had;
}

void ctlsock_listen(void)
{
	if (listen_pending) {
		listen_pending = 0;
		ctl_listen();
	}
}

/* Snapshot mode: the template child makes its socket on its own control
 * thread, a moment after the fork.  `nuwa freeze` answers only once that
 * socket takes connections, so that a `nuwa spawn` right after it works. */
int ctl_wait_socket(pid_t pid, int timeout_ms)
{
	char path[108], dirbuf[sizeof run_dir];
	if (ctl_sock_path(path, sizeof path, dir_now(dirbuf, sizeof dirbuf), pid) < 0)
		return -ENAMETOOLONG;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, path, strlen(path) + 1);
	long long deadline = nuwa_now_ms() + timeout_ms;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		int e = -(int)sys_connect(fd, (struct sockaddr *)&a, sizeof a);
		int r = e ? -1 : 0;
		sys_close(fd);
		if (r == 0 || e == EAGAIN)
			return 0;
		if (nuwa_now_ms() >= deadline || kill(pid, 0) < 0)
			return -e;
		sys_ppoll(NULL, 0, NUWA_MS_TS(2));
	}
}

/* The program forked (plain fork()): most such children exec at once, so
 * the socket is made lazily by the child's control thread (first
 * ctlsock_pollfds() call), off the program's fork path. */

void ctlsock_after_app_fork(void)
{
	int had = ctl_listen_fd >= 0;
	ctl_forget_all(NULL);
	nuwa_own_fd_drop(ctl_listen_fd);
	ctl_listen_fd = -1;
	sock_path[0] = 0;
	listen_pending = had;
}

void ctl_listen_if_pending(void)
{
	ctlsock_listen();
}

/* exec() replaces the program: nothing will serve the socket any more. */
void ctlsock_before_exec(void)
{
	listen_pending = 0;
	unlink_socket();
}

/* Send what is queued to every client (bounded: 1 s), then remove the
 * socket file: the process is about to end. */
static void flush_all_and_unlink(void)
{
	long long deadline = nuwa_now_ms() + 1000;
	for (;;) {
		struct pollfd pfd[CTL_MAX_CONN];
		int n = 0;
		for (int i = 0; i < CTL_MAX_CONN; i++) {
			struct ctl_conn *c = &ctl_conns[i];
			ctl_flush(c);
			if (c->fd >= 0 && c->out_off < c->out_len)
				pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
		}
		long long left = deadline - nuwa_now_ms();
		if (n == 0 || left <= 0)
			break;
		sys_ppoll(pfd, (unsigned)n, NUWA_MS_TS((int)left));
	}
	unlink_socket();
}

/* _exit(): no destructor runs. */
void ctlsock_before_exit(void)
{
	listen_pending = 0;
	unlink_socket();
}

void ctl_exit_process(int status)
{
	flush_all_and_unlink();
	ctl_ops->stop(status);
}

void ctlsock_shutdown(const char *why)
{
	for (int i = 0; i < CTL_MAX_CONN; i++) {
		struct ctl_conn *w = &ctl_conns[i];
		if (w->fd >= 0 && w->waited) {
			ctl_reply_error(w, ESHUTDOWN, "template %ld %s: its children keep running "
			                "but their exit status cannot be reported", (long)getpid(), why);
			w->closing = 1;
		}
	}
	flush_all_and_unlink();
}
