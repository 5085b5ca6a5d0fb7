/* nuwa run: exec a program with libnuwa preloaded and configured.
 *
 * The program keeps nuwa's pid (exec, not fork), so `nuwa run ... &` gives
 * the shell the pid that `nuwa freeze` and `nuwa spawn` then take.  A
 * watcher removes the program's control socket once it has ended, however
 * it ended (cli/sockwatch.c). */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

#ifndef NUWA_LIBDIR
#define NUWA_LIBDIR "/usr/local/lib"
#endif
#ifndef NUWA_LIBDIR_REL
#define NUWA_LIBDIR_REL "lib"
#endif
#ifndef NUWA_BINDIR_REL
#define NUWA_BINDIR_REL "bin"
#endif

static int readable(const char *p)
{
	return access(p, R_OK) == 0;
}

/* Where libnuwa.so is, as an absolute path (ld.so resolves a relative
 * LD_PRELOAD entry against the program's current directory, which the
 * program may change). */
static int find_library(const char *explicit, char *out, size_t len)
{
	char exe[PATH_MAX], dir[PATH_MAX], cand[PATH_MAX * 2], real[PATH_MAX];
	if (explicit) {
		if (!realpath(explicit, real) || !readable(real)) {
			cli_err("--lib %s: %s", explicit, strerror(errno ? errno : EACCES));
			return -1;
		}
		snprintf(out, len, "%s", real);
		return 0;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof tmp, "%s", exe);   /* dirname() writes into its argument */
		snprintf(dir, sizeof dir, "%s", dirname(tmp));
		/* 1. Next to the executable: the build tree (build/nuwa beside
		 *    build/libnuwa.so), or an unpacked tarball. */
		snprintf(cand, sizeof cand, "%s/libnuwa.so", dir);
		if (readable(cand) && realpath(cand, real)) {
			snprintf(out, len, "%s", real);
			return 0;
		}
		/* 2. An installed tree that was moved: PREFIX/bin/nuwa, PREFIX/LIBDIR. */
		int up = 1;
		for (const char *p = NUWA_BINDIR_REL; *p; p++)
			up += *p == '/';
		snprintf(cand, sizeof cand, "%s", dir);
		for (int i = 0; i < up; i++)
			snprintf(cand + strlen(cand), sizeof cand - strlen(cand), "/..");
		snprintf(cand + strlen(cand), sizeof cand - strlen(cand),
		         "/%s/libnuwa.so.0", NUWA_LIBDIR_REL);
		if (readable(cand) && realpath(cand, real)) {
			snprintf(out, len, "%s", real);
			return 0;
		}
	}
	/* 3. Where `meson install` put it. */
	snprintf(cand, sizeof cand, "%s/libnuwa.so.0", NUWA_LIBDIR);
	if (readable(cand)) {
		snprintf(out, len, "%s", cand);
		return 0;
	}
	cli_err("cannot find libnuwa.so (looked next to %s and in %s); use --lib PATH",
	        n > 0 ? exe : "nuwa", NUWA_LIBDIR);
	return -1;
}

/* Same names libnuwa accepts (core/config.c); libnuwa checks again and
 * disables itself with a message if it disagrees. */
static int signal_ok(const char *s)
{
	long v;
	if (cli_parse_int(s, 1, SIGRTMAX, &v) == 0)
		return v != SIGKILL && v != SIGSTOP;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	if (!strncasecmp(s, "RTMIN", 5) || !strncasecmp(s, "RTMAX", 5)) {
		if (!s[5])
			return 1;
		return (s[5] == '+' || s[5] == '-') && cli_parse_int(s + 6, 0, 32, &v) == 0;
	}
	for (int sig = 1; sig < 32; sig++) {
		const char *name = sigabbrev_np(sig);
		if (name && !strcasecmp(s, name))
			return sig != SIGKILL && sig != SIGSTOP;
	}
	return 0;
}

