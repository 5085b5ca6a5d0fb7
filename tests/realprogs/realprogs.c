/* realprogs — unmodified Debian programs through nuwa run / freeze / spawn.
 *
 *   realprogs [--known FILE] [CASE...]
 *
 * Each case runs in its own process group with a private directory (and so a
 * private NUWA_RUNTIME_DIR), bounded in time; whatever it leaves running is
 * killed and the directory removed.  One line per case:
 *   PASS name: what was shown        FAIL name: reason
 *   XFAIL name: reason (a known libnuwa defect listed in FILE)
 *   XPASS name: ... (listed as failing but passes: the list is out of date,
 *                    counted as a failure)
 * then `N passed, N failed`.  On FAIL and XFAIL the program's and libnuwa's
 * logs follow on stderr. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"
#include "rp.h"

static const struct rp_case *const cases[] = {
	&case_memcached, &case_python, &case_ruby, &case_haproxy, &case_unbound, &case_unbound_user,
	&case_nginx,
	&case_redis, &case_node, &case_caddy, &case_perl, &case_java,
};
#define NCASES (sizeof cases / sizeof cases[0])

#define CASE_TIMEOUT_S 90

struct known { char name[64], evidence[256], why[512]; };
static struct known known[32];
static int nknown;

static void read_known(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "realprogs: cannot read %s: %s\n", path, strerror(errno));
		exit(2);
	}
	char line[1024];
	while (fgets(line, sizeof line, f) && nknown < 32) {
		struct known *k = &known[nknown];
		int used = 0;
		if (line[0] == '#' || sscanf(line, "%63s %n", k->name, &used) < 1)
			continue;
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
		if (strcmp(known[i].name, name) == 0)
			return &known[i];
	return NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Does the failure (reason or a log) show the known defect's evidence? */
static int shows(struct rp *r, const char *evidence)
{
	if (strstr(r->why, evidence))
		return 1;
	const char *logs[] = { "prog.log", "nuwa.log", "error.log" };
	for (size_t i = 0; i < 3; i++) {
		char path[300], buf[1 << 16];
		FILE *f = fopen(rp_path(r, logs[i], path, sizeof path), "re");
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

/* Processes of this case's group still running after rp_stop(): named in
 * the failure, then killed. */
static int left_behind(struct rp *r)
{
	char names[512] = "";
	int n = 0;
	DIR *d = opendir("/proc");
	for (struct dirent *e; d && (e = readdir(d));) {
		pid_t pid = atoi(e->d_name);
		char path[64], buf[512], comm[64], state;
		int pgrp;
		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		int ok = fgets(buf, sizeof buf, f) != NULL;
		fclose(f);
		char *p = ok ? strrchr(buf, ')') : NULL;
		if (!p || sscanf(p + 2, "%c %*d %d", &state, &pgrp) != 2 || pgrp != getpgrp() || state == 'Z')
			continue;
		snprintf(comm, sizeof comm, "%.*s", (int)(p - strchr(buf, '(') - 1), strchr(buf, '(') + 1);
		snprintf(names + strlen(names), sizeof names - strlen(names), " %d (%s)", pid, comm);
		kill(pid, SIGKILL);
		n++;
	}
	if (d)
		closedir(d);
	if (n)
		rp_fail(r, "left running after nuwa stop and the children's SIGTERM/SIGKILL:%s", names);
	return n;
}

/* Run one case in a child process (its own group, a subreaper for whatever
 * the template's children leave); the result comes back in shared memory. */
static void run_case(const struct rp_case *c, struct rp *r)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(r->dir, sizeof r->dir, "%s/nuwa-rp-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", c->name);
	r->name = c->name;
	if (!mkdtemp(r->dir)) {
		rp_fail(r, "mkdtemp %s: %s", r->dir, strerror(errno));
		return;
	}
	long long t0 = rp_now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		alarm(CASE_TIMEOUT_S);
		int rc = c->run(r);
		if (rc < 0 && !r->why[0])
			rp_fail(r, "failed");
		if (rc == 0 && r->why[0])
			rc = -1;
		rp_stop(r);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (left_behind(r) && rc == 0)
			rc = -1;
		_exit(rc == 0 ? 0 : 1);
	}
	setpgid(pid, pid);
	int st = 0;
	waitpid(pid, &st, 0);
	kill(-pid, SIGKILL);   /* whatever is left in the case's process group */
	if (WIFSIGNALED(st))
		rp_fail(r, "case ended by signal %d (%s)%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
		        WTERMSIG(st) == SIGALRM ? ": over the time bound" : "");
	else if (WEXITSTATUS(st) != 0 && !r->why[0])
		rp_fail(r, "case exited %d", WEXITSTATUS(st));
	r->ms = rp_now_ms() - t0;
}

int main(int argc, char **argv)
{
	const char *known_path = getenv("RP_KNOWN_FAILURES");
	int first = 1;
	if (argc > 2 && strcmp(argv[1], "--known") == 0) {
		known_path = argv[2];
		first = 3;
	}
	if (known_path)
		read_known(known_path);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct rp *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int passed = 0, failed = 0, xfailed = 0;
	char xfails[512] = "";
	for (size_t i = 0; i < NCASES; i++) {
		const struct rp_case *c = cases[i];
		int wanted = first >= argc;
		for (int a = first; a < argc; a++)
			wanted |= strcmp(argv[a], c->name) == 0;
		if (!wanted)
			continue;
		memset(r, 0, sizeof *r);
		run_case(c, r);
		const struct known *k = known_for(c->name);
		int ok = !r->why[0];
		if (ok && !k) {
			printf("PASS %s: %s (%.1f s)\n", c->name, c->shows, r->ms / 1000.0);
			passed++;
		} else if (ok) {
			printf("XPASS %s: passes now, but tests/realprogs/known-failures lists it (%s): "
			       "remove that line\n", c->name, k->why);
			failed++;
		} else if (k && shows(r, k->evidence)) {
			printf("XFAIL %s: %s [known: %s]\n", c->name, r->why, k->why);
			rp_dump(r);
			xfailed++;
			snprintf(xfails + strlen(xfails), sizeof xfails - strlen(xfails), " %s", c->name);
		} else {
			printf("FAIL %s: %s%s\n", c->name, r->why,
			       k ? " (listed as a known failure, but without its evidence: a new failure)" : "");
			rp_dump(r);
			failed++;
		}
		fflush(stderr);
		if (getenv("RP_KEEP"))   /* for a look at the logs by hand */
			fprintf(stderr, "realprogs: %s kept\n", r->dir);
		else
			nftw(r->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (xfailed)
		printf("known failures (XFAIL, libnuwa defects in tests/realprogs/known-failures):%s\n", xfails);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
