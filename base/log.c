/* Logging: one line per message, "nuwa[PID]: LEVEL: text", written with a
 * single write(2) so that lines from several processes sharing stderr do not
 * interleave.  Never allocates: it may run while other threads are parked
 * (one of them may hold the malloc lock). */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdio.h>
#include "base.h"
#include "sys.h"

int nuwa_log_fd = 2;
int nuwa_log_level = NUWA_LOG_WARN;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void nuwa_log(int level, const char *fmt, ...)
{
	if (level > nuwa_log_level)
		return;
	int saved = errno;
	char buf[1024];
	int n = snprintf(buf, sizeof buf, "nuwa[%ld]: %s: ", (long)sys_getpid(),
	                 level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	/* Never block on a full stderr pipe: the control thread logs while a
	 * template serves spawns.  Drop the line instead. */
	struct pollfd p = { .fd = nuwa_log_fd, .events = POLLOUT };
	struct timespec zero = { 0, 0 };
	if (sys_ppoll(&p, 1, &zero) == 1 && (p.revents & POLLOUT))
		(void)sys_write(nuwa_log_fd, buf, n);
	errno = saved;
}
