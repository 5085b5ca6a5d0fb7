/* nuwa spawn --stdio --wait from a terminal (cli/spawn_tty.c), in a real
 * pseudo-terminal: a frozen python3 REPL template, the spawn run as the
 * foreground job of ptyjob (a one-job shell, tests/cli/ptyjob.c) on the
 * pty, the test typing at the master side.  Twice: with the template in
 * another session (nuwa forwards the job signals) and in the terminal's
 * own session (the child joins nuwa's process group).
 *
 * Each step waits for output that only the step's effect can produce
 * ('LO'+'OP' prints LOOP; the echo of the typed line does not contain it),
 * so nothing depends on timing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_test.h"

static pid_t tmpl = -1, job = -1;
static int tmpl_stdin = -1;   /* the template's stdin: never end of file */
static int master = -1;
static char out[1 << 18];
static size_t out_len, mark;

static void teardown(void)
{
	if (job > 0) {
		kill(job, SIGKILL);
		waitpid(job, NULL, 0);
	}
	if (tmpl > 0) {
		kill(-tmpl, SIGKILL);
		kill(tmpl, SIGKILL);
		waitpid(tmpl, NULL, 0);
	}
	if (master >= 0)
		close(master);
	if (tmpl_stdin >= 0)
		close(tmpl_stdin);
	job = tmpl = master = tmpl_stdin = -1;
	out_len = mark = 0;
}

TestSuite(tty, .fini = teardown, .timeout = 120);

/* Read the terminal until needle appears after the previous match. */
static void expect(const char *needle, const char *step)
{
	long long end = ct_now_ms() + 30000;
	for (;;) {
		out[out_len] = 0;
		char *hit = strstr(out + mark, needle);
		if (hit) {
			mark = (size_t)(hit - out) + strlen(needle);
			return;
		}
		int left = (int)(end - ct_now_ms());
		struct pollfd p = { master, POLLIN, 0 };
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t n = read(master, out + out_len, sizeof out - 1 - out_len);
		if (n <= 0)
			break;
		out_len += (size_t)n;
	}
	cr_assert_fail("%s: no '%s' on the terminal; it shows:\n%s", step, needle, out + mark);
}

/* A stopped job's processes can still be on their way to stopping when the
 * shell has the terminal back: a reader that the kernel has not run since
 * the signal takes input that arrives first (n_tty_read() copies available
 * input before it looks at pending signals).  A user types too slowly to
 * see it; the test waits until the child is stopped (/proc/PID/stat: 'T'). */
static void wait_stopped(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	for (long long end = ct_now_ms() + 30000; ct_now_ms() < end; ct_sleep_ms(5)) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		char *e = strrchr(buf, ')');
		if (e && e[1] == ' ' && e[2] == 'T')
			return;
	}
	cr_assert_fail("child %d never stopped: %s", pid, buf);
}

static void type(const char *s)
{
	cr_assert(write(master, s, strlen(s)) == (ssize_t)strlen(s));
}

static void wait_template(pid_t pid)
{
	char p[32];
	snprintf(p, sizeof p, "%d", pid);
	struct ct_out *o = malloc(sizeof *o);
	for (long long end = ct_now_ms() + 30000; ct_now_ms() < end; ct_sleep_ms(50)) {
		ct_nuwa(o, 10000, "status", p, NULL);
		if (o->code == 0 && strstr(o->out, "state template")) {
			free(o);
			return;
		}
	}
	cr_assert_fail("python template %d never froze: %s %s", pid, o->out, o->err);
}

/* `nuwa run` freezing python3's REPL once it waits for its first line. */
static void template_argv(const char **argv)
{
	const char *a[] = { ct_path("NUWA_CLI"), "run", "--mode", "template", "--freeze-on-idle",
	                    "300", "--lib", ct_path("NUWA_LIB"), "--", ct_path("NUWA_PYTHON3"),
	                    "-S", "-i", "-q", NULL };
	memcpy(argv, a, sizeof a);
}

