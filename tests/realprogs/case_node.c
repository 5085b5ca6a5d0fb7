/* node (V8): an HTTP server whose state is set before the freeze.  Each child
 * serves it with its own pid, a value set in one child is absent from the
 * other, SIGHUP is handled only by the child it is sent to, a child spawned
 * last has the template's value.  V8 marks its heap and code MADV_DONTFORK. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

static int dontfork;   /* the template's MADV_DONTFORK mappings */

static int who(struct rp *r, int i, const char *path, char *resp, size_t cap)
{
	if (rp_http(r, i, path, resp, cap) < 0)
		return rp_fail(r, "the template had %d mappings marked MADV_DONTFORK (VmFlags dc)", dontfork);
	REQUIRE(i < 0 || rp_field(resp, "pid=") == r->kid[i], "child %d: %s answered \"%.200s\"", r->kid[i],
	        path, resp);
	return 0;
}

static int child_has(struct rp *r, int i, const char *state, long hups)
{
	char resp[4096], want[64];
	CHECK(who(r, i, "/who", resp, sizeof resp));
	snprintf(want, sizeof want, "state=%s ", state);
	REQUIRE(strstr(resp, want) && strstr(resp, "{\"squares\":[1,4,9]}") && rp_field(resp, "hups=") == hups,
	        "child %d: want %shups=%ld, got \"%.200s\"", r->kid[i], want, hups, resp);
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], port[16], script[512], resp[4096];
	REQUIRE(rp_which("node", bin, sizeof bin), "node is not installed (make deps)");
	REQUIRE(getenv("RP_SRC"), "RP_SRC is not set");
	snprintf(script, sizeof script, "%s/server.js", getenv("RP_SRC"));
	r->port = rp_free_port();
	snprintf(port, sizeof port, "%d", r->port);
	const char *argv[] = { bin, script, port, NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 20000) == 0, "node does not listen on %d", r->port);

	/* State before the freeze. */
	CHECK(who(r, -1, "/set/template", resp, sizeof resp));
	dontfork = rp_dontfork_maps(r->tmpl);
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));
	for (int i = 0; i < 2; i++)
		CHECK(child_has(r, i, "template", 0));

	/* A value set in child 0 is absent from child 1. */
	CHECK(who(r, 0, "/set/child0", resp, sizeof resp));
	CHECK(child_has(r, 1, "template", 0));

	/* SIGHUP to child 1 is handled there alone. */
	kill(r->kid[1], SIGHUP);
	long long deadline = rp_now_ms() + 10000;
	while (who(r, 1, "/who", resp, sizeof resp) == 0 && rp_field(resp, "hups=") != 1 &&
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

const struct rp_case case_node = {
	"node",
	"each child serves the pre-freeze value with its own pid, values and SIGHUP stay in their "
	"child, template unchanged",
	run,
};
