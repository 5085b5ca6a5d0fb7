/* Readiness waits with timeouts: poll, ppoll, select, pselect, epoll_wait,
 * epoll_pwait, epoll_pwait2.  These return EINTR after any signal handler,
 * whatever SA_RESTART says (signal(7)), so an interruption by libnuwa is
 * retried with the time that remains until the deadline taken at entry —
 * in a child too, where the deadline may already have passed. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "retry.h"

REAL_DECL(int, poll, (struct pollfd *, nfds_t, int));
REAL_DECL(int, ppoll, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *));
REAL_DECL(int, select, (int, fd_set *, fd_set *, fd_set *, struct timeval *));
REAL_DECL(int, pselect, (int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *));
REAL_DECL(int, epoll_wait, (int, struct epoll_event *, int, int));
REAL_DECL(int, epoll_pwait, (int, struct epoll_event *, int, int, const sigset_t *));
REAL_DECL(int, epoll_pwait2, (int, struct epoll_event *, int, const struct timespec *, const sigset_t *));

/* A mask installed for the duration of the call: the park signal must stay
 * deliverable, the trigger must stay with the control thread. */
const sigset_t *fp_wait_mask(const sigset_t *in, sigset_t *buf)
{
	if (!in)
		return NULL;
	int keep = nuwa_self.app_blocks_trigger;
	sigmask_adjust(SIG_SETMASK, in, buf);
	nuwa_self.app_blocks_trigger = keep;
	return buf;
}

NUWA_EXPORT int poll(struct pollfd *f, nfds_t n, int timeout)
{
	return FP_RETRY_MS(FP_POLL, timeout, REAL(poll)(f, n, timeout));
}

NUWA_EXPORT int ppoll(struct pollfd *f, nfds_t n, const struct timespec *t, const sigset_t *mask)
{
	sigset_t mbuf;
	const sigset_t *m = fp_wait_mask(mask, &mbuf);
	return FP_RETRY_TIMED(FP_PPOLL, t, REAL(ppoll)(f, n, FP_LEFT, m));
}

NUWA_EXPORT int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	unsigned s = fp_enter(FP_SELECT);
	struct timespec dl;
	if (tv)
		dl = ts_add(ts_now(CLOCK_MONOTONIC),
		            (struct timespec){ tv->tv_sec, tv->tv_usec * 1000L });
	int r;
	/* On EINTR the kernel leaves the fd sets untouched (fs/select.c
	 * core_sys_select), so they can be passed again as they are. */
	while ((r = REAL(select)(nfds, rd, wr, ex, tv)) < 0 && errno == EINTR && fp_ours(s)) {
		s = nuwa_self.sigcount;
		if (tv) {
			struct timespec left = ts_sub(dl, ts_now(CLOCK_MONOTONIC));
			tv->tv_sec = left.tv_sec;
			tv->tv_usec = left.tv_nsec / 1000;
		}
	}
	fp_leave();
	return r;
}

NUWA_EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *t,
                        const sigset_t *mask)
{
	sigset_t mbuf;
	const sigset_t *m = fp_wait_mask(mask, &mbuf);
	return FP_RETRY_TIMED(FP_PSELECT, t, REAL(pselect)(nfds, rd, wr, ex, FP_LEFT, m));
}

NUWA_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
	return FP_RETRY_MS(FP_EPOLL_WAIT, timeout, REAL(epoll_wait)(ep, ev, max, timeout));
}

NUWA_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
	sigset_t mbuf;
	const sigset_t *m = fp_wait_mask(mask, &mbuf);
	return FP_RETRY_MS(FP_EPOLL_PWAIT, timeout, REAL(epoll_pwait)(ep, ev, max, timeout, m));
}

NUWA_EXPORT int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *t,
                             const sigset_t *mask)
{
	sigset_t mbuf;
	const sigset_t *m = fp_wait_mask(mask, &mbuf);
	return FP_RETRY_TIMED(FP_EPOLL_PWAIT, t, REAL(epoll_pwait2)(ep, ev, max, FP_LEFT, m));
}
