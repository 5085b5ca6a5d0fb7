/* A spawn's particulars (spawnopts.h), child side: spawn_opts_apply(), on
 * the child's control thread with every thread cloned back and none
 * running yet (one possibly stopped inside malloc or stdio): raw system
 * calls, paths (never a descriptor the template opened for the request: a
 * pooled child was forked before it), and one private mapping for the
 * environment. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"
#include "spawnopts.h"
#include "sys.h"

extern char **environ;

#define err_name(e) spawn_err_text((e), (char[24]){ 0 }, 24)

static void say(const char *a, const char *b, int e)
{
	char line[256];
	int n = snprintf(line, sizeof line, "libnuwa: spawned child %ld: %s%s: %s\n",
	                 (long)sys_getpid(), a, b, err_name(e));
	if (n > 0)
		(void)sys_write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static size_t name_len(const char *e)
{
	const char *eq = strchr(e, '=');
	return eq ? (size_t)(eq - e) : strlen(e);
}

static int same_name(const char *a, const char *b)
{
	size_t n = name_len(a);
	return n == name_len(b) && !memcmp(a, b, n);
}

/* Is entry i of the new list overridden by a later one, or old entry e by
 * any new one? */
static int replaced(const struct spawn_opts *o, const char *e, int from)
{
	for (int i = from; i < o->nenv; i++)
		if (same_name(e, o->env[i]))
			return 1;
	return 0;
}

/* The new environment lives in a private anonymous mapping of its own, made
 * here and never unmapped: it belongs to the environment from now on, as
 * the initial one on the stack does.  glibc's setenv()/putenv() replace a
 * pointer in the array or, to add a name, copy the array into one they
 * malloc (they realloc only an array they allocated themselves: setenv.c's
 * last_environ); unsetenv() moves pointers inside it (it is writable);
 * clearenv() frees only its own.  Entries kept from the old environment keep
 * pointing at their strings (the child's copies, wherever they were). */
static int apply_env(const struct spawn_opts *o)
{
	char **old = environ;
	size_t nold = 0, bytes;
	if (!o->env_clear && old)
		while (old[nold])
			nold++;
	bytes = (nold + (size_t)o->nenv + 1) * sizeof(char *);
	for (int i = 0; i < o->nenv; i++)
		bytes += strlen(o->env[i]) + 1;
	long p = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	if (p < 0 && p > -4096)
		return (int)p;
	char **arr = (char **)p;
	char *str = (char *)p + (nold + (size_t)o->nenv + 1) * sizeof(char *);
	size_t k = 0;
	for (size_t j = 0; j < nold; j++)
		if (!replaced(o, old[j], 0))
			arr[k++] = old[j];
	for (int i = 0; i < o->nenv; i++) {
		if (replaced(o, o->env[i], i + 1))
			continue;   /* the last --env of a name wins */
		size_t len = strlen(o->env[i]) + 1;
		memcpy(str, o->env[i], len);
		arr[k++] = str;
		str += len;
	}
	arr[k] = NULL;
	environ = arr;
	return 0;
}

/* "0" in cgroup.procs moves the writer's whole thread group
 * (cgroup-v2.rst): this process, whose program threads have not run since
 * the fork.  A child that clone3 placed there already stays where it is;
 * this is how one forked earlier (the pool) or on a kernel without
 * CLONE_INTO_CGROUP gets in. */
static int join_cgroup(const char *dir)
{
	char path[SPAWN_MAX_PATH + 16];
	size_t n = strlen(dir);
	if (n > SPAWN_MAX_PATH)
		return -ENAMETOOLONG;
	memcpy(path, dir, n);
	memcpy(path + n, "/cgroup.procs", sizeof "/cgroup.procs");
	int fd = (int)sys_openat(AT_FDCWD, path, O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	int r = (int)sys_write(fd, "0", 1);
	sys_close(fd);
	return r < 0 ? r : 0;
}

int spawn_opts_apply(const struct spawn_opts *o)
{
	int r;
	if (o->cgroup && (r = join_cgroup(o->cgroup)) < 0) {
		say("cannot join the cgroup ", o->cgroup, -r);
		return r;
	}
	if (o->cwd && (r = (int)SC(SYS_chdir, o->cwd, 0, 0, 0, 0, 0)) < 0) {
		say("--cwd ", o->cwd, -r);
		return r;
	}
	if ((o->env_clear || o->nenv) && (r = apply_env(o)) < 0) {
		say("--env", "", -r);
		return r;
	}
	if (o->pgrp != SPAWN_PGRP_KEEP) {
		/* The child is not a session leader (the template's session is
		 * someone else's), so it may make or join a group of its session. */
		r = (int)SC(SYS_setpgid, 0, o->pgrp > 0 ? o->pgrp : 0, 0, 0, 0, 0);
		if (r < 0 && o->pgrp > 0) {
			say("cannot join the caller's process group", "", -r);
			r = (int)SC(SYS_setpgid, 0, 0, 0, 0, 0, 0);
		}
		if (r < 0)
			say("cannot make its own process group", "", -r);
	}
	return 0;
}

void spawn_opts_setup(void *arg)
{
	if (spawn_opts_apply(arg) < 0)
		sys_exit_group(127);
}
