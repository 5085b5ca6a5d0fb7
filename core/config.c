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
#include <sys/stat.h>
#include <unistd.h>

#include "nuwa_int.h"
#include "fdremap.h"
#include "ctl_proto.h"   /* CTL_MAX_POOL */

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

/* Signals a program's normal life sends itself (child exits, timers,
 * alarms, the terminal's job control and resizes, out-of-band data, async
 * I/O, resource limits): as a trigger they would freeze it on their first
 * ordinary occurrence.  The reason, or NULL. */
static const char *signal_self_sent(int sig)
{
	switch (sig) {
	case SIGCHLD: return "the kernel sends it whenever a child exits or stops";
	case SIGALRM: case SIGVTALRM: case SIGPROF:
		return "the program's own timers and alarm() send it";
	case SIGPIPE: return "every write to a closed pipe sends it";
	case SIGCONT: case SIGTSTP: case SIGTTIN: case SIGTTOU: case SIGWINCH:
		return "the terminal's job control and resizes send it";
	case SIGURG: case SIGIO: return "socket and asynchronous I/O events send it";
	case SIGXCPU: case SIGXFSZ: case SIGSYS:
		return "the kernel sends it on resource limits or bad system calls";
	}
	return NULL;
}

/* Digits only: strtol() also takes leading blanks and a sign. */
static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int nuwa_parse_signal(const char *s)
{
	char *end;
	if (!s || !*s)
		return -1;
	if (*s >= '0' && *s <= '9') {
		if (!all_digits(s) || strlen(s) > 3)
			return -1;
		long v = strtol(s, &end, 10);
		return signal_usable((int)v) ? (int)v : -1;
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
		/* RTMIN+N / RTMAX-N, N within the real-time range (no wrap) */
		if ((*s != '+' && *s != '-') || !all_digits(s + 1) || strlen(s + 1) > 2)
			return -1;
		off = strtol(s, &end, 10);
	}
	int sig = base + (int)off;
	return signal_usable(sig) ? sig : -1;
}

static int parse_int(const char *name, const char *v, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (!*v || *end || errno || x < lo || x > hi || !all_digits(v)) {
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

/* A log must never block the program: O_NONBLOCK makes open() of a FIFO
 * with no reader fail (ENXIO) instead of waiting for one, and a FIFO or a
 * socket is refused (a write blocks once the reader stops reading). */
static int open_log_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
		sys_close(fd);
		nuwa_err("invalid NUWA_LOG_FILE=\"%s\": a FIFO or socket could block the "
		         "program; use a regular file; libnuwa is disabled", path);
		return -1;
	}
	if (fd < 0) {
		if (errno == ENXIO) {
			nuwa_err("invalid NUWA_LOG_FILE=\"%s\": a FIFO could block the program; "
			         "use a regular file; libnuwa is disabled", path);
			return -1;
		}
		nuwa_err("cannot open NUWA_LOG_FILE=\"%s\": %s; logging to stderr", path,
		         nuwa_strerror(errno));
		return 0;
	}
	fcntl(fd, F_SETFL, O_APPEND);   /* a file or a tty: blocking as usual */
	/* high number: out of the way of programs that expect low descriptors */
	/* high number, and libnuwa's: closefrom() and nuwa status skip it */
	nuwa_log_fd = nuwa_own_fd(nuwa_fd_high(fd));
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
		bad |= open_log_file(v) < 0;
	if ((v = getenv("NUWA_RUNTIME_DIR")) && *v && *v != '/') {
		nuwa_err("invalid NUWA_RUNTIME_DIR=\"%s\": expected an absolute path; "
		         "libnuwa is disabled", v);
		bad = 1;
	}
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
	if ((v = getenv("NUWA_POOL")) && *v)
		bad |= parse_int("NUWA_POOL", v, 0, CTL_MAX_POOL, &nuwa_cfg.pool);
	if ((v = getenv("NUWA_SIGNAL")) && *v) {
		int sig = nuwa_parse_signal(v);
		const char *why = sig > 0 ? signal_self_sent(sig) : NULL;
		if (why) {
			nuwa_err("invalid NUWA_SIGNAL=\"%s\": %s, so it would freeze the program "
			         "in its ordinary life (use USR2, USR1 or RTMIN+N); libnuwa is "
			         "disabled", v, why);
			bad = 1;
		} else if (sig < 0) {
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
	/* test-only (docs/design.md, "Fault injection"): make named steps fail */
	if ((v = getenv("NUWA_TEST_FAULT")) && *v) {
		char err[512];
		if (nuwa_fault_parse(v, err, sizeof err) < 0) {
			nuwa_err("invalid %s; libnuwa is disabled", err);
			bad = 1;
		}
	}
	/* test-only: a children list this long, to reach its end (children.c) */
	if ((v = getenv("NUWA_TEST_MAX_CHILDREN")) && *v) {
		int n;
		if (parse_int("NUWA_TEST_MAX_CHILDREN", v, 1, NUWA_MAX_CHILDREN, &n) < 0)
			bad = 1;
		else
			nuwa_children_set_max(n);
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
	/* glibc's own table (2.32+): a constant string, no lock */
	const char *abbrev = sig > 0 && sig < SIGRTMIN ? sigabbrev_np(sig) : NULL;
	if (abbrev)
		snprintf(buf, len, "SIG%s", abbrev);
	else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, len, "signal %d", sig);
	return buf;
}
