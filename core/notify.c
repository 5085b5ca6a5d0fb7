/* The service manager's readiness protocol (sd_notify(3), without
 * libsystemd): under systemd's Type=notify, $NOTIFY_SOCKET names an AF_UNIX
 * datagram socket (a path, or an abstract name when it starts with '@'), and
 * a datagram of newline-separated VAR=VALUE lines reports the state:
 * READY=1 once the service is ready, STATUS= free text for `systemctl
 * status`, MAINPID= the pid the manager should watch.
 *
 * A template is ready once it is frozen: libnuwa takes $NOTIFY_SOCKET for
 * itself at start-up (and removes it from the environment, as
 * sd_notify(unset_environment=1) does), so that neither the program (which
 * would say READY=1 before its warm-up is frozen) nor the children (which
 * are not the service's main process) use it, and sends READY=1 after the
 * first freeze of this very process.  Sent from the control thread with
 * the program's threads parked: raw system calls, a stack buffer. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "nuwa_int.h"

static char notify_path[sizeof ((struct sockaddr_un *)0)->sun_path];
static pid_t notify_pid;    /* the process that was given the socket */
static int notified;

void notify_init(void)
{
	const char *v = getenv("NOTIFY_SOCKET");
	if (!v || !*v)
		return;
	if (strlen(v) >= sizeof notify_path || (v[0] != '/' && v[0] != '@')) {
		nuwa_warn("NOTIFY_SOCKET=%s: not an absolute path or an abstract name; "
		          "readiness will not be reported", v);
	} else {
		memcpy(notify_path, v, strlen(v) + 1);
		notify_pid = (pid_t)sys_getpid();
	}
	unsetenv("NOTIFY_SOCKET");   /* the constructor: no program thread yet */
}

static void notify_send(const char *msg)
{
	if (!notify_path[0] || notify_pid != (pid_t)sys_getpid())
		return;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(notify_path);
	memcpy(a.sun_path, notify_path, n);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = 0;          /* abstract: the length says where it ends */
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                            (notify_path[0] == '@' ? 0 : 1));
	int fd = (int)sys_socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	long r = SC(SYS_sendto, fd, msg, strlen(msg), MSG_NOSIGNAL, &a, len);
	sys_close(fd);
	if (r < 0)
		nuwa_warn("NOTIFY_SOCKET %s: cannot send: errno %ld", notify_path, -r);
}

void notify_frozen(int threads)
{
	if (notified)
		return;
	char msg[256];
	snprintf(msg, sizeof msg, "READY=1\nSTATUS=frozen: %d threads; spawn with "
	         "'nuwa spawn %ld'\nMAINPID=%ld\n", threads, (long)sys_getpid(),
	         (long)sys_getpid());
	notify_send(msg);
	notified = 1;
}

void notify_status(const char *status)
{
	char msg[256];
	snprintf(msg, sizeof msg, "STATUS=%s\n", status);
	notify_send(msg);
}
