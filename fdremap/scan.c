/* Discovery: the kernel is the source of truth.  /proc/self/fd gives every
 * descriptor (also those made by libc internals and raw syscalls), its link
 * names the object ("pipe:[ino]", "socket:[ino]", "anon_inode:[eventfd]"),
 * /proc/self/fdinfo/N its state.  Aliases (dup, dup2, F_DUPFD, SCM_RIGHTS to
 * oneself) are found with kcmp(KCMP_FILE), which orders open file
 * descriptions; without kcmp every number is taken as its own description. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/kcmp.h>
#include "fdr.h"
#include "base.h"

int fdr_kcmp_file(pid_t p1, pid_t p2, int a, int b)
{
	return (int)sys_kcmp(p1, p2, KCMP_FILE, a, b);
}

/* Read a whole small proc file into buf (NUL-terminated). */
static long read_file_at(int dfd, const char *name, char *buf, size_t len)
{
	int fd = (int)sys_openat(dfd, name, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	size_t got = 0;
	long r = 0;
	while (got + 1 < len && (r = sys_read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)r;
	sys_close(fd);
	buf[got] = 0;
	return r < 0 ? r : (long)got;
}

int fdr_fdinfo(int fd, char *buf, size_t len)
{
	char name[40];
	fdr_fmt(name, sizeof name, "/proc/self/fdinfo/%d", fd);
	return (int)read_file_at(AT_FDCWD, name, buf, len);
}

/* fdinfo of any size (epoll and inotify list one line per registration). */
static char *fdinfo_alloc(struct fdr_arena *a, int fd)
{
	for (size_t len = 8192;; len *= 4) {
		char *b = fdr_alloc(a, len);
		if (!b)
			return NULL;
		int n = fdr_fdinfo(fd, b, len);
		if (n < 0)
			return NULL;
		if ((size_t)n + 1 < len)
			return b;
	}
}

const char *fdr_field(const char *info, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl)) {
			p += kl;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
	return NULL;
}

/* Is descriptor f an alias of description d? */
static int same_desc(struct fdr_snap *s, const struct fdr_fd *f, const struct fdr_desc *d,
		     int flflags, long efd_id, const long *desc_efd_id)
{
	const struct fdr_fd *r = &s->fds[d->repi];
	const struct fdr_kind_ops *k = fdr_kind(f->kind);
	if (r->kind != f->kind || r->ino != f->ino || r->dev != f->dev)
		return 0;
	if (k->unique_file)
		return 1; /* a socket has exactly one struct file */
	if (efd_id >= 0 && desc_efd_id[d - s->descs] >= 0)
		return efd_id == desc_efd_id[d - s->descs];
	if (s->kcmp_ok)
		return fdr_kcmp_file(s->pid, s->pid, f->fd, d->rep) == 0;
	/* no kcmp: a pipe end with the same flags is taken as one description */
	return k->alias_by_flags && d->flflags == flflags;
}

struct fd_numbers { struct fdr_arena *a; int *nums, n, cap; };

static int add_number(int dfd, const char *name, void *arg)
{
	struct fd_numbers *l = arg;
	int fd = atoi(name);
	if (fd == dfd || nuwa_is_own_fd(fd))
		return 0;
	if (l->n == l->cap) {
		int *t = fdr_alloc(l->a, 2 * l->cap * sizeof *t);
		if (!t)
			return -ENOMEM;
		memcpy(t, l->nums, l->n * sizeof *t);
		l->nums = t;
		l->cap *= 2;
	}
	l->nums[l->n++] = fd;
	return 0;
}

int fdr_scan(struct fdr_snap *s)
{
	struct fdr_arena *a = &s->arena;
	s->pid = (pid_t)sys_getpid();
	s->kcmp_ok = fdr_kcmp_file(s->pid, s->pid, 0, 0) != -ENOSYS;
	int dfd = nuwa_dir_open(AT_FDCWD, "/proc/self/fd");
	if (dfd < 0)
		return dfd;

	/* numbers first: the table is read twice, so nothing may be opened meanwhile
	 * except dfd itself, which is skipped */
	struct fd_numbers l = { a, fdr_alloc(a, 256 * sizeof(int)), 0, 256 };
	if (!l.nums || nuwa_dir_numbers(dfd, add_number, &l) < 0) {
		sys_close(dfd);
		return -ENOMEM;
	}
	int n = l.n, *nums = l.nums;

	s->fds = fdr_alloc(a, (n + 1) * sizeof *s->fds);
	s->descs = fdr_alloc(a, (n + 1) * sizeof *s->descs);
	long *efd_ids = fdr_alloc(a, (n + 1) * sizeof *efd_ids);
	if (!s->fds || !s->descs || !efd_ids) {
		sys_close(dfd);
		return -ENOMEM;
	}
	s->nfds = s->ndescs = 0;
	for (int i = 0; i < n; i++) {
		int fd = nums[i];
		char link[256], name[16];
		fdr_fmt(name, sizeof name, "%d", fd);
		long l = sys_readlinkat(dfd, name, link, sizeof link - 1);
		struct stat st;
		long gfd = sys_fcntl(fd, F_GETFD, 0), gfl = sys_fcntl(fd, F_GETFL, 0);
		if (l < 0 || gfd < 0 || gfl < 0 || sys_fstat(fd, &st) < 0)
			continue; /* closed between getdents and now: cannot happen while frozen */
		link[l] = 0;
		struct fdr_fd *f = &s->fds[s->nfds];
		f->fd = fd;
		f->link = fdr_strdup(a, link);
		f->kind = fdr_classify(link, st.st_mode, fd);
		f->cloexec = (gfd & FD_CLOEXEC) != 0;
		f->ino = st.st_ino;
		f->dev = st.st_dev;
		f->override = fdr_policy_of(fd);
		f->desc = -1;

		const char *info = NULL;
		long efd_id = -1;   /* an identity in fdinfo, for aliases (eventfd-id) */
		if (fdr_kind(f->kind)->fdinfo) {
			info = fdinfo_alloc(a, fd);
			if (!info) {
				nuwa_warn("fdremap: fd %d: cannot read fdinfo; it stays shared", fd);
				f->kind = FDK_ANON;
			} else if (fdr_kind(f->kind)->id) {
				efd_id = fdr_kind(f->kind)->id(info);
			}
		}
		for (int k = 0; k < s->ndescs; k++)
			if (same_desc(s, f, &s->descs[k], (int)gfl, efd_id, efd_ids)) {
				f->desc = k;
				break;
			}
		if (f->desc < 0) {
			struct fdr_desc *d = &s->descs[s->ndescs];
			efd_ids[s->ndescs] = efd_id;
			f->desc = s->ndescs++;
			d->kind = f->kind;
			d->rep = fd;
			d->repi = s->nfds;
			d->flflags = (int)gfl;
			d->chan = -1;
			d->newfd = -1;
			d->end = (gfl & O_ACCMODE) == O_WRONLY;
			const struct fdr_kind_ops *k = fdr_kind(f->kind);
			if (k->discover && k->discover(s, d, info) < 0) {
				nuwa_warn("fdremap: fd %d: cannot parse %s state; it stays shared", fd,
					  fdr_kind_name(f->kind));
				d->kind = f->kind = FDK_ANON;
			}
		}
		s->descs[f->desc].nfd++;
		s->nfds++;
	}
	sys_close(dfd);
	return 0;
}

int fdr_desc_of_fd(const struct fdr_snap *s, int fd)
{
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i].fd == fd)
			return s->fds[i].desc;
	return -1;
}