static int one_of(const char *v, const char *const *choices)
{
	for (int i = 0; choices[i]; i++)
		if (!strcmp(v, choices[i]))
			return 1;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' },
		{ "mode", required_argument, 0, 'm' },
		{ "signal", required_argument, 0, 's' },
		{ "log", required_argument, 0, 'l' },
		{ "log-file", required_argument, 0, 'L' },
		{ "freeze-on-idle", required_argument, 0, 'i' },
		{ "timeout", required_argument, 0, 't' },
		{ "policy", required_argument, 0, 'p' },
		{ "clones", required_argument, 0, 'n' },
		{ "pool", required_argument, 0, 'P' },
		{ "lib", required_argument, 0, 'x' },
		{ 0, 0, 0, 0 } };
	static const char *const modes[] = { "template", "snapshot", "clone", NULL };
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	static const char *const policies[] = { "any", "idle", NULL };
	const char *lib = NULL;
	long v;
	int c;
	opterr = 0;
	optind = 1;
	/* "+": stop at PROG, so that PROG's own options are left alone. */
	while ((c = getopt_long(argc, argv, "+:hm:s:l:n:", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_print_help("run");
			return EX_OK;
		case 'm':
			if (!one_of(optarg, modes))
				return cli_usage_err("--mode must be template, snapshot or clone, "
				                     "not '%s'", optarg);
			setenv("NUWA_MODE", optarg, 1);
			break;
		case 's':
			if (!signal_ok(optarg))
				return cli_usage_err("--signal: '%s' is not a catchable signal name "
				                     "or number (e.g. USR2, SIGUSR1, RTMIN+3, 12)",
				                     optarg);
			setenv("NUWA_SIGNAL", optarg, 1);
			break;
		case 'l':
			if (!one_of(optarg, levels))
				return cli_usage_err("--log must be error, warn, info or debug, "
				                     "not '%s'", optarg);
			setenv("NUWA_LOG", optarg, 1);
			break;
		case 'L':
			setenv("NUWA_LOG_FILE", optarg, 1);
			break;
		case 'i':
			if (cli_parse_int(optarg, 1, 86400000, &v) < 0)
				return cli_usage_err("--freeze-on-idle needs milliseconds from 1 to "
				                     "86400000, not '%s'", optarg);
			setenv("NUWA_FREEZE_ON_IDLE_MS", optarg, 1);
			break;
		case 't':
			if (cli_parse_int(optarg, 1, 3600000, &v) < 0)
				return cli_usage_err("--timeout needs milliseconds from 1 to 3600000, "
				                     "not '%s'", optarg);
			setenv("NUWA_FREEZE_TIMEOUT_MS", optarg, 1);
			break;
		case 'p':
			if (!one_of(optarg, policies))
				return cli_usage_err("--policy must be any or idle, not '%s'", optarg);
			setenv("NUWA_FREEZE_POLICY", optarg, 1);
			break;
		case 'n':
			if (cli_parse_int(optarg, 1, 1024, &v) < 0)
				return cli_usage_err("--clones needs a number from 1 to 1024, not '%s'",
				                     optarg);
			setenv("NUWA_CLONES", optarg, 1);
			break;
		case 'P':
			if (cli_parse_int(optarg, 0, CTL_MAX_POOL, &v) < 0)
				return cli_usage_err("--pool needs a number of children from 0 to %d, "
				                     "not '%s'", CTL_MAX_POOL, optarg);
			setenv("NUWA_POOL", optarg, 1);
			break;
		case 'x':
			lib = optarg;
			break;
		default:
			if (c == ':')
				return cli_usage_err("option '%s' needs a value", argv[optind - 1]);
			return cli_usage_err("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_err("missing PROG (nuwa run [OPTIONS] -- PROG [ARGS...])");

	/* The mode this command is about, unless the caller chose one. */
	setenv("NUWA_MODE", "template", 0);
	char path[PATH_MAX];
	if (find_library(lib, path, sizeof path) < 0)
		return EX_NUWA;
	/* ld.so takes LD_PRELOAD entries separated by spaces or colons; ours
	 * goes first so that its wrappers are found before any other, after
	 * only $NUWA_PRELOAD_FIRST: the runtime of a sanitized libnuwa, which
	 * must be the first object of the initial library list (ASan checks
	 * at start-up, and intercepts malloc before anything else runs). */
	const char *old = getenv("LD_PRELOAD");
	const char *first = getenv("NUWA_PRELOAD_FIRST");
	if (!old || !strstr(old, path)) {
		if (!old)
			old = "";
		if (!first)
			first = "";
		size_t n = strlen(first) + strlen(path) + strlen(old) + 3;
		char *all = malloc(n);
		if (!all) {
			cli_err("out of memory");
			return EX_NUWA;
		}
		snprintf(all, n, "%s%s%s%s%s", first, *first ? " " : "", path, *old ? " " : "", old);
		setenv("LD_PRELOAD", all, 1);
		free(all);
	}
	cli_watch_own_socket();
	execvp(argv[optind], argv + optind);
	int e = errno;
	cli_err("%s: %s", argv[optind], e == ENOENT ? "command not found" : strerror(e));
	return e == ENOENT ? EX_NOTFOUND : EX_NOEXEC;
}
