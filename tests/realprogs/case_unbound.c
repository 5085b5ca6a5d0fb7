/* unbound -d with num-threads 4 (a static local zone: no query leaves the
 * machine): a record added with unbound-control before the freeze is in
 * every child, each child answers on the shared sockets, a record added in
 * one child is absent from the other, SIGHUP (reload: back to the config's
 * records) acts only in the child it is sent to, and a child spawned last has
 * exactly the template's records.  unbound-user: the same as Debian's
 * default user, which unbound switches to after start. */
#include <signal.h>
#include <stdio.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>

#include "cases.h"

#define THREADS 4

static const char conf[] =
	"server:\n"
	"    interface: 127.0.0.1\n"
	"    port: %d\n"
	"    num-threads: %d\n"
	"    do-ip6: no\n"
	"    do-daemonize: no\n"
	"    username: \"%s\"\n"
	"    chroot: \"\"\n"
	"    directory: \"%s\"\n"
	"    pidfile: \"\"\n"
	"    use-syslog: no\n"
	"    logfile: \"\"\n"
	"    verbosity: 1\n"
	"    module-config: \"iterator\"\n"
	"    local-zone: \"test.\" static\n"
	"    local-data: \"config.test. A 192.0.2.1\"\n"
	"remote-control:\n"
	"    control-enable: yes\n"
	"    control-interface: %s/ctl.sock\n"
	"    control-use-cert: no\n";

static char ctl_bin[512], cfg[300];
static int as_user;   /* unbound drops root for its own user after start */

/* unbound-control CMD... to child i alone (i < 0: whoever answers). */
static int control(struct rp *r, int i, const char *a1, const char *a2, const char *a3, char *out,
                   size_t cap)
{
	const char *argv[] = { ctl_bin, "-c", cfg, a1, a2, a3, NULL };
	if (i >= 0)
		CHECK(rp_only(r, i));
	int rc = rp_exec(r, argv, out, cap, 10000);
	if (i >= 0)
		rp_all(r);
	REQUIRE(rc == 0 && strstr(out, a1[0] == 's' ? "is running" : "ok"),
	        "unbound-control %s to %s %d exited %d: %.200s", a1, i >= 0 ? "child" : "unbound",
	        i >= 0 ? r->kid[i] : r->tmpl, rc, out);
	return 0;
}

/* What child i answers for name (i < 0: whoever): 1 with the address, 0 none. */
static int lookup(struct rp *r, int i, const char *name, char *addr)
{
	if (i >= 0)
		CHECK(rp_only(r, i));
	int rc = rp_dns_a(r->port, name, addr, 32, 5000);
	if (i >= 0)
		rp_all(r);
	REQUIRE(rc >= 0, "no DNS answer for %s from %s %d", name, i >= 0 ? "child" : "unbound",
	        i >= 0 ? r->kid[i] : r->tmpl);
	return rc;
}

#define HAS(i, name, want) do { char a_[32] = ""; int k_ = lookup(r, i, name, a_); CHECK(k_); \
	REQUIRE(k_ == 1 && strcmp(a_, want) == 0, "%s %d: %s is \"%s\", not %s", i >= 0 ? "child" : "unbound", \
	        i >= 0 ? r->kid[i] : r->tmpl, name, a_, want); } while (0)
#define LACKS(i, name) do { char a_[32] = ""; int k_ = lookup(r, i, name, a_); CHECK(k_); \
	REQUIRE(k_ == 0, "child %d answers %s with %s, set in another process", r->kid[i], name, a_); } while (0)

