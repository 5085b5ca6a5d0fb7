/* Fault injection, for tests only: NUWA_TEST_FAULT=STEP:ERRNO[:COUNT],...
 * makes the next COUNT (default 1; 0: every) passages through STEP fail
 * with ERRNO (a name such as EAGAIN, or a number), as if the system call
 * made there had failed.  The steps are listed in docs/design.md ("Fault
 * injection") and below; an unknown step is an error at start-up.
 *
 * The counters live in one MAP_SHARED anonymous page made at start-up, so a
 * failure consumed in a child (the steps of a new child, which run in it)
 * is consumed for the template and every other process forked from it too:
 * "fail the next spawn" means one spawn, not one in every process.
 * Unarmed, a step costs one load of nuwa_faults_armed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"
#include "sys.h"

#define MAX_FAULTS 8

struct fault {
	char step[32];
	int err;
	int count;     /* left; -1: every time */
};

int nuwa_faults_armed;
static struct fault *faults;   /* MAP_SHARED, MAX_FAULTS entries */
static int nfaults;

static const char *const steps[] = {
	"clone",          /* the raw fork of a child (core/fork.c) */
	"control",        /* a child clones its control thread */
	"resume",         /* a child clones each thread back */
	"stdio",          /* a child installs the requester's 0, 1, 2 */
	"fdremap.drain",  /* the snapshot copies queued data (the freeze fails) */
	"fdremap.pipe", "fdremap.unix", "fdremap.eventfd", "fdremap.timerfd",
	"fdremap.signalfd", "fdremap.epoll", "fdremap.inotify",
	                  /* a child rebuilds a channel of that kind */
};

static int errno_of(const char *s, size_t n)
{
	char name[32];
	if (n == 0 || n >= sizeof name)
		return -1;
	memcpy(name, s, n);
	name[n] = 0;
	char *end;
	long v = strtol(name, &end, 10);
	if (*end == 0 && v > 0 && v < 4096)
		return (int)v;
	for (int e = 1; e < 4096; e++)
		if (!strcmp(nuwa_errname(e), name))
			return e;
	return -1;
}

int nuwa_fault_parse(const char *spec, char *err, size_t errlen)
{
	struct fault tmp[MAX_FAULTS];
	int n = 0;
	for (const char *p = spec; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *c1 = memchr(p, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - p)) : NULL;
		const char *eend = c2 ? c2 : p + len;
		struct fault f = { .count = 1 };
		int known = 0;
		if (c1 && (size_t)(c1 - p) < sizeof f.step) {
			memcpy(f.step, p, (size_t)(c1 - p));
			for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
				known |= !strcmp(steps[i], f.step);
		}
		if (c1)
			f.err = errno_of(c1 + 1, (size_t)(eend - c1 - 1));
		if (c2) {
			char num[16], *e;
			size_t k = (size_t)(p + len - c2 - 1);
			long v = -1;
			if (k && k < sizeof num) {
				memcpy(num, c2 + 1, k);
				num[k] = 0;
				v = strtol(num, &e, 10);
				if (*e)
					v = -1;
			}
			f.count = v == 0 ? -1 : (int)v;
			if (v < 0 || v > 1000000)
				known = 0;
		}
		if (!known || f.err <= 0 || n == MAX_FAULTS) {
			snprintf(err, errlen, "NUWA_TEST_FAULT=\"%s\": bad entry \"%.*s\" (expected "
			         "STEP:ERRNO[:COUNT], at most %d; steps: clone, control, resume, "
			         "stdio, fdremap.drain, fdremap.KIND)", spec, (int)len, p,
			         MAX_FAULTS);
			return -EINVAL;
		}
		tmp[n++] = f;
		p += len + (end ? 1 : 0);
	}
	if (!n)
		return 0;
	long m = sys_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
	if (m < 0) {
		snprintf(err, errlen, "NUWA_TEST_FAULT: %s", nuwa_strerror((int)-m));
		return (int)m;
	}
	faults = (struct fault *)m;
	memcpy(faults, tmp, sizeof tmp[0] * (size_t)n);
	nfaults = n;
	nuwa_faults_armed = 1;
	return 0;
}

int nuwa_fault(const char *step)
{
	for (int i = 0; i < nfaults; i++) {
		struct fault *f = &faults[i];
		if (strcmp(f->step, step))
			continue;
		int c = __atomic_load_n(&f->count, __ATOMIC_RELAXED);
		while (c != 0) {
			if (c < 0 || __atomic_compare_exchange_n(&f->count, &c, c - 1, 0,
			                                          __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
				nuwa_warn("%s: %s injected (NUWA_TEST_FAULT)", step, nuwa_errname(f->err));
				return -f->err;
			}
		}
	}
	return 0;
}
