/* Raw system calls for fdremap.
 *
 * fdremap runs on libnuwa's control thread while every application thread is
 * parked, and in a child before any application thread runs again.  Nothing
 * here may go through a function that libnuwa interposes (read, write, close,
 * fcntl, recvmsg, ... are freeze points or bookkeeping wrappers that would try
 * to park or retry), and the hints are recorded from application threads
 * inside their wrappers, where errno must survive.  So every call is a raw
 * `syscall` instruction returning -errno, which touches neither errno nor any
 * libc lock. */
#ifndef NUWA_FDREMAP_SYS_H
#define NUWA_FDREMAP_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>

static inline long fdr_sc6(long n, long a, long b, long c, long d, long e, long f)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile ("syscall"
		: "=a"(r)
		: "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
		: "rcx", "r11", "memory");
	return r;
}
#define SC(n, a, b, c, d, e, f) fdr_sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

#define sys_read(fd, b, n)         SC(SYS_read, fd, b, n, 0, 0, 0)
#define sys_write(fd, b, n)        SC(SYS_write, fd, b, n, 0, 0, 0)
#define sys_close(fd)              SC(SYS_close, fd, 0, 0, 0, 0, 0)
#define sys_close_range(a, b, f)   SC(SYS_close_range, a, b, f, 0, 0, 0)
#define sys_dup3(a, b, f)          SC(SYS_dup3, a, b, f, 0, 0, 0)
#define sys_fcntl(fd, c, a)        SC(SYS_fcntl, fd, c, a, 0, 0, 0)
#define sys_ioctl(fd, c, a)        SC(SYS_ioctl, fd, c, a, 0, 0, 0)
#define sys_openat(d, p, f, m)     SC(SYS_openat, d, p, f, m, 0, 0)
#define sys_getdents64(fd, b, n)   SC(SYS_getdents64, fd, b, n, 0, 0, 0)
#define sys_readlinkat(d, p, b, n) SC(SYS_readlinkat, d, p, b, n, 0, 0)
#define sys_fstat(fd, st)          SC(SYS_fstat, fd, st, 0, 0, 0, 0)
#define sys_stat(p, st)            SC(SYS_newfstatat, AT_FDCWD, p, st, 0, 0, 0)
#define sys_lseek(fd, o, w)        SC(SYS_lseek, fd, o, w, 0, 0, 0)
#define sys_getcwd(b, n)           SC(SYS_getcwd, b, n, 0, 0, 0, 0)
#define sys_getpid()               SC(SYS_getpid, 0, 0, 0, 0, 0, 0)
#define sys_pipe2(p, f)            SC(SYS_pipe2, p, f, 0, 0, 0, 0)
#define sys_socket(d, t, p)        SC(SYS_socket, d, t, p, 0, 0, 0)
#define sys_socketpair(d, t, p, s) SC(SYS_socketpair, d, t, p, s, 0, 0)
#define sys_shutdown(fd, h)        SC(SYS_shutdown, fd, h, 0, 0, 0, 0)
#define sys_sendto(fd, b, n, f)    SC(SYS_sendto, fd, b, n, f, 0, 0)
#define sys_recvfrom(fd, b, n, f)  SC(SYS_recvfrom, fd, b, n, f, 0, 0)
#define sys_sendmsg(fd, m, f)      SC(SYS_sendmsg, fd, m, f, 0, 0, 0)
#define sys_recvmsg(fd, m, f)      SC(SYS_recvmsg, fd, m, f, 0, 0, 0)
#define sys_getsockopt(fd, l, o, v, n) SC(SYS_getsockopt, fd, l, o, v, n, 0)
#define sys_setsockopt(fd, l, o, v, n) SC(SYS_setsockopt, fd, l, o, v, n, 0)
#define sys_eventfd2(v, f)         SC(SYS_eventfd2, v, f, 0, 0, 0, 0)
#define sys_timerfd_create(c, f)   SC(SYS_timerfd_create, c, f, 0, 0, 0, 0)
#define sys_timerfd_settime(fd, f, n, o) SC(SYS_timerfd_settime, fd, f, n, o, 0, 0)
#define sys_timerfd_gettime(fd, c) SC(SYS_timerfd_gettime, fd, c, 0, 0, 0, 0)
#define sys_signalfd4(fd, m, f)    SC(SYS_signalfd4, fd, m, 8, f, 0, 0)
#define sys_epoll_create1(f)       SC(SYS_epoll_create1, f, 0, 0, 0, 0, 0)
#define sys_epoll_ctl(e, o, fd, ev) SC(SYS_epoll_ctl, e, o, fd, ev, 0, 0)
#define sys_inotify_init1(f)       SC(SYS_inotify_init1, f, 0, 0, 0, 0, 0)
#define sys_inotify_add_watch(fd, p, m) SC(SYS_inotify_add_watch, fd, p, m, 0, 0, 0)
#define sys_inotify_rm_watch(fd, w) SC(SYS_inotify_rm_watch, fd, w, 0, 0, 0, 0)
#define sys_kcmp(p1, p2, t, a, b)  SC(SYS_kcmp, p1, p2, t, a, b, 0)
#define sys_mmap(a, n, p, f)       SC(SYS_mmap, a, n, p, f, -1, 0)
#define sys_munmap(a, n)           SC(SYS_munmap, a, n, 0, 0, 0, 0)
#define sys_clock_gettime(c, t)    SC(SYS_clock_gettime, c, t, 0, 0, 0, 0)

#endif
