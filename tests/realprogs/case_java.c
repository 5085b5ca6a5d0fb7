/* OpenJDK 17 (java HttpPool.java: the JDK's HttpServer, a pool of 4): a
 * value set before the freeze is served by every child, a value set in one
 * child is absent from the other, SIGQUIT makes only the child it is sent to
 * print a thread dump and serve on, a child spawned last has the template's
 * value.  -XX:-UsePerfData: no /tmp/hsperfdata_USER/PID file, which the first
 * child to exit would remove for all (docs/compat.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

static int child_has(struct rp *r, int i, const char *state)
{
	char resp[4096], want[64];
	CHECK(rp_http(r, i, "/who", resp, sizeof resp));
	snprintf(want, sizeof want, "state=%s ", state);
	REQUIRE(strstr(resp, want), "child %d: want %s, got \"%.200s\"", r->kid[i], want, resp);
	return 0;
}

static int dumps(struct rp *r)
{
	char path[300], line[1024];
	int n = 0;
	FILE *f = fopen(rp_path(r, "prog.log", path, sizeof path), "re");
	while (f && fgets(line, sizeof line, f))
		n += strncmp(line, "Full thread dump", 16) == 0;
	if (f)
		fclose(f);
	return n;
}

static int run(struct rp *r)
{
	char bin[512], port[16], src[512], tmp[320], resp[4096];
	REQUIRE(rp_which("java", bin, sizeof bin), "java is not installed (make deps)");
	REQUIRE(getenv("RP_SRC"), "RP_SRC is not set");
	snprintf(src, sizeof src, "%s/HttpPool.java", getenv("RP_SRC"));
	snprintf(tmp, sizeof tmp, "-Djava.io.tmpdir=%s", r->dir);
	r->port = rp_free_port();
	snprintf(port, sizeof port, "%d", r->port);
	const char *argv[] = { bin, "-XX:-UsePerfData", "-XX:TieredStopAtLevel=1", "-Xmx64m", tmp, src,
	                       port, NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 60000) == 0, "java does not listen on %d", r->port);

	/* State before the freeze. */
	CHECK(rp_http(r, -1, "/set?template", resp, sizeof resp));
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));
	for (int i = 0; i < 2; i++)
		CHECK(child_has(r, i, "template"));

	/* A value set in child 0 is absent from child 1. */
	CHECK(rp_http(r, 0, "/set?child0", resp, sizeof resp));
	CHECK(child_has(r, 1, "template"));

	/* SIGQUIT to child 1: one thread dump, and it serves on. */
	REQUIRE(dumps(r) == 0, "a thread dump before any SIGQUIT");
	kill(r->kid[1], SIGQUIT);
	long long deadline = rp_now_ms() + 10000;
	while (dumps(r) == 0 && rp_now_ms() < deadline)
		rp_sleep_ms(20);
	REQUIRE(dumps(r) == 1, "%d thread dumps after one SIGQUIT to child %d", dumps(r), r->kid[1]);
	CHECK(child_has(r, 1, "template"));
	CHECK(child_has(r, 0, "child0"));
	REQUIRE(dumps(r) == 1, "%d thread dumps after one SIGQUIT to child %d", dumps(r), r->kid[1]);
	CHECK(rp_still_template(r));

	/* The template is unchanged. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_has(r, 2, "template"));
	return 0;
}

const struct rp_case case_java = {
	"java",
	"HttpServer pool serves the pre-freeze value in each child, values and SIGQUIT's thread dump "
	"stay in their child, template unchanged",
	run,
};
