/* robust_scn — the program the robustness suite (test_robust.c) runs under
 * `nuwa run`: two threads passing numbers through a pipe, plus what each
 * test needs, chosen by arguments:
 *
 *   robust_scn DIR [OPTION]...
 *     sig=dfl|ign|handler|block   disposition of SIGTERM, SIGINT and SIGHUP:
 *                                 default, ignored, a handler (it writes
 *                                 DIR/PID.sig "handled N" and main returns 0),
 *                                 blocked in every thread and taken by a
 *                                 sigwait() thread (same file, "waited N")
 *     malloc                      a thread that mallocs and frees 100 KB in
 *                                 a loop (frozen inside malloc with policy any)
 *     dlopen=PATH                 a thread that dlopen()s and dlclose()s PATH
 *                                 in a loop (frozen inside the loader)
 *     forks=N                     once: fork N children that each wait until
 *                                 DIR/../rt/PID.sock exists (their control
 *                                 socket, made lazily), then all _exit(0) at
 *                                 once, but every tenth, which is SIGKILLed;
 *                                 prints "REAPED N" once all are waited for
 *
 * Progress: the consumer rewrites DIR/PID.state "pid=P seq=S gaps=G" every
 * 25 numbers (a pipe shared with another process would show gaps).
 * READY is printed on stdout once the threads run.
 *
 * For --call (linked with -rdynamic): robust_kill_self(int sig) sends sig
 * to its own process (kill(getpid())); robust_tag(const char *) writes the
 * string to DIR/PID.call. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static int pipefd[2];
static volatile sig_atomic_t got_sig;

static void write_file(const char *suffix, const char *text)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%d.%s", dir, getpid(), suffix);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_TRUNC, 0644);
	if (fd < 0)
		return;
	(void)!write(fd, text, strlen(text));
	close(fd);
}

void robust_kill_self(int sig)
{
	kill(getpid(), sig);
}

void robust_tag(const char *s)
{
	write_file("call", s ? s : "(null)");
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

static void *consumer(void *arg)
{
	uint32_t expect = 1, gaps = 0, n = 0, v;
	for (;;) {
		if (read(pipefd[0], &v, sizeof v) != sizeof v)
			continue;
		if (v != expect)
			gaps++;
		expect = v + 1;
		if (++n % 25 == 0) {
			char line[128];
			snprintf(line, sizeof line, "pid=%d seq=%u gaps=%u\n", getpid(), v, gaps);
			write_file("state", line);
		}
	}
	return arg;
}

static void *mallocer(void *arg)
{
	for (;;) {
		/* over the tcache and fastbin sizes: the arena lock is taken */
		void *p = malloc(100000);
		if (p)
			((volatile char *)p)[0] = 1;
		free(p);
	}
	return arg;
}

static const char *dl_path;

static void *dlopener(void *arg)
{
	for (;;) {
		/* A copy resumed in the middle of reading the file shares its
		 * offset with the original (docs/limits.md): a failed dlopen is
		 * one of the two reading at the wrong place; try again. */
		void *h = dlopen(dl_path, RTLD_NOW | RTLD_LOCAL);
		if (h)
			dlclose(h);
	}
	return arg;
}

static void on_sig(int sig)
{
	char line[32];
	snprintf(line, sizeof line, "handled %d\n", sig);
	write_file("sig", line);
	got_sig = sig;
}

static const int term_sigs[] = { SIGTERM, SIGINT, SIGHUP };

static void *sig_waiter(void *arg)
{
	sigset_t s;
	sigemptyset(&s);
	for (int i = 0; i < 3; i++)
		sigaddset(&s, term_sigs[i]);
	int sig;
	if (sigwait(&s, &sig) == 0) {
		char line[32];
		snprintf(line, sizeof line, "waited %d\n", sig);
		write_file("sig", line);
		got_sig = sig;
	}
	return arg;
}

static void spawn_thread(void *(*fn)(void *))
{
	pthread_t t;
	if (pthread_create(&t, NULL, fn, NULL))
		abort();
}

/* forks=N: every child waits for its own control socket, so that the
 * parent's leftover-file check means something, then for the "go". */
static void fork_children(int n)
{
	char rt[4096];
	const char *env = getenv("NUWA_RUNTIME_DIR");
	snprintf(rt, sizeof rt, "%s", env ? env : "");
	int go[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		abort();
	pid_t *kids = calloc((size_t)n, sizeof *kids);
	int ready[2];
	if (!kids || pipe2(ready, O_CLOEXEC) < 0)
		abort();
	for (int i = 0; i < n; i++) {
		pid_t k = fork();
		if (k < 0) {
			fprintf(stderr, "fork %d: %s\n", i, strerror(errno));
			abort();
		}
		if (k == 0) {
			close(go[1]);   /* EOF on go[0] once the parent closes its end */
			char sock[4200];
			snprintf(sock, sizeof sock, "%s/%d.sock", rt, getpid());
			struct stat st;
			for (int t = 0; t < 2500 && stat(sock, &st) < 0; t++)
				sleep_ms(4);
			(void)!write(ready[1], "r", 1);
			if (i % 10 == 0)
				for (;;)
					pause();   /* SIGKILLed */
			char c;
			while (read(go[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		kids[i] = k;
	}
	for (int i = 0; i < n; i++) {
		char c;
		if (read(ready[0], &c, 1) != 1)
			abort();
	}
	close(go[1]);                /* the others _exit() at once */
	for (int i = 0; i < n; i += 10)
		kill(kids[i], SIGKILL);
	int reaped = 0;
	for (int i = 0; i < n; i++)
		if (waitpid(kids[i], NULL, 0) == kids[i])
			reaped++;
	printf("REAPED %d\n", reaped);
	fflush(stdout);
	free(kids);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: robust_scn DIR [OPTION]...\n");
		return 2;
	}
	dir = argv[1];
	const char *sig = "dfl";
	int do_malloc = 0, forks = 0;
	for (int i = 2; i < argc; i++) {
		if (!strncmp(argv[i], "sig=", 4))
			sig = argv[i] + 4;
		else if (!strcmp(argv[i], "malloc"))
			do_malloc = 1;
		else if (!strncmp(argv[i], "dlopen=", 7))
			dl_path = argv[i] + 7;
		else if (!strncmp(argv[i], "forks=", 6))
			forks = atoi(argv[i] + 6);
	}
	for (int i = 0; i < 3; i++) {
		if (!strcmp(sig, "ign"))
			signal(term_sigs[i], SIG_IGN);
		else if (!strcmp(sig, "handler"))
			signal(term_sigs[i], on_sig);
	}
	if (!strcmp(sig, "block")) {
		sigset_t s;
		sigemptyset(&s);
		for (int i = 0; i < 3; i++)
			sigaddset(&s, term_sigs[i]);
		pthread_sigmask(SIG_BLOCK, &s, NULL);   /* inherited by every thread */
		spawn_thread(sig_waiter);
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return 1;
	spawn_thread(consumer);
	spawn_thread(producer);
	if (do_malloc)
		spawn_thread(mallocer);
	if (dl_path)
		spawn_thread(dlopener);
	if (forks)
		fork_children(forks);
	printf("READY %d\n", getpid());
	fflush(stdout);
	while (!got_sig)
		sleep_ms(10);
	return 0;
}
