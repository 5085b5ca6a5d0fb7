/* The per-thread record and the slow end of a critical section. */
#include "base.h"
#include "sys.h"

__thread struct nuwa_thread nuwa_self __attribute__((tls_model("initial-exec")));
int nuwa_park_sig;

/* A thread left a critical section with a park request pending: send it
 * again, to itself, now that parking is safe. */
void nuwa_cs_leave_slow(void)
{
	nuwa_self.park_pending = 0;
	sys_tgkill(sys_getpid(), sys_gettid(), nuwa_park_sig);
}
