/* memcached -t 4: keys stored before the freeze are in every child, each
 * child runs its 4 workers under 50 concurrent clients for 10 s, a key set
 * in one child is absent from the other, SIGTERM ends only the child it is
 * sent to, and a child spawned last has exactly the template's keys. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cases.h"

#define WORKERS 4
#define CLIENTS 50
#define LOAD_MS 10000

static const char *const before[] = { "before-freeze-1", "before-freeze-2", "before-freeze-3" };

/* `stats` then `get keys`: who answered (pid), its worker count, the reply. */
struct mc_view { long pid, threads; char text[16384]; };

static int mc_look(struct rp *r, struct mc_view *v, const char *keys)
{
	char req[512];
	snprintf(req, sizeof req, "stats\r\nget %s\r\nversion\r\n", keys);
	REQUIRE(rp_tcp(r->port, req, v->text, sizeof v->text, "VERSION ", 5000) > 0,
	        "memcached on port %d does not answer `stats`", r->port);
	v->pid = rp_field(v->text, "STAT pid ");
	v->threads = rp_field(v->text, "STAT threads ");
	return 0;
}

static int has_key(const struct mc_view *v, const char *key)
{
	char want[128];
	snprintf(want, sizeof want, "VALUE %s ", key);
	return strstr(v->text, want) != NULL;
}

static int mc_set(struct rp *r, const char *key, const char *value)
{
	char req[512], resp[256];
	snprintf(req, sizeof req, "set %s 0 0 %zu\r\n%s\r\n", key, strlen(value), value);
	REQUIRE(rp_tcp(r->port, req, resp, sizeof resp, "\r\n", 5000) > 0 && strstr(resp, "STORED"),
	        "set %s: %s", key, resp);
	return 0;
}

/* Child i answers itself, with its workers and every pre-freeze key. */
static int child_has_template_state(struct rp *r, int i)
{
	struct mc_view v;
	CHECK(rp_only(r, i));
	int rc = mc_look(r, &v, "before-freeze-1 before-freeze-2 before-freeze-3");
	rp_all(r);
	CHECK(rc);
	REQUIRE(v.pid == r->kid[i], "child %d: `stats` answered by pid %ld", r->kid[i], v.pid);
	REQUIRE(v.threads == WORKERS, "child %d: `stats` says threads %ld, not %d", r->kid[i],
	        v.threads, WORKERS);
	for (int k = 0; k < 3; k++)
		REQUIRE(has_key(&v, before[k]), "child %d lacks key %s set before the freeze",
		        r->kid[i], before[k]);
	REQUIRE(rp_threads(r->kid[i]) == rp_threads(r->tmpl), "child %d has %d threads, the template %d",
	        r->kid[i], rp_threads(r->kid[i]), rp_threads(r->tmpl));
	return 0;
}

/* ---- 50 concurrent clients, reconnecting every 100 requests ---- */
struct load { struct rp *r; int id; long ops, errors, conns[RP_MAXKIDS]; char err[256]; };

static void *client(void *arg)
{
	struct load *l = arg;
	long long end = rp_now_ms() + LOAD_MS;
	char req[512], resp[4096], key[64], val[64];
	snprintf(key, sizeof key, "load-%d", l->id);
	while (rp_now_ms() < end && l->errors == 0) {
		int fd = rp_connect(l->r->port, 5000);
		if (fd < 0 || rp_converse(fd, "stats\r\n", resp, sizeof resp, "END\r\n", 5000) < 0) {
			snprintf(l->err, sizeof l->err, "client %d: no answer to stats", l->id);
			l->errors++;
			if (fd >= 0)
				close(fd);
			break;
		}
		long pid = rp_field(resp, "STAT pid ");
		for (int k = 0; k < l->r->nkids; k++)
			l->conns[k] += pid == l->r->kid[k];
		for (int n = 0; n < 100 && l->errors == 0; n++, l->ops++) {
			snprintf(val, sizeof val, "%d-%ld", l->id, l->ops);
			snprintf(req, sizeof req, "set %s 0 0 %zu\r\n%s\r\nget %s\r\n", key, strlen(val), val, key);
			char want[256];
			snprintf(want, sizeof want, "STORED\r\nVALUE %s 0 %zu\r\n%s\r\nEND\r\n", key, strlen(val), val);
			if (rp_converse(fd, req, resp, sizeof resp, "END\r\n", 5000) < 0 || strcmp(resp, want)) {
				snprintf(l->err, sizeof l->err, "client %d (pid %ld): sent set+get %s, got \"%.80s\"",
				         l->id, pid, val, resp);
				l->errors++;
			}
		}
		close(fd);
	}
	return NULL;
}

