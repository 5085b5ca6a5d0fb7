/* harness.c — see harness.h.  Single-threaded; runs inside a criterion
 * worker process (one test per process). */
#include "harness.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NH_MAX_LIVE 16
static nh_proc *live[NH_MAX_LIVE];
static int atexit_done;

long long nh_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void nh_sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static void buf_init(struct nh_buf *b, int fd)
{
	b->cap = 4096;
	b->data = malloc(b->cap);
	cr_assert(b->data != NULL);
	b->data[0] = 0;
	b->len = 0;
	b->fd = fd;
}

/* Read what is there now; returns 1 if something was read or EOF seen. */
static int buf_read(struct nh_buf *b)
{
	int progress = 0;
	while (b->fd >= 0) {
		if (b->cap - b->len < 4096 + 1) {
			b->cap *= 2;
			b->data = realloc(b->data, b->cap);
			cr_assert(b->data != NULL);
		}
		ssize_t n = read(b->fd, b->data + b->len, b->cap - b->len - 1);
		if (n > 0) {
			b->len += (size_t)n;
			b->data[b->len] = 0;
			progress = 1;
		} else if (n == 0) {
			close(b->fd);
			b->fd = -1;
			progress = 1;
		} else if (errno == EINTR) {
			continue;
		} else {
			break;    /* EAGAIN */
		}
	}
	return progress;
}

void nh_pump(nh_proc *p, int timeout_ms)
{
	struct pollfd pf[2];
	int n = 0;
	if (p->out.fd >= 0)
		pf[n++] = (struct pollfd){ .fd = p->out.fd, .events = POLLIN };
	if (p->err.fd >= 0)
		pf[n++] = (struct pollfd){ .fd = p->err.fd, .events = POLLIN };
	if (n == 0) {
		if (timeout_ms > 0)
			nh_sleep_ms(timeout_ms);
		return;
	}
	if (poll(pf, (nfds_t)n, timeout_ms) > 0 || timeout_ms == 0) {
		buf_read(&p->out);
		buf_read(&p->err);
	}
}

int nh_count(const char *hay, const char *s)
{
	int c = 0;
	size_t l = strlen(s);
	for (const char *q = hay; (q = strstr(q, s)) != NULL; q += l)
		c++;
	return c;
}

static int wait_in(nh_proc *p, struct nh_buf *b, const char *s, int count, int timeout_ms)
{
	long long end = nh_now_ms() + timeout_ms;
	for (;;) {
		nh_pump(p, 0);
		if (nh_count(b->data, s) >= count)
			return 1;
		long long left = end - nh_now_ms();
		if (left <= 0 || b->fd < 0)
			return 0;
		nh_pump(p, left > 100 ? 100 : (int)left);
	}
}

int nh_wait_out(nh_proc *p, const char *s, int count, int timeout_ms)
{
	return wait_in(p, &p->out, s, count, timeout_ms);
}

int nh_wait_err(nh_proc *p, const char *s, int count, int timeout_ms)
{
	return wait_in(p, &p->err, s, count, timeout_ms);
}

static void kill_group(nh_proc *p)
{
	if (p->pid > 0) {
		killpg(p->pid, SIGKILL);
		if (!p->reaped && waitpid(p->pid, &p->wstatus, 0) == p->pid)
			p->reaped = 1;
	}
}

static void tail(const char *what, const struct nh_buf *b)
{
	fprintf(stderr, "----- %s (%zu bytes) -----\n%s%s", what, b->len,
		b->data, (b->len && b->data[b->len - 1] != '\n') ? "\n" : "");
}

void nh_dump(nh_proc *p, const char *why)
{
	nh_pump(p, 0);
	fprintf(stderr, "===== scenario %s (pid %d, seed %u): %s =====\n",
		p->name, (int)p->pid, p->seed, why);
	tail("stdout", &p->out);
	tail("stderr", &p->err);
	fprintf(stderr, "===== end of %s =====\n", p->name);
	fflush(stderr);
}

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* What every task of every live process of the group that has not printed
 * its RESULT line is doing: state, kernel wait channel, current syscall. */
