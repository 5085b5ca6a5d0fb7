/* nuwa spawn --stdio --wait from a terminal: the child behaves like a job
 * of the shell that runs nuwa.
 *
 * Job control is per session: a process can join a process group, or be
 * made a terminal's foreground group, only within its own session
 * (setpgid(2), tcsetpgrp(3)), and a terminal is the controlling terminal of
 * one session at most (TIOCSCTTY takes it from another only for root, and
 * we do not steal the shell's).  The child is forked by the template, so it
 * is born in the template's session.  Hence two cases:
 *
 *   JOIN   the template is in our session (started from this shell): the
 *          child joins nuwa's own process group, which the shell made the
 *          terminal's foreground group, or not.  The kernel then does
 *          everything a shell job gets: Ctrl-C, Ctrl-\ and SIGWINCH reach
 *          nuwa and the child together, Ctrl-Z stops both, `fg`/`bg`
 *          continue both, and a background job that reads the terminal
 *          gets SIGTTIN.  nuwa forwards only what was sent to it alone
 *          (kill(2): si_code SI_USER), not what the terminal sent its
 *          group (SI_KERNEL), which the child has already received.
 *
 *   PROXY  the template is in another session (another terminal, a service
 *          manager): the child gets a process group of its own in that
 *          session, where the terminal is not its controlling terminal,
 *          so the kernel's job control never stops it for using it
 *          (__tty_check_change() looks only at a process's own controlling
 *          terminal).  nuwa stays in the foreground and forwards the job
 *          signals: SIGINT, SIGQUIT, SIGWINCH (the child's TIOCGWINSZ reads
 *          the same terminal), SIGTSTP (then nuwa stops itself, so the
 *          shell sees the job stop) and SIGCONT (the shell's `fg`).  The
 *          group is the child's own so that the template's terminal, if it
 *          has one, does not signal it; it is not a new session, where
 *          SIGTSTP's default action would be dropped (an orphaned group:
 *          the child's parent, the template, would be in another session).
 *
 * In both cases the terminal's modes are saved before the spawn and put
 * back when the child is gone (a child killed in raw mode leaves no mess),
 * if nuwa is then in the foreground. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "spawn_tty.h"
#include "spawnopts.h"

int spawn_tty_begin(struct spawn_tty *t, pid_t template_pid)
{
	memset(t, 0, sizeof *t);
	if (!isatty(0))
		return SPAWN_PGRP_KEEP;
	t->active = 1;
	t->have_modes = tcgetattr(0, &t->modes) == 0;
	pid_t tsid = template_pid > 0 ? getsid(template_pid) : -1;
	if (tsid >= 0 && tsid == getsid(0)) {
		t->join = 1;
		return getpgrp();
	}
	return SPAWN_PGRP_OWN;
}

void spawn_tty_sigset(const struct spawn_tty *t, sigset_t *set)
{
	if (!t->active)
		return;
	sigaddset(set, SIGQUIT);
	if (t->join)
		return;   /* SIGTSTP, SIGCONT, SIGWINCH: the default, as for the child */
	sigaddset(set, SIGWINCH);
	sigaddset(set, SIGTSTP);
	sigaddset(set, SIGCONT);
}

int spawn_tty_forward(const struct spawn_tty *t, int sig, int code)
{
	if (t->join && code == SI_KERNEL)
		return 0;   /* the terminal signalled our group: the child is in it */
	return 1;
}

/* The state letter of /proc/PID/stat (after the parenthesised name, which
 * may itself hold parentheses: the last ')' ends it); 0 if gone. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *e = strrchr(buf, ')');
	return e && e[1] == ' ' ? e[2] : 0;
}

/* PROXY, after SIGTSTP was forwarded (the template delivers it: a moment
 * later): stop only once the children have, or the terminal could pass a
 * line typed for the shell to a child still reading it.  A child that does
 * not stop (it handles SIGTSTP and goes on) is waited for a bounded while.
 * Then stop as a job does, by SIGTSTP's default action; return when
 * continued (the SIGCONT then waits in the signalfd and is forwarded like
 * any other). */
void spawn_tty_stop_self(const struct spawn_tty *t, const pid_t *pids, const int *done, int n)
{
	for (int i = 0; i < n; i++) {
		for (int tries = 0; !done[i] && tries < 400; tries++) {
			char st = proc_state(pids[i]);
			if (!st || st == 'T' || st == 't' || st == 'Z' || st == 'X')
				break;
			usleep(5000);
		}
	}
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGTSTP);
	struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
	sigaction(SIGTSTP, &dfl, &old);
	raise(SIGTSTP);                      /* pending: it is blocked */
	sigprocmask(SIG_UNBLOCK, &s, NULL);  /* delivered: we stop here */
	sigprocmask(SIG_BLOCK, &s, NULL);
	sigaction(SIGTSTP, &old, NULL);
}

void spawn_tty_end(struct spawn_tty *t)
{
	if (!t->active || !t->have_modes)
		return;
	/* Only from the foreground: a background job leaves the terminal to
	 * whoever has it (and would be stopped by SIGTTOU). */
	if (tcgetpgrp(0) == getpgrp())
		tcsetattr(0, TCSADRAIN, &t->modes);
	t->active = 0;
}
