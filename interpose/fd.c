/* Descriptor wrappers: hints for fdremap (which pipes and socketpairs were
 * made here, the path behind each inotify watch) and protection of
 * libnuwa's own descriptors against programs that close every descriptor
 * above 2 at start-up (a close() loop, close_range(), closefrom()). */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include "fdremap.h"
#include "nuwa_int.h"

REAL_DECL(int, pipe, (int[2]));
REAL_DECL(int, pipe2, (int[2], int));
REAL_DECL(int, socketpair, (int, int, int, int[2]));
REAL_DECL(int, inotify_add_watch, (int, const char *, uint32_t));
REAL_DECL(int, close, (int));
REAL_DECL(int, close_range, (unsigned, unsigned, int));

NUWA_EXPORT int pipe(int fds[2])
{
	int r = REAL(pipe)(fds);
	if (r == 0)
		fdremap_note_pipe(fds, 0);
	return r;
}

NUWA_EXPORT int pipe2(int fds[2], int flags)
{
	int r = REAL(pipe2)(fds, flags);
	if (r == 0)
		fdremap_note_pipe(fds, flags);
	return r;
}

NUWA_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	int r = REAL(socketpair)(domain, type, protocol, sv);
	if (r == 0)
		fdremap_note_socketpair(sv, domain, type);
	return r;
}

NUWA_EXPORT int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	int wd = REAL(inotify_add_watch)(fd, path, mask);
	if (wd >= 0) {
		int e = errno;
		fdremap_note_inotify_watch(fd, wd, path, mask);
		errno = e;
	}
	return wd;
}

/* close() of one of libnuwa's descriptors pretends success: the program
 * believes it closed something it never opened, which is what it wanted. */
NUWA_EXPORT int close(int fd)
{
	if (unlikely(nuwa_is_own_fd(fd)))
		return 0;
	fdremap_note_close(fd);
	return REAL(close)(fd);
}

/* Close [first, last] except libnuwa's descriptors: the real call on each
 * gap between them.  Flags apply to each part (CLOSE_RANGE_UNSHARE
 * unshares on the first, CLOSE_RANGE_CLOEXEC marks instead of closing). */
NUWA_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (first > last) {
		errno = EINVAL;
		return -1;
	}
	int own[128], n = nuwa_own_fds(own, 128);
	/* sort the few own descriptors */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && own[j - 1] > own[j]; j--) {
			int t = own[j]; own[j] = own[j - 1]; own[j - 1] = t;
		}
	unsigned lo = first;
	for (int i = 0; i < n && lo <= last; i++) {
		unsigned o = (unsigned)own[i];
		if (o < lo || o > last)
			continue;
		if (o > lo && REAL(close_range)(lo, o - 1, flags) < 0)
			return -1;
		if (o == UINT32_MAX)
			return 0;
		lo = o + 1;
	}
	if (lo <= last && REAL(close_range)(lo, last, flags) < 0)
		return -1;
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		fdremap_note_close_range(first, last);
	return 0;
}

/* glibc's closefrom() calls close_range through a hidden alias, so it is
 * wrapped itself; like glibc's it cannot fail (it aborts if nothing works). */
NUWA_EXPORT void closefrom(int lowfd)
{
	unsigned lo = lowfd < 0 ? 0 : (unsigned)lowfd;
	int e = errno;
	if (close_range(lo, ~0u, 0) < 0) {
		/* no close_range (Linux < 5.9): close what /proc lists */
		int own[128], n = nuwa_own_fds(own, 128);
		for (int fd = (int)lo; fd < 65536; fd++) {
			int mine = 0;
			for (int i = 0; i < n && !mine; i++)
				mine = own[i] == fd;
			if (!mine)
				REAL(close)(fd);
		}
		fdremap_note_close_range(lo, ~0u);
	}
	errno = e;
}
