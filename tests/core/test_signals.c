/* Programs that do their own thing with signals (tests/scenarios/signals.c):
 * all signals blocked everywhere; their own SIGUSR2 handler (with another
 * NUWA_SIGNAL, and with the default one: conflict reported, SIGUSR2 left
 * to the program); a signalfd for every signal.  They all still freeze and
 * clone, their own signals still arrive in every process, and libnuwa's
 * signals never reach them. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

TestSuite(signals, .fini = nh_cleanup_all, .timeout = 120);

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The original pid and those the clones announced ("CLONED pid=P"). */
static int all_pids(nh_proc *p, int want_clones, pid_t *pids)
{
	if (!nh_wait_out(p, "CLONED pid=", want_clones, NH_CLONE_MS))
		nh_fail(p, "fewer than %d clones announced themselves", want_clones);
	int n = 0;
	pids[n++] = p->pid;
	for (const char *l = p->out.data; (l = strstr(l, "CLONED pid=")); l++)
		pids[n++] = (pid_t)atoi(l + 11);
	return n;
}

/* Send sig to every process and wait for each one's "<marker><pid>\n". */
static void signal_each(nh_proc *p, int want_clones, int sig, const char *marker)
{
	pid_t pids[64];
	int n = all_pids(p, want_clones, pids);
	for (int i = 0; i < n; i++) {
		char line[64];
		snprintf(line, sizeof line, "%s%d\n", marker, (int)pids[i]);
		nh_kill(p, pids[i], sig);
		if (!nh_wait_out(p, line, 1, 5000))
			nh_fail(p, "process %d did not report \"%s%d\" after signal %d",
				(int)pids[i], marker, (int)pids[i], sig);
	}
}

static void clones_then_signals(const struct nh_opts *o, int triggers, int random_ms,
				int sig, const char *marker)
{
	nh_proc *p = nh_start("signals", o);
	nh_expect_ready(p);
	if (random_ms)
		nh_random_triggers(p, triggers, 10, random_ms);
	else
		for (int i = 0; i < triggers; i++)
			nh_clone(p, NH_CLONE_MS);
	if (sig)
		signal_each(p, triggers, sig, marker);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1 + triggers);
	nh_free(p);
}

Test(signals, all_blocked_twice)
{
	struct nh_opts o = { .argv = ARGV("blockall") };
	clones_then_signals(&o, 2, 0, 0, NULL);
}

Test(signals, all_blocked_random20)
{
	struct nh_opts o = { .argv = ARGV("blockall") };
	clones_then_signals(&o, 20, 60, 0, NULL);
}

Test(signals, signalfd_twice)
{
	struct nh_opts o = { .argv = ARGV("signalfd") };
	clones_then_signals(&o, 2, 0, SIGUSR1, "GOT sig=10 pid=");
}

Test(signals, signalfd_random20)
{
	struct nh_opts o = { .argv = ARGV("signalfd") };
	clones_then_signals(&o, 20, 60, SIGUSR1, "GOT sig=10 pid=");
}

Test(signals, own_usr2_with_nuwa_signal_usr1_twice)
{
	struct nh_opts o = { .argv = ARGV("ownusr2", "10"), .env = ENV("NUWA_SIGNAL=SIGUSR1"),
			     .trigger_sig = SIGUSR1 };
	clones_then_signals(&o, 2, 0, SIGUSR2, "GOT_USR2 pid=");
}

Test(signals, own_usr2_with_nuwa_signal_usr1_random20)
{
	struct nh_opts o = { .argv = ARGV("ownusr2", "10"), .env = ENV("NUWA_SIGNAL=USR1"),
			     .trigger_sig = SIGUSR1 };
	clones_then_signals(&o, 20, 60, SIGUSR2, "GOT_USR2 pid=");
}

Test(signals, own_usr2_with_nuwa_signal_rtmin3_twice)
{
	char trig[16];
	snprintf(trig, sizeof trig, "%d", SIGRTMIN + 3);
	struct nh_opts o = { .argv = ARGV("ownusr2", trig), .env = ENV("NUWA_SIGNAL=RTMIN+3"),
			     .trigger_sig = SIGRTMIN + 3 };
	clones_then_signals(&o, 2, 0, SIGUSR2, "GOT_USR2 pid=");
}

