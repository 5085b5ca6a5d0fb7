/* fdremap internals: the snapshot taken at freeze time, and one table of
 * operations per kind of descriptor (discover -> drain -> rebuild in the
 * child -> refill, and describe): struct fdr_kind_ops below, one file per kind,
 * the table in kind.c.  A new kind is one new file and one table entry. */
#ifndef NUWA_FDREMAP_FDR_H
#define NUWA_FDREMAP_FDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/time.h>
#include "base.h"
#include "sys.h"

/* ---- memory: mmap-backed bump arena -------------------------------------
 * Parked application threads may hold malloc's locks (in the parent and in
 * each child until they resume), so fdremap never calls malloc. */
struct fdr_arena { struct fdr_chunk *head; };
void *fdr_alloc(struct fdr_arena *a, size_t n);        /* zeroed; NULL if out of memory */
char *fdr_strdup(struct fdr_arena *a, const char *s);
void  fdr_arena_free(struct fdr_arena *a);

/* ---- kinds ---------------------------------------------------------------- */
enum fdr_kind {
	FDK_OTHER, FDK_FILE, FDK_DIR, FDK_CHR, FDK_BLK, FDK_FIFO,
	FDK_PIPE, FDK_UNIX, FDK_SOCKET,
	FDK_EVENTFD, FDK_TIMERFD, FDK_SIGNALFD, FDK_EPOLL, FDK_INOTIFY,
	FDK_ANON,  /* other anon_inode files: io_uring, pidfd, perf, ... */
	FDK__COUNT
};

struct fdr_snap;
struct fdr_desc;
struct fdr_chan;

/* What fdremap does with one kind of descriptor.  NULL operations do
 * nothing; a kind without rebuild and rebuild_desc is always shared. */
struct fdr_kind_ops {
	const char *name;          /* in nuwa status */
	/* ---- discover (freeze time, every application thread parked) ---- */
	const char *link;          /* readlink of /proc/self/fd/N: exact, or a prefix
	                            * when it ends in '[' or ':' */
	int (*is)(int fd);         /* a further test for that link, or NULL */
	unsigned mode;             /* or: S_IFREG, S_IFDIR, ... of a plain file */
	int fdinfo;                /* discover reads /proc/self/fdinfo/N */
	int unique_file;           /* one struct file per object (sockets): no kcmp */
	int alias_by_flags;        /* without kcmp, equal flags mean an alias (pipes) */
	int by_ino;                /* another process shows it as the same inode
	                            * (pipe:[N], socket:[N]); else compared with kcmp */
	long (*id)(const char *info);   /* an identity in fdinfo (eventfd-id), or -1 */
	int (*discover)(struct fdr_snap *s, struct fdr_desc *d, const char *info);
	int (*discover_all)(struct fdr_snap *s);  /* once every description is read */
	/* ---- channels and the decision ---- */
	void (*join)(struct fdr_snap *s, struct fdr_desc *d); /* NULL: a channel of its own */
	/* rebuild or share; recreate: the user asked for it; fd: the first number */
	void (*decide)(struct fdr_snap *s, struct fdr_chan *c, int recreate, int fd);
	void (*decided)(struct fdr_snap *s);      /* once every channel is decided */
	/* ---- parent: copy what is queued, leave the channel as it was ---- */
	int (*drain)(struct fdr_snap *s, struct fdr_chan *c);
	/* ---- child, before any application thread runs: new objects on the
	 * old numbers, kinds in increasing order (0: never rebuilt); a channel
	 * kind rebuilds and refills a whole channel (the queue goes in before an
	 * end the process does not hold is closed), the others one description
	 * at a time ---- */
	int order;
	int (*rebuild)(struct fdr_snap *s, struct fdr_chan *c);
	int (*rebuild_desc)(struct fdr_snap *s, struct fdr_desc *d);
	/* what needs every description in place (epoll's registrations) */
	int (*refill)(struct fdr_snap *s, struct fdr_desc *d);
	/* ---- nuwa status: the detail after the link ---- */
	size_t (*describe)(const struct fdr_desc *d, char *buf, size_t len, size_t at);
};
extern const struct fdr_kind_ops *const fdr_kinds[];   /* by enum fdr_kind (kind.c) */
static inline const struct fdr_kind_ops *fdr_kind(int kind) { return fdr_kinds[kind]; }
const char *fdr_kind_name(int kind);
int fdr_classify(const char *link, unsigned mode, int fd);  /* enum fdr_kind */

