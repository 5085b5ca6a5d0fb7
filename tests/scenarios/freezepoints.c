/* freezepoints — one thread blocked in each freeze point of DESIGN.md §2.
 *
 * Every thread is blocked before READY and stays blocked across the
 * triggers.  After EOF on stdin each process (parent and clones alike) wakes
 * its own threads: the stdin-based waiters see EOF by themselves, main sets
 * the condition, unlocks the mutexes and rwlock it holds, posts the
 * semaphores, shuts the socketpairs down, connects to the listener, drops
 * its flock, sends the signals; the lock-holding helper process exits at EOF,
 * which ends the waitpid and fcntl waits.  Every call must return what it
 * returns without libnuwa: no EINTR, no early or spurious return.
 */
#include "freezepoints.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define NFP nfp

static struct sockaddr_un listen_addr;
static socklen_t listen_len;
static int flock_main_fd;

static void *fp_thread(void *arg)
{
	struct fp *f = arg;
	f->fn(f);
	f->done = 1;
	return NULL;
}

static struct fp *find(const char *name)
{
	for (int i = 0; i < NFP; i++)
		if (!strcmp(fps[i].name, name))
			return &fps[i];
	abort();
}

/* Waits that only this process's main thread can end (the others end on
 * shared events: stdin EOF, shared sockets and locks, sleeps). */
static int woken_by_main(const char *name)
{
	static const char *pfx[] = { "pthread_cond", "pthread_mutex", "pthread_rwlock",
				     "sem_", "pause", "sig" };
	for (size_t i = 0; i < sizeof pfx / sizeof pfx[0]; i++)
		if (!strncmp(name, pfx[i], strlen(pfx[i])))
			return 1;
	return 0;
}

/* Forked before the threads: holds a POSIX lock on lockpath until EOF. */
static void start_helper(void)
{
	int ready[2];
	if (pipe(ready) != 0)
		abort();
	helper = fork();
	if (helper == 0) {
		int fd = open(lockpath, O_RDWR);
		struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		char c;
		if (fd < 0 || fcntl(fd, F_SETLK, &l) != 0)
			_exit(5);
		if (write(ready[1], "r", 1) != 1)
			_exit(6);
		while (read(0, &c, 1) > 0)
			;
		_exit(42);
	}
	char c;
	close(ready[1]);
	if (helper < 0 || read(ready[0], &c, 1) != 1) {
		scn_out("RESULT pid=%d clone=0 FAIL lock helper did not start\n", (int)getpid());
		exit(2);
	}
	close(ready[0]);
}

static void setup(void)
{
	snprintf(lockpath, sizeof lockpath, "/tmp/nuwa-scn-fp-lock-%d", (int)getpid());
	snprintf(flockpath, sizeof flockpath, "/tmp/nuwa-scn-fp-flock-%d", (int)getpid());
	int fd = open(lockpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	close(fd);
	flock_main_fd = open(flockpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || flock_main_fd < 0 || flock(flock_main_fd, LOCK_EX) != 0)
		abort();
	start_helper();

	sem_init(&sem_a, 0, 0);
	sem_init(&sem_b, 0, 0);
	sem_init(&sem_c, 0, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp_recv) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp_recvfrom) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp_recvmsg))
		abort();
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&listen_addr, 0, sizeof listen_addr);
	listen_addr.sun_family = AF_UNIX;
	int n = snprintf(listen_addr.sun_path + 1, sizeof listen_addr.sun_path - 1,
			 "nuwa-scn-fp-%d", (int)getpid());
	listen_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	if (bind(listen_fd, (struct sockaddr *)&listen_addr, listen_len) ||
	    listen(listen_fd, 64))
		abort();

	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	/* Blocked everywhere: delivered only where a thread waits for them. */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIG_WI);
	sigaddset(&s, SIG_TW);
	sigaddset(&s, SIG_W);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	if (pthread_mutex_lock(&held_mx) || pthread_mutex_lock(&held_tmx) ||
	    pthread_rwlock_wrlock(&held_rw))
		abort();
}

static void wake_all(void)
{
	pthread_mutex_lock(&go_mx);
	go = 1;
	pthread_cond_broadcast(&go_cv);
	pthread_mutex_unlock(&go_mx);
	stop_sleepers = 1;
	int e;
	if ((e = pthread_mutex_unlock(&held_mx)) || (e = pthread_mutex_unlock(&held_tmx)))
		scn_fail("main: unlocking its mutexes: %s", strerror(e));
	if ((e = pthread_rwlock_unlock(&held_rw)))
		scn_fail("main: unlocking its write-locked rwlock: %s", strerror(e));
	sem_post(&sem_a);
	sem_post(&sem_b);
	sem_post(&sem_c);
	shutdown(sp_recv[1], SHUT_WR);
	shutdown(sp_recvfrom[1], SHUT_WR);
	shutdown(sp_recvmsg[1], SHUT_WR);
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(c, (struct sockaddr *)&listen_addr, listen_len) != 0)
		scn_fail("connect to the listener: %s", strerror(errno));
	if (flock(flock_main_fd, LOCK_UN) != 0)
		scn_fail("flock(LOCK_UN): %s", strerror(errno));
	pthread_kill(find("sigsuspend")->t, SIGUSR1);
	union sigval v;
	v.sival_int = 77;
	pthread_sigqueue(find("sigwaitinfo")->t, SIG_WI, v);
	v.sival_int = 78;
	pthread_sigqueue(find("sigtimedwait")->t, SIG_TW, v);
	pthread_kill(find("sigwait")->t, SIG_W);
	/* pause() cannot be entered atomically with a check: resend until done. */
	struct fp *p = find("pause");
	for (int i = 0; i < 100 && !p->done; i++) {
		pthread_kill(p->t, SIGUSR1);
		scn_sleep_ms(50);
	}
	close(c);
}

int main(int argc, char **argv)
{
	scn_init();
	if (argc > 1 && !strcmp(argv[1], "overflow")) {
		sized_overflow();
		return scn_finish();
	}
	setup();
	sized_pread_check();
	join_target = scn_thread(join_target_fn, NULL);
	for (int i = 0; i < NFP; i++)
		fps[i].t = scn_thread(fp_thread, &fps[i]);
	for (int i = 0; i < NFP; i++)
		while (!fps[i].entered)
			scn_sleep_ms(5);
	scn_sleep_ms(200);   /* let the last ones reach their syscall */
	for (int i = 0; i < NFP; i++)
		if (fps[i].done)
			scn_fail("%s returned before EOF", fps[i].name);
	scn_ready();

	scn_wait_eof();
	scn_watchdog(20);
	for (int i = 0; i < NFP; i++)
		if (fps[i].done && woken_by_main(fps[i].name))
			scn_fail("%s returned before main woke it", fps[i].name);
	scn_phase("waking threads");
	wake_all();
	for (int i = 0; i < NFP; i++)
		scn_join(fps[i].t, fps[i].name);
	if (!scn_is_clone()) {
		unlink(lockpath);
		unlink(flockpath);
	}
	return scn_finish();
}
