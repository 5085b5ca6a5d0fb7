/* Configuration from the environment, read once at start-up.
 * A bad value is a one-line error on stderr, after which libnuwa stays inert
 * (every wrapper passes straight through): a typo in NUWA_SIGNAL must never
 * take the program down. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "nuwa_int.h"
#include "fdremap.h"

struct nuwa_config nuwa_cfg = {
	.mode = NUWA_MODE_TEMPLATE,   /* Nuwa's model: freeze and serve spawns */
	.clones = 1,
	.timeout_ms = 2000,
	.policy = NUWA_POLICY_ANY,
	.signal = SIGUSR2,
};

static const struct { const char *name; int sig; } sig_names[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
	{ "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM },
	{ "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO }, { "PWR", SIGPWR },
	{ "SYS", SIGSYS },
};

/* Signals that cannot be a trigger: uncatchable, synchronous faults, and the
 * ones glibc or libnuwa keep for themselves. */
static int signal_usable(int sig)
{
	switch (sig) {
	case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGILL:
	case SIGFPE: case SIGTRAP: case SIGABRT:
		return 0;
	}
	return sig >= 1 && sig <= SIGRTMAX && (sig < 32 || sig >= SIGRTMIN) &&
	       sig != nuwa_park_sig;
}

int nuwa_parse_signal(const char *s)
{
	char *end;
	if (!s || !*s)
		return -1;
	if (*s >= '0' && *s <= '9') {
		long v = strtol(s, &end, 10);
		if (*end || !signal_usable((int)v) || v > INT_MAX)
			return -1;
		return (int)v;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof sig_names / sizeof sig_names[0]; i++)
		if (!strcasecmp(s, sig_names[i].name))
			return sig_names[i].sig;
	int base;
	if (!strncasecmp(s, "RTMIN", 5))
		base = SIGRTMIN, s += 5;
	else if (!strncasecmp(s, "RTMAX", 5))
		base = SIGRTMAX, s += 5;
	else
		return -1;
	long off = 0;
	if (*s) {
		off = strtol(s, &end, 10);
		if (*end || (*s != '+' && *s != '-'))
			return -1;
	}
	int sig = base + (int)off;
	return signal_usable(sig) ? sig : -1;
}

static int parse_int(const char *name, const char *v, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (!*v || *end || errno || x < lo || x > hi) {
		nuwa_err("invalid %s=\"%s\": expected an integer from %ld to %ld; libnuwa is disabled",
		         name, v, lo, hi);
		return -1;
	}
	*out = (int)x;
	return 0;
}

static int parse_choice(const char *name, const char *v, const char *const *choices, int *out)
{
	char list[128] = "";
	for (int i = 0; choices[i]; i++) {
		if (!strcmp(v, choices[i])) {
			*out = i;
			return 0;
		}
		strcat(list, i ? "|" : "");
		strcat(list, choices[i]);
	}
	nuwa_err("invalid %s=\"%s\": expected %s; libnuwa is disabled", name, v, list);
	return -1;
}

static int open_log_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		nuwa_err("cannot open NUWA_LOG_FILE=\"%s\": %s; logging to stderr", path,
		         strerror(errno));
		return -1;
	}
	/* high number: out of the way of programs that expect low descriptors */
	nuwa_log_fd = nuwa_fd_high(fd);
	return 0;
}

int nuwa_config_load(void)
{
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	static const char *const modes[] = { "clone", "template", "snapshot", NULL };
	/* NUWA_MODE order must follow enum nuwa_mode */
	static const char *const policies[] = { "any", "idle", NULL };
	const char *v;
	int bad = 0;

	/* The log settings first, so that the other errors go where asked. */
	if ((v = getenv("NUWA_LOG")) && *v)
		bad |= parse_choice("NUWA_LOG", v, levels, &nuwa_log_level);
	if ((v = getenv("NUWA_LOG_FILE")) && *v)
		open_log_file(v);
	if ((v = getenv("NUWA_MODE")) && *v)
		bad |= parse_choice("NUWA_MODE", v, modes, &nuwa_cfg.mode);
	if ((v = getenv("NUWA_FREEZE_POLICY")) && *v)
		bad |= parse_choice("NUWA_FREEZE_POLICY", v, policies, &nuwa_cfg.policy);
	if ((v = getenv("NUWA_CLONES")) && *v)
		bad |= parse_int("NUWA_CLONES", v, 1, 1024, &nuwa_cfg.clones);
	if ((v = getenv("NUWA_FREEZE_TIMEOUT_MS")) && *v)
		bad |= parse_int("NUWA_FREEZE_TIMEOUT_MS", v, 1, 3600000, &nuwa_cfg.timeout_ms);
	if ((v = getenv("NUWA_FREEZE_ON_IDLE_MS")) && *v)
		bad |= parse_int("NUWA_FREEZE_ON_IDLE_MS", v, 1, 86400000, &nuwa_cfg.freeze_on_idle_ms);
	if ((v = getenv("NUWA_SIGNAL")) && *v) {
		int sig = nuwa_parse_signal(v);
		if (sig < 0) {
			nuwa_err("invalid NUWA_SIGNAL=\"%s\": expected a catchable signal name "
			         "(USR2, SIGUSR1, RTMIN+3) or number; libnuwa is disabled", v);
			bad = 1;
		} else {
			nuwa_cfg.signal = sig;
		}
	}
	if ((v = getenv("NUWA_FDS")) && *v) {
		char err[256];
		if (fdremap_parse_spec(v, err, sizeof err) < 0) {
			nuwa_err("invalid NUWA_FDS=\"%s\": %s; libnuwa is disabled", v, err);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/* "SIGUSR2", "SIGRTMIN+3", or "signal 70": for messages. */
const char *nuwa_signal_name(int sig, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof sig_names / sizeof sig_names[0]; i++)
		if (sig_names[i].sig == sig) {
			snprintf(buf, len, "SIG%s", sig_names[i].name);
			return buf;
		}
	if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, len, "signal %d", sig);
	return buf;
}