Test(signals, own_usr2_with_numeric_nuwa_signal_twice)
{
	char trig[16], env[32];
	snprintf(trig, sizeof trig, "%d", SIGRTMIN + 5);
	snprintf(env, sizeof env, "NUWA_SIGNAL=%d", SIGRTMIN + 5);
	struct nh_opts o = { .argv = ARGV("ownusr2", trig), .env = ENV(env),
			     .trigger_sig = SIGRTMIN + 5 };
	clones_then_signals(&o, 2, 0, SIGUSR2, "GOT_USR2 pid=");
}

/* Default NUWA_SIGNAL and a program that catches SIGUSR2: libnuwa warns
 * and leaves SIGUSR2 to the program. */
Test(signals, own_usr2_with_default_signal_conflict)
{
	struct nh_opts o = { .argv = ARGV("ownusr2", "12") };
	nh_proc *p = nh_start("signals", &o);
	nh_expect_ready(p);
	int found = 0;
	for (long long end = nh_now_ms() + 3000; !found && nh_now_ms() < end;) {
		nh_pump(p, 100);
		for (const char *l = p->err.data; *l && !found;) {
			const char *nl = strchr(l, '\n');
			if (!nl)
				break;
			char line[512];
			snprintf(line, sizeof line, "%.*s", (int)(nl - l), l);
			found = !strncmp(line, "nuwa[", 5) && strcasestr(line, "warn") &&
				(strstr(line, "USR2") || strstr(line, "signal 12"));
			l = nl + 1;
		}
	}
	if (!found)
		nh_fail(p, "no warning naming SIGUSR2 (or signal 12) on stderr");
	char want[64];
	snprintf(want, sizeof want, "GOT_USR2 pid=%d\n", (int)p->pid);
	nh_kill(p, p->pid, SIGUSR2);
	if (!nh_wait_out(p, want, 1, 5000))
		nh_fail(p, "the program's own SIGUSR2 handler did not run");
	nh_pump(p, 500);
	if (nh_count(p->err.data, "clone done:") || nh_count(p->err.data, "freeze failed:"))
		nh_fail(p, "SIGUSR2 started a freeze although the program owns it");
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1);
	nh_free(p);
}

/* issue 10 class 5: a program that installs its own handler for the park
 * signal with a raw rt_sigaction, as the Go runtime does.  Every freeze
 * takes the signal back, and the program's handler is back, unchanged, in
 * the original after each clone and in every clone; it saw only the
 * signals the program sent itself (tests/scenarios/gosig.c). */
Test(signals, raw_sigaction_takeover_twice)
{
	struct nh_opts o = { .argv = ARGV("handler"), .env = ENV("NUWA_CLONES=2") };
	nh_run_clones("gosig", &o, 2, 2, 0);
}

/* A thread that blocks every signal glibc lets it block, the park signal
 * included, with a raw rt_sigprocmask (Go's os/signal thread): parked
 * through glibc's SIGCANCEL, which nobody blocks, and resumed everywhere. */
Test(signals, raw_sigprocmask_park_signal_blocked_twice)
{
	struct nh_opts o = { .argv = ARGV("sigm") };
	nh_run_clones("gosig", &o, 2, 1, 0);
}

/* A thread that blocks every signal with a raw rt_sigprocmask: the
 * freeze fails naming it and the mask, and the program runs on. */
Test(signals, raw_sigprocmask_block_is_named)
{
	struct nh_opts o = { .argv = ARGV("block"), .env = ENV("NUWA_FREEZE_TIMEOUT_MS=200") };
	nh_proc *p = nh_start("gosig", &o);
	nh_expect_ready(p);
	nh_trigger(p);
	if (!nh_wait_err(p, "freeze failed:", 1, 15000))
		nh_fail(p, "no \"freeze failed:\" line");
	nh_pump(p, 100);
	char want[64];
	snprintf(want, sizeof want, "(blocker) blocks signal %d (SigBlk ", SIGRTMAX - 1);
	const char *l = strstr(p->err.data, "freeze failed:");
	const char *e = l ? strchr(l, '\n') : NULL;
	char line[2048];
	snprintf(line, sizeof line, "%.*s", e ? (int)(e - l) : (int)sizeof line - 1, l ? l : "");
	if (!strstr(line, want))
		nh_fail(p, "the error does not say \"%s\": %s", want, line);
	if (strstr(line, "(blocker) busy"))
		nh_fail(p, "the blocker is also called busy: %s", line);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1);
	nh_free(p);
}
