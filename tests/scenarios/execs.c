/* execs — the exec wrappers remove a forked child's control socket.
 *
 * After EOF on stdin the program forks once per exec variant (execve,
 * execv, execvp, execvpe, execl, execlp, execle); each child waits until
 * libnuwa's control thread has made its control socket (it does so lazily
 * after fork()), reports whether the socket file exists, then execs
 * /bin/true.  The test checks that every child saw its socket ("SOCK pid
 * yes") and that no socket file named after a child is left afterwards. */
#include "scn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int socket_exists(void)
{
	const char *dir = getenv("NUWA_RUNTIME_DIR");
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, "%s/%d.sock", dir ? dir : "", getpid());
	for (int i = 0; i < 200; i++) {     /* up to 2 s: made lazily */
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return 1;
		scn_sleep_ms(10);
	}
	return 0;
}

static void run_variant(int v)
{
	char *argv[] = { "true", NULL };
	pid_t pid = fork();
	if (pid < 0) {
		scn_fail("fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		scn_out("SOCK %d %s\n", getpid(), socket_exists() ? "yes" : "no");
		/* /bin/true must not load libnuwa itself: it would replace and
		 * then remove the stale socket, hiding a missing cleanup. */
		unsetenv("LD_PRELOAD");
		switch (v) {
		case 0: execve("/bin/true", argv, environ); break;
		case 1: execv("/bin/true", argv); break;
		case 2: execvp("true", argv); break;
		case 3: execvpe("true", argv, environ); break;
		case 4: execl("/bin/true", "true", (char *)NULL); break;
		case 5: execlp("true", "true", (char *)NULL); break;
		case 6: execle("/bin/true", "true", (char *)NULL, environ); break;
		}
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		scn_fail("exec variant %d: child %d did not exec /bin/true (status 0x%x)", v, pid, st);
}

int main(void)
{
	scn_init();
	scn_ready();
	scn_wait_eof();
	for (int v = 0; v < 7; v++)
		run_variant(v);
	return scn_finish();
}
