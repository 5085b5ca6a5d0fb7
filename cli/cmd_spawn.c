/* nuwa spawn: ask a template for children; optionally hand them our stdio
 * and wait for them, forwarding SIGINT/SIGTERM/SIGHUP (and, from a terminal,
 * the job-control signals: spawn_tty.c); their environment, directory and
 * cgroup. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "ffcall.h"
#include "spawn_tty.h"
#include "spawnopts.h"

#define REPLY_MS 60000

struct spawn_args {
	long count;
	int stdio, wait;
	const char *calls[CTL_MAX_CALLS];
	int ncalls;
	const char *env[SPAWN_MAX_ENV];
	int nenv, env_clear;
	char *cwd, *cgroup;       /* absolute (realpath), malloc'd */
	int pgrp;                 /* CTL_F_PGRP, decided by spawn_tty_begin() */
	const char *target;
};

/* The template has a working directory of its own: send an absolute path,
 * resolved here, where the user meant it. */
static int abs_dir(const char *opt, const char *arg, int want_dir, char **out)
{
	char err[256];
	char *p = realpath(arg, NULL);
	if (!p)
		return cli_usage_err("%s %s: %s", opt, arg, strerror(errno));
	struct stat st;
	if (want_dir && (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))) {
		free(p);
		return cli_usage_err("%s %s: not a directory", opt, arg);
	}
	if (spawn_path_check(opt, p, err, sizeof err) < 0) {
		free(p);
		return cli_usage_err("%s", err);
	}
	free(*out);
	*out = p;
	return 0;
}

enum { OPT_ENV_CLEAR = 256, OPT_CGROUP };

static int parse(int argc, char **argv, struct spawn_args *o)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' },
		{ "count", required_argument, 0, 'n' },
		{ "stdio", no_argument, 0, 's' },
		{ "wait", no_argument, 0, 'w' },
		{ "call", required_argument, 0, 'c' },
		{ "env", required_argument, 0, 'e' },
		{ "env-clear", no_argument, 0, OPT_ENV_CLEAR },
		{ "cwd", required_argument, 0, 'C' },
		{ "cgroup", required_argument, 0, OPT_CGROUP },
		{ 0, 0, 0, 0 } };
	int c;
	o->count = 1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hn:swc:e:C:", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_print_help("spawn");
			return -1;
		case 'n':
			if (cli_parse_int(optarg, 1, CTL_MAX_SPAWN, &o->count) < 0)
				return cli_usage_err("-n needs a number from 1 to %d, not '%s'",
				                     CTL_MAX_SPAWN, optarg);
			break;
		case 's':
			o->stdio = 1;
			break;
		case 'w':
			o->wait = 1;
			break;
		case 'e': {
			char err[256];
			if (o->nenv == SPAWN_MAX_ENV)
				return cli_usage_err("at most %d --env options", SPAWN_MAX_ENV);
			if (spawn_env_check(optarg, err, sizeof err) < 0)
				return cli_usage_err("%s", err);
			o->env[o->nenv++] = optarg;
			break;
		}
		case OPT_ENV_CLEAR:
			o->env_clear = 1;
			break;
		case 'C':
			if (abs_dir("--cwd", optarg, 1, &o->cwd))
				return EX_USAGE;
			break;
		case OPT_CGROUP:
			/* whether it is a writable cgroup v2 directory is for the
			 * template to say: it is the one that forks */
			if (abs_dir("--cgroup", optarg, 1, &o->cgroup))
				return EX_USAGE;
			break;
		case 'c': {
			if (o->ncalls == CTL_MAX_CALLS)
				return cli_usage_err("at most %d --call options", CTL_MAX_CALLS);
			/* Syntax now, before anything is sent; names are resolved by
			 * the template, before it forks. */
			struct ffcall_spec spec;
			char arena[8192], err[512];
			size_t used = 0;
			if (ffcall_parse(optarg, &spec, arena, &used, sizeof arena, err, sizeof err) < 0)
				return cli_usage_err("%s", err);
			o->calls[o->ncalls++] = optarg;
			break;
		}
		default:
			if (c == ':')
				return cli_usage_err("option '%s' needs a value", argv[optind - 1]);
			if (optopt)
				return cli_usage_err("unknown option '-%c'", optopt);
			return cli_usage_err("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_err("missing PID or SOCKET");
	if (optind + 1 < argc)
		return cli_usage_err("unexpected argument '%s'", argv[optind + 1]);
	o->target = argv[optind];
	return EX_OK;
}

