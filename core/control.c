/* libnuwa's control thread: waits for triggers (the trigger signal, the
 * nuwa_clone() API, the control socket), runs freezes and forks, and reaps
 * the children it made.  It is not an application thread: it is never
 * parked, and in every child it is resumed first and rebuilds the rest. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdremap.h"
#include "freeze.h"
#include "resources.h"

#pragma weak fdremap_own_fd
#pragma weak fdremap_forget_own_fd
#pragma weak fdremap_prepare
#pragma weak fdremap_finish
#pragma weak ctlsock_init
#pragma weak ctlsock_pollfds
#pragma weak ctlsock_dispatch
#pragma weak ctlsock_child_exited
#pragma weak ctlsock_after_spawn
#pragma weak ctlsock_after_app_fork

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#define NUWA_FD_BASE 1000   /* libnuwa's descriptors live above this */
#define MAX_KIDS 1024

/* A request from an application thread (include/nuwa.h), answered by the
 * control thread.  The waiting thread is parked with the others, so in a
 * child the same request (same stack address) is answered there too. */
enum api_kind { API_CLONE, API_FREEZE };
struct api_req {
	int kind;
	int n;
	pid_t *pids;
	volatile int done;
	int result;
};

static int wake_fd = -1;
static pid_t control_tid;
/* 0 while the control thread starts, 1 ready, -1 unable to resume threads */
static volatile int control_running;
static volatile int trigger_pending, handover_pending;
static struct api_req *volatile api_pending;
static struct api_req *api_current;
/* nuwa_freeze() of a thawed template: answered once the thaw's reply is on
 * its socket, or a program that exits at once would cut it off. */
static struct api_req *api_thawed;
static struct kid { pid_t pid; int pidfd; } kids[MAX_KIDS];
static int nkids;

REAL_DECL(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *));

static int own_fd(int fd)
{
	if (fd < 0)
		return fd;
	int hi = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, NUWA_FD_BASE);
	if (hi >= 0) {
		syscall(SYS_close, fd);
		fd = hi;
	}
	if (fdremap_own_fd)
		fdremap_own_fd(fd);
	return fd;
}

static void wake_control(void)
{
	uint64_t one = 1;
	syscall(SYS_write, wake_fd, &one, sizeof one);
}

void control_trigger(void)
{
	trigger_pending = 1;
	wake_control();
}

void control_note_handover(void)
{
	handover_pending = 1;
	wake_control();
}

static void kid_add(pid_t pid, int pidfd)
{
	if (nkids == MAX_KIDS) {
		/* still reaped: the kernel autoreaps nothing with exit_signal 0,
		 * so keep waiting for the oldest one by pid instead */
		nuwa_warn("more than %d live children: child %d not tracked", MAX_KIDS, pid);
		syscall(SYS_close, pidfd);
		return;
	}
	kids[nkids].pid = pid;
	kids[nkids].pidfd = own_fd(pidfd);
	nkids++;
}

static void kid_reap(int i)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (syscall(SYS_waitid, P_PIDFD, kids[i].pidfd, &si, WEXITED | WNOHANG | __WALL, NULL) < 0 ||
	    si.si_pid == 0)
		return;
	int status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
	                                      : (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
	nuwa_debug("child %d exited, status 0x%x", kids[i].pid, status);
	if (fdremap_forget_own_fd)
		fdremap_forget_own_fd(kids[i].pidfd);
	syscall(SYS_close, kids[i].pidfd);
	pid_t pid = kids[i].pid;
	kids[i] = kids[--nkids];
	if (ctlsock_child_exited)
		ctlsock_child_exited(pid, status);
}

static void api_complete(struct api_req *req, int result)
{
	req->result = result;
	__atomic_store_n(&req->done, 1, __ATOMIC_RELEASE);
	nuwa_futex_wake(&req->done, 1);
}

