/* mx_sig — signal state across the freeze: handlers and their flags, an
 * ignored signal, per-thread masks, pending signals, an alternate signal
 * stack installed and one in use (a handler blocked on it when frozen), and
 * queued real-time signals after the resume. */
#include "mx.h"

#include <fcntl.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SIG_PENDT (SIGRTMIN + 7)
#define SIG_ALT   (SIGRTMIN + 9)
#define SIG_Q     (SIGRTMIN + 10)

/* ---- a handler with SA_SIGINFO, SA_RESTART and a mask ------------------------ */
static volatile sig_atomic_t info_count;
static volatile pid_t info_pid;
static void info_handler(int sig, siginfo_t *si, void *uc) { info_count++; info_pid = si->si_pid; }
static void handler_setup(mx_case *c)
{
	struct sigaction sa = { .sa_sigaction = info_handler, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGWINCH);
	MUST(sigaction(SIGUSR1, &sa, NULL) == 0);
}
static void handler_verify(mx_case *c)
{
	struct sigaction sa;
	sigaction(SIGUSR1, NULL, &sa);
	CHECK(c, sa.sa_sigaction == info_handler && (sa.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART) &&
	      sigismember(&sa.sa_mask, SIGWINCH), "the handler, its flags or its mask changed");
	CHECK(c, info_count == 0, "the handler ran %d times before any signal", (int)info_count);
	raise(SIGUSR1);
	CHECK(c, info_count == 1 && info_pid == getpid(), "handler ran %d times, si_pid %d (want 1, %d)",
	      (int)info_count, (int)info_pid, (int)getpid());
}

/* ---- SIGPIPE ignored ------------------------------------------------------------ */
static int ig_pipe[2];
static void ignored_setup(mx_case *c)
{
	MUST(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
	MUST(pipe2(ig_pipe, O_CLOEXEC) == 0);
	close(ig_pipe[0]);
}
static void ignored_verify(mx_case *c)
{
	struct sigaction sa;
	sigaction(SIGPIPE, NULL, &sa);
	CHECK(c, sa.sa_handler == SIG_IGN, "SIGPIPE is no longer ignored");
	CHECK(c, write(ig_pipe[1], "x", 1) == -1 && errno == EPIPE, "a write to a closed pipe: %s", strerror(errno));
}

/* ---- three threads, three masks ------------------------------------------------ */
static sem_t mask_go;
static pthread_t mask_t[3];
static int mask_sigs[3][2] = { { SIGUSR1, SIGHUP }, { SIGWINCH, 0 }, { SIGTERM, SIGQUIT } };
static atomic_int mask_bad;
static void *mask_thread(void *a)
{
	int i = (int)(intptr_t)a;
	sigset_t s, now;
	sigemptyset(&s);
	sigaddset(&s, mask_sigs[i][0]);
	sigaddset(&s, mask_sigs[i][1]);
	pthread_sigmask(SIG_SETMASK, &s, NULL);
	sem_wait(&mask_go);
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	for (int sig = 1; sig < SIGRTMAX; sig++)
		if (sigismember(&now, sig) != sigismember(&s, sig))
			atomic_fetch_add(&mask_bad, 1);
	return a;
}
static void masks_setup(mx_case *c)
{
	mask_sigs[1][1] = SIGRTMIN + 11;
	sem_init(&mask_go, 0, 0);
	for (int i = 0; i < 3; i++)
		mask_t[i] = scn_thread(mask_thread, (void *)(intptr_t)i);
	scn_sleep_ms(30);
}
static void masks_verify(mx_case *c)
{
	for (int i = 0; i < 3; i++)
		sem_post(&mask_go);
	for (int i = 0; i < 3; i++)
		scn_join(mask_t[i], "mask thread");
	CHECK(c, atomic_load(&mask_bad) == 0, "%d signals differ in the threads' masks", atomic_load(&mask_bad));
}

/* ---- two queued real-time signals pending on a thread --------------------------
 * Pending signals are per task and fork() copies none (docs/limits.md): the
 * original's thread takes both, in order, with their values; a child's none. */
static sem_t pend_go;
static pthread_t pend_t;
static int pend_n, pend_v[4];
static void *pend_thread(void *a)
{
	sem_wait(&pend_go);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIG_PENDT);
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	while (pend_n < 4 && sigtimedwait(&s, &si, &zero) == SIG_PENDT)
		pend_v[pend_n++] = si.si_value.sival_int;
	return a;
}
static void pending_setup(mx_case *c)
{
	sigset_t s, old;
	sigemptyset(&s);
	sigaddset(&s, SIG_PENDT);
	pthread_sigmask(SIG_BLOCK, &s, &old);
	sem_init(&pend_go, 0, 0);
	pend_t = scn_thread(pend_thread, NULL);   /* inherits the mask */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	MUST(pthread_sigqueue(pend_t, SIG_PENDT, (union sigval){ .sival_int = 101 }) == 0);
	MUST(pthread_sigqueue(pend_t, SIG_PENDT, (union sigval){ .sival_int = 102 }) == 0);
}
static void pending_verify(mx_case *c)
{
	sem_post(&pend_go);
	scn_join(pend_t, "pending thread");
	if (mx_child())
		CHECK(c, pend_n == 0, "a child's thread got %d signals pending in the template", pend_n);
	else
		CHECK(c, pend_n == 2 && pend_v[0] == 101 && pend_v[1] == 102,
		      "%d pending signals (values %d, %d), want 101 then 102", pend_n, pend_v[0], pend_v[1]);
}

