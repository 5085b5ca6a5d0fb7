/* The next definition of a wrapped function (REAL() in base.h). */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"

void *nuwa_dlnext(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p) {
		/* Cannot continue: the wrapper has nothing to call.  Say why. */
		static const char msg[] = "libnuwa: fatal: no next definition of ";
		(void)!write(2, msg, sizeof msg - 1);
		(void)!write(2, name, strlen(name));
		(void)!write(2, "\n", 1);
		abort();
	}
	return p;
}
