/* Is a task asleep in the kernel, inside a system call, where a signal
 * reaches it at once?  The kernel says so in /proc (proc(5)):
 *
 *   /proc/self/task/TID/stat     field 3: R running, S interruptible sleep,
 *                                D uninterruptible sleep, T/t stopped, …
 *   /proc/self/task/TID/syscall  "NR ARG1 … ARG6 SP PC" while the task is
 *                                blocked in system call NR, "-1 SP PC" while
 *                                it is blocked outside one (a page fault),
 *                                "running" while it is on a CPU.  The kernel
 *                                reads the registers only while the task
 *                                stays off-CPU (fs/proc/base.c
 *                                proc_pid_syscall, task_current_syscall).
 *
 * Only S counts as idle.  A task in S is in TASK_INTERRUPTIBLE: a signal
 * wakes it, the system call returns or is set up to restart, and the park
 * handler runs on the way back to user space — the thread parks at once,
 * exactly as one blocked in an interposed freeze point.  A task in D
 * (TASK_UNINTERRUPTIBLE: disk I/O, page-in, vfork) takes the signal only
 * when the operation ends, and T/t (stopped, traced) not before it is
 * continued: those are waited for like a running thread.
 *
 * The two files are read one after the other, so a task may have run in
 * between: the same window as a freeze-point wrapper that clears its idle
 * word just after the control thread read it.  Either way the thread is
 * parked where the signal finds it, which is always safe.
 *
 * Called by the control thread while other threads may be parked: raw
 * system calls into stack buffers, no malloc, no stdio. */
#include <fcntl.h>

#include "nuwa_int.h"

/* "/proc/self/task/TID/LEAF" into buf (64 bytes are plenty). */
static void task_path(char *buf, pid_t tid, const char *leaf)
{
	static const char pfx[] = "/proc/self/task/";
	char digits[12];
	int nd = 0;
	unsigned v = (unsigned)tid;
	do
		digits[nd++] = (char)('0' + v % 10);
	while ((v /= 10) && nd < (int)sizeof digits);
	char *o = buf;
	for (const char *p = pfx; *p;)
		*o++ = *p++;
	while (nd)
		*o++ = digits[--nd];
	*o++ = '/';
	while (*leaf)
		*o++ = *leaf++;
	*o = 0;
}

/* The first len-1 bytes of the file, NUL-terminated; length or -1. */
static long read_head(const char *path, char *buf, long len)
{
	int fd = (int)sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	long n = sys_read(fd, buf, len - 1);
	sys_close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

char task_state(pid_t tid)
{
	char path[64], buf[128];
	task_path(path, tid, "stat");
	/* "TID (COMM) S …": COMM is at most 15 bytes but may hold spaces and
	 * parentheses; every field after it is a number, so the last ')' in
	 * the first 128 bytes ends COMM. */
	long n = read_head(path, buf, sizeof buf);
	char *close = NULL;
	for (long i = 0; i < n; i++)
		if (buf[i] == ')')
			close = buf + i;
	if (!close || close[1] != ' ' || !close[2])
		return '?';
	return close[2];
}

long task_syscall_asleep(pid_t tid)
{
	if (task_state(tid) != 'S')
		return -1;
	char path[64], buf[32];
	task_path(path, tid, "syscall");
	if (read_head(path, buf, sizeof buf) <= 0 || buf[0] < '0' || buf[0] > '9')
		return -1; /* "running", or "-1 …": not inside a system call */
	long nr = 0;
	for (const char *p = buf; *p >= '0' && *p <= '9'; p++)
		nr = nr * 10 + (*p - '0');
	return nr;
}

/* "SigBlk:\t<16 hex digits>" of /proc/self/task/TID/status (proc(5)): the
 * mask the kernel really applies to the task, whoever set it (a raw
 * rt_sigprocmask included; libnuwa's wrappers never leave the park signal
 * in it).  1 if sig is in it, with the 16 digits copied to hex (17 bytes),
 * 0 if not, -1 if the file cannot be read. */
int task_blocks_signal(pid_t tid, int sig, char *hex)
{
	return task_sig_line(tid, "\nSigBlk:\t", sig, hex);
}

/* Likewise for any mask line of the status file ("\nSigPnd:\t", …). */
int task_sig_line(pid_t tid, const char *key, int sig, char *hex)
{
	char path[64], buf[4096];
	task_path(path, tid, "status");
	long n = read_head(path, buf, sizeof buf);
	long klen = 0;
	while (key[klen])
		klen++;
	for (long i = 0; i + klen + 16 <= n; i++) {
		long k = 0;
		while (key[k] && buf[i + k] == key[k])
			k++;
		if (key[k])
			continue;
		const char *p = buf + i + k;
		unsigned long long m = 0;
		for (int d = 0; d < 16; d++) {
			char c = p[d];
			hex[d] = c;
			m = m << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
		}
		hex[16] = 0;
		return (m >> (sig - 1)) & 1;
	}
	return -1;
}

/* Names of the system calls programs sleep in, for `nuwa status` and the
 * freeze error; others are shown by number. */
static const char *const sys_names[] = {
	[SYS_read] = "read", [SYS_readv] = "readv", [SYS_pread64] = "pread64",
	[SYS_write] = "write", [SYS_writev] = "writev", [SYS_poll] = "poll",
	[SYS_ppoll] = "ppoll", [SYS_select] = "select", [SYS_pselect6] = "pselect6",
	[SYS_epoll_wait] = "epoll_wait", [SYS_epoll_pwait] = "epoll_pwait",
	[SYS_epoll_pwait2] = "epoll_pwait2", [SYS_futex] = "futex",
	[SYS_nanosleep] = "nanosleep", [SYS_clock_nanosleep] = "clock_nanosleep",
	[SYS_pause] = "pause", [SYS_rt_sigsuspend] = "rt_sigsuspend",
	[SYS_rt_sigtimedwait] = "rt_sigtimedwait", [SYS_accept] = "accept",
	[SYS_accept4] = "accept4", [SYS_connect] = "connect", [SYS_recvfrom] = "recvfrom",
	[SYS_recvmsg] = "recvmsg", [SYS_recvmmsg] = "recvmmsg", [SYS_sendto] = "sendto",
	[SYS_sendmsg] = "sendmsg", [SYS_wait4] = "wait4", [SYS_waitid] = "waitid",
	[SYS_flock] = "flock", [SYS_fcntl] = "fcntl", [SYS_msgrcv] = "msgrcv",
	[SYS_semop] = "semop", [SYS_semtimedop] = "semtimedop",
	[SYS_io_getevents] = "io_getevents", [SYS_io_uring_enter] = "io_uring_enter",
	[SYS_mq_timedreceive] = "mq_timedreceive", [SYS_openat] = "openat",
	[SYS_open] = "open",
};

void syscall_name(long nr, char *out, size_t len)
{
	const char *s = nr >= 0 && nr < (long)(sizeof sys_names / sizeof sys_names[0])
	                ? sys_names[nr] : NULL;
	char num[24];
	if (!s) {
		/* "syscall NR" without snprintf */
		char d[20];
		int nd = 0;
		unsigned long v = (unsigned long)(nr < 0 ? 0 : nr);
		do
			d[nd++] = (char)('0' + v % 10);
		while ((v /= 10) && nd < (int)sizeof d);
		char *o = num;
		for (const char *p = "syscall "; *p;)
			*o++ = *p++;
		while (nd)
			*o++ = d[--nd];
		*o = 0;
		s = num;
	}
	size_t i = 0;
	for (; len && i < len - 1 && s[i]; i++)
		out[i] = s[i];
	if (len)
		out[i] = 0;
}
