/* What stays shared, user overrides, libnuwa's own descriptors, leaks,
 * introspection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "ut.h"

struct cat_case { int to, from; unsigned long ino_to, ino_from; };

static void cat_child(void *arg)
{
	struct cat_case *c = arg;
	UT_CHECK(ut_ino(c->to) == c->ino_to && ut_ino(c->from) == c->ino_from, "pipes to cat were rebuilt");
	UT_CHECK(write(c->to, "child\n", 6) == 6, "write to cat");
}

Test(shared, pipe_to_outside_cat)
{
	ut_protect_existing();
	int in[2], out[2];
	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	pid_t cat = fork();
	if (cat == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execlp("cat", "cat", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	struct cat_case c = { in[1], out[0], ut_ino(in[1]), ut_ino(out[0]) };
	ut_prepare();
	pid_t pid = ut_child(cat_child, &c);
	fdremap_finish();
	ut_wait(pid);
	cr_assert_eq(write(in[1], "parent\n", 7), 7);
	close(in[1]);
	char buf[64] = "";
	size_t got = 0;
	ssize_t r;
	while ((r = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)r;
	buf[got] = 0;
	cr_assert_str_eq(buf, "child\nparent\n");
	waitpid(cat, NULL, 0);
}

static int accept_one(int ls)
{
	struct pollfd pfd = { ls, POLLIN, 0 };
	if (poll(&pfd, 1, 5000) != 1)
		return -1;
	return accept(ls, NULL, NULL);
}

static void tcp_child(void *arg)
{
	int ls = *(int *)arg;
	int a = accept_one(ls);
	UT_CHECK(a >= 0, "child's accept: %s", strerror(errno));
	if (a >= 0)
		UT_CHECK(write(a, "c", 1) == 1, "write");
}

Test(shared, listening_tcp_socket_both_accept)
{
	ut_protect_existing();
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(ls, 8), 0);
	socklen_t l = sizeof a;
	getsockname(ls, (struct sockaddr *)&a, &l);
	unsigned long ino = ut_ino(ls);
	ut_prepare();
	pid_t pid = ut_child(tcp_child, &ls);
	fdremap_finish();
	/* first connection: taken by whoever is first; then the other one */
	int c1 = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(c1, (struct sockaddr *)&a, sizeof a), 0);
	int c2 = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(c2, (struct sockaddr *)&a, sizeof a), 0);
	int mine = accept_one(ls);
	cr_assert(mine >= 0, "parent's accept");
	ut_wait(pid);
	cr_assert_eq(ut_ino(ls), ino);
	/* exactly one of the two clients was served by the child */
	struct pollfd pfd[2] = { { c1, POLLIN, 0 }, { c2, POLLIN, 0 } };
	int served = 0;
	for (int i = 0; i < 200 && served == 0; i++) {
		poll(pfd, 2, 10);
		served = !!(pfd[0].revents & POLLIN) + !!(pfd[1].revents & POLLIN);
	}
	cr_assert_eq(served, 1, "%d clients served by the child, want 1", served);
}

/* ---- NUWA_FDS ------------------------------------------------------------------ */

Test(policy, bad_specs_rejected)
{
	const char *bad[] = { "5=bogus", "x=share", "5=share,", "5", "5=share;7=close", "-1=close",
			      "99999999999=share", "5=share,5=close", "=share", "5==share", ",5=share" };
	char err[256];
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = 0;
		cr_assert_eq(fdremap_parse_spec(bad[i], err, sizeof err), -EINVAL, "accepted \"%s\"", bad[i]);
		cr_assert(strstr(err, "NUWA_FDS") && !strchr(err, '\n'), "message for \"%s\": %s", bad[i], err);
	}
	cr_assert_eq(fdremap_parse_spec("", err, sizeof err), 0);
	cr_assert_eq(fdremap_parse_spec(" 50 = share , 51=RECREATE,52=close,53=auto ", err, sizeof err), 0, "%s", err);
	cr_assert_eq(nuwa_fd_policy(-1, NUWA_FD_SHARE), -EBADF);
	cr_assert_eq(nuwa_fd_policy(0, 9), -EINVAL);
	cr_assert_eq(nuwa_fd_policy(1000, NUWA_FD_SHARE), -EBADF);
}

struct pol_case { int share[2], file, efd, auto_efd; unsigned long share_ino; };

