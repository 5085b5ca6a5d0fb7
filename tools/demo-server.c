/* demo-server: a small multi-threaded TCP server for `make demo`.
 *
 * An acceptor thread hands connections to a pool of workers through a
 * mutex+condvar queue; a stats thread wakes on a self-pipe.  Each reply
 * names the process and the worker thread that served it, so the demo can
 * show a clone serving requests with the same threads as its parent.
 * It knows nothing about libnuwa. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKERS 4
#define QLEN 64

static int queue[QLEN], qhead, qtail;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static int stats_pipe[2];
static __thread int worker_id;   /* survives the clone: same TLS */
static long served;

static void *worker(void *arg)
{
	worker_id = (int)(long)arg;
	for (;;) {
		pthread_mutex_lock(&qlock);
		while (qhead == qtail)
			pthread_cond_wait(&qcond, &qlock);
		int fd = queue[qhead++ % QLEN];
		served++;
		pthread_mutex_unlock(&qlock);
		char req[256], reply[256];
		ssize_t n = read(fd, req, sizeof req - 1);
		req[n > 0 ? n : 0] = 0;
		req[strcspn(req, "\r\n")] = 0;
		int len = snprintf(reply, sizeof reply, "pid %d worker %d: %s\n", getpid(), worker_id, req);
		(void)!write(fd, reply, (size_t)len);
		close(fd);
		(void)!write(stats_pipe[1], "x", 1);
	}
	return NULL;
}

static void *stats(void *arg)
{
	char c;
	long seen = 0;
	while (read(stats_pipe[0], &c, 1) == 1)
		if (++seen % 10 == 0)
			fprintf(stderr, "demo-server[%d]: %ld requests\n", getpid(), seen);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 0;
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (void *)&a, sizeof a) < 0 || listen(ls, 64) < 0) {
		perror("demo-server: bind/listen");
		return 1;
	}
	socklen_t al = sizeof a;
	getsockname(ls, (void *)&a, &al);
	printf("listening on 127.0.0.1:%d pid %d\n", ntohs(a.sin_port), getpid());
	fflush(stdout);
	if (pipe(stats_pipe) < 0)
		return 1;
	pthread_t t;
	for (long i = 1; i <= WORKERS; i++)
		pthread_create(&t, NULL, worker, (void *)i);
	pthread_create(&t, NULL, stats, NULL);
	for (;;) {
		int c = accept(ls, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			perror("demo-server: accept");
			return 1;
		}
		pthread_mutex_lock(&qlock);
		queue[qtail++ % QLEN] = c;
		pthread_cond_signal(&qcond);
		pthread_mutex_unlock(&qlock);
	}
}
