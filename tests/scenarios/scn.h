/* scn.h — common code of the scenario programs driven by tests/harness.c.
 *
 * Protocol: the original process prints "READY\n" when its workload is in
 * place; closing stdin means "finish now" (parent and clones share the pipe,
 * so all of them see EOF); at the end every process prints exactly one
 * "RESULT pid=P clone=0|1 ok" or "RESULT pid=P clone=0|1 FAIL why" line.
 *
 * All output goes through write(2): a clone inherits unflushed stdio
 * buffers, so printf output could be printed twice.  A process is a clone
 * when getpid() differs from the pid saved by scn_init().
 */
#ifndef NUWA_SCN_H
#define NUWA_SCN_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

extern pid_t scn_orig_pid;

void scn_init(void);
int  scn_is_clone(void);
pid_t scn_gettid(void);

/* Formatted write(2) to stdout / stderr; one write per call (atomic lines). */
void scn_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void scn_errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Record a failure (thread-safe; printed at once as "NOTE ..." on stdout). */
void scn_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int  scn_failed(void);

/* "READY\n", from the original process only. */
void scn_ready(void);

/* Block in read(0) until EOF (a freeze point); EINTR is a failure. */
void scn_wait_eof(void);

/* What the process is doing, for the watchdog's message. */
void scn_phase(const char *what);

/* After EOF: if the process is not done within `seconds`, print a FAIL
 * result naming the phase and _exit(3), so a hang is reported per process. */
void scn_watchdog(int seconds);

/* Print the RESULT line; returns the exit status for main (0 ok, 1 fail). */
int scn_finish(void);

/* Time. */
int64_t scn_now_ns(clockid_t c);
static inline int64_t scn_mono_ns(void) { return scn_now_ns(CLOCK_MONOTONIC); }
struct timespec scn_ts_from_ns(int64_t ns);
void scn_sleep_ms(int ms);

/* pthread_create that fails the whole program on error. */
pthread_t scn_thread(void *(*fn)(void *), void *arg);
/* pthread_join that records a failure on error; returns the value. */
void *scn_join(pthread_t t, const char *what);

/* A deterministic computation: x(n+1) = mix(x(n)).  Used to check that
 * registers and stacks of computing threads survive a freeze. */
static inline uint64_t scn_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x + 0x9e3779b97f4a7c15ULL;
}
uint64_t scn_mix_n(uint64_t x, uint64_t n);

#endif
