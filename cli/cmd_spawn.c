/* nuwa spawn: ask a template for children; optionally hand them our stdio
 * and wait for them, forwarding SIGINT/SIGTERM/SIGHUP. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "ffcall.h"

#define REPLY_MS 60000

struct spawn_opts {
	long count;
	int stdio, wait;
	const char *calls[CTL_MAX_CALLS];
	int ncalls;
	const char *target;
};

static int parse(int argc, char **argv, struct spawn_opts *o)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' },
		{ "count", required_argument, 0, 'n' },
		{ "stdio", no_argument, 0, 's' },
		{ "wait", no_argument, 0, 'w' },
		{ "call", required_argument, 0, 'c' },
		{ 0, 0, 0, 0 } };
	int c;
	o->count = 1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hn:swc:", lo, NULL)) != -1) {
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

static long build(const struct spawn_opts *o, char *mem, size_t cap)
{
	struct ctl_buf b;
	ctl_begin(&b, mem, cap, CTL_REQ_SPAWN);
	ctl_put_u32(&b, CTL_F_COUNT, (uint32_t)o->count);
	ctl_put_u32(&b, CTL_F_WAIT, (uint32_t)o->wait);
	ctl_put_u32(&b, CTL_F_STDIO, o->stdio ? 3 : 0);
	for (int i = 0; i < o->ncalls; i++)
		ctl_put_str(&b, CTL_F_CALL, o->calls[i]);
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
static int converse(struct client *cl, const struct spawn_opts *o, struct kids *k, int sigfd)
{
	int spawning = 1, pending_sig = 0;
	for (;;) {
		if (!spawning && (!o->wait || k->live == 0))
			return o->wait ? k->first_bad : EX_OK;
		struct ctl_msg m;
		int r = client_recv(cl, &m, spawning ? REPLY_MS + 50 * (int)o->count : -1, sigfd);
		if (r == -EINTR) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof si) == sizeof si) {
				pending_sig = (int)si.ssi_signo;
				forward(cl, k, pending_sig);
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

int cmd_spawn(int argc, char **argv)
{
	struct spawn_opts o = { 0 };
	int r = parse(argc, argv, &o);
	if (r)
		return r < 0 ? EX_OK : r;
	int fail = o.wait ? EX_NUWA : 0;   /* --wait: our own failures are 125 */

	/* Block the signals to forward before anything is spawned, so that a
	 * Ctrl-C at any moment reaches the children instead of killing us. */
	int sigfd = -1;
	if (o.wait) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGHUP);
		sigprocmask(SIG_BLOCK, &set, NULL);
		sigfd = signalfd(-1, &set, SFD_CLOEXEC);
		if (sigfd < 0) {
			cli_err("signalfd: %s", strerror(errno));
			return EX_NUWA;
		}
	}
	char mem[CTL_MAX_REQUEST];
	long len = build(&o, mem, sizeof mem);
	if (len < 0)
		return cli_usage_err("request too large (shorten the --call strings)");
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
	r = converse(&cl, &o, &k, sigfd);
	client_close(&cl);
	return r;
}
