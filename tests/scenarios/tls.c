/* tls — thread-local state across the freeze: 64 pthread keys (glibc keeps
 * the first 32 in the TCB and the rest in a block it allocates, so both
 * kinds are covered), __thread arrays in the main program, in a linked
 * library (libscn_tls.so) and in a dlopen'ed library (scn_tls_dl.so,
 * dynamic TLS reached through the DTV).
 *
 * Each thread loops until EOF: write generation g into every slot, sleep
 * (a freeze point), check every slot still holds g and every address is
 * unchanged.  When a worker exits, the 64 key destructors must run with
 * that thread's values; main counts them.
 */
#include "scn.h"
#include "scn_tls_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NKEYS 64
#define NWORK 6
#define BIG 4096

static pthread_key_t keys[NKEYS];
static __thread uint64_t main_tls[SCN_TLS_WORDS];
static __thread unsigned char main_big[BIG];
static scn_dl_tls_fn dl_addr;
static volatile int eof_seen;
static int dtor_calls[NWORK + 1];
static volatile int dtor_bad;

#define MAGIC 0x7e57000000000000ULL
static uint64_t val(int thr, int key, uint64_t gen)
{
	return MAGIC | (gen & 0xffffffffULL) << 16 | (uint64_t)thr << 8 | (uint64_t)key;
}

static void key_dtor(void *v)
{
	uint64_t x = (uint64_t)(uintptr_t)v;
	int thr = (int)(x >> 8 & 0xff);
	if ((x & 0xffff000000000000ULL) != MAGIC || thr > NWORK)
		__atomic_add_fetch(&dtor_bad, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_add_fetch(&dtor_calls[thr], 1, __ATOMIC_SEQ_CST);
}

struct addrs { void *main_tls, *main_big, *lib, *dl; pthread_t self; };

static void get_addrs(struct addrs *a)
{
	a->main_tls = main_tls;
	a->main_big = main_big;
	a->lib = scn_lib_tls_addr();
	a->dl = dl_addr();
	a->self = pthread_self();
}

static void set_all(int thr, uint64_t gen)
{
	uint64_t *lib = scn_lib_tls_addr(), *dl = dl_addr();
	for (int i = 0; i < SCN_TLS_WORDS; i++) {
		main_tls[i] = val(thr, 100 + i, gen);
		lib[i] = val(thr, 120 + i, gen);
		dl[i] = val(thr, 140 + i, gen);
	}
	memset(main_big, (int)(gen + (uint64_t)thr) & 0xff, BIG);
	for (int k = 0; k < NKEYS; k++)
		if (pthread_setspecific(keys[k], (void *)(uintptr_t)val(thr, k, gen)))
			scn_fail("pthread_setspecific failed");
}

static int check_all(int thr, uint64_t gen, const struct addrs *a0)
{
	struct addrs a;
	get_addrs(&a);
	if (memcmp(&a, a0, sizeof a))
		return scn_fail("thread %d: a TLS address or pthread_self changed", thr), 1;
	uint64_t *lib = scn_lib_tls_addr(), *dl = dl_addr();
	for (int i = 0; i < SCN_TLS_WORDS; i++) {
		if (main_tls[i] != val(thr, 100 + i, gen))
			return scn_fail("thread %d: main program __thread[%d] changed", thr, i), 1;
		if (lib[i] != val(thr, 120 + i, gen))
			return scn_fail("thread %d: shared library __thread[%d] changed", thr, i), 1;
		if (dl[i] != val(thr, 140 + i, gen))
			return scn_fail("thread %d: dlopen'ed library __thread[%d] changed", thr, i), 1;
	}
	for (int i = 0; i < BIG; i++)
		if (main_big[i] != ((gen + (uint64_t)thr) & 0xff))
			return scn_fail("thread %d: __thread array byte %d changed", thr, i), 1;
	for (int k = 0; k < NKEYS; k++)
		if ((uintptr_t)pthread_getspecific(keys[k]) != val(thr, k, gen))
			return scn_fail("thread %d: pthread key %d (of %d) changed", thr, k, NKEYS), 1;
	return 0;
}

static void run(int thr)
{
	struct addrs a0;
	get_addrs(&a0);
	uint64_t gen = 0;
	do {
		gen++;
		set_all(thr, gen);
		scn_sleep_ms(5);
		if (check_all(thr, gen, &a0))
			break;
	} while (!eof_seen);
}

static void *worker(void *arg)
{
	run((int)(intptr_t)arg);
	return NULL;   /* the 64 destructors run now */
}

int main(void)
{
	scn_init();
	char path[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
	if (n <= 0)
		return 2;
	path[n] = 0;
	slash = strrchr(path, '/');
	strcpy(slash + 1, "scn_tls_dl.so");
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h || !(dl_addr = (scn_dl_tls_fn)dlsym(h, "scn_dl_tls_addr"))) {
		scn_out("RESULT pid=%d clone=0 FAIL dlopen: %s\n", (int)getpid(), dlerror());
		return 2;
	}
	for (int k = 0; k < NKEYS; k++)
		if (pthread_key_create(&keys[k], key_dtor)) {
			scn_out("RESULT pid=%d clone=0 FAIL pthread_key_create\n", (int)getpid());
			return 2;
		}
	pthread_t t[NWORK];
	for (int i = 0; i < NWORK; i++)
		t[i] = scn_thread(worker, (void *)(intptr_t)(i + 1));
	scn_ready();

	/* main's own slots: set once, checked after EOF */
	struct addrs a0;
	get_addrs(&a0);
	set_all(0, 424242);
	scn_wait_eof();
	scn_watchdog(20);
	eof_seen = 1;
	check_all(0, 424242, &a0);
	for (int i = 0; i < NWORK; i++)
		scn_join(t[i], "joining workers");
	for (int i = 1; i <= NWORK; i++)
		if (dtor_calls[i] != NKEYS)
			scn_fail("thread %d: %d key destructor calls, want %d", i, dtor_calls[i], NKEYS);
	if (dtor_bad)
		scn_fail("%d key destructor calls with a value that was never set", dtor_bad);
	return scn_finish();
}
