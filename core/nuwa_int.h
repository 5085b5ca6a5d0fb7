/* libnuwa internal interfaces shared by core/, interpose/, tls/ and fdremap/.
 * Nothing here is exported: the library is built with -fvisibility=hidden and
 * only symbols marked NUWA_EXPORT leave it. */
#ifndef NUWA_INT_H
#define NUWA_INT_H

#include <signal.h>
#include <ucontext.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>

#define NUWA_EXPORT __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- freeze points ----------------------------------------------------- */
/* What an idle thread is waiting in; 0 means busy.  Names in freeze_point_name(). */
enum nuwa_fp {
	FP_BUSY = 0,
	FP_POLL, FP_PPOLL, FP_SELECT, FP_PSELECT, FP_EPOLL_WAIT, FP_EPOLL_PWAIT,
	FP_COND_WAIT, FP_MUTEX_LOCK, FP_RWLOCK, FP_JOIN, FP_SEM_WAIT,
	FP_NANOSLEEP, FP_CLOCK_NANOSLEEP, FP_SLEEP, FP_USLEEP, FP_PAUSE,
	FP_SIGSUSPEND, FP_SIGWAIT, FP_ACCEPT, FP_READ, FP_RECV, FP_WAIT,
	FP_FLOCK, FP_FCNTL_LOCK, FP_STDIO_READ, FP_PTHREAD_CREATE, FP_FORK,
	FP_NUWA_API,
	FP_KERNEL,      /* asleep in a system call outside any wrapper (core/tasksleep.c) */
	FP__COUNT
};
const char *freeze_point_name(int fp);
void nuwa_task_comm(pid_t tid, char *out, size_t len);  /* /proc/self/task/TID/comm */
/* core/tasksleep.c, from /proc/self/task/TID/{stat,syscall}; no malloc */
char task_state(pid_t tid);             /* R, S, D, T, …; '?' if gone */
long task_syscall_asleep(pid_t tid);    /* syscall nr if in interruptible sleep in one, else -1 */
void syscall_name(long nr, char *out, size_t len);

/* ---- per-thread record ------------------------------------------------- */
#define NUWA_TID_HISTORY 16

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

/* ---- global state ------------------------------------------------------ */
extern volatile int nuwa_freezing;     /* a freeze is being set up or held */
extern int nuwa_inert;                 /* bad configuration: wrappers pass through */
extern int nuwa_park_sig;              /* libnuwa-private park signal */
extern int nuwa_trigger_sig;           /* NUWA_SIGNAL; 0 when handed to the program */
extern volatile unsigned nuwa_generation; /* bumped in every child after resume */

/* ---- critical sections: parking is deferred inside ----------------------- */
void nuwa_cs_leave_slow(void);
static inline void nuwa_cs_enter(void) { nuwa_self.cs_depth++; __atomic_signal_fence(__ATOMIC_SEQ_CST); }
static inline void nuwa_cs_leave(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (--nuwa_self.cs_depth == 0 && unlikely(nuwa_self.park_pending))
		nuwa_cs_leave_slow();
}

/* ---- tiny futex-based lock for libnuwa's own data -------------------------- */
typedef struct { int v; } nuwa_lock_t;
void nuwa_lock(nuwa_lock_t *l);      /* callers are inside a critical section */
void nuwa_unlock(nuwa_lock_t *l);
long nuwa_futex_wait(volatile int *addr, int val, const struct timespec *rel);
long nuwa_futex_wake(volatile int *addr, int n);

/* ---- the real functions behind the wrappers ------------------------------------ */
/* dlsym(RTLD_NEXT, name); logs and aborts if libc lacks it (cannot happen with
 * glibc 2.36 for the names we wrap).  Safe before the constructor. */
