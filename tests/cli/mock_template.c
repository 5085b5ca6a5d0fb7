/* mock_template — the control socket (ctl/ctlsock.c, ctl_serve.c, ...)
 * linked with a stand-in for the core, so that the socket, the protocol and
 * the `nuwa` command can be tested on their own, with real processes and
 * real sockets, independently of freezing threads.  The stand-in is a second
 * implementation of the table of operations the real core hands the server
 * (struct ctl_core_ops, ctl/ctlsock.h), so the two cannot drift apart.
 *
 * The stand-in is single-threaded: "freeze" only changes the state, and a
 * spawn is a real fork() whose child installs the received stdio, runs
 * ctlsock_after_spawn() and the --call plan, prints "MOCK CHILD <pid>" and
 * then serves its own control socket until SIGTERM/SIGINT (default action).
 *
 * Environment: MOCK_FREEZE_FAIL=1 makes freezes fail (ETIMEDOUT);
 * MOCK_SPAWN_FAIL_AFTER=N makes the spawn after the N-th fail (EAGAIN);
 * MOCK_MODE=snapshot|clone and MOCK_CLONES=N select the other modes.
 * Prints "MOCK READY <pid> <socket>" on stdout when serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "ctlsock.h"

/* ---- the core's side of struct ctl_core_ops ---------------------------------- */

static struct ctl_info mock_cfg = { .state = CTL_STATE_RUNNING, .mode = CTL_MODE_TEMPLATE,
                                    .clones = 1, .timeout_ms = 2000 };

static void mock_info(struct ctl_info *out)
{
	*out = mock_cfg;
}

static int spawned, spawn_fail_after = -1;

/* The own descriptors (base/ownfd.c) are listed on an "own" line: the tests
 * check that every one of them is open. */
static size_t mock_status(char *buf, size_t len, int json)
{
	static const char *const st[] = { "running", "freezing", "template" };
	size_t n = 0;
#define OUT(...) do { int k_ = snprintf(buf ? buf + (n < len ? n : len) : NULL, \
		n < len ? len - n : 0, __VA_ARGS__); if (k_ > 0) n += (size_t)k_; } while (0)
	if (json) {
		OUT("{\"pid\":%d,\"state\":\"%s\",\"threads\":[{\"tid\":%d,\"doing\":\"idle in poll\"}],",
		    getpid(), st[mock_cfg.state], getpid());
		n += ctlsock_describe(buf ? buf + (n < len ? n : len) : NULL, n < len ? len - n : 0, 1);
		OUT("}\n");
	} else {
		OUT("pid %d\nstate %s\n  thread %d mock idle in poll\n", getpid(), st[mock_cfg.state],
		    getpid());
		n += ctlsock_describe(buf ? buf + (n < len ? n : len) : NULL, n < len ? len - n : 0, 0);
		int own[4096], nown = nuwa_own_fds(own, 4096);
		OUT("own");
		for (int i = 0; i < nown; i++)
			OUT(" %d", own[i]);
		OUT("\nchildren %d\n", nuwa_children_n());
	}
#undef OUT
	return n;
}

static int mock_freeze(int timeout_ms, char *err, size_t errlen)
{
	if (getenv("MOCK_FREEZE_FAIL")) {
		snprintf(err, errlen, "thread %d stayed busy for %d ms (mock)", getpid(), timeout_ms);
		return -ETIMEDOUT;
	}
	mock_cfg.state = CTL_STATE_TEMPLATE;
	return 0;
}

static int mock_thaw(void)
{
	mock_cfg.state = CTL_STATE_RUNNING;
	return 0;
}

static void serve(void) __attribute__((noreturn));

/* As in the core, snapshot, clone and spawn return only in the parent: a
 * child forgets the parent's children, makes its own socket
 * (ctlsock_after_spawn) and serves it from a fresh loop. */
static pid_t mock_snapshot(int timeout_ms, char *err, size_t errlen)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		nuwa_children_forget();
		ctlsock_after_spawn(NULL);
		mock_cfg.state = CTL_STATE_TEMPLATE;
		serve();
	}
	nuwa_child_add(pid, -1, NUWA_CHILD_TEMPLATE);
	return pid;
}

static int mock_clone(int n, int timeout_ms, pid_t *pids, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return i ? i : -errno;
		if (pid == 0) {
			nuwa_children_forget();
			ctlsock_after_spawn(NULL);
			char line[64];
			int k = snprintf(line, sizeof line, "MOCK CLONE %d\n", getpid());
			(void)!write(1, line, k);
			serve();
		}
		nuwa_child_add(pid, -1, NUWA_CHILD_CLONE);
		pids[i] = pid;
	}
	return n;
}

