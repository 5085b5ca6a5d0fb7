/* fdremap helpers: the mmap arena, placing a rebuilt description on its old
 * numbers, non-blocking writes, /proc/self/fd reopen. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "fdr.h"
#include "base.h"

struct fdr_chunk { struct fdr_chunk *next; size_t size, used; };
#define CHUNK (1u << 20)

void *fdr_alloc(struct fdr_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct fdr_chunk *c = a->head;
	size_t hdr = (sizeof *c + 15) & ~(size_t)15;
	if (!c || c->used + n > c->size) {
		size_t sz = n + hdr > CHUNK ? ((n + hdr + 4095) & ~(size_t)4095) : CHUNK;
		long p = sys_mmap(0, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
		if (p < 0 && p > -4096)
			return NULL;
		c = (struct fdr_chunk *)p;
		c->size = sz;
		c->used = hdr;
		c->next = a->head;
		a->head = c;
	}
	void *r = (char *)c + c->used;
	c->used += n;
	return r; /* fresh anonymous pages are zero and never reused */
}

char *fdr_strdup(struct fdr_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = fdr_alloc(a, n);
	if (p)
		memcpy(p, s, n);
	return p;
}

void fdr_arena_free(struct fdr_arena *a)
{
	struct fdr_chunk *c = a->head, *n;
	for (; c; c = n) {
		n = c->next;
		sys_munmap(c, c->size);
	}
	a->head = NULL;
}

void fdr_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap); /* string streams take no lock */
	va_end(ap);
}

int fdr_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		long r = sys_write(fd, p, len);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return (int)r;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* A second, independent description of the same object (pipes, files,
 * ttys; not sockets: the kernel answers ENXIO). */
int fdr_proc_reopen(int fd, int flags)
{
	char path[40];
	fdr_fmt(path, sizeof path, "/proc/self/fd/%d", fd);
	return (int)sys_openat(AT_FDCWD, path, flags | O_CLOEXEC, 0);
}

/* Put description newfd on every number that referred to d in the parent,
 * with the parent's status flags (per description) and FD_CLOEXEC (per
 * number), then drop the temporary number. */
int fdr_place(struct fdr_snap *s, struct fdr_desc *d, int newfd)
{
	int fl = d->flflags & (O_NONBLOCK | O_APPEND | O_ASYNC | O_NOATIME | O_DIRECT);
	long r = sys_fcntl(newfd, F_SETFL, fl);
	if (r < 0)
		nuwa_warn("fdremap: fd %d: cannot restore status flags 0%o: %s",
			  d->rep, fl, fdr_errname(r));
	int di = (int)(d - s->descs), err = 0;
	for (int i = 0; i < s->nfds; i++) {
		struct fdr_fd *f = &s->fds[i];
		if (f->desc != di)
			continue;
		r = sys_dup3(newfd, f->fd, f->cloexec ? O_CLOEXEC : 0);
		if (r < 0) {
			nuwa_warn("fdremap: cannot place rebuilt %s on fd %d: %s",
				  fdr_kind_name(f->kind), f->fd, fdr_errname(r));
			err = (int)r;
		}
	}
	sys_close(newfd);
	return err;
}

const char *fdr_errname(long negerr)
{
	const char *n = strerrorname_np((int)-negerr);
	return n ? n : "unknown error";
}
