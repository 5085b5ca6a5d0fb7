/* What the robustness suites share (robust_test.c).  The program is
 * robust_scn under `nuwa run`; P is its pid as a string, o the output of
 * the last verb, kids[] what teardown() kills. */
#ifndef ROBUST_TEST_H
#define ROBUST_TEST_H

#include <criterion/criterion.h>
#include <sys/types.h>

#include "cli_test.h"

#define CTL_MAX_CONN 63   /* ctl/ctlsock.h: clients served at once */

extern struct ct_bg prog;
extern struct ct_out o;
extern const char *dir;
extern pid_t kids[64];
extern int nkids;
extern char P[32];
extern const char *log_level;   /* nuwa run --log */
extern int ready_ms;            /* how long start_env() waits for READY */

void teardown(void);
void dump(void);   /* the program's output so far, on stderr */
#define CHECK(cond, ...) do { if (!(cond)) { dump(); cr_assert_fail(__VA_ARGS__); } } while (0)

/* `nuwa run --mode MODE -- robust_scn DIR ARGS...` with extra environment;
 * waits for READY. */
pid_t start_env(const char *mode, const char *const *env, const char *a1, const char *a2,
                const char *a3);
pid_t start(const char *a1, const char *a2);   /* template mode */
unsigned read_seq(pid_t pid, unsigned *gaps);
unsigned progress(pid_t pid, unsigned above);  /* fails unless it gets past above */
void  freeze(void);
pid_t spawn1(void);
void  expect_state(const char *state);
int   file_has(const char *suffix, pid_t pid, const char *text, int timeout_ms);
int   socket_exists(pid_t pid);

#endif