/* ---- other processes: our children (after an application fork) ----------------- */

/* ppid of pid from /proc/pid/stat ("pid (comm) S ppid ..."; comm may hold ')') */
static pid_t ppid_of(int procfd, const char *pid)
{
	char name[48], st[512];
	fdr_fmt(name, sizeof name, "%s/stat", pid);
	if (read_file_at(procfd, name, st, sizeof st) <= 0)
		return -1;
	char *p = strrchr(st, ')');
	return p && p[1] && p[2] ? (pid_t)strtol(p + 4, NULL, 10) : -1;
}

struct pid_list { pid_t *out; int n, max; const pid_t *parents; int np, procfd; };

/* /proc/PID/task/TID/children: "PID PID ... " */
static int add_children(int tfd, const char *tid, void *arg)
{
	struct pid_list *l = arg;
	char name[64], list[4096];
	fdr_fmt(name, sizeof name, "%s/children", tid);
	if (read_file_at(tfd, name, list, sizeof list) < 0)
		return 0;
	l->procfd = 1;   /* the kernel has children files */
	for (char *q = list; *q && l->n < l->max;) {
		char *end;
		long pid = strtol(q, &end, 10);
		if (end == q)
			break;
		l->out[l->n++] = (pid_t)pid;
		q = end;
	}
	return 0;
}

/* A process whose parent is one of l->parents. */
static int add_if_child(int procfd, const char *pid, void *arg)
{
	struct pid_list *l = arg;
	pid_t pp = ppid_of(procfd, pid);
	for (int i = 0; i < l->np; i++)
		if (pp == l->parents[i] && l->n < l->max) {
			l->out[l->n++] = (pid_t)atoi(pid);
			break;
		}
	return 0;
}

