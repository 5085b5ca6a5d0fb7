/* Helpers for the real-program suite (see rp.h). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rp.h"

int rp_fail(struct rp *r, const char *fmt, ...)
{
	size_t len = strlen(r->why);
	if (len + 16 >= sizeof r->why)
		return -1;
	if (len)
		len += snprintf(r->why + len, sizeof r->why - len, " | then: ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why + len, sizeof r->why - len, fmt, ap);
	va_end(ap);
	return -1;
}

const char *rp_death(struct rp *r, pid_t pid)
{
	static char out[160];
	char path[300], line[512], want[64];
	snprintf(out, sizeof out, "%s", rp_alive(pid) ? "running" : "gone");
	snprintf(want, sizeof want, "child %d exited, status 0x", pid);
	FILE *f = fopen(rp_path(r, "nuwa.log", path, sizeof path), "re");
	while (f && fgets(line, sizeof line, f)) {
		char *p = strstr(line, want);
		if (!p)
			continue;
		int st = (int)strtol(p + strlen(want), NULL, 16);
		if (WIFSIGNALED(st))
			snprintf(out, sizeof out, "killed by signal %d, %s", WTERMSIG(st), strsignal(WTERMSIG(st)));
		else
			snprintf(out, sizeof out, "exited with status %d", WEXITSTATUS(st));
	}
	if (f)
		fclose(f);
	return out;
}

long long rp_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

void rp_sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static int is_elf(const char *path)
{
	char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int ok = read(fd, magic, 4) == 4 && memcmp(magic, "\177ELF", 4) == 0;
	close(fd);
	return ok && access(path, X_OK) == 0;
}

const char *rp_which(const char *prog, char *buf, size_t cap)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof dirs, "%s:/usr/local/sbin:/usr/sbin:/sbin", path ? path : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, cap, "%s/%s", d, prog);
		if (*d == '/' && is_elf(buf))
			return buf;
	}
	return NULL;
}

int rp_free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof a;
		int port = -1;
		if (bind(t, (struct sockaddr *)&a, sizeof a) == 0 &&
		    getsockname(t, (struct sockaddr *)&a, &len) == 0) {
			int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (bind(u, (struct sockaddr *)&a, sizeof a) == 0)
				port = ntohs(a.sin_port);
			close(u);
		}
		close(t);
		if (port > 0)
			return port;
	}
	return -1;
}

const char *rp_path(struct rp *r, const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", r->dir, name);
	return buf;
}

int rp_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -1;
	int ok = fputs(text, f) >= 0;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

static const char *env_or(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* fork + exec argv with out/err to fd `log` (or a pipe), extra env. */
static pid_t launch(const char *const *argv, const char *const *env, int out, const char *rt)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDONLY);
	dup2(null, 0);
	dup2(out, 1);
	dup2(out, 2);
	setenv("NUWA_RUNTIME_DIR", rt, 1);
	unsetenv("XDG_RUNTIME_DIR");
	for (int i = 0; env && env[i]; i++)
		putenv((char *)env[i]);
	signal(SIGPIPE, SIG_DFL);
	execv(argv[0], (char *const *)argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int rp_start(struct rp *r, const char *const *argv, const char *const *env)
{
	char log[300], nlog[300], rt[300];
	const char *nuwa = env_or("NUWA_CLI"), *lib = env_or("NUWA_LIB");
	if (!nuwa || !lib)
		return rp_fail(r, "NUWA_CLI and NUWA_LIB must be set (run through meson test)");
	const char *full[64] = { nuwa, "run", "--log", "debug", "--log-file",
	                         rp_path(r, "nuwa.log", nlog, sizeof nlog), "--lib", lib, "--" };
	int n = 9;
	for (int i = 0; argv[i] && n < 63; i++)
		full[n++] = argv[i];
	full[n] = NULL;
	int fd = open(rp_path(r, "prog.log", log, sizeof log), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return rp_fail(r, "cannot open %s: %s", log, strerror(errno));
	r->tmpl = launch(full, env, fd, rp_path(r, "rt", rt, sizeof rt));
	close(fd);
	return r->tmpl > 0 ? 0 : rp_fail(r, "fork: %s", strerror(errno));
}

int rp_nuwa(struct rp *r, char *out, size_t cap, int timeout_ms, ...)
{
	const char *argv[32] = { env_or("NUWA_CLI") };
	va_list ap;
	va_start(ap, timeout_ms);
	int n = 1;
	for (const char *a; (a = va_arg(ap, const char *)) && n < 31;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	out[0] = 0;
	if (!argv[0])
		return rp_fail(r, "NUWA_CLI is not set");
	return rp_exec(r, argv, out, cap, timeout_ms);
}

int rp_exec(struct rp *r, const char *const *argv, char *out, size_t cap, int timeout_ms)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	char rt[300];
	pid_t pid = launch(argv, NULL, p[1], rp_path(r, "rt", rt, sizeof rt));
	close(p[1]);
	size_t len = 0;
	long long deadline = rp_now_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - rp_now_ms();
		struct pollfd pf = { p[0], POLLIN, 0 };
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			break;
		ssize_t k = read(p[0], out + len, cap - 1 - len);
		if (k <= 0)
			break;
		len += k;
		if (len == cap - 1)
			break;
	}
	out[len] = 0;
	close(p[0]);
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (rp_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		rp_sleep_ms(5);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int rp_freeze(struct rp *r)
{
	char out[16384], pid[16];
	snprintf(pid, sizeof pid, "%d", r->tmpl);
	int rc = rp_nuwa(r, out, sizeof out, 30000, "freeze", pid, NULL);
	REQUIRE(rc == 0, "nuwa freeze %s exited %d: %.600s", pid, rc, out);
	/* Every thread was parked at a freeze point, none after the timeout. */
	char busy[512] = "";
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strstr(l, "thread ") && strstr(l, "busy"))
			snprintf(busy + strlen(busy), sizeof busy - strlen(busy), "%s[%s]", busy[0] ? ", " : "",
			         l + strspn(l, " "));
	if (busy[0])   /* a failure, but the children can still be checked */
		rp_fail(r, "nuwa freeze: threads parked busy, at no freeze point (the freeze waited out "
		        "its timeout): %s", busy);
	return 0;
}

/* libnuwa logged that pid runs without a control socket. */
static int socket_refused(struct rp *r, pid_t pid)
{
	char path[300], line[512], want[64];
	snprintf(want, sizeof want, "nuwa[%d]: error: control socket disabled", pid);
	FILE *f = fopen(rp_path(r, "nuwa.log", path, sizeof path), "re");
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f))
		found = strstr(line, want) != NULL;
	if (f)
		fclose(f);
	return found;
}

