/* core/'s interface, for core/ itself and for interpose/ above it (the
 * layers below see base/base.h and their own headers only).  Nothing here is
 * exported: the library is built with -fvisibility=hidden and only symbols
 * marked NUWA_EXPORT leave it. */
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

#include "base.h"
#include "sys.h"

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
int  task_blocks_signal(pid_t tid, int sig, char *hex);  /* SigBlk has sig: 1, 0, -1 */
int  task_sig_line(pid_t tid, const char *key, int sig, char *hex); /* "\nSigPnd:\t"… */
void syscall_name(long nr, char *out, size_t len);

/* ---- global state ------------------------------------------------------ */
extern volatile int nuwa_freezing;     /* a freeze is being set up or held */
extern int nuwa_inert;                 /* bad configuration: wrappers pass through */
extern int nuwa_trigger_sig;           /* NUWA_SIGNAL; 0 when handed to the program */
extern volatile unsigned nuwa_generation; /* bumped in every child after resume */

/* ---- init / config ------------------------------------------------- */
void nuwa_ensure_init(void);   /* idempotent, safe before the constructor */

enum nuwa_mode { NUWA_MODE_CLONE, NUWA_MODE_TEMPLATE, NUWA_MODE_SNAPSHOT };
enum nuwa_policy { NUWA_POLICY_ANY, NUWA_POLICY_IDLE };
struct nuwa_config {
	int mode;
	int clones;
	int timeout_ms;
	int policy;
	int signal;
	int freeze_on_idle_ms;     /* 0: off */
	int pool;                  /* NUWA_POOL: children a template keeps ready */
};
extern struct nuwa_config nuwa_cfg;
int nuwa_config_load(void);          /* 0, or -1 after logging the error */
int nuwa_parse_signal(const char *s);
const char *nuwa_signal_name(int sig, char *buf, size_t len);/* name ("USR2", "SIGUSR2", "RTMIN+3") or number; -1 if bad */

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
/* Freeze all threads (not the caller if it is an app thread: it is handled by
 * nuwa_clone).  Returns 0 or -errno; err gets a one-line reason. */
int  freeze_all(int timeout_ms, char *err, size_t errlen); /* 0: NUWA_FREEZE_TIMEOUT_MS */
extern long long nuwa_last_freeze_us;
void freeze_release(void);                   /* parent: resume everyone */
/* Fork one child from the frozen image (fork.c).  Parent: returns the
 * child's pid (>0) and a pidfd in *pidfd, or -errno.  It never returns in
 * the child: there every thread resumes, the steps of child_steps[] run, and
 * the child's control thread goes on in control_restart(). */
struct ctl_spawn;
struct fork_req {
	const struct ctl_spawn *spawn;/* what is particular to a spawn, or NULL */
	int pooled;                   /* a pooled child: waits on pool_fd for its spawn */
	int pool_fd, pool_peer;       /* its end of the pool channel, and the template's */
	int stay_frozen;              /* snapshot mode: the child is the template */
	int exit_signal;              /* 0, or SIGCHLD: the program's own child */
	/* base/child_ready.c: > 0, the child's end of its ready channel (our
	 * descriptors are never 0-2), ready_peer the parent's: the child is
	 * killed if the parent dies before it is released, and says when every
	 * thread runs (child step "ready") */
	int ready_fd, ready_peer;
};
/* control.c: wait until a spawned child is ready (1: c->pid), or reap it
 * if it died first, or kill it after timeout_ms (-errno, err says how) */
int control_child_await_ready(struct nuwa_child *c, int timeout_ms, char *err, size_t errlen);
pid_t fork_child(const struct fork_req *req, int *pidfd);
void  fork_after_app_fork(void);           /* the program's fork(): its child */
extern int nuwa_spawned;
extern int nuwa_snapshot_template;        /* this process holds a snapshot's image */
int   nuwa_is_child_of_freeze(void);

/* SIGTERM, SIGINT, SIGHUP to a frozen template (stopsig.c), control thread:
 * the descriptor to poll while a template (-1 otherwise), and what to do
 * when it is readable: as the program would (ignore, thaw for its handler,
 * or end with the default action, naming the children that keep running). */
int  stopsig_pollfd(void);
void stopsig_handle(void);

/* The program's own fork() children, watched so that their socket files go
 * when they end (forkwatch.c).  forkwatch_note: the fork() wrapper, any
 * thread; the rest: control thread. */
void forkwatch_note(pid_t pid);
void forkwatch_collect(void);                 /* queued pids -> watched entries */
void forkwatch_exited(struct nuwa_child *c);  /* its pidfd is readable */
int  forkwatch_timeout_ms(void);              /* -1, or when to call forkwatch_check */
void forkwatch_check(void);                   /* the entries watched by pid alone */
void forkwatch_forget(void);                  /* in a new process */

/* the service manager's notify socket (notify.c) */
void notify_init(void);                 /* start-up: take $NOTIFY_SOCKET */
void notify_frozen(int threads);        /* READY=1, once, in this process only */
void notify_status(const char *status); /* STATUS= */

/* control thread */
void control_wake(void);                     /* async-signal-safe */
void control_start(void);
void control_trigger(void);                  /* async-signal-safe */
int  control_request_clone(int n, pid_t *pids); /* blocks; run by app threads */
int  control_request_freeze(void);              /* nuwa_freeze(): 1 in children, 0 after thaw */
void control_after_app_fork(void);
void control_child_reinit(void);             /* a new child, before its threads run */
__attribute__((noreturn)) void control_restart(void); /* a new child: the loop afresh */
void control_api_thawed(void);               /* tmpl_thaw(): nuwa_freeze() returns 0 */

/* the operations (template.c), control thread only */
int  tmpl_freeze(int timeout_ms, char *err, size_t errlen);
int  tmpl_api_clone(int n, pid_t *pids);     /* nuwa_clone() */
void tmpl_on_trigger(void);
extern const struct ctl_core_ops nuwa_ctl_ops;

/* ---- template mode (issue 4), control thread only ---------------------------- */
enum nuwa_state { NUWA_STATE_RUNNING, NUWA_STATE_FREEZING, NUWA_STATE_TEMPLATE };
extern volatile int nuwa_state;
/* status text for `nuwa status` (core/status.c); returns the length needed */
size_t nuwa_status_text(char *buf, size_t len, int json);

/* child hooks registered through nuwa.h */
void hooks_run_constructors(void);
void hooks_run_final_constructors(void);


#endif