static void policy_child(void *arg)
{
	struct pol_case *c = arg;
	UT_CHECK(ut_ino(c->share[0]) == c->share_ino, "share: pipe rebuilt anyway");
	UT_CHECK(!ut_fd_open(c->efd), "close: eventfd still open");
	UT_CHECK(ut_fd_open(c->auto_efd), "auto eventfd closed");
	/* recreate on a file: own offset */
	UT_CHECK(lseek(c->file, 0, SEEK_CUR) == 3, "reopened file offset %ld", (long)lseek(c->file, 0, SEEK_CUR));
	lseek(c->file, 100, SEEK_SET);
	UT_CHECK(write(c->share[1], "s", 1) == 1, "write shared");
}

Test(policy, nuwa_fds_overrides)
{
	ut_protect_existing();
	struct pol_case c;
	cr_assert_eq(pipe(c.share), 0);
	char tmpl[] = "/tmp/fdr-polXXXXXX";
	c.file = mkstemp(tmpl);
	unlink(tmpl);
	cr_assert_eq(write(c.file, "abc", 3), 3);
	c.efd = eventfd(0, 0);
	c.auto_efd = eventfd(0, 0);
	c.share_ino = ut_ino(c.share[0]);
	char spec[128], err[256];
	snprintf(spec, sizeof spec, "%d=share,%d=recreate,%d=close", c.share[0], c.file, c.efd);
	cr_assert_eq(fdremap_parse_spec(spec, err, sizeof err), 0, "%s", err);
	char desc[8192];
	fdremap_describe(desc, sizeof desc);
	char line[64];
	snprintf(line, sizeof line, "\n%d eventfd close ", c.efd);
	cr_assert(strstr(desc, line), "describe:\n%s", desc);
	snprintf(line, sizeof line, "\n%d file reopen ", c.file);
	cr_assert(strstr(desc, line), "describe:\n%s", desc);
	snprintf(line, sizeof line, "\n%d pipe share ", c.share[0]);
	cr_assert(strstr(desc, line), "describe:\n%s", desc);
	snprintf(line, sizeof line, "\n%d eventfd recreate ", c.auto_efd);
	cr_assert(strstr(desc, line), "describe:\n%s", desc);
	ut_prepare();
	pid_t pid = ut_child(policy_child, &c);
	fdremap_finish();
	ut_wait(pid);
	cr_assert_eq(lseek(c.file, 0, SEEK_CUR), 3, "the child's seek moved the parent's offset");
	char b;
	cr_assert_eq(read(c.share[0], &b, 1), 1, "the shared pipe carries the child's byte");
	cr_assert(ut_fd_open(c.efd));
}

/* ---- leaks: 200 rounds with 50 channels ------------------------------------------------------ */

static void rounds_child(void *arg)
{
	int *want = arg;
	UT_CHECK(ut_count_fds() == *want, "child has %d descriptors, parent %d", ut_count_fds(), *want);
}

Test(leaks, rounds_200_with_50_channels, .timeout = 120)
{
	ut_protect_existing();
	int first = -1;
	for (int i = 0; i < 50; i++) {
		int fd[2];
		switch (i % 5) {
		case 0: pipe(fd); write(fd[1], "abc", 3); break;
		case 1: socketpair(AF_UNIX, SOCK_STREAM, 0, fd); write(fd[0], "abc", 3); break;
		case 2: socketpair(AF_UNIX, SOCK_DGRAM, 0, fd); send(fd[0], "abc", 3, 0); break;
		case 3: fd[0] = eventfd(3, 0); break;
		case 4: fd[0] = dup(first); break;
		}
		if (first < 0)
			first = fd[0];
	}
	int before = ut_count_fds();
	for (int r = 0; r < 200; r++) {
		int want = before;
		ut_prepare();
		pid_t pid = ut_child(rounds_child, &want);
		fdremap_finish();
		ut_wait(pid);
		cr_assert_eq(ut_count_fds(), before, "round %d: %d descriptors, was %d", r, ut_count_fds(), before);
	}
	char b[8];
	cr_assert_eq(read(first, b, 8), 3, "data queued before the rounds");
}

/* ---- libnuwa's own descriptors survive "close everything above 2" ------------------------------- */