static void diagnose(nh_proc *p)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	int shown = 0;
	while (proc && (e = readdir(proc)) && shown < 8) {
		char path[300], buf[512];
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		if (read_small(path, buf, sizeof buf))
			continue;
		char *rp = strrchr(buf, ')');
		int pgid = 0;
		char st;
		if (!rp || sscanf(rp + 2, "%c %*d %d", &st, &pgid) != 2 || pgid != p->pid ||
		    st == 'Z')
			continue;
		char mark[64];
		snprintf(mark, sizeof mark, "RESULT pid=%d ", pid);
		if (strstr(p->out.data, mark))
			continue;
		shown++;
		fprintf(stderr, "----- process %d (no RESULT yet): tasks -----\n", pid);
		snprintf(path, sizeof path, "/proc/%d/task", pid);
		DIR *td = opendir(path);
		struct dirent *t;
		while (td && (t = readdir(td))) {
			int tid = atoi(t->d_name);
			char comm[64] = "?", wchan[64] = "?", sc[256] = "?", tst[512] = "";
			if (tid <= 0)
				continue;
			snprintf(path, sizeof path, "/proc/%d/task/%d/comm", pid, tid);
			read_small(path, comm, sizeof comm);
			snprintf(path, sizeof path, "/proc/%d/task/%d/wchan", pid, tid);
			read_small(path, wchan, sizeof wchan);
			snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
			read_small(path, sc, sizeof sc);
			snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
			read_small(path, tst, sizeof tst);
			char *r = strrchr(tst, ')');
			sc[40] = 0;   /* syscall number and first two arguments */
			fprintf(stderr, "  tid %d %-15s state %c wchan %-24s syscall %s\n", tid, comm,
				r ? r[2] : '?', wchan, sc);
		}
		if (td)
			closedir(td);
	}
	if (proc)
		closedir(proc);
}

void nh_fail(nh_proc *p, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	nh_dump(p, msg);
	diagnose(p);
	kill_group(p);
	cr_assert_fail("%s: %s", p->name, msg);
	abort();   /* not reached: cr_assert_fail ends the test */
}

static void add_live(nh_proc *p)
{
	if (!atexit_done) {
		atexit(nh_cleanup_all);
		atexit_done = 1;
	}
	for (int i = 0; i < NH_MAX_LIVE; i++)
		if (!live[i]) {
			live[i] = p;
			return;
		}
}

void nh_free(nh_proc *p)
{
	if (!p)
		return;
	kill_group(p);
	if (p->in_fd >= 0)
		close(p->in_fd);
	if (p->out.fd >= 0)
		close(p->out.fd);
	if (p->err.fd >= 0)
		close(p->err.fd);
	free(p->out.data);
	free(p->err.data);
	for (int i = 0; i < NH_MAX_LIVE; i++)
		if (live[i] == p)
			live[i] = NULL;
	free(p);
}

void nh_cleanup_all(void)
{
	for (int i = 0; i < NH_MAX_LIVE; i++)
		if (live[i])
			nh_free(live[i]);
}

