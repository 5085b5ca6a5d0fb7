/* ctl_sys.h — raw system calls for the control socket code.
 *
 * Inside libnuwa, calling close(), accept4(), recvmsg() ... by name binds to
 * libnuwa's own interposed wrappers (they are exported and the library is not
 * linked -Bsymbolic).  Those wrappers mark freeze points and may park the
 * caller when a freeze is under way, and the close() wrapper updates the
 * descriptor registry: neither is right for the control thread's own
 * descriptors.  These helpers go straight to the kernel (errno set as usual
 * by glibc's syscall()). */
#ifndef NUWA_CTL_SYS_H
#define NUWA_CTL_SYS_H

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline int ctl_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static inline int ctl_accept4(int fd, int flags)
{
	return (int)syscall(SYS_accept4, fd, NULL, NULL, flags);
}

static inline ssize_t ctl_recvmsg(int fd, struct msghdr *m, int flags)
{
	return syscall(SYS_recvmsg, fd, m, flags);
}

static inline ssize_t ctl_sendmsg(int fd, const struct msghdr *m, int flags)
{
	return syscall(SYS_sendmsg, fd, m, flags);
}

static inline int ctl_connect(int fd, const struct sockaddr *a, socklen_t len)
{
	return (int)syscall(SYS_connect, fd, a, len);
}

static inline int ctl_poll(struct pollfd *pfd, unsigned n, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	return (int)syscall(SYS_ppoll, pfd, n, timeout_ms < 0 ? NULL : &ts, NULL, 0);
}

static inline int ctl_fcntl(int fd, int cmd, long arg)
{
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

#endif
