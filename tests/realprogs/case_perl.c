/* perl with ithreads running pool.pl: 4 threads fed through Thread::Queue.
 * Each child answers with its own pid, the pool's work and the hash filled
 * before the freeze; a value set in one child is absent from the other;
 * SIGUSR1 is counted only by the child it is sent to; a child spawned last
 * has the template's hash. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

static int ask(struct rp *r, int i, const char *req, char *resp, size_t cap)
{
	if (i >= 0)
		CHECK(rp_only(r, i));
	int rc = rp_tcp(r->port, req, resp, cap, "\n", 10000);
	if (i >= 0)
		rp_all(r);
	pid_t pid = i >= 0 ? r->kid[i] : r->tmpl;
	REQUIRE(rc > 0, "no answer to \"%.*s\" from %d (%s)", (int)strcspn(req, "\n"), req, pid,
	        rp_death(r, pid));
	REQUIRE(i < 0 || rp_field(resp, "pid=") < 0 || rp_field(resp, "pid=") == pid,
	        "child %d: \"%.*s\" answered by %.100s", pid, (int)strcspn(req, "\n"), req, resp);
	return 0;
}

static int child_has(struct rp *r, int i, const char *value, long usr1)
{
	char resp[512], want[64];
	long long sum = 0;
	for (long long k = 0; k < 20000; k++)
		sum += k * k % 7919;
	CHECK(ask(r, i, "work 20000\n", resp, sizeof resp));
	REQUIRE(rp_field(resp, "sum=") == 4 * sum, "child %d: work -> \"%.100s\"", r->kid[i], resp);
	CHECK(ask(r, i, "get before\n", resp, sizeof resp));
	snprintf(want, sizeof want, "value=%s\n", value);
	REQUIRE(strcmp(resp, want) == 0, "child %d: get before -> \"%.100s\", want %s", r->kid[i], resp, want);
	CHECK(ask(r, i, "signals\n", resp, sizeof resp));
	REQUIRE(rp_field(resp, "usr1=") == usr1, "child %d: counted \"%.100s\", want usr1=%ld", r->kid[i],
	        resp, usr1);
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], port[16], script[512], resp[512];
	REQUIRE(rp_which("perl", bin, sizeof bin), "perl is not installed");
	REQUIRE(getenv("RP_SRC"), "RP_SRC is not set");
	snprintf(script, sizeof script, "%s/pool.pl", getenv("RP_SRC"));
	r->port = rp_free_port();
	snprintf(port, sizeof port, "%d", r->port);
	const char *argv[] = { bin, script, port, NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 20000) == 0, "pool.pl does not listen on %d", r->port);

	/* State before the freeze. */
	CHECK(ask(r, -1, "set before template\n", resp, sizeof resp));
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));
	for (int i = 0; i < 2; i++)
		CHECK(child_has(r, i, "template", 0));

	/* A value set in child 0 is absent from child 1. */
	CHECK(ask(r, 0, "set before child0\n", resp, sizeof resp));
	CHECK(child_has(r, 1, "template", 0));

	/* SIGUSR1 to child 1 is counted there alone. */
	kill(r->kid[1], SIGUSR1);
	long long deadline = rp_now_ms() + 10000;
	while (ask(r, 1, "signals\n", resp, sizeof resp) == 0 && rp_field(resp, "usr1=") != 1 &&
	       rp_now_ms() < deadline)
		rp_sleep_ms(20);
	CHECK(child_has(r, 1, "template", 1));
	CHECK(child_has(r, 0, "child0", 0));
	CHECK(rp_still_template(r));

	/* The template is unchanged. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_has(r, 2, "template", 0));
	return 0;
}

const struct rp_case case_perl = {
	"perl",
	"4 ithreads work in each child with the pre-freeze hash, values and SIGUSR1 stay in their "
	"child, template unchanged",
	run,
};
