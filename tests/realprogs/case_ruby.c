/* ruby (Debian's interpreter) running pool.rb: the main thread accepts, a
 * pool of 4 threads answers.  Each child serves with the pool and the hash
 * filled before the freeze, and a blocked thread can be cancelled (Ruby's
 * timer at work); a value set in one child is absent from the
 * other; a child survives SIGUSR1, traps it, and keeps serving; the sibling
 * counts nothing; a child spawned last has the template's hash. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

static int ask(struct rp *r, int i, const char *req, char *resp, size_t cap)
{
	rp_trace(r, req);
	if (i >= 0)
		CHECK(rp_only(r, i));
	int rc = rp_tcp(r->port, req, resp, cap, "\n", 10000);
	if (i >= 0)
		rp_all(r);
	REQUIRE(rc > 0, "no answer to \"%.*s\" from %s %d (%s)", (int)strcspn(req, "\n"), req,
	        i >= 0 ? "child" : "the program", i >= 0 ? r->kid[i] : r->tmpl,
	        rp_death(r, i >= 0 ? r->kid[i] : r->tmpl));
	return 0;
}

static long long expected_sum(int n)
{
	long long s = 0;
	for (long long i = 0; i < n; i++)
		s += i * i % 7919;
	return s;
}

/* Child i answers with its pool and the template's hash. */
static int child_serves(struct rp *r, int i)
{
	char resp[512];
	CHECK(ask(r, i, "who\n", resp, sizeof resp));
	REQUIRE(rp_field(resp, "pid=") == r->kid[i] && rp_field(resp, "pool=") == 4,
	        "child %d: who -> \"%.200s\"", r->kid[i], resp);
	CHECK(ask(r, i, "work 100000\n", resp, sizeof resp));
	REQUIRE(rp_field(resp, "sum=") == expected_sum(100000), "child %d: work -> \"%.200s\"",
	        r->kid[i], resp);
	CHECK(ask(r, i, "get before\n", resp, sizeof resp));
	REQUIRE(strcmp(resp, "value=template\n") == 0, "child %d: get before -> \"%.100s\"",
	        r->kid[i], resp);
	CHECK(ask(r, i, "cancel\n", resp, sizeof resp));
	REQUIRE(rp_field(resp, "pid=") == r->kid[i] && strstr(resp, "cancelled=true"),
	        "child %d: cancel -> \"%.100s\"", r->kid[i], resp);
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
	REQUIRE(rp_which("ruby", bin, sizeof bin), "ruby is not installed (make deps)");
	REQUIRE(getenv("RP_SRC"), "RP_SRC is not set");
	snprintf(script, sizeof script, "%s/pool.rb", getenv("RP_SRC"));
	r->port = rp_free_port();
	snprintf(port, sizeof port, "%d", r->port);
	const char *argv[] = { bin, "--disable-gems", script, port, NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 20000) == 0, "pool.rb does not listen on %d", r->port);

	/* State before the freeze. */
	CHECK(ask(r, -1, "set before template\n", resp, sizeof resp));
	CHECK(ask(r, -1, "cancel\n", resp, sizeof resp));
	REQUIRE(strstr(resp, "cancelled=true"), "the template before the freeze: cancel -> %.100s", resp);
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));

	/* Each child serves with its pool and the template's hash. */
	for (int i = 0; i < 2; i++)
		CHECK(child_serves(r, i));

	/* A value set in child 0 is absent from child 1. */
	CHECK(ask(r, 0, "set before child-0\n", resp, sizeof resp));
	CHECK(ask(r, 1, "get before\n", resp, sizeof resp));
	REQUIRE(strcmp(resp, "value=template\n") == 0, "child 1 sees child 0's value: %.100s", resp);

	/* SIGUSR1 to child 1: it survives, traps it, and serves; child 0 saw nothing. */
	long n0, n1;
	kill(r->kid[1], SIGUSR1);
	long long deadline = rp_now_ms() + 10000;
	do
		CHECK(usr1_count(r, 1, &n1));
	while (n1 != 1 && rp_now_ms() < deadline && (rp_sleep_ms(20), 1));
	REQUIRE(n1 == 1, "child %d counted %ld SIGUSR1, not 1", r->kid[1], n1);
	CHECK(child_serves(r, 1));
	CHECK(usr1_count(r, 0, &n0));
	REQUIRE(n0 == 0, "child %d counted %ld SIGUSR1 sent to its sibling", r->kid[0], n0);
	CHECK(rp_still_template(r));

	/* The template is unchanged: a new child has its hash and no signal. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_serves(r, 2));
	CHECK(usr1_count(r, 2, &n0));
	REQUIRE(n0 == 0, "a child spawned last counted %ld SIGUSR1", n0);
	return 0;
}

const struct rp_case case_ruby = {
	"ruby",
	"pool of 4 serves in each child with the template's hash, values stay in their child, "
	"a child traps SIGUSR1 and serves on, template unchanged",
	run,
};
