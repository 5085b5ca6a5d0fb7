/* Files, directories, devices, named FIFOs: shared as fork() shares them
 * (one open file description, one offset).  On request (NUWA_FD_RECREATE)
 * a child gets a new open file description of the same object instead:
 * /proc/self/fd/N reopened, at the same offset, independent from then on. */
#include <fcntl.h>
#include <sys/stat.h>
#include "fdr.h"

static int file_discover(struct fdr_snap *s, struct fdr_desc *d, const char *info)
{
	d->u.file.pos = (off_t)sys_lseek(d->rep, 0, SEEK_CUR);
	return 0;
}

static void file_decide(struct fdr_snap *s, struct fdr_chan *c, int recreate, int fd)
{
	if (recreate) {
		c->action = FDA_REOPEN;
		c->why = "reopened (policy)";
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
