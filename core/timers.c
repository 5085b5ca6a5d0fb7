/* POSIX timers (timer_create), interval timers (setitimer) and alarm().
 *
 * Kernel facts relied on:
 * - fork copies none of them: copy_signal() starts the child with an empty
 *   timer list and zeroed itimers (kernel/fork.c; "The child does not
 *   inherit timers from its parent", fork(2)).  alarm() is ITIMER_REAL.
 * - /proc/self/timers (fs/proc/base.c show_timer) gives, per timer,
 *   "ID: n", "signal: SIGNO/SIVAL" (si_value printed with %px: the raw
 *   pointer), "notify: signal|none/pid|tid.N" (SIGEV_THREAD_ID shows as
 *   "tid" with its target) and "ClockID: c" (the clockid as created; a CPU
 *   clock of another task encodes its pid).  timer_gettime() gives the
 *   interval and the time left (relative, whatever TIMER_ABSTIME said).
 *   That is all timer_create() took, so no wrapper is needed.
 *   SIGEV_THREAD is glibc's: a SIGEV_THREAD_ID timer aimed at a helper
 *   thread (see interpose/timer.c, which makes that helper libnuwa's).
 * - prctl(PR_TIMER_CREATE_RESTORE_IDS, 1) (77, Linux 6.15+, for CRIU)
 *   makes timer_create() take the id found in *timerid (EBUSY if used);
 *   glibc's timer_create() does not pass the caller's value in, so the raw
 *   system call is made.  Without it (EINVAL) ids are handed out in
 *   increasing order in a new process (signal_struct.next_posix_timer_id
 *   starts at 0): CRIU's way, create until the id matches, then delete
 *   the extra ones.
 * The list is read once per freeze (every application thread parked:
 * nothing can create, delete or re-arm a timer), the clocks before every
 * raw fork (the template's timers keep running while it serves spawns),
 * and the child re-creates everything on its control thread once every
 * thread has its new tid (SIGEV_THREAD_ID targets) and before any of them
 * runs again.  A signal that was pending in the parent is not pending in
 * the child, as after fork().  No malloc: static and mmap'ed memory. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"
#include "procfile.h"
#include "timers.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#endif
#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

struct ptimer {
	int id;
	int clock;
	int signo;
	int notify;          /* SIGEV_SIGNAL, SIGEV_NONE, SIGEV_SIGNAL|SIGEV_THREAD_ID */
	pid_t target;        /* SIGEV_THREAD_ID: tid in the frozen process */
	void *sival;
	int have_spec;
	struct itimerspec spec;
};

static struct ptimer *timers;      /* mmap'ed, grown with mremap, sorted by id */
static size_t ntimers, cap_timers;
static pid_t frozen_pid;           /* the process that was frozen (its leader's tid) */
static struct itimerval itv[3];    /* ITIMER_REAL (alarm), _VIRTUAL, _PROF */
static char timers_buf[4096];
/* NUWA_TIMERS_IN_ORDER=1: do without PR_TIMER_CREATE_RESTORE_IDS, as on
 * kernels before 6.15 (the tests run both ways). */
static int in_order_only;

/* read at load time: a parked thread may be inside setenv() */
__attribute__((constructor)) static void timers_read_env(void)
{
	const char *e = getenv("NUWA_TIMERS_IN_ORDER");
	in_order_only = e && e[0] == '1';
}

static struct ptimer *timers_push(void)
{
	if (ntimers == cap_timers) {
		size_t ncap = cap_timers ? cap_timers * 2 : 64;
		void *p = nuwa_map_grow(timers, cap_timers * sizeof *timers, ncap * sizeof *timers);
		if (!p)
			return NULL;
		timers = p;
		cap_timers = ncap;
	}
	struct ptimer *t = &timers[ntimers++];
	memset(t, 0, sizeof *t);
	return t;
}

struct scan { struct ptimer *cur; int err; };

static long parse_int(const char *p)
{
	int neg = *p == '-';
	p += neg;
	long v = (long)nuwa_parse_ull(&p, 10);
	return neg ? -v : v;
}

