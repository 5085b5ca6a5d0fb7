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

/* ---- error texts without locks (errname.c) --------------------------------- */
/* For everything that may run while the program is frozen: strerror() takes
 * the locale's lock (and mallocs for unknown numbers).  e or -e. */
const char *nuwa_strerror(int e);   /* "Too many open files" */
const char *nuwa_errname(int e);    /* "EMFILE" */

/* ---- fault injection, for tests only (fault.c) -------------------------------- */
/* NUWA_TEST_FAULT=STEP:ERRNO[:COUNT],...: NUWA_FAULT(STEP) is then -ERRNO
 * for the next COUNT passages (shared with every process forked after the
 * start-up), else 0; unarmed it is one load. */
extern int nuwa_faults_armed;
int nuwa_fault_parse(const char *spec, char *err, size_t errlen);
int nuwa_fault(const char *step);
#define NUWA_FAULT(step) (unlikely(nuwa_faults_armed) ? nuwa_fault(step) : 0)

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

/* ---- the thread pointer ------------------------------------------------------- */
/* x86-64: the TCB's first word (tcbhead_t.tcb) points to the TCB itself, so
 * %fs:0 is the thread pointer, read without a system call. */
static inline void *nuwa_thread_pointer(void)
{
	void *tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

/* ---- the per-thread record and critical sections (thread.c) ------------------- */
#define NUWA_TID_HISTORY 16

/* Every application thread libnuwa knows has one, in its own static TLS:
 * written by the thread itself (core/registry.c links it, the wrappers set
 * idle, tls/owner.c keeps the former tids), read by the control thread. */
struct nuwa_thread {
	pid_t tid;                 /* kernel tid in this process */
	volatile int idle;         /* enum nuwa_fp while blocked at a freeze point */
	int cs_depth;              /* >0: inside a libnuwa critical section */
	volatile int park_pending; /* park signal arrived inside a critical section */
	volatile unsigned sigcount;/* libnuwa signal handlers run on this thread */
	int registered;
	int skip;                  /* nuwa_thread_skip(): not resumed in children */
	int app_blocks_trigger;    /* the program asked to block the trigger signal */
	int ntids;                 /* tids this thread had in ancestor processes */
	pid_t old_tids[NUWA_TID_HISTORY];
	void *(*start)(void *);    /* pthread_create trampoline */
	void *arg;
	struct nuwa_thread *next, *prev;
};

/* The calling thread's record (static TLS, initial-exec: a load from %fs). */
extern __thread struct nuwa_thread nuwa_self __attribute__((tls_model("initial-exec")));
extern int nuwa_park_sig;              /* libnuwa-private park signal */

/* A thread inside libnuwa's own bookkeeping is in a critical section: a park
 * signal arriving then only sets park_pending, and the thread parks itself
 * (signals itself again) when it leaves. */
void nuwa_cs_leave_slow(void);
static inline void nuwa_cs_enter(void) { nuwa_self.cs_depth++; __atomic_signal_fence(__ATOMIC_SEQ_CST); }
static inline void nuwa_cs_leave(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (--nuwa_self.cs_depth == 0 && unlikely(nuwa_self.park_pending))
		nuwa_cs_leave_slow();
}

/* ---- directories (dirwalk.c) ------------------------------------------------------ */
/* /proc listings without malloc: getdents64 into a stack buffer. */
int nuwa_dir_open(int at, const char *path);      /* descriptor or -errno */
/* fn(dfd, name, arg) for every entry whose name starts with a digit (tasks,
 * pids, descriptor numbers); a non-zero return stops the walk and is
 * returned.  nuwa_dir_walk opens and closes path itself (-errno if it
 * cannot be opened). */
typedef int nuwa_dir_fn(int dfd, const char *name, void *arg);
int nuwa_dir_numbers(int dfd, nuwa_dir_fn *fn, void *arg);
int nuwa_dir_walk(int at, const char *path, nuwa_dir_fn *fn, void *arg);

/* ---- libnuwa's own descriptors (ownfd.c) ------------------------------------------- */
/* Never reported or rebuilt by fdremap, and protected from the program's
 * close(), close_range() and closefrom(). */
int  nuwa_fd_high(int fd);       /* moved to a high number, close-on-exec */
int  nuwa_own_fd(int fd);        /* registered as libnuwa's; returns fd */
void nuwa_own_fd_forget(int fd);
void nuwa_own_fd_drop(int fd);   /* forget and close; ignores -1 */
int  nuwa_is_own_fd(int fd);     /* lock-free, for close() */
int  nuwa_own_fds(int *out, int max);
void nuwa_own_fd_after_fork(void); /* the program's fork() child: lock free */

/* ---- memory for libnuwa's own tables (map.c) ----------------------------------------- */
void *nuwa_map_grow(void *p, size_t old, size_t size);   /* mmap/mremap; NULL if not */

/* ---- the children libnuwa made (children.c) ------------------------------------------ */
#define NUWA_MAX_CHILDREN 4096
enum nuwa_child_kind {
	NUWA_CHILD_CLONE,        /* a clone (trigger, or clone mode over the socket) */
	NUWA_CHILD_SPAWN,        /* spawned from this template */
	NUWA_CHILD_TEMPLATE,     /* snapshot mode: the child holding the frozen image */
	NUWA_CHILD_APP,          /* nuwa_clone(): the program's, never reaped by libnuwa */
	NUWA_CHILD_POOL,         /* a template's pooled child, not yet taken (core/pool.c) */
	NUWA_CHILD_FORK,         /* the program's fork(): watched for its socket file only */
};
struct nuwa_child {
	pid_t pid;
	int pidfd;               /* libnuwa's own descriptor */
	int kind;                /* enum nuwa_child_kind */
	int waiter;              /* control socket: the connection waiting for it, or -1 */
	unsigned waiter_serial;  /* ... and that connection's serial */
	int ready_fd;            /* child_ready.c: our end until released, else -1 */
	int teller;              /* control socket: the connection its pid is queued on
	                            (released once that is sent), or -1 */
	unsigned teller_serial;
};
struct nuwa_child *nuwa_child_add(pid_t pid, int pidfd, int kind); /* NULL: table full */
int  nuwa_children_full(void);               /* no entry left: fork no child */
int  nuwa_children_max(void);
void nuwa_children_set_max(int n);           /* 1..NUWA_MAX_CHILDREN */
struct nuwa_child *nuwa_child_find(pid_t pid);
int  nuwa_children_n(void);
struct nuwa_child *nuwa_child_at(int i);     /* 0 <= i < nuwa_children_n() */
int  nuwa_children_count(int kind);          /* of one kind, -1: all */
void nuwa_child_remove(struct nuwa_child *c);/* closes its pidfd; entries move */
void nuwa_children_prune(void);              /* the program's, once gone */
void nuwa_children_forget(void);             /* in a new process */
/* The last children reaped, newest first (nuwa status). */
#define NUWA_CHILD_EXITS 16
struct nuwa_child_exit { pid_t pid; int wstatus; int kind; };
void nuwa_child_exited(struct nuwa_child *c, int wstatus); /* record, then remove */
int  nuwa_child_exits(const struct nuwa_child_exit **out); /* how many, newest first */

/* child_ready.c: "the child is ready" (a SOCK_SEQPACKET pair made before
 * the fork; the child holds sv[1], the parent sv[0] in its entry). */
int  nuwa_ready_open(int sv[2]);                 /* 0 or -errno */
void nuwa_ready_child_arm(int peer, pid_t parent); /* child, first: PDEATHSIG */
void nuwa_ready_child_ready(int fd);   /* child's control thread, before GO: ready, wait release */
void nuwa_ready_child_go(int fd);      /* child's leader at GO: PDEATHSIG off, say so */
int  nuwa_ready_wait(int fd, int timeout_ms);    /* parent: 1 ready, 0 died, -ETIMEDOUT */
void nuwa_child_release(struct nuwa_child *c);   /* parent: told; may outlive us */

#endif
