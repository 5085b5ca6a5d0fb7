/* mx.h — the scenario programs of the matrix (tests/matrix/README.md).
 *
 * A scenario program holds a table of cases; each case sets a resource into
 * one state before the freeze (setup, in the original process only) and
 * checks that exact state after it (verify, in every process: the three
 * spawned children, and the original after the thaw).
 *
 *   PROG --list            one line per case: "NAME GROUP TOTAL"; cases of one
 *                          group may share a process, the driver decides
 *   PROG NAME...           set the named cases up, print READY, wait for EOF
 *                          on stdin (scn.h protocol), verify each case in
 *                          table order, print one line per case
 *                              CASE NAME pid=P clone=0|1 ok tally=N
 *                              CASE NAME pid=P clone=0|1 FAIL why
 *                          then the RESULT line of scn.h
 *   PROG --exit N          exit(N) at once (a program a case spawns)
 *
 * Cases sharing a setup function run it once.  tally is what this process took of a resource shared by all of them (a
 * connection in a listening socket's backlog, a named semaphore's count):
 * the driver checks the sum over the four processes where a case says so.
 *
 * Order: the children verify first, concurrently, while the original is
 * frozen; the original verifies after every child has exited.  A case may
 * rely on that (e.g. the original finds exactly three records appended by
 * the children to a shared file).
 */
#ifndef NUWA_MX_H
#define NUWA_MX_H

#include "scn.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct mx_case mx_case;
struct mx_case {
	const char *name;
	const char *group;            /* "" or NULL: a process of its own */
	void (*setup)(mx_case *c);    /* original only, before READY */
	void (*verify)(mx_case *c);   /* every process, after EOF */
	long total;                   /* > 0: the sum of the tallies over the
	                               * four processes must be this */
	/* filled in at run time */
	long tally;
	int fails;
	char why[240];
	int selected;
};

/* Record a failure of case c (thread-safe; the first reason is kept). */
void mx_fail(mx_case *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Property lines: CHECK(c, condition, "what was seen", ...). */
#define CHECK(c, cond, ...) do { if (!(cond)) mx_fail((c), __VA_ARGS__); } while (0)
/* A set-up step that must succeed (else the program aborts before READY). */
#define MUST(call) do { if (!(call)) mx_die(#call, __FILE__, __LINE__); } while (0)
void mx_die(const char *what, const char *file, int line) __attribute__((noreturn));

/* 1 in the spawned children, 0 in the original. */
static inline int mx_child(void) { return scn_is_clone(); }

/* Run the program (see above). */
int mx_main(int argc, char **argv, mx_case *cases, int ncases);

/* Helpers. */
void mx_fill(void *buf, size_t n, uint32_t seed);                 /* pattern */
int  mx_check_pattern(const void *buf, size_t n, uint32_t seed);  /* 1 if equal */
int  mx_nonblock(int fd);                                         /* set O_NONBLOCK */
/* Read until EAGAIN from a non-blocking descriptor; bytes read, -1 on error. */
long mx_drain(int fd, void *buf, size_t cap);
/* Write pattern bytes until EAGAIN; bytes written. */
long mx_fill_fd(int fd, uint32_t seed, size_t chunk);
/* A line of /proc/self/smaps' VmFlags for the mapping at addr ("" if none). */
const char *mx_vmflags(const void *addr, char *buf, size_t cap);
/* Signal-safe counters for handlers. */
extern volatile sig_atomic_t mx_sigcount[65];
void mx_count_handler(int sig);

#endif
