/* Helpers for the tests/cli suites (see cli_test.h). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_test.h"

extern char **environ;

const char *ct_path(const char *envname)
{
	const char *v = getenv(envname);
	if (!v || !*v)
		cr_assert_fail("%s is not set (run the suite with meson test)", envname);
	return v;
}

const char *ct_preload(const char *lib)
{
	static char buf[8192];
	const char *first = getenv("NUWA_PRELOAD_FIRST");
	snprintf(buf, sizeof buf, "%s%s%s", first ? first : "", first && *first ? ":" : "", lib);
	return buf;
}

static char base[256], rundir[300];

const char *ct_setup(void)
{
	snprintf(base, sizeof base, "/tmp/nuwa-clitest-XXXXXX");
	if (!mkdtemp(base))
		cr_assert_fail("mkdtemp: %s", strerror(errno));
	chmod(base, 0755);
	snprintf(rundir, sizeof rundir, "%s/rt", base);
	setenv("NUWA_RUNTIME_DIR", rundir, 1);
	unsetenv("XDG_RUNTIME_DIR");
	return base;
}

const char *ct_rundir(void)
{
	return rundir;
}

long long ct_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

void ct_sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static void child_env(const char *const *env)
{
	for (int i = 0; env && env[i]; i++) {
		char kv[4096];
		snprintf(kv, sizeof kv, "%s", env[i]);
		char *eq = strchr(kv, '=');
		if (!eq)
			continue;
		*eq = 0;
		setenv(kv, eq + 1, 1);
	}
}

static int decode(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

void ct_run(struct ct_out *o, const char *const *argv, const char *const *env, int timeout_ms)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		cr_assert_fail("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		int devnull = open("/dev/null", O_RDONLY);
		dup2(devnull, 0);
		child_env(env);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	size_t lo = 0, le = 0;
	long long deadline = ct_now_ms() + timeout_ms;
	int open_fds = 2;
	while (open_fds) {
		long long left = deadline - ct_now_ms();
		if (left <= 0)
			break;
		struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		if (poll(p, 2, (int)left) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents || p[i].fd < 0)
				continue;
			char *dst = i ? o->err : o->out;
			size_t *len = i ? &le : &lo;
			char tmp[4096];
			ssize_t n = read(p[i].fd, tmp, sizeof tmp);
			if (n <= 0) {
				close(i ? pe[0] : po[0]);
				if (i)
					pe[0] = -1;
				else
					po[0] = -1;
				open_fds--;
				continue;
			}
			size_t k = (size_t)n < sizeof o->out - 1 - *len ? (size_t)n : sizeof o->out - 1 - *len;
			memcpy(dst + *len, tmp, k);
			*len += k;
		}
	}
	o->out[lo] = 0;
	o->err[le] = 0;
	int st;
	o->code = -1;
	while (ct_now_ms() < deadline || open_fds == 0) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			o->code = decode(st);
			break;
		}
		if (ct_now_ms() >= deadline)
			break;
		ct_sleep_ms(5);
	}
	if (o->code == -1) {
		kill(-pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	if (po[0] >= 0)
		close(po[0]);
	if (pe[0] >= 0)
		close(pe[0]);
}

void ct_nuwa(struct ct_out *o, int timeout_ms, ...)
{
	const char *argv[64];
	int n = 0;
	argv[n++] = ct_path("NUWA_CLI");
	va_list ap;
	va_start(ap, timeout_ms);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 63)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	ct_run(o, argv, NULL, timeout_ms);
}

void ct_start(struct ct_bg *b, const char *const *argv, const char *const *env, int err_too)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		cr_assert_fail("pipe: %s", strerror(errno));
	memset(b, 0, sizeof *b);
	b->pid = fork();
	if (b->pid == 0) {
		setpgid(0, 0);
		dup2(p[1], 1);
		if (err_too)
			dup2(p[1], 2);
		child_env(env);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	setpgid(b->pid, b->pid);
	close(p[1]);
	b->out = p[0];
}

int ct_count(const char *hay, const char *needle)
{
	int n = 0;
	size_t l = strlen(needle);
	for (const char *p = hay; (p = strstr(p, needle)); p += l)
		n++;
	return n;
}

int ct_expect(struct ct_bg *b, const char *needle, int timeout_ms)
{
	long long deadline = ct_now_ms() + timeout_ms;
	for (;;) {
		b->buf[b->len] = 0;
		if (strstr(b->buf, needle))
			return 1;
		long long left = deadline - ct_now_ms();
		if (left <= 0 || b->out < 0)
			return 0;
		struct pollfd p = { b->out, POLLIN, 0 };
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t n = read(b->out, b->buf + b->len, sizeof b->buf - 1 - b->len);
		if (n <= 0) {
			close(b->out);
			b->out = -1;
			continue;
		}
		b->len += (size_t)n;
	}
}

void ct_drain(struct ct_bg *b)
{
	while (b->out >= 0) {
		struct pollfd p = { b->out, POLLIN, 0 };
		if (poll(&p, 1, 0) <= 0)
			return;
		if (b->len > sizeof b->buf / 2) {
			size_t keep = sizeof b->buf / 4;
			memmove(b->buf, b->buf + b->len - keep, keep);
			b->len = keep;
		}
		ssize_t n = read(b->out, b->buf + b->len, sizeof b->buf - 1 - b->len);
		if (n <= 0) {
			close(b->out);
			b->out = -1;
			return;
		}
		b->len += (size_t)n;
		b->buf[b->len] = 0;
	}
}

void ct_kill(struct ct_bg *b)
{
	if (b->pid <= 0)
		return;
	kill(-b->pid, SIGKILL);
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
	if (b->out >= 0)
		close(b->out);
	b->out = -1;
	b->pid = 0;
}

int ct_wait(struct ct_bg *b, int timeout_ms)
{
	long long deadline = ct_now_ms() + timeout_ms;
	int st;
	while (ct_now_ms() < deadline) {
		if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
			b->pid = 0;
			return decode(st);
		}
		ct_sleep_ms(5);
	}
	return -1;
}

pid_t ct_mock(struct ct_bg *b, const char *const *env, char *sock, size_t len)
{
	const char *argv[] = { ct_path("NUWA_MOCK"), NULL };
	ct_start(b, argv, env, 0);
	if (!ct_expect(b, "MOCK READY ", 5000) && !ct_expect(b, "MOCK INITFAIL", 10))
		cr_assert_fail("mock_template did not start: [%s]", b->buf);
	char *p = strstr(b->buf, "MOCK READY ");
	if (!p)
		return -1;
	long pid = 0;
	char path[256] = "";
	sscanf(p, "MOCK READY %ld %255s", &pid, path);
	snprintf(sock, len, "%s", path);
	return (pid_t)pid;
}

int ct_connect(const char *sock)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int ct_send(int fd, const void *msg, size_t len)
{
	const char *p = msg;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ct_recv(int fd, char *buf, size_t cap, struct ctl_msg *m, int timeout_ms)
{
	size_t have = 0;
	long long deadline = ct_now_ms() + timeout_ms;
	for (;;) {
		long sz = have ? ctl_frame(buf, have, CTL_MAX_REPLY, m) : 0;
		if (sz < 0)
			return (int)sz;
		if (sz > 0)
			return ctl_validate(m) < 0 ? -EPROTO : 1;
		long long left = deadline - ct_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		/* One byte at a time past the header: never read into the next
		 * message, which the caller asks for with another call. */
		size_t want = have < CTL_HDR_SIZE ? CTL_HDR_SIZE - have
		                                  : CTL_HDR_SIZE + m->len - have;
		if (want > cap - have)
			return -EMSGSIZE;
		ssize_t n = recv(fd, buf + have, want, 0);
		if (n < 0)
			return errno == ECONNRESET ? 0 : -errno;
		if (n == 0)
			return 0;
		have += (size_t)n;
		if (have >= CTL_HDR_SIZE)
			ctl_frame(buf, have, CTL_MAX_REPLY, m);
	}
}

