/* Template spawn: libnuwa's main model (Nuwa, Android's Zygote).
 *
 * A second copy of the synthetic program builds the same state, warms up and
 * freezes itself ONCE with nuwa_freeze(); from then on every child is one
 * nuwa_spawn(template, 0) from this (launcher) process: the template forks
 * and only the child resumes its threads.  Unlike nuwa_clone() there is no
 * freeze, no descriptor snapshot and no parent whose threads must be
 * released per copy.  That is what issue 5 calls the spawn latency.
 *
 * The child reports exactly as a nuwa_clone() copy does (child_report():
 * every worker woken through its own channel, the last one stamps t_all),
 * into a page both sides share: a memfd created here, handed to the
 * template as descriptor 3 and mapped MAP_SHARED there before it freezes,
 * so every child of the template inherits the mapping.  Each child takes
 * its own slot (an atomic increment of nslots).  CLOCK_MONOTONIC is one
 * clock for all processes, so t_all - t0 is meaningful across them. */
#include "tmpl.h"
#include "bench_util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pid_t (*nuwa_spawn_fn)(pid_t, int);
static int (*nuwa_pool_fn)(pid_t, int);
static struct shared *tshared;   /* the launcher's view of the template's page */
static pid_t tmpl_pid;
static int tmpl_timeout_ms;
static const char *tmpl_cli;
static double first_us = -1;
static int tmpl_frozen;      /* it served a spawn: `nuwa stop` applies */

/* ---- template side ---------------------------------------------------------- */

static struct shared *map_shared(int fd)
{
	void *p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap shared page: %s", strerror(errno));
	return p;
}

void tspawn_template_main(const struct tmpl_cfg *c, int shm_fd)
{
	int (*freeze)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "nuwa_freeze");
	if (shm_fd < 0)
		die("template: --shm-fd is required");
	g_shared = map_shared(shm_fd);
	/* The mapping is all the children need; no descriptor to carry. */
	close(shm_fd);
	if (!freeze) {
		g_shared->tmpl_status = -ENOSYS;
		futex_wake_shared(&g_shared->tmpl_status);
		die("template: nuwa_freeze not found: libnuwa is not preloaded");
	}
	state_init(c);
	__atomic_store_n(&g_shared->tmpl_status, 1, __ATOMIC_RELEASE);
	futex_wake_shared(&g_shared->tmpl_status);
	int r = freeze();
	if (r == 1) {
		/* A spawned child: every other thread runs again. */
		child_report(NULL);
		for (;;)
			pause();
	}
	/* 0: thawed (nobody here thaws it); < 0: the freeze failed. */
	__atomic_store_n(&g_shared->tmpl_status, r < 0 ? r : -ECANCELED, __ATOMIC_RELEASE);
	futex_wake_shared(&g_shared->tmpl_status);
	die("template: nuwa_freeze() returned %d (%s)", r, r < 0 ? strerror(-r) : "thawed");
}

/* ---- launcher side ---------------------------------------------------------- */

static int tmpl_alive(void)
{
	return waitpid(tmpl_pid, NULL, WNOHANG) == 0;
}

/* The launcher's environment (libnuwa preloaded) with NUWA_MODE=template. */
static char **template_env(void)
{
	int n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof *env);
	int j = 0;
	for (int i = 0; i < n; i++)
		if (strncmp(environ[i], "NUWA_MODE=", 10))
			env[j++] = environ[i];
	env[j++] = "NUWA_MODE=template";
	return env;
}

/* Wait for the child's report in slot 0; on timeout say what is missing. */
static int wait_child(const struct tmpl_cfg *c, const char *what)
{
	struct slot *s = &tshared->slots[0];
	if (wait_change(&s->done, 0, now_ns() + (int64_t)tmpl_timeout_ms * 1000000) == 0)
		return 0;
	note_error("%s: no report within %d ms (threads run: %d of %d, stolen wake-ups: %d)",
		   what, tmpl_timeout_ms, s->acks, c->threads + 1, tshared->stolen);
	return -1;
}

static void reset_tslots(void)
{
	memset((void *)tshared->slots, 0, sizeof tshared->slots);
	tshared->nslots = 0;
}

static struct tmpl_cfg tcfg;