/* In a new child, on its control thread, before the threads resume. */
void control_child_reinit(void)
{
	control_tid = (pid_t)syscall(SYS_gettid);
	for (int i = 0; i < nkids; i++) {
		if (fdremap_forget_own_fd)
			fdremap_forget_own_fd(kids[i].pidfd);
		syscall(SYS_close, kids[i].pidfd);
	}
	nkids = 0;
	/* The eventfd is shared with the parent: a trigger there must not
	 * wake us.  Same number, new object. */
	int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e >= 0) {
		syscall(SYS_dup3, e, wake_fd, O_CLOEXEC);
		syscall(SYS_close, e);
	}
	trigger_pending = 0;
	freeze_fork_set_exit_signal(0);
	if (api_current) {
		/* nuwa_clone() returns 0 in a child, nuwa_freeze() 1 */
		api_complete(api_current, api_current->kind == API_FREEZE);
		api_current = NULL;
	}

	/* Before the threads resume: the program must never see its
	 * descriptor table change under it. */
	if (ctlsock_after_spawn)
		ctlsock_after_spawn();
}

static long us_between(struct timespec a, struct timespec b)
{
	struct timespec d = ts_sub(b, a);
	return d.tv_sec * 1000000L + d.tv_nsec / 1000;
}

/* Freeze, fork n children, resume everybody.  Returns the number of
 * children, or -errno; *is_child is set in each child.  for_api: the
 * children belong to the program (SIGCHLD, waitpid), as fork()'s do. */
static int do_clone(int n, pid_t *pids, int for_api, int timeout_ms, int *is_child)
{
	char err[2048];
	*is_child = 0;
	struct timespec t0 = ts_now(CLOCK_MONOTONIC);
	int r = freeze_all(timeout_ms, err, sizeof err);
	if (r < 0) {
		nuwa_err("freeze failed: %s", err);
		return r;
	}
	struct timespec t1 = ts_now(CLOCK_MONOTONIC);
	if (fdremap_prepare && (r = fdremap_prepare(err, sizeof err)) < 0) {
		nuwa_err("freeze failed: descriptors: %s", err);
		freeze_release();
		return r;
	}
	if ((r = resources_prepare(err, sizeof err)) < 0) {   /* resources: list */
		nuwa_err("freeze failed: %s", err);
		if (fdremap_finish)
			fdremap_finish();
		freeze_release();
		return r;
	}
	struct timespec t2 = ts_now(CLOCK_MONOTONIC);
	char list[1024];
	size_t off = 0;
	int made = 0;
	list[0] = 0;
	freeze_fork_set_exit_signal(for_api ? SIGCHLD : 0);
	for (int i = 0; i < n; i++) {
		int pidfd = -1;
		pid_t pid = freeze_fork_child(&pidfd);
		if (pid == 0) {
			*is_child = 1;
			return 0;
		}
		if (pid < 0) {
			r = pid;
			if (pid == -ESRCH)
				nuwa_err("fork failed: the program's main thread has exited; "
				         "libnuwa forks from it (see docs/limits.md)");
			else
				nuwa_err("fork failed: %s", strerror(-pid));
			break;
		}
		if (for_api)
			syscall(SYS_close, pidfd);
		else
			kid_add(pid, pidfd);
		if (pids)
			pids[made] = pid;
		made++;
		if (off < sizeof list - 16)
			off += (size_t)snprintf(list + off, sizeof list - off, " %d", pid);
	}
	freeze_fork_set_exit_signal(0);
	struct timespec t3 = ts_now(CLOCK_MONOTONIC);
	if (fdremap_finish)
		fdremap_finish();
	resources_finish();   /* resources: freeze over */
	freeze_release();
	struct timespec t4 = ts_now(CLOCK_MONOTONIC);
	nuwa_debug("clone timing (us): freeze %ld, descriptors %ld, fork %ld, release %ld",
	           us_between(t0, t1), us_between(t1, t2), us_between(t2, t3), us_between(t3, t4));
	if (made)
		nuwa_info("clone done: %d children:%s", made, list);
	return made ? made : r;
}

