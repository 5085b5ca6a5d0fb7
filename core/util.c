/* Names of freeze points, and a task's name, for messages and status. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nuwa_int.h"

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
	int fd = (int)sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	long n = fd >= 0 ? sys_read(fd, out, len - 1) : -1;
	if (fd >= 0)
		sys_close(fd);
	if (n < 0)
		n = 0;
	out[n] = 0;
	if (n && out[n - 1] == '\n')
		out[n - 1] = 0;
}
