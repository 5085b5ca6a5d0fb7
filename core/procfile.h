/* Line-by-line reading of a /proc file on the frozen path: raw system
 * calls and the caller's buffer, no malloc, no stdio. */
#ifndef NUWA_PROCFILE_H
#define NUWA_PROCFILE_H

#include <stddef.h>

/* Calls fn(line, arg) for every line of path, NUL-terminated, without its
 * newline; a line longer than cap - 1 bytes is cut to its first cap - 1
 * (the rest is skipped).  fn returns 0 to go on, anything else to stop
 * (returned).  Returns 0 at the end of the file, or -errno. */
int nuwa_proc_lines(const char *path, char *buf, size_t cap,
                    int (*fn)(char *line, void *arg), void *arg);

/* Parse an unsigned number in base 10 or 16 at *p, advancing *p. */
unsigned long long nuwa_parse_ull(const char **p, int base);

#endif
