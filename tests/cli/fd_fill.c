/* fd_fill — a program whose descriptor table is full: with its soft
 * RLIMIT_NOFILE lowered to 256 (as daemons do) it opens /dev/null until EMFILE and prints "full N"; SIGUSR1
 * makes it close 16 of them and print "freed".  A thread ticks meanwhile. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

static volatile sig_atomic_t free_some;

static void on_usr1(int sig)
{
	(void)sig;
	free_some = 1;
}

static void *tick(void *arg)
{
	for (;;)
		usleep(10000);
	return arg;
}

int main(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 256;
	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGUSR1, on_usr1);
	pthread_t t;
	pthread_create(&t, NULL, tick, NULL);
	int last = -1, n = 0;
	for (int fd; (fd = open("/dev/null", O_RDONLY)) >= 0; n++)
		last = fd;
	printf("full %d\n", n);
	fflush(stdout);
	while (!free_some)
		pause();
	for (int i = 0; i < 16; i++)
		close(last - i);
	printf("freed\n");
	fflush(stdout);
	for (;;)
		pause();
}
