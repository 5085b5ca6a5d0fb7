/* The control socket of a process that ended without libnuwa's exit path
 * (SIGKILL, a crash, a raw exit_group as the Go runtime does) stays in the
 * runtime directory: the process cannot remove it.  Whoever outlives it
 * does: `nuwa list` for every such file it meets, and for `nuwa run` a
 * watcher that waits for the program to end.
 *
 * A file is stale when it is a socket of ours and connect() is refused: a
 * live process listening on it would accept (a pid is only reused once the
 * old process is reaped, and the new one then replaces the file itself). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "ctl_rundir.h"

int cli_remove_stale_socket(const char *dir, pid_t pid)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	if (ctl_sock_path(a.sun_path, sizeof a.sun_path, dir, pid) < 0 ||
	    lstat(a.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
		return 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	int r = connect(fd, (struct sockaddr *)&a, sizeof a);
	int e = errno;
	close(fd);
	if (r == 0 || e != ECONNREFUSED)
		return 0;
	return unlink(a.sun_path) == 0;
}

/* Called by `nuwa run` just before it execs the program, which keeps our
 * pid.  The watcher is a grandchild re-parented away at once (the program
 * never sees a child it did not make, and a wait() for all its children
 * never waits for it), in a session of its own (a Ctrl-C or a kill of the
 * program's process group does not reach it), holding no descriptor but a
 * pidfd of the program (it keeps no pipe or terminal open). */
void cli_watch_own_socket(void)
{
	char dir[108];
	pid_t self = getpid();
	if (client_rundir(dir, sizeof dir) < 0 || dir[0] != '/')
		return;
	int pidfd = (int)syscall(SYS_pidfd_open, self, 0);
	if (pidfd < 0)
		return;   /* kernel older than 5.3: list prunes later */
	pid_t mid = fork();
	if (mid == 0) {
		if (fork() != 0)
			_exit(0);
		setsid();
		if (chdir("/") < 0)
			_exit(0);
		for (int fd = 0; fd < 3; fd++)
			if (fd != pidfd)
				close(fd);
		syscall(SYS_close_range, 3, pidfd - 1, 0);
		syscall(SYS_close_range, pidfd + 1, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		struct pollfd p = { pidfd, POLLIN, 0 };
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
		cli_remove_stale_socket(dir, self);
		_exit(0);
	}
	close(pidfd);
	if (mid > 0)
		while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
			;
}