static pid_t start_pty(char **argv)
{
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	pid_t pid = forkpty(&master, NULL, NULL, &ws);
	cr_assert(pid >= 0, "forkpty: %s", strerror(errno));
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* What the user does at the terminal, and what the child must show. */
static void session(int joined)
{
	size_t at = mark;
	expect("\n", "the child's pid");
	pid_t child = (pid_t)atol(out + at);
	cr_assert(child > 0);
	type("print(6*7)\n");
	expect("42\r\n", "a line typed at the terminal");
	type("import os, signal, termios\n");
	/* joined: the child is in nuwa's group, the foreground one of the
	 * terminal that is its controlling terminal; else a group of its own
	 * in the template's session, where this terminal is no controlling
	 * terminal (tcgetpgrp() fails with ENOTTY) */
	if (joined)
		type("print('PG', os.getpgrp() == os.tcgetpgrp(0), os.getpgrp() == os.getpid())\n");
	else
		type("print('PG', os.getpgrp() == os.getpid(), os.getsid(0) == os.getsid(os.getppid()))\n");
	expect(joined ? "PG True False" : "PG True True", "process group");

	type("signal.signal(signal.SIGWINCH, lambda s, f: print('WIN' + 'CH', "
	     "*os.get_terminal_size(0))); print('SET' + 'UP')\n");
	expect("SETUP", "SIGWINCH handler");
	struct winsize ws = { .ws_row = 33, .ws_col = 111 };
	cr_assert(ioctl(master, TIOCSWINSZ, &ws) == 0);
	/* Python runs a signal's handler at its next bytecode, or when a read
	 * is interrupted: a signal that lands between the last bytecode of
	 * the line above and the REPL's next read() waits for the next line */
	type("print('AF' + 'TER')\n");
	expect("WINCH 111 33", "window size change");

	type("print('LO' + 'OP'); exec('while True: pass')\n");
	expect("LOOP", "the loop starts");
	type("\x03");   /* Ctrl-C */
	expect("KeyboardInterrupt", "Ctrl-C");
	type("print(6*9)\n");
	expect("54\r\n", "the REPL after Ctrl-C");

	type("\x1a");   /* Ctrl-Z: the job stops */
	expect("[ptyjob: stopped]", "Ctrl-Z");
	wait_stopped(child);
	type("\n");     /* fg */
	expect("[ptyjob: continued]", "fg");
	type("print(7*8)\n");
	expect("56\r\n", "the REPL after fg");

	/* the child leaves the terminal without echo; nuwa puts it back */
	type("a = termios.tcgetattr(0); a[3] &= ~termios.ECHO; "
	     "termios.tcsetattr(0, termios.TCSANOW, a); print('NO' + 'ECHO')\n");
	expect("NOECHO", "echo off");
	type("\x04");   /* Ctrl-D: end of input, the REPL exits 0 */
	expect("[ptyjob: exit 0 fg=yes modes=same]", "Ctrl-D, and the terminal afterwards");
	int st;
	cr_assert(waitpid(job, &st, 0) == job && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	job = -1;
}

/* The python template in a session of its own, as under a service manager. */
static pid_t template_elsewhere(void)
{
	const char *dir = ct_setup();
	char log[4096];
	snprintf(log, sizeof log, "%s/python.log", dir);
	int p[2];
	cr_assert(pipe(p) == 0);
	const char *argv[16];
	template_argv(argv);
	tmpl = fork();
	if (tmpl == 0) {
		setsid();
		struct rlimit none = { 0, 0 };
		setrlimit(RLIMIT_CORE, &none);   /* a child killed by SIGQUIT: no core file */
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(p[0], 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(p[0]);
	tmpl_stdin = p[1];
	wait_template(tmpl);
	return tmpl;
}

static void spawn_on_pty(pid_t t)
{
	static char pid[32];
	snprintf(pid, sizeof pid, "%d", t);
	char *jargv[] = { (char *)ct_path("NUWA_PTYJOB"), (char *)ct_path("NUWA_CLI"), "spawn",
	                  "--stdio", "--wait", pid, NULL };
	if (master >= 0)
		close(master);
	out_len = mark = 0;
	job = start_pty(jargv);
	expect("nuwa spawn: child ", "spawn");
}

Test(tty, python_repl_template_in_another_session)
{
	spawn_on_pty(template_elsewhere());
	session(0);
}

/* nuwa spawn --wait exits with the child's status, 128+N for a signal
 * (Ctrl-\ : SIGQUIT, forwarded), and leaves the terminal as it was. */
Test(tty, exit_status_is_the_childs)
{
	pid_t t = template_elsewhere();
	spawn_on_pty(t);
	type("import sys; sys.exit(7)\n");
	expect("[ptyjob: exit 7 fg=yes modes=same]", "sys.exit(7)");
	waitpid(job, NULL, 0);
	spawn_on_pty(t);
	type("print(6*7)\n");
	expect("42\r\n", "the second child");
	type("\x1c");   /* Ctrl-\ (quit) */
	char want[64];
	snprintf(want, sizeof want, "[ptyjob: exit %d fg=yes modes=same]", 128 + SIGQUIT);
	expect(want, "Ctrl-\\");
	waitpid(job, NULL, 0);
	job = -1;
}

Test(tty, python_repl_template_in_the_terminals_session)
{
	ct_setup();
	const char *targv[16];
	template_argv(targv);
	char *jargv[32];
	int n = 0;
	jargv[n++] = (char *)ct_path("NUWA_PTYJOB");
	jargv[n++] = "--bg";
	for (int i = 0; targv[i]; i++)
		jargv[n++] = (char *)targv[i];
	jargv[n++] = "--job";
	jargv[n++] = (char *)ct_path("NUWA_CLI");
	jargv[n++] = "spawn";
	jargv[n++] = "--stdio";
	jargv[n++] = "--wait";
	jargv[n++] = "%BG%";
	jargv[n] = NULL;
	job = start_pty(jargv);
	expect("[ptyjob: bg ", "template started");
	expect("]", "template pid");
	tmpl = (pid_t)atol(strstr(out, "[ptyjob: bg ") + 12);
	cr_assert(tmpl > 0);
	wait_template(tmpl);
	type("\n");
	expect("nuwa spawn: child ", "spawn");
	session(1);
}