int rp_spawn(struct rp *r, int n)
{
	char out[4096], pid[16], num[8];
	snprintf(pid, sizeof pid, "%d", r->tmpl);
	snprintf(num, sizeof num, "%d", n);
	int rc = rp_nuwa(r, out, sizeof out, 30000, "spawn", "-n", num, pid, NULL);
	int got = 0;
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *end;
		long k = strtol(l, &end, 10);
		if (k > 0 && *end == 0 && r->nkids < RP_MAXKIDS) {
			r->kid[r->nkids++] = (pid_t)k;
			got++;
		}
	}
	REQUIRE(rc == 0 && got == n, "nuwa spawn -n %d %s exited %d with %d pids", n, pid, rc, got);
	for (int i = r->nkids - n; i < r->nkids; i++)
		REQUIRE(rp_alive(r->kid[i]), "child %d died right after it was spawned (%s)", r->kid[i],
		        rp_death(r, r->kid[i]));
	/* Each child has its own control socket (docs/cli.md); a failure, but
	 * the children can still be checked. */
	for (int i = r->nkids - n; i < r->nkids; i++) {
		char kid[16];
		snprintf(kid, sizeof kid, "%d", r->kid[i]);
		long long deadline = rp_now_ms() + 5000;   /* the child makes it as it resumes */
		while ((rc = rp_nuwa(r, out, sizeof out, 10000, "status", kid, NULL)) == 3 &&
		       rp_alive(r->kid[i]) && !socket_refused(r, r->kid[i]) && rp_now_ms() < deadline)
			rp_sleep_ms(20);
		if (rc != 0 || !strstr(out, "spawned yes"))
			rp_fail(r, "child %d has no control socket of its own: nuwa status exited %d: %.200s",
			        r->kid[i], rc, out);
	}
	return 0;
}

static char proc_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

int rp_alive(pid_t pid)
{
	char s = proc_state(pid, pid);
	return s && s != 'Z' && s != 'X';
}

int rp_wait_gone(pid_t pid, int timeout_ms)
{
	long long deadline = rp_now_ms() + timeout_ms;
	while (rp_alive(pid)) {
		if (rp_now_ms() >= deadline)
			return 0;
		rp_sleep_ms(10);
	}
	return 1;
}

