/* matrix — the zdtm-style scenario matrix (tests/matrix/README.md).
 *
 *   matrix [NAME...]         run every case, or those named (case or run)
 *
 * Environment (tests/matrix/meson.build): NUWA_CLI, MX_BIN (the directory of
 * the mx_* programs), MX_SCN (the build directory of tests/, where
 * tests/scenarios and tests/fdremap put their programs), MX_KNOWN (the
 * known-failures file).
 *
 * Each run is one process under libnuwa in template mode:
 *   nuwa run --mode template -- PROG CASES   (READY on stdout)
 *   nuwa freeze → nuwa spawn -n 3 → the template is still a template
 *   EOF on stdin: the three children verify (the template is frozen and says
 *   nothing) and exit; each is reaped
 *   nuwa thaw → the original verifies and exits 0
 *   nothing left: no process of the run, no file in its runtime directory.
 * One line per case: PASS / FAIL name: why / XFAIL name: why [known: ...] /
 * XPASS (listed as failing but passes: counts as failed); then
 * "N passed, N failed". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXCASES 64
#define NCHILD 3

struct rcase { char name[64]; long total; int mx; char why[400]; };
struct run {
	char label[64];
	char prog[512];
	const char *args[MAXCASES + 4];
	int nargs;
	struct rcase cases[MAXCASES];
	int ncases;
};

/* What the scenario programs of tests/scenarios prove, driven here in
 * template mode (each prints RESULT lines, scn.h). */
static const struct { const char *label, *prog, *args[4]; } scn_runs[] = {
	{ "freezepoints", "scenarios/freezepoints", { NULL } },
	{ "freezepoints-fortify2", "scenarios/freezepoints-fortify2", { NULL } },
	{ "freezepoints-fortify3", "scenarios/freezepoints-fortify3", { NULL } },
	{ "threads-busy-and-sleeping", "scenarios/threads", { "8", NULL } },
	{ "threads-spinning", "scenarios/spin", { "2", "3", NULL } },
	{ "threads-created-and-exiting", "scenarios/lifecycle", { NULL } },
	{ "condvar-handoffs", "scenarios/condvar", { "20000", NULL } },
	{ "mutexes-owner-tids", "scenarios/mutexes", { NULL } },
	{ "raw-syscall-sleepers", "scenarios/rawsleep", { NULL } },
	{ "thread-identity-sigaltstack", "scenarios/identity", { NULL } },
	{ "channels-in-flight", "fdremap/fd_channels", { NULL } },
	{ "epoll-100-descriptors", "fdremap/fd_epoll", { NULL } },
	{ "signals-all-blocked", "scenarios/signals", { "blockall", NULL } },
};
static const char *mx_progs[] = { "mx_fd", "mx_sync", "mx_sig", "mx_proc", "mx_mem", "mx_timer" };

static struct run runs[128];
/* Runs whose `nuwa thaw` got no reply (exit 4): the program was resumed and
 * exited before the control thread sent it.  A race, reported on its own
 * line (thaw-reply) instead of failing every case of the run. */
static const char *thaw_race[16];
static int nthaw_race;
static int nruns;

/* ---- small helpers -------------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static const char *env_or_die(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "matrix: %s is not set (run it through meson test)\n", name);
		exit(2);
	}
	return v;
}

static void add_why(char *why, size_t cap, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t l = strlen(why);
	if (l == 0)
		snprintf(why, cap, "%s", msg);
	else if (l + 12 < cap && !strstr(why, msg))
		snprintf(why + l, cap - l, " | then: %s", msg);
}

/* Run argv to completion within timeout_ms; stdout+stderr in out.  Exit
 * status, 128+N if killed by N, -1 on timeout. */