static int load_children(struct rp *r)
{
	static struct load l[CLIENTS];
	pthread_t t[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		l[i] = (struct load){ .r = r, .id = i };
		REQUIRE(pthread_create(&t[i], NULL, client, &l[i]) == 0, "pthread_create");
	}
	long ops = 0, errors = 0, conns[RP_MAXKIDS] = { 0 };
	const char *err = NULL;
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(t[i], NULL);
		ops += l[i].ops;
		errors += l[i].errors;
		if (l[i].errors && !err)
			err = l[i].err;
		for (int k = 0; k < r->nkids; k++)
			conns[k] += l[i].conns[k];
	}
	REQUIRE(errors == 0, "%ld of %d clients failed under load; first: %s", errors, CLIENTS, err);
	for (int k = 0; k < r->nkids; k++)
		REQUIRE(conns[k] > 0, "child %d took none of the clients' connections", r->kid[k]);
	REQUIRE(ops > 0, "no request completed under load");
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], port[16];
	REQUIRE(rp_which("memcached", bin, sizeof bin), "memcached is not installed (make deps)");
	r->port = rp_free_port();
	snprintf(port, sizeof port, "%d", r->port);
	const char *argv[] = { bin, "-l", "127.0.0.1", "-p", port, "-U", "0", "-t", "4",
	                       "-u", "root", "-c", "1024", NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 10000) == 0, "memcached does not listen on %d", r->port);

	/* State before the freeze. */
	for (int k = 0; k < 3; k++)
		CHECK(mc_set(r, before[k], "template"));
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));

	/* Each child serves on the shared socket with the template's keys and workers. */
	for (int i = 0; i < 2; i++)
		CHECK(child_has_template_state(r, i));

	/* Both children under 50 concurrent clients: every answer right. */
	CHECK(load_children(r));

	/* A key set in child 0 is absent from child 1. */
	struct mc_view v;
	CHECK(rp_only(r, 0));
	int rc = mc_set(r, "set-in-child-0", "x");
	rp_all(r);
	CHECK(rc);
	CHECK(rp_only(r, 1));
	rc = mc_look(r, &v, "set-in-child-0 before-freeze-1");
	rp_all(r);
	CHECK(rc);
	REQUIRE(v.pid == r->kid[1] && !has_key(&v, "set-in-child-0") && has_key(&v, "before-freeze-1"),
	        "child %d (answered by %ld) sees child %d's key or lost a template key", r->kid[1], v.pid,
	        r->kid[0]);

	/* SIGTERM to child 0 ends it alone. */
	kill(r->kid[0], SIGTERM);
	REQUIRE(rp_wait_gone(r->kid[0], 10000), "child %d does not exit on SIGTERM", r->kid[0]);
	CHECK(child_has_template_state(r, 1));
	CHECK(rp_still_template(r));

	/* The template is unchanged: a new child has its keys and nothing else. */
	CHECK(rp_spawn(r, 1));
	CHECK(child_has_template_state(r, 2));
	CHECK(rp_only(r, 2));
	rc = mc_look(r, &v, "set-in-child-0 load-0");
	rp_all(r);
	CHECK(rc);
	REQUIRE(!has_key(&v, "set-in-child-0") && !has_key(&v, "load-0"),
	        "a child spawned last has keys set in other children");
	return 0;
}

const struct rp_case case_memcached = {
	"memcached",
	"4 workers and the pre-freeze keys in each child, 50 clients x 10 s right, "
	"keys and SIGTERM stay in their child, template unchanged",
	run,
};
