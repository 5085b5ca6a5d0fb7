/* What `nuwa status` shows: mode, state, threads, descriptors, children.
 * Runs on the control thread, possibly while every other thread is parked
 * (one of them may hold the malloc lock): formats into the caller's buffer
 * and allocates nothing. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlsock.h"
#include "fdremap.h"
#include "freeze.h"
#include "pool.h"

static const char *const mode_names[] = { "clone", "template", "snapshot" };
static const char *const state_names[] = { "running", "freezing", "template" };

struct out {
	char *buf;
	size_t len, off;
};

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->off < o->len ? o->len - o->off : 0;
	int n = vsnprintf(room ? o->buf + o->off : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->off += (size_t)n;
}

/* The control socket's own part: its path, the children spawned through it. */
static void put_ctlsock(struct out *o, int json)
{
	size_t room = o->off < o->len ? o->len - o->off : 0;
	o->off += ctlsock_describe(room ? o->buf + o->off : NULL, room, json);
}

static void comm_of(pid_t tid, char *name, size_t len)
{
	nuwa_task_comm(tid, name, len);
	/* names go into JSON strings: keep them printable and quote-free */
	for (char *p = name; *p; p++)
		if (*p < 0x20 || *p == '"' || *p == '\\')
			*p = '?';
}

/* What a thread does: "idle in poll", "idle in futex (system call)" for one
 * asleep in the kernel outside any wrapper (FP_KERNEL, call nr), or busy. */
static void doing_text(char *buf, size_t len, int idle, long nr, const char *busy)
{
	char sys[32];
	if (idle == FP_KERNEL) {
		syscall_name(nr, sys, sizeof sys);
		snprintf(buf, len, "idle in %s (system call)", sys);
	} else if (idle) {
		snprintf(buf, len, "idle in %s", freeze_point_name(idle));
	} else {
		snprintf(buf, len, "%s", busy);
	}
}

static void thread_line(struct out *o, int json, int first, pid_t tid, const char *doing)
{
	char name[32];
	comm_of(tid, name, sizeof name);
	if (json)
		put(o, "%s{\"tid\":%d,\"name\":\"%s\",\"doing\":\"%s\"}", first ? "" : ",", tid, name, doing);
	else
		put(o, "  thread %d %-16s %s\n", tid, name, doing);
}

size_t nuwa_status_text(char *buf, size_t len, int json)
{
	struct out o = { buf, len, 0 };
	int st = nuwa_state;
	pid_t pid = (pid_t)sys_getpid();
	if (json)
		put(&o, "{\"pid\":%d,\"mode\":\"%s\",\"state\":\"%s\",\"spawned\":%s,\"threads\":[",
		    pid, mode_names[nuwa_cfg.mode], state_names[st], nuwa_spawned ? "true" : "false");
	else
		put(&o, "pid %d\nmode %s\nstate %s\nspawned %s\n", pid, mode_names[nuwa_cfg.mode],
		    state_names[st], nuwa_spawned ? "yes" : "no");

	int first = 1;
	if (st == NUWA_STATE_TEMPLATE) {
		for (int i = 0; i < nuwa_ft.nslots; i++) {
			struct park_slot *s = &nuwa_ft.slots[i];
			if (s->state != SLOT_PARKED)
				continue;
			char doing[64];
			doing_text(doing, sizeof doing, s->idle_at, s->kernel_nr, "parked busy");
			thread_line(&o, json, first, s->tid, doing);
			first = 0;
		}
	} else {
		registry_lock();
		for (struct nuwa_thread *t = registry_head; t; t = t->next) {
			char doing[64];
			long nr = t->idle ? -1 : task_syscall_asleep(t->tid);
			doing_text(doing, sizeof doing, nr >= 0 ? FP_KERNEL : t->idle, nr, "busy");
			thread_line(&o, json, first, t->tid, doing);
			first = 0;
		}
		registry_unlock();
	}

	if (json)
		put(&o, "],\"descriptors\":[");
	char fds[8192];
	size_t n = fdremap_describe(fds, sizeof fds);
	if (n >= sizeof fds)
		n = sizeof fds - 1;
	fds[n] = 0;
	first = 1;
	for (char *line = fds, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (json) {
			int fd = -1;
			char kind[32] = "", policy[32] = "";
			sscanf(line, "%d %31s %31s", &fd, kind, policy);
			put(&o, "%s{\"fd\":%d,\"kind\":\"%s\",\"policy\":\"%s\"}", first ? "" : ",", fd, kind,
			    policy);
		} else {
			put(&o, "  fd %s\n", line);
		}
		first = 0;
	}

	/* the children libnuwa reaps (not the program's own, from nuwa_clone) */
	pid_t kids[1024];
	int nk = 0;
	for (int i = 0; i < nuwa_children_n() && nk < 1024; i++)
		if (nuwa_child_at(i)->kind != NUWA_CHILD_APP && nuwa_child_at(i)->kind != NUWA_CHILD_POOL &&
		    nuwa_child_at(i)->kind != NUWA_CHILD_FORK)
			kids[nk++] = nuwa_child_at(i)->pid;
	/* the last children reaped, newest first, and how they ended */
	const struct nuwa_child_exit *ex;
	int nx = nuwa_child_exits(&ex);
	size_t room;
	if (json) {
		put(&o, "],");
		put_ctlsock(&o, 1);
		put(&o, ",");
		room = o.off < o.len ? o.len - o.off : 0;
		o.off += pool_describe(room ? o.buf + o.off : NULL, room, 1);
		put(&o, ",\"children\":[");
		for (int i = 0; i < nk; i++)
			put(&o, "%s%d", i ? "," : "", kids[i]);
		put(&o, "],\"exited\":[");
		for (int i = 0; i < nx; i++) {
			char name[32];
			if (WIFEXITED(ex[i].wstatus))
				put(&o, "%s{\"pid\":%d,\"exit_code\":%d}", i ? "," : "", ex[i].pid,
				    WEXITSTATUS(ex[i].wstatus));
			else
				put(&o, "%s{\"pid\":%d,\"signal\":%d,\"signal_name\":\"%s\"}", i ? "," : "",
				    ex[i].pid, WTERMSIG(ex[i].wstatus),
				    nuwa_signal_name(WTERMSIG(ex[i].wstatus), name, sizeof name));
		}
		put(&o, "]}\n");
	} else {
		put_ctlsock(&o, 0);
		room = o.off < o.len ? o.len - o.off : 0;
		o.off += pool_describe(room ? o.buf + o.off : NULL, room, 0);
		put(&o, "children %d", nk);
		for (int i = 0; i < nk; i++)
			put(&o, " %d", kids[i]);
		put(&o, "\n");
		put(&o, "exited %d (last %d, newest first)\n", nx, NUWA_CHILD_EXITS);
		for (int i = 0; i < nx; i++) {
			char name[32];
			if (WIFEXITED(ex[i].wstatus))
				put(&o, "  child %d exit %d\n", ex[i].pid, WEXITSTATUS(ex[i].wstatus));
			else
				put(&o, "  child %d signal %d (%s)\n", ex[i].pid, WTERMSIG(ex[i].wstatus),
				    nuwa_signal_name(WTERMSIG(ex[i].wstatus), name, sizeof name));
		}
	}
	return o.off;
}
