/* rawsleep [cond] — 64 threads asleep in raw system calls, outside every
 * libnuwa wrapper, as the Go runtime, Rust's std and jemalloc sleep:
 *
 *   40  syscall(SYS_futex, FUTEX_WAIT) without a timeout, until main wakes them
 *    6  raw FUTEX_WAIT with a relative timeout, in a loop of 300 ms waits
 *    6  raw FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline, same
 *    4  raw nanosleep of 300 ms, in a loop
 *    4  raw epoll_wait(-1) on a pipe of their own, until main writes a byte
 *    4  raw read(2) on a pipe of their own, same
 *
 * "cond": the same 64 threads in pthread_cond_wait instead (the reference:
 * a freeze must be as quick for both).
 *
 * A signal handler with SA_RESTART (libnuwa's park handler) interrupts
 * them; the kernel's rules then decide what each call returns
 * (arch/x86/kernel/signal.c handle_signal): an untimed FUTEX_WAIT and a pipe
 * read are restarted (-ERESTARTSYS), a timed futex wait and nanosleep
 * return EINTR (-ERESTART_RESTARTBLOCK), epoll_wait returns EINTR
 * (-ERESTARTNOHAND).  The threads do what the runtimes do: retry on EINTR
 * with the time that is left.  Checked in the original and every clone:
 * no call fails otherwise, an untimed wait or a pipe read never sees
 * EINTR, a timed wait never ends before its deadline, every thread is woken
 * by its own process's main after EOF and reads the byte main wrote.
 */
#include "scn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NFUTEX 40
#define NTIMED 6
#define NBITSET 6
#define NSLEEP 4
#define NEPOLL 4
#define NREAD 4
#define NTHREADS (NFUTEX + NTIMED + NBITSET + NSLEEP + NEPOLL + NREAD)
#define PERIOD_NS 300000000LL

static volatile int futex_word[NFUTEX];
static volatile int stop;          /* set by main after EOF: timed loops end */
static int ep_pipe[NEPOLL][2], ep_fd[NEPOLL], rd_pipe[NREAD][2];
static volatile int entered;

static pthread_mutex_t cmx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ccv = PTHREAD_COND_INITIALIZER;
static int cgo;

static long raw_futex(volatile int *w, int op, int val, const struct timespec *t, int bits)
{
	return syscall(SYS_futex, w, op, val, t, NULL, bits);
}

static void *futex_waiter(void *a)
{
	volatile int *w = &futex_word[(intptr_t)a];
	__atomic_add_fetch(&entered, 1, __ATOMIC_SEQ_CST);
	while (!*w) {
		long r = raw_futex(w, FUTEX_WAIT_PRIVATE, 0, NULL, 0);
		if (r < 0 && errno != EAGAIN) {
			scn_fail("raw untimed FUTEX_WAIT returned %s (the kernel restarts it)",
			         strerror(errno));
			break;
		}
	}
	return NULL;
}

/* One wait on a word nobody wakes until its deadline, retried on EINTR with
 * the time left, as Rust's std and Go's runtime do.  Must not end early. */
static void timed_wait(int bitset)
{
	static int never;
	int64_t deadline = scn_mono_ns() + PERIOD_NS;
	for (;;) {
		int64_t left = deadline - scn_mono_ns();
		if (left <= 0)
			break;
		long r;
		if (bitset) {
			struct timespec abs = scn_ts_from_ns(deadline);
			r = raw_futex(&never, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, FUTEX_BITSET_MATCH_ANY);
		} else {
			struct timespec rel = scn_ts_from_ns(left);
			r = raw_futex(&never, FUTEX_WAIT_PRIVATE, 0, &rel, 0);
		}
		if (r == 0 || (r < 0 && errno == EINTR))
			continue; /* woken or interrupted: wait for what is left */
		if (errno != ETIMEDOUT)
			scn_fail("raw timed FUTEX_WAIT%s returned %s", bitset ? "_BITSET" : "",
			         strerror(errno));
		break;
	}
	if (scn_mono_ns() < deadline)
		scn_fail("raw timed FUTEX_WAIT%s ended before its deadline", bitset ? "_BITSET" : "");
}

static void *timed_waiter(void *a)
{
	__atomic_add_fetch(&entered, 1, __ATOMIC_SEQ_CST);
	while (!stop)
		timed_wait((int)(intptr_t)a);
	return NULL;
}

static void *sleeper(void *a)
{
	(void)a;
	__atomic_add_fetch(&entered, 1, __ATOMIC_SEQ_CST);
	while (!stop) {
		int64_t t0 = scn_mono_ns();
		struct timespec req = scn_ts_from_ns(PERIOD_NS), rem;
		long r;
		while ((r = syscall(SYS_nanosleep, &req, &rem)) < 0 && errno == EINTR)
			req = rem; /* the classic loop: sleep what remains */
		if (r < 0)
			scn_fail("raw nanosleep returned %s", strerror(errno));
		else if (scn_mono_ns() - t0 < PERIOD_NS)
			scn_fail("raw nanosleep ended early");
	}
	return NULL;
}