static pid_t mock_spawn(const struct ctl_spawn *sp, char *err, size_t errlen)
{
	const int *stdio = sp->stdio;
	(void)err; (void)errlen;   /* the stand-in has no ready channel: ready at once */
	if (spawn_fail_after >= 0 && spawned >= spawn_fail_after)
		return -EAGAIN;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The core's order: children forgotten, ctlsock_after_spawn(), stdio,
		 * setup_fn (the spawn's options), threads, child_fn. */
		nuwa_children_forget();
		ctlsock_after_spawn(stdio);
		if (stdio)
			for (int i = 0; i < 3; i++) {
				dup2(stdio[i], i);
				if (stdio[i] > 2)
					close(stdio[i]);
			}
		if (sp->setup_fn)
			sp->setup_fn(sp->arg);
		mock_cfg.state = CTL_STATE_RUNNING;
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (sp->child_fn)
			sp->child_fn(sp->arg);
		char line[64];
		int n = snprintf(line, sizeof line, "MOCK CHILD %d\n", getpid());
		(void)!write(1, line, n);
		serve();
	}
	spawned++;
	nuwa_child_add(pid, -1, NUWA_CHILD_SPAWN);
	return pid;
}

__attribute__((noreturn)) static void mock_stop(int status)
{
	_exit(status);
}

static const struct ctl_core_ops mock_ops = {
	.info = mock_info,
	.freeze = mock_freeze,
	.spawn = mock_spawn,
	.thaw = mock_thaw,
	.stop = mock_stop,
	.snapshot = mock_snapshot,
	.clone = mock_clone,
	.status = mock_status,
};

/* ---- functions for --call (exported: the executable is linked -rdynamic) --- */

void mock_record(int i, long l, double d, const char *s, void *p)
{
	char line[512];
	int n = snprintf(line, sizeof line, "CALL mock_record pid=%d i=%d l=%ld d=%.6g s=[%s] p=%s\n",
	                 getpid(), i, l, d, s, p ? "nonnull" : "null");
	(void)!write(1, line, n);
}

int mock_data_object = 42;

/* ---- the control thread's loop, single-threaded here ------------------------ */

static int sigfd = -1;

static void reap(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct nuwa_child *c = nuwa_child_find(pid);
		if (c) {
			ctlsock_child_exited(c, st);
			nuwa_child_remove(c);
		}
	}
}

static void serve(void)
{
	if (sigfd >= 0)
		close(sigfd);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	for (;;) {
		struct pollfd pfd[1 + CTLSOCK_MAX_POLLFDS];
		pfd[0] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		int n = ctlsock_pollfds(pfd + 1, CTLSOCK_MAX_POLLFDS);
		if (poll(pfd, 1 + n, ctlsock_timeout_ms()) < 0)
			continue;
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof si) == sizeof si)
				;
			reap();
		}
		ctlsock_dispatch(pfd + 1, n);
	}
}

int main(void)
{
	const char *v;
	if ((v = getenv("MOCK_SPAWN_FAIL_AFTER")))
		spawn_fail_after = atoi(v);
	if ((v = getenv("MOCK_MODE")))
		mock_cfg.mode = !strcmp(v, "snapshot") ? CTL_MODE_SNAPSHOT :
		               !strcmp(v, "clone") ? CTL_MODE_CLONE : CTL_MODE_TEMPLATE;
	if ((v = getenv("MOCK_CLONES")))
		mock_cfg.clones = atoi(v);
	if ((v = getenv("MOCK_LOG")))
		nuwa_log_level = atoi(v);
	int r = ctlsock_init(&mock_ops);
	if (r < 0) {
		printf("MOCK INITFAIL %d\n", -r);
		return 1;
	}
	printf("MOCK READY %d %s\n", getpid(), ctlsock_path());
	fflush(stdout);
	if (getenv("MOCK_APP_FORK") && fork() == 0) {
		/* the core's plain-fork path: no socket until the control loop
		 * polls, none left after exec */
		char path[256];
		struct stat st;
		ctlsock_after_app_fork();
		snprintf(path, sizeof path, "%s", getenv("NUWA_RUNTIME_DIR"));
		snprintf(path + strlen(path), sizeof path - strlen(path), "/%d.sock", getpid());
		printf("APPFORK %d %s", getpid(), lstat(path, &st) ? "nosock" : "SOCK-TOO-EARLY");
		struct pollfd pfd[CTLSOCK_MAX_POLLFDS];
		ctlsock_pollfds(pfd, CTLSOCK_MAX_POLLFDS);
		printf(" %s", lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) ? "sock" : "NO-SOCK");
		ctlsock_before_exec();
		printf(" %s\n", lstat(path, &st) ? "unlinked" : "STILL-THERE");
		fflush(stdout);
		execl("/bin/true", "true", (char *)NULL);
		_exit(1);
	}
	serve();
}
