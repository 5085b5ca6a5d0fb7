/* "The child is ready": the channel between a parent and a child it forks,
 * so that the parent hands out a child only once it really runs, and a
 * child nobody was told about cannot outlive its parent.
 *
 * A SOCK_SEQPACKET socketpair made before the fork.  The child keeps one
 * end and
 *   1. at once: prctl(PR_SET_PDEATHSIG, SIGKILL), then checks getppid():
 *      the kernel sends that signal to the child when the *thread* that
 *      forked it dies (kernel/exit.c forget_original_parent), here the
 *      parent's main thread, which stays parked in its park handler while
 *      the parent is a template; a parent that died before the prctl is
 *      seen by getppid() no longer being its pid;
 *   2. once ready (every thread resumed, none released yet), its control
 *      thread sends one byte and waits for the parent's release: one byte
 *      back (the parent has told its requester); end of file instead (the
 *      parent closed it without a word, or died) ends the child, none of
 *      whose threads has run since the freeze;
 *   3. released at GO, the leader — the task the parent forked, which
 *      alone carries PDEATHSIG (it is per task: prctl acts on the caller)
 *      — clears it and says so with one byte, before it returns to the
 *      program;
 * and the parent, on its end: one byte = ready; end of file = the child
 * died (or closed its end) before it was ready, and its pidfd says how.
 * The release waits for the child's answer (bounded): a parent that exits
 * right after releasing (nuwa stop) must not take a released child along
 * because it had not yet cleared its PDEATHSIG.
 *
 * Raw system calls only: the parent side runs on a template's control
 * thread while every program thread is parked. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "base.h"
#include "sys.h"

int nuwa_ready_open(int sv[2])
{
	int p[2];
	long r = sys_socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p);
	if (r < 0)
		return (int)r;
	sv[0] = nuwa_own_fd(nuwa_fd_high(p[0]));
	sv[1] = nuwa_own_fd(nuwa_fd_high(p[1]));
	return 0;
}

void nuwa_ready_child_arm(int peer, pid_t parent)
{
	nuwa_own_fd_drop(peer);   /* the parent's end, copied by fork */
	sys_prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((pid_t)sys_getppid() != parent)
		sys_exit_group(128 + SIGKILL);   /* the parent is gone already */
}

void nuwa_ready_child_ready(int fd)
{
	char b = 'R';
	long r;
	while (sys_sendto(fd, &b, 1, MSG_NOSIGNAL) == -EINTR)
		;
	while ((r = sys_recvfrom(fd, &b, 1, 0)) == -EINTR)
		;
	if (r != 1)
		sys_exit_group(128 + SIGKILL);   /* not released: nobody knows us */
}

void nuwa_ready_child_go(int fd)
{
	sys_prctl(PR_SET_PDEATHSIG, 0);
	char b = 'A';
	sys_sendto(fd, &b, 1, MSG_NOSIGNAL);
}

int nuwa_ready_wait(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec t = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	long r;
	while ((r = sys_ppoll(&p, 1, &t)) == -EINTR)
		;
	if (r == 0)
		return -ETIMEDOUT;
	char b;
	while ((r = sys_recvfrom(fd, &b, 1, MSG_DONTWAIT)) == -EINTR)
		;
	return r == 1 ? 1 : 0;
}

void nuwa_child_release(struct nuwa_child *c)
{
	if (!c || c->ready_fd < 0)
		return;
	char b = 'G';
	if (sys_sendto(c->ready_fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
		nuwa_ready_wait(c->ready_fd, 1000);   /* its 'A', or its death */
	nuwa_own_fd_drop(c->ready_fd);
	c->ready_fd = -1;
}
