/* nuwa freeze | status | thaw | stop | pool | list: one request, one reply. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "status_mem.h"
#include "ctl_rundir.h"

#define REPLY_MS 30000

/* getopt_long with our own messages ("nuwa VERB: ..."). */
static int bad_option(char **argv, int c)
{
	if (c == ':')
		return cli_usage_err("option '%s' needs a value", argv[optind - 1]);
	if (optopt)
		return cli_usage_err("unknown option '-%c'", optopt);
	return cli_usage_err("unknown option '%s'", argv[optind - 1]);
}

/* Options are parsed; exactly one TARGET must remain. */
static int want_target(int argc, char **argv, const char **target)
{
	if (optind >= argc)
		return cli_usage_err("missing PID");
	if (optind + 1 < argc)
		return cli_usage_err("unexpected argument '%s'", argv[optind + 1]);
	*target = argv[optind];
	return EX_OK;
}

static int is_error(struct client *cl, const struct ctl_msg *m)
{
	if (m->type == CTL_REP_ERROR) {
		client_print_error(cl, m);
		return 1;
	}
	if (m->type != CTL_REP_OK) {
		cli_err("%ld: unexpected %s reply", (long)cl->pid, ctl_type_name(m->type));
		return 1;
	}
	return 0;
}

static void print_text(const struct ctl_msg *m)
{
	const char *text;
	if (ctl_get_str(m, CTL_F_TEXT, &text) == 0 && *text) {
		fputs(text, stdout);
		if (text[strlen(text) - 1] != '\n')
			putchar('\n');
	}
}

/* Verbs of the form `nuwa VERB [--json] [--timeout MS] PID`. */
struct simple {
	unsigned type;
	int json, timeout_ms;
	int pool;                 /* freeze --pool N; -1: not given */
};

static int simple_parse(int argc, char **argv, int allow_json, int allow_timeout,
                        struct simple *s, const char **target)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' },
		{ "json", no_argument, 0, 'j' },
		{ "timeout", required_argument, 0, 't' },
		{ "pool", required_argument, 0, 'p' },
		{ 0, 0, 0, 0 } };
	int c;
	long v;
	opterr = 0;
	optind = 1;
	s->pool = -1;
	while ((c = getopt_long(argc, argv, ":ht:p:", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_print_help(cli_verb);
			return -1;
		case 'j':
			if (!allow_json)
				return cli_usage_err("unknown option '--json'");
			s->json = 1;
			break;
		case 't':
			if (!allow_timeout)
				return cli_usage_err("unknown option '--timeout' (only 'nuwa freeze' "
				                     "takes it)");
			if (cli_parse_int(optarg, 1, 3600000, &v) < 0)
				return cli_usage_err("--timeout needs milliseconds from 1 to "
				                     "3600000, not '%s'", optarg);
			s->timeout_ms = (int)v;
			break;
		case 'p':
			if (!allow_timeout)
				return cli_usage_err("unknown option '--pool' (only 'nuwa freeze' "
				                     "takes it)");
			if (cli_parse_int(optarg, 0, CTL_MAX_POOL, &v) < 0)
				return cli_usage_err("--pool needs a number of children from 0 to %d, "
				                     "not '%s'", CTL_MAX_POOL, optarg);
			s->pool = (int)v;
			break;
		default:
			return bad_option(argv, c);
		}
	}
	return want_target(argc, argv, target);
}

/* Parse "VERB [options] PID|SOCKET" and connect.  Returns EX_OK with cl
 * open, -1 when --help was printed (exit 0), or an exit code. */
static int open_target(int argc, char **argv, int json_ok, int timeout_ok, struct simple *s,
                       struct client *cl)
{
	const char *target = NULL;
	int r = simple_parse(argc, argv, json_ok, timeout_ok, s, &target);
	if (r)
		return r;
	return client_open(cl, target);
}

/* Send the request in b and read its reply; an error reply is EX_FAIL
 * (is_error() printed it). */
static int call_checked(struct client *cl, struct ctl_buf *b, struct ctl_msg *m, int ms)
{
	int r = client_call(cl, b, m, ms);
	if (r == EX_OK && is_error(cl, m))
		r = client_refused(m) ? EX_NOPROC : EX_FAIL;
	return r;
}

