/* The freeze table: one slot per task of the process while a freeze is set
 * up or held (core/: protocol, park handler, fork and resume). */
#ifndef NUWA_FREEZE_H
#define NUWA_FREEZE_H

#include <sched.h>
#include <signal.h>
#include <ucontext.h>

#include "ctx.h"
#include "nuwa_int.h"
#include "tls.h"

#define NUWA_MAX_THREADS 4096

enum slot_state {
	SLOT_EMPTY = 0,
	SLOT_LISTED,      /* seen in /proc/self/task, not signalled yet */
	SLOT_SIGNALLED,   /* park signal sent */
	SLOT_PARKED,      /* waiting in the park handler; ctx valid */
	SLOT_RESUMED,     /* child: running again in place, fixups done */
};

enum slot_cmd { CMD_WAIT = 0, CMD_RELEASE, CMD_FORK, CMD_GO };

struct park_slot {
	pid_t tid;                 /* tid in the frozen process */
	volatile int state;        /* enum slot_state */
	volatile int cmd;          /* enum slot_cmd; futex the parked thread waits on */
	int present;               /* seen in the latest /proc listing */
	int idle_at;               /* freeze point when parked (FP_BUSY: busy) */
	long kernel_nr;            /* FP_KERNEL: the system call it slept in */
	struct timespec signalled_at; /* last park signal sent */
	int known;                 /* has a libnuwa record (registered thread) */
	int is_main;               /* the process's original main thread */
	int skip;                  /* nuwa_thread_skip() */
	void *tcb;                 /* thread pointer (%fs base) */
	int tcb_shared;            /* another task uses the same tcb: no tid fixup */
	int fallback;              /* sent SIGCANCEL: it blocks the park signal (parksig.c) */
	ucontext_t *uc;            /* the park signal's frame */
	struct nuwa_ctx ctx;       /* saved in the handler; children jump here */
	struct tls_state tls;
	pid_t new_tid;             /* child: tid of the resumed task */
	const struct tls_state *cloner; /* child: the state of the task that cloned it */
	/* fork request and its result (the main thread is the forker) */
	const struct fork_req *fork_req;
	pid_t fork_pid;
	int fork_pidfd;
	int fork_errno;
};

struct freeze_table {
	volatile int active;       /* slots valid for the park handler */
	volatile int go;           /* child: 1 once every task may run (one futex) */
	volatile int leaving;      /* child: tasks released but not out of their slot */
	volatile int parked;       /* freeze: tasks that parked (futex the control waits on) */
	volatile int park_target;  /* freeze: tasks signalled; the one that makes it wakes */
	volatile int park_anyway;  /* freeze: park busy tasks even inside the loader */
	volatile int nslots;
	struct park_slot slots[NUWA_MAX_THREADS];
};
extern struct freeze_table nuwa_ft;

struct park_slot *freeze_slot_find(pid_t tid);

/* park.c */
void park_handler(int sig, siginfo_t *si, void *uc);
void trigger_handler(int sig, siginfo_t *si, void *uc);
void park_release_slot(struct park_slot *s, int cmd);

/* parksig.c: the park handler against raw rt_sigaction (Go) */
extern volatile int nuwa_parksig_taken;
void parksig_note_installed(void);  /* after signals_install() */
int  parksig_take(void);            /* a freeze begins: ours back in place; 1 if taken */
void parksig_give_back(void);       /* the program's handler again */
void parksig_drain_self(const struct park_slot *s); /* released: none of ours left queued */
int  parksig_fallback_kill(struct park_slot *s); /* it blocks the park signal: via SIGCANCEL */

/* fork.c: run by the main thread in its park handler for CMD_FORK */
int fork_in_forker(struct park_slot *s);  /* 1 in the new child */
/* fork.c: in a new child, on the forker after the raw fork */
int child_leader_start(struct park_slot *s);
/* fork.c: in a resumed task, right after the jump */
void child_resumed_thread(struct park_slot *s);

#endif
