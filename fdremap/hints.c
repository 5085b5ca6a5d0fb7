/* What the kernel does not tell cheaply, recorded as it happens:
 *  - which two sockets were made together by socketpair(), which pipes were
 *    made by pipe()/pipe2() (keyed by inode: numbers get dup'ed and reused,
 *    sockfs/pipefs inode numbers are not reused before 2^32 allocations);
 *  - the path behind each inotify watch (fdinfo only has an inode + handle);
 *  - which pipe/socket inodes the process inherited (present when libnuwa
 *    was loaded: a make jobserver pipe has both ends here and is still
 *    shared with make);
 *  - libnuwa's own descriptors and the children libnuwa forked.
 *
 * Writers are application threads inside the wrappers: they hold nuwa_lock
 * inside a libnuwa critical section, so they are never parked half-way.
 * Readers on the control thread run while every application thread is
 * parked (outside critical sections), so they read without the lock. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include "fdr.h"
#include "fdremap.h"
#include "nuwa.h"
#include "base.h"

static nuwa_lock_t hint_lock;

static void hl_lock(void)   { nuwa_cs_enter(); nuwa_lock(&hint_lock); }
static void hl_unlock(void) { nuwa_unlock(&hint_lock); nuwa_cs_leave(); }

void fdremap_after_app_fork(void)
{
	hint_lock.v = 0;
}

/* ---- policy overrides by descriptor number ---------------------------------- */
#define MAX_POL 1024
static struct { int fd, pol; } pols[MAX_POL];
static int n_pols;

int fdremap_set_policy(int fd, int policy)
{
	if (fd < 0)
		return -EBADF;
	if (policy < NUWA_FD_AUTO || policy > NUWA_FD_CLOSE)
		return -EINVAL;
	int r = 0;
	hl_lock();
	int i;
	for (i = 0; i < n_pols && pols[i].fd != fd; i++)
		;
	if (policy == NUWA_FD_AUTO) {
		if (i < n_pols)
			pols[i] = pols[--n_pols];
	} else if (i < n_pols) {
		pols[i].pol = policy;
	} else if (n_pols < MAX_POL) {
		pols[n_pols].fd = fd;
		pols[n_pols++].pol = policy;
	} else {
		r = -ENOSPC;
	}
	hl_unlock();
	return r;
}

int fdr_policy_of(int fd)
{
	for (int i = 0; i < n_pols; i++)
		if (pols[i].fd == fd)
			return pols[i].pol;
	return NUWA_FD_AUTO;
}

NUWA_EXPORT int nuwa_fd_policy(int fd, int policy)
{
	if (fd < 0 || nuwa_is_own_fd(fd))
		return -EBADF;
	if (policy < NUWA_FD_AUTO || policy > NUWA_FD_CLOSE)
		return -EINVAL;
	long r = sys_fcntl(fd, F_GETFD, 0);
	if (r < 0)
		return (int)r;
	return fdremap_set_policy(fd, policy);
}

/* ---- pipe / socketpair hints by inode ------------------------------------------- */
struct ihint { unsigned long ino, peer; int type; }; /* type: -1 pipe, else socket type */
static struct ihint *ih;        /* open addressing, ino 0 = empty */
static size_t ih_cap, ih_n;

static size_t ih_slot(struct ihint *t, size_t cap, unsigned long ino)
{
	size_t i = (ino * 0x9E3779B97F4A7C15ull) & (cap - 1);
	while (t[i].ino && t[i].ino != ino)
		i = (i + 1) & (cap - 1);
	return i;
}

