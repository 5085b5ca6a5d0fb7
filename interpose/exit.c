/* _exit, _Exit: the process ends without exit()'s destructors, one of which
 * removes its control socket file (ctl/ctl_listen.c): remove it here first.
 * This is how the children of the program's own fork() usually end, and an
 * orphan (its parent gone, so nobody watches it: core/forkwatch.c) would
 * otherwise leave its file behind.  Both are glibc's exit_group(2) system
 * call (sysdeps/unix/sysv/linux/_exit.c), which is what we make; nothing is
 * looked up, so this is as async-signal-safe as the real ones. */
#include <stdlib.h>
#include <unistd.h>

#include "ctlsock.h"
#include "nuwa_int.h"

static __attribute__((noreturn)) void end(int status)
{
	if (!nuwa_inert)
		ctlsock_before_exit();
	for (;;)
		sys_exit_group(status);
}

NUWA_EXPORT void _exit(int status)
{
	end(status);
}

NUWA_EXPORT void _Exit(int status)
{
	end(status);
}