void *nuwa_dlnext(const char *name);
#define REAL_DECL(ret, name, params) static ret (*real_##name) params
#define REAL(name) (*({                                                   \
	if (unlikely(real_##name == NULL))                                 \
		real_##name = (__typeof__(real_##name))nuwa_dlnext(#name); \
	real_##name; }))

/* ---- init / config / log ------------------------------------------------- */
void nuwa_ensure_init(void);   /* idempotent, safe before the constructor */

enum nuwa_mode { NUWA_MODE_CLONE, NUWA_MODE_TEMPLATE, NUWA_MODE_SNAPSHOT };
enum nuwa_policy { NUWA_POLICY_ANY, NUWA_POLICY_IDLE };
struct nuwa_config {
	int mode;
	int clones;
	int timeout_ms;
	int policy;
	int signal;
	int log_level;
	int freeze_on_idle_ms;     /* 0: off */
};
extern struct nuwa_config nuwa_cfg;
int nuwa_config_load(void);          /* 0, or -1 after logging the error */
int nuwa_parse_signal(const char *s);
const char *nuwa_signal_name(int sig, char *buf, size_t len);/* name ("USR2", "SIGUSR2", "RTMIN+3") or number; -1 if bad */

enum { NUWA_LOG_ERROR, NUWA_LOG_WARN, NUWA_LOG_INFO, NUWA_LOG_DEBUG };
void nuwa_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define nuwa_err(...)   nuwa_log(NUWA_LOG_ERROR, __VA_ARGS__)
#define nuwa_warn(...)  nuwa_log(NUWA_LOG_WARN, __VA_ARGS__)
#define nuwa_info(...)  nuwa_log(NUWA_LOG_INFO, __VA_ARGS__)
#define nuwa_debug(...) nuwa_log(NUWA_LOG_DEBUG, __VA_ARGS__)

/* ---- thread registry ------------------------------------------------------ */
void registry_add_self(void);
void registry_remove_self(void);
void registry_reset_after_fork(void);  /* app fork(): only the caller survives */
struct nuwa_thread *registry_find(pid_t tid); /* caller holds registry lock */
void registry_lock(void);
void registry_unlock(void);
extern struct nuwa_thread *registry_head;

/* ---- lifecycle: thread creation and app fork() vs. freeze -------------------- */
void lifecycle_enter(int fp);   /* waits while a freeze is held */
void lifecycle_leave(void);
int  lifecycle_wait_quiet_until(struct timespec deadline); /* 0, or -1 on timeout */
void lifecycle_reset_after_fork(void);
void registry_init(void);

/* ---- freeze-point helpers used by interpose/ --------------------------------- */
/* Publish "idle at fp" for the freeze protocol; returns the signal count
 * that fp_ours() compares against. */
static inline unsigned fp_enter(int fp)
{
	nuwa_self.idle = fp;
	return nuwa_self.sigcount;
}
static inline void fp_leave(void) { nuwa_self.idle = FP_BUSY; }
/* Did a libnuwa signal interrupt the call that started when sigcount was s? */
static inline int fp_ours(unsigned s) { return nuwa_self.sigcount != s; }

/* deadlines for transparent retries */
struct timespec ts_now(clockid_t c);
struct timespec ts_add(struct timespec a, struct timespec b);
struct timespec ts_sub(struct timespec a, struct timespec b); /* clamped at 0 */
int ts_cmp(struct timespec a, struct timespec b);
int ts_to_ms_remaining(struct timespec deadline); /* for poll/epoll: ceil, >= 0 */

/* ---- signals ------------------------------------------------------------------ */
extern volatile int nuwa_trigger_handed_over;
void signals_install(void);                  /* park + trigger handlers */
void sigmask_adjust(int how, const sigset_t *in, sigset_t *out);
int  signals_trigger_sigaction(const struct sigaction *act, struct sigaction *old);
void signals_trigger_handover(void);
void signals_handover_fix_mask(ucontext_t *uc);
void nuwa_signals_block_for_control(void);
void control_note_handover(void);
int  sigset_strip_nuwa(sigset_t *set);        /* remove libnuwa's signals; 1 if changed */
void sigset_hide_nuwa(sigset_t *set);         /* what the program may see */
void signals_thread_setup(void);              /* new app thread: park unblocked, trigger blocked */
int  signals_trigger_is_ours(void);

/* ---- freeze / fork / resume ------------------------------------------------------ */
struct freeze_report;
/* Freeze all threads (not the caller if it is an app thread: it is handled by
 * nuwa_clone).  Returns 0 or -errno; err gets a one-line reason. */
int  freeze_all(int timeout_ms, char *err, size_t errlen); /* 0: NUWA_FREEZE_TIMEOUT_MS */
extern long long nuwa_last_freeze_us;
void freeze_release(void);                   /* parent: resume everyone */
/* Fork one child from the frozen image.  Parent: returns child pid (>0) and
 * pidfd in *pidfd.  Child: does not return here (the control thread's copy
 * continues in control_child_resumed()). */
pid_t freeze_fork_child(int *pidfd);
pid_t freeze_fork_child_with(const int *stdio, void (*fn)(void *), void *arg, int *pidfd);
pid_t freeze_fork_template_child(int *pidfd);  /* snapshot mode */
void  freeze_fork_set_exit_signal(int sig);    /* SIGCHLD: the program's own child */
extern int nuwa_spawned;
int   nuwa_is_child_of_freeze(void);

/* control thread */
void control_start(void);
void control_trigger(void);                  /* async-signal-safe */
int  control_request_clone(int n, pid_t *pids); /* blocks; run by app threads */
int  control_request_freeze(void);              /* nuwa_freeze(): 1 in children, 0 after thaw */
void control_after_app_fork(void);

/* ---- template mode (issue 4), control thread only ---------------------------- */
enum nuwa_state { NUWA_STATE_RUNNING, NUWA_STATE_FREEZING, NUWA_STATE_TEMPLATE };
extern volatile int nuwa_state;
/* running -> template: freeze every thread and keep them parked. */
int   tmpl_freeze(int timeout_ms, char *err, size_t errlen);
/* Fork one child of the template.  stdio: 3 descriptors to install as 0,1,2 in
 * the child, or NULL.  child_fn(arg) runs in the child, on its control thread,
 * after every thread has resumed (used for --call).  Returns the pid (>0) and a
 * pidfd in *pidfd, or -errno. */
pid_t tmpl_spawn(const int *stdio, void (*child_fn)(void *), void *arg, int *pidfd);
int   tmpl_thaw(void);    /* template -> running, exactly as before */
/* In the child, tmpl_spawn returns 0 (on the child's control thread, after
 * its threads resumed).  *pidfd stays libnuwa's: do not close it. */
pid_t tmpl_snapshot(int timeout_ms, char *err, size_t errlen); /* 0 in the template */
int   tmpl_clone(int n, int timeout_ms, pid_t *pids, char *err, size_t errlen); /* 0 in children */

/* status text for `nuwa status` (core/status.c); returns the length needed */
size_t nuwa_status_text(char *buf, size_t len, int json);

/* control socket (core/ctlsock.c); polled by the control thread's loop */
int  ctlsock_init(void);                            /* 0 or -errno */
int  ctlsock_pollfds(struct pollfd *pfd, int max);  /* fds to watch, returns count */
void ctlsock_dispatch(const struct pollfd *pfd, int n);
void ctlsock_child_exited(pid_t pid, int wstatus);  /* a spawned child was reaped */
void ctlsock_after_spawn(void);                     /* in a new child: own socket */
void ctlsock_after_app_fork(void);                  /* child of the program's fork() */
void ctlsock_before_exec(void);                     /* exec*: remove the socket file */

/* child hooks registered through nuwa.h */
void hooks_run_constructors(void);
void hooks_run_final_constructors(void);

/* ---- lock owner repair (tls/owner.c), slow paths only ---- */
int mutex_repair_owner(pthread_mutex_t *m);
void sync_enter_resumed_child(void);   /* interpose/sync.c: locks repair first */
int rwlock_repair_writer(pthread_rwlock_t *rw);

#endif