static int run_cmd(char *out, size_t cap, int timeout_ms, const char *const *argv)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	long long end = now_ms() + timeout_ms;
	int timed_out = 0;
	for (;;) {
		long long left = end - now_ms();
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		struct pollfd pf = { p[0], POLLIN, 0 };
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		char tmp[4096];
		ssize_t n = read(p[0], tmp, sizeof tmp);
		if (n <= 0)
			break;
		size_t k = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
		memcpy(out + len, tmp, k);
		len += k;
	}
	out[len] = 0;
	close(p[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (timed_out)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the known failures --------------------------------------------------- */

/* race: the line's CASE was written ~CASE, a failure that depends on timing:
 * when the case passes it is a PASS, not an XPASS. */
struct known { char name[64], evidence[256], why[512]; int race; };
static struct known known[64];
static int nknown;

static void read_known(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "matrix: cannot read %s: %s\n", path, strerror(errno));
		exit(2);
	}
	char line[1024];
	while (fgets(line, sizeof line, f) && nknown < 64) {
		struct known *k = &known[nknown];
		int used = 0;
		if (line[0] == '#' || sscanf(line, "%63s %n", k->name, &used) < 1)
			continue;
		if ((k->race = k->name[0] == '~'))
			memmove(k->name, k->name + 1, strlen(k->name));
		char *ev = line + used;   /* a word, or "a quoted string" */
		char *end = *ev == '"' ? strchr(ev + 1, '"') : ev + strcspn(ev, " \t\n");
		if (!end || end == ev)
			continue;
		ev += *ev == '"';
		snprintf(k->evidence, sizeof k->evidence, "%.*s", (int)(end - ev), ev);
		used = (int)(end + (*end == '"') - line);
		used += (int)strspn(line + used, " \t");
		snprintf(k->why, sizeof k->why, "%s", line + used);
		k->why[strcspn(k->why, "\n")] = 0;
		nknown++;
	}
	fclose(f);
}

static const struct known *known_for(const char *name)
{
	for (int i = 0; i < nknown; i++)
		if (!strcmp(known[i].name, name))
			return &known[i];
	return NULL;
}

/* ---- building the list of runs -------------------------------------------- */

static struct run *new_run(const char *label, const char *prog)
{
	if (nruns == (int)(sizeof runs / sizeof runs[0])) {
		fprintf(stderr, "matrix: too many runs\n");
		exit(2);
	}
	struct run *r = &runs[nruns++];
	memset(r, 0, sizeof *r);
	snprintf(r->label, sizeof r->label, "%s", label);
	snprintf(r->prog, sizeof r->prog, "%s", prog);
	return r;
}

static void add_mx_case(struct run *r, const char *name, long total)
{
	struct rcase *c = &r->cases[r->ncases++];
	snprintf(c->name, sizeof c->name, "%s", name);
	c->total = total;
	c->mx = 1;
	r->args[r->nargs++] = strdup(name);
}

/* PROG --list: "NAME GROUP TOTAL"; a group is one run, except that a case
 * listed as a known failure runs alone (its failure must not hide others). */
static void plan_mx(const char *bin, const char *progname)
{
	char prog[512], out[16384];
	snprintf(prog, sizeof prog, "%s/%s", bin, progname);
	const char *argv[] = { prog, "--list", NULL };
	if (run_cmd(out, sizeof out, 10000, argv) != 0) {
		fprintf(stderr, "matrix: %s --list failed: %s\n", prog, out);
		exit(2);
	}
	char *save, *line;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64], group[64];
		long total;
		if (sscanf(line, "%63s %63s %ld", name, group, &total) != 3)
			continue;
		const char *label = known_for(name) ? name : group;
		struct run *r = NULL;
		for (int i = 0; i < nruns; i++)
			if (!strcmp(runs[i].label, label) && !strcmp(runs[i].prog, prog))
				r = &runs[i];
		if (!r)
			r = new_run(label, prog);
		add_mx_case(r, name, total);
	}
}

/* ---- one run -------------------------------------------------------------- */

struct proc {
	pid_t pid;
	int in, out;
	char buf[1 << 18];
	size_t len;
};

