/* The kinds of descriptor and what fdremap does with each: one table of
 * operations per kind (struct fdr_kind_ops, fdr.h), each in the file of its
 * kind (pipe.c, sock.c, eventfd.c, timerfd.c, signalfd.c, epoll.c,
 * inotify.c, file.c), indexed here by enum fdr_kind.  The kinds that are
 * always shared, as fork() shares them, are defined here too.
 *
 * A descriptor's kind comes from its /proc/self/fd link ("pipe:[ino]",
 * "socket:[ino]", "anon_inode:[eventfd]", ...), else from the file type. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "fdr.h"

/* Other sockets (TCP, UDP, netlink, ...): connections to the world. */
const struct fdr_kind_ops fdr_kind_socket = { .name = "socket", .link = "socket:[", .unique_file = 1 };
/* Other anon-inode files (io_uring, pidfd, perf, bpf, userfaultfd, fanotify). */
const struct fdr_kind_ops fdr_kind_anon = { .name = "anon", .link = "anon_inode:" };
const struct fdr_kind_ops fdr_kind_other = { .name = "other" };

const struct fdr_kind_ops *const fdr_kinds[FDK__COUNT] = {
	[FDK_OTHER] = &fdr_kind_other,
	[FDK_FILE] = &fdr_kind_file,
	[FDK_DIR] = &fdr_kind_dir,
	[FDK_CHR] = &fdr_kind_chr,
	[FDK_BLK] = &fdr_kind_blk,
	[FDK_FIFO] = &fdr_kind_fifo,
	[FDK_PIPE] = &fdr_kind_pipe,
	[FDK_UNIX] = &fdr_kind_unix,         /* before FDK_SOCKET: same link */
	[FDK_SOCKET] = &fdr_kind_socket,
	[FDK_EVENTFD] = &fdr_kind_eventfd,
	[FDK_TIMERFD] = &fdr_kind_timerfd,
	[FDK_SIGNALFD] = &fdr_kind_signalfd,
	[FDK_EPOLL] = &fdr_kind_epoll,
	[FDK_INOTIFY] = &fdr_kind_inotify,
	[FDK_ANON] = &fdr_kind_anon,         /* after the named anon-inode kinds */
};

const char *fdr_kind_name(int k)
{
	return k >= 0 && k < FDK__COUNT ? fdr_kinds[k]->name : "?";
}

static int link_matches(const char *pattern, const char *link)
{
	size_t n = strlen(pattern);
	int prefix = n && (pattern[n - 1] == '[' || pattern[n - 1] == ':');
	return prefix ? !strncmp(link, pattern, n) : !strcmp(link, pattern);
}

/* The first kind, in table order, whose link matches (and whose test
 * passes); else the one of the file type; else "other". */
int fdr_classify(const char *link, unsigned mode, int fd)
{
	for (int k = 0; k < FDK__COUNT; k++) {
		const struct fdr_kind_ops *t = fdr_kinds[k];
		if (t->link && link_matches(t->link, link) && (!t->is || t->is(fd)))
			return k;
	}
	for (int k = 0; k < FDK__COUNT; k++)
		if (fdr_kinds[k]->mode && fdr_kinds[k]->mode == (mode & S_IFMT))
			return k;
	return FDK_OTHER;
}

void fdr_decide_own(struct fdr_snap *s, struct fdr_chan *c, int recreate, int fd)
{
	if (c->foreign && !recreate) {
		c->why = "also held by a child process";
		return;
	}
	c->action = FDA_REBUILD;
	c->why = recreate ? "own copy (policy)" : "internal";
}

size_t fdr_put(char *buf, size_t len, size_t at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(at < len ? buf + at : NULL, at < len ? len - at : 0, fmt, ap);
	va_end(ap);
	return at + (n > 0 ? (size_t)n : 0);
}
