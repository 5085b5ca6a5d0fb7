/* The synthetic template program: T worker threads, H MiB of touched heap and
 * the internal channels a real server has (self-pipes, epoll sets, eventfds).
 *
 * A "child report" is how a copy of the program proves it is alive: its main
 * thread takes a slot in shared memory and wakes every worker through the
 * channel that worker sleeps on; each worker that runs counts itself in the
 * slot, and the last one stamps t_all.  A worker woken in the wrong process
 * (a copy that still shares a channel with its parent) is counted as stolen. */
#ifndef BENCH_TMPL_H
#define BENCH_TMPL_H

#include <stdint.h>
#include <sys/types.h>

#define MAX_SLOTS 64

struct slot {
	volatile int pid;
	volatile int acks;         /* threads of this process that have run (main included) */
	volatile int done;         /* futex word: 1 once every thread has run */
	volatile int phase_done;   /* memory benchmark: last phase completed */
	volatile int64_t t_main;   /* the copy's main thread got control */
	volatile int64_t t_all;    /* the last of its threads ran */
};

struct shared {
	volatile int nslots;
	volatile int phase;        /* memory benchmark: parent's command (futex) */
	volatile int stolen;       /* wake-ups that reached a thread of the wrong process */
	volatile int eintr;        /* blocking calls that returned EINTR to the program */
	volatile int tmpl_status;  /* template: 1 while nuwa_freeze() runs, -errno if it failed */
	struct slot slots[MAX_SLOTS];
};

struct tmpl_cfg {
	int threads;
	long heap_mib;
	int pipes, epolls, eventfds;
	int warmup_ms;
	int load;                  /* workers hammer mutexes and pipes instead of sleeping */
};

extern struct shared *g_shared;

/* Build the heap, the channels and the workers, run the warm-up, and return
 * once every worker sits in its blocking call (or, with load, is looping). */
void state_init(const struct tmpl_cfg *c);
/* Write one byte in every page of heap slice [from, from + frac). */
void state_touch(double from, double frac);
long state_heap_bytes(void);

/* Called by the main thread of a new copy: take the next free slot (or
 * `local` when not NULL), stamp t_main and wake every worker.  Returns the slot. */
struct slot *child_report(struct slot *local);

/* ---- tmpl_main.c: the driver's helpers, used by tmpl_tspawn.c ---- */

/* Record an error for the JSON "errors" array. */
void note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* SIGKILL a process (ours or not) and wait until it has exited. */
void reap(pid_t pid);
/* argv of this program in mode `mode` with cfg's sizes, plus `fdopt 3`
 * (--report-fd / --shm-fd): the descriptor the child finds at 3. */
struct child_argv {
	char t[16], h[24], w[16], p[16], e[16], v[16];
	char *argv[20];
};
void child_argv_init(struct child_argv *a, const char *self_exe, const struct tmpl_cfg *c,
		     const char *mode, const char *fdopt);

/* ---- tmpl_tspawn.c: template spawn (libnuwa's template mode) ---- */

/* Template side (`bench-tmpl template --shm-fd 3`): build the state, map the
 * launcher's shared page, freeze with nuwa_freeze(); each child reports. */
void tspawn_template_main(const struct tmpl_cfg *c, int shm_fd);

/* Launcher side.  tspawn_start() starts the template process (libnuwa
 * preloaded, NUWA_MODE=template) and waits until it serves spawns;
 * 0 or -1 (error noted).  tspawn_measure() is one nuwa_spawn(template, 0):
 * request -> every thread of the child ran.  tspawn_stop() kills what is
 * left and stops the template (`nuwa stop`, else SIGKILL). */
struct tspawn_times {
	double all, main, reply;   /* us after the request; -1 when it failed */
};
int tspawn_start(const struct tmpl_cfg *c, const char *self_exe, const char *nuwa_cli,
		 int timeout_ms);
struct tspawn_times tspawn_measure(void);
/* The template's pool (nuwa_pool()): keep n children ready; wait (bounded)
 * until they are when wait is set.  0 or -1 (error noted). */
int tspawn_pool(int n, int wait);
/* One spawn from a pool whose children are ready: set up, measured as
 * tspawn_measure(), the pool emptied again (no refill in the background
 * of the other measurements). */
struct tspawn_times tspawn_measure_pool(void);
/* A burst: n spawns back to back from a pool of `pool` ready children; us
 * from each request to every thread of its child run, into lat[]; the
 * whole burst (first request to the last child's last thread) in *total.
 * The pooled children's USS (KiB) before the burst into uss[] (up to
 * *nuss), the template's RSS into *tmpl_rss.  Returns how many spawns
 * succeeded. */
int tspawn_burst(int n, int pool, double *lat, double *total, double *uss, int *nuss,
		 double *tmpl_rss);
double tspawn_first_us(void);
void tspawn_stop(void);

#endif