/* ---- template mode ---- */

int tmpl_freeze(int timeout_ms, char *err, size_t errlen)
{
	int r = freeze_all(timeout_ms, err, errlen);
	if (r < 0)
		return r;
	if (fdremap_prepare && (r = fdremap_prepare(err, errlen)) < 0) {
		freeze_release();
		return r;
	}
	if ((r = resources_prepare(err, errlen)) < 0) {   /* resources: list */
		if (fdremap_finish)
			fdremap_finish();
		freeze_release();
		return r;
	}
	nuwa_state = NUWA_STATE_TEMPLATE;
	nuwa_info("template ready: %d threads frozen", nuwa_ft.nslots);
	return 0;
}

pid_t tmpl_spawn(const int *stdio, void (*child_fn)(void *), void *arg, int *pidfd)
{
	if (nuwa_state != NUWA_STATE_TEMPLATE)
		return -EINVAL;
	int fd = -1;
	pid_t pid = freeze_fork_child_with(stdio, child_fn, arg, &fd);
	if (pid > 0) {
		kid_add(pid, fd);
		if (pidfd)
			*pidfd = nkids ? kids[nkids - 1].pidfd : -1;
	}
	return pid;
}

int tmpl_thaw(void)
{
	if (nuwa_state != NUWA_STATE_TEMPLATE)
		return -EINVAL;
	if (api_current && api_current->kind == API_FREEZE) {
		api_thawed = api_current;   /* nuwa_freeze() will return 0 here */
		api_current = NULL;
	}
	if (fdremap_finish)
		fdremap_finish();
	resources_finish();   /* resources: freeze over */
	freeze_release();
	nuwa_info("thawed");
	return 0;
}

/* Snapshot mode: a child keeps the frozen image as the template; this
 * process goes on at once.  Returns the template's pid, 0 in the template
 * itself, or -errno with err filled. */
pid_t tmpl_snapshot(int timeout_ms, char *err, size_t errlen)
{
	int r = freeze_all(timeout_ms, err, errlen);
	if (r == 0 && fdremap_prepare && (r = fdremap_prepare(err, errlen)) < 0)
		freeze_release();
	if (r == 0 && (r = resources_prepare(err, errlen)) < 0) {   /* resources: list */
		if (fdremap_finish)
			fdremap_finish();
		freeze_release();
	}
	if (r < 0)
		return r;
	int pidfd = -1;
	pid_t pid = freeze_fork_template_child(&pidfd);
	if (pid == 0)
		return 0; /* we are the template now */
	if (pid > 0)
		kid_add(pid, pidfd);
	if (fdremap_finish)
		fdremap_finish();
	resources_finish();   /* resources: freeze over */
	freeze_release();
	if (pid < 0)
		snprintf(err, errlen, "fork: %s", strerror(-pid));
	else
		nuwa_info("snapshot done: template is process %d", pid);
	return pid;
}

/* Clone mode through the control socket: n children, everybody resumes.
 * Returns n, 0 in each child, or -errno. */
int tmpl_clone(int n, int timeout_ms, pid_t *pids, char *err, size_t errlen)
{
	int is_child;
	int r = do_clone(n, pids, 0, timeout_ms, &is_child);
	if (is_child)
		return 0;
	if (r < 0)
		snprintf(err, errlen, "%s (details in the process's log)", strerror(-r));
	return r;
}

/* NUWA_FREEZE_ON_IDLE_MS: trigger once, the first time every thread has
 * stayed idle for that long (sampled): at a freeze point, or asleep in a
 * system call (a contended pthread_mutex_lock publishes nothing). */
static struct timespec idle_since;
static int idle_armed;

static int all_threads_idle(void)
{
	int all = 1, any = 0;
	registry_lock();
	for (struct nuwa_thread *t = registry_head; t; t = t->next, any = 1)
		if (!t->idle && task_syscall_asleep(t->tid) < 0)
			all = 0;
	registry_unlock();
	return all && any;
}

