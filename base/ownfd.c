/* libnuwa's own descriptors: the control thread's eventfd, the control
 * socket and its clients, one pidfd per live child.
 *
 * They live at high numbers, out of the way of programs that expect low
 * ones or dup2 onto fixed numbers.  The registry is written by libnuwa
 * (inside a critical section, so never parked half-way) and read without
 * the lock by the close() wrappers and by fdremap, which neither reports
 * nor rebuilds them. */
#include <fcntl.h>
#include <sys/resource.h>

#include "base.h"
#include "sys.h"

#define NUWA_FD_BASE 1000   /* libnuwa's descriptors live above this */
#define MAX_OWN 2048        /* control socket clients + one pidfd per live child */

static nuwa_lock_t own_lock;
static int own_fds[MAX_OWN];
static int n_own;

/* F_DUPFD fails with EINVAL when the minimum is at or over RLIMIT_NOFILE:
 * then pick a lower floor.  On failure the descriptor stays where it was. */
int nuwa_fd_high(int fd)
{
	if (fd < 0)
		return fd;
	struct rlimit rl;
	long min = NUWA_FD_BASE;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur <= min + 64)
		min = (long)rl.rlim_cur / 2;
	int hi = (int)sys_fcntl(fd, F_DUPFD_CLOEXEC, min);
	if (hi < 0)
		return fd;
	sys_close(fd);
	return hi;
}

int nuwa_own_fd(int fd)
{
	if (fd < 0)
		return fd;
	nuwa_cs_enter();
	nuwa_lock(&own_lock);
	int i;
	for (i = 0; i < n_own && own_fds[i] != fd; i++)
		;
	if (i == n_own && n_own < MAX_OWN)
		__atomic_store_n(&own_fds[n_own++], fd, __ATOMIC_RELEASE);
	else if (i == n_own)
		nuwa_warn("more than %d own descriptors; fd %d unprotected", MAX_OWN, fd);
	nuwa_unlock(&own_lock);
	nuwa_cs_leave();
	return fd;
}

void nuwa_own_fd_forget(int fd)
{
	nuwa_cs_enter();
	nuwa_lock(&own_lock);
	for (int i = 0; i < n_own; i++)
		if (own_fds[i] == fd) {
			own_fds[i] = own_fds[n_own - 1];
			n_own--;
			break;
		}
	nuwa_unlock(&own_lock);
	nuwa_cs_leave();
}

void nuwa_own_fd_drop(int fd)
{
	if (fd < 0)
		return;
	nuwa_own_fd_forget(fd);
	sys_close(fd);
}

/* The child of the program's own fork(): only the forking thread came
 * along, and the lock may have been held by the control thread at that
 * instant (it registers a pidfd for each fork child the program makes):
 * free it before the child's first use (core/fork.c, APP_FORK). */
void nuwa_own_fd_after_fork(void)
{
	own_lock.v = 0;
}

/* Lock-free: called by close() on every application close.  A racing
 * forget can only make us see a stale own fd, never miss a live one. */
int nuwa_is_own_fd(int fd)
{
	if (fd < 0)
		return 0;
	int n = __atomic_load_n(&n_own, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++)
		if (__atomic_load_n(&own_fds[i], __ATOMIC_RELAXED) == fd)
			return 1;
	return 0;
}

int nuwa_own_fds(int *out, int max)
{
	int n = __atomic_load_n(&n_own, __ATOMIC_ACQUIRE), k = 0;
	for (int i = 0; i < n && k < max; i++)
		out[k++] = own_fds[i];
	return k;
}
