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

#include "asan.h"
#include "ctlsock.h"
#include "fdremap.h"
#include "freeze.h"
#include "pool.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

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

REAL_DECL(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *));

static int own_fd(int fd)
{
	return nuwa_own_fd(nuwa_fd_high(fd));
}

static void wake_control(void)
{
	uint64_t one = 1;
	sys_write(wake_fd, &one, sizeof one);
}

void control_wake(void)
{
	wake_control();
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

/* A child's pidfd is readable: it has exited; reap it.  (The program's own
 * children, from nuwa_clone, have no pidfd here: they are its to wait for.) */
/* "exited with status N" / "was killed by signal SIGSEGV (core dumped)" */
static void describe_exit(int status, char *out, size_t len)
{
	if (WIFEXITED(status)) {
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
		return;
	}
	char name[32];
	nuwa_signal_name(WTERMSIG(status), name, sizeof name);
	snprintf(out, len, "was killed by signal %d (%s%s)", WTERMSIG(status), name,
	         WCOREDUMP(status) ? ", core dumped" : "");
}

/* Reap c if it has exited (flags: WNOHANG, or 0 to wait); 1 and *status
 * if it was, recorded for `nuwa status` and told to the control socket. */
static int kid_reap(struct nuwa_child *c, int flags, int *status)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (sys_waitid(P_PIDFD, c->pidfd, &si, WEXITED | flags | __WALL) < 0 || si.si_pid == 0)
		return 0;
	*status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
	                                   : (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
	if (c->kind == NUWA_CHILD_POOL) {
		/* never reported: it was not spawned; the pool replaces it (and
		 * says so) unless it ended it itself */
		pool_child_exited(c->pid);
		nuwa_child_remove(c);
		return 1;
	}
	char how[96];
	describe_exit(*status, how, sizeof how);
	/* A child killed by a signal is worth a line at the default level:
	 * it may be a crash right after it was made. */
	if (WIFSIGNALED(*status))
		nuwa_warn("child %d %s", c->pid, how);
	else
		nuwa_debug("child %d %s", c->pid, how);
	ctlsock_child_exited(c, *status);
	nuwa_child_exited(c, *status);
	return 1;
}

/* A child's pidfd is readable: it has exited; reap it.  (The program's own
 * children, from nuwa_clone, have no pidfd here: they are its to wait for.) */
static void kid_exited(struct nuwa_child *c)
{
	if (c->kind == NUWA_CHILD_FORK) {
		forkwatch_exited(c);   /* the program's: never waited for here */
		return;
	}
	int status;
	kid_reap(c, WNOHANG, &status);
}

int control_child_await_ready(struct nuwa_child *c, int timeout_ms, char *err, size_t errlen)
{
	pid_t pid = c->pid;
	int r = nuwa_ready_wait(c->ready_fd, timeout_ms);
	if (r == 1)
		return 1;
	if (r < 0) {
		/* Stuck before GO (a constructor that never returns?): a
		 * spawn must answer; the child goes. */
		kill(pid, SIGKILL);
		snprintf(err, errlen, "child %d was not ready after %d ms (killed)", pid, timeout_ms);
	}
	/* Its end of the channel is closed: it is dying (the descriptors go
	 * before the exit status is posted, kernel/exit.c do_exit). */
	int status = 0;
	if (!kid_reap(c, 0, &status)) {
		snprintf(err, errlen, "child %d closed its ready channel before it was ready", pid);
		return -ECHILD;
	}
	if (r < 0)
		return -ETIMEDOUT;
	char how[96];
	describe_exit(status, how, sizeof how);
	snprintf(err, errlen, "child %d %s before it was ready", pid, how);
	return -ECHILD;
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
	control_tid = (pid_t)sys_gettid();
	nuwa_children_forget();
	forkwatch_forget();
	/* The eventfd is shared with the parent: a trigger there must not
	 * wake us.  Same number, new object. */
	int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e >= 0) {
		sys_dup3(e, wake_fd, O_CLOEXEC);
		sys_close(e);
	}
	trigger_pending = 0;
	if (api_current) {
		/* nuwa_clone() returns 0 in a child, nuwa_freeze() 1 */
		api_complete(api_current, api_current->kind == API_FREEZE);
		api_current = NULL;
	}
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

static void handle_wake(void)
{
	uint64_t v;
	sys_read(wake_fd, &v, sizeof v);
	forkwatch_collect();
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
			nuwa_err("nuwa_freeze: %s", err[0] ? err : nuwa_strerror(-r));
			api_current = NULL;
			api_complete(req, r);
		}
	} else if (req) {
		api_current = req;   /* answered 0 in each child by control_child_reinit() */
		int r = tmpl_api_clone(req->n, req->pids);
		api_current = NULL;
		api_complete(req, r);
	}
	if (__atomic_exchange_n(&trigger_pending, 0, __ATOMIC_ACQ_REL))
		tmpl_on_trigger();
}

