/* The signal API, filtered so that the program never blocks, catches,
 * ignores, waits for or even sees libnuwa's signals (core/signals.c). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "retry.h"

REAL_DECL(int, sigaction, (int, const struct sigaction *, struct sigaction *));
REAL_DECL(int, sigprocmask, (int, const sigset_t *, sigset_t *));
REAL_DECL(int, pthread_sigmask, (int, const sigset_t *, sigset_t *));
REAL_DECL(int, sigsuspend, (const sigset_t *));
REAL_DECL(int, sigwait, (const sigset_t *, int *));
REAL_DECL(int, sigwaitinfo, (const sigset_t *, siginfo_t *));
REAL_DECL(int, sigtimedwait, (const sigset_t *, siginfo_t *, const struct timespec *));
REAL_DECL(int, signalfd, (int, const sigset_t *, int));
REAL_DECL(int, pause, (void));
REAL_DECL(int, sigpending, (sigset_t *));

static int is_park(int sig)
{
	return sig == nuwa_park_sig;
}

static int is_trigger(int sig)
{
	return sig == nuwa_trigger_sig && signals_trigger_is_ours();
}

/* The synchronous faults: never the park signal (a real-time one) nor a
 * trigger (core/config.c refuses them). */
static int is_fault(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
	       sig == SIGTRAP || sig == SIGABRT;
}

NUWA_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	/* A fault signal needs no configuration, so it does not initialise
	 * libnuwa: ASan's runtime, preloaded ahead of us, installs its
	 * SIGSEGV/SIGBUS/SIGFPE handlers through this wrapper from inside its
	 * own initialisation, when none of its interceptors may run (it
	 * CHECK-fails), and nuwa_config_load() calls some (strcat, getenv). */
	if (!is_fault(sig)) {
		nuwa_ensure_init();
		if (nuwa_inert)
			return REAL(sigaction)(sig, act, old);
		if (is_park(sig)) {
			errno = EINVAL;
			return -1;
		}
		if (is_trigger(sig))
			return signals_trigger_sigaction(act, old);
	}
	if (!act || nuwa_inert)
		return REAL(sigaction)(sig, act, old);
	/* The program's handlers must not block the park signal while they
	 * run (SIGRTMAX - 1: nuwa_park_sig, known before initialisation). */
	struct sigaction a = *act;
	sigdelset(&a.sa_mask, SIGRTMAX - 1);
	return REAL(sigaction)(sig, &a, old);
}

/* glibc's signal() reaches __sigaction internally, never our sigaction. */
NUWA_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	struct sigaction a, old;
	memset(&a, 0, sizeof a);
	a.sa_handler = h;
	a.sa_flags = SA_RESTART; /* BSD semantics, as glibc's signal() */
	sigemptyset(&a.sa_mask);
	if (sig > 0 && sig < _NSIG)
		sigaddset(&a.sa_mask, sig);
	if (sigaction(sig, &a, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

static int filtered_mask(int (*real)(int, const sigset_t *, sigset_t *), int how,
                         const sigset_t *set, sigset_t *old, int errno_style)
{
	nuwa_ensure_init();
	if (nuwa_inert)
		return real(how, set, old);
	int before = nuwa_self.app_blocks_trigger;
	sigset_t s;
	const sigset_t *p = NULL;
	if (set) {
		if (how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK) {
			if (errno_style)
				return EINVAL;
			errno = EINVAL;
			return -1;
		}
		sigmask_adjust(how, set, &s);
		p = &s;
	}
	int r = real(how, p, old);
	if (r == 0 && old) {
		int now = nuwa_self.app_blocks_trigger;
		nuwa_self.app_blocks_trigger = before;
		sigset_hide_nuwa(old);
		nuwa_self.app_blocks_trigger = now;
	}
	return r;
}

NUWA_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	return filtered_mask(REAL(sigprocmask), how, set, old, 0);
}

NUWA_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	return filtered_mask(REAL(pthread_sigmask), how, set, old, 1);
}

NUWA_EXPORT int sigpending(sigset_t *set)
{
	int r = REAL(sigpending)(set);
	if (r == 0 && !nuwa_inert) {
		sigdelset(set, nuwa_park_sig);
		if (signals_trigger_is_ours())
			sigdelset(set, nuwa_trigger_sig);
	}
	return r;
}

/* sigsuspend returns after any handler: when ours ran, suspend again. */
NUWA_EXPORT int sigsuspend(const sigset_t *mask)
{
	if (nuwa_inert)
		return REAL(sigsuspend)(mask);
	sigset_t m;
	int keep = nuwa_self.app_blocks_trigger;
	sigmask_adjust(SIG_SETMASK, mask, &m);
	nuwa_self.app_blocks_trigger = keep;
	return FP_RETRY(FP_SIGSUSPEND, REAL(sigsuspend)(&m));
}

NUWA_EXPORT int pause(void)
{
	return FP_RETRY(FP_PAUSE, REAL(pause)());
}

static const sigset_t *wait_set(const sigset_t *in, sigset_t *buf)
{
	if (nuwa_inert)
		return in;
	*buf = *in;
	sigset_strip_nuwa(buf);
	return buf;
}

NUWA_EXPORT int sigwait(const sigset_t *set, int *sig)
{
	sigset_t b;
	const sigset_t *p = wait_set(set, &b);
	unsigned s = fp_enter(FP_SIGWAIT);
	int r;
	/* sigwait returns the error number, and only EINVAL per POSIX; glibc
	 * loops on EINTR internally, but be exact anyway. */
	while ((r = REAL(sigwait)(p, sig)) == EINTR && fp_ours(s))
		s = nuwa_self.sigcount;
	fp_leave();
	return r;
}

NUWA_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	sigset_t b;
	const sigset_t *p = wait_set(set, &b);
	return FP_RETRY(FP_SIGWAIT, REAL(sigwaitinfo)(p, info));
}

NUWA_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *t)
{
	sigset_t b;
	const sigset_t *p = wait_set(set, &b);
	return FP_RETRY_TIMED(FP_SIGWAIT, t, REAL(sigtimedwait)(p, info, FP_LEFT));
}

NUWA_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	sigset_t b;
	return REAL(signalfd)(fd, wait_set(mask, &b), flags);
}