static long build(const struct spawn_args *o, char *mem, size_t cap)
{
	struct ctl_buf b;
	ctl_begin(&b, mem, cap, CTL_REQ_SPAWN);
	ctl_put_u32(&b, CTL_F_COUNT, (uint32_t)o->count);
	ctl_put_u32(&b, CTL_F_WAIT, (uint32_t)o->wait);
	ctl_put_u32(&b, CTL_F_STDIO, o->stdio ? 3 : 0);
	for (int i = 0; i < o->ncalls; i++)
		ctl_put_str(&b, CTL_F_CALL, o->calls[i]);
	if (o->env_clear)
		ctl_put_u32(&b, CTL_F_ENV_CLEAR, 1);
	for (int i = 0; i < o->nenv; i++)
		ctl_put_str(&b, CTL_F_ENV, o->env[i]);
	if (o->cwd)
		ctl_put_str(&b, CTL_F_CWD, o->cwd);
	if (o->cgroup)
		ctl_put_str(&b, CTL_F_CGROUP, o->cgroup);
	if (o->pgrp)
		ctl_put_i32(&b, CTL_F_PGRP, o->pgrp);
	return ctl_end(&b);
}

struct kids {
	pid_t *pid;
	int *done;
	int n, live;
	int first_bad;       /* exit code of the first child that did not exit 0 */
};

static int code_of(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return EX_NUWA;
}

static void forward(struct client *cl, struct kids *k, int sig)
{
	for (int i = 0; i < k->n; i++) {
		if (k->done[i])
			continue;
		char mem[64];
		struct ctl_buf b;
		ctl_begin(&b, mem, sizeof mem, CTL_REQ_SIGNAL);
		ctl_put_i32(&b, CTL_F_PID, k->pid[i]);
		ctl_put_i32(&b, CTL_F_SIGNAL, sig);
		long n = ctl_end(&b);
		if (client_send(cl, mem, (size_t)n, NULL, 0) < 0)
			return;   /* the loop notices the closed connection */
	}
}

static void exited(struct kids *k, const struct ctl_msg *m)
{
	int32_t pid = 0, ws = 0;
	ctl_get_i32(m, CTL_F_PID, &pid);
	ctl_get_i32(m, CTL_F_WSTATUS, &ws);
	for (int i = 0; i < k->n; i++) {
		if (k->pid[i] != pid || k->done[i])
			continue;
		k->done[i] = 1;
		k->live--;
		int code = code_of(ws);
		if (code && !k->first_bad)
			k->first_bad = code;
	}
}

/* Read replies: SPAWNED (print the pid), OK (spawn done), ERROR; with
 * --wait then EXITED until every child is accounted for. */
static int converse(struct client *cl, const struct spawn_args *o, struct kids *k, int sigfd,
                    struct spawn_tty *tty)
{
	int spawning = 1, pending_sig = 0;
	for (;;) {
		if (!spawning && (!o->wait || k->live == 0))
			return o->wait ? k->first_bad : EX_OK;
		struct ctl_msg m;
		int r = client_recv(cl, &m, spawning ? REPLY_MS + 50 * (int)o->count : -1, sigfd);
		if (r == -EINTR) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof si) == sizeof si &&
			    spawn_tty_forward(tty, (int)si.ssi_signo, si.ssi_code)) {
				pending_sig = (int)si.ssi_signo;
				forward(cl, k, pending_sig);
				if (pending_sig == SIGTSTP) {
					/* a job stops as a whole: the child, then us;
					 * continued, the child goes on with us (even if
					 * our stop was dropped: an orphaned group) */
					spawn_tty_stop_self(tty, k->pid, k->done, k->n);
					forward(cl, k, SIGCONT);
					pending_sig = 0;
				}
			}
			continue;
		}
		if (r != 1) {
			if (r == 0)
				cli_err("%ld: connection lost%s", (long)cl->pid,
				        k->live ? "; the children keep running, their exit status is "
				                  "unknown" : "");
			else
				cli_err("%ld: %s", (long)cl->pid,
				        r == -ETIMEDOUT ? "no reply in time" : strerror(-r));
			return o->wait ? EX_NUWA : EX_PROTO;
		}
		switch (m.type) {
		case CTL_REP_SPAWNED: {
			int32_t pid = 0;
			ctl_get_i32(&m, CTL_F_PID, &pid);
			/* With --stdio our stdout is the child's: keep it the
			 * program's own output, and name the child on stderr. */
			if (o->stdio)
				fprintf(stderr, "nuwa spawn: child %d\n", pid);
			else
				printf("%d\n", pid);
			fflush(stdout);
			k->pid[k->n] = pid;
			k->done[k->n] = 0;
			k->n++;
			k->live++;
			if (pending_sig && o->wait)
				forward(cl, k, pending_sig);   /* Ctrl-C came while spawning */
			break;
		}
		case CTL_REP_OK:
			spawning = 0;   /* later OKs acknowledge forwarded signals */
			break;
		case CTL_REP_EXITED:
			exited(k, &m);
			break;
		case CTL_REP_ERROR:
			client_print_error(cl, &m);
			if (spawning)
				return client_refused(&m) ? EX_NOPROC : o->wait ? EX_NUWA : EX_FAIL;
			if (!k->live)
				return EX_NUWA;
			{
				int32_t e = 0;
				ctl_get_i32(&m, CTL_F_ERRNO, &e);
				if (e == ESHUTDOWN)
					return EX_NUWA;   /* the template was stopped */
			}
			break;   /* a signal could not be forwarded: keep waiting */
		default:
			cli_err("%ld: unexpected %s message", (long)cl->pid, ctl_type_name(m.type));
			return o->wait ? EX_NUWA : EX_PROTO;
		}
	}
}

