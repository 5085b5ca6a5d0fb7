/* redis-server (no persistence): a key set before the freeze is in every
 * child, INFO reports the child's own pid, a key set in one child is absent
 * from the other, SIGTERM ends only the child it is sent to, a child spawned
 * last has exactly the template's keys.  And the freeze parks every thread
 * at a freeze point: jemalloc's background thread sleeps in a raw futex. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cases.h"

static int cmd(struct rp *r, int i, const char *req, char *resp, size_t cap, const char *until)
{
	if (i >= 0)
		CHECK(rp_only(r, i));
	int rc = rp_tcp(r->port, req, resp, cap, until, 5000);
	if (i >= 0)
		rp_all(r);
	pid_t pid = i >= 0 ? r->kid[i] : r->tmpl;
	REQUIRE(rc > 0, "no answer to %.*s from %d (%s)", (int)strcspn(req, "\r"), req, pid, rp_death(r, pid));
	return 0;
}

/* Child i: its own pid in INFO, the template's key; key `other` absent. */
static int child_has_template_state(struct rp *r, int i, const char *other)
{
	char req[256], resp[8192];
	snprintf(req, sizeof req, "INFO server\r\nGET before\r\nGET %s\r\nECHO end\r\n", other);
	CHECK(cmd(r, i, req, resp, sizeof resp, "$3\r\nend\r\n"));
	REQUIRE(rp_field(resp, "process_id:") == r->kid[i], "child %d: INFO says process_id %ld",
	        r->kid[i], rp_field(resp, "process_id:"));
	REQUIRE(strstr(resp, "$8\r\ntemplate\r\n$-1\r\n"), "child %d: GET before, GET %s -> \"%.100s\"",
	        r->kid[i], other, strstr(resp, "\r\n\r\n") ? strstr(resp, "\r\n\r\n") : resp);
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], port[16], resp[4096];
	REQUIRE(rp_which("redis-server", bin, sizeof bin), "redis-server is not installed (make deps)");
	r->port = rp_free_port();
	snprintf(port, sizeof port, "%d", r->port);
	const char *argv[] = { bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
	                       "no", "--daemonize", "no", "--dir", r->dir, NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 10000) == 0, "redis-server does not listen on %d", r->port);

	/* State before the freeze. */
	CHECK(cmd(r, -1, "SET before template\r\n", resp, sizeof resp, "\r\n"));
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));
	for (int i = 0; i < 2; i++)
		CHECK(child_has_template_state(r, i, "child0"));

	/* A key set in child 0 is absent from child 1. */
	CHECK(cmd(r, 0, "SET child0 x\r\n", resp, sizeof resp, "\r\n"));
	CHECK(child_has_template_state(r, 1, "child0"));

	/* SIGTERM to child 0 ends it alone. */
	kill(r->kid[0], SIGTERM);
	REQUIRE(rp_wait_gone(r->kid[0], 10000), "child %d does not exit on SIGTERM", r->kid[0]);
	CHECK(child_has_template_state(r, 1, "child0"));
	CHECK(rp_still_template(r));

	/* The template is unchanged. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_has_template_state(r, 2, "child0"));
	return 0;
}

const struct rp_case case_redis = {
	"redis",
	"each child has the pre-freeze key and its own pid, keys and SIGTERM stay in their child, "
	"template unchanged, every thread frozen at a freeze point",
	run,
};
