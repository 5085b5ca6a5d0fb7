/* cli_scn — the multi-threaded program the CLI end-to-end tests freeze and
 * spawn: threads talking through a pipe, an eventfd and epoll.
 *
 *   cli_scn DIR [WARMUP_MS]
 *
 * The main thread first computes for WARMUP_MS (busy: no freeze point) and
 * writes DIR/PID.warm, then starts:
 *   producer  writes 1, 2, 3 ... (uint32) into a pipe every 2 ms
 *   ticker    bumps an eventfd every 10 ms
 *   consumer  epoll_wait()s on both; checks that the numbers arrive in order
 *             and every 25 numbers rewrites DIR/PID.state:
 *                 "pid=P seq=S gaps=G ticks=T\n"
 * and then sleeps forever.  With CLI_SCN_TIMER=1 in the environment, a
 * periodic POSIX timer (5 ms, SIGRTMIN+3) counts its expiries, shown as
 * " timer=N" at the end of the state line (the pool tests: a pooled child's
 * timer must not fire before it is taken).  PID is getpid() at the time of writing, so each
 * spawned child reports in its own file.  A child that shared the pipe with
 * another process would lose numbers to it: gaps > 0.
 *
 * For --call (the executable is linked with -rdynamic):
 *   cli_scn_tag(int, long, double, const char *, void *) appends the values
 *       to DIR/PID.call;
 *   cli_scn_say(const char *) writes the string and a newline on stdout;
 *   cli_scn_env(const char *NAME) writes "env NAME=VALUE" or "env NAME unset";
 *   cli_scn_envcount() writes "envcount N" (entries of environ);
 *   cli_scn_cwd() writes "cwd PATH";
 *   cli_scn_ids() writes "ids pid=P pgrp=G sid=S";
 *   cli_scn_cgroup() writes "cgroup PATH" (the v2 line of /proc/self/cgroup).
 *
 * Children that die young (issue 10 class 6), through the C API (weak
 * references: the program runs with or without libnuwa):
 *   CLI_SCN_DIE=ctor    a nuwa_add_constructor hook dereferences NULL in
 *                       each child, before its threads are released
 *   CLI_SCN_DIE=final   a nuwa_add_final_constructor hook does, once they run
 *   CLI_SCN_DIE=thread  a thread that sees getpid() change does, right after
 *                       it resumes in a child
 *   CLI_SCN_CTOR_MS=N   a nuwa_add_constructor hook sleeps N ms in each child
 *                       (a slow spawn)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "nuwa.h"

static const char *dir;
static int pipefd[2], evfd, epfd;
static volatile unsigned long timer_fires;

static void on_timer(int sig)
{
	timer_fires++;
}

static void write_file(const char *suffix, const char *text, int append)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%d.%s", dir, getpid(), suffix);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
	if (fd < 0)
		return;
	(void)!write(fd, text, strlen(text));
	close(fd);
}

void cli_scn_tag(int i, long l, double d, const char *s, void *p)
{
	char line[512];
	snprintf(line, sizeof line, "i=%d l=%ld d=%g s=[%s] p=%s\n", i, l, d, s ? s : "(null)",
	         p ? "nonnull" : "null");
	write_file("call", line, 1);
}

void cli_scn_say(const char *s)
{
	char line[512];
	snprintf(line, sizeof line, "%s\n", s);
	(void)!write(1, line, strlen(line));
}

extern char **environ;

static void say(const char *line)
{
	(void)!write(1, line, strlen(line));
}

void cli_scn_env(const char *name)
{
	char line[1024];
	const char *v = getenv(name);
	if (v)
		snprintf(line, sizeof line, "env %s=%s\n", name, v);
	else
		snprintf(line, sizeof line, "env %s unset\n", name);
	say(line);
}

void cli_scn_envcount(void)
{
	int n = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	char line[64];
	snprintf(line, sizeof line, "envcount %d\n", n);
	say(line);
}

void cli_scn_cwd(void)
{
	char cwd[4096], line[4200];
	snprintf(line, sizeof line, "cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
	say(line);
}

void cli_scn_ids(void)
{
	char line[128];
	snprintf(line, sizeof line, "ids pid=%d pgrp=%d sid=%d\n", getpid(), getpgrp(), getsid(0));
	say(line);
}

void cli_scn_cgroup(void)
{
	char buf[4096], line[4200];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *l = strstr(buf, "0::");
	if (l) {
		l += 3;
		char *e = strchr(l, '\n');
		if (e)
			*e = 0;
	}
	snprintf(line, sizeof line, "cgroup %s\n", l ? l : "?");
	say(line);
}

static void sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static void *producer(void *arg)
{
	for (uint32_t v = 1;; v++) {
		if (write(pipefd[1], &v, sizeof v) != sizeof v)
			abort();
		sleep_ms(2);
	}
	return arg;
}

static void *ticker(void *arg)
{
	for (;;) {
		uint64_t one = 1;
		if (write(evfd, &one, sizeof one) != sizeof one)
			abort();
		sleep_ms(10);
	}
	return arg;
}

static void *consumer(void *arg)
{
	uint32_t expect = 1, gaps = 0, n = 0;
	uint64_t ticks = 0;
	for (;;) {
		struct epoll_event ev[4];
		int k = epoll_wait(epfd, ev, 4, -1);
		for (int i = 0; i < k; i++) {
			if (ev[i].data.fd == evfd) {
				uint64_t c;
				if (read(evfd, &c, sizeof c) == sizeof c)
					ticks += c;
				continue;
			}
			uint32_t v;
			if (read(pipefd[0], &v, sizeof v) != sizeof v)
				continue;
			if (v != expect)
				gaps++;
			expect = v + 1;
			if (++n % 25 == 0) {
				char line[128];
				snprintf(line, sizeof line, "pid=%d seq=%u gaps=%u ticks=%llu timer=%lu\n",
				         getpid(), v, gaps, (unsigned long long)ticks, timer_fires);
				write_file("state", line, 0);
			}
		}
	}
	return arg;
}

static pid_t first_pid;

/* A SIGSEGV with the default action.  Under ASan+UBSan (make
 * test-sanitize) the store to NULL would be a UBSan report, and ASan's
 * SIGSEGV handler makes the fault a report and a SIGABRT. */
