/* fd_leak — 50 channels with data, then 200 consecutive nuwa_clone(1)
 * calls from main; each child checks that it has the same number of
 * descriptors as its parent and its channels hold their data, then exits;
 * the parent's descriptor count must never change. */
#include "scn.h"
#include "nuwa.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#pragma weak nuwa_clone

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n - 3;
}

int main(void)
{
	scn_init();
	int first[2] = { -1, -1 };
	for (int i = 0; i < 50; i++) {
		int fd[2];
		int r = 0;
		switch (i % 4) {
		case 0: r = pipe(fd) || write(fd[1], "abc", 3) != 3; break;
		case 1: r = socketpair(AF_UNIX, SOCK_STREAM, 0, fd) || write(fd[0], "abc", 3) != 3; break;
		case 2: r = socketpair(AF_UNIX, SOCK_DGRAM, 0, fd) || send(fd[0], "abc", 3, 0) != 3; break;
		case 3: r = (fd[0] = eventfd(3, 0)) < 0; break;
		}
		if (r)
			scn_fail("channel %d: %s", i, strerror(errno));
		if (i == 0)
			first[0] = fd[0], first[1] = fd[1];
	}
	if (!nuwa_clone) {
		scn_fail("libnuwa not loaded");
		return scn_finish();
	}
	/* after READY/EOF: nuwa_clone() called at the very start of main can
	 * race libnuwa's control thread start-up (-ENOSYS), which is not what
	 * this scenario checks (reported to core) */
	scn_ready();
	scn_wait_eof();
	int before = count_fds();
	for (int r = 0; r < 200 && !scn_failed(); r++) {
		pid_t pid;
		int n = nuwa_clone(1, &pid);
		if (n == 0) {
			char b[8];
			int ok = count_fds() == before && read(first[0], b, 8) == 3 && write(first[1], "abc", 3) == 3;
			_exit(ok ? 0 : 1);
		}
		if (n != 1) {
			scn_fail("round %d: nuwa_clone returned %d", r, n);
			break;
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			scn_fail("round %d: child failed (status 0x%x)", r, st);
		if (count_fds() != before)
			scn_fail("round %d: %d descriptors, was %d", r, count_fds(), before);
	}
	char b[8];
	if (read(first[0], b, 8) != 3)
		scn_fail("the parent's pipe lost its data");
	return scn_finish();
}