static int on_line(char *line, void *arg)
{
	struct scan *sc = arg;
	if (!strncmp(line, "ID: ", 4)) {
		if (!(sc->cur = timers_push())) {
			sc->err = -ENOMEM;
			return 1;
		}
		sc->cur->id = (int)parse_int(line + 4);
		return 0;
	}
	struct ptimer *t = sc->cur;
	if (!t)
		return 0;
	if (!strncmp(line, "signal: ", 8)) {
		const char *p = line + 8;
		t->signo = (int)nuwa_parse_ull(&p, 10);
		if (*p == '/')
			p++;
		t->sival = (void *)(uintptr_t)nuwa_parse_ull(&p, 16);
	} else if (!strncmp(line, "notify: ", 8)) {
		const char *p = line + 8;
		t->notify = !strncmp(p, "none", 4) ? SIGEV_NONE : SIGEV_SIGNAL;
		const char *slash = strchr(p, '/');
		if (slash && !strncmp(slash + 1, "tid.", 4)) {
			t->notify |= SIGEV_THREAD_ID;
			t->target = (pid_t)parse_int(slash + 5);
		}
	} else if (!strncmp(line, "ClockID: ", 9)) {
		t->clock = (int)parse_int(line + 9);
	}
	return 0;
}

int timers_prepare(char *err, size_t errlen)
{
	struct scan sc = { NULL, 0 };
	ntimers = 0;
	frozen_pid = (pid_t)sys_getpid();
	int r = nuwa_proc_lines("/proc/self/timers", timers_buf, sizeof timers_buf, on_line, &sc);
	if (r == 0)
		r = sc.err;
	if (r == -ENOENT)
		r = 0;   /* kernel without CONFIG_CHECKPOINT_RESTORE: no list */
	if (r < 0) {
		snprintf(err, errlen, "cannot list POSIX timers in /proc/self/timers (errno %d)", -r);
		ntimers = 0;
		return r;
	}
	/* the kernel lists them in hash order; restoring wants id order */
	for (size_t i = 1; i < ntimers; i++) {
		struct ptimer k = timers[i];
		size_t j = i;
		for (; j > 0 && timers[j - 1].id > k.id; j--)
			timers[j] = timers[j - 1];
		timers[j] = k;
	}
	if (ntimers)
		nuwa_debug("%zu POSIX timers to re-create in children", ntimers);
	return 0;
}

void timers_sample(void)
{
	for (size_t i = 0; i < ntimers; i++) {
		struct ptimer *t = &timers[i];
		t->have_spec = sys_timer_gettime(t->id, &t->spec) == 0;
	}
	for (int w = 0; w < 3; w++)
		if (sys_getitimer(w, &itv[w]) != 0)
			memset(&itv[w], 0, sizeof itv[w]);
}

/* A pooled child was forked earlier: what timers_sample() reads now, as a
 * child forked now would have it (its copy of this memory is at the same
 * addresses). */
int timers_image(struct ctl_mem *out, int max)
{
	timers_sample();
	int n = 0;
	if (n < max)
		out[n++] = (struct ctl_mem){ itv, sizeof itv };
	if (ntimers && n < max)
		out[n++] = (struct ctl_mem){ timers, ntimers * sizeof *timers };
	return n;
}

/* The tid in this child of the task that was `old` in the frozen process;
 * 0 when that thread does not run here (skipped, or not resumed yet). */
static pid_t new_tid_of(pid_t old)
{
	if (old == frozen_pid)
		return (pid_t)sys_getpid();   /* the leader forks: same role */
	for (int i = 0; i < nuwa_ft.nslots; i++) {
		struct park_slot *s = &nuwa_ft.slots[i];
		if (s->tid == old && s->state == SLOT_RESUMED)
			return s->new_tid;
	}
	return 0;
}

/* A CPU clock of a given task encodes its pid (kernel posix-cpu-timers.h:
 * clockid = ~pid << 3 | perthread << 2 | type).  Process-wide clocks name
 * the process, thread clocks a thread. */