int rp_threads(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Every thread of pid is stopped (state T or t). */
static int all_stopped(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return 1;
	int ok = 1;
	for (struct dirent *e; ok && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char s = proc_state(pid, atoi(e->d_name));
		ok = !s || s == 'T' || s == 't' || s == 'Z' || s == 'X';
	}
	closedir(d);
	return ok;
}

int rp_only(struct rp *r, int i)
{
	REQUIRE(rp_alive(r->kid[i]), "child %d is gone (%s)", r->kid[i], rp_death(r, r->kid[i]));
	for (int k = 0; k < r->nkids; k++)
		if (k != i && rp_alive(r->kid[k]))
			kill(r->kid[k], SIGSTOP);
	long long deadline = rp_now_ms() + 5000;
	for (int k = 0; k < r->nkids; k++)
		while (k != i && !all_stopped(r->kid[k])) {
			REQUIRE(rp_now_ms() < deadline, "child %d does not stop on SIGSTOP", r->kid[k]);
			rp_sleep_ms(2);
		}
	return 0;
}

void rp_all(struct rp *r)
{
	for (int k = 0; k < r->nkids; k++)
		kill(r->kid[k], SIGCONT);
}

void rp_stop(struct rp *r)
{
	char out[4096], pid[16];
	snprintf(pid, sizeof pid, "%d", r->tmpl);
	if (r->tmpl > 0 && rp_alive(r->tmpl))
		rp_nuwa(r, out, sizeof out, 10000, "stop", pid, NULL);
	rp_all(r);
	for (int k = 0; k < r->nkids; k++)
		kill(r->kid[k], SIGTERM);
	for (int k = 0; k < r->nkids; k++)
		if (!rp_wait_gone(r->kid[k], 3000)) {
			kill(r->kid[k], SIGKILL);
			rp_wait_gone(r->kid[k], 3000);
		}
	if (r->tmpl > 0 && !rp_wait_gone(r->tmpl, 3000)) {
		kill(r->tmpl, SIGKILL);
		rp_wait_gone(r->tmpl, 3000);
	}
}

static int connect_to(int port, int type, int timeout_ms)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		if (errno != EINPROGRESS) {
			close(fd);
			return -1;
		}
		struct pollfd pf = { fd, POLLOUT, 0 };
		int err = 0;
		socklen_t len = sizeof err;
		if (poll(&pf, 1, timeout_ms) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

int rp_connect(int port, int timeout_ms)
{
	return connect_to(port, SOCK_STREAM, timeout_ms);
}

int rp_converse(int fd, const char *req, char *resp, size_t cap, const char *until, int timeout_ms)
{
	long long deadline = rp_now_ms() + timeout_ms;
	resp[0] = 0;
	size_t len = strlen(req), off = 0, got = 0;
	while (rp_now_ms() < deadline) {
		struct pollfd pf = { fd, off < len ? POLLIN | POLLOUT : POLLIN, 0 };
		long long left = deadline - rp_now_ms();
		if (poll(&pf, 1, left > 0 ? (int)left : 0) <= 0)
			return -1;
		if ((pf.revents & POLLOUT) && off < len) {
			ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
			if (k < 0 && errno != EAGAIN)
				return -1;
			off += k > 0 ? k : 0;
		}
		if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k = recv(fd, resp + got, cap - 1 - got, 0);
			if (k < 0 && errno == EAGAIN)
				continue;
			if (k <= 0)
				return until ? -1 : (int)got;
			got += k;
			resp[got] = 0;
			if ((until && strstr(resp, until)) || got == cap - 1)
				return (int)got;
		}
	}
	return -1;
}

int rp_tcp(int port, const char *req, char *resp, size_t cap, const char *until, int timeout_ms)
{
	long long deadline = rp_now_ms() + timeout_ms;
	resp[0] = 0;
	int fd = connect_to(port, SOCK_STREAM, timeout_ms);
	if (fd < 0)
		return -1;
	long long left = deadline - rp_now_ms();
	int rc = rp_converse(fd, req, resp, cap, until, left > 0 ? (int)left : 1);
	close(fd);
	return rc;
}

int rp_wait_tcp(int port, int timeout_ms)
{
	long long deadline = rp_now_ms() + timeout_ms;
	do {
		int fd = connect_to(port, SOCK_STREAM, 500);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		rp_sleep_ms(20);
	} while (rp_now_ms() < deadline);
	return -1;
}

int rp_dns_a(int port, const char *name, char *addr, size_t cap, int timeout_ms)
{
	unsigned char q[512], a[1500];
	size_t n = 0;
	unsigned short id = (unsigned short)(rp_now_ms() ^ getpid());
	unsigned char hdr[12] = { id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 };  /* RD, 1 question */
	memcpy(q, hdr, 12);
	n = 12;
	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || n + l + 6 > sizeof q)
			return -1;
		q[n++] = (unsigned char)l;
		memcpy(q + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	q[n++] = 0;
	q[n++] = 0; q[n++] = 1;   /* A */
	q[n++] = 0; q[n++] = 1;   /* IN */
	int fd = connect_to(port, SOCK_DGRAM, timeout_ms);
	if (fd < 0 || send(fd, q, n, 0) != (ssize_t)n) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct pollfd pf = { fd, POLLIN, 0 };
	ssize_t k = -1;
	long long deadline = rp_now_ms() + timeout_ms;
	while (rp_now_ms() < deadline) {
		if (poll(&pf, 1, (int)(deadline - rp_now_ms())) != 1)
			break;
		k = recv(fd, a, sizeof a, 0);
		if (k >= 12 && a[0] == q[0] && a[1] == q[1])
			break;
		k = -1;
	}
	close(fd);
	if (k < 12)
		return -1;
	int ancount = a[6] << 8 | a[7];
	size_t p = n;   /* the question is echoed as sent */
	for (int i = 0; i < ancount && p + 12 <= (size_t)k; i++) {
		if ((a[p] & 0xc0) == 0xc0)
			p += 2;
		else {
			while (p < (size_t)k && a[p])
				p += a[p] + 1;
			p++;
		}
		if (p + 10 > (size_t)k)
			break;
		int type = a[p] << 8 | a[p + 1], rdlen = a[p + 8] << 8 | a[p + 9];
		p += 10;
		if (type == 1 && rdlen == 4 && p + 4 <= (size_t)k) {
			snprintf(addr, cap, "%u.%u.%u.%u", a[p], a[p + 1], a[p + 2], a[p + 3]);
			return 1;
		}
		p += rdlen;
	}
	return 0;
}

static void dump_file(struct rp *r, const char *name, size_t tail)
{
	char path[300];
	FILE *f = fopen(rp_path(r, name, path, sizeof path), "re");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	if (size > (long)tail)
		fseek(f, size - (long)tail, SEEK_SET);
	else
		rewind(f);
	fprintf(stderr, "---- %s: %s%s ----\n", r->name, name, size > (long)tail ? " (end)" : "");
	char buf[4096];
	size_t k;
	while ((k = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, k, stderr);
	fclose(f);
}

void rp_dump(struct rp *r)
{
	dump_file(r, "prog.log", 3000);
	dump_file(r, "nuwa.log", 3000);
	dump_file(r, "error.log", 2000);
}

long rp_field(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);
	if (!p)
		return -1;
	char *end;
	long v = strtol(p + strlen(prefix), &end, 10);
	return end == p + strlen(prefix) ? -1 : v;
}

int rp_still_template(struct rp *r)
{
	char out[16384], pid[16];
	snprintf(pid, sizeof pid, "%d", r->tmpl);
	int rc = rp_nuwa(r, out, sizeof out, 10000, "status", pid, NULL);
	REQUIRE(rc == 0 && strstr(out, "state template"),
	        "the template %d is no longer a template (nuwa status exited %d): %.300s", r->tmpl, rc, out);
	return 0;
}

void rp_trace(struct rp *r, const char *what)
{
	static long long t0;
	if (!getenv("RP_TRACE"))
		return;
	if (!t0)
		t0 = rp_now_ms();
	fprintf(stderr, "  [%s +%lld ms] %.*s\n", r->name, rp_now_ms() - t0, (int)strcspn(what, "\n"), what);
}

int rp_http(struct rp *r, int i, const char *path, char *resp, size_t cap)
{
	char req[512];
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (i >= 0)
		CHECK(rp_only(r, i));
	int n = rp_tcp(r->port, req, resp, cap, NULL, 10000);
	if (i >= 0)
		rp_all(r);
	pid_t pid = i >= 0 ? r->kid[i] : r->tmpl;
	REQUIRE(n > 0 && strstr(resp, " 200 "), "GET %s from %s %d (%s): \"%.200s\"", path,
	        i >= 0 ? "child" : "the program", pid, rp_death(r, pid), resp);
	return 0;
}

int rp_dontfork_maps(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "re");
	int n = 0;
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " dc"))
			n++;
	if (f)
		fclose(f);
	return n;
}
