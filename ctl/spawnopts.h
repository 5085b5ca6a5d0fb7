/* spawnopts.h — what is particular to one spawn: the requester's stdio, the
 * environment, the working directory, the cgroup and the process group.
 *
 * One request, many children: the template parses the request's fields
 * once (spawn_opts_parse: every check made and every directory opened
 * before the first fork, so a bad value makes no child), forks each child
 * with the same options (the raw fork puts it straight into the cgroup when
 * the kernel can: clone3 CLONE_INTO_CGROUP, core/fork.c), and each child
 * calls spawn_opts_apply() exactly once, on its control thread, before any
 * of the program's threads runs again.  spawn_opts_release() closes the
 * template's descriptors when the request is done.
 *
 * spawn_opts_apply() is the single place where a child takes on a spawn's
 * particulars; a child made ahead of time (a pool) takes them on the same
 * way when it is handed out, as long as its program threads have not run.
 *
 * Nothing in spawn_opts_apply() allocates with malloc or takes a libc lock:
 * raw system calls, and one private anonymous mapping for the new
 * environment (below). */
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
	const int *stdio;           /* 3 descriptors to become 0, 1, 2, or NULL */
	int env_clear;              /* start from an empty environment */
	int nenv;
	const char *env[SPAWN_MAX_ENV];   /* "NAME=VALUE", copied out of the request */
	int cwd_fd;                 /* O_PATH directory to fchdir() to, or -1 */
	int cgroup_fd;              /* cgroup v2 directory, or -1 */
	int cgroup_done;            /* set by the fork: CLONE_INTO_CGROUP placed it */
	pid_t pgrp;                 /* SPAWN_PGRP_KEEP, SPAWN_PGRP_OWN, or a group */
};

/* Syntax checks shared with the `nuwa` command (no I/O): 0, or -EINVAL /
 * -ENAMETOOLONG with a one-line reason in err. */
int spawn_env_check(const char *entry, char *err, size_t errlen);
int spawn_path_check(const char *what, const char *path, char *err, size_t errlen);
/* A reason for errno e without strerror(); buf (24 bytes) holds "errno N". */
const char *spawn_err_text(int e, char *buf, size_t len);

/* Template side.  Fills o from a spawn request (stdio: the 3 received
 * descriptors, or NULL), checks every value and opens the directories.
 * 0, or -errno with err filled and nothing held. */
int  spawn_opts_parse(struct spawn_opts *o, const struct ctl_msg *m, const int *stdio,
                      char *err, size_t errlen);
void spawn_opts_release(struct spawn_opts *o);

/* Child side: see above.  Returns 0, or -errno after writing a line to the
 * child's stderr (the caller then ends the child: it cannot be what was
 * asked for). */
int  spawn_opts_apply(const struct spawn_opts *o);

#endif
