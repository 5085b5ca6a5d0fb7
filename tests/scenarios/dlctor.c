/* dlctor — a thread busy inside dlopen() (a module constructor that spins
 * for 600 ms) when the trigger comes, with a freeze timeout far shorter
 * (the test sets NUWA_FREEZE_TIMEOUT_MS=50).
 *
 * A thread parked inside the loader would go on loading in the clone and in
 * the original at once, through file descriptions they share (the loader
 * reads the file it maps with read(): the shared offset gives one of them
 * another's bytes: "invalid ELF header").  So libnuwa lets a busy thread
 * that holds one of ld.so's locks run past the timeout until it leaves the
 * loader (core/freeze.c, LOADER_GRACE_S).  The constructor records the
 * process it began in and the one it ended in: every process must find the
 * original's pid in both, the clone included (it was never resumed inside
 * the constructor), and the module's function must answer in each. */
#include "scn.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

volatile int dlctor_in_ctor;
volatile long dlctor_pid_begin, dlctor_pid_end;

static void *loader(void *arg)
{
	const char *path = arg;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		scn_fail("dlopen %s: %s", path, dlerror());
	return h;
}

int main(int argc, char **argv)
{
	scn_init();
	char path[4096];
	snprintf(path, sizeof path, "%s/scn_dlctor_mod.so", argc > 1 ? argv[1] : ".");
	pthread_t t = scn_thread(loader, path);
	while (!dlctor_in_ctor)
		scn_sleep_ms(1);
	scn_ready();          /* the trigger comes while the constructor spins */
	scn_wait_eof();
	scn_watchdog(20);
	scn_phase("joining the loader");
	void *h = scn_join(t, "loader");
	if (dlctor_pid_begin != scn_orig_pid || dlctor_pid_end != scn_orig_pid)
		scn_fail("the constructor began in process %ld and ended in %ld: the thread was "
		         "frozen inside dlopen (want %d for both)", dlctor_pid_begin, dlctor_pid_end,
		         (int)scn_orig_pid);
	if (h && !dlsym(h, "dlctor_mod_alive"))
		scn_fail("dlsym in the loaded module: %s", dlerror());
	return scn_finish();
}