int tspawn_start(const struct tmpl_cfg *c, const char *self_exe, const char *nuwa_cli,
		 int timeout_ms)
{
	tcfg = *c;
	tmpl_cli = nuwa_cli;
	tmpl_timeout_ms = timeout_ms;
	nuwa_spawn_fn = (pid_t (*)(pid_t, int))dlsym(RTLD_DEFAULT, "nuwa_spawn");
	nuwa_pool_fn = (int (*)(pid_t, int))dlsym(RTLD_DEFAULT, "nuwa_pool");
	if (!nuwa_spawn_fn) {
		note_error("nuwa_spawn not found: libnuwa is not preloaded");
		return -1;
	}
	int fd = memfd_create("bench-tmpl-shared", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, sizeof(struct shared)) < 0)
		die("memfd: %s", strerror(errno));
	tshared = map_shared(fd);

	struct child_argv ca;
	child_argv_init(&ca, self_exe, c, "template", "--shm-fd");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 3);   /* dup2 clears FD_CLOEXEC */
	/* Not our stdout: the driver reads it to EOF, and the template (and its
	 * children) must not hold it open. */
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	char **env = template_env();
	int e = posix_spawn(&tmpl_pid, self_exe, &fa, NULL, ca.argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(fd);
	if (e) {
		note_error("template: posix_spawn: %s", strerror(e));
		tmpl_pid = 0;
		return -1;
	}

	/* Building the heap: first-touch faults up to ~20 ms per MiB on a busy VM. */
	int64_t deadline = now_ns() + ((int64_t)timeout_ms + c->warmup_ms + c->heap_mib * 20) * 1000000;
	while (__atomic_load_n(&tshared->tmpl_status, __ATOMIC_ACQUIRE) == 0) {
		if (!tmpl_alive() || now_ns() > deadline) {
			note_error("template: did not get ready (%s)", tmpl_alive() ? "timeout" : "exited");
			return -1;
		}
		futex_wait_shared(&tshared->tmpl_status, 0, 50000000);
	}
	/* Frozen once nuwa_spawn() stops answering -EINVAL ("not a template
	 * yet"; -ESRCH before its control socket listens).  This first child is
	 * a probe: timed, reported apart, not one of the repetitions. */
	for (;;) {
		int st = __atomic_load_n(&tshared->tmpl_status, __ATOMIC_ACQUIRE);
		if (st < 0 || !tmpl_alive()) {
			note_error("template: nuwa_freeze() failed (%d: %s)", st,
				   st < 0 ? strerror(-st) : "template exited");
			return -1;
		}
		reset_tslots();
		int64_t t0 = now_ns();
		pid_t pid = nuwa_spawn_fn(tmpl_pid, 0);
		if (pid > 0) {
			if (wait_child(c, "first template spawn") == 0)
				first_us = (tshared->slots[0].t_all - t0) / 1e3;
			reap(pid);
			tmpl_frozen = 1;
			return first_us < 0 ? -1 : 0;
		}
		if ((pid != -EINVAL && pid != -ESRCH) || now_ns() > deadline) {
			note_error("template: nuwa_spawn() returned %d (%s)", pid, strerror(-pid));
			return -1;
		}
		usleep(2000);
	}
}

struct tspawn_times tspawn_measure(void)
{
	struct tspawn_times t = { -1, -1, -1 };
	reset_tslots();
	struct slot *s = &tshared->slots[0];
	int64_t t0 = now_ns();
	pid_t pid = nuwa_spawn_fn(tmpl_pid, 0);
	int64_t t1 = now_ns();
	if (pid <= 0) {
		note_error("nuwa_spawn(template, 0) returned %d (%s)", pid, strerror(-pid));
		return t;
	}
	t.reply = (t1 - t0) / 1e3;
	if (wait_child(&tcfg, "template spawn") == 0) {
		t.all = (s->t_all - t0) / 1e3;
		t.main = (s->t_main - t0) / 1e3;
	}
	reap(pid);
	return t;
}

int tspawn_pool(int n, int wait)
{
	if (!nuwa_pool_fn) {
		note_error("nuwa_pool not found: this libnuwa has no pool");
		return -1;
	}
	/* A pooled child of a big template on a busy machine: a fork and the
	 * clone of every thread, at a low priority. */
	int64_t deadline = now_ns() + (int64_t)tmpl_timeout_ms * 3 * 1000000;
	for (;;) {
		int r = nuwa_pool_fn(tmpl_pid, n);
		if (r < 0) {
			note_error("nuwa_pool(template, %d) returned %d (%s)", n, r, strerror(-r));
			return -1;
		}
		if (!wait || r >= n)
			return 0;
		if (now_ns() > deadline) {
			note_error("the pool of %d had %d children ready after %d ms", n, r,
				   tmpl_timeout_ms * 3);
			return -1;
		}
		usleep(1000);
	}
}