static void pump(struct proc *p, int timeout_ms)
{
	struct pollfd pf = { p->out, POLLIN, 0 };
	if (p->out < 0 || poll(&pf, 1, timeout_ms) <= 0)
		return;
	ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - 1 - p->len);
	if (n <= 0) {
		close(p->out);
		p->out = -1;
		return;
	}
	p->len += (size_t)n;
	p->buf[p->len] = 0;
}

static int wait_for(struct proc *p, const char *needle, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	while (!strstr(p->buf, needle)) {
		if (now_ms() >= end || p->out < 0)
			return strstr(p->buf, needle) != NULL;
		pump(p, 50);
	}
	return 1;
}

static int count_tasks(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* Exists and is not a zombie. */
static int alive(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int ok = fgets(buf, sizeof buf, f) != NULL;
	fclose(f);
	char *q = ok ? strrchr(buf, ')') : NULL;
	return q && q[2] != 'Z' && q[2] != 'X';
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void tail_file(const char *path, const char *title)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, sz > 6000 ? sz - 6000 : 0, SEEK_SET);
	fprintf(stderr, "---- %s (end) ----\n", title);
	char b[6001];
	size_t n = fread(b, 1, sizeof b - 1, f);
	b[n] = 0;
	fputs(b, stderr);
	fclose(f);
}

/* The verdict line of process pid for case c (NULL if none). */
static const char *case_line(const char *out, const char *name, pid_t pid, char *line, size_t cap)
{
	char key[128];
	snprintf(key, sizeof key, "CASE %s pid=%d ", name, (int)pid);
	for (const char *p = out; (p = strstr(p, key)); p++)
		if (p == out || p[-1] == '\n') {
			size_t n = strcspn(p, "\n");
			snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
			return line;
		}
	return NULL;
}

static const char *result_line(const char *out, pid_t pid, char *line, size_t cap)
{
	char key[64];
	snprintf(key, sizeof key, "RESULT pid=%d ", (int)pid);
	const char *p = strstr(out, key);
	if (!p)
		return NULL;
	size_t n = strcspn(p, "\n");
	snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
	return line;
}

static int has_result(const char *out, pid_t pid)
{
	char line[512];
	return result_line(out, pid, line, sizeof line) != NULL;
}