int cmd_freeze(int argc, char **argv)
{
	struct simple s = { 0 };
	struct client cl;
	int r = open_target(argc, argv, 0, 1, &s, &cl);
	if (r != EX_OK)
		return r < 0 ? EX_OK : r;
	char mem[256];
	struct ctl_buf b;
	struct ctl_msg m;
	ctl_begin(&b, mem, sizeof mem, CTL_REQ_FREEZE);
	if (s.timeout_ms)
		ctl_put_i32(&b, CTL_F_TIMEOUT_MS, s.timeout_ms);
	if (s.pool >= 0)
		ctl_put_u32(&b, CTL_F_POOL, (uint32_t)s.pool);
	/* The process bounds the freeze by its timeout (its own default when
	 * none is given, at most an hour). */
	r = call_checked(&cl, &b, &m, (s.timeout_ms ? s.timeout_ms : 3600000) + REPLY_MS);
	if (r == EX_OK) {
		int32_t pid = (int32_t)cl.pid, tp = 0;
		ctl_get_i32(&m, CTL_F_PID, &pid);
		ctl_get_i32(&m, CTL_F_TEMPLATE_PID, &tp);
		uint32_t clones = 0;
		if (ctl_get_u32(&m, CTL_F_COUNT, &clones) == 0)
			printf("%d: cloned %u time%s, every process runs\n", pid, clones,
			       clones == 1 ? "" : "s");
		else if (tp > 0 && tp != pid)
			printf("%d: snapshot taken, the process keeps running; template is pid %d "
			       "(nuwa spawn %d)\n", pid, tp, tp);
		else
			printf("%d: frozen, template ready (nuwa spawn %d)\n", pid, pid);
		print_text(&m);
	}
	client_close(&cl);
	return r;
}

int cmd_status(int argc, char **argv)
{
	struct simple s = { 0 };
	struct client cl;
	int r = open_target(argc, argv, 1, 0, &s, &cl);
	if (r != EX_OK)
		return r < 0 ? EX_OK : r;
	char mem[64];
	struct ctl_buf b;
	struct ctl_msg m;
	ctl_begin(&b, mem, sizeof mem, CTL_REQ_STATUS);
	ctl_put_u32(&b, CTL_F_JSON, (uint32_t)s.json);
	r = call_checked(&cl, &b, &m, REPLY_MS);
	const char *text;
	if (r == EX_OK && ctl_get_str(&m, CTL_F_TEXT, &text) == 0)
		status_mem_print(text, cl.pid, s.json);
	client_close(&cl);
	return r;
}

static int thaw_or_stop(int argc, char **argv, unsigned type)
{
	struct simple s = { 0 };
	struct client cl;
	int r = open_target(argc, argv, 0, 0, &s, &cl);
	if (r != EX_OK)
		return r < 0 ? EX_OK : r;
	char mem[64];
	struct ctl_buf b;
	struct ctl_msg m;
	ctl_begin(&b, mem, sizeof mem, (uint16_t)type);
	r = call_checked(&cl, &b, &m, REPLY_MS);
	if (r == EX_OK && type == CTL_REQ_THAW) {
		printf("%ld: thawed, running again\n", (long)cl.pid);
	} else if (r == EX_OK) {
		uint32_t n = 0;
		ctl_get_u32(&m, CTL_F_CHILDREN, &n);
		printf("%ld: template stopped; %u spawned child%s keep%s running\n",
		       (long)cl.pid, n, n == 1 ? "" : "ren", n == 1 ? "s" : "");
	}
	client_close(&cl);
	return r;
}

int cmd_thaw(int argc, char **argv)
{
	return thaw_or_stop(argc, argv, CTL_REQ_THAW);
}

int cmd_stop(int argc, char **argv)
{
	return thaw_or_stop(argc, argv, CTL_REQ_STOP);
}

