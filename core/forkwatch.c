/* The program's own fork() children and their control-socket files.
 *
 * The child of a plain fork() makes its socket, DIR/PID.sock, on its own
 * control thread a moment after the fork (ctlsock_after_app_fork: lazily,
 * so that fork()+exec() costs no bind()); a program exec()ed with libnuwa
 * still preloaded makes one under the same pid.  A process that ends with
 * _exit(), a signal or SIGKILL never runs the destructor that removes it:
 * the parent, which knows the pid from the fork() wrapper, removes it once
 * the child has ended, if it is stale (ctlsock_forget_socket: only a socket
 * of ours that nobody listens on, so a new process that got the pid keeps
 * its own).
 *
 *  - The wrapper queues the pid (lock-free, any thread: a slot taken with
 *    a compare-and-swap) and wakes the control thread.
 *  - The control thread watches it: with a pidfd (pidfd_open, Linux 5.3),
 *    readable once the process has exited, even before the program reaps
 *    it (a zombie keeps its pid, so nobody else can have bound the name);
 *    never waited through: the child is the program's.  Past PIDFD_MAX
 *    descriptors (each is one of the program's RLIMIT_NOFILE), a child is
 *    watched by pid alone, with waitid(P_PID, WNOWAIT) every CHECK_MS: the
 *    kernel says whether it is a zombie without reaping it, and ECHILD once
 *    the program has reaped it.
 *  - Past WATCH_MAX children alive at once, or when the queue is full, a
 *    child is not watched: its file may stay until `nuwa list` or a process
 *    that gets the pid again removes it (docs/limits.md).
 * Control thread only, but forkwatch_note(). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ctlsock.h"
#include "nuwa_int.h"

#define QUEUE 2048
#define PIDFD_MAX 256
#define WATCH_MAX 2048
#define CHECK_MS 500

static pid_t queue[QUEUE];       /* 0: free */
static int n_pidfd, n_bypid;     /* entries of the list, by how they are watched */
static long long next_check;

static int dropped;

void forkwatch_note(pid_t pid)
{
	for (int i = 0; i < QUEUE; i++) {
		pid_t zero = 0;
		if (__atomic_compare_exchange_n(&queue[i], &zero, pid, 0, __ATOMIC_RELEASE,
		                                __ATOMIC_RELAXED)) {
			control_wake();
			return;
		}
	}
	__atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
}

static void gone(pid_t pid)
{
	ctlsock_forget_socket(pid);
}

static int pidfd_budget(void)
{
	struct rlimit rl;
	int max = PIDFD_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 8 < (rlim_t)max)
		max = (int)(rl.rlim_cur / 8);
	return max;
}

void forkwatch_collect(void)
{
	int budget = -1, lost = __atomic_exchange_n(&dropped, 0, __ATOMIC_RELAXED);
	if (lost)
		nuwa_debug("fork children: %d not watched (queue full)", lost);
	for (int i = 0; i < QUEUE; i++) {
		if (!__atomic_load_n(&queue[i], __ATOMIC_RELAXED))
			continue;   /* a plain load: the scan is cheap */
		pid_t pid = __atomic_exchange_n(&queue[i], 0, __ATOMIC_ACQUIRE);
		if (pid <= 0)
			continue;
		if (n_pidfd + n_bypid >= WATCH_MAX) {
			nuwa_debug("fork child %d not watched: %d already", pid, WATCH_MAX);
			continue;
		}
		if (budget < 0)
			budget = pidfd_budget();
		long fd = n_pidfd < budget ? SC(SYS_pidfd_open, pid, 0, 0, 0, 0, 0) : -EMFILE;
		if (fd == -ESRCH) {
			gone(pid);   /* already ended and reaped */
			continue;
		}
		if (!nuwa_child_add(pid, fd >= 0 ? (int)fd : -1, NUWA_CHILD_FORK))
			continue;
		if (fd >= 0) {
			n_pidfd++;
		} else if (!n_bypid++) {
			next_check = nuwa_now_ms() + CHECK_MS;
		}
	}
}

/* Its pidfd is readable: it has exited (the program reaps it, not us). */
void forkwatch_exited(struct nuwa_child *c)
{
	pid_t pid = c->pid;
	if (c->pidfd >= 0)
		n_pidfd--;
	else
		n_bypid--;
	nuwa_child_remove(c);
	gone(pid);
}

int forkwatch_timeout_ms(void)
{
	if (!n_bypid)
		return -1;
	long long left = next_check - nuwa_now_ms();
	return left < 0 ? 0 : left > CHECK_MS ? CHECK_MS : (int)left;
}

/* The children watched by pid: a zombie, or reaped already (ECHILD). */
void forkwatch_check(void)
{
	if (!n_bypid || nuwa_now_ms() < next_check)
		return;
	next_check = nuwa_now_ms() + CHECK_MS;
	for (int i = nuwa_children_n() - 1; i >= 0; i--) {
		struct nuwa_child *c = nuwa_child_at(i);
		if (c->kind != NUWA_CHILD_FORK || c->pidfd >= 0)
			continue;
		siginfo_t si;
		memset(&si, 0, sizeof si);
		long r = sys_waitid(P_PID, c->pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL);
		if (r == -ECHILD || (r == 0 && si.si_pid == c->pid))
			forkwatch_exited(c);
	}
}

/* In a new process (a spawn, or the program's fork()): the queue and the
 * entries were the parent's (nuwa_children_forget() drops the entries). */
void forkwatch_forget(void)
{
	for (int i = 0; i < QUEUE; i++)
		queue[i] = 0;
	n_pidfd = n_bypid = 0;
}
