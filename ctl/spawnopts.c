/* A spawn's particulars (spawnopts.h), template side: parsed and checked
 * before the first fork, the strings copied into one arena, the cgroup
 * opened for clone3; released when the request is done.  Raw system calls only: the template's threads are parked (one
 * may hold malloc's or stdio's lock).  The child side is spawnopts_apply.c. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"
#include "spawnopts.h"
#include "sys.h"

/* The strings of the request being served.  The request's own buffer is the
 * connection's, which a new child unmaps with the template's connections
 * (ctlsock_after_spawn) before it applies the options; this copy is in a
 * forked child's memory as it was at the fork, and copied into a pooled
 * child at the same address (a memory range of the request). */
static char arena[CTL_MAX_REQUEST];
static size_t arena_used;

/* A copy of s in the arena, or NULL if it is full (it cannot be: the
 * strings come from one request, which is smaller). */
static const char *keep(const char *s)
{
	size_t len = strlen(s) + 1;
	if (len > sizeof arena - arena_used)
		return NULL;
	char *p = arena + arena_used;
	memcpy(p, s, len);
	arena_used += len;
	return p;
}

const void *spawn_opts_arena(size_t *n)
{
	*n = arena_used;
	return arena;
}

#define err_name(e) spawn_err_text((e), (char[24]){ 0 }, 24)

static int parse_env(struct spawn_opts *o, const struct ctl_msg *m, char *err, size_t errlen)
{
	unsigned n = ctl_count(m, CTL_F_ENV);
	if (n > SPAWN_MAX_ENV) {
		snprintf(err, errlen, "spawn: at most %d --env options, not %u", SPAWN_MAX_ENV, n);
		return -E2BIG;
	}
	for (unsigned i = 0; i < n; i++) {
		const char *s = ctl_get_nth_str(m, CTL_F_ENV, i);
		int r = s ? spawn_env_check(s, err, errlen) : -EPROTO;
		if (r < 0) {
			if (!s)
				snprintf(err, errlen, "spawn: malformed --env field");
			return r;
		}
		if (!(o->env[o->nenv++] = keep(s))) {
			snprintf(err, errlen, "spawn: --env values too large");
			return -E2BIG;
		}
	}
	return 0;
}

static int own_high(int fd)
{
	return nuwa_own_fd(nuwa_fd_high(fd));
}

/* The directory must exist, be one, and be searchable (chdir() needs
 * that; an O_PATH descriptor is not checked for it when opened, so ask
 * faccessat).  The child changes to it by path. */
static int check_cwd(struct spawn_opts *o, const char *path, char *err, size_t errlen)
{
	int r = spawn_path_check("--cwd", path, err, errlen);
	if (r < 0)
		return r;
	int fd = (int)sys_openat(AT_FDCWD, path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "--cwd %s: %s", path, err_name(-fd));
		return fd;
	}
	r = (int)SC(SYS_faccessat, fd, ".", X_OK, 0, 0, 0);
	sys_close(fd);
	if (r < 0) {
		snprintf(err, errlen, "--cwd %s: %s", path, err_name(-r));
		return r;
	}
	return (o->cwd = keep(path)) ? 0 : -E2BIG;
}

/* A cgroup v2 directory the child can join: CLONE_INTO_CGROUP takes a
 * descriptor of the directory itself, opened for reading (an O_PATH one is
 * refused: cgroup_get_from_fd() uses fdget()); joining means writing
 * cgroup.procs, so that must be writable; and a process may only join a
 * cgroup that has no domain controllers enabled for children ("no internal
 * processes": clone3 fails with EBUSY, a cgroup.procs write too). */
