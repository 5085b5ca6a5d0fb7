/* State of the synthetic template program and its worker threads. */
#include "tmpl.h"
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CHUNK (64 * 1024)   /* below glibc's mmap threshold: the heap is brk/arena memory */
#define PAGE 4096
#define MAXCH 64

struct shared *g_shared;

enum wkind { W_PIPE, W_EVFD, W_EPOLL, W_COND, W_LOAD };

struct worker {
	pthread_t th;
	int idx, kind, chan;
	pid_t pid;                 /* process this worker last ran in */
	unsigned seen_poke;
};

static struct tmpl_cfg cfg;
static char **chunks;
static long nchunks;
static int pipes[MAXCH][2], evfds[MAXCH], epfds[MAXCH];
static struct worker *workers;
static int expected;            /* threads that report: workers + main */

static pthread_mutex_t cond_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond_cv = PTHREAD_COND_INITIALIZER;
static unsigned cond_gen;
static pthread_mutex_t load_mtx[4] = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER };
static unsigned long load_counter[4];

/* Per-process: which slot this copy reports into.  g_slot_owner tells a
 * worker whether g_slot was set in *this* process or inherited. */
static struct slot *volatile g_slot;
static volatile pid_t g_slot_owner;
static volatile unsigned g_poke_gen;
static volatile int warm_ready;
static volatile int64_t warm_deadline;
static volatile unsigned long warm_sink;

long state_heap_bytes(void) { return nchunks * (long)CHUNK; }

static void ack(void)
{
	struct slot *s = g_slot;
	int n = __atomic_add_fetch(&s->acks, 1, __ATOMIC_ACQ_REL);
	if (n == expected) {
		s->t_all = now_ns();
		__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
		futex_wake_shared(&s->done);
	}
}

/* Real work for the warm-up: hash a slice of the heap, churn the allocator. */
static unsigned long warm_work(int who, int nwho)
{
	unsigned long h = 1469598103934665603UL;
	for (long c = who; c < nchunks; c += nwho) {
		const unsigned long *p = (const unsigned long *)chunks[c];
		for (int i = 0; i < CHUNK / 8; i += 8)
			h = (h ^ p[i]) * 1099511628211UL;
		void *m = malloc(64 + (h & 1023));
		if (m) {
			memset(m, (int)h, 64);
			h += *(unsigned char *)m;
			free(m);
		}
		if ((c & 15) == 0 && now_ns() > warm_deadline)
			break;
	}
	return h;
}

static void warm_up(int who)
{
	do
		warm_sink += warm_work(who, expected);
	while (now_ns() < warm_deadline);
}

static void note_eintr(int r)
{
	if (r < 0 && errno == EINTR)
		__atomic_add_fetch(&g_shared->eintr, 1, __ATOMIC_RELAXED);
}

/* Sleep in the worker's channel until poked; return 1 when woken for this process. */
static int wait_poke(struct worker *w)
{
	char b;
	uint64_t v;
	struct epoll_event ev[4];
	ssize_t r;

	switch (w->kind) {
	case W_PIPE:
		r = read(pipes[w->chan][0], &b, 1);
		note_eintr(r);
		if (r != 1)
			return 0;
		break;
	case W_EVFD:
		r = read(evfds[w->chan], &v, sizeof v);
		note_eintr(r);
		if (r != sizeof v)
			return 0;
		break;
	case W_EPOLL:
		r = epoll_wait(epfds[w->chan], ev, 4, -1);
		note_eintr(r);
		if (r <= 0)
			return 0;
		/* Level-triggered and non-blocking: clear the counter.  A wake-up
		 * without a count means another process drained it. */
		if (read(evfds[w->chan], &v, sizeof v) != sizeof v)
			return 0;
		break;
	case W_COND:
		pthread_mutex_lock(&cond_mtx);
		while (cond_gen == w->seen_poke)
			pthread_cond_wait(&cond_cv, &cond_mtx);
		pthread_mutex_unlock(&cond_mtx);
		break;
	}
	/* A pipe or eventfd shared with another process can deliver that
	 * process's poke here; then this process has no new poke generation. */
	if (g_poke_gen == w->seen_poke || g_slot_owner != getpid()) {
		__atomic_add_fetch(&g_shared->stolen, 1, __ATOMIC_RELAXED);
		return 0;
	}
	w->seen_poke = g_poke_gen;
	return 1;
}