/* Run r; fills every case's why (empty: passed).  Logs stay in dir. */
static void do_run(struct run *r, const char *cli, char *dir, size_t dircap, char *rerr, size_t rcap)
{
	char rt[600], log[600], err[600], out[65536];
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, dircap, "%s/nuwa-mx-%.40s.XXXXXX", tmp && *tmp ? tmp : "/tmp", r->label);
	if (!mkdtemp(dir)) {
		add_why(rerr, rcap, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(rt, sizeof rt, "%s/rt", dir);
	snprintf(log, sizeof log, "%s/nuwa.log", dir);
	snprintf(err, sizeof err, "%s/prog.err", dir);
	setenv("NUWA_RUNTIME_DIR", rt, 1);
	setenv("MX_DIR", dir, 1);

	static struct proc P;
	struct proc *p = &P;
	memset(p, 0, sizeof *p);
	int in[2], o[2];
	if (pipe2(in, O_CLOEXEC) || pipe2(o, O_CLOEXEC)) {
		add_why(rerr, rcap, "pipe: %s", strerror(errno));
		return;
	}
	const char *argv[MAXCASES + 16];
	int a = 0;
	argv[a++] = cli;
	argv[a++] = "run";
	argv[a++] = "--mode";
	argv[a++] = "template";
	argv[a++] = "--log";
	argv[a++] = "info";
	argv[a++] = "--log-file";
	argv[a++] = log;
	argv[a++] = "--";
	argv[a++] = r->prog;
	for (int i = 0; i < r->nargs; i++)
		argv[a++] = r->args[i];
	argv[a] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(o[1], 1);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		dup2(e, 2);
		execv(cli, (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(in[0]);
	close(o[1]);
	p->pid = pid;
	p->in = in[1];
	p->out = o[0];

	pid_t kids[NCHILD] = { 0 };
	int nkids = 0;
	char pidstr[16];
	snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
#define RFAIL(...) do { add_why(rerr, rcap, __VA_ARGS__); goto out; } while (0)
	if (!wait_for(p, "READY\n", 15000))
		RFAIL("no READY within 15 s%s", p->out < 0 ? " (the program ended)" : "");
	const char *fz[] = { cli, "freeze", pidstr, NULL };
	int rc = run_cmd(out, sizeof out, 30000, fz);
	if (rc != 0)
		RFAIL("nuwa freeze exited %d: %.200s", rc, out);
	int tasks = count_tasks(pid);   /* a frozen template's stay as they are */
	const char *sp[] = { cli, "spawn", "-n", "3", pidstr, NULL };
	rc = run_cmd(out, sizeof out, 30000, sp);
	for (char *q = out; nkids < NCHILD && *q;) {
		char *end;
		long v = strtol(q, &end, 10);
		if (end != q && (*end == '\n' || !*end) && v > 0)
			kids[nkids++] = (pid_t)v;
		q = strchr(q, '\n');
		if (!q)
			break;
		q++;
	}
	if (rc != 0 || nkids != NCHILD)
		RFAIL("nuwa spawn -n 3 exited %d with %d pids: %.200s", rc, nkids, out);
	const char *st[] = { cli, "status", pidstr, NULL };
	rc = run_cmd(out, sizeof out, 10000, st);
	if (rc != 0 || !strstr(out, "template"))
		RFAIL("after the spawns nuwa status exited %d: %.200s", rc, out);

	close(p->in);   /* EOF: the children verify */
	p->in = -1;
	long long end = now_ms() + 25000;   /* each has a 20 s watchdog */
	for (int k = 0; k < nkids; k++)
		while (!has_result(p->buf, kids[k]) && now_ms() < end && p->out >= 0)
			pump(p, 50);
	int hung = 0, unresumed = 0, gone = 0;
	for (int k = 0; k < nkids; k++)
		if (!has_result(p->buf, kids[k])) {
			hung++;
			gone += !alive(kids[k]);
			unresumed += alive(kids[k]) && count_tasks(kids[k]) < tasks;
		}
	if (hung)
		RFAIL("%d of 3 children printed no RESULT within 25 s (%d gone; %d hung before their threads "
		      "resumed: fewer tasks than the template's %d)", hung, gone, unresumed, tasks);
	/* each child is reaped by the template */
	end = now_ms() + 10000;
	for (int k = 0; k < nkids; k++)
		while (alive(kids[k]) && now_ms() < end)
			sleep_ms(20);
	for (int k = 0; k < nkids; k++)
		if (alive(kids[k]))
			add_why(rerr, rcap, "child %d still running 10 s after its RESULT", (int)kids[k]);
	if (has_result(p->buf, pid))
		add_why(rerr, rcap, "the frozen template printed its RESULT before the thaw");
	if (!alive(pid))
		RFAIL("the template died while its children ran");
	if (count_tasks(pid) != tasks)
		add_why(rerr, rcap, "the frozen template has %d tasks, had %d when frozen", count_tasks(pid), tasks);

	const char *th[] = { cli, "thaw", pidstr, NULL };
	rc = run_cmd(out, sizeof out, 10000, th);
	if (rc == 4 && strstr(out, "without a reply"))
		thaw_race[nthaw_race++ % 16] = strdup(r->label);   /* see thaw-reply */
	else if (rc != 0)
		RFAIL("nuwa thaw exited %d: %.200s", rc, out);
	end = now_ms() + 25000;
	while (p->out >= 0 && now_ms() < end)
		pump(p, 50);   /* to EOF: every process of the run has ended */
	if (!has_result(p->buf, pid))
		add_why(rerr, rcap, "the original printed no RESULT within 25 s of the thaw");
	int wst = 0;
	pid_t w = 0;
	while (now_ms() < end && (w = waitpid(pid, &wst, WNOHANG)) == 0)
		sleep_ms(20);
	if (w != pid)
		RFAIL("the original did not exit");
	pid = 0;
	if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
		add_why(rerr, rcap, "the original ended with %s %d", WIFEXITED(wst) ? "status" : "signal",
			WIFEXITED(wst) ? WEXITSTATUS(wst) : WTERMSIG(wst));
	/* nothing left in the runtime directory */
	DIR *d = opendir(rt);
	char names[300] = "";
	int left = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_name[0] != '.' && ++left < 6)
			snprintf(names + strlen(names), sizeof names - strlen(names), " %s", e->d_name);
	if (d)
		closedir(d);
	if (left)
		add_why(rerr, rcap, "%d file(s) left in the runtime directory:%s", left, names);
out:
	if (p->in >= 0)
		close(p->in);
	if (p->out >= 0) {
		pump(p, 0);   /* what is there, for the diagnosis */
		if (p->out >= 0)
			close(p->out);
	}
	kill(-(pid ? pid : P.pid), SIGKILL);   /* the whole group: children included */
	if (pid)
		waitpid(pid, NULL, 0);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	/* the verdicts */
	pid_t procs[NCHILD + 1];
	int np = 0;
	for (int k = 0; k < nkids; k++)
		procs[np++] = kids[k];
	procs[np++] = P.pid;
	for (int i = 0; i < r->ncases; i++) {
		struct rcase *c = &r->cases[i];
		long sum = 0;
		if (rerr[0])
			add_why(c->why, sizeof c->why, "%s", rerr);
		for (int k = 0; k < np && nkids == NCHILD; k++) {
			char line[512];
			const char *who = k < nkids ? "child" : "original";
			if (!c->mx) {
				if (!result_line(p->buf, procs[k], line, sizeof line))
					add_why(c->why, sizeof c->why, "no RESULT from the %s %d", who, (int)procs[k]);
				else if (!strstr(line, " ok"))
					add_why(c->why, sizeof c->why, "%s: %s", who, line + strcspn(line, " ") + 1);
				continue;
			}
			if (!case_line(p->buf, c->name, procs[k], line, sizeof line)) {
				if (!rerr[0])
					add_why(c->why, sizeof c->why, "no verdict from the %s %d", who, (int)procs[k]);
				continue;
			}
			char *t = strstr(line, " ok tally=");
			if (t)
				sum += strtol(t + 10, NULL, 10);
			else
				add_why(c->why, sizeof c->why, "%s: %s", who, strstr(line, "FAIL") ? strstr(line, "FAIL") + 5 : line);
		}
		if (c->mx && c->total > 0 && !c->why[0] && sum != c->total)
			add_why(c->why, sizeof c->why, "the processes took %ld in all, want exactly %ld", sum, c->total);
	}
	/* for the diagnosis */
	char path[700];
	snprintf(path, sizeof path, "%s/stdout", dir);
	FILE *f = fopen(path, "we");
	if (f) {
		fputs(p->buf, f);
		fclose(f);
	}
}

/* Does the failure show the evidence?  Every part of the reason must show
 * it (another failure on top of the known one is a FAIL); a one-part reason
 * may instead have the evidence in a log of the run. */
static int shows(const char *dir, const char *why, const char *evidence)
{
	const char *sep = " | then: ";
	int parts = 0, with = 0;
	for (const char *p = why; p; parts++) {
		const char *e = strstr(p, sep);
		size_t n = e ? (size_t)(e - p) : strlen(p);
		const char *hit = strstr(p, evidence);
		with += hit && (size_t)(hit - p) < n;
		p = e ? e + strlen(sep) : NULL;
	}
	if (with == parts)
		return 1;
	if (parts > 1)
		return 0;
	const char *logs[] = { "stdout", "nuwa.log", "prog.err" };
	for (int i = 0; i < 3; i++) {
		char path[700], buf[1 << 17];
		snprintf(path, sizeof path, "%s/%s", dir, logs[i]);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		if (strstr(buf, evidence))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cli = env_or_die("NUWA_CLI");
	const char *bin = env_or_die("MX_BIN");
	const char *scn = env_or_die("MX_SCN");
	read_known(env_or_die("MX_KNOWN"));
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1);   /* children of a dead template come back here */

	for (size_t i = 0; i < sizeof scn_runs / sizeof scn_runs[0]; i++) {
		char prog[512];
		snprintf(prog, sizeof prog, "%s/%s", scn, scn_runs[i].prog);
		struct run *r = new_run(scn_runs[i].label, prog);
		for (int k = 0; scn_runs[i].args[k]; k++)
			r->args[r->nargs++] = scn_runs[i].args[k];
		snprintf(r->cases[0].name, sizeof r->cases[0].name, "%s", scn_runs[i].label);
		r->ncases = 1;
	}
	for (size_t i = 0; i < sizeof mx_progs / sizeof mx_progs[0]; i++)
		plan_mx(bin, mx_progs[i]);

	int passed = 0, failed = 0, xfailed = 0, ncase = 0;
	long long t0 = now_ms();
	for (int i = 0; i < nruns; i++) {
		struct run *r = &runs[i];
		int wanted = argc < 2;
		for (int a = 1; a < argc; a++) {
			wanted |= !strcmp(argv[a], r->label);
			for (int k = 0; k < r->ncases; k++)
				wanted |= !strcmp(argv[a], r->cases[k].name);
		}
		if (!wanted)
			continue;
		char dir[600] = "", rerr[1024] = "";
		long long ts = now_ms();
		do_run(r, cli, dir, sizeof dir, rerr, sizeof rerr);
		long long ms = now_ms() - ts;
		int any_bad = 0;
		for (int k = 0; k < r->ncases; k++) {
			struct rcase *c = &r->cases[k];
			const struct known *kn = known_for(c->name);
			ncase++;
			if (!c->why[0] && (!kn || kn->race)) {
				printf("PASS %s (%s, %lld ms)\n", c->name, r->label, ms);
				passed++;
			} else if (!c->why[0]) {
				printf("XPASS %s: passes now, but known-failures lists it (%s): remove its line\n",
				       c->name, kn->why);
				failed++;
			} else if (kn && shows(dir, c->why, kn->evidence)) {
				printf("XFAIL %s: %s [known: %s]\n", c->name, c->why, kn->why);
				xfailed++;
			} else {
				printf("FAIL %s: %s\n", c->name, c->why);
				failed++;
				any_bad = 1;
			}
		}
		if (any_bad || getenv("MX_VERBOSE")) {
			char path[700];
			fprintf(stderr, "==== run %s (%s) ====\n", r->label, dir);
			snprintf(path, sizeof path, "%s/stdout", dir);
			tail_file(path, "stdout of every process");
			snprintf(path, sizeof path, "%s/prog.err", dir);
			tail_file(path, "stderr");
			snprintf(path, sizeof path, "%s/nuwa.log", dir);
			tail_file(path, "libnuwa log");
		}
		if (dir[0] && !getenv("MX_KEEP"))
			nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	/* thaw-reply: a race; when not hit it is not taken for a fix (no XPASS) */
	const struct known *kt = known_for("thaw-reply");
	ncase++;
	if (!nthaw_race) {
		printf("PASS thaw-reply (every nuwa thaw got its reply%s)\n",
		       kt ? "; a race, still listed in known-failures" : "");
		passed++;
	} else {
		char list[400] = "";
		for (int i = 0; i < nthaw_race && i < 16; i++)
			snprintf(list + strlen(list), sizeof list - strlen(list), " %s", thaw_race[i]);
		if (kt) {
			printf("XFAIL thaw-reply: nuwa thaw exited 4 (no reply) in %d run(s):%s [known: %s]\n",
			       nthaw_race, list, kt->why);
			xfailed++;
		} else {
			printf("FAIL thaw-reply: nuwa thaw exited 4 (no reply) in %d run(s):%s\n", nthaw_race, list);
			failed++;
		}
	}
	printf("%d scenarios in %d runs, %lld s; %d known failures (XFAIL)\n", ncase, nruns,
	       (now_ms() - t0) / 1000, xfailed);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