/* ---- an alternate signal stack: installed, and in use when frozen ---------------- */
static char alt_stack[3][65536] __attribute__((aligned(16)));
static int alt_pipe[2];
static sem_t alt_go;
static pthread_t alt_t[2];
static volatile int alt_on[2], alt_inrange[2], alt_flags[2], alt_entered[2];
static __thread int alt_idx;
static void alt_handler(int sig)
{
	int i = alt_idx, local;
	stack_t ss;
	sigaltstack(NULL, &ss);
	alt_flags[i] = ss.ss_flags;
	alt_inrange[i] = (char *)&local >= alt_stack[i] && (char *)&local < alt_stack[i] + sizeof alt_stack[i];
	alt_entered[i] = 1;
	if (i == 1) {   /* in use: blocked in read() on the alternate stack */
		char b;
		while (read(alt_pipe[0], &b, 1) < 0 && errno == EINTR)
			;
	}
	alt_on[i]++;
}
static void *alt_thread(void *a)
{
	alt_idx = (int)(intptr_t)a;
	stack_t ss = { .ss_sp = alt_stack[alt_idx], .ss_size = sizeof alt_stack[alt_idx] };
	if (sigaltstack(&ss, NULL) != 0)
		abort();
	if (alt_idx == 1)
		raise(SIG_ALT);   /* the handler blocks until main writes */
	sem_wait(&alt_go);
	if (alt_idx == 0)
		raise(SIG_ALT);
	return a;
}
static void alt_setup(mx_case *c)
{
	struct sigaction sa = { .sa_handler = alt_handler, .sa_flags = SA_ONSTACK };
	sigemptyset(&sa.sa_mask);
	MUST(sigaction(SIG_ALT, &sa, NULL) == 0);
	MUST(pipe2(alt_pipe, O_CLOEXEC) == 0);
	sem_init(&alt_go, 0, 0);
	alt_t[0] = scn_thread(alt_thread, (void *)0);
	alt_t[1] = scn_thread(alt_thread, (void *)1);
	while (!alt_entered[1])
		scn_sleep_ms(5);
	scn_sleep_ms(20);
}
static void alt_installed_verify(mx_case *c)
{
	sem_post(&alt_go);
	sem_post(&alt_go);
	scn_join(alt_t[0], "sigaltstack thread");
	CHECK(c, alt_on[0] == 1 && alt_inrange[0] && (alt_flags[0] & SS_ONSTACK),
	      "the handler ran %d times, on the alternate stack: %d, SS_ONSTACK: %d", alt_on[0], alt_inrange[0],
	      !!(alt_flags[0] & SS_ONSTACK));
}
static void alt_in_use_verify(mx_case *c)
{
	CHECK(c, alt_on[1] == 0 && alt_entered[1], "the handler was not blocked on the alternate stack");
	CHECK(c, write(alt_pipe[1], "g", 1) == 1, "write");
	sem_post(&alt_go);
	scn_join(alt_t[1], "sigaltstack-in-use thread");
	CHECK(c, alt_on[1] == 1 && alt_inrange[1] && (alt_flags[1] & SS_ONSTACK),
	      "the frozen handler finished %d times, on the alternate stack: %d", alt_on[1], alt_inrange[1]);
}

/* ---- after the resume: 10 real-time signals queued to main and taken in order ----- */
static void rtqueue_verify(mx_case *c)
{
	sigset_t s, old;
	sigemptyset(&s);
	sigaddset(&s, SIG_Q);
	pthread_sigmask(SIG_BLOCK, &s, &old);
	for (int i = 0; i < 10; i++)
		pthread_sigqueue(pthread_self(), SIG_Q, (union sigval){ .sival_int = i });
	int n = 0, order = 1;
	siginfo_t si;
	struct timespec t = { 1, 0 };
	while (n < 10 && sigtimedwait(&s, &si, &t) == SIG_Q) {
		order &= si.si_value.sival_int == n && si.si_pid == getpid();
		n++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	CHECK(c, n == 10 && order, "%d of 10 queued signals, in order: %d", n, order);
}

static mx_case cases[] = {
	{ "sig-handler-siginfo", "sig", handler_setup, handler_verify },
	{ "sig-ignored", "sig", ignored_setup, ignored_verify },
	{ "sig-thread-masks", "sig", masks_setup, masks_verify },
	{ "sig-pending-queued", "sig", pending_setup, pending_verify },
	{ "sigaltstack-installed", "sig", alt_setup, alt_installed_verify },
	{ "sigaltstack-in-use", "sig", alt_setup, alt_in_use_verify },
	{ "sig-rt-queue-after-resume", "sig", NULL, rtqueue_verify },
};

int main(int argc, char **argv)
{
	return mx_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
