/* ptyjob — the smallest job-control shell, for tests run on a pseudo-
 * terminal (tests/cli/test_tty.c starts it with forkpty(), so it is the
 * session leader and the terminal is its controlling terminal).
 *
 *   ptyjob [--bg PROG ARGS... --job] CMD ARGS...
 *
 * --bg: first start PROG in a background process group of this session,
 * stdin a pipe kept open (it never reads end-of-file), stdout and stderr
 * to /dev/null; print "[ptyjob: bg PID]" and wait for a line on the
 * terminal before going on.  An argument "%BG%" of CMD is replaced by PID.
 *
 * Then CMD runs as the foreground job, like a shell runs it: its own
 * process group, made the terminal's foreground group.  When the job stops
 * (Ctrl-Z), ptyjob takes the terminal back and puts its own modes back,
 * prints "[ptyjob: stopped]", waits for a line, gives the terminal to the job
 * again with its modes (`fg`) and prints "[ptyjob: continued]".  When it
 * ends: "[ptyjob: exit N fg=yes|no modes=same|changed]" — fg: the job was
 * still the terminal's foreground group; modes: the terminal's modes are
 * those from before the job — and ptyjob exits N. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void say(const char *fmt, long a, const char *b, const char *c)
{
	char line[256];
	int n = snprintf(line, sizeof line, fmt, a, b, c);
	(void)!write(1, line, (size_t)n);
}

static void read_line(void)
{
	char c;
	while (read(0, &c, 1) == 1 && c != '\n')
		;
}

static int same_modes(const struct termios *a, const struct termios *b)
{
	return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag &&
	       a->c_cflag == b->c_cflag && a->c_lflag == b->c_lflag &&
	       !memcmp(a->c_cc, b->c_cc, sizeof a->c_cc);
}

static pid_t start(char **argv, int bg)
{
	int p[2] = { -1, -1 };
	if (bg && pipe(p) < 0)
		exit(120);
	pid_t pid = fork();
	if (pid < 0)
		exit(120);
	if (pid == 0) {
		setpgid(0, 0);
		if (bg) {
			int null = open("/dev/null", O_WRONLY);
			dup2(p[0], 0);
			dup2(null, 1);
			dup2(null, 2);
		} else {
			tcsetpgrp(0, getpid());
		}
		signal(SIGTTOU, SIG_DFL);
		signal(SIGTTIN, SIG_DFL);
		signal(SIGTSTP, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	if (!bg)
		tcsetpgrp(0, pid);
	/* the write end stays open in ptyjob: no end-of-file for PROG */
	return pid;
}

int main(int argc, char **argv)
{
	signal(SIGTTOU, SIG_IGN);   /* a shell: tcsetpgrp() from the background */
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	int i = 1;
	pid_t bg = 0;
	if (i < argc && !strcmp(argv[i], "--bg")) {
		int j = i + 1;
		while (j < argc && strcmp(argv[j], "--job"))
			j++;
		if (j >= argc)
			return 121;
		argv[j] = NULL;
		bg = start(argv + i + 1, 1);
		say("[ptyjob: bg %ld]\r\n", bg, "", "");
		read_line();
		i = j + 1;
	}
	if (i >= argc)
		return 121;
	char num[32];
	snprintf(num, sizeof num, "%ld", (long)bg);
	for (int k = i; k < argc; k++)
		if (!strcmp(argv[k], "%BG%"))
			argv[k] = num;

	struct termios mine, job;
	tcgetattr(0, &mine);
	pid_t pid = start(argv + i, 0);
	for (;;) {
		int st;
		if (waitpid(pid, &st, WUNTRACED) < 0) {
			if (errno == EINTR)
				continue;
			return 122;
		}
		if (WIFSTOPPED(st)) {
			tcgetattr(0, &job);
			tcsetpgrp(0, getpgrp());
			tcsetattr(0, TCSADRAIN, &mine);
			say("[ptyjob: stopped]\r\n", 0, "", "");
			read_line();
			tcsetattr(0, TCSADRAIN, &job);
			tcsetpgrp(0, pid);
			kill(-pid, SIGCONT);
			say("[ptyjob: continued]\r\n", 0, "", "");
			continue;
		}
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		int fg = tcgetpgrp(0) == pid;
		tcsetpgrp(0, getpgrp());
		struct termios now;
		tcgetattr(0, &now);
		say("[ptyjob: exit %ld fg=%s modes=%s]\r\n", code, fg ? "yes" : "no",
		    same_modes(&now, &mine) ? "same" : "changed");
		if (bg)
			kill(bg, SIGKILL);
		return code;
	}
}
