/* mx.c — see mx.h. */
#include "mx.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
volatile sig_atomic_t mx_sigcount[65];

void mx_count_handler(int sig)
{
	if (sig > 0 && sig < 65)
		mx_sigcount[sig]++;
}

void mx_fail(mx_case *c, const char *fmt, ...)
{
	char msg[240];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&fail_lock);
	size_t l = strlen(c->why);
	if (c->fails++ == 0)
		snprintf(c->why, sizeof c->why, "%s", msg);
	else if (l + 3 < sizeof c->why)
		snprintf(c->why + l, sizeof c->why - l, "; %s", msg);
	pthread_mutex_unlock(&fail_lock);
}

void mx_die(const char *what, const char *file, int line)
{
	scn_out("RESULT pid=%d clone=%d FAIL set-up step failed: %s (%s:%d): %s\n",
		(int)getpid(), scn_is_clone(), what, file, line, strerror(errno));
	_exit(2);
}

void mx_fill(void *buf, size_t n, uint32_t seed)
{
	unsigned char *p = buf;
	uint64_t x = seed;
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = scn_mix(x + i);
		p[i] = (unsigned char)(x >> (8 * (i % 8)));
	}
}

int mx_check_pattern(const void *buf, size_t n, uint32_t seed)
{
	const unsigned char *p = buf;
	uint64_t x = seed;
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = scn_mix(x + i);
		if (p[i] != (unsigned char)(x >> (8 * (i % 8))))
			return 0;
	}
	return 1;
}

int mx_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

long mx_drain(int fd, void *buf, size_t cap)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, (char *)buf + got, cap - got);
		if (n > 0) {
			got += (size_t)n;
			if (got == cap)
				return (long)got;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return (long)got;
		return n == 0 ? (long)got : -1;
	}
}

long mx_fill_fd(int fd, uint32_t seed, size_t chunk)
{
	static unsigned char buf[65536];
	long total = 0;
	if (chunk > sizeof buf)
		chunk = sizeof buf;
	for (;;) {
		mx_fill(buf, chunk, seed + (uint32_t)total);
		ssize_t n = write(fd, buf, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return total;
		total += n;
		if ((size_t)n < chunk)
			return total;
	}
}

const char *mx_vmflags(const void *addr, char *buf, size_t cap)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	int in = 0;
	buf[0] = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(buf, cap, "%s", line + 8);
			buf[strcspn(buf, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	return buf;
}

static void list(mx_case *cases, int n)
{
	for (int i = 0; i < n; i++)
		scn_out("%s %s %ld\n", cases[i].name,
			cases[i].group && *cases[i].group ? cases[i].group : cases[i].name,
			cases[i].total ? cases[i].total : -1L);
}

int mx_main(int argc, char **argv, mx_case *cases, int ncases)
{
	if (argc == 3 && !strcmp(argv[1], "--exit"))
		exit(atoi(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "--list")) {
		list(cases, ncases);
		return 0;
	}
	scn_init();
	for (int a = 1; a < argc; a++) {
		int found = 0;
		for (int i = 0; i < ncases; i++)
			if (!strcmp(cases[i].name, argv[a]))
				cases[i].selected = found = 1;
		if (!found) {
			scn_out("RESULT pid=%d clone=0 FAIL no case named %s\n", (int)getpid(), argv[a]);
			return 2;
		}
	}
	for (int i = 0; i < ncases; i++) {
		int done = 0;
		for (int j = 0; j < i; j++)
			done |= cases[j].selected && cases[j].setup == cases[i].setup;
		if (cases[i].selected && cases[i].setup && !done)
			cases[i].setup(&cases[i]);
	}
	scn_ready();
	scn_wait_eof();
	scn_watchdog(20);
	for (int i = 0; i < ncases; i++) {
		mx_case *c = &cases[i];
		if (!c->selected)
			continue;
		scn_phase(c->name);
		c->verify(c);
		if (c->fails) {
			scn_out("CASE %s pid=%d clone=%d FAIL %s\n", c->name, (int)getpid(),
				mx_child(), c->why);
		} else {
			scn_out("CASE %s pid=%d clone=%d ok tally=%ld\n", c->name, (int)getpid(),
				mx_child(), c->tally);
		}
	}
	/* RESULT tells whether the process itself is sound (no watchdog, no
	 * set-up failure); the verdicts are the CASE lines. */
	return scn_finish();
}
