/* bench-micro: the program's hot paths that libnuwa interposes, timed with
 * and without libnuwa preloaded (the driver runs both, interleaved).
 *
 *   bench-micro OP ITERATIONS      prints {"op":..,"iters":..,"ns_per_op":..}
 *
 * OP: mutex     uncontended pthread_mutex_lock + unlock (one op = one pair)
 *     condvar   condition-variable ping-pong between two threads (one op = round trip)
 *     poll      poll() on a ready eventfd, timeout -1
 *     epoll     epoll_wait() on an epoll set whose eventfd is ready, timeout -1
 *     pipe      1-byte ping-pong between two threads over two pipes (round trip)
 *     pipe1     write + read of 1 byte on one pipe by one thread
 *
 * mutex_loop() is a separate, non-inlined function so that callgrind can
 * count exactly its instructions (--toggle-collect=mutex_loop).
 *
 * One extra thread sleeps in pause() for the single-threaded ops: glibc takes
 * shortcuts while a process has one thread (SINGLE_THREAD_P in its lock
 * macros), and libnuwa's control thread would deny the preloaded run those,
 * so the native run would measure a different glibc path.  libnuwa is for
 * multi-threaded programs; both runs are multi-threaded. */
#include "bench_util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline)) void mutex_loop(long n)
{
	for (long i = 0; i < n; i++) {
		pthread_mutex_lock(&mtx);
		pthread_mutex_unlock(&mtx);
	}
}

/* ---- condition-variable ping-pong ---- */
static pthread_mutex_t pp_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_c = PTHREAD_COND_INITIALIZER;
static int pp_turn;
static long pp_n;

static void *cond_peer(void *arg)
{
	pthread_mutex_lock(&pp_m);
	for (long i = 0; i < pp_n; i++) {
		while (pp_turn != 1)
			pthread_cond_wait(&pp_c, &pp_m);
		pp_turn = 0;
		pthread_cond_signal(&pp_c);
	}
	pthread_mutex_unlock(&pp_m);
	return arg;
}

static void cond_loop(long n)
{
	pthread_mutex_lock(&pp_m);
	for (long i = 0; i < n; i++) {
		pp_turn = 1;
		pthread_cond_signal(&pp_c);
		while (pp_turn != 0)
			pthread_cond_wait(&pp_c, &pp_m);
	}
	pthread_mutex_unlock(&pp_m);
}

/* ---- pipe ping-pong ---- */
static int ping[2], pong[2];

static void *pipe_peer(void *arg)
{
	char b;
	for (long i = 0; i < pp_n; i++)
		if (read(ping[0], &b, 1) != 1 || write(pong[1], &b, 1) != 1)
			die("pipe peer: %s", strerror(errno));
	return arg;
}

static void pipe_loop(long n)
{
	char b = 'x';
	for (long i = 0; i < n; i++)
		if (write(ping[1], &b, 1) != 1 || read(pong[0], &b, 1) != 1)
			die("pipe: %s", strerror(errno));
}

static void pipe1_loop(long n)
{
	char b = 'x';
	for (long i = 0; i < n; i++)
		if (write(ping[1], &b, 1) != 1 || read(ping[0], &b, 1) != 1)
			die("pipe1: %s", strerror(errno));
}

static int efd, epfd;

static void poll_loop(long n)
{
	struct pollfd p = { efd, POLLIN, 0 };
	for (long i = 0; i < n; i++)
		if (poll(&p, 1, -1) != 1)
			die("poll: %s", strerror(errno));
}

static void epoll_loop(long n)
{
	struct epoll_event ev;
	for (long i = 0; i < n; i++)
		if (epoll_wait(epfd, &ev, 1, -1) != 1)
			die("epoll_wait: %s", strerror(errno));
}

static void *idle_thread(void *arg)
{
	for (;;)
		pause();
	return arg;
}

static double timed(void (*fn)(long), long n)
{
	fn(n / 10 + 1);   /* warm: resolve PLT slots, fault in stacks, settle caches */
	int64_t t0 = now_ns();
	fn(n);
	return (double)(now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: bench-micro mutex|condvar|poll|epoll|pipe|pipe1 ITERATIONS");
	const char *op = argv[1];
	long n = atol(argv[2]);
	pthread_t peer;
	int has_peer = 0;
	double ns;

	if (n < 1)
		die("bad iteration count");
	if (pipe(ping) < 0 || pipe(pong) < 0)
		die("pipe: %s", strerror(errno));
	efd = eventfd(1, 0);
	epfd = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };
	if (efd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) < 0)
		die("eventfd/epoll: %s", strerror(errno));

	pthread_t idle;
	if (pthread_create(&idle, NULL, idle_thread, NULL))
		die("pthread_create");
	if (!strcmp(op, "mutex")) {
		ns = timed(mutex_loop, n);
	} else if (!strcmp(op, "condvar") || !strcmp(op, "pipe")) {
		int is_cond = !strcmp(op, "condvar");
		/* the peer serves the warm-up round too */
		pp_n = n + n / 10 + 1;
		if (pthread_create(&peer, NULL, is_cond ? cond_peer : pipe_peer, NULL))
			die("pthread_create");
		has_peer = 1;
		ns = timed(is_cond ? cond_loop : pipe_loop, n);
	} else if (!strcmp(op, "pipe1")) {
		ns = timed(pipe1_loop, n);
	} else if (!strcmp(op, "poll")) {
		ns = timed(poll_loop, n);
	} else if (!strcmp(op, "epoll")) {
		ns = timed(epoll_loop, n);
	} else {
		die("unknown op %s", op);
	}
	if (has_peer)
		pthread_join(peer, NULL);
	printf("{\"op\":\"%s\",\"iters\":%ld,\"ns_per_op\":%.3f}\n", op, n, ns);
	return 0;
}