static void load_loop(struct worker *w)
{
	char b = 'x';
	int p = w->idx % cfg.pipes;
	for (;;) {
		for (int i = 0; i < 64; i++) {
			pthread_mutex_t *m = &load_mtx[(w->idx + i) & 3];
			pthread_mutex_lock(m);
			load_counter[(w->idx + i) & 3]++;
			pthread_mutex_unlock(m);
		}
		/* Each thread writes before it reads, so a pipe shared by several
		 * threads never leaves one blocked forever. */
		note_eintr(write(pipes[p][1], &b, 1));
		note_eintr(read(pipes[p][0], &b, 1));
		if (getpid() != w->pid) {
			/* A new copy: wait until its main thread has taken a slot. */
			while (g_slot_owner != getpid())
				sched_yield();
			w->pid = getpid();
			ack();
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->pid = getpid();
	warm_up(w->idx + 1);
	__atomic_add_fetch(&warm_ready, 1, __ATOMIC_RELEASE);
	if (w->kind == W_LOAD)
		load_loop(w);
	for (;;)
		if (wait_poke(w))
			ack();
	return NULL;
}

/* Spread the workers over the channels: pipe k, epoll set k (watching
 * eventfd k), a blocking read on a further eventfd, a condition variable;
 * once the channels run out the rest wait on the condition variable. */
static void assign_kinds(void)
{
	int n = 0;
	for (int k = 0; n < cfg.threads; k++) {
		int kinds[4][2] = {
			{ W_PIPE, k < cfg.pipes ? k : -1 },
			{ W_EPOLL, k < cfg.epolls ? k : -1 },
			{ W_EVFD, cfg.epolls + k < cfg.eventfds ? cfg.epolls + k : -1 },
			{ W_COND, 0 },
		};
		for (int j = 0; j < 4 && n < cfg.threads; j++) {
			if (kinds[j][1] < 0)
				continue;
			workers[n].idx = n;
			workers[n].kind = cfg.load ? W_LOAD : kinds[j][0];
			workers[n].chan = kinds[j][1];
			n++;
		}
	}
}

static void make_channels(void)
{
	if (cfg.pipes > MAXCH || cfg.eventfds > MAXCH || cfg.epolls > cfg.eventfds)
		die("channels: at most %d pipes/eventfds, epolls <= eventfds", MAXCH);
	for (int i = 0; i < cfg.pipes; i++)
		if (pipe2(pipes[i], O_CLOEXEC) < 0)
			die("pipe2: %s", strerror(errno));
	for (int i = 0; i < cfg.eventfds; i++) {
		int fl = EFD_CLOEXEC | (i < cfg.epolls ? EFD_NONBLOCK : 0);
		if ((evfds[i] = eventfd(0, fl)) < 0)
			die("eventfd: %s", strerror(errno));
	}
	for (int i = 0; i < cfg.epolls; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)i };
		if ((epfds[i] = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    epoll_ctl(epfds[i], EPOLL_CTL_ADD, evfds[i], &ev) < 0)
			die("epoll: %s", strerror(errno));
	}
}

void state_touch(double from, double frac)
{
	long a = (long)(from * nchunks), b = (long)((from + frac) * nchunks);
	if (b > nchunks)
		b = nchunks;
	for (long c = a; c < b; c++)
		for (int off = 0; off < CHUNK; off += PAGE)
			chunks[c][off]++;
}

void state_init(const struct tmpl_cfg *c)
{
	cfg = *c;
	if (cfg.pipes < 1)
		cfg.pipes = 1;
	expected = cfg.threads + 1;
	nchunks = cfg.heap_mib * (1024 * 1024 / CHUNK);
	chunks = calloc(nchunks ? nchunks : 1, sizeof *chunks);
	for (long i = 0; i < nchunks; i++) {
		if (!(chunks[i] = malloc(CHUNK)))
			die("heap: out of memory");
		/* Distinct contents per page: nothing can share them but fork. */
		for (int off = 0; off < CHUNK; off += 8)
			*(unsigned long *)(chunks[i] + off) = (unsigned long)i * 0x9e3779b97f4a7c15UL + off;
	}
	make_channels();
	workers = calloc(cfg.threads ? cfg.threads : 1, sizeof *workers);
	assign_kinds();
	warm_deadline = now_ns() + (int64_t)cfg.warmup_ms * 1000000;
	for (int i = 0; i < cfg.threads; i++) {
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 * 1024);
		int e = pthread_create(&workers[i].th, &a, worker_main, &workers[i]);
		pthread_attr_destroy(&a);
		if (e)
			die("pthread_create: %s", strerror(e));
	}
	warm_up(0);
	while (__atomic_load_n(&warm_ready, __ATOMIC_ACQUIRE) < cfg.threads)
		usleep(1000);
	/* Let every worker reach its blocking call before anyone measures. */
	usleep(20000);
}

struct slot *child_report(struct slot *local)
{
	int64_t t = now_ns();
	struct slot *s = local;
	if (!s) {
		int i = __atomic_fetch_add(&g_shared->nslots, 1, __ATOMIC_ACQ_REL);
		if (i >= MAX_SLOTS)
			die("too many copies");
		s = &g_shared->slots[i];
	}
	s->t_main = t;
	s->pid = getpid();
	g_slot = s;
	__atomic_store_n(&g_slot_owner, getpid(), __ATOMIC_RELEASE);
	ack();
	if (cfg.load)
		return s;   /* loaded workers notice the new pid by themselves */
	g_poke_gen++;
	uint64_t one = 1;
	char b = 'p';
	int cond_waiters = 0;
	for (int i = 0; i < cfg.threads; i++) {
		struct worker *w = &workers[i];
		switch (w->kind) {
		case W_PIPE:
			if (write(pipes[w->chan][1], &b, 1) != 1)
				die("poke pipe: %s", strerror(errno));
			break;
		case W_EVFD:
		case W_EPOLL:
			if (write(evfds[w->chan], &one, sizeof one) != sizeof one)
				die("poke eventfd: %s", strerror(errno));
			break;
		case W_COND:
			cond_waiters++;
			break;
		}
	}
	if (cond_waiters) {
		pthread_mutex_lock(&cond_mtx);
		cond_gen = g_poke_gen;
		pthread_cond_broadcast(&cond_cv);
		pthread_mutex_unlock(&cond_mtx);
	}
	return s;
}
