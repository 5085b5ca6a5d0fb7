/* Small helpers shared by all of libnuwa: symbol lookup, futexes, a lock for
 * libnuwa's own data, and timespec arithmetic for transparent retries. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nuwa_int.h"

void *nuwa_dlnext(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p) {
		/* Cannot continue: the wrapper has nothing to call.  Say why. */
		static const char msg[] = "libnuwa: fatal: no next definition of ";
		(void)!write(2, msg, sizeof msg - 1);
		(void)!write(2, name, strlen(name));
		(void)!write(2, "\n", 1);
		abort();
	}
	return p;
}

long nuwa_futex_wait(volatile int *addr, int val, const struct timespec *rel)
{
	return syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

long nuwa_futex_wake(volatile int *addr, int n)
{
	return syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Drepper's three-state futex mutex ("Futexes are tricky", mutex3):
 * 0 free, 1 locked, 2 locked with waiters. */
void nuwa_lock(nuwa_lock_t *l)
{
	int c = 0;
	if (__atomic_compare_exchange_n(&l->v, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (c != 2)
		c = __atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		nuwa_futex_wait(&l->v, 2, NULL);
		c = __atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE);
	}
}

void nuwa_unlock(nuwa_lock_t *l)
{
	if (__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2)
		nuwa_futex_wake(&l->v, 1);
}

struct timespec ts_now(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t;
}

struct timespec ts_add(struct timespec a, struct timespec b)
{
	a.tv_sec += b.tv_sec;
	a.tv_nsec += b.tv_nsec;
	if (a.tv_nsec >= 1000000000L) {
		a.tv_sec++;
		a.tv_nsec -= 1000000000L;
	}
	return a;
}

struct timespec ts_sub(struct timespec a, struct timespec b)
{
	struct timespec r = { 0, 0 };
	if (ts_cmp(a, b) <= 0)
		return r;
	r.tv_sec = a.tv_sec - b.tv_sec;
	r.tv_nsec = a.tv_nsec - b.tv_nsec;
	if (r.tv_nsec < 0) {
		r.tv_sec--;
		r.tv_nsec += 1000000000L;
	}
	return r;
}

int ts_cmp(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec < b.tv_sec ? -1 : 1;
	return a.tv_nsec < b.tv_nsec ? -1 : a.tv_nsec > b.tv_nsec;
}

int ts_to_ms_remaining(struct timespec deadline)
{
	struct timespec r = ts_sub(deadline, ts_now(CLOCK_MONOTONIC));
	long long ms = (long long)r.tv_sec * 1000 + (r.tv_nsec + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static const char *const fp_names[FP__COUNT] = {
	[FP_BUSY] = "busy",
	[FP_POLL] = "poll", [FP_PPOLL] = "ppoll", [FP_SELECT] = "select",
	[FP_PSELECT] = "pselect", [FP_EPOLL_WAIT] = "epoll_wait",
	[FP_EPOLL_PWAIT] = "epoll_pwait", [FP_COND_WAIT] = "pthread_cond_wait",
	[FP_MUTEX_LOCK] = "pthread_mutex_lock", [FP_RWLOCK] = "pthread_rwlock_lock",
	[FP_JOIN] = "pthread_join", [FP_SEM_WAIT] = "sem_wait",
	[FP_NANOSLEEP] = "nanosleep", [FP_CLOCK_NANOSLEEP] = "clock_nanosleep",
	[FP_SLEEP] = "sleep", [FP_USLEEP] = "usleep", [FP_PAUSE] = "pause",
	[FP_SIGSUSPEND] = "sigsuspend", [FP_SIGWAIT] = "sigwait",
	[FP_ACCEPT] = "accept", [FP_READ] = "read", [FP_RECV] = "recv",
	[FP_WAIT] = "waitpid", [FP_FLOCK] = "flock", [FP_FCNTL_LOCK] = "fcntl(F_SETLKW)",
	[FP_STDIO_READ] = "stdio read", [FP_PTHREAD_CREATE] = "pthread_create",
	[FP_FORK] = "fork", [FP_NUWA_API] = "a nuwa API call",
	[FP_KERNEL] = "a system call",
};

const char *freeze_point_name(int fp)
{
	if (fp < 0 || fp >= FP__COUNT || !fp_names[fp])
		return "?";
	return fp_names[fp];
}

/* A task's name from /proc/self/task/TID/comm, without malloc ("" if gone). */
void nuwa_task_comm(pid_t tid, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
	int fd = (int)syscall(SYS_open, path, O_RDONLY | O_CLOEXEC);
	long n = fd >= 0 ? syscall(SYS_read, fd, out, len - 1) : -1;
	if (fd >= 0)
		syscall(SYS_close, fd);
	if (n < 0)
		n = 0;
	out[n] = 0;
	if (n && out[n - 1] == '\n')
		out[n - 1] = 0;
}
