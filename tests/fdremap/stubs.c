/* Stand-ins for the core functions fdremap uses, for the unit test binary
 * only (the library gets the real ones from core/). */
#include <dlfcn.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "nuwa_int.h"
#include "ut.h"

__thread struct nuwa_thread nuwa_self __attribute__((tls_model("initial-exec")));
char ut_log[65536];
static size_t ut_log_len;

void ut_log_clear(void) { ut_log_len = 0; ut_log[0] = 0; }

void nuwa_log(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "[%d] nuwa(%d): %s\n", (int)getpid(), level, line);
	size_t l = strlen(line);
	if (ut_log_len + l + 2 < sizeof ut_log) {
		memcpy(ut_log + ut_log_len, line, l);
		ut_log_len += l;
		ut_log[ut_log_len++] = '\n';
		ut_log[ut_log_len] = 0;
	}
}

void *nuwa_dlnext(const char *name) { return dlsym(RTLD_NEXT, name); }
void nuwa_lock(nuwa_lock_t *l) { while (__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE)) sched_yield(); }
void nuwa_unlock(nuwa_lock_t *l) { __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE); }
void nuwa_cs_leave_slow(void) { nuwa_self.park_pending = 0; }