__attribute__((no_sanitize("undefined"))) static void die(void *arg)
{
	(void)arg;
	signal(SIGSEGV, SIG_DFL);
	*(volatile int *)0 = 0;   /* SIGSEGV */
}

static void slow(void *arg)
{
	sleep_ms((int)(intptr_t)arg);
}

static void *watcher(void *arg)
{
	for (;;) {
		sleep_ms(1);
		if (getpid() != first_pid)
			die(NULL);
	}
	return arg;
}

static void young_death(void)
{
	const char *d = getenv("CLI_SCN_DIE"), *ms = getenv("CLI_SCN_CTOR_MS");
	first_pid = getpid();
	if (ms)
		nuwa_add_constructor(slow, (void *)(intptr_t)atoi(ms));
	if (!d)
		return;
	if (!strcmp(d, "ctor"))
		nuwa_add_constructor(die, NULL);
	else if (!strcmp(d, "final"))
		nuwa_add_final_constructor(die, NULL);
	else if (!strcmp(d, "thread")) {
		pthread_t t;
		pthread_create(&t, NULL, watcher, NULL);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: cli_scn DIR [WARMUP_MS]\n");
		return 2;
	}
	dir = argv[1];
	int warm = argc > 2 ? atoi(argv[2]) : 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	volatile uint64_t x = 1;
	do {   /* busy: not at any freeze point */
		for (int i = 0; i < 100000; i++)
			x = x * 6364136223846793005ull + 1;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < warm);
	young_death();
	write_file("warm", "warm\n", 0);

	if (pipe2(pipefd, O_CLOEXEC) < 0 || (evfd = eventfd(0, EFD_CLOEXEC)) < 0 ||
	    (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return 1;
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = pipefd[0] };
	epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &ev);
	ev.data.fd = evfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev);
	const char *tm = getenv("CLI_SCN_TIMER");
	if (tm && tm[0] == '1') {
		struct sigaction sa = { .sa_handler = on_timer, .sa_flags = SA_RESTART };
		sigaction(SIGRTMIN + 3, &sa, NULL);
		struct sigevent se = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 3 };
		timer_t id;
		struct itimerspec its = { { 0, 5000000 }, { 0, 5000000 } };
		if (timer_create(CLOCK_MONOTONIC, &se, &id) < 0 || timer_settime(id, 0, &its, NULL) < 0)
			return 1;
	}
	pthread_t th;
	pthread_create(&th, NULL, consumer, NULL);
	pthread_create(&th, NULL, producer, NULL);
	pthread_create(&th, NULL, ticker, NULL);
	for (;;)
		sleep_ms(1000);
}