int ct_hello(const char *sock, unsigned *state, unsigned *children)
{
	int fd = ct_connect(sock);
	if (fd < 0)
		return fd;
	char mem[64], buf[4096];
	struct ctl_buf b;
	struct ctl_msg m;
	ctl_begin(&b, mem, sizeof mem, CTL_REQ_HELLO);
	long n = ctl_end(&b);
	int r = ct_send(fd, mem, (size_t)n);
	if (r == 0)
		r = ct_recv(fd, buf, sizeof buf, &m, 20000);
	close(fd);
	if (r != 1)
		return r < 0 ? r : -EPIPE;
	if (m.type != CTL_REP_OK)
		return -EPROTO;
	uint32_t s = 0, c = 0;
	ctl_get_u32(&m, CTL_F_STATE, &s);
	ctl_get_u32(&m, CTL_F_CHILDREN, &c);
	if (state)
		*state = s;
	if (children)
		*children = c;
	return 0;
}

int ct_count_fds(pid_t pid)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/fd", pid);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static long status_field(pid_t pid, const char *key)
{
	char p[64], line[256];
	snprintf(p, sizeof p, "/proc/%d/status", pid);
	FILE *f = fopen(p, "re");
	long v = -1;
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = atol(line + kl + 1);
	if (f)
		fclose(f);
	return v;
}

long ct_rss_kb(pid_t pid)
{
	return status_field(pid, "VmRSS");
}

int ct_threads(pid_t pid)
{
	return (int)status_field(pid, "Threads");
}

int ct_alive(pid_t pid)
{
	char p[64], buf[512];
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

int ct_zombie_children(pid_t parent)
{
	DIR *d = opendir("/proc");
	int z = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char p[300], buf[512];
		snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(p, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		char *rp = strrchr(buf, ')');
		char st;
		long ppid;
		if (rp && sscanf(rp + 2, "%c %ld", &st, &ppid) == 2 && ppid == parent && st == 'Z')
			z++;
	}
	if (d)
		closedir(d);
	return z;
}

/* CPU ticks (utime + stime) of the thread named `comm` in pid, or -1. */
long ct_thread_ticks(pid_t pid, const char *comm)
{
	char path[384], buf[512];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	long ticks = -1;
	for (struct dirent *e; d && (e = readdir(d));) {
		snprintf(path, sizeof path, "/proc/%d/task/%s/stat", pid, e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		char *c = strchr(buf, '('), *r = strrchr(buf, ')');
		if (!c || !r || (size_t)(r - c - 1) != strlen(comm) || strncmp(c + 1, comm, strlen(comm)))
			continue;
		unsigned long ut, st;
		if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
			ticks = (long)(ut + st);
	}
	if (d)
		closedir(d);
	return ticks;
}

/* Control sockets (*.sock) in the runtime directory. */
int ct_sockets_in_rundir(void)
{
	int n = 0;
	DIR *d = opendir(ct_rundir());
	for (struct dirent *e; d && (e = readdir(d));)
		n += strstr(e->d_name, ".sock") != NULL;
	if (d)
		closedir(d);
	return n;
}
