/* scn.c — see scn.h. */
#include "scn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

pid_t scn_orig_pid;
static volatile int fail_count;
static char first_fail[200];
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *volatile phase = "start";
static volatile int finished;
static int watchdog_secs;

void scn_init(void)
{
	scn_orig_pid = getpid();
}

int scn_is_clone(void)
{
	return getpid() != scn_orig_pid;
}

pid_t scn_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void vwrite(int fd, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (int)w;
	}
}

void scn_out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwrite(1, fmt, ap);
	va_end(ap);
}

void scn_errf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwrite(2, fmt, ap);
	va_end(ap);
}

void scn_fail(const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* The lock is never held across a freeze-sensitive call: it only
	 * guards the copy of the first message. */
	pthread_mutex_lock(&fail_lock);
	if (fail_count++ == 0)
		snprintf(first_fail, sizeof first_fail, "%s", msg);
	pthread_mutex_unlock(&fail_lock);
	scn_out("NOTE pid=%d clone=%d %s\n", (int)getpid(), scn_is_clone(), msg);
}

int scn_failed(void)
{
	return fail_count;
}

void scn_ready(void)
{
	if (!scn_is_clone())
		scn_out("READY\n");
}

void scn_wait_eof(void)
{
	char buf[256];
	scn_phase("waiting for EOF on stdin");
	for (;;) {
		ssize_t n = read(0, buf, sizeof buf);
		if (n == 0)
			break;
		if (n < 0) {
			scn_fail("read(0): %s", strerror(errno));
			if (errno != EINTR)
				break;
		}
	}
	scn_phase("after EOF");
}

void scn_phase(const char *what)
{
	phase = what;
}

/* One NOTE line per task: state, kernel wait channel, current syscall. */
static void dump_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], stat[512] = "", wchan[64] = "", sc[64] = "";
		const char *files[] = { "stat", "wchan", "syscall" };
		char *bufs[] = { stat, wchan, sc };
		size_t lens[] = { sizeof stat, sizeof wchan, sizeof sc };
		for (int i = 0; i < 3; i++) {
			snprintf(path, sizeof path, "/proc/self/task/%s/%s", e->d_name, files[i]);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t n = fd >= 0 ? read(fd, bufs[i], lens[i] - 1) : -1;
			if (fd >= 0)
				close(fd);
			bufs[i][n > 0 ? n : 0] = 0;
			bufs[i][strcspn(bufs[i], "\n")] = 0;
		}
		char *name = strchr(stat, '('), *end = strrchr(stat, ')');
		if (name && end)
			*end = 0;
		scn_out("NOTE pid=%d task %s (%s) state %c wchan %s syscall %s\n", (int)getpid(),
			e->d_name, name ? name + 1 : "?", end ? end[2] : '?', wchan, sc);
	}
	if (d)
		closedir(d);
}

static void *watchdog(void *arg)
{
	(void)arg;
	int64_t end = scn_mono_ns() + (int64_t)watchdog_secs * 1000000000;
	while (!finished && scn_mono_ns() < end)
		scn_sleep_ms(50);
	if (!finished) {
		dump_tasks();
		scn_out("RESULT pid=%d clone=%d FAIL watchdog: still in \"%s\" after %d s%s%s\n",
			(int)getpid(), scn_is_clone(), phase, watchdog_secs,
			fail_count ? "; first failure: " : "", fail_count ? first_fail : "");
		_exit(3);
	}
	return NULL;
}

void scn_watchdog(int seconds)
{
	pthread_t t;
	pthread_attr_t a;
	watchdog_secs = seconds;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, watchdog, NULL) != 0)
		scn_fail("cannot start the watchdog");
	pthread_attr_destroy(&a);
}

int scn_finish(void)
{
	finished = 1;
	if (fail_count) {
		scn_out("RESULT pid=%d clone=%d FAIL %s (%d failure%s)\n", (int)getpid(),
			scn_is_clone(), first_fail, fail_count, fail_count > 1 ? "s" : "");
		return 1;
	}
	scn_out("RESULT pid=%d clone=%d ok\n", (int)getpid(), scn_is_clone());
	return 0;
}

int64_t scn_now_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

struct timespec scn_ts_from_ns(int64_t ns)
{
	struct timespec t = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
	return t;
}

void scn_sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

pthread_t scn_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int e = pthread_create(&t, NULL, fn, arg);
	if (e) {
		scn_out("RESULT pid=%d clone=%d FAIL pthread_create: %s\n", (int)getpid(),
			scn_is_clone(), strerror(e));
		_exit(2);
	}
	return t;
}

void *scn_join(pthread_t t, const char *what)
{
	void *r = NULL;
	scn_phase(what);
	int e = pthread_join(t, &r);
	if (e)
		scn_fail("pthread_join(%s): %s", what, strerror(e));
	return r;
}

uint64_t scn_mix_n(uint64_t x, uint64_t n)
{
	while (n--)
		x = scn_mix(x);
	return x;
}
