/* fd_closeall MODE — the program closes every descriptor above 2 at
 * start-up (MODE: loop | range | from), as daemons do; libnuwa's own
 * descriptors must survive it and clones must still work.  Then a
 * self-pipe round trip between two threads, 1000 times per process. */
#include "scn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int wake[2], ack[2];

static void *echo(void *arg)
{
	(void)arg;
	unsigned char b;
	while (read(wake[0], &b, 1) == 1 && b)
		if (write(ack[1], &b, 1) != 1)
			break;
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "loop";
	if (!strcmp(mode, "range"))
		close_range(3, ~0u, 0);
	else if (!strcmp(mode, "from"))
		closefrom(3);
	else
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
	scn_init();
	if (pipe(wake) || pipe(ack))
		scn_fail("pipe: %s", strerror(errno));
	pthread_t t = scn_thread(echo, NULL);
	scn_ready();
	scn_wait_eof();
	scn_watchdog(30);
	unsigned char mine = (unsigned char)(1 + getpid() % 250), b;
	for (int i = 0; i < 1000 && !scn_failed(); i++) {
		struct pollfd p = { ack[0], POLLIN, 0 };
		if (write(wake[1], &mine, 1) != 1 || poll(&p, 1, 2000) != 1 || read(ack[0], &b, 1) != 1)
			scn_fail("round trip %d: no answer", i);
		else if (b != mine)
			scn_fail("round trip %d: answered with another process's byte", i);
	}
	b = 0;
	if (write(wake[1], &b, 1) != 1)
		scn_fail("stop: %s", strerror(errno));
	scn_join(t, "echo");
	return scn_finish();
}