struct tspawn_times tspawn_measure_pool(void)
{
	struct tspawn_times t = { -1, -1, -1 };
	/* Two ready: the one left after the take makes the template wait its
	 * refill delay, so no refill fork runs beside the measured child (with
	 * the pool empty it would refill at once). */
	if (tspawn_pool(2, 1) < 0) {
		tspawn_pool(0, 0);   /* the spawns measured without the pool stay so */
		return t;
	}
	t = tspawn_measure();
	tspawn_pool(0, 0);
	return t;
}

/* The template's children (all of them pooled ones before a burst), from
 * /proc/PID/task/TID/children of every task. */
static int template_children(pid_t *out, int max)
{
	char path[128];
	snprintf(path, sizeof path, "/proc/%d/task", (int)tmpl_pid);
	DIR *d = opendir(path);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) && n < max) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char cp[512];
		snprintf(cp, sizeof cp, "%s/%s/children", path, e->d_name);
		FILE *f = fopen(cp, "re");
		int pid;
		while (f && n < max && fscanf(f, "%d", &pid) == 1)
			out[n++] = pid;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

int tspawn_burst(int n, int pool, double *lat, double *total, double *uss, int *nuss,
		 double *tmpl_rss)
{
	int max_uss = *nuss;
	*nuss = 0;
	*total = -1;
	if (tspawn_pool(pool, 1) < 0) {
		tspawn_pool(0, 0);
		return 0;
	}
	struct mem_usage m;
	if (read_smaps_rollup(tmpl_pid, &m) == 0)
		*tmpl_rss = m.rss;
	pid_t kids[64];
	int nk = template_children(kids, 64);
	for (int i = 0; i < nk && *nuss < max_uss; i++)
		if (read_smaps_rollup(kids[i], &m) == 0)
			uss[(*nuss)++] = m.uss;
	/* Back to back: each child is killed once it has reported (the
	 * template reaps it), not waited for. */
	int ok = 0;
	int64_t t_first = now_ns(), t_last = t_first;
	for (int i = 0; i < n; i++) {
		reset_tslots();
		struct slot *s = &tshared->slots[0];
		int64_t t0 = now_ns();
		pid_t pid = nuwa_spawn_fn(tmpl_pid, 0);
		if (pid <= 0) {
			note_error("burst spawn %d: nuwa_spawn returned %d (%s)", i, pid, strerror(-pid));
			break;
		}
		if (wait_child(&tcfg, "burst spawn") < 0) {
			kill(pid, SIGKILL);
			break;
		}
		lat[ok++] = (s->t_all - t0) / 1e3;
		t_last = s->t_all;
		kill(pid, SIGKILL);
	}
	if (ok)
		*total = (t_last - t_first) / 1e3;
	tspawn_pool(0, 0);
	return ok;
}

double tspawn_first_us(void)
{
	return first_us;
}

/* `nuwa stop PID` ends a template cleanly (its control socket is removed);
 * SIGKILL if that fails or takes too long. */
void tspawn_stop(void)
{
	if (tmpl_pid <= 0)
		return;
	int pfd = (int)syscall(SYS_pidfd_open, tmpl_pid, 0);
	if (tmpl_cli && tmpl_frozen && tmpl_alive()) {
		char pidbuf[16];
		snprintf(pidbuf, sizeof pidbuf, "%d", (int)tmpl_pid);
		char *argv[] = { (char *)tmpl_cli, "stop", pidbuf, NULL };
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		pid_t cli;
		int st = 0;
		if (posix_spawn(&cli, tmpl_cli, &fa, NULL, argv, environ) == 0) {
			while (waitpid(cli, &st, 0) < 0 && errno == EINTR)
				;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				note_error("`nuwa stop %d` failed (status %d)", (int)tmpl_pid, st);
		}
		posix_spawn_file_actions_destroy(&fa);
	}
	if (pfd >= 0) {
		struct pollfd p = { pfd, POLLIN, 0 };
		if (poll(&p, 1, 2000) != 1)
			kill(tmpl_pid, SIGKILL);
		close(pfd);
	} else {
		kill(tmpl_pid, SIGKILL);
	}
	while (waitpid(tmpl_pid, NULL, 0) < 0 && errno == EINTR)
		;
	tmpl_pid = 0;
	tmpl_frozen = 0;
}