/* one table per kind (the file of each kind) */
extern const struct fdr_kind_ops fdr_kind_pipe, fdr_kind_unix, fdr_kind_eventfd,
	fdr_kind_timerfd, fdr_kind_signalfd, fdr_kind_epoll, fdr_kind_inotify,
	fdr_kind_file, fdr_kind_dir, fdr_kind_chr, fdr_kind_blk, fdr_kind_fifo,
	fdr_kind_socket, fdr_kind_anon, fdr_kind_other;

/* what happens to a channel / descriptor in children */
enum fdr_action { FDA_SHARE, FDA_REBUILD, FDA_REOPEN };

/* one queued message (pipe bytes or packet, stream chunk, datagram, record) */
struct fdr_msg {
	struct fdr_msg *next;
	size_t len;
	int nfds;            /* SCM_RIGHTS carried with it (held open until finish) */
	int *fds;
	int *fdesc;          /* for each fd: our description it is (-1: other) */
	char *data;
};

struct fdr_epreg { int tfd; uint32_t events; uint64_t data; unsigned long ino; unsigned sdev; int alias; };
struct fdr_watch { int wd; uint32_t mask; unsigned long ino; unsigned sdev; const char *path; };

/* One open file description (descriptors that are aliases of it share it). */
struct fdr_desc {
	int kind;
	int rep;             /* a descriptor number that refers to it */
	int repi;            /* its index in snap.fds */
	int flflags;         /* F_GETFL */
	int chan;            /* index into snap.chans, -1 if none */
	int end;             /* pipe: 0 read / 1 write; socketpair: side 0 / 1 */
	int newfd;           /* child: the rebuilt description, before dup3 */
	int nfd;             /* number of descriptors on it */
	/* per-kind state read at freeze time */
	union {
		struct { uint64_t count; int sem; } efd;
		struct { int clockid; int flags; uint64_t ticks; struct timespec value, interval, abs; } tfd;
		struct { uint64_t mask; } sfd;
		struct { struct fdr_epreg *regs; int nregs; } ep;
		struct { struct fdr_watch *w; int nw; } in;
		struct { off_t pos; } file;
		struct { unsigned long peer; int type, shut, named, hinted, listening;
			 int passcred, rcvlowat, peekoff, sndbuf, rcvbuf; struct timeval rcvtimeo, sndtimeo;
			 long wmem; /* SK_MEMINFO_WMEM_ALLOC, -1 unknown */ } sk;
	} u;
};

/* One descriptor number. */
struct fdr_fd {
	int fd;
	int kind;
	int cloexec;
	int override;        /* enum nuwa_fd_policy set by the user */
	int close_in_child;
	int desc;            /* index into snap.descs */
	unsigned long ino;
	unsigned long dev;
	const char *link;    /* readlink of /proc/self/fd/N */
};

/* A channel: a pipe, a socketpair, or one anon-inode object. */
struct fdr_chan {
	int kind;
	int action;
	unsigned long ino[2];  /* pipe: [0]; socket: both sides */
	int sotype;            /* SOCK_STREAM/DGRAM/SEQPACKET */
	int has[2];            /* an end/side is held in this process */
	int shut[2];           /* socket: shutdown bits (RCV_SHUTDOWN 1, SEND_SHUTDOWN 2) */
	int pipesz;            /* F_GETPIPE_SZ */
	int sndbuf[2], rcvbuf[2];
	int named;             /* a unix socket with an address */
	int hinted;            /* made by the pipe/socketpair wrapper */
	int foreign;           /* held by another process too */
	struct fdr_msg *q[2];  /* queued for reading at end/side i */
	int newfd[2];          /* child: the new channel's ends */
	const char *why;       /* reason for the decision, for describe */
};