static int idle_poll_timeout_ms(void)
{
	if (!idle_armed)
		return -1;
	int step = nuwa_cfg.freeze_on_idle_ms / 10;
	return step < 1 ? 1 : step > 50 ? 50 : step;
}

static void idle_check(void)
{
	if (!idle_armed)
		return;
	struct timespec now = ts_now(CLOCK_MONOTONIC);
	if (!all_threads_idle()) {
		idle_since = now;
		return;
	}
	struct timespec d = ts_sub(now, idle_since);
	if (d.tv_sec * 1000 + d.tv_nsec / 1000000 >= nuwa_cfg.freeze_on_idle_ms) {
		idle_armed = 0;
		nuwa_info("every thread idle for %d ms: freezing", nuwa_cfg.freeze_on_idle_ms);
		control_trigger();
	}
}

static void on_trigger(void)
{
	int is_child;
	char err[2048];
	switch (nuwa_cfg.mode) {
	case NUWA_MODE_CLONE:
		do_clone(nuwa_cfg.clones, NULL, 0, 0, &is_child);
		break;
	case NUWA_MODE_TEMPLATE:
		if (nuwa_state == NUWA_STATE_RUNNING && tmpl_freeze(0, err, sizeof err) < 0)
			nuwa_err("freeze failed: %s", err);
		break;
	case NUWA_MODE_SNAPSHOT:
		if (nuwa_state == NUWA_STATE_RUNNING && tmpl_snapshot(0, err, sizeof err) < 0)
			nuwa_err("freeze failed: %s", err);
		break;
	}
}

static void handle_wake(void)
{
	uint64_t v;
	syscall(SYS_read, wake_fd, &v, sizeof v);
	if (handover_pending) {
		handover_pending = 0;
		nuwa_signals_block_for_control();
	}
	struct api_req *req = __atomic_exchange_n(&api_pending, NULL, __ATOMIC_ACQ_REL);
	if (req && req->kind == API_FREEZE) {
		/* Answered later: after tmpl_thaw() here, by control_child_reinit()
		 * in each child. */
		char err[2048] = "";
		api_current = req;
		int r = nuwa_state == NUWA_STATE_RUNNING ? tmpl_freeze(0, err, sizeof err) : -EBUSY;
		if (r < 0) {
			nuwa_err("nuwa_freeze: %s", err[0] ? err : strerror(-r));
			api_current = NULL;
			api_complete(req, r);
		}
	} else if (req) {
		int is_child;
		api_current = req;
		int r = do_clone(req->n, req->pids, 1, 0, &is_child);
		if (is_child)
			return;
		api_current = NULL;
		api_complete(req, r);
	}
	if (__atomic_exchange_n(&trigger_pending, 0, __ATOMIC_ACQ_REL))
		on_trigger();
}

static void *control_main(void *arg)
{
	prctl(PR_SET_NAME, "nuwa-control");
	control_tid = (pid_t)syscall(SYS_gettid);
	nuwa_signals_block_for_control();
	tls_init();
	__atomic_store_n(&control_running, tls_tid_offset() >= 0 ? 1 : -1, __ATOMIC_RELEASE);
	nuwa_futex_wake(&control_running, 1 << 30);
	idle_armed = nuwa_cfg.freeze_on_idle_ms > 0 && !nuwa_spawned;
	idle_since = ts_now(CLOCK_MONOTONIC);
	for (;;) {
		if (api_thawed) {
			/* the reply of the request that thawed us was sent above */
			api_complete(api_thawed, 0);
			api_thawed = NULL;
		}
		struct pollfd pfd[1 + MAX_KIDS + 64];
		int n = 0;
		pfd[n++] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
		for (int i = 0; i < nkids; i++)
			pfd[n++] = (struct pollfd){ .fd = kids[i].pidfd, .events = POLLIN };
		int nk = nkids, nc = 0;
		if (ctlsock_pollfds)
			nc = ctlsock_pollfds(pfd + n, 64);
		int tmo = idle_poll_timeout_ms();
		struct timespec ts = { tmo / 1000, (tmo % 1000) * 1000000L };
		long pr = syscall(SYS_ppoll, pfd, n + nc, tmo < 0 ? NULL : &ts, NULL, 0);
		idle_check();
		if (pr <= 0)
			continue; /* timeout, or EINTR: the trigger handler ran here */
		if (pfd[0].revents) {
			handle_wake();
			continue; /* we may be a new child now: everything above is stale */
		}
		for (int i = nk; i >= 1; i--)
			if (pfd[i].revents)
				kid_reap(i - 1);
		if (nc && ctlsock_dispatch)
			ctlsock_dispatch(pfd + n, nc);
	}
	return NULL;
}

