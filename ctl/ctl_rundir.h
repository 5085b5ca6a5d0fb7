/* ctl_rundir.h — where control sockets live, shared by libnuwa and `nuwa`.
 *
 * One private directory per user:
 *     $NUWA_RUNTIME_DIR            if set (absolute path)
 *     $XDG_RUNTIME_DIR/nuwa        else, if XDG_RUNTIME_DIR is set (absolute)
 *     /tmp/nuwa-$UID               else
 * It must be a real directory (not a symlink), owned by the effective uid,
 * with no group or world permission bits (mode 0700).  Each libnuwa process
 * listens on DIR/PID.sock.
 */
#ifndef NUWA_CTL_RUNDIR_H
#define NUWA_CTL_RUNDIR_H

#include <stddef.h>
#include <sys/types.h>

#define CTL_SOCK_SUFFIX ".sock"

/* The directory path from the environment; 0 or -ENAMETOOLONG. */
int ctl_rundir_path(char *buf, size_t len);
/* Open (O_DIRECTORY|O_NOFOLLOW) and check the directory; with create, make
 * it (0700) if it is missing.  Returns a descriptor or -errno, with a
 * one-line reason in err. */
int ctl_rundir_open(const char *path, int create, char *err, size_t errlen);
/* DIR/PID.sock; 0 or -ENAMETOOLONG (sun_path holds 107 bytes). */
int ctl_sock_path(char *buf, size_t len, const char *dir, pid_t pid);
/* PID from a file name "PID.sock", or -1. */
pid_t ctl_sock_name_pid(const char *name);

#endif
