/* Files, directories, devices, named FIFOs: shared as fork() shares them
 * (one open file description, one offset).  On request (NUWA_FD_RECREATE)
 * a child gets a new open file description of the same object instead:
 * /proc/self/fd/N reopened, at the same offset, independent from then on. */
#include <fcntl.h>
#include <sys/stat.h>
#include "fdr.h"
#include "fdremap.h"

static int file_discover(struct fdr_snap *s, struct fdr_desc *d, const char *info)
{
	d->u.file.pos = (off_t)sys_lseek(d->rep, 0, SEEK_CUR);
	return 0;
}

/* A thread parked inside the loader (fdremap_loader_frozen(): only when a
 * busy one would not leave it within the freeze's grace, core/freeze.c)
 * may be between ld.so's open() of an object and its read() of the ELF
 * header; sharing the description, the child and the template would both
 * read it, one of them at the other's offset ("invalid ELF header").  The
 * object is a regular file open read-only, close-on-exec, still at offset
 * 0: each child gets a description of its own, at 0 (after the header is
 * read the loader uses pread() and mmap(), which the offset does not
 * touch).  A file of the program's that looks the same is reopened too:
 * the only cost of this guess. */
static int loader_frozen;

void fdremap_loader_frozen(int yes)
{
	loader_frozen = yes;
}

static int loader_file(struct fdr_snap *s, struct fdr_chan *c)
{
	if (!loader_frozen || c->kind != FDK_FILE)
		return 0;
	for (int i = 0; i < s->nfds; i++) {
		const struct fdr_desc *d = &s->descs[s->fds[i].desc];
		if (&s->chans[d->chan] != c)
			continue;
		if ((d->flflags & O_ACCMODE) != O_RDONLY || d->u.file.pos != 0 || !s->fds[i].cloexec)
			return 0;
	}
	return 1;
}

static void file_decide(struct fdr_snap *s, struct fdr_chan *c, int recreate, int fd)
{
	if (recreate) {
		c->action = FDA_REOPEN;
		c->why = "reopened (policy)";
		return;
	}
	if (loader_file(s, c)) {
		c->action = FDA_REOPEN;
		c->why = "reopened (a thread is frozen inside the loader)";
		return;
	}
	c->why = "shared";
}

/* NUWA_FD_RECREATE on a file, directory or device: a new open file
 * description of the same object with its own offset, like open() again. */
static int file_reopen(struct fdr_snap *s, struct fdr_desc *d)
{
	int fl = d->flflags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NONBLOCK | O_CLOEXEC);
	int fd = fdr_proc_reopen(d->rep, fl | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fd;
	if (d->u.file.pos > 0)
		sys_lseek(fd, d->u.file.pos, SEEK_SET);
	return fdr_place(s, d, fd);
}

#define FILE_KIND(var, nm, md, ord, disc) \
	const struct fdr_kind_ops var = { .name = nm, .mode = md, .discover = disc, \
	                              .decide = file_decide, .order = ord, .rebuild_desc = file_reopen }
FILE_KIND(fdr_kind_file, "file", S_IFREG, 6, file_discover);
FILE_KIND(fdr_kind_dir, "dir", S_IFDIR, 7, file_discover);
FILE_KIND(fdr_kind_chr, "chr", S_IFCHR, 8, file_discover);
FILE_KIND(fdr_kind_blk, "blk", S_IFBLK, 9, file_discover);
FILE_KIND(fdr_kind_fifo, "fifo", S_IFIFO, 10, NULL);   /* no offset */
