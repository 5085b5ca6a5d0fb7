/* fdremap: give children their own copies of the channels a program uses
 * inside itself (pipes, socketpairs, eventfd, epoll, timerfd, signalfd,
 * inotify), with the same numbers, flags and pending contents.
 *
 * One small interface, called by core/ while every application thread is
 * parked (see docs/design.md):
 *
 *   parent:  fdremap_prepare()            discover + drain; parent refilled
 *            fork child 1..N
 *   child:   fdremap_child_setup()        rebuild on the same numbers + refill
 *   parent:  fdremap_finish()             freeze over: drop the snapshot
 */
#ifndef NUWA_FDREMAP_H
#define NUWA_FDREMAP_H

#include <stddef.h>
#include <sys/types.h>

#include "base.h"

int  fdremap_prepare(char *err, size_t errlen); /* 0 or -errno */
/* 0, or -errno (logged) when one of the program's own channels could not
 * be rebuilt or refilled: the child would share it with the template and
 * must not run. */
int  fdremap_child_setup(void);
void fdremap_finish(void);
/* Before fdremap_prepare(): a thread is parked inside the loader (file.c). */
void fdremap_loader_frozen(int yes);

/* Policy overrides: NUWA_FDS="5=share,7=recreate,9=close" and nuwa_fd_policy(). */
int fdremap_parse_spec(const char *spec, char *err, size_t errlen);
int fdremap_set_policy(int fd, int policy);

/* Hints from the interposed constructors of channels. */
void fdremap_note_pipe(const int fds[2], int flags);
void fdremap_note_socketpair(const int sv[2], int domain, int type);
void fdremap_note_inotify_watch(int ifd, int wd, const char *path, unsigned mask);
void fdremap_note_close(int fd);
void fdremap_note_close_range(unsigned first, unsigned last);

/* Child of an application fork(): only the forking thread survives, so a
 * hint lock held by another thread is released. */
void fdremap_after_app_fork(void);

/* One line per descriptor: "FD KIND POLICY DETAIL\n"; returns bytes needed. */
size_t fdremap_describe(char *buf, size_t len);

#endif
