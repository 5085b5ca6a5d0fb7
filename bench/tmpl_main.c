/* bench-tmpl: the synthetic template program and its in-process drivers.
 *
 *   bench-tmpl spawn  -t T -H MiB -r REPS -c COLD_REPS [--nuwa-cli PATH]
 *                     template spawn (nuwa_spawn of a frozen copy of this program)
 *                     vs nuwa_clone vs raw fork vs cold start
 *   bench-tmpl freeze -t T -H MiB -r REPS [-l]           nuwa_clone(1) timings (+ NUWA_LOG)
 *   bench-tmpl burst  -t T -H MiB -n SPAWNS -p POOL -c COLD_REPS --nuwa-cli PATH
 *                     SPAWNS back to back from a template with a pool of POOL,
 *                     pooled children's USS, vs COLD_REPS fork+exec in a row
 *   bench-tmpl memory -t T -H MiB -n CHILDREN            USS/PSS of copies
 *   bench-tmpl cold-child ... --report-fd FD             target of the cold start
 *   bench-tmpl template ... --shm-fd FD                  the template (tmpl_tspawn.c)
 *
 * nuwa_clone is looked up with dlsym(RTLD_DEFAULT) so that the same binary
 * runs with and without libnuwa preloaded (it then reports nuwa as absent).
 * Prints one JSON object on stdout. */
#include "tmpl.h"
#include "bench_util.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static struct tmpl_cfg cfg = { .threads = 16, .heap_mib = 256, .pipes = 8, .epolls = 2,
	.eventfds = 4, .warmup_ms = 200 };
static int reps = 5, cold_reps = 3, nchildren = 10, timeout_ms = 10000, report_fd = -1,
	shm_fd = -1, pool_size = 8;
static const char *nuwa_cli;
static int (*nuwa_clone_fn)(int, pid_t *);
static int nuwa_failed;
static char self_exe[4096];

#define MAXREPS 1000
#define MAXERR 16
static char errors[MAXERR][200];
static int nerrors;

void note_error(const char *fmt, ...)
{
	va_list ap;
	if (nerrors >= MAXERR)
		return;
	va_start(ap, fmt);
	vsnprintf(errors[nerrors++], sizeof errors[0], fmt, ap);
	va_end(ap);
}

static void reset_slots(void)
{
	memset((void *)g_shared->slots, 0, sizeof g_shared->slots);
	g_shared->nslots = 0;
	g_shared->phase = 0;
}

/* Kill a copy and wait until it is gone, so that tearing down its address
 * space does not overlap the next measurement.  libnuwa reaps the copies it
 * makes itself (waitpid then fails with ECHILD), so wait on a pidfd, which
 * becomes readable when the process has exited whoever reaps it. */
