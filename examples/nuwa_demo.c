/* nuwa_demo — a program that warms up, turns itself into a template with
 * nuwa_freeze(), and whose spawned copies each reseed their random generator
 * and do one job.  It works with and without libnuwa (docs/api.md).
 *
 *   nuwa_demo              warm up, freeze, serve copies; exits after `nuwa thaw`
 *   nuwa_demo spawn PID    launcher: ask template PID for one copy that
 *                          writes to our stdout (nuwa_spawn)
 *   nuwa_demo --busy       also run a thread that never waits: with
 *                          NUWA_FREEZE_POLICY=idle the freeze fails and the
 *                          program carries on unfrozen
 *
 *   make                                         # see Makefile
 *   ./nuwa_demo                                  # plain: does the job itself
 *   LD_PRELOAD=$(pkg-config --variable=preload libnuwa) ./nuwa_demo &
 *   LD_PRELOAD=$(pkg-config --variable=preload libnuwa) ./nuwa_demo spawn $!
 *   nuwa spawn --stdio --wait $!                 # the same with the nuwa command
 *   nuwa thaw $!
 *
 * Every line it prints is "ROLE: key=value ...": easy to read and to check.
 * Output goes through write(2), not stdio: constructors run while the
 * program's other threads are frozen, possibly holding stdio's locks.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nuwa.h>

static volatile unsigned long worker_ticks, stats_ticks;
static volatile int busy_stop;
static int log_fd = -1;        /* the template's own log: closed in copies */
static volatile int hook_seq;  /* order in which the hooks ran */
static volatile int reseeded;  /* set by the final constructor */

static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	(void)!write(1, line, (size_t)n);
}

static void sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

/* Did *counter move within ms milliseconds? */
static int advances(volatile unsigned long *counter, int ms)
{
	unsigned long before = *counter;
	for (int waited = 0; waited < ms; waited += 5) {
		sleep_ms(5);
		if (*counter != before)
			return 1;
	}
	return 0;
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Work every copy shares: it waits (a freeze point) between steps. */
static void *worker(void *arg)
{
	for (;;) {
		worker_ticks++;
		sleep_ms(2);
	}
	return arg;
}

/* Housekeeping that belongs to the template only: not resumed in copies. */
static void *stats(void *arg)
{
	int r = nuwa_thread_skip();
	say("setup: thread_skip=%d", r);
	for (;;) {
		stats_ticks++;
		sleep_ms(2);
	}
	return arg;
}

static void *spinner(void *arg)
{
	while (!busy_stop)
		;
	return arg;
}

/* In a copy, before its threads resume: only libnuwa's thread runs, so
 * the worker must not move. */
static void before_threads(void *arg)
{
	(void)arg;
	int seq = ++hook_seq;
	say("ctor: seq=%d threads_paused=%d spawned=%d template=%d", seq,
	    !advances(&worker_ticks, 30), nuwa_is_spawned(), nuwa_is_template());
}

/* In a copy, once every thread runs again: give it its own random
 * sequence (without this, every copy draws the template's numbers).
 * srandom() takes glibc's random() lock, which a frozen thread may hold
 * until it resumes: so here, not in a constructor.  The resumed threads
 * run alongside: whoever must draw fresh numbers waits for `reseeded`. */
static void after_threads(void *arg)
{
	(void)arg;
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	srandom((unsigned)getpid() ^ (unsigned)t.tv_nsec);
	__atomic_store_n(&reseeded, 1, __ATOMIC_RELEASE);
	int seq = ++hook_seq;
	say("final: seq=%d threads_running=%d spawned=%d template=%d", seq,
	    advances(&worker_ticks, 1000), nuwa_is_spawned(), nuwa_is_template());
}

/* What any process of the program reports once it goes on after the freeze. */
static void report(const char *role, int freeze)
{
	int log_open = fcntl(log_fd, F_GETFD) >= 0;
	for (int i = 0; nuwa_is_spawned() > 0 && !reseeded && i < 400; i++)
		sleep_ms(5);
	say("%s: freeze=%d spawned=%d template=%d random=%ld log_fd=%s threads=%d", role, freeze,
	    nuwa_is_spawned(), nuwa_is_template(), random(), log_open ? "open" : "closed",
	    count_threads());
	say("%s: worker_running=%d skipped_thread_running=%d", role, advances(&worker_ticks, 1000),
	    advances(&stats_ticks, 100));
}

static int launch(const char *arg)
{
	pid_t tp = (pid_t)atol(arg);
	pid_t pid = nuwa_spawn(tp, NUWA_SPAWN_STDIO);
	if (pid < 0) {
		say("launcher: spawn=%d (%s)", (int)pid, strerror((int)-pid));
		return 1;
	}
	say("launcher: spawn=%d", (int)pid);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "spawn"))
		return launch(argv[2]);
	int busy = argc == 2 && !strcmp(argv[1], "--busy");

	/* Warm-up: what the copies should not redo. */
	srandom(42);
	log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	say("setup: pid=%d ctor=%d final=%d fd_policy=%d", (int)getpid(),
	    nuwa_add_constructor(before_threads, NULL),
	    nuwa_add_final_constructor(after_threads, NULL),
	    nuwa_fd_policy(log_fd, NUWA_FD_CLOSE));
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	pthread_create(&t, NULL, stats, NULL);
	pthread_t spin;
	if (busy)
		pthread_create(&spin, NULL, spinner, NULL);
	sleep_ms(100);

	say("main: freezing spawned=%d template=%d", nuwa_is_spawned(), nuwa_is_template());
	int r = nuwa_freeze();
	if (busy) {
		busy_stop = 1;
		pthread_join(spin, NULL);
	}
	if (r == 1) {
		/* A spawned copy: every thread but `stats` runs again. */
		report("child", r);
		return 0;
	}
	if (r == 0) {
		/* The template, after `nuwa thaw`: exactly as before the freeze. */
		report("template", r);
		return 0;
	}
	/* -ENOSYS (no libnuwa) or a failed freeze: do the job ourselves. */
	say("main: freeze=%d (%s): running unfrozen", r, strerror(-r));
	report("unfrozen", r);
	return 0;
}
