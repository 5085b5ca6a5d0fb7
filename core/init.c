/* Start-up.  The wrappers can run before libnuwa's constructor (a library
 * constructor may create threads, a preloaded library's symbols are bound
 * from the first call), so the cheap part of initialisation is idempotent
 * and callable from any wrapper; the control thread starts from the
 * constructor, once the process is far enough along to create threads. */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdremap.h"
#include "freeze.h"

int nuwa_inert;
static volatile int init_done;
static nuwa_lock_t init_lock;

static void after_app_fork_child(void)
{
	if (!nuwa_inert)
		fork_after_app_fork();
}

void nuwa_ensure_init(void)
{
	if (likely(__atomic_load_n(&init_done, __ATOMIC_ACQUIRE)))
		return;
	nuwa_lock(&init_lock);
	if (init_done) {
		nuwa_unlock(&init_lock);
		return;
	}
	/* SIGRTMAX-1: outside glibc's reserved pair (32, 33) and away from
	 * SIGRTMIN+n, the end programs usually allocate from. */
	nuwa_park_sig = SIGRTMAX - 1;
	if (nuwa_config_load() < 0) {
		nuwa_inert = 1;
	} else {
		nuwa_trigger_sig = nuwa_cfg.signal;
		notify_init();
		registry_init();
		if (sys_gettid() == sys_getpid()) {
			nuwa_main_tcb = (void *)pthread_self();
			registry_add_self();
			signals_thread_setup();
		}
		signals_install();
		pthread_atfork(NULL, NULL, after_app_fork_child);
	}
	__atomic_store_n(&init_done, 1, __ATOMIC_RELEASE);
	nuwa_unlock(&init_lock);
}

/* Priority 101: before the constructors of libraries loaded after us that
 * use the default priority, so their threads find libnuwa ready. */
__attribute__((constructor(101))) static void nuwa_constructor(void)
{
	nuwa_ensure_init();
	if (!nuwa_inert)
		control_start();
}