struct fdr_snap {
	struct fdr_arena arena;
	struct fdr_fd *fds;     int nfds;
	struct fdr_desc *descs; int ndescs;
	struct fdr_chan *chans; int nchans;
	int kcmp_ok;
	pid_t pid;
	int valid;
};

/* ---- discovery (scan.c) -------------------------------------------------- */
int  fdr_scan(struct fdr_snap *s);          /* fill fds/descs; 0 or -errno */
int  fdr_fdinfo(int fd, char *buf, size_t len); /* bytes read or -errno */
const char *fdr_field(const char *info, const char *key); /* value after "key" */
int  fdr_desc_of_fd(const struct fdr_snap *s, int fd);   /* -1 if unknown */
int  fdr_kcmp_file(pid_t p1, pid_t p2, int a, int b);     /* 0 equal, 1/2 order, <0 err */
unsigned long fdr_channel_ino(int dfd, const char *name); /* pipe/socket inode or 0 */

/* ---- channels and decisions (decide.c) --------------------------------- */
int  fdr_build_channels(struct fdr_snap *s);
int  fdr_chan_new(struct fdr_snap *s, int kind);  /* index of a fresh channel */
void fdr_decide(struct fdr_snap *s);
void fdr_mark_foreign(struct fdr_snap *s);  /* other processes holding our channels */

/* ---- shared by the kinds -------------------------------------------------- */
void fdr_msgs_close_fds(struct fdr_chan *c);    /* sock.c: in-flight SCM_RIGHTS */
/* sock.c: one sendmsg of len bytes of a queue from byte off of m on (no
 * later message in them carries descriptors; m's go with them when off is
 * 0): bytes taken or -errno.  Set SO_SNDBUF to what getsockopt reads back. */
long fdr_sock_send(struct fdr_snap *s, int fd, const struct fdr_msg *m, size_t off, size_t len);
void fdr_sock_set_sndbuf(int fd, int sndbuf, int origfd);
/* sock_mem.c: unix_diag request for socket ino (recv'd into buf: length or
 * <0); refill a stream queue through sender fd, full in the child iff the
 * sender's charge wmem (-1 unknown) reached sndbuf in the template (origfd:
 * its number, for messages) */
long fdr_unix_diag(int nl, unsigned ino, unsigned show, void *buf, size_t len);
int  fdr_stream_refill(struct fdr_snap *s, int fd, struct fdr_msg *q, long wmem, long sndbuf, int origfd);
/* decide for an object wholly inside the process (eventfd, timerfd, signalfd,
 * epoll, inotify): rebuilt unless a child process holds it too */
void fdr_decide_own(struct fdr_snap *s, struct fdr_chan *c, int recreate, int fd);
size_t fdr_put(char *buf, size_t len, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));    /* snprintf at an offset */

/* ---- hints and own descriptors (hints.c) ------------------------------------ */
int  fdr_policy_of(int fd);                  /* user override or NUWA_FD_AUTO */
int  fdr_hint_pair(unsigned long ino, unsigned long *peer, int *type); /* 1 if known */
int  fdr_hint_pipe(unsigned long ino);       /* 1 if made by the pipe wrapper */
int  fdr_inherited(unsigned long ino);       /* present when libnuwa loaded */
const char *fdr_hint_watch(int ifd, int wd, unsigned long ino, unsigned sdev, const char **err);
void fdr_hints_prune(const struct fdr_snap *s);

/* ---- helpers ------------------------------------------------------------------ */
int  fdr_place(struct fdr_snap *s, struct fdr_desc *d, int newfd); /* dup3 + flags */
int  fdr_write_all(int fd, const void *buf, size_t len);  /* non-blocking fd; -errno */
int  fdr_proc_reopen(int fd, int flags);     /* open /proc/self/fd/N */
void fdr_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* errno name for messages: strerror() goes through gettext, which takes
 * locks a parked thread may hold; the name needs none. */
const char *fdr_errname(long negerr);

extern struct fdr_snap fdr_snap;

#endif
