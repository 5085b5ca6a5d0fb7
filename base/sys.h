/* Raw system calls: libnuwa's one way of calling the kernel for its own work.
 *
 * Inside libnuwa, calling close(), read(), accept4(), recvmsg() ... by name
 * binds to libnuwa's own interposed wrappers (they are exported and the
 * library is not linked -Bsymbolic): they mark freeze points and may park
 * the caller or retry, and close() updates the descriptor registry.  None of
 * that is right for the control thread, for a park handler, or for code
 * running while every application thread is parked (and possibly holding a
 * libc lock).  Hints are also recorded from application threads inside their
 * wrappers, where errno must survive.  So every call is a raw `syscall`
 * instruction (x86-64 ABI: number in rax, arguments in rdi rsi rdx r10 r8 r9,
 * rcx and r11 clobbered) returning -errno, which touches neither errno nor
 * any libc lock. */
#ifndef NUWA_BASE_SYS_H
#define NUWA_BASE_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>

static inline long nuwa_sc6(long n, long a, long b, long c, long d, long e, long f)
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
#define SC(n, a, b, c, d, e, f) nuwa_sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

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
#define sys_mremap(a, o, n, f)     SC(SYS_mremap, a, o, n, f, 0, 0)
#define sys_madvise(a, n, adv)     SC(SYS_madvise, a, n, adv, 0, 0, 0)
#define sys_sigtimedwait(s, i, t)  SC(SYS_rt_sigtimedwait, s, i, t, 8, 0, 0)
#define sys_timer_create(c, ev, id) SC(SYS_timer_create, c, ev, id, 0, 0, 0)
#define sys_timer_delete(id)       SC(SYS_timer_delete, id, 0, 0, 0, 0, 0)
#define sys_timer_gettime(id, v)   SC(SYS_timer_gettime, id, v, 0, 0, 0, 0)
#define sys_timer_settime(id, f, v, o) SC(SYS_timer_settime, id, f, v, o, 0, 0)
#define sys_getitimer(w, v)        SC(SYS_getitimer, w, v, 0, 0, 0, 0)
#define sys_setitimer(w, v, o)     SC(SYS_setitimer, w, v, o, 0, 0, 0)
#define sys_clock_gettime(c, t)    SC(SYS_clock_gettime, c, t, 0, 0, 0, 0)
#define sys_gettid()               SC(SYS_gettid, 0, 0, 0, 0, 0, 0)
#define sys_tgkill(p, t, s)        SC(SYS_tgkill, p, t, s, 0, 0, 0)
#define sys_ppoll(f, n, t)         SC(SYS_ppoll, f, n, t, 0, 8, 0)
#define sys_accept4(fd, f)         SC(SYS_accept4, fd, 0, 0, f, 0, 0)
#define sys_connect(fd, a, l)      SC(SYS_connect, fd, a, l, 0, 0, 0)
#define sys_sigprocmask(h, s, o)   SC(SYS_rt_sigprocmask, h, s, o, 8, 0, 0)
/* the kernel's struct sigaction (struct nuwa_ksigaction), 8-byte mask */
#define sys_rt_sigaction(sig, a, o) SC(SYS_rt_sigaction, sig, a, o, 8, 0, 0)
#define sys_prctl(o, a)            SC(SYS_prctl, o, a, 0, 0, 0, 0)
#define sys_getppid()              SC(SYS_getppid, 0, 0, 0, 0, 0, 0)
#define sys_waitid(w, id, si, o)   SC(SYS_waitid, w, id, si, o, 0, 0)
#define sys_arch_prctl(c, a)       SC(SYS_arch_prctl, c, a, 0, 0, 0, 0)
#define sys_prctl(o, a)            SC(SYS_prctl, o, a, 0, 0, 0, 0)
#define sys_nanosleep(r, m)        SC(SYS_nanosleep, r, m, 0, 0, 0, 0)
#define sys_set_tid_address(p)     SC(SYS_set_tid_address, p, 0, 0, 0, 0, 0)
#define sys_set_robust_list(h, n)  SC(SYS_set_robust_list, h, n, 0, 0, 0, 0)
#define sys_get_robust_list(t, h, n) SC(SYS_get_robust_list, t, h, n, 0, 0, 0)
#define sys_rseq(a, n, f, sig)     SC(SYS_rseq, a, n, f, sig, 0, 0)
#define sys_futex(a, op, v, t)     SC(SYS_futex, a, op, v, t, 0, 0)
#define sys_exit_group(c)          SC(SYS_exit_group, c, 0, 0, 0, 0, 0)
/* clone without a new stack: a fork (the child returns 0 on this stack) */
#define sys_clone_fork(f, pidfdp)  SC(SYS_clone, f, 0, pidfdp, 0, 0, 0)

/* A wait of timeout_ms (-1: forever) on n descriptors, for ppoll. */
#define NUWA_MS_TS(ms) (&(struct timespec){ (ms) / 1000, ((ms) % 1000) * 1000000L })

#endif
