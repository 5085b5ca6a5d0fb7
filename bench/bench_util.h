/* Small helpers shared by the benchmark programs: clocks, futexes on shared
 * memory, /proc readers and a tiny JSON printer.  Nothing here depends on
 * libnuwa: the programs run the same with and without it preloaded. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC is one clock for the whole machine, so a timestamp taken in
 * a child can be subtracted from one taken in its parent. */
int64_t now_ns(void);

/* Futexes on MAP_SHARED memory: not FUTEX_PRIVATE_FLAG, because the waiter
 * and the waker are different processes (private futexes are keyed by mm). */
int futex_wait_shared(volatile int *addr, int val, int64_t timeout_ns);
void futex_wake_shared(volatile int *addr);
/* Wait until *addr != val or the deadline passes; 0 or -1 on timeout. */
int wait_change(volatile int *addr, int val, int64_t deadline_ns);

/* Anonymous MAP_SHARED memory survives fork() and is shared with children. */
void *shared_alloc(size_t len);

/* From /proc/PID/smaps_rollup, in KiB.  uss = Private_Clean + Private_Dirty. */
struct mem_usage {
	long rss, pss, uss, anon;
};
int read_smaps_rollup(pid_t pid, struct mem_usage *m);

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* JSON output: one object per program run, written with these helpers so
 * that the driver can parse it with json.loads(). */
struct jw {
	FILE *f;
	int need_comma[16];
	int depth;
};
void jw_begin(struct jw *w, FILE *f);
void jw_end(struct jw *w);
void jw_key(struct jw *w, const char *key);
void jw_obj_open(struct jw *w, const char *key);  /* key may be NULL in arrays */
void jw_obj_close(struct jw *w);
void jw_arr_open(struct jw *w, const char *key);
void jw_arr_close(struct jw *w);
void jw_int(struct jw *w, const char *key, long long v);
void jw_num(struct jw *w, const char *key, double v);
void jw_str(struct jw *w, const char *key, const char *s);
void jw_bool(struct jw *w, const char *key, int v);
/* An array of numbers (e.g. per-repetition microseconds). */
void jw_nums(struct jw *w, const char *key, const double *v, int n);

#endif
