/* uid_drop — a daemon that drops privileges after start, as memcached -u
 * and nginx's workers do: started as root (libnuwa makes its control socket
 * then), it switches every thread to uid/gid 65534 and runs two threads
 * that tick.  Prints "dropped PID" once it runs as 65534. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *tick(void *arg)
{
	for (;;)
		usleep(10000);
	return arg;
}

int main(void)
{
	if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) {
		perror("uid_drop: setresuid");
		return 1;
	}
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, tick, NULL);
	printf("dropped %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