void reap(pid_t pid)
{
	if (pid <= 0)
		return;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	kill(pid, SIGKILL);
	if (pfd >= 0) {
		struct pollfd p = { pfd, POLLIN, 0 };
		poll(&p, 1, timeout_ms);
		close(pfd);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Wait for a copy's report; on timeout say what is missing. */
static int wait_report(struct slot *s, const char *what)
{
	if (wait_change(&s->done, 0, now_ns() + (int64_t)timeout_ms * 1000000) == 0)
		return 0;
	note_error("%s: no report within %d ms (threads run: %d of %d, stolen wake-ups: %d)",
		   what, timeout_ms, s->acks, cfg.threads + 1, g_shared->stolen);
	return -1;
}

static void idle_forever(void)
{
	for (;;)
		pause();
}

/* ---- one measurement each --------------------------------------------------- */

/* Raw fork(2): the floor for a copy-on-write copy.  The raw syscall is used so
 * that neither glibc's nor libnuwa's fork wrapper adds to the floor. */
static double measure_fork(void)
{
	reset_slots();
	struct slot *s = &g_shared->slots[0];
	int64_t t0 = now_ns();
	pid_t pid = syscall(SYS_fork);
	if (pid == 0) {
		s->t_main = s->t_all = now_ns();
		__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
		futex_wake_shared(&s->done);
		_exit(0);
	}
	if (pid < 0)
		die("fork: %s", strerror(errno));
	double us = wait_report(s, "fork") ? -1 : (s->t_main - t0) / 1e3;
	reap(pid);
	return us;
}

struct spawn_times {
	double all, main, parent;
};

/* nuwa_clone(1) until every thread of the copy has run. */
static struct spawn_times measure_spawn(void)
{
	struct spawn_times t = { -1, -1, -1 };
	pid_t pid = 0;
	reset_slots();
	struct slot *s = &g_shared->slots[0];
	int64_t t0 = now_ns();
	int r = nuwa_clone_fn(1, &pid);
	if (r == 0) {
		child_report(NULL);
		idle_forever();
	}
	int64_t t1 = now_ns();
	if (r != 1) {
		note_error("nuwa_clone(1) returned %d (%s)", r, r < 0 ? strerror(-r) : "?");
		return t;
	}
	t.parent = (t1 - t0) / 1e3;
	if (wait_report(s, "nuwa_clone child") == 0) {
		t.all = (s->t_all - t0) / 1e3;
		t.main = (s->t_main - t0) / 1e3;
	}
	reap(pid);
	return t;
}

void child_argv_init(struct child_argv *a, const char *exe, const struct tmpl_cfg *c,
		     const char *mode, const char *fdopt)
{
	snprintf(a->t, sizeof a->t, "%d", c->threads);
	snprintf(a->h, sizeof a->h, "%ld", c->heap_mib);
	snprintf(a->w, sizeof a->w, "%d", c->warmup_ms);
	snprintf(a->p, sizeof a->p, "%d", c->pipes);
	snprintf(a->e, sizeof a->e, "%d", c->epolls);
	snprintf(a->v, sizeof a->v, "%d", c->eventfds);
	char *v[] = { (char *)exe, (char *)mode, "-t", a->t, "-H", a->h, "-w", a->w,
		"--pipes", a->p, "--epolls", a->e, "--eventfds", a->v, (char *)fdopt, "3", NULL };
	memcpy(a->argv, v, sizeof v);
}

/* posix_spawn (fork+exec without copying our page tables) of this program
 * without libnuwa, until it has rebuilt the same warmed state and every
 * thread has run. */
static double measure_cold(void)
{
	int rp[2];
	struct child_argv ca;
	if (pipe2(rp, O_CLOEXEC) < 0)
		die("pipe2: %s", strerror(errno));
	child_argv_init(&ca, self_exe, &cfg, "cold-child", "--report-fd");
	char **argv = ca.argv;
	int nenv = 0;
	while (environ[nenv])
		nenv++;
	char **env = calloc(nenv + 1, sizeof *env);
	for (int i = 0, j = 0; i < nenv; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) && strncmp(environ[i], "NUWA_", 5))
			env[j++] = environ[i];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, rp[1], 3);
	pid_t pid;
	int64_t t0 = now_ns();
	int e = posix_spawn(&pid, self_exe, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(rp[1]);
	if (e)
		die("posix_spawn: %s", strerror(e));
	double us = -1;
	int64_t t_ready;
	struct pollfd pfd = { rp[0], POLLIN, 0 };
	/* First-touch page faults cost up to ~15 us per page on a VM, more
	 * when the machine is busy: allow 20 ms per MiB to build the heap. */
	int wait_ms = timeout_ms + cfg.warmup_ms + (int)cfg.heap_mib * 20;
	if (poll(&pfd, 1, wait_ms) == 1 && read(rp[0], &t_ready, sizeof t_ready) == sizeof t_ready)
		us = (t_ready - t0) / 1e3;
	else
		note_error("cold start: no report within %d ms", wait_ms);
	close(rp[0]);
	reap(pid);
	return us;
}

/* ---- modes -------------------------------------------------------------------- */

static void emit_head(struct jw *w, const char *mode)
{
	jw_str(w, "mode", mode);
	jw_int(w, "threads", cfg.threads);
	jw_int(w, "heap_mib", cfg.heap_mib);
	jw_int(w, "pipes", cfg.pipes);
	jw_int(w, "epolls", cfg.epolls);
	jw_int(w, "eventfds", cfg.eventfds);
	jw_int(w, "warmup_ms", cfg.warmup_ms);
	jw_bool(w, "load", cfg.load);
	jw_bool(w, "nuwa_loaded", nuwa_clone_fn != NULL);
}

static void emit_tail(struct jw *w)
{
	jw_int(w, "stolen_wakeups", g_shared->stolen);
	jw_int(w, "eintr_seen", g_shared->eintr);
	jw_arr_open(w, "errors");
	for (int i = 0; i < nerrors; i++)
		jw_str(w, NULL, errors[i]);
	jw_arr_close(w);
	jw_end(w);
}

static void mode_spawn(int with_fork, int with_cold, const char *name)
{
	static double fork_us[MAXREPS], all_us[MAXREPS], main_us[MAXREPS], par_us[MAXREPS],
		cold_us[MAXREPS], ts_all[MAXREPS], ts_main[MAXREPS], ts_reply[MAXREPS],
		pl_all[MAXREPS], pl_main[MAXREPS], pl_reply[MAXREPS];
	int n = 0, nc = 0, nt = 0, np = 0, pool_ok = 1;
	/* The template spawn exists where the baselines are measured ("spawn"
	 * mode): a second process, frozen once, serves every repetition. */
	int with_tmpl = with_fork, tmpl_ok = 0;
	state_init(&cfg);
	if (with_tmpl)
		tmpl_ok = tspawn_start(&cfg, self_exe, nuwa_cli, timeout_ms) == 0;
	for (int i = 0; i < reps; i++) {
		/* Interleaved, so that drift on a noisy machine hits all alike. */
		if (with_fork)
			fork_us[i] = measure_fork();
		if (tmpl_ok) {
			struct tspawn_times t = tspawn_measure();
			if (t.all < 0) {
				tmpl_ok = 0;
				note_error("stopped measuring template spawns after the first failure");
			}
			ts_all[nt] = t.all, ts_main[nt] = t.main, ts_reply[nt] = t.reply;
			nt++;
			/* The same template, from a pool of one ready child. */
			if (pool_ok) {
				t = tspawn_measure_pool();
				if (t.all < 0) {
					pool_ok = 0;
					note_error("stopped measuring pool spawns after the first failure");
				}
				pl_all[np] = t.all, pl_main[np] = t.main, pl_reply[np] = t.reply;
				np++;
			}
		}
		if (nuwa_clone_fn && !nuwa_failed) {
			struct spawn_times t = measure_spawn();
			/* One copy that never reports is a finding; repeating it
			 * only multiplies the timeout. */
			if (t.all < 0) {
				nuwa_failed = 1;
				note_error("stopped measuring spawns after the first failure");
			}
			all_us[n] = t.all, main_us[n] = t.main, par_us[n] = t.parent;
			n++;
		}
		if (with_cold && i < cold_reps)
			cold_us[nc++] = measure_cold();
	}
	if (with_tmpl)
		tspawn_stop();
	if (!nuwa_clone_fn)
		note_error("nuwa_clone not found: libnuwa is not preloaded");
	struct jw w;
	jw_begin(&w, stdout);
	emit_head(&w, name);
	jw_nums(&w, "fork_us", fork_us, with_fork ? reps : 0);
	if (with_tmpl) {
		double first = tspawn_first_us();
		jw_nums(&w, "spawn_us", ts_all, nt);
		jw_nums(&w, "spawn_main_us", ts_main, nt);
		jw_nums(&w, "spawn_reply_us", ts_reply, nt);
		jw_nums(&w, "spawn_first_us", &first, first >= 0);
		jw_nums(&w, "pool_us", pl_all, np);
		jw_nums(&w, "pool_main_us", pl_main, np);
		jw_nums(&w, "pool_reply_us", pl_reply, np);
	}
	jw_nums(&w, "clone_us", all_us, n);
	jw_nums(&w, "clone_main_us", main_us, n);
	jw_nums(&w, "clone_parent_us", par_us, n);
	jw_nums(&w, "cold_us", cold_us, nc);
	emit_tail(&w);
}

/* A burst of spawns from a template with a pool, and fork+exec in a row. */
static void mode_burst(void)
{
	static double lat[MAXREPS], cold[MAXREPS], uss[64];
	double total = -1, tmpl_rss = -1;
	int nuss = 64, ok = 0;
	if (nchildren > MAXREPS)
		die("-n must be 1..%d", MAXREPS);
	state_init(&cfg);
	if (tspawn_start(&cfg, self_exe, nuwa_cli, timeout_ms) == 0)
		ok = tspawn_burst(nchildren, pool_size, lat, &total, uss, &nuss, &tmpl_rss);
	tspawn_stop();
	int64_t t0 = now_ns();
	for (int i = 0; i < cold_reps; i++)
		cold[i] = measure_cold();
	double cold_total = (now_ns() - t0) / 1e3;
	struct jw w;
	jw_begin(&w, stdout);
	emit_head(&w, "burst");
	jw_int(&w, "spawns", nchildren);
	jw_int(&w, "pool", pool_size);
	jw_nums(&w, "burst_us", lat, ok);
	jw_nums(&w, "burst_total_us", &total, total >= 0);
	jw_nums(&w, "pooled_uss_kib", uss, nuss);
	jw_nums(&w, "template_rss_kib", &tmpl_rss, tmpl_rss >= 0);
	jw_nums(&w, "cold_us", cold, cold_reps);
	jw_nums(&w, "cold_total_us", &cold_total, cold_reps > 0);
	emit_tail(&w);
}

static void emit_mem(struct jw *w, const char *key, const struct mem_usage *m)
{
	jw_obj_open(w, key);
	jw_int(w, "rss_kib", m->rss);
	jw_int(w, "pss_kib", m->pss);
	jw_int(w, "uss_kib", m->uss);
	jw_obj_close(w);
}

static void emit_children(struct jw *w, const char *key, pid_t *pids, int n)
{
	double uss[MAX_SLOTS], pss[MAX_SLOTS], rss[MAX_SLOTS];
	int k = 0;
	for (int i = 0; i < n; i++) {
		struct mem_usage m;
		if (pids[i] <= 0 || read_smaps_rollup(pids[i], &m) < 0)
			continue;
		uss[k] = m.uss, pss[k] = m.pss, rss[k] = m.rss;
		k++;
	}
	jw_obj_open(w, key);
	jw_nums(w, "uss_kib", uss, k);
	jw_nums(w, "pss_kib", pss, k);
	jw_nums(w, "rss_kib", rss, k);
	jw_obj_close(w);
}

/* Copies wait for the parent's command, then each writes its own tenth of
 * the heap (slices differ, so no two copies dirty the same page). */
static void memory_child(struct slot *s, int idx)
{
	wait_change(&g_shared->phase, 0, INT64_MAX);
	state_touch((idx % 10) / 10.0, 0.1);
	__atomic_store_n(&s->phase_done, 1, __ATOMIC_RELEASE);
	futex_wake_shared(&s->phase_done);
	for (;;)
		syscall(SYS_pause);   /* raw: a raw-fork()ed copy must not enter libnuwa */
}

static void memory_round(struct jw *w, const char *key, int use_nuwa)
{
	pid_t pids[MAX_SLOTS] = { 0 };
	int n = nchildren;
	reset_slots();
	if (use_nuwa) {
		int r = nuwa_clone_fn(n, pids);
		if (r == 0) {
			struct slot *s = child_report(NULL);
			memory_child(s, (int)(s - g_shared->slots));
		}
		if (r != n) {
			note_error("nuwa_clone(%d) returned %d", n, r);
			n = r > 0 ? r : 0;
		}
	} else {
		for (int i = 0; i < n; i++) {
			pids[i] = syscall(SYS_fork);
			if (pids[i] == 0) {
				struct slot *s = &g_shared->slots[i];
				s->pid = getpid();
				s->t_main = s->t_all = now_ns();
				__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
				futex_wake_shared(&s->done);
				memory_child(s, i);
			}
		}
		g_shared->nslots = n;
	}
	for (int i = 0; i < n; i++)
		wait_report(&g_shared->slots[i], key);
	struct mem_usage tm;
	jw_obj_open(w, key);
	read_smaps_rollup(getpid(), &tm);
	emit_mem(w, "template_after_spawn", &tm);
	emit_children(w, "after_spawn", pids, n);
	__atomic_store_n(&g_shared->phase, 1, __ATOMIC_RELEASE);
	futex_wake_shared(&g_shared->phase);
	/* All copies fault in their tenth of the heap at once: ~n/10 heaps
	 * of copy-on-write faults, at up to 20 ms per MiB on a busy VM. */
	int64_t touch_ms = timeout_ms + (int64_t)cfg.heap_mib * 2 * n;
	for (int i = 0; i < n; i++)
		if (wait_change(&g_shared->slots[i].phase_done, 0,
				now_ns() + touch_ms * 1000000) < 0)
			note_error("%s: copy %d did not touch its heap in time", key, i);
	read_smaps_rollup(getpid(), &tm);
	emit_mem(w, "template_after_touch", &tm);
	emit_children(w, "after_touch", pids, n);
	jw_obj_close(w);
	for (int i = 0; i < n; i++)
		reap(pids[i]);
}

static void mode_memory(void)
{
	struct mem_usage tm;
	if (nchildren > MAX_SLOTS)
		die("at most %d children", MAX_SLOTS);
	state_init(&cfg);
	read_smaps_rollup(getpid(), &tm);
	struct jw w;
	jw_begin(&w, stdout);
	emit_head(&w, "memory");
	jw_int(&w, "children", nchildren);
	jw_int(&w, "heap_bytes", state_heap_bytes());
	emit_mem(&w, "template", &tm);
	memory_round(&w, "fork", 0);
	if (nuwa_clone_fn)
		memory_round(&w, "nuwa", 1);
	else
		note_error("nuwa_clone not found: libnuwa is not preloaded");
	emit_tail(&w);
}

static void mode_cold_child(void)
{
	static struct slot local;
	state_init(&cfg);
	child_report(&local);
	while (!local.done)
		futex_wait_shared(&local.done, 0, -1);
	int64_t t = local.t_all;
	if (write(report_fd, &t, sizeof t) != sizeof t)
		_exit(3);
	idle_forever();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pipes", 1, 0, 'P' }, { "epolls", 1, 0, 'E' }, { "eventfds", 1, 0, 'V' },
		{ "report-fd", 1, 0, 'R' }, { "timeout-ms", 1, 0, 'T' }, { "shm-fd", 1, 0, 'S' },
		{ "nuwa-cli", 1, 0, 'N' }, { 0, 0, 0, 0 },
	};
	if (argc < 2)
		die("usage: bench-tmpl spawn|freeze|burst|memory|cold-child|template [options]");
	const char *mode = argv[1];
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "t:H:r:c:n:w:lp:", opts, NULL)) != -1) {
		switch (c) {
		case 't': cfg.threads = atoi(optarg); break;
		case 'H': cfg.heap_mib = atol(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 'c': cold_reps = atoi(optarg); break;
		case 'n': nchildren = atoi(optarg); break;
		case 'w': cfg.warmup_ms = atoi(optarg); break;
		case 'l': cfg.load = 1; break;
		case 'p': pool_size = atoi(optarg); break;
		case 'P': cfg.pipes = atoi(optarg); break;
		case 'E': cfg.epolls = atoi(optarg); break;
		case 'V': cfg.eventfds = atoi(optarg); break;
		case 'R': report_fd = atoi(optarg); break;
		case 'T': timeout_ms = atoi(optarg); break;
		case 'S': shm_fd = atoi(optarg); break;
		case 'N': nuwa_cli = optarg; break;
		default: die("bad option");
		}
	}
	if (reps < 1 || reps > MAXREPS)
		die("-r must be 1..%d", MAXREPS);
	if (cold_reps > reps)
		cold_reps = reps;   /* cold starts are interleaved with the other repetitions */
	ssize_t l = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (l < 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self_exe[l] = 0;
	nuwa_clone_fn = (int (*)(int, pid_t *))dlsym(RTLD_DEFAULT, "nuwa_clone");
	g_shared = shared_alloc(sizeof *g_shared);

	if (!strcmp(mode, "spawn"))
		mode_spawn(1, 1, "spawn");
	else if (!strcmp(mode, "freeze"))
		mode_spawn(0, 0, "freeze");
	else if (!strcmp(mode, "memory"))
		mode_memory();
	else if (!strcmp(mode, "burst"))
		mode_burst();
	else if (!strcmp(mode, "cold-child"))
		mode_cold_child();
	else if (!strcmp(mode, "template"))
		tspawn_template_main(&cfg, shm_fd);
	else
		die("unknown mode %s", mode);
	/* Workers are still blocked: leave without running their exit paths. */
	fflush(stdout);
	_exit(0);
}