static clockid_t map_clock(clockid_t c)
{
	if (c >= 0)
		return c;
	pid_t pid = (pid_t)~(c >> 3);
	if (pid == 0)
		return c;
	pid_t now = (c & 4) ? new_tid_of(pid) : pid == frozen_pid ? (pid_t)sys_getpid() : 0;
	if (!now)
		return c;
	return (clockid_t)((~(unsigned)now << 3) | ((unsigned)c & 7));
}

static int create_raw(struct ptimer *t, int *id)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = t->notify;
	sev.sigev_signo = t->signo;
	sev.sigev_value.sival_ptr = t->sival;
	if (t->notify & SIGEV_THREAD_ID) {
		sev._sigev_un._tid = new_tid_of(t->target);
		if (!sev._sigev_un._tid) {
			/* its thread does not run here: as in the parent, where a
			 * gone target gets nothing, the timer only counts */
			nuwa_debug("timer %d: target thread %d not in this child: SIGEV_NONE",
			           t->id, t->target);
			sev.sigev_notify = SIGEV_NONE;
		}
	}
	return (int)sys_timer_create(map_clock(t->clock), &sev, id);   /* 0 or -errno */
}

/* Without PR_TIMER_CREATE_RESTORE_IDS: create until the kernel hands out
 * t->id (extra ones deleted by the caller once all are made). */
static int create_in_order(struct ptimer *t, int *extra, int *nextra, int max)
{
	for (;;) {
		int id = -1, r = create_raw(t, &id);
		if (r < 0)
			return r;
		if (id == t->id)
			return 0;
		if (id > t->id || *nextra == max) {
			sys_timer_delete(id);
			return -EBUSY;
		}
		extra[(*nextra)++] = id;
	}
}

void timers_child_restore(void)
{
	int restore_ids = ntimers && !in_order_only &&
	                  prctl(PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0) == 0;
	int extra[512], nextra = 0, made = 0;
	for (size_t i = 0; i < ntimers; i++) {
		struct ptimer *t = &timers[i];
		int id = t->id, r;
		if (restore_ids)
			r = create_raw(t, &id);
		else
			r = create_in_order(t, extra, &nextra, (int)(sizeof extra / sizeof *extra));
		if (r < 0) {
			nuwa_warn("child: cannot re-create POSIX timer %d (errno %d): "
			          "the program's calls on it will fail with EINVAL", t->id, -r);
			continue;
		}
		made++;
		/* a disarmed timer keeps its interval too (common_timer_set) */
		long e = t->have_spec ? sys_timer_settime(t->id, 0, &t->spec, NULL) : 0;
		if (e < 0)
			nuwa_warn("child: cannot re-arm POSIX timer %d (errno %ld)", t->id, -e);
	}
	if (restore_ids)
		prctl(PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
	for (int i = 0; i < nextra; i++)
		sys_timer_delete(extra[i]);
	for (int w = 0; w < 3; w++) {
		struct itimerval v = itv[w];
		if (!v.it_value.tv_sec && !v.it_value.tv_usec) {
			if (!v.it_interval.tv_sec && !v.it_interval.tv_usec)
				continue;
			/* A periodic ITIMER_REAL reads 0 left while its SIGALRM is
			 * pending: the kernel re-arms it when the signal is taken
			 * (dequeue_signal).  The child does not inherit the pending
			 * signal, so it gets that expiry now. */
			v.it_value.tv_usec = 1;
		}
		long e = sys_setitimer(w, &v, NULL);
		if (e < 0)
			nuwa_warn("child: cannot re-arm itimer %d (errno %ld)", w, -e);
	}
	if (ntimers)
		nuwa_debug("child: %d of %zu POSIX timers re-created (%s)", made, ntimers,
		           restore_ids ? "PR_TIMER_CREATE_RESTORE_IDS" : "in creation order");
}

void timers_finish(void)
{
	ntimers = 0;
	memset(itv, 0, sizeof itv);
}

int timers_count(void)
{
	return (int)ntimers;
}
