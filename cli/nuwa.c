/* nuwa — run programs under libnuwa, freeze them into templates and spawn
 * running copies.  `nuwa --help` gives the overview, `nuwa VERB --help`
 * the manual page of a verb; docs/cli.md has the same text. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_verb = "";

void cli_err(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "nuwa%s%s: ", cli_verb[0] ? " " : "", cli_verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_err(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "nuwa%s%s: ", cli_verb[0] ? " " : "", cli_verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'nuwa %s%s--help' for more information.\n", cli_verb,
	        cli_verb[0] ? " " : "");
	return EX_USAGE;
}

int cli_parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} verbs[] = {
	{ "run", cmd_run },
	{ "freeze", cmd_freeze },
	{ "spawn", cmd_spawn },
	{ "status", cmd_status },
	{ "thaw", cmd_thaw },
	{ "stop", cmd_stop },
	{ "pool", cmd_pool },
	{ "list", cmd_list },
};

int main(int argc, char **argv)
{
	/* A client whose reader went away gets EPIPE, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		cli_print_help(NULL);
		return EX_USAGE;
	}
	const char *v = argv[1];
	if (!strcmp(v, "--help") || !strcmp(v, "-h")) {
		cli_print_help(NULL);
		return EX_OK;
	}
	if (!strcmp(v, "--version") || !strcmp(v, "-V")) {
		printf("nuwa %s (control protocol %d)\n", NUWA_VERSION, CTL_VERSION);
		return EX_OK;
	}
	if (!strcmp(v, "help")) {
		if (argc > 2 && !cli_has_help(argv[2]))
			return cli_usage_err("no such command '%s'", argv[2]);
		cli_print_help(argc > 2 ? argv[2] : NULL);
		return EX_OK;
	}
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
		if (strcmp(v, verbs[i].name))
			continue;
		cli_verb = verbs[i].name;
		return verbs[i].fn(argc - 1, argv + 1);
	}
	if (v[0] == '-')
		return cli_usage_err("unknown option '%s'", v);
	return cli_usage_err("unknown command '%s' (commands: run, freeze, spawn, status, "
	                     "thaw, stop, pool, list)", v);
}