static struct nuwa_ctx loop_ctx;

/* In a new child, once its threads run: the control loop from the top. */
void control_restart(void)
{
	ctx_jump(&loop_ctx, 1);
}

/* tmpl_thaw(): a nuwa_freeze() being served returns 0, once the thaw's
 * reply is on its socket (control_main answers it at the top of the loop),
 * or a program that exits at once would cut that reply off. */
void control_api_thawed(void)
{
	if (api_current && api_current->kind == API_FREEZE) {
		api_thawed = api_current;
		api_current = NULL;
	}
}

static void *control_main(void *arg)
{
	nuwa_asan_own_thread();
	prctl(PR_SET_NAME, "nuwa-control");
	control_tid = (pid_t)sys_gettid();
	nuwa_signals_block_for_control();
	tls_init();
	__atomic_store_n(&control_running, tls_tid_offset() >= 0 ? 1 : -1, __ATOMIC_RELEASE);
	nuwa_futex_wake(&control_running, 1 << 30);
	idle_armed = nuwa_cfg.freeze_on_idle_ms > 0 && !nuwa_spawned;
	idle_since = ts_now(CLOCK_MONOTONIC);
	/* A new child's control thread comes back here (control_restart()),
	 * with the stack of the request that forked it dropped. */
	(void)ctx_save(&loop_ctx);
	for (;;) {
		if (api_thawed) {
			/* the reply of the request that thawed us was sent above */
			api_complete(api_thawed, 0);
			api_thawed = NULL;
		}
		/* before the list is mapped onto pfd[]: it removes entries */
		forkwatch_check();
		struct pollfd pfd[1 + NUWA_MAX_CHILDREN + CTLSOCK_MAX_POLLFDS + 1];
		int n = 0;
		pfd[n++] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
		int nk = nuwa_children_n(), nc = 0;
		for (int i = 0; i < nk; i++)   /* a negative fd is ignored by poll */
			pfd[n++] = (struct pollfd){ .fd = nuwa_child_at(i)->pidfd, .events = POLLIN };
		nc = ctlsock_pollfds(pfd + n, CTLSOCK_MAX_POLLFDS);
		/* last: a template's SIGTERM, SIGINT, SIGHUP (stopsig.c) */
		pfd[n + nc] = (struct pollfd){ .fd = stopsig_pollfd(), .events = POLLIN };
		int tmo = idle_poll_timeout_ms();
		const int more[] = { pool_timeout_ms(), ctlsock_timeout_ms(), forkwatch_timeout_ms() };
		for (size_t k = 0; k < sizeof more / sizeof more[0]; k++)
			if (more[k] >= 0 && (tmo < 0 || more[k] < tmo))
				tmo = more[k];
		long pr = sys_ppoll(pfd, n + nc + 1, tmo < 0 ? NULL : NUWA_MS_TS(tmo));
		idle_check();
		if (pr <= 0) {
			/* Nothing asked for: the pool refills (one fork per turn, so a
			 * request that comes meanwhile is served first). */
			pool_tick();
			continue; /* timeout, or EINTR: the trigger handler ran here */
		}
		if (pfd[0].revents) {
			handle_wake();
			continue; /* the children may have changed: poll afresh */
		}
		for (int i = nk; i >= 1; i--)
			if (pfd[i].revents)
				kid_exited(nuwa_child_at(i - 1));
		if (nc)
			ctlsock_dispatch(pfd + n, nc);
		if (pfd[n + nc].revents)
			stopsig_handle();
	}
	return NULL;
}

static void start_thread(void)
{
	sigset_t all, old;
	sigfillset(&all);
	/* The new thread inherits this mask: no program handler may run on
	 * it before it sets its own. */
	sys_sigprocmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int r = REAL(pthread_create)(&t, NULL, control_main, NULL);
	sys_sigprocmask(SIG_SETMASK, &old, NULL);
	if (r) {
		nuwa_err("cannot start the control thread: %s", nuwa_strerror(r));
		control_running = -1;
		return;
	}
	pthread_detach(t);
}

void control_start(void)
{
	int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e < 0) {
		nuwa_err("cannot create the control eventfd: %s", nuwa_strerror(errno));
		return;
	}
	wake_fd = own_fd(e);
	ctlsock_init(&nuwa_ctl_ops);
	start_thread();
}

/* The program forked (plain fork()): the child has lost the control thread. */
void control_after_app_fork(void)
{
	control_running = 0;
	nuwa_children_forget();
	forkwatch_forget();
	api_pending = NULL;
	api_current = NULL;
	api_thawed = NULL;
	trigger_pending = 0;
	if (wake_fd >= 0) {
		int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (e >= 0) {
			sys_dup3(e, wake_fd, O_CLOEXEC);
			sys_close(e);
		}
	}
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
	if ((pid_t)sys_gettid() == control_tid)
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
