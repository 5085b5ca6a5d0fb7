/* The one list of the children libnuwa made: its clones, the children
 * spawned from a template, the snapshot template, and the children of
 * nuwa_clone() (which belong to the program: their exit is its to wait for).
 *
 * Each entry but the program's holds a pidfd (CLONE_PIDFD), libnuwa's own
 * descriptor: the control thread polls it and reaps through it
 * (waitid(P_PIDFD)), so while such an entry exists its pid cannot name
 * another process (an unreaped child keeps its pid) and kill(pid) is safe.
 * The program's children (pidfd -1) are forgotten once they are gone
 * (nuwa_children_prune): the program waits for them, and keeping a
 * descriptor for each would change its descriptor table.
 * Control thread only (and the forking thread of a plain fork()'s child,
 * before the control thread exists): no lock. */
#include <errno.h>
#include <signal.h>

#include "base.h"
#include "sys.h"

static struct nuwa_child kids[NUWA_MAX_CHILDREN];
static int nkids, kids_max = NUWA_MAX_CHILDREN;

/* A child that finds no entry is not watched: nobody would reap it or
 * remove its socket.  So libnuwa forks none while the list is full
 * (core/fork.c); only the program's own fork() can find it so (its child
 * is the program's to reap: forkwatch.c then leaves it unwatched). */
int nuwa_children_full(void)
{
	return nkids >= kids_max;
}

int nuwa_children_max(void)
{
	return kids_max;
}

/* NUWA_TEST_MAX_CHILDREN (core/config.c): a smaller list, for tests. */
void nuwa_children_set_max(int n)
{
	if (n > 0 && n <= NUWA_MAX_CHILDREN)
		kids_max = n;
}

struct nuwa_child *nuwa_child_add(pid_t pid, int pidfd, int kind)
{
	if (nkids >= kids_max) {
		nuwa_warn("more than %d live children: child %d not tracked", kids_max,
		          (int)pid);
		sys_close(pidfd);
		return NULL;
	}
	struct nuwa_child *c = &kids[nkids++];
	*c = (struct nuwa_child){ .pid = pid, .pidfd = nuwa_own_fd(nuwa_fd_high(pidfd)),
	                          .kind = kind, .waiter = -1, .ready_fd = -1, .teller = -1 };
	return c;
}

int nuwa_children_n(void)
{
	return nkids;
}

struct nuwa_child *nuwa_child_at(int i)
{
	return i >= 0 && i < nkids ? &kids[i] : NULL;
}

struct nuwa_child *nuwa_child_find(pid_t pid)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i].pid == pid && pid > 0)
			return &kids[i];
	return NULL;
}

int nuwa_children_count(int kind)
{
	int n = 0;
	for (int i = 0; i < nkids; i++)
		n += kind < 0 || kids[i].kind == kind;
	return n;
}

/* Entries move: the last one takes the place of the removed one. */
void nuwa_child_remove(struct nuwa_child *c)
{
	nuwa_own_fd_drop(c->pidfd);
	if (c->ready_fd >= 0)
		nuwa_own_fd_drop(c->ready_fd);
	*c = kids[--nkids];
}

/* A ring of the last exits, for `nuwa status`. */
static struct nuwa_child_exit exits[NUWA_CHILD_EXITS], exits_view[NUWA_CHILD_EXITS];
static int nexits, exits_next;

void nuwa_child_exited(struct nuwa_child *c, int wstatus)
{
	exits[exits_next] = (struct nuwa_child_exit){ c->pid, wstatus, c->kind };
	exits_next = (exits_next + 1) % NUWA_CHILD_EXITS;
	if (nexits < NUWA_CHILD_EXITS)
		nexits++;
	nuwa_child_remove(c);
}

int nuwa_child_exits(const struct nuwa_child_exit **out)
{
	for (int i = 0; i < nexits; i++)
		exits_view[i] = exits[(exits_next - 1 - i + NUWA_CHILD_EXITS) % NUWA_CHILD_EXITS];
	*out = exits_view;
	return nexits;
}

/* The program's children (no pidfd) that it has already waited for.  A
 * zombie still answers kill(0): it is forgotten once it is reaped. */
void nuwa_children_prune(void)
{
	for (int i = nkids - 1; i >= 0; i--)
		if (kids[i].kind == NUWA_CHILD_APP && kids[i].pidfd < 0 &&
		    kill(kids[i].pid, 0) < 0 && errno == ESRCH)
			nuwa_child_remove(&kids[i]);
}

/* In a new process: every entry was the parent's. */
void nuwa_children_forget(void)
{
	while (nkids)
		nuwa_child_remove(&kids[nkids - 1]);
	nexits = exits_next = 0;
}