/* Child side of nh_start: environment, pipes, process group, exec. */
static void exec_child(const char *path, const char *name, const struct nh_opts *o,
		       int in, int out, int err)
{
	setpgid(0, 0);
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	/* A clean NUWA_* environment: only what this test asks for. */
	for (int again = 1; again;) {
		again = 0;
		for (char **e = environ; *e; e++)
			if (!strncmp(*e, "NUWA_", 5) || !strncmp(*e, "LD_PRELOAD=", 11)) {
				char key[128];
				size_t k = strcspn(*e, "=");
				if (k >= sizeof key)
					k = sizeof key - 1;
				memcpy(key, *e, k);
				key[k] = 0;
				if (strcmp(key, "NUWA_SCENARIO_DIR") && strcmp(key, "NUWA_LIB") &&
				    strcmp(key, "NUWA_RUNTIME_DIR") && strcmp(key, "NUWA_PRELOAD_FIRST")) {
					unsetenv(key);
					again = 1;
					break;
				}
			}
	}
	setenv("NUWA_MODE", "clone", 1);
	setenv("NUWA_LOG", "info", 1);
	/* Never the user's runtime directory: the harness kills whole process
	 * groups, and a killed process cannot remove its control socket. */
	if (!getenv("NUWA_RUNTIME_DIR")) {
		char rd[64];
		snprintf(rd, sizeof rd, "/tmp/nuwa-tests-%u", (unsigned)getuid());
		setenv("NUWA_RUNTIME_DIR", rd, 1);
	}
	for (const char *const *e = o->env; e && *e; e++) {
		if (strchr(*e, '='))
			putenv((char *)*e);
		else
			unsetenv(*e);   /* a bare name removes the variable */
	}
	if (!o->no_preload) {
		/* A sanitized libnuwa: its runtime comes first (meson.build). */
		const char *first = getenv("NUWA_PRELOAD_FIRST");
		char pre[8192];
		snprintf(pre, sizeof pre, "%s%s%s", first ? first : "", first && *first ? ":" : "",
		         getenv("NUWA_LIB"));
		setenv("LD_PRELOAD", pre, 1);
	}
	const char *argv[32];
	int n = 0;
	argv[n++] = name;
	for (const char *const *a = o->argv; a && *a && n < 31; a++)
		argv[n++] = *a;
	argv[n] = NULL;
	execv(path, (char *const *)argv);
	dprintf(2, "harness: exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

nh_proc *nh_start(const char *name, const struct nh_opts *opts)
{
	static const struct nh_opts none;
	const struct nh_opts *o = opts ? opts : &none;
	const char *dir = getenv("NUWA_SCENARIO_DIR");
	cr_assert(dir != NULL, "NUWA_SCENARIO_DIR is not set (run through meson test)");
	if (!o->no_preload)
		cr_assert(getenv("NUWA_LIB") != NULL, "NUWA_LIB is not set (run through meson test)");
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	cr_assert(access(path, X_OK) == 0, "scenario %s: %s", path, strerror(errno));

	signal(SIGPIPE, SIG_IGN);
	int in[2], out[2], err[2];
	cr_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 &&
		  pipe2(err, O_CLOEXEC) == 0);

	nh_proc *p = calloc(1, sizeof *p);
	cr_assert(p != NULL);
	snprintf(p->name, sizeof p->name, "%s", name);
	p->trigger_sig = o->trigger_sig ? o->trigger_sig : SIGUSR2;
	p->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	if (getenv("NH_SEED"))
		p->seed = (unsigned)strtoul(getenv("NH_SEED"), NULL, 0);

	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
		exec_child(path, name, o, in[0], out[1], err[1]);
	setpgid(pid, pid);   /* both sides: no race with the first killpg */
	close(in[0]);
	close(out[1]);
	close(err[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	p->pid = pid;
	p->in_fd = in[1];
	buf_init(&p->out, out[0]);
	buf_init(&p->err, err[0]);
	add_live(p);
	return p;
}

void nh_expect_ready(nh_proc *p)
{
	if (!nh_wait_out(p, "READY\n", 1, NH_READY_MS))
		nh_fail(p, "no READY within %d ms", NH_READY_MS);
}

void nh_kill(nh_proc *p, pid_t pid, int sig)
{
	if (kill(pid, sig) != 0)
		nh_fail(p, "kill(%d, %d): %s", (int)pid, sig, strerror(errno));
}

void nh_trigger(nh_proc *p)
{
	nh_kill(p, p->pid, p->trigger_sig);
}

/* Lines of stderr logged by process pid ("nuwa[PID]:") containing s. */
static int count_log(nh_proc *p, pid_t pid, const char *s)
{
	int c = 0;
	char pfx[32];
	snprintf(pfx, sizeof pfx, "nuwa[%d]:", (int)pid);
	for (const char *l = p->err.data; *l;) {
		const char *nl = strchr(l, '\n');
		if (!nl)
			break;     /* incomplete line: wait for the rest */
		size_t len = (size_t)(nl - l);
		if ((pid == 0 || !strncmp(l, pfx, strlen(pfx))) && memmem(l, len, s, strlen(s)))
			c++;
		l = nl + 1;
	}
	return c;
}

int nh_clone_pid(nh_proc *p, pid_t pid, int timeout_ms)
{
	pid_t who = pid ? pid : p->pid;
	nh_pump(p, 0);
	int done0 = count_log(p, who, "clone done:");
	int fail0 = count_log(p, who, "freeze failed:");
	nh_kill(p, who, p->trigger_sig);
	long long start = nh_now_ms(), end = start + timeout_ms;
	for (;;) {
		nh_pump(p, 50);
		if (count_log(p, who, "clone done:") > done0) {
			p->last_clone_ms = nh_now_ms() - start;
			return done0 + 1;
		}
		if (count_log(p, who, "freeze failed:") > fail0)
			nh_fail(p, "trigger %d of pid %d: freeze failed", done0 + 1, (int)who);
		if (nh_now_ms() > end)
			nh_fail(p, "trigger %d of pid %d: no \"clone done:\" within %d ms",
				done0 + 1, (int)who, timeout_ms);
		if (p->err.fd < 0)
			nh_fail(p, "trigger %d of pid %d: every process closed stderr",
				done0 + 1, (int)who);
	}
}

int nh_clone(nh_proc *p, int timeout_ms)
{
	return nh_clone_pid(p, 0, timeout_ms);
}

void nh_random_triggers(nh_proc *p, int n, int min_ms, int max_ms)
{
	unsigned s = p->seed;
	long long t0 = nh_now_ms(), slowest = 0, first = -1;
	int slowest_i = 0;
	fprintf(stderr, "%s: %d random triggers, seed %u (set NH_SEED to repeat)\n",
		p->name, n, s);
	for (int i = 0; i < n; i++) {
		int d = min_ms + (int)(rand_r(&s) % (unsigned)(max_ms - min_ms + 1));
		long long end = nh_now_ms() + d;
		while (nh_now_ms() < end)   /* keep draining while we wait */
			nh_pump(p, (int)(end - nh_now_ms()));
		nh_clone(p, NH_CLONE_MS);
		if (first < 0)
			first = p->last_clone_ms;
		if (p->last_clone_ms > slowest) {
			slowest = p->last_clone_ms;
			slowest_i = i + 1;
		}
	}
	fprintf(stderr, "%s: %d triggers done in %lld ms; clone 1 took %lld ms, the slowest "
		"(%d) %lld ms, the last %lld ms\n", p->name, n, nh_now_ms() - t0, first,
		slowest_i, slowest, p->last_clone_ms);
}

int nh_clone_pids(nh_proc *p, pid_t pid, pid_t *pids, int max)
{
	int n = 0;
	char pfx[32];
	snprintf(pfx, sizeof pfx, "nuwa[%d]:", (int)pid);
	for (const char *l = p->err.data; *l && n < max;) {
		const char *nl = strchr(l, '\n');
		if (!nl)
			break;
		const char *c = memmem(l, (size_t)(nl - l), "clone done:", 11);
		if (c && (pid == 0 || !strncmp(l, pfx, strlen(pfx)))) {
			/* Every number after the marker; callers match them against
			 * the pids that report, so extra numbers do no harm. */
			for (const char *q = c + 11; q < nl && n < max;) {
				if (isdigit((unsigned char)*q)) {
					pids[n++] = (pid_t)strtol(q, (char **)&q, 10);
				} else {
					q++;
				}
			}
		}
		l = nl + 1;
	}
	return n;
}

void nh_finish(nh_proc *p, int timeout_ms)
{
	if (p->in_fd >= 0) {
		close(p->in_fd);
		p->in_fd = -1;
	}
	long long end = nh_now_ms() + timeout_ms;
	while (p->out.fd >= 0 || p->err.fd >= 0) {
		long long left = end - nh_now_ms();
		if (left <= 0)
			nh_fail(p, "processes still writing %d ms after stdin was closed "
				"(%d RESULT lines so far)", timeout_ms, nh_count(p->out.data, "RESULT "));
		nh_pump(p, left > 200 ? 200 : (int)left);
	}
	while (!p->reaped) {
		pid_t r = waitpid(p->pid, &p->wstatus, WNOHANG);
		if (r == p->pid) {
			p->reaped = 1;
			break;
		}
		if (r < 0)
			nh_fail(p, "waitpid: %s", strerror(errno));
		if (nh_now_ms() > end)
			nh_fail(p, "original process has not exited %d ms after stdin was closed",
				timeout_ms);
		nh_sleep_ms(10);
	}
	fprintf(stderr, "%s: every process done %lld ms after stdin was closed\n", p->name,
		nh_now_ms() - (end - timeout_ms));
}

void nh_expect_results(nh_proc *p, int processes)
{
	enum { MAXP = 256 };
	pid_t seen[MAXP];
	int nseen = 0, orig = 0, fails = 0;
	char first_fail[256] = "";
	for (const char *l = p->out.data; (l = strstr(l, "RESULT ")) != NULL; l++) {
		if (l != p->out.data && l[-1] != '\n')
			continue;
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		int pid = -1, clone = -1;
		if (sscanf(l, "RESULT pid=%d clone=%d", &pid, &clone) != 2)
			nh_fail(p, "malformed line: %.*s", (int)len, l);
		if (memmem(l, len, " FAIL", 5) || !memmem(l, len, " ok", 3)) {
			if (!fails++)
				snprintf(first_fail, sizeof first_fail, "%.*s", (int)len, l);
			continue;
		}
		for (int i = 0; i < nseen; i++)
			if (seen[i] == pid)
				nh_fail(p, "pid %d reported twice", pid);
		if (nseen < MAXP)
			seen[nseen++] = pid;
		if (pid == p->pid) {
			orig++;
			if (clone != 0)
				nh_fail(p, "original pid %d says clone=%d", pid, clone);
		} else if (clone != 1) {
			nh_fail(p, "pid %d is not the original but says clone=%d", pid, clone);
		}
	}
	if (fails)
		nh_fail(p, "%d process(es) failed; first: %s", fails, first_fail);
	if (orig != 1)
		nh_fail(p, "the original process did not report ok");
	/* Clones must be the ones libnuwa announced. */
	pid_t announced[1024];
	int na = nh_clone_pids(p, 0, announced, 1024);
	if (nseen != processes) {
		char missing[512] = "";
		size_t off = 0;
		for (int j = 0; j < na && off < sizeof missing - 16; j++) {
			char mark[48];
			snprintf(mark, sizeof mark, "RESULT pid=%d ", (int)announced[j]);
			if (announced[j] != p->pid && !strstr(p->out.data, mark))
				off += (size_t)snprintf(missing + off, sizeof missing - off, " %d",
							(int)announced[j]);
		}
		nh_fail(p, "%d processes reported ok, expected %d; announced clones without a "
			"RESULT line (numbers from \"clone done:\" lines):%s", nseen, processes,
			missing[0] ? missing : " none");
	}
	for (int i = 0; i < nseen; i++) {
		if (seen[i] == p->pid)
			continue;
		int found = 0;
		for (int j = 0; j < na && !found; j++)
			found = announced[j] == seen[i];
		if (!found)
			nh_fail(p, "pid %d reported but no \"clone done:\" line named it", (int)seen[i]);
	}
	if (!WIFEXITED(p->wstatus) || WEXITSTATUS(p->wstatus) != 0)
		nh_fail(p, "original process: %s %d",
			WIFEXITED(p->wstatus) ? "exit status" : "killed by signal",
			WIFEXITED(p->wstatus) ? WEXITSTATUS(p->wstatus) : WTERMSIG(p->wstatus));
}

void nh_run_clones(const char *name, const struct nh_opts *opts, int triggers,
		   int clones_per_trigger, int random_max_ms)
{
	nh_proc *p = nh_start(name, opts);
	nh_expect_ready(p);
	if (random_max_ms > 0) {
		nh_random_triggers(p, triggers, 10, random_max_ms);
	} else {
		for (int i = 0; i < triggers; i++) {
			nh_clone(p, NH_CLONE_MS);
			nh_pump(p, 100);
		}
	}
	nh_pump(p, 300);   /* let every process run resumed for a while */
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1 + triggers * clones_per_trigger);
	nh_free(p);
}
