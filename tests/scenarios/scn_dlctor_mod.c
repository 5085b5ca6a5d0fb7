/* The module of tests/scenarios/dlctor.c: its constructor runs inside
 * dlopen(), holding the loader's lock, busy for DLCTOR_SPIN_MS without a
 * system call (clock_gettime is the vDSO), and says in which process it
 * began and in which it ended. */
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DLCTOR_SPIN_MS 600

extern volatile int dlctor_in_ctor;            /* the program's (-rdynamic) */
extern volatile long dlctor_pid_begin, dlctor_pid_end;

__attribute__((constructor)) static void spin(void)
{
	dlctor_pid_begin = syscall(SYS_getpid);
	dlctor_in_ctor = 1;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < DLCTOR_SPIN_MS);
	dlctor_pid_end = syscall(SYS_getpid);
}

int dlctor_mod_alive(void)
{
	return 1;
}
