/* nginx (daemon off, master_process off) with a thread pool of 4 serving a
 * file through `aio threads`, its descriptor kept by open_file_cache: each
 * child serves the file as the template cached it (the file on disk has been
 * replaced since), SIGUSR1 (reopen logs) makes only the child it is sent to
 * log to the new file, and a child spawned last still logs where the
 * template did. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cases.h"

static const char conf[] =
	"daemon off;\n"
	"master_process off;\n"
	"pid %1$s/nginx.pid;\n"
	"error_log %1$s/error.log info;\n"
	"thread_pool rp threads=4 max_queue=1024;\n"
	"events { worker_connections 256; }\n"
	"http {\n"
	"    log_format rp '$pid $request_uri';\n"
	"    access_log %1$s/access.log rp;\n"
	"    client_body_temp_path %1$s/t-body;\n"
	"    proxy_temp_path %1$s/t-proxy;\n"
	"    fastcgi_temp_path %1$s/t-fcgi;\n"
	"    uwsgi_temp_path %1$s/t-uwsgi;\n"
	"    scgi_temp_path %1$s/t-scgi;\n"
	"    server {\n"
	"        listen 127.0.0.1:%2$d;\n"
	"        root %1$s/www;\n"
	"        sendfile off;\n"
	"        aio threads=rp;\n"
	"        open_file_cache max=16 inactive=1h;\n"
	"        open_file_cache_valid 1h;\n"
	"        location = /pid { return 200 \"pid=$pid\\n\"; }\n"
	"    }\n"
	"}\n";

#define SIZE (256 * 1024)

/* www/data.bin: SIZE bytes of c. */
static int write_data(struct rp *r, char c)
{
	char path[300], tmp[300];
	rp_path(r, "www/data.new", tmp, sizeof tmp);
	static char buf[SIZE];
	memset(buf, c, sizeof buf);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0 && write(fd, buf, sizeof buf) == SIZE && close(fd) == 0, "cannot write %s", tmp);
	REQUIRE(rename(tmp, rp_path(r, "www/data.bin", path, sizeof path)) == 0, "rename %s", tmp);
	return 0;
}

/* GET /data.bin?tag from child i alone (i < 0: whoever): the whole file is c. */
static int serves(struct rp *r, int i, const char *tag, char c)
{
	static char resp[SIZE + 4096];
	char req[256];
	snprintf(req, sizeof req, "GET /data.bin?%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", tag);
	if (i >= 0)
		CHECK(rp_only(r, i));
	int n = rp_tcp(r->port, req, resp, sizeof resp, NULL, 10000);
	if (i >= 0)
		rp_all(r);
	const char *who = i >= 0 ? "child" : "nginx";
	int pid = i >= 0 ? r->kid[i] : r->tmpl;
	char *body = n > 0 ? strstr(resp, "\r\n\r\n") : NULL;
	REQUIRE(body && strstr(resp, " 200 "), "GET /data.bin from %s %d: \"%.200s\"", who, pid, resp);
	body += 4;
	REQUIRE(resp + n - body == SIZE, "%s %d sent %ld bytes of data.bin, not %d", who, pid,
	        (long)(resp + n - body), SIZE);
	for (int k = 0; k < SIZE; k++)
		REQUIRE(body[k] == c, "%s %d: byte %d of data.bin is '%c', not '%c'", who, pid, k, body[k], c);
	return 0;
}

/* The access log `name` gets the line for tag (bounded wait: nginx logs
 * after it has answered). */
static int logged(struct rp *r, const char *name, const char *tag)
{
	char path[300], line[512], want[128];
	snprintf(want, sizeof want, "/data.bin?%s\n", tag);
	long long deadline = rp_now_ms() + 5000;
	do {
		FILE *f = fopen(rp_path(r, name, path, sizeof path), "re");
		int found = 0;
		while (f && !found && fgets(line, sizeof line, f))
			found = strstr(line, want) != NULL;
		if (f)
			fclose(f);
		if (found)
			return 1;
		rp_sleep_ms(20);
	} while (rp_now_ms() < deadline);
	return 0;
}

static int run(struct rp *r)
{
	char bin[512], text[4096], cfg[300], path[300], err[300];
	REQUIRE(rp_which("nginx", bin, sizeof bin), "nginx is not installed (make deps)");
	r->port = rp_free_port();
	snprintf(text, sizeof text, conf, r->dir, r->port);
	REQUIRE(rp_write_file(rp_path(r, "nginx.conf", cfg, sizeof cfg), text) == 0, "cannot write %s", cfg);
	REQUIRE(mkdir(rp_path(r, "www", path, sizeof path), 0755) == 0, "mkdir %s", path);
	CHECK(write_data(r, 'T'));
	const char *argv[] = { bin, "-p", r->dir, "-c", cfg, "-e", rp_path(r, "error.log", err, sizeof err),
	                       NULL };
	CHECK(rp_start(r, argv, NULL));
	REQUIRE(rp_wait_tcp(r->port, 10000) == 0, "nginx does not listen on %d", r->port);

	/* State before the freeze: data.bin read through the thread pool, its
	 * descriptor cached; the file on disk is replaced, the cache keeps it. */
	CHECK(serves(r, -1, "template", 'T'));
	CHECK(write_data(r, 'N'));
	CHECK(serves(r, -1, "template-cached", 'T'));
	CHECK(rp_freeze(r));
	CHECK(rp_spawn(r, 2));

	/* Each child serves the cached file through its thread pool. */
	for (int i = 0; i < 2; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "child%d", i);
		CHECK(serves(r, i, tag, 'T'));
		REQUIRE(logged(r, "access.log", tag), "child %d did not log %s to access.log", r->kid[i], tag);
		REQUIRE(rp_threads(r->kid[i]) == rp_threads(r->tmpl), "child %d has %d threads, the template %d",
		        r->kid[i], rp_threads(r->kid[i]), rp_threads(r->tmpl));
	}

	/* SIGUSR1 to child 0 reopens its logs alone. */
	char old[300];
	REQUIRE(rename(rp_path(r, "access.log", path, sizeof path),
	               rp_path(r, "access.log.0", old, sizeof old)) == 0, "rename access.log");
	kill(r->kid[0], SIGUSR1);
	long long deadline = rp_now_ms() + 10000;
	int n = 0;
	for (char tag[32];; n++) {
		snprintf(tag, sizeof tag, "after-usr1-%d", n);
		CHECK(serves(r, 0, tag, 'T'));
		if (logged(r, "access.log", tag))
			break;
		REQUIRE(rp_now_ms() < deadline, "child %d does not reopen access.log on SIGUSR1", r->kid[0]);
	}
	CHECK(serves(r, 1, "child1-after", 'T'));
	REQUIRE(logged(r, "access.log.0", "child1-after"), "child %d no longer logs to the old file",
	        r->kid[1]);
	CHECK(rp_still_template(r));

	/* The template is unchanged: a new child serves the cached file and logs
	 * where the template did. */
	CHECK(rp_spawn(r, 1));
	CHECK(serves(r, 2, "child2", 'T'));
	REQUIRE(logged(r, "access.log.0", "child2"), "a child spawned last logs elsewhere than the template");
	return 0;
}

const struct rp_case case_nginx = {
	"nginx",
	"thread_pool + aio threads: each child serves the template's cached file, SIGUSR1 log "
	"reopen stays in its child, template unchanged",
	run,
};