static void start_thread(void)
{
	sigset_t all, old;
	sigfillset(&all);
	/* The new thread inherits this mask: no program handler may run on
	 * it before it sets its own. */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, _NSIG / 8);
	pthread_t t;
	int r = REAL(pthread_create)(&t, NULL, control_main, NULL);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, _NSIG / 8);
	if (r) {
		nuwa_err("cannot start the control thread: %s", strerror(r));
		control_running = -1;
		return;
	}
	pthread_detach(t);
}

void control_start(void)
{
	int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e < 0) {
		nuwa_err("cannot create the control eventfd: %s", strerror(errno));
		return;
	}
	wake_fd = own_fd(e);
	if (ctlsock_init)
		ctlsock_init();
	start_thread();
}

/* The program forked (plain fork()): the child has lost the control thread. */
void control_after_app_fork(void)
{
	control_running = 0;
	nkids = 0;
	api_pending = NULL;
	api_current = NULL;
	api_thawed = NULL;
	trigger_pending = 0;
	if (wake_fd >= 0) {
		int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (e >= 0) {
			syscall(SYS_dup3, e, wake_fd, O_CLOEXEC);
			syscall(SYS_close, e);
		}
	}
	if (ctlsock_after_app_fork)
		ctlsock_after_app_fork();
	start_thread();
}

/* nuwa_clone() may come at the very start of main(), while the control
 * thread is still starting: wait for it (bounded). */
static int control_wait_ready(void)
{
	struct timespec step = { 0, 10000000 };
	for (int i = 0; i < 500; i++) {
		int v = __atomic_load_n(&control_running, __ATOMIC_ACQUIRE);
		if (v || wake_fd < 0)
			return v;
		nuwa_futex_wait(&control_running, 0, &step);
	}
	return 0;
}

static int api_post(struct api_req *req)
{
	if (control_wait_ready() <= 0)
		return -ENOSYS;
	if ((pid_t)syscall(SYS_gettid) == control_tid)
		return -EDEADLK;
	struct api_req *none = NULL;
	if (!__atomic_compare_exchange_n(&api_pending, &none, req, 0, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_RELAXED))
		return -EBUSY;
	wake_control();
	/* Wait as a thread idle at a freeze point: this thread is parked
	 * here and resumes here in every child. */
	nuwa_self.idle = FP_NUWA_API;
	while (!__atomic_load_n(&req->done, __ATOMIC_ACQUIRE))
		nuwa_futex_wait(&req->done, 0, NULL);
	nuwa_self.idle = FP_BUSY;
	return req->result;
}

int control_request_clone(int n, pid_t *pids)
{
	struct api_req req = { .kind = API_CLONE, .n = n, .pids = pids };
	return api_post(&req);
}

/* nuwa_freeze(): make this process a template (like `nuwa freeze`). */
int control_request_freeze(void)
{
	struct api_req req = { .kind = API_FREEZE };
	return api_post(&req);
}

/* Live children made by this process (status). */
int control_children(pid_t *pids, int max)
{
	int n = nkids < max ? nkids : max;
	for (int i = 0; i < n; i++)
		pids[i] = kids[i].pid;
	return n;
}
