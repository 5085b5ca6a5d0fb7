/* signals blockall|ownusr2 TRIGGER_SIGNO|signalfd — programs that do their
 * own thing with signals.  libnuwa's signals must stay invisible: every
 * catchable signal except the trigger (and the ones the variant expects)
 * gets a handler that counts, and any count at the end is a failure.
 *
 *  blockall  every thread, main included, blocks every signal; the masks
 *            must read back unchanged and nothing may be left pending.
 *  ownusr2   the program catches SIGUSR2 itself ("GOT_USR2 pid=P" on each
 *            delivery); the harness runs it with another NUWA_SIGNAL (or
 *            the default, to see the conflict reported) and sends SIGUSR2
 *            to each process; each must get it at least once.
 *  signalfd  all signals blocked, one signalfd for all of them, read by a
 *            thread: SIGUSR1 from the harness must arrive ("GOT sig=10
 *            pid=P"), libnuwa's signals never; SIGURG from main ends it.
 *
 * An announcer thread prints "CLONED pid=P" in each clone so the harness
 * can signal every process.
 */
#include "scn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

enum { BLOCKALL, OWNUSR2, SIGNALFD } variant;
static int trigger_sig = SIGUSR2;
static volatile int unexpected[NSIG];
static volatile int usr2_count, usr1_count;
static volatile int eof_seen;
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go;

static void on_unexpected(int s) { unexpected[s]++; }

/* async-signal-safe: no stdio, one write */
static void on_usr2(int s)
{
	char buf[48] = "GOT_USR2 pid=";
	char digits[16];
	int n = 0, len = 13;
	unsigned p = (unsigned)getpid();
	(void)s;
	do digits[n++] = (char)('0' + p % 10); while ((p /= 10));
	while (n)
		buf[len++] = digits[--n];
	buf[len++] = '\n';
	usr2_count++;
	if (write(1, buf, (size_t)len) < 0)
		unexpected[0]++;
}

static int skipped(int s)
{
	switch (s) {
	case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL:
	case SIGABRT: case SIGTRAP: case SIGSYS: case SIGCHLD: case SIGCONT: case SIGPIPE:
		return 1;
	}
	if (s == trigger_sig || (s > 31 && s < SIGRTMIN))   /* glibc's own */
		return 1;
	if (variant == OWNUSR2 && s == SIGUSR2)
		return 1;
	if (variant == SIGNALFD && (s == SIGUSR1 || s == SIGURG))
		return 1;
	return 0;
}

static void install_handlers(void)
{
	for (int s = 1; s < NSIG; s++) {
		if (skipped(s))
			continue;
		struct sigaction sa = { .sa_handler = on_unexpected };
		sigaction(s, &sa, NULL);   /* may fail for libnuwa's own: fine */
	}
	if (variant == OWNUSR2) {
		struct sigaction sa = { .sa_handler = on_usr2, .sa_flags = SA_RESTART };
		if (sigaction(SIGUSR2, &sa, NULL))
			scn_fail("sigaction(SIGUSR2): %s", strerror(errno));
	}
}

static void *announcer(void *a)
{
	(void)a;
	pid_t last = getpid();
	while (!eof_seen) {
		scn_sleep_ms(20);
		if (getpid() != last) {
			last = getpid();
			scn_out("CLONED pid=%d\n", (int)last);
		}
	}
	return NULL;
}

static void check_mask(const sigset_t *want, const char *who)
{
	sigset_t now, pend;
	pthread_sigmask(SIG_BLOCK, NULL, &now);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&now, s) != sigismember(want, s)) {
			scn_fail("%s: signal %d %sblocked now", who, s, sigismember(&now, s) ? "" : "not ");
			break;
		}
	sigpending(&pend);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&pend, s)) {
			scn_fail("%s: signal %d is pending", who, s);
			break;
		}
}

static void *worker(void *arg)
{
	int kind = (int)(intptr_t)arg;
	sigset_t all, mine;
	if (variant == BLOCKALL) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
	}
	pthread_sigmask(SIG_BLOCK, NULL, &mine);
	if (kind == 0) {
		pthread_mutex_lock(&mx);
		while (!go)
			pthread_cond_wait(&cv, &mx);
		pthread_mutex_unlock(&mx);
	} else if (kind == 1) {
		while (!eof_seen)
			scn_sleep_ms(10);
	} else {   /* computes for a while, then idles */
		uint64_t x = 1;
		int64_t end = scn_mono_ns() + 1500000000;
		while (!eof_seen && scn_mono_ns() < end)
			x = scn_mix_n(x, 10000);
		while (!eof_seen)
			scn_sleep_ms(10);
		if (x == 0)
			scn_fail("impossible");
	}
	check_mask(&mine, "worker");
	return NULL;
}

static void *sfd_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(fd, &si, sizeof si);
		if (n != sizeof si) {
			scn_fail("read(signalfd) returned %zd: %s", n, strerror(errno));
			break;
		}
		if (si.ssi_signo == SIGURG)
			break;
		if (si.ssi_signo == SIGUSR1) {
			usr1_count++;
			scn_out("GOT sig=%d pid=%d\n", SIGUSR1, (int)getpid());
		} else {
			scn_fail("signalfd delivered signal %u", si.ssi_signo);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	scn_init();
	const char *v = argc > 1 ? argv[1] : "blockall";
	variant = !strcmp(v, "ownusr2") ? OWNUSR2 : !strcmp(v, "signalfd") ? SIGNALFD : BLOCKALL;
	if (variant == OWNUSR2 && argc > 2)
		trigger_sig = atoi(argv[2]);
	install_handlers();
	sigset_t all, main_mask;
	sigfillset(&all);
	int sfd = -1;
	if (variant != OWNUSR2)
		sigprocmask(SIG_SETMASK, &all, NULL);
	if (variant == SIGNALFD) {
		sfd = signalfd(-1, &all, SFD_CLOEXEC);
		if (sfd < 0)
			scn_fail("signalfd: %s", strerror(errno));
	}
	sigprocmask(SIG_BLOCK, NULL, &main_mask);
	pthread_t ann = scn_thread(announcer, NULL);
	pthread_t w[3], rd = 0;
	for (int i = 0; i < 3; i++)
		w[i] = scn_thread(worker, (void *)(intptr_t)i);
	if (sfd >= 0)
		rd = scn_thread(sfd_reader, (void *)(intptr_t)sfd);
	scn_sleep_ms(50);
	scn_ready();

	scn_wait_eof();
	scn_watchdog(20);
	eof_seen = 1;
	pthread_mutex_lock(&mx);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	for (int i = 0; i < 3; i++)
		scn_join(w[i], "joining workers");
	scn_join(ann, "joining the announcer");
	if (sfd >= 0) {
		kill(getpid(), SIGURG);
		scn_join(rd, "joining the signalfd reader");
		if (usr1_count < 1)
			scn_fail("the signalfd never delivered SIGUSR1");
	}
	check_mask(&main_mask, "main");
	if (variant == OWNUSR2 && usr2_count < 1)
		scn_fail("the program's SIGUSR2 handler never ran");
	for (int s = 0; s < NSIG; s++)
		if (unexpected[s])
			scn_fail("signal %d reached the program's handler %d time(s)", s, unexpected[s]);
	return scn_finish();
}
