/* spawnopts.h — what is particular to one spawn beyond its stdio: the
 * environment, the working directory, the cgroup and the process group.
 *
 * One request, many children: the template parses the request's fields
 * once (spawn_opts_parse: every check made before the first fork, so a bad
 * value makes no child; the strings copied into one arena), the fork puts
 * each child straight into the cgroup when the kernel can (clone3
 * CLONE_INTO_CGROUP with ctl_spawn.cgroup_fd, core/fork.c), and each child
 * calls spawn_opts_apply() once, on its control thread, with every thread
 * cloned back and none running: as the request's ctl_spawn.setup_fn
 * (spawn_opts_setup), in a child forked for the request and in one taken
 * from the pool alike.  The struct and the arena are memory ranges of the
 * request (ctl_spawn.mem): a pooled child gets them at the same addresses.
 * The child uses only paths, never a descriptor the template opened for the
 * request (a pooled child was forked before).  spawn_opts_release() closes
 * the template's descriptors when the request is done.
 *
 * Nothing in spawn_opts_apply() allocates with malloc or takes a libc lock:
 * raw system calls, and one private anonymous mapping for the new
 * environment (spawnopts_apply.c). */
#ifndef NUWA_SPAWNOPTS_H
#define NUWA_SPAWNOPTS_H

#include <stddef.h>
#include <sys/types.h>

#include "ctl_proto.h"

#define SPAWN_MAX_ENV      256      /* --env entries per request */
#define SPAWN_MAX_ENV_LEN  16384    /* one NAME=VALUE, without the NUL */
#define SPAWN_MAX_PATH     4095     /* --cwd, --cgroup: PATH_MAX - 1 */

/* pgrp: what process group the child is in */
#define SPAWN_PGRP_KEEP 0           /* the template's (and its session) */
#define SPAWN_PGRP_OWN  (-1)        /* a group of its own, in the template's session */
                                    /* > 0: join that group (same session) */

struct spawn_opts {
	int env_clear;              /* start from an empty environment */
	int nenv;
	const char *env[SPAWN_MAX_ENV];   /* "NAME=VALUE", in the arena */
	const char *cwd;            /* absolute path, in the arena, or NULL */
	const char *cgroup;         /* a cgroup v2 directory, in the arena, or NULL */
	int cgroup_fd;              /* template side: that directory, open; -1 */
	pid_t pgrp;                 /* SPAWN_PGRP_KEEP, SPAWN_PGRP_OWN, or a group */
};

/* Syntax checks shared with the `nuwa` command (no I/O): 0, or -EINVAL /
 * -ENAMETOOLONG with a one-line reason in err. */
int spawn_env_check(const char *entry, char *err, size_t errlen);
int spawn_path_check(const char *what, const char *path, char *err, size_t errlen);
/* A reason for errno e without strerror(); buf (24 bytes) holds "errno N". */
const char *spawn_err_text(int e, char *buf, size_t len);

/* Template side.  Fills o from a spawn request, checks every value (the
 * directories exist, --cgroup is a writable cgroup v2 leaf) and opens the
 * cgroup.  0, or -errno with err filled and nothing held. */
int  spawn_opts_parse(struct spawn_opts *o, const struct ctl_msg *m, char *err, size_t errlen);
/* Anything to apply in the children? */
int  spawn_opts_any(const struct spawn_opts *o);
/* The arena o's strings are in: a memory range of the request. */
const void *spawn_opts_arena(size_t *n);
void spawn_opts_release(struct spawn_opts *o);

/* Child side: see above.  Returns 0, or -errno after writing a line to the
 * child's stderr (the requester's, installed before). */
int  spawn_opts_apply(const struct spawn_opts *o);
/* ctl_spawn.setup_fn: spawn_opts_apply(arg), and a child that cannot be
 * what was asked for ends (exit 127) before any program thread runs. */
void spawn_opts_setup(void *arg);

#endif