static void read_byte(int fd, char want, const char *what)
{
	char c = 0;
	long r = syscall(SYS_read, fd, &c, 1);
	if (r != 1 || c != want)
		scn_fail("%s: raw read returned %ld (%s), byte %d want %d", what, r,
		         r < 0 ? strerror(errno) : "-", c, want);
}

static void *epoll_waiter(void *a)
{
	int i = (int)(intptr_t)a;
	struct epoll_event ev;
	long r;
	__atomic_add_fetch(&entered, 1, __ATOMIC_SEQ_CST);
	while ((r = syscall(SYS_epoll_wait, ep_fd[i], &ev, 1, -1)) < 0 && errno == EINTR)
		; /* epoll_wait is never restarted after a handler: retry */
	if (r != 1 || ev.data.u32 != (unsigned)i)
		scn_fail("raw epoll_wait returned %ld (%s), data %u want %d", r,
		         r < 0 ? strerror(errno) : "-", ev.data.u32, i);
	read_byte(ep_pipe[i][0], (char)('e' + i), "epoll waiter");
	return NULL;
}

static void *pipe_reader(void *a)
{
	int i = (int)(intptr_t)a;
	__atomic_add_fetch(&entered, 1, __ATOMIC_SEQ_CST);
	/* no EINTR loop: with SA_RESTART the kernel restarts a pipe read */
	read_byte(rd_pipe[i][0], (char)('r' + i), "pipe reader");
	return NULL;
}

static void *cond_waiter(void *a)
{
	(void)a;
	pthread_mutex_lock(&cmx);
	__atomic_add_fetch(&entered, 1, __ATOMIC_SEQ_CST);
	while (!cgo)
		pthread_cond_wait(&ccv, &cmx);
	pthread_mutex_unlock(&cmx);
	return NULL;
}

static void start_raw(pthread_t *t)
{
	int n = 0;
	for (int i = 0; i < NFUTEX; i++)
		t[n++] = scn_thread(futex_waiter, (void *)(intptr_t)i);
	for (int i = 0; i < NTIMED; i++)
		t[n++] = scn_thread(timed_waiter, (void *)0);
	for (int i = 0; i < NBITSET; i++)
		t[n++] = scn_thread(timed_waiter, (void *)1);
	for (int i = 0; i < NSLEEP; i++)
		t[n++] = scn_thread(sleeper, NULL);
	for (int i = 0; i < NEPOLL; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)i };
		if (pipe2(ep_pipe[i], O_CLOEXEC) || (ep_fd[i] = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    epoll_ctl(ep_fd[i], EPOLL_CTL_ADD, ep_pipe[i][0], &ev))
			scn_fail("epoll setup: %s", strerror(errno));
		t[n++] = scn_thread(epoll_waiter, (void *)(intptr_t)i);
	}
	for (int i = 0; i < NREAD; i++) {
		if (pipe2(rd_pipe[i], O_CLOEXEC))
			scn_fail("pipe: %s", strerror(errno));
		t[n++] = scn_thread(pipe_reader, (void *)(intptr_t)i);
	}
}

static void wake_raw(void)
{
	stop = 1;
	for (int i = 0; i < NFUTEX; i++) {
		futex_word[i] = 1;
		raw_futex(&futex_word[i], FUTEX_WAKE_PRIVATE, 1, NULL, 0);
	}
	for (int i = 0; i < NEPOLL; i++) {
		char c = (char)('e' + i);
		if (write(ep_pipe[i][1], &c, 1) != 1)
			scn_fail("write to an epoll pipe: %s", strerror(errno));
	}
	for (int i = 0; i < NREAD; i++) {
		char c = (char)('r' + i);
		if (write(rd_pipe[i][1], &c, 1) != 1)
			scn_fail("write to a read pipe: %s", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	int cond = argc > 1 && !strcmp(argv[1], "cond");
	pthread_t t[NTHREADS];
	scn_init();
	if (cond)
		for (int i = 0; i < NTHREADS; i++)
			t[i] = scn_thread(cond_waiter, NULL);
	else
		start_raw(t);
	while (__atomic_load_n(&entered, __ATOMIC_SEQ_CST) < NTHREADS)
		scn_sleep_ms(5);
	scn_sleep_ms(200);   /* let the last ones reach their system call */
	scn_ready();

	scn_wait_eof();
	scn_watchdog(20);
	scn_phase("waking threads");
	if (cond) {
		pthread_mutex_lock(&cmx);
		cgo = 1;
		pthread_cond_broadcast(&ccv);
		pthread_mutex_unlock(&cmx);
	} else {
		wake_raw();
	}
	for (int i = 0; i < NTHREADS; i++)
		scn_join(t[i], "a sleeper");
	return scn_finish();
}
