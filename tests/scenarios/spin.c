/* spin [NSPIN [SECONDS]] — threads spinning in pure computation, never at a
 * freeze point, so libnuwa must park them where they are.
 *
 * Each spinner updates three copies of its state in lockstep: integer
 * registers, a double accumulated in SSE registers, and copies in memory
 * (its stack and a global slot).  Every 4096 steps the copies must agree: a
 * resumed thread whose registers or stack were not restored exactly fails.
 * Spinners stop at an absolute CLOCK_MONOTONIC deadline (same in every
 * clone, which bounds the CPU use) or when main sees EOF, and then wait on
 * a condition variable, where they must be woken normally.
 */
#include "scn.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXSPIN 16

struct spinner {
	pthread_t t;
	int idx;
	volatile uint64_t gx;      /* global copy of x */
	volatile double gd;        /* global copy of d */
	volatile uint64_t steps;
	volatile int running;
};

static struct spinner sp[MAXSPIN];
static int64_t deadline_ns;
static volatile int stop;
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int finished;

static void *spin(void *arg)
{
	struct spinner *s = arg;
	uint64_t x = 0xfeedULL + (uint64_t)s->idx;
	double d = 1.0 + s->idx;
	volatile uint64_t sx = x;   /* stack copies */
	volatile double sd = d;
	s->gx = x;
	s->gd = d;
	s->running = 1;
	uint64_t n = 0;
	while (!stop) {
		for (int k = 0; k < 4096; k++) {
			x = scn_mix(x);
			d = d * 1.000001 + (double)(x & 0xff) * 1e-9;
		}
		uint64_t y = sx, g = s->gx;
		double e = sd, h = s->gd;
		for (int k = 0; k < 4096; k++) {
			y = scn_mix(y);
			e = e * 1.000001 + (double)(y & 0xff) * 1e-9;
			g = scn_mix(g);
			h = h * 1.000001 + (double)(g & 0xff) * 1e-9;
		}
		if (x != y || x != g || d != e || d != h) {
			scn_fail("spinner %d: state copies differ after %llu steps", s->idx,
				 (unsigned long long)n);
			break;
		}
		sx = x, sd = d, s->gx = x, s->gd = d;
		n += 4096;
		s->steps = n;
		if (scn_mono_ns() > deadline_ns)
			break;
	}
	s->running = 0;
	pthread_mutex_lock(&mx);
	while (!finished)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
	return (void *)(uintptr_t)n;
}

int main(int argc, char **argv)
{
	scn_init();
	int nspin = argc > 1 ? atoi(argv[1]) : 2;
	int secs = argc > 2 ? atoi(argv[2]) : 3;
	if (nspin < 1 || nspin > MAXSPIN)
		nspin = 2;
	deadline_ns = scn_mono_ns() + (int64_t)secs * 1000000000;
	for (int i = 0; i < nspin; i++) {
		sp[i].idx = i;
		sp[i].t = scn_thread(spin, &sp[i]);
	}
	for (int i = 0; i < nspin; i++)
		while (!sp[i].running)
			scn_sleep_ms(1);
	scn_ready();
	scn_wait_eof();
	scn_watchdog(20);
	stop = 1;
	/* A parked-and-resumed spinner must still make progress on its own. */
	for (int i = 0; i < nspin; i++)
		while (sp[i].running)
			scn_sleep_ms(1);
	pthread_mutex_lock(&mx);
	finished = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	for (int i = 0; i < nspin; i++) {
		uint64_t n = (uint64_t)(uintptr_t)scn_join(sp[i].t, "joining spinners");
		if (n != sp[i].steps)
			scn_fail("spinner %d returned %llu steps, recorded %llu", i,
				 (unsigned long long)n, (unsigned long long)sp[i].steps);
		if (n == 0)
			scn_fail("spinner %d never completed a round", i);
	}
	return scn_finish();
}
