/* fd_epoll — an epoll loop thread over 100 descriptors of mixed kinds
 * (pipes, eventfds, dgram socketpairs; level- and edge-triggered,
 * EPOLLONESHOT, EPOLLEXCLUSIVE, nested epoll), data = pointer to the
 * descriptor's record.  After EOF each process fires 20 of its descriptors
 * (chosen from its pid) and then a stop eventfd; the loop records what it
 * saw; exactly the fired set must be seen, once, in every process. */
#include "scn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

struct rec { int fd, wfd, kind, seen, fired, nested; };
static struct rec recs[100];
static int ep, inner, stopfd;
static struct rec stoprec;

static void *loop(void *arg)
{
	(void)arg;
	for (;;) {
		struct epoll_event ev[64];
		int n = epoll_wait(ep, ev, 64, -1);
		if (n < 0) {
			scn_fail("epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			struct rec *r = ev[i].data.ptr;
			if (r == &stoprec)
				return NULL;
			if (r == NULL) { /* the nested epoll */
				struct epoll_event iev[64];
				int k = epoll_wait(inner, iev, 64, 0);
				for (int j = 0; j < k; j++) {
					struct rec *q = iev[j].data.ptr;
					q->seen++;
					char b[8];
					if (read(q->fd, b, sizeof b) <= 0)
						scn_fail("nested %d: nothing to read", (int)(q - recs));
				}
				continue;
			}
			r->seen++;
			char b[8];
			if (read(r->fd, b, sizeof b) <= 0) /* consume: level-triggered would repeat */
				scn_fail("descriptor %d: nothing to read", (int)(r - recs));
		}
	}
}

int main(void)
{
	scn_init();
	ep = epoll_create1(EPOLL_CLOEXEC);
	inner = epoll_create1(0);
	for (int i = 0; i < 100; i++) {
		struct rec *r = &recs[i];
		int fds[2];
		r->kind = i % 3;
		if (r->kind == 0) {
			if (pipe2(fds, O_NONBLOCK))
				scn_fail("pipe2: %s", strerror(errno));
			r->fd = fds[0], r->wfd = fds[1];
		} else if (r->kind == 1) {
			r->fd = r->wfd = eventfd(0, EFD_NONBLOCK);
		} else {
			socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds);
			r->fd = fds[0], r->wfd = fds[1];
		}
		uint32_t e = EPOLLIN;
		if (i % 4 == 1) e |= EPOLLET;
		if (i % 8 == 3) e |= EPOLLEXCLUSIVE;
		r->nested = i % 10 == 9;
		struct epoll_event ev = { e, { .ptr = r } };
		if (epoll_ctl(r->nested ? inner : ep, EPOLL_CTL_ADD, r->fd, &ev))
			scn_fail("epoll_ctl %d: %s", i, strerror(errno));
	}
	struct epoll_event ev = { EPOLLIN, { .ptr = NULL } };
	epoll_ctl(ep, EPOLL_CTL_ADD, inner, &ev);
	stopfd = eventfd(0, EFD_NONBLOCK);
	ev.data.ptr = &stoprec;
	epoll_ctl(ep, EPOLL_CTL_ADD, stopfd, &ev);
	pthread_t t = scn_thread(loop, NULL);
	scn_ready();
	scn_wait_eof();
	scn_watchdog(30);
	scn_phase("firing");
	uint64_t x = (uint64_t)getpid();
	for (int k = 0; k < 20; k++) {
		x = scn_mix(x);
		struct rec *r = &recs[x % 100];
		if (r->fired)
			continue;
		r->fired = 1;
		uint64_t one = 1;
		if (write(r->wfd, r->kind == 1 ? (void *)&one : (void *)"!", r->kind == 1 ? 8 : 1) <= 0)
			scn_fail("fire %d: %s", (int)(x % 100), strerror(errno));
		scn_sleep_ms(2); /* let the loop take it, so edge-triggered ones are not merged */
	}
	scn_sleep_ms(100);
	uint64_t one = 1;
	if (write(stopfd, &one, 8) != 8)
		scn_fail("stop: %s", strerror(errno));
	scn_join(t, "epoll loop");
	for (int i = 0; i < 100; i++)
		if (recs[i].seen != recs[i].fired)
			scn_fail("descriptor %d (kind %d%s): fired %d, seen %d", i, recs[i].kind,
				 recs[i].nested ? ", nested" : "", recs[i].fired, recs[i].seen);
	return scn_finish();
}