/* Child i answers itself with the template's records and threads. */
static int child_has_template_state(struct rp *r, int i)
{
	char out[4096];
	CHECK(control(r, i, "status", NULL, NULL, out, sizeof out));
	REQUIRE(rp_field(out, "(pid ") == r->kid[i], "child %d: unbound-control status: %.200s",
	        r->kid[i], out);
	HAS(i, "config.test", "192.0.2.1");
	HAS(i, "before.test", "192.0.2.2");
	REQUIRE(rp_threads(r->kid[i]) == rp_threads(r->tmpl), "child %d has %d threads, the template %d",
	        r->kid[i], rp_threads(r->kid[i]), rp_threads(r->tmpl));
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], text[2048], out[4096];
	REQUIRE(rp_which("unbound", bin, sizeof bin), "unbound is not installed (make deps)");
	REQUIRE(rp_which("unbound-control", ctl_bin, sizeof ctl_bin), "unbound-control is not installed");
	r->port = rp_free_port();
	snprintf(text, sizeof text, conf, r->port, THREADS, as_user ? "unbound" : "", r->dir, r->dir);
	if (as_user)
		chmod(r->dir, 0755);
	REQUIRE(rp_write_file(rp_path(r, "unbound.conf", cfg, sizeof cfg), text) == 0, "cannot write %s", cfg);
	const char *argv[] = { bin, "-d", "-c", cfg, NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 10000) == 0, "unbound does not listen on %d", r->port);

	/* State before the freeze: a record added at run time. */
	CHECK(control(r, -1, "local_data", "before.test.", "A 192.0.2.2", out, sizeof out));
	HAS(-1, "before.test", "192.0.2.2");
	REQUIRE(rp_threads(r->tmpl) >= THREADS, "unbound runs %d threads", rp_threads(r->tmpl));
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));

	/* Each child answers with the template's records. */
	for (int i = 0; i < 2; i++)
		CHECK(child_has_template_state(r, i));

	/* A record added in child 0 is absent from child 1. */
	CHECK(control(r, 0, "local_data", "child0.test.", "A 192.0.2.3", out, sizeof out));
	HAS(0, "child0.test", "192.0.2.3");
	LACKS(1, "child0.test");

	if (as_user) {   /* SIGTERM to child 0 ends it alone (a reload would lack root) */
		kill(r->kid[0], SIGTERM);
		REQUIRE(rp_wait_gone(r->kid[0], 10000), "child %d does not exit on SIGTERM", r->kid[0]);
		CHECK(child_has_template_state(r, 1));
		CHECK(rp_spawn(r, 1));
		CHECK(child_has_template_state(r, 2));
		return 0;
	}

	/* SIGHUP to child 0 reloads it alone: back to the config's records. */
	kill(r->kid[0], SIGHUP);
	long long deadline = rp_now_ms() + 10000;
	for (;;) {
		char a[32];
		int k = lookup(r, 0, "before.test", a);
		CHECK(k);
		if (k == 0)
			break;
		REQUIRE(rp_now_ms() < deadline, "child %d still has before.test 10 s after SIGHUP", r->kid[0]);
		rp_sleep_ms(50);
	}
	HAS(0, "config.test", "192.0.2.1");
	CHECK(child_has_template_state(r, 1));
	CHECK(rp_still_template(r));

	/* The template is unchanged: a new child has its records and nothing else. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_has_template_state(r, 2));
	LACKS(2, "child0.test");
	return 0;
}

/* The children make their control sockets in /tmp/nuwa-EUID of the uid
 * they have (docs/cli.md): that directory is removed if this case made it
 * and it is empty again. */
static int run_as_user(struct rp *r)
{
	struct passwd *pw = getpwnam("unbound");
	REQUIRE(pw, "there is no user unbound (the unbound package makes it)");
	char dir[64];
	snprintf(dir, sizeof dir, "/tmp/nuwa-%u", (unsigned)pw->pw_uid);
	int existed = access(dir, F_OK) == 0;
	as_user = 1;
	int rc = run(r);
	rp_stop(r);
	if (!existed)
		rmdir(dir);
	return rc;
}

/* The same with Debian's `username: "unbound"`: privileges dropped after start. */
const struct rp_case case_unbound_user = {
	"unbound-user",
	"username unbound: each child answers with the pre-freeze record and its own control socket, "
	"records and SIGTERM stay in their child, template unchanged",
	run_as_user,
};

const struct rp_case case_unbound = {
	"unbound",
	"num-threads 4: each child answers with the pre-freeze record, records and SIGHUP reload "
	"stay in their child, template unchanged",
	run,
};
