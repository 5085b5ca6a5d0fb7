/* python3 (Debian's interpreter) running pool.py: a ThreadPoolExecutor of 8
 * threads and a queue.Queue consumer.  In each child all 8 pool threads meet
 * at a barrier and 10 000 tasks complete through the queue with the right
 * sum; the dict filled before the freeze is there; a value set in one child
 * is absent from the other; SIGUSR1 is counted only by the child it is sent
 * to; a child spawned last has the template's dict and no signal. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

#define TASKS 10000

/* One request to child i alone (i < 0: whoever answers). */
static int ask(struct rp *r, int i, const char *req, char *resp, size_t cap)
{
	if (i >= 0)
		CHECK(rp_only(r, i));
	int rc = rp_tcp(r->port, req, resp, cap, "\n", 90000);
	if (i >= 0)
		rp_all(r);
	REQUIRE(rc > 0, "no answer to \"%.*s\" from %s %d", (int)strcspn(req, "\n"), req,
	        i >= 0 ? "child" : "the program", i >= 0 ? r->kid[i] : r->tmpl);
	return 0;
}

static int child_works(struct rp *r, int i, long long want_sum)
{
	char resp[512];
	CHECK(ask(r, i, "work 10000\n", resp, sizeof resp));
	REQUIRE(rp_field(resp, "pid=") == r->kid[i] && rp_field(resp, "done=") == TASKS &&
	        rp_field(resp, "sum=") == want_sum,
	        "child %d: work 10000 answered \"%.200s\" (want done=%d sum=%lld)", r->kid[i], resp,
	        TASKS, want_sum);
	CHECK(ask(r, i, "get before\n", resp, sizeof resp));
	REQUIRE(strcmp(resp, "value=template\n") == 0, "child %d: get before -> \"%.100s\"",
	        r->kid[i], resp);
	return 0;
}

static int usr1_count(struct rp *r, int i, long *n)
{
	char resp[512];
	CHECK(ask(r, i, "signals\n", resp, sizeof resp));
	REQUIRE(rp_field(resp, "pid=") == r->kid[i], "child %d: signals -> \"%.100s\"", r->kid[i], resp);
	*n = rp_field(resp, "usr1=");
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], port[16], script[512], resp[512];
	REQUIRE(rp_which("python3", bin, sizeof bin), "python3 (an ELF interpreter) is not on PATH");
	REQUIRE(getenv("RP_SRC"), "RP_SRC is not set");
	snprintf(script, sizeof script, "%s/pool.py", getenv("RP_SRC"));
	r->port = rp_free_port();
	snprintf(port, sizeof port, "%d", r->port);
	const char *argv[] = { bin, "-I", script, port, NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 20000) == 0, "pool.py does not listen on %d", r->port);
	long long want = 0;
	for (long long t = 0; t < TASKS; t++)
		want += t * t % 7919;

	/* State before the freeze. */
	CHECK(ask(r, -1, "set before template\n", resp, sizeof resp));
	CHECK(ask(r, -1, "who\n", resp, sizeof resp));
	long threads = rp_field(resp, "threads=");
	REQUIRE(threads >= 10, "the template runs %ld Python threads, not main+consumer+8", threads);
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));

	/* Each child: 8 pool threads and the consumer complete 10 000 tasks. */
	for (int i = 0; i < 2; i++)
		CHECK(child_works(r, i, want));

	/* A value set in child 0 is absent from child 1. */
	CHECK(ask(r, 0, "set before child-0\n", resp, sizeof resp));
	CHECK(ask(r, 1, "get before\n", resp, sizeof resp));
	REQUIRE(strcmp(resp, "value=template\n") == 0, "child 1 sees child 0's value: %.100s", resp);

	/* SIGUSR1 to child 1 is handled there, not in child 0. */
	long n0, n1;
	kill(r->kid[1], SIGUSR1);
	long long deadline = rp_now_ms() + 10000;
	do
		CHECK(usr1_count(r, 1, &n1));
	while (n1 != 1 && rp_now_ms() < deadline && (rp_sleep_ms(20), 1));
	REQUIRE(n1 == 1, "child %d counted %ld SIGUSR1, not 1", r->kid[1], n1);
	CHECK(usr1_count(r, 0, &n0));
	REQUIRE(n0 == 0, "child %d counted %ld SIGUSR1 sent to its sibling", r->kid[0], n0);
	CHECK(child_works(r, 1, want));
	CHECK(rp_still_template(r));

	/* The template is unchanged: a new child has its dict and no signal. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_works(r, 2, want));
	CHECK(usr1_count(r, 2, &n0));
	REQUIRE(n0 == 0, "a child spawned last counted %ld SIGUSR1", n0);
	return 0;
}

const struct rp_case case_python = {
	"python3",
	"8 pool threads + queue consumer complete 10000 tasks in each child, "
	"values and SIGUSR1 stay in their child, template unchanged",
	run,
};