static int own_survives(int how)
{
	pid_t pid = fork();
	if (pid == 0) {
		int own = fcntl(eventfd(0, 0), F_DUPFD_CLOEXEC, 900);
		nuwa_own_fd(own);
		int other = eventfd(0, 0), other_high = fcntl(other, F_DUPFD, 950);
		if (how == 0)
			for (int fd = 3; fd < 1024; fd++)
				close(fd);
		else if (how == 1)
			close_range(3, ~0u, 0);
		else if (how == 2)
			closefrom(3);
		else
			close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
		int ok = fcntl(own, F_GETFD) == FD_CLOEXEC;
		if (how == 3)
			ok = ok && fcntl(other, F_GETFD) == FD_CLOEXEC && fcntl(other_high, F_GETFD) == FD_CLOEXEC;
		else
			ok = ok && fcntl(other, F_GETFD) == -1 && fcntl(other_high, F_GETFD) == -1;
		_exit(ok ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

Test(own, survive_close_loop) { cr_assert(own_survives(0)); }
Test(own, survive_close_range) { cr_assert(own_survives(1)); }
Test(own, survive_closefrom) { cr_assert(own_survives(2)); }
Test(own, close_range_cloexec) { cr_assert(own_survives(3)); }

Test(own, own_fds_not_reported_nor_rebuilt)
{
	ut_protect_existing();
	int own = fcntl(eventfd(0, 0), F_DUPFD_CLOEXEC, 900);
	nuwa_own_fd(own);
	char desc[8192];
	fdremap_describe(desc, sizeof desc);
	char line[32];
	snprintf(line, sizeof line, "%d ", own);
	cr_assert(!strstr(desc, line), "own fd reported:\n%s", desc);
	cr_assert_eq(nuwa_fd_policy(own, NUWA_FD_CLOSE), -EBADF);
	unsigned long ino = ut_ino(own);
	(void)ino;
	ut_prepare();
	pid_t pid = ut_child(NULL, NULL);
	fdremap_finish();
	ut_wait(pid);
}

/* A thread frozen inside the loader (fdremap_loader_frozen(1)): a regular
 * file open read-only, close-on-exec, at offset 0 — what ld.so holds
 * between its open() of an object and its read() of the header — gets a
 * description of its own in the child, at 0; the same file already read
 * from, or without close-on-exec, stays shared as fork() shares it.  And
 * nothing is reopened when no thread is in the loader. */
struct loader_case { int fresh, read_from, inherit; };

static void loader_child(void *arg)
{
	struct loader_case *c = arg;
	char b[4];
	UT_CHECK(read(c->fresh, b, 4) == 4 && !memcmp(b, "\177ELF", 4), "own offset at 0");
	UT_CHECK(lseek(c->read_from, 0, SEEK_CUR) == 4, "the file read from: shared offset 4");
	UT_CHECK(lseek(c->inherit, 0, SEEK_CUR) == 0, "without close-on-exec: offset 0");
	UT_CHECK(read(c->inherit, b, 2) == 2, "read the shared one");
}

static void loader_child_not_frozen(void *arg)
{
	struct loader_case *c = arg;
	char b[4];
	UT_CHECK(read(c->fresh, b, 4) == 4, "read the shared file");
}

Test(shared, file_of_a_thread_frozen_in_the_loader)
{
	ut_protect_existing();
	const char *exe = "/proc/self/exe";
	struct loader_case c = { open(exe, O_RDONLY | O_CLOEXEC), open(exe, O_RDONLY | O_CLOEXEC),
	                         open(exe, O_RDONLY) };
	cr_assert(c.fresh >= 0 && c.read_from >= 0 && c.inherit >= 0);
	char b[4];
	cr_assert_eq(read(c.read_from, b, 4), 4);
	fdremap_loader_frozen(1);
	ut_prepare();
	pid_t pid = ut_child(loader_child, &c);
	fdremap_finish();
	fdremap_loader_frozen(0);
	ut_wait(pid);
	cr_expect_eq(lseek(c.fresh, 0, SEEK_CUR), 0, "the parent's offset moved: the child read "
	             "through the parent's description");
	cr_expect_eq(lseek(c.inherit, 0, SEEK_CUR), 2, "the shared description's offset");

	/* no thread in the loader: shared as fork() shares it */
	ut_prepare();
	pid = ut_child(loader_child_not_frozen, &c);
	fdremap_finish();
	ut_wait(pid);
	cr_expect_eq(lseek(c.fresh, 0, SEEK_CUR), 4, "not shared without a thread in the loader");
	close(c.fresh);
	close(c.read_from);
	close(c.inherit);
}
