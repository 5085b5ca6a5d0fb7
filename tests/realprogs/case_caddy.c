/* caddy (Go, cgo-linked): serves a Caddyfile's response on loopback, no admin
 * endpoint.  Each child serves it, SIGTERM ends only the child it is sent to
 * and a child spawned last serves.  (Caddy keeps no state a request can
 * change without its admin API.)  The Go runtime installs its own handler
 * for every signal with raw rt_sigaction, libnuwa's park signal included. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cases.h"

static int child_serves(struct rp *r, int i)
{
	char resp[4096];
	CHECK(rp_http(r, i, "/", resp, sizeof resp));
	REQUIRE(strstr(resp, "served-by-caddy"), "child %d: \"%.200s\"", r->kid[i], resp);
	REQUIRE(rp_threads(r->kid[i]) == rp_threads(r->tmpl), "child %d has %d threads, the template %d",
	        r->kid[i], rp_threads(r->kid[i]), rp_threads(r->tmpl));
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], cfg[300], text[1024], resp[4096], home[300], data[320], conf[320];
	REQUIRE(rp_which("caddy", bin, sizeof bin), "caddy is not installed (make deps)");
	r->port = rp_free_port();
	snprintf(text, sizeof text,
	         "{\n    admin off\n}\n"
	         "http://127.0.0.1:%d {\n    bind 127.0.0.1\n    respond \"served-by-caddy\\n\"\n}\n", r->port);
	REQUIRE(rp_write_file(rp_path(r, "Caddyfile", cfg, sizeof cfg), text) == 0, "cannot write %s", cfg);
	rp_path(r, "home", home, sizeof home);
	snprintf(data, sizeof data, "XDG_DATA_HOME=%s", home);
	snprintf(conf, sizeof conf, "XDG_CONFIG_HOME=%s", home);
	const char *env[] = { data, conf, NULL };
	const char *argv[] = { bin, "run", "--adapter", "caddyfile", "--config", cfg, NULL };
	CHECK(rp_start(r, argv, env));
	REQUIRE(rp_wait_tcp(r->port, 20000) == 0, "caddy does not listen on %d", r->port);
	CHECK(rp_http(r, -1, "/", resp, sizeof resp));

	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));
	for (int i = 0; i < 2; i++)
		CHECK(child_serves(r, i));

	/* SIGTERM to child 0 ends it alone. */
	kill(r->kid[0], SIGTERM);
	REQUIRE(rp_wait_gone(r->kid[0], 10000), "child %d does not exit on SIGTERM", r->kid[0]);
	CHECK(child_serves(r, 1));
	CHECK(rp_still_template(r));

	/* The template is unchanged: a new child serves. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_serves(r, 2));
	return 0;
}

const struct rp_case case_caddy = {
	"caddy",
	"each Go child serves, SIGTERM stays in its child, template unchanged",
	run,
};
