/* haproxy -db with nbthread 4: a proc-scope variable set over HTTP before the
 * freeze is in every child, each child answers on the shared socket from its
 * 4 threads, a value set in one child is absent from the other, SIGUSR1 (soft
 * stop) ends only the child it is sent to, and a child spawned last has the
 * template's value. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cases.h"

#define THREADS 4

static const char conf[] =
	"global\n"
	"    nbthread %d\n"
	"defaults\n"
	"    mode http\n"
	"    timeout connect 5s\n"
	"    timeout client 10s\n"
	"    timeout server 10s\n"
	"frontend fe\n"
	"    bind 127.0.0.1:%d\n"
	"    http-request set-var(proc.state) url_param(v) if { path /set }\n"
	"    http-request return status 200 content-type text/plain lf-string "
	"\"pid=%%pid thread=%%[thread] state=%%[var(proc.state)]\\n\"\n";

struct view { long pid, thread; char state[64]; };

/* One GET to child i alone (i < 0: whoever answers). */
static int get(struct rp *r, int i, const char *path, struct view *v)
{
	char req[256], resp[4096];
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
	if (i >= 0)
		CHECK(rp_only(r, i));
	int rc = rp_tcp(r->port, req, resp, sizeof resp, NULL, 10000);
	if (i >= 0)
		rp_all(r);
	REQUIRE(rc > 0 && strstr(resp, " 200 "), "GET %s to %s %d: \"%.200s\"", path,
	        i >= 0 ? "child" : "haproxy", i >= 0 ? r->kid[i] : r->tmpl, resp);
	const char *s = strstr(resp, "state=");
	v->pid = rp_field(resp, "pid=");
	v->thread = rp_field(resp, "thread=");
	snprintf(v->state, sizeof v->state, "%.*s", s ? (int)strcspn(s + 6, "\r\n") : 0, s ? s + 6 : "");
	/* %pid is the pid haproxy saved at start: the template's in every child
	 * (docs/compat.md); rp_only() alone decides who answers. */
	REQUIRE(v->pid == r->tmpl, "GET %s: %%pid is %ld, not the template's %d", path, v->pid, r->tmpl);
	return 0;
}

/* Child i serves the template's value. */
static int child_has_template_state(struct rp *r, int i)
{
	struct view v;
	CHECK(get(r, i, "/", &v));
	REQUIRE(strcmp(v.state, "template") == 0, "child %d: state=\"%s\", not the template's",
	        r->kid[i], v.state);
	REQUIRE(rp_threads(r->kid[i]) == rp_threads(r->tmpl), "child %d has %d threads, the template %d",
	        r->kid[i], rp_threads(r->kid[i]), rp_threads(r->tmpl));
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], cfg[300], text[2048];
	REQUIRE(rp_which("haproxy", bin, sizeof bin), "haproxy is not installed (make deps)");
	r->port = rp_free_port();
	snprintf(text, sizeof text, conf, THREADS, r->port);
	REQUIRE(rp_write_file(rp_path(r, "haproxy.cfg", cfg, sizeof cfg), text) == 0, "cannot write %s", cfg);
	const char *argv[] = { bin, "-db", "-f", cfg, NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 10000) == 0, "haproxy does not listen on %d", r->port);

	/* State before the freeze. */
	struct view v;
	CHECK(get(r, -1, "/set?v=template", &v));
	REQUIRE(rp_threads(r->tmpl) >= THREADS, "haproxy runs %d threads", rp_threads(r->tmpl));
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));

	/* Each child serves with the template's value and threads. */
	for (int i = 0; i < 2; i++)
		CHECK(child_has_template_state(r, i));

	/* A value set in child 0 is absent from child 1. */
	CHECK(get(r, 0, "/set?v=child-0", &v));
	CHECK(get(r, 1, "/", &v));
	REQUIRE(strcmp(v.state, "template") == 0, "child 1 sees child 0's value: state=%s", v.state);

	/* SIGUSR1 (soft stop) to child 0 ends it alone. */
	kill(r->kid[0], SIGUSR1);
	REQUIRE(rp_wait_gone(r->kid[0], 10000), "child %d does not stop on SIGUSR1", r->kid[0]);
	CHECK(child_has_template_state(r, 1));
	CHECK(rp_still_template(r));

	/* The template is unchanged: a new child has its value. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_has_template_state(r, 2));
	return 0;
}

const struct rp_case case_haproxy = {
	"haproxy",
	"nbthread 4: each child serves the pre-freeze proc variable, values and SIGUSR1 soft stop "
	"stay in their child, template unchanged",
	run,
};