static void free_pointer(void *p)
{
	free(*(void **)p);
}

/* The signals to catch while waiting, in a signalfd: blocked before the
 * request is sent, so that a Ctrl-C at any moment reaches the children
 * instead of killing us.  Set again for each target (a snapshot redirect
 * may change how the child relates to the terminal). */
static int catch_signals(const struct spawn_tty *tty, const sigset_t *orig, int *sigfd)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	spawn_tty_sigset(tty, &set);
	sigprocmask(SIG_SETMASK, orig, NULL);
	sigprocmask(SIG_BLOCK, &set, NULL);
	*sigfd = signalfd(*sigfd, &set, SFD_CLOEXEC);
	if (*sigfd < 0) {
		cli_err("signalfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void free_args(struct spawn_args *o)
{
	free(o->cwd);
	free(o->cgroup);
}

int cmd_spawn(int argc, char **argv)
{
	struct spawn_args o __attribute__((cleanup(free_args))) = { 0 };
	int r = parse(argc, argv, &o);
	if (r)
		return r < 0 ? EX_OK : r;
	int fail = o.wait ? EX_NUWA : 0;   /* --wait: our own failures are 125 */

	int sigfd = -1;
	sigset_t orig;
	sigprocmask(SIG_SETMASK, NULL, &orig);
	struct spawn_tty tty = { 0 };
	char mem[CTL_MAX_REQUEST];
	long len = build(&o, mem, sizeof mem);
	if (len < 0)
		return cli_usage_err("request too large (shorten the --call or --env strings)");
	int fds[3] = { 0, 1, 2 };
	/* freed on every return (cleanup), so the many early exits stay leak-free */
	pid_t *kid_pids __attribute__((cleanup(free_pointer))) = calloc((size_t)o.count, sizeof(pid_t));
	int *kid_done __attribute__((cleanup(free_pointer))) = calloc((size_t)o.count, sizeof(int));
	struct kids k = { kid_pids, kid_done, 0, 0, 0 };
	if (!k.pid || !k.done) {
		cli_err("out of memory");
		return EX_NUWA;
	}

	const char *target = o.target;
	char redirect[32];
	struct client cl;
	for (int hop = 0;; hop++) {
		if ((r = client_open(&cl, target)) != EX_OK)
			return fail ? fail : r;
		/* From a terminal, the child becomes a job of our shell
		 * (spawn_tty.c); that depends on the template's session. */
		if (o.stdio && o.wait) {
			o.pgrp = spawn_tty_begin(&tty, cl.pid);
			len = build(&o, mem, sizeof mem);
		}
		if (o.wait && catch_signals(&tty, &orig, &sigfd) < 0) {
			client_close(&cl);
			return EX_NUWA;
		}
		if ((r = client_send(&cl, mem, (size_t)len, o.stdio ? fds : NULL,
		                     o.stdio ? 3 : 0)) < 0) {
			struct ctl_msg m;
			if (client_recv(&cl, &m, 1000, -1) == 1 && m.type == CTL_REP_ERROR) {
				client_print_error(&cl, &m);   /* refused at once */
				int refused = client_refused(&m);   /* m lives in cl's buffer */
				client_close(&cl);
				return fail ? fail : refused ? EX_NOPROC : EX_FAIL;
			}
			cli_err("%s: cannot send the request: %s", target, strerror(-r));
			client_close(&cl);
			return fail ? fail : EX_PROTO;
		}
		/* Snapshot mode: the running original names its template child. */
		struct ctl_msg m;
		int32_t to = 0;
		if (hop == 0 && client_recv(&cl, &m, REPLY_MS, -1) == 1 &&
		    m.type == CTL_REP_ERROR && ctl_get_i32(&m, CTL_F_REDIRECT_PID, &to) == 0 &&
		    to > 0) {
			fprintf(stderr, "nuwa spawn: %ld runs on; spawning from its snapshot "
			        "template, pid %d\n", (long)cl.pid, to);
			client_close(&cl);
			snprintf(redirect, sizeof redirect, "%d", to);
			target = redirect;
			continue;
		}
		if (hop == 0)
			cl.last = 0;   /* the reply just read is handled by converse() */
		break;
	}
	r = converse(&cl, &o, &k, sigfd, &tty);
	spawn_tty_end(&tty);
	client_close(&cl);
	return r;
}
