/* demo-client PORT N TEXT: send N requests, print the replies. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: demo-client PORT N TEXT\n");
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]);
	for (int i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(s, (void *)&a, sizeof a) < 0) {
			perror("demo-client: connect");
			return 1;
		}
		char msg[256], buf[256];
		int len = snprintf(msg, sizeof msg, "%s #%d\n", argv[3], i + 1);
		(void)!write(s, msg, (size_t)len);
		ssize_t r = read(s, buf, sizeof buf - 1);
		buf[r > 0 ? r : 0] = 0;
		fputs(buf, stdout);
		close(s);
	}
	return 0;
}