static int open_cgroup(struct spawn_opts *o, const char *path, char *err, size_t errlen)
{
	int r = spawn_path_check("--cgroup", path, err, errlen);
	if (r < 0)
		return r;
	int fd = (int)sys_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "--cgroup %s: %s", path, err_name(-fd));
		return fd;
	}
	struct statfs sf;
	if ((r = (int)SC(SYS_fstatfs, fd, &sf, 0, 0, 0, 0)) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		sys_close(fd);
		snprintf(err, errlen, "--cgroup %s: not a cgroup v2 directory (%s)", path,
		         r < 0 ? err_name(-r) : sf.f_type == CGROUP_SUPER_MAGIC ?
		         "it is in a cgroup v1 hierarchy" : "its file system is not cgroup2");
		return -EINVAL;
	}
	if ((r = (int)SC(SYS_faccessat, fd, "cgroup.procs", W_OK, 0, 0, 0)) < 0) {
		sys_close(fd);
		snprintf(err, errlen, "--cgroup %s: cgroup.procs is not writable (%s)", path,
		         err_name(-r));
		return r;
	}
	int sc = (int)sys_openat(fd, "cgroup.subtree_control", O_RDONLY | O_CLOEXEC, 0);
	if (sc >= 0) {
		char buf[256];
		long n = sys_read(sc, buf, sizeof buf - 1);
		sys_close(sc);
		if (n > 0 && buf[0] != '\n') {
			buf[n] = 0;
			if (buf[n - 1] == '\n')
				buf[n - 1] = 0;
			sys_close(fd);
			snprintf(err, errlen, "--cgroup %s: it enables controllers for its children "
			         "(cgroup.subtree_control: %s); a process can join only a cgroup "
			         "that does not: use a child cgroup", path, buf);
			return -EBUSY;
		}
	}
	o->cgroup_fd = own_high(fd);
	return (o->cgroup = keep(path)) ? 0 : -E2BIG;
}

/* A group to join must be in the template's session (setpgid(2)). */
static int check_pgrp(pid_t pg, char *err, size_t errlen)
{
	long sid = SC(SYS_getsid, pg, 0, 0, 0, 0, 0);
	long mine = SC(SYS_getsid, 0, 0, 0, 0, 0, 0);
	long gid = SC(SYS_getpgid, pg, 0, 0, 0, 0, 0);
	if (sid < 0 || gid != pg) {
		snprintf(err, errlen, "spawn: process group %d does not exist", pg);
		return -ESRCH;
	}
	if (sid != mine) {
		snprintf(err, errlen, "spawn: process group %d is in session %ld, the template in "
		         "session %ld: a child can join only a group of its own session", pg, sid,
		         mine);
		return -EPERM;
	}
	return 0;
}

int spawn_opts_parse(struct spawn_opts *o, const struct ctl_msg *m, char *err, size_t errlen)
{
	*o = (struct spawn_opts){ .cgroup_fd = -1 };
	arena_used = 0;
	uint32_t clear = 0;
	int32_t pg = 0;
	const char *s;
	int r;
	if (ctl_get_u32(m, CTL_F_ENV_CLEAR, &clear) == -EPROTO ||
	    ctl_get_i32(m, CTL_F_PGRP, &pg) == -EPROTO || pg < SPAWN_PGRP_OWN) {
		snprintf(err, errlen, "spawn: malformed request");
		return -EINVAL;
	}
	o->env_clear = !!clear;
	o->pgrp = pg;
	if ((r = parse_env(o, m, err, errlen)) < 0)
		goto fail;
	if (pg > 0 && (r = check_pgrp(pg, err, errlen)) < 0)
		goto fail;
	if ((r = ctl_get_str(m, CTL_F_CWD, &s)) == 0 && (r = check_cwd(o, s, err, errlen)) < 0)
		goto fail;
	if ((r = ctl_get_str(m, CTL_F_CGROUP, &s)) == 0 &&
	    (r = open_cgroup(o, s, err, errlen)) < 0)
		goto fail;
	return 0;
fail:
	spawn_opts_release(o);
	return r;
}

int spawn_opts_any(const struct spawn_opts *o)
{
	return o->env_clear || o->nenv || o->cwd || o->cgroup || o->pgrp != SPAWN_PGRP_KEEP;
}

void spawn_opts_release(struct spawn_opts *o)
{
	nuwa_own_fd_drop(o->cgroup_fd);
	o->cgroup_fd = -1;
}
