/* What the robustness suites share: robust_scn run under `nuwa run`, the
 * nuwa verbs they use, and what they read of its processes (its state
 * files in dir, /proc, the runtime directory). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "robust_test.h"

struct ct_bg prog;
struct ct_out o;
const char *dir;
pid_t kids[64];
int nkids;
char P[32];

void teardown(void)
{
	for (int i = 0; i < nkids; i++)
		kill(kids[i], SIGKILL);
	nkids = 0;
	ct_kill(&prog);
}

void dump(void)
{
	ct_expect(&prog, "\1", 300);   /* whatever it printed so far */
	fprintf(stderr, "---- program output ----\n%s\n------------------------\n", prog.buf);
}

/* `nuwa run --mode MODE -- robust_scn DIR ARGS...` with extra environment;
 * waits for READY.  P is the pid as a string. */
const char *log_level = "info";
int ready_ms = 20000;

pid_t start_env(const char *mode, const char *const *env, const char *a1, const char *a2,
                       const char *a3)
{
	dir = ct_setup();
	const char *argv[] = { ct_path("NUWA_CLI"), "run", "--mode", mode, "--log", log_level, "--lib",
	                       ct_path("NUWA_LIB"), "--", ct_path("NUWA_ROBUST_SCN"), dir,
	                       a1, a2, a3, NULL };
	ct_start(&prog, argv, env, 1);
	snprintf(P, sizeof P, "%d", prog.pid);
	CHECK(ct_expect(&prog, "READY", ready_ms), "robust_scn not ready");
	return prog.pid;
}

pid_t start(const char *a1, const char *a2)
{
	return start_env("template", NULL, a1, a2, NULL);
}

unsigned read_seq(pid_t pid, unsigned *gaps)
{
	char path[512], buf[256];
	snprintf(path, sizeof path, "%s/%d.state", dir, pid);
	FILE *f = fopen(path, "re");
	unsigned seq = 0, g = 0;
	int p = 0;
	if (f) {
		if (!fgets(buf, sizeof buf, f) ||
		    sscanf(buf, "pid=%d seq=%u gaps=%u", &p, &seq, &g) != 3 || p != pid)
			seq = 0;
		fclose(f);
	}
	if (gaps)
		*gaps = g;
	return seq;
}

/* pid makes progress past `above` without losing pipe data. */
unsigned progress(pid_t pid, unsigned above)
{
	long long deadline = ct_now_ms() + 15000;
	unsigned s, gaps = 0;
	while ((s = read_seq(pid, &gaps)) <= above && ct_now_ms() < deadline) {
		ct_drain(&prog);
		ct_sleep_ms(10);
	}
	CHECK(s > above, "process %d made no progress past %u", pid, above);
	CHECK(gaps == 0, "process %d lost pipe data (%u gaps)", pid, gaps);
	return s;
}

void freeze(void)
{
	ct_nuwa(&o, 20000, "freeze", P, NULL);
	CHECK(o.code == 0, "freeze: exit %d: %s", o.code, o.err);
}

pid_t spawn1(void)
{
	ct_nuwa(&o, 20000, "spawn", P, NULL);
	CHECK(o.code == 0, "spawn: exit %d: %s", o.code, o.err);
	pid_t k = (pid_t)atol(o.out);
	CHECK(k > 0, "no pid: %s", o.out);
	kids[nkids++] = k;
	return k;
}

void expect_state(const char *state)
{
	char want[64];
	snprintf(want, sizeof want, "state %s", state);
	ct_nuwa(&o, 10000, "status", P, NULL);
	CHECK(o.code == 0 && strstr(o.out, want), "status: want '%s': exit %d %s %s", want, o.code,
	      o.out, o.err);
}

int file_has(const char *suffix, pid_t pid, const char *text, int timeout_ms)
{
	char path[512], buf[256];
	snprintf(path, sizeof path, "%s/%d.%s", dir, pid, suffix);
	long long deadline = ct_now_ms() + timeout_ms;
	do {
		FILE *f = fopen(path, "re");
		if (f) {
			size_t n = fread(buf, 1, sizeof buf - 1, f);
			buf[n] = 0;
			fclose(f);
			if (strstr(buf, text))
				return 1;
		}
		ct_sleep_ms(10);
	} while (ct_now_ms() < deadline);
	return 0;
}

int socket_exists(pid_t pid)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, "%s/%d.sock", ct_rundir(), pid);
	return lstat(path, &st) == 0;
}
