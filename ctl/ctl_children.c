/* The children spawned through the control socket, and the socket's part of
 * `nuwa status`.  The children are entries of libnuwa's one list of children
 * (base/children.c): made by the core's spawn, reaped by the core, which
 * reports each exit here (ctlsock_child_exited) so that the connection that
 * waits for it hears the exit status.  Control thread only. */
#include <signal.h>
#include <stdio.h>

#include "ctlsock_int.h"

/* ---- children ------------------------------------------------------------- */
/* The children are the core's list (base/children.c): an entry exists from
 * the spawn until the core has reaped the child and told us so, on this
 * same thread. */

int ctl_children_free(void)
{
	return nuwa_children_max() - nuwa_children_n();
}

int ctl_children_live(void)
{
	return nuwa_children_count(NUWA_CHILD_SPAWN);
}

/* Connection c waits for child pid: it will be told the exit status. */
void ctl_child_wait(pid_t pid, struct ctl_conn *c)
{
	struct nuwa_child *ch = nuwa_child_find(pid);
	if (!ch)
		return;
	ch->waiter = ctl_conn_index(c);
	ch->waiter_serial = c->serial;
	c->waited++;
}

void ctl_child_told(pid_t pid, struct ctl_conn *c)
{
	struct nuwa_child *ch = nuwa_child_find(pid);
	if (!ch)
		return;
	ch->teller = ctl_conn_index(c);
	ch->teller_serial = c->serial;
}

static int told_on(const struct nuwa_child *ch, const struct ctl_conn *c)
{
	return ch->teller == ctl_conn_index(c) && ch->teller_serial == c->serial;
}

/* Every byte queued on c reached the client's socket: it can read the pids
 * even if this process dies now; their children may outlive us. */
void ctl_children_told_sent(struct ctl_conn *c)
{
	for (int i = 0; i < nuwa_children_n(); i++) {
		struct nuwa_child *ch = nuwa_child_at(i);
		if (told_on(ch, c)) {
			nuwa_child_release(ch);
			ch->teller = -1;
		}
	}
}

/* c goes before its pids were sent: nobody knows those children. */
void ctl_children_untold(struct ctl_conn *c)
{
	for (int i = 0; i < nuwa_children_n(); i++) {
		struct nuwa_child *ch = nuwa_child_at(i);
		if (!told_on(ch, c))
			continue;
		nuwa_warn("child %d: its requester (pid %ld) went away before it was told "
		          "the pid; killing the child", ch->pid, (long)c->pid);
		/* unreaped (its entry is here): the pid is still this child's */
		kill(ch->pid, SIGKILL);
		ch->teller = -1;
	}
}

void ctlsock_child_exited(const struct nuwa_child *ch, int wstatus)
{
	ctl_forget_child_socket(ch->pid);
	if (ch->waiter < 0)
		return;
	struct ctl_conn *c = &ctl_conns[ch->waiter];
	if (c->fd < 0 || c->serial != ch->waiter_serial)
		return;
	struct ctl_buf b;
	if (ctl_reply_begin(c, &b, CTL_REP_EXITED, 64) == 0) {
		ctl_put_i32(&b, CTL_F_PID, ch->pid);
		ctl_put_i32(&b, CTL_F_WSTATUS, wstatus);
		ctl_reply_end(c, &b);
	}
	c->waited--;
	ctl_flush(c);
}

/* ---- status ------------------------------------------------------------------- */

size_t ctlsock_describe(char *buf, size_t len, int json)
{
	size_t n = 0;
#define OUT(...) do { \
		int k_ = snprintf(buf ? buf + (n < len ? n : len) : NULL, \
		                  n < len ? len - n : 0, __VA_ARGS__); \
		if (k_ > 0) n += (size_t)k_; \
	} while (0)
	const char *path = ctlsock_path();
	if (json) {
		/* The path is ours (digits, the runtime directory): escape only
		 * what JSON requires. */
		OUT("\"socket\":\"");
		for (const char *p = path; *p; p++) {
			if (*p == '"' || *p == '\\')
				OUT("\\%c", *p);
			else if ((unsigned char)*p < 0x20)
				OUT("\\u%04x", *p);
			else
				OUT("%c", *p);
		}
		OUT("\",\"spawned_children\":[");
		int first = 1;
		for (int i = 0; i < nuwa_children_n(); i++) {
			struct nuwa_child *ch = nuwa_child_at(i);
			if (ch->kind != NUWA_CHILD_SPAWN)
				continue;
			OUT("%s{\"pid\":%ld,\"waited\":%s}", first ? "" : ",", (long)ch->pid,
			    ch->waiter >= 0 ? "true" : "false");
			first = 0;
		}
		OUT("]");
	} else {
		OUT("socket: %s\n", path[0] ? path : "(none)");
		OUT("spawned children running: %d\n", ctl_children_live());
		for (int i = 0; i < nuwa_children_n(); i++) {
			struct nuwa_child *ch = nuwa_child_at(i);
			if (ch->kind == NUWA_CHILD_SPAWN)
				OUT("  child %ld%s\n", (long)ch->pid,
				    ch->waiter >= 0 ? " (a client waits for it)" : "");
		}
	}
#undef OUT
	return n;
}