/* Every process whose parent is one of the pids in parents[0..np), from
 * /proc/PID/task/TID/children (one file per thread: a child belongs to the
 * thread that forked it), which reads only these processes' tasks, not
 * every process on the host; without CONFIG_PROC_CHILDREN, from every
 * process's stat. */
static int children_of(const pid_t *parents, int np, pid_t *out, int max)
{
	struct pid_list l = { out, 0, max, parents, np, 0 };
	for (int i = 0; i < np; i++) {
		char path[64];
		fdr_fmt(path, sizeof path, "/proc/%d/task", (int)parents[i]);
		nuwa_dir_walk(AT_FDCWD, path, add_children, &l);
	}
	if (l.procfd || !np)
		return l.n;
	l.n = 0;
	nuwa_dir_walk(AT_FDCWD, "/proc", add_if_child, &l);
	return l.n;
}


static void mark_ino(struct fdr_snap *s, unsigned long ino)
{
	for (int i = 0; i < s->nchans; i++) {
		struct fdr_chan *c = &s->chans[i];
		if (fdr_kind(c->kind)->by_ino && (c->ino[0] == ino || c->ino[1] == ino))
			c->foreign = 1;
	}
}

/* The inode of a pipe or a socket (link "pipe:[N]", "socket:[N]"), else 0. */
unsigned long fdr_channel_ino(int dfd, const char *name)
{
	char link[64];
	long l = sys_readlinkat(dfd, name, link, sizeof link - 1);
	if (l <= 0)
		return 0;
	link[l] = 0;
	if (strncmp(link, "pipe:[", 6) && strncmp(link, "socket:[", 8))
		return 0;
	return strtoul(strchr(link, '[') + 1, NULL, 10);
}

struct foreign_fd { struct fdr_snap *s; pid_t pid; };

/* One descriptor of another process: is it one of our channels? */
static int mark_foreign_fd(int dfd, const char *name, void *arg)
{
	struct foreign_fd *f = arg;
	struct fdr_snap *s = f->s;
	unsigned long ino = fdr_channel_ino(dfd, name);
	if (ino) {
		mark_ino(s, ino);
		return 0;
	}
	char link[64];
	long l = sys_readlinkat(dfd, name, link, sizeof link - 1);
	if (l <= 0 || !s->kcmp_ok)
		return 0;
	link[l] = 0;
	if (strncmp(link, "anon_inode:", 11))
		return 0;
	int tfd = atoi(name);
	for (int i = 0; i < s->nchans; i++) {
		struct fdr_chan *c = &s->chans[i];
		/* an object wholly ours (eventfd, epoll, ...), by its struct file */
		if (fdr_kind(c->kind)->decide != fdr_decide_own || c->foreign)
			continue;
		int rep = -1;
		for (int j = 0; j < s->ndescs && rep < 0; j++)
			if (s->descs[j].chan == i)
				rep = s->descs[j].rep;
		if (rep >= 0 && fdr_kcmp_file(s->pid, f->pid, rep, tfd) == 0)
			c->foreign = 1;
	}
	return 0;
}

/* Other processes descending from us (not libnuwa's clones) that hold one
 * of our channels: then the channel is not internal and stays shared. */
void fdr_mark_foreign(struct fdr_snap *s)
{
	enum { MAXD = 1024 };
	pid_t *desc = fdr_alloc(&s->arena, MAXD * sizeof *desc), *lvl = fdr_alloc(&s->arena, MAXD * sizeof *lvl);
	if (!desc || !lvl)
		return;
	int nd = 0, nl = 1;
	lvl[0] = s->pid;
	while (nl > 0 && nd < MAXD) {
		pid_t kids[256];
		int nk = children_of(lvl, nl, kids, 256);
		nl = 0;
		for (int i = 0; i < nk; i++)
			/* libnuwa's own children (base/children.c) are clones: one that
			 * has not rebuilt its channels yet still holds ours */
			if (!nuwa_child_find(kids[i]) && nd < MAXD) {
				desc[nd++] = kids[i];
				lvl[nl++] = kids[i];
			}
	}
	for (int k = 0; k < nd; k++) {
		char path[48];
		fdr_fmt(path, sizeof path, "/proc/%d/fd", (int)desc[k]);
		struct foreign_fd f = { s, desc[k] };
		nuwa_dir_walk(AT_FDCWD, path, mark_foreign_fd, &f);
	}
}
