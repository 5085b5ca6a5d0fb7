/* The service manager's readiness protocol (core/notify.c) against the real
 * libnuwa: the test plays systemd, binding the datagram socket that
 * $NOTIFY_SOCKET names; READY=1 must come after the freeze and never before,
 * once, from the template's pid; the program and its children do not see
 * NOTIFY_SOCKET. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli_test.h"

static struct ct_bg prog;
static struct ct_out o;
static int sock = -1;

static void teardown(void)
{
	ct_kill(&prog);
	if (sock >= 0)
		close(sock);
	sock = -1;
}

TestSuite(notify, .fini = teardown, .timeout = 120);

/* name: a path, or "@name" for the abstract namespace */
static void bind_notify(const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	cr_assert(n < sizeof a.sun_path);
	memcpy(a.sun_path, name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	if (name[0] == '@') {
		a.sun_path[0] = 0;
		len--;
	}
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert(sock >= 0);
	cr_assert(bind(sock, (struct sockaddr *)&a, len) == 0, "bind %s: %s", name, strerror(errno));
}

/* One datagram within timeout_ms into buf; its length, or -1 if none. */
static int recv_notify(char *buf, size_t cap, int timeout_ms)
{
	struct pollfd p = { sock, POLLIN, 0 };
	if (poll(&p, 1, timeout_ms) <= 0)
		return -1;
	ssize_t n = recv(sock, buf, cap - 1, MSG_DONTWAIT);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

static pid_t start(const char *dir, const char *notify, const char *idle_ms)
{
	char env[200];
	snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", notify);
	const char *extra[] = { env, NULL };
	const char *argv[16];
	int n = 0;
	argv[n++] = ct_path("NUWA_CLI");
	argv[n++] = "run";
	argv[n++] = "--mode";
	argv[n++] = "template";
	argv[n++] = "--lib";
	argv[n++] = ct_path("NUWA_LIB");
	if (idle_ms) {
		argv[n++] = "--freeze-on-idle";
		argv[n++] = idle_ms;
	}
	argv[n++] = "--";
	argv[n++] = ct_path("NUWA_CLI_SCN");
	argv[n++] = dir;
	argv[n++] = "0";
	argv[n] = NULL;
	ct_start(&prog, argv, extra, 1);
	return prog.pid;
}

static void wait_state_file(const char *dir, pid_t pid)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%d.state", dir, pid);
	for (long long end = ct_now_ms() + 10000; ct_now_ms() < end; ct_sleep_ms(10))
		if (access(path, F_OK) == 0)
			return;
	cr_assert_fail("%d never ran", pid);
}

Test(notify, ready_only_after_the_freeze)
{
	const char *dir = ct_setup();
	char path[4096], buf[1024], p[32];
	snprintf(path, sizeof path, "%s/notify.sock", dir);
	bind_notify(path);
	pid_t pid = start(dir, path, NULL);
	snprintf(p, sizeof p, "%d", pid);
	/* running, its threads working: nothing said yet */
	wait_state_file(dir, pid);
	ct_nuwa(&o, 10000, "status", p, NULL);
	cr_assert(o.code == 0 && strstr(o.out, "state running"), "%s %s", o.out, o.err);
	cr_assert(recv_notify(buf, sizeof buf, 0) < 0, "said before the freeze: %s", buf);

	ct_nuwa(&o, 20000, "freeze", p, NULL);
	cr_assert(o.code == 0, "freeze: %s", o.err);
	cr_assert(recv_notify(buf, sizeof buf, 10000) > 0, "no READY=1 after the freeze");
	char mainpid[64];
	snprintf(mainpid, sizeof mainpid, "\nMAINPID=%d\n", pid);
	cr_assert(!strncmp(buf, "READY=1\n", 8) && strstr(buf, "\nSTATUS=frozen: ") &&
	          strstr(buf, mainpid), "datagram: [%s]", buf);

	/* the program and its children never see the socket; a child does
	 * not report readiness when it is frozen in turn */
	ct_nuwa(&o, 20000, "spawn", "--stdio", "--wait", "--call", "cli_scn_env(str:NOTIFY_SOCKET)",
	        "--call", "_exit(int:0)", p, NULL);
	cr_assert(o.code == 0 && !strcmp(o.out, "env NOTIFY_SOCKET unset\n"), "[%s] %s", o.out,
	          o.err);
	ct_nuwa(&o, 20000, "spawn", p, NULL);
	cr_assert(o.code == 0, "spawn: %s", o.err);
	pid_t kid = (pid_t)atol(o.out);
	char k[32];
	snprintf(k, sizeof k, "%d", kid);
	ct_nuwa(&o, 20000, "freeze", k, NULL);
	cr_assert(o.code == 0, "freeze child: %s", o.err);
	ct_nuwa(&o, 20000, "stop", k, NULL);
	/* thawed: a STATUS line, no second READY=1 */
	ct_nuwa(&o, 20000, "thaw", p, NULL);
	cr_assert(o.code == 0, "thaw: %s", o.err);
	cr_assert(recv_notify(buf, sizeof buf, 10000) > 0, "no STATUS after thaw");
	cr_assert(!strncmp(buf, "STATUS=thawed", 13), "after thaw: [%s]", buf);
	cr_assert(recv_notify(buf, sizeof buf, 0) < 0, "one more datagram: [%s]", buf);
}

Test(notify, abstract_socket_and_freeze_on_idle)
{
	const char *dir = ct_setup();
	char name[108], buf[1024], p[32];
	snprintf(name, sizeof name, "@nuwa-test-notify-%d", getpid());
	bind_notify(name);
	pid_t pid = start(dir, name, "200");
	snprintf(p, sizeof p, "%d", pid);
	cr_assert(recv_notify(buf, sizeof buf, 30000) > 0, "no READY=1");
	cr_assert(!strncmp(buf, "READY=1\n", 8), "datagram: [%s]", buf);
	/* it came once the process was a template, not before */
	ct_nuwa(&o, 10000, "status", p, NULL);
	cr_assert(o.code == 0 && strstr(o.out, "state template"), "%s %s", o.out, o.err);
}