/* nuwa pool PID N: the pool of a live template. */
int cmd_pool(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	int c;
	long n;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (c == 'h') {
			cli_print_help("pool");
			return EX_OK;
		}
		return bad_option(argv, c);
	}
	if (optind + 2 > argc)
		return cli_usage_err(optind == argc ? "missing PID" : "missing the number of children");
	if (optind + 2 < argc)
		return cli_usage_err("unexpected argument '%s'", argv[optind + 2]);
	if (cli_parse_int(argv[optind + 1], 0, CTL_MAX_POOL, &n) < 0)
		return cli_usage_err("the pool holds 0 to %d children, not '%s'", CTL_MAX_POOL,
		                     argv[optind + 1]);
	struct client cl;
	int r = client_open(&cl, argv[optind]);
	if (r != EX_OK)
		return r;
	char mem[64];
	struct ctl_buf b;
	struct ctl_msg m;
	ctl_begin(&b, mem, sizeof mem, CTL_REQ_POOL);
	ctl_put_u32(&b, CTL_F_COUNT, (uint32_t)n);
	r = call_checked(&cl, &b, &m, REPLY_MS);
	if (r == EX_OK) {
		if (n)
			printf("%ld: keeping %ld child%s ready\n", (long)cl.pid, n, n == 1 ? "" : "ren");
		else
			printf("%ld: no pool\n", (long)cl.pid);
	}
	client_close(&cl);
	return r;
}

/* ---- list ------------------------------------------------------------------ */

static void read_cmdline(pid_t pid, char *out, size_t len)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%ld/cmdline", (long)pid);
	FILE *f = fopen(p, "re");
	size_t n = f ? fread(out, 1, len - 1, f) : 0;
	if (f)
		fclose(f);
	while (n && out[n - 1] == 0)
		n--;
	for (size_t i = 0; i < n; i++)
		if (out[i] == 0)
			out[i] = ' ';
	out[n] = 0;
}

int cmd_list(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (c == 'h') {
			cli_print_help("list");
			return EX_OK;
		}
		return bad_option(argv, c);
	}
	if (optind < argc)
		return cli_usage_err("unexpected argument '%s'", argv[optind]);

	char dir[108], err[256];
	if (client_rundir(dir, sizeof dir) < 0) {
		cli_err("runtime directory path too long");
		return EX_FAIL;
	}
	int dfd = ctl_rundir_open(dir, 0, err, sizeof err);
	if (dfd < 0) {
		if (dfd == -ENOENT) {
			printf("%-8s %-9s %-9s %-8s %s\n", "PID", "STATE", "MODE", "SPAWNED", "COMMAND");
			return EX_OK;   /* no libnuwa process has ever run for this user */
		}
		cli_err("%s", err);
		return EX_FAIL;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		cli_err("%s: %s", dir, strerror(errno));
		close(dfd);
		return EX_FAIL;
	}
	printf("%-8s %-9s %-9s %-8s %s\n", "PID", "STATE", "MODE", "SPAWNED", "COMMAND");
	struct dirent *e;
	while ((e = readdir(d))) {
		pid_t pid = ctl_sock_name_pid(e->d_name);
		if (pid <= 0)
			continue;
		char target[512];
		snprintf(target, sizeof target, "%s/%s", dir, e->d_name);
		/* Quietly: a process may exit while we look. */
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		if (fd < 0 || strlen(target) >= sizeof a.sun_path) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		strcpy(a.sun_path, target);
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
			if (errno == ECONNREFUSED)
				cli_remove_stale_socket(dir, pid);
			close(fd);
			continue;
		}
		struct client cl = { .fd = fd, .pid = pid };
		strcpy(cl.path, target);
		char mem[64];
		struct ctl_buf b;
		struct ctl_msg m;
		ctl_begin(&b, mem, sizeof mem, CTL_REQ_HELLO);
		long n = ctl_end(&b);
		uint32_t state = 99, mode = 99, children = 0;
		int32_t tp = 0;
		if (client_send(&cl, mem, (size_t)n, NULL, 0) == 0 &&
		    client_recv(&cl, &m, 5000, -1) == 1 && m.type == CTL_REP_OK) {
			ctl_get_u32(&m, CTL_F_STATE, &state);
			ctl_get_u32(&m, CTL_F_MODE, &mode);
			ctl_get_u32(&m, CTL_F_CHILDREN, &children);
			ctl_get_i32(&m, CTL_F_TEMPLATE_PID, &tp);
		}
		client_close(&cl);
		char cmd[256], note[64] = "";
		read_cmdline(pid, cmd, sizeof cmd);
		if (tp > 0 && tp != pid)   /* snapshot mode: the image is in another process */
			snprintf(note, sizeof note, "  (template: pid %d)", tp);
		printf("%-8ld %-9s %-9s %-8u %s%s\n", (long)pid, ctl_state_name(state),
		       ctl_mode_name(mode), children, cmd, note);
	}
	closedir(d);
	return EX_OK;
}
