/* base/ — what every layer of libnuwa may use, and which uses nothing of
 * libnuwa itself: logging, a futex lock, time arithmetic, the next
 * definition of a wrapped function.  Nothing here is exported: the library
 * is built with -fvisibility=hidden and only symbols marked NUWA_EXPORT
 * leave it.
 *
 * The layers, each a static library that sees only the headers of itself
 * and of the layers below (meson.build):
 *     interpose/            the exported wrappers
 *     core/                 freeze, fork and resume, the control thread
 *     tls/  fdremap/  ctl/  per-thread state, descriptors, control socket
 *     base/                 this
 */
#ifndef NUWA_BASE_H
#define NUWA_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define NUWA_EXPORT __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- logging (log.c) ------------------------------------------------------ */
enum { NUWA_LOG_ERROR, NUWA_LOG_WARN, NUWA_LOG_INFO, NUWA_LOG_DEBUG };
extern int nuwa_log_level;   /* NUWA_LOG; messages above it are dropped */
extern int nuwa_log_fd;      /* NUWA_LOG_FILE, else 2 */
void nuwa_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define nuwa_err(...)   nuwa_log(NUWA_LOG_ERROR, __VA_ARGS__)
#define nuwa_warn(...)  nuwa_log(NUWA_LOG_WARN, __VA_ARGS__)
#define nuwa_info(...)  nuwa_log(NUWA_LOG_INFO, __VA_ARGS__)
#define nuwa_debug(...) nuwa_log(NUWA_LOG_DEBUG, __VA_ARGS__)

/* ---- futexes and a tiny lock for libnuwa's own data (lock.c) ---------------- */
typedef struct { int v; } nuwa_lock_t;
void nuwa_lock(nuwa_lock_t *l);      /* callers are inside a critical section */
void nuwa_unlock(nuwa_lock_t *l);
long nuwa_futex_wait(volatile int *addr, int val, const struct timespec *rel);
long nuwa_futex_wake(volatile int *addr, int n);

/* ---- time (time.c) ------------------------------------------------------------ */
struct timespec ts_now(clockid_t c);
struct timespec ts_add(struct timespec a, struct timespec b);
struct timespec ts_sub(struct timespec a, struct timespec b); /* clamped at 0 */
int ts_cmp(struct timespec a, struct timespec b);
int ts_to_ms_remaining(struct timespec deadline); /* for poll/epoll: ceil, >= 0 */
long us_between(struct timespec a, struct timespec b);        /* b - a, in us */
long long nuwa_now_ms(void);                                  /* CLOCK_MONOTONIC */

/* ---- the real functions behind the wrappers (real.c) ---------------------------- */
/* dlsym(RTLD_NEXT, name); logs and aborts if libc lacks it (cannot happen with
 * glibc 2.36 for the names we wrap).  Safe before the constructor. */
void *nuwa_dlnext(const char *name);
#define REAL_DECL(ret, name, params) static ret (*real_##name) params
#define REAL(name) (*({                                                   \
	if (unlikely(real_##name == NULL))                                 \
		real_##name = (__typeof__(real_##name))nuwa_dlnext(#name); \
	real_##name; }))

#endif
