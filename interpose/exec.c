/* exec*: the program is about to be replaced, and with it libnuwa's control
 * thread; remove this process's control socket file first so that no stale
 * socket is left behind (typical after fork()+exec()).  The execl family
 * reaches execve through glibc's hidden aliases, so it is wrapped too. */
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#include "ctlsock.h"
#include "nuwa_int.h"

REAL_DECL(int, execve, (const char *, char *const[], char *const[]));
REAL_DECL(int, execv, (const char *, char *const[]));
REAL_DECL(int, execvp, (const char *, char *const[]));
REAL_DECL(int, execvpe, (const char *, char *const[], char *const[]));
REAL_DECL(int, fexecve, (int, char *const[], char *const[]));

extern char **environ;

static void before_exec(void)
{
	if (!nuwa_inert)
		ctlsock_before_exec();
}

NUWA_EXPORT int execve(const char *p, char *const argv[], char *const envp[])
{
	before_exec();
	return REAL(execve)(p, argv, envp);
}

NUWA_EXPORT int execv(const char *p, char *const argv[])
{
	before_exec();
	return REAL(execv)(p, argv);
}

NUWA_EXPORT int execvp(const char *f, char *const argv[])
{
	before_exec();
	return REAL(execvp)(f, argv);
}

NUWA_EXPORT int execvpe(const char *f, char *const argv[], char *const envp[])
{
	before_exec();
	return REAL(execvpe)(f, argv, envp);
}

NUWA_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	before_exec();
	return REAL(fexecve)(fd, argv, envp);
}

/* Collect execl's arguments (and, for execle, the environment after the
 * terminating NULL) into an argv on the stack. */
#define MAX_EXECL_ARGS 4096
#define COLLECT_ARGS(first, argv, ap)                                      \
	do {                                                               \
		int n_ = 0;                                                \
		argv[n_++] = (char *)(first);                              \
		while (n_ < MAX_EXECL_ARGS &&                              \
		       (argv[n_] = va_arg(ap, char *)) != NULL)            \
			n_++;                                              \
		if (n_ == MAX_EXECL_ARGS) {                                \
			va_end(ap);                                        \
			errno = E2BIG;                                     \
			return -1;                                         \
		}                                                          \
	} while (0)

NUWA_EXPORT int execl(const char *p, const char *arg, ...)
{
	char *argv[MAX_EXECL_ARGS];
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(arg, argv, ap);
	va_end(ap);
	return execve(p, argv, environ);
}

NUWA_EXPORT int execlp(const char *f, const char *arg, ...)
{
	char *argv[MAX_EXECL_ARGS];
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(arg, argv, ap);
	va_end(ap);
	return execvp(f, argv);
}

NUWA_EXPORT int execle(const char *p, const char *arg, ...)
{
	char *argv[MAX_EXECL_ARGS];
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(arg, argv, ap);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(p, argv, envp);
}
