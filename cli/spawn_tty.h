/* spawn_tty.h — nuwa spawn --stdio --wait from a terminal (spawn_tty.c). */
#ifndef NUWA_CLI_SPAWN_TTY_H
#define NUWA_CLI_SPAWN_TTY_H

#include <signal.h>
#include <sys/types.h>
#include <termios.h>

struct spawn_tty {
	int active;           /* stdin is a terminal */
	int join;             /* the child joins our process group (same session) */
	int have_modes;
	struct termios modes; /* the terminal's, before the spawn */
};

/* Decide how the child relates to the terminal; returns the request's
 * CTL_F_PGRP value (spawnopts.h). */
int  spawn_tty_begin(struct spawn_tty *t, pid_t template_pid);
/* Add the signals nuwa must catch (signalfd) while it waits. */
void spawn_tty_sigset(const struct spawn_tty *t, sigset_t *set);
/* Forward signal sig (si_code code) to the children? */
int  spawn_tty_forward(const struct spawn_tty *t, int sig, int code);
/* After forwarding SIGTSTP when not joined: once the children (pids[i]
 * with !done[i]) have stopped, stop until continued. */
void spawn_tty_stop_self(const struct spawn_tty *t, const pid_t *pids, const int *done, int n);
/* The child is gone: the terminal's modes back. */
void spawn_tty_end(struct spawn_tty *t);

#endif
