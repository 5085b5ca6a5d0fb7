/* mc — the smallest memcached client, for `make demo`.
 *
 *   mc PORT COMMAND...      one connection to 127.0.0.1:PORT, one line each
 *   mc freeport             print a TCP port free on 127.0.0.1 now
 *
 * COMMAND is one argument each:
 *   "set KEY VALUE"   store VALUE (text) under KEY          → STORED
 *   "get KEY"         the value, or "(not found)"
 *   "who"             the serving process: "pid P, T worker threads"
 *   "workers N"       N more connections at once, each served: memcached
 *                     hands every new connection to the next worker thread,
 *                     so N ≥ the thread count reaches every worker; prints
 *                     "N connections served" or names the one that was not
 *
 * Every read is bounded (2 s); any failure prints one line on stderr and
 * exits 1.  memcached's text protocol: doc/protocol.txt in its sources. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TIMEOUT_MS 2000
#define MAX_WORKERS 64

static int port;

static int die(const char *what)
{
	fprintf(stderr, "mc: %s\n", what);
	exit(1);
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("cannot connect to memcached");
	return fd;
}

static void send_all(int fd, const char *s)
{
	for (size_t n = strlen(s); n;) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			die("write failed");
		s += w;
		n -= (size_t)w;
	}
}

/* Read until the reply ends with `end` (a whole line); the reply is in buf. */
static void recv_until(int fd, char *buf, size_t cap, const char *end)
{
	size_t len = 0;
	buf[0] = 0;
	for (;;) {
		if (strstr(buf, end) || strstr(buf, "ERROR\r\n"))
			return;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, TIMEOUT_MS) != 1)
			die("no reply from memcached within 2 s");
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r <= 0)
			die("memcached closed the connection");
		len += (size_t)r;
		buf[len] = 0;
		if (len == cap - 1)
			die("reply too long");
	}
}

static void stat_of(const char *reply, const char *name, char *out, size_t len)
{
	char key[64];
	snprintf(key, sizeof key, "STAT %s ", name);
	const char *p = strstr(reply, key);
	snprintf(out, len, "?");
	if (p)
		sscanf(p + strlen(key), "%31s", out);
}

static void command(int fd, const char *cmd)
{
	char buf[16384], req[1024], key[256], val[512];
	if (sscanf(cmd, "set %255s %511[^\n]", key, val) == 2) {
		snprintf(req, sizeof req, "set %s 0 0 %zu\r\n%s\r\n", key, strlen(val), val);
		send_all(fd, req);
		recv_until(fd, buf, sizeof buf, "\r\n");
		buf[strcspn(buf, "\r")] = 0;
		printf("set %s → %s\n", key, buf);
	} else if (sscanf(cmd, "get %255s", key) == 1) {
		snprintf(req, sizeof req, "get %s\r\n", key);
		send_all(fd, req);
		recv_until(fd, buf, sizeof buf, "END\r\n");
		const char *data = strncmp(buf, "VALUE ", 6) == 0 ? strstr(buf, "\r\n") : NULL;
		if (data) {
			data += 2;
			printf("get %s → %.*s\n", key, (int)strcspn(data, "\r"), data);
		} else {
			printf("get %s → (not found)\n", key);
		}
	} else if (strcmp(cmd, "who") == 0) {
		char pid[32], threads[32];
		send_all(fd, "stats\r\n");
		recv_until(fd, buf, sizeof buf, "END\r\n");
		stat_of(buf, "pid", pid, sizeof pid);
		stat_of(buf, "threads", threads, sizeof threads);
		printf("served by pid %s, %s worker threads\n", pid, threads);
	} else if (sscanf(cmd, "workers %255s", key) == 1) {
		int n = atoi(key), fds[MAX_WORKERS];
		if (n < 1 || n > MAX_WORKERS)
			die("workers: 1 to 64");
		for (int i = 0; i < n; i++)
			fds[i] = dial();
		for (int i = 0; i < n; i++)
			send_all(fds[i], "version\r\n");
		for (int i = 0; i < n; i++) {
			recv_until(fds[i], buf, sizeof buf, "\r\n");
			if (strncmp(buf, "VERSION ", 8) != 0)
				die("a worker thread did not answer");
			close(fds[i]);
		}
		printf("%d connections at once, %d served\n", n, n);
	} else {
		die("unknown command (set KEY VALUE, get KEY, who, workers N)");
	}
	fflush(stdout);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("no free port");
	printf("%d\n", ntohs(a.sin_port));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "freeport") == 0)
		return free_port();
	if (argc < 3 || (port = atoi(argv[1])) <= 0 || port > 65535)
		die("usage: mc PORT COMMAND...");
	int fd = dial();
	for (int i = 2; i < argc; i++)
		command(fd, argv[i]);
	send_all(fd, "quit\r\n");
	close(fd);
	return 0;
}