static int ih_grow(size_t want)
{
	size_t cap = ih_cap ? ih_cap : 256;
	while (want * 2 > cap)
		cap *= 2;
	if (cap == ih_cap)
		return 0;
	long p = sys_mmap(0, cap * sizeof *ih, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	if (p < 0 && p > -4096)
		return (int)p;
	struct ihint *t = (struct ihint *)p;
	for (size_t i = 0; i < ih_cap; i++)
		if (ih[i].ino)
			t[ih_slot(t, cap, ih[i].ino)] = ih[i];
	if (ih)
		sys_munmap(ih, ih_cap * sizeof *ih);
	ih = t;
	ih_cap = cap;
	return 0;
}

static void ih_put(unsigned long ino, unsigned long peer, int type)
{
	if (!ino || ih_grow(ih_n + 1) < 0)
		return;
	size_t i = ih_slot(ih, ih_cap, ino);
	if (!ih[i].ino)
		ih_n++;
	ih[i].ino = ino;
	ih[i].peer = peer;
	ih[i].type = type;
}

static unsigned long fd_ino(int fd)
{
	struct stat st;
	return sys_fstat(fd, &st) < 0 ? 0 : st.st_ino;
}

void fdremap_note_pipe(const int fds[2], int flags)
{
	(void)flags; /* O_DIRECT, O_NONBLOCK are in fdinfo */
	unsigned long ino = fd_ino(fds[0]);
	hl_lock();
	ih_put(ino, 0, -1);
	hl_unlock();
}

void fdremap_note_socketpair(const int sv[2], int domain, int type)
{
	if (domain != AF_UNIX)
		return;
	unsigned long a = fd_ino(sv[0]), b = fd_ino(sv[1]);
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	hl_lock();
	ih_put(a, b, type);
	ih_put(b, a, type);
	hl_unlock();
}

int fdr_hint_pair(unsigned long ino, unsigned long *peer, int *type)
{
	if (!ih_cap)
		return 0;
	size_t i = ih_slot(ih, ih_cap, ino);
	if (!ih[i].ino || ih[i].type < 0)
		return 0;
	*peer = ih[i].peer;
	*type = ih[i].type;
	return 1;
}

int fdr_hint_pipe(unsigned long ino)
{
	if (!ih_cap)
		return 0;
	size_t i = ih_slot(ih, ih_cap, ino);
	return ih[i].ino == ino && ih[i].type == -1;
}

/* ---- inotify watch paths ---------------------------------------------------------- */
struct whint { int ifd, wd; unsigned mask; char *path; };
static struct fdr_arena w_arena;
static struct whint *wh;
static int wh_n, wh_cap;

void fdremap_note_inotify_watch(int ifd, int wd, const char *path, unsigned mask)
{
	char abs[4096 + 2];
	size_t pl = strlen(path);
	if (path[0] == '/') {
		if (pl >= sizeof abs)
			return;
		memcpy(abs, path, pl + 1);
	} else {
		/* relative to the cwd of this moment: the child may chdir later */
		long r = sys_getcwd(abs, sizeof abs - 1);
		if (r < 0)
			return;
		size_t cl = strlen(abs);
		if (cl + 1 + pl >= sizeof abs)
			return;
		abs[cl] = '/';
		memcpy(abs + cl + 1, path, pl + 1);
	}
	hl_lock();
	int i;
	for (i = 0; i < wh_n && !(wh[i].ifd == ifd && wh[i].wd == wd); i++)
		;
	if (i == wh_n) {
		if (wh_n == wh_cap) {
			int cap = wh_cap ? wh_cap * 2 : 64;
			struct whint *t = fdr_alloc(&w_arena, cap * sizeof *t);
			if (!t)
				goto out;
			if (wh_n)
				memcpy(t, wh, wh_n * sizeof *t);
			wh = t;
			wh_cap = cap;
		}
		wh_n++;
	}
	wh[i].ifd = ifd;
	wh[i].wd = wd;
	wh[i].mask = mask;
	wh[i].path = fdr_strdup(&w_arena, abs);
out:
	hl_unlock();
}

void fdremap_note_close_range(unsigned first, unsigned last)
{
	if (!wh_n)
		return;
	hl_lock();
	for (int i = 0; i < wh_n;)
		if ((unsigned)wh[i].ifd >= first && (unsigned)wh[i].ifd <= last)
			wh[i] = wh[--wh_n];
		else
			i++;
	hl_unlock();
}

void fdremap_note_close(int fd)
{
	if (fd >= 0)
		fdremap_note_close_range((unsigned)fd, (unsigned)fd);
}

/* The recorded path of watch wd on ifd, if it still names the watched inode. */
const char *fdr_hint_watch(int ifd, int wd, unsigned long ino, unsigned sdev, const char **err)
{
	for (int i = 0; i < wh_n; i++) {
		if (wh[i].ifd != ifd || wh[i].wd != wd)
			continue;
		struct stat st;
		long r = sys_stat(wh[i].path, &st);
		if (r < 0) {
			*err = fdr_errname(r);
			return NULL;
		}
		unsigned kdev = (major(st.st_dev) << 20) | minor(st.st_dev);
		if (st.st_ino != ino || kdev != sdev) {
			*err = "path now names another file";
			return NULL;
		}
		return wh[i].path;
	}
	*err = "path unknown (watch not added through inotify_add_watch)";
	return NULL;
}

/* ---- inherited pipe/socket inodes ------------------------------------------- */
#define MAX_INH 256
static unsigned long inh[MAX_INH];
static int n_inh;

int fdr_inherited(unsigned long ino)
{
	for (int i = 0; i < n_inh; i++)
		if (inh[i] == ino)
			return 1;
	return 0;
}

static int note_inherited(int dfd, const char *name, void *arg)
{
	unsigned long ino = fdr_channel_ino(dfd, name);
	if (ino && n_inh < MAX_INH)
		inh[n_inh++] = ino;
	return 0;
}

/* Runs when libnuwa is loaded, before the program's constructors. */
__attribute__((constructor)) static void fdr_record_inherited(void)
{
	nuwa_dir_walk(AT_FDCWD, "/proc/self/fd", note_inherited, NULL);
}

/* ---- pruning at freeze time: drop hints for objects that are gone ---------------- */
void fdr_hints_prune(const struct fdr_snap *s)
{
	if (ih_n > 64) {
		size_t keep = 0;
		for (size_t i = 0; i < ih_cap; i++) {
			if (!ih[i].ino)
				continue;
			int live = 0;
			for (int k = 0; k < s->nfds && !live; k++)
				live = s->fds[k].ino == ih[i].ino &&
				       fdr_kind(s->fds[k].kind)->by_ino;
			if (live)
				keep++;
			else
				ih[i].ino = 0, ih[i].type = 0;
		}
		/* rehash in place through a fresh table: tombstones break probing */
		struct ihint *old = ih;
		size_t oc = ih_cap;
		ih = NULL; ih_cap = 0; ih_n = 0;
		if (ih_grow(keep + 1) == 0)
			for (size_t i = 0; i < oc; i++)
				if (old[i].ino)
					ih_put(old[i].ino, old[i].peer, old[i].type);
		sys_munmap(old, oc * sizeof *old);
	}
	/* watches of descriptors that are no longer inotify instances */
	for (int i = 0; i < wh_n;) {
		int d = fdr_desc_of_fd(s, wh[i].ifd);
		if (d < 0 || s->descs[d].kind != FDK_INOTIFY)
			wh[i] = wh[--wh_n];
		else
			i++;
	}
}
