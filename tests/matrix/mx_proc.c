/* mx_proc — what the program does with processes, threads and the loader
 * while the freeze comes: fork(), posix_spawn() and system() in a loop,
 * dlopen()/dlclose() in a loop, a module loaded before, a thread exiting
 * (its key destructor blocked), threads created after the resume.  The
 * loops run on every process; each iteration's result is checked. */
#include "mx.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

struct loop { pthread_t t; atomic_int stop; atomic_long rounds, bad; int echild_seen; char why[160]; };

static void loop_start(struct loop *l, void *(*fn)(void *))
{
	l->t = scn_thread(fn, l);
	while (atomic_load(&l->rounds) < 2)
		scn_sleep_ms(5);
}
/* After the resume: the loop goes on (more rounds), then stops; no round
 * failed, and no child process is left unreaped. */
static void loop_verify(mx_case *c, struct loop *l)
{
	long r0 = atomic_load(&l->rounds);
	int64_t end = scn_mono_ns() + 10000000000LL;
	while (atomic_load(&l->rounds) < r0 + 3 && scn_mono_ns() < end)
		scn_sleep_ms(5);
	atomic_store(&l->stop, 1);
	scn_join(l->t, c->name);
	CHECK(c, atomic_load(&l->rounds) >= r0 + 3, "the loop made %ld rounds after the resume, want 3",
	      atomic_load(&l->rounds) - r0);
	CHECK(c, atomic_load(&l->bad) == 0, "%ld rounds failed: %s", atomic_load(&l->bad), l->why);
}
static void loop_bad(struct loop *l, const char *fmt, long v)
{
	if (atomic_fetch_add(&l->bad, 1) == 0)
		snprintf(l->why, sizeof l->why, fmt, v);
}

/* ---- fork ----------------------------------------------------------------------- */
static struct loop lf, ls, lsys, ldl;
static void *fork_loop(void *a)
{
	struct loop *l = a;
	while (!atomic_load(&l->stop)) {
		pid_t p = fork();
		if (p == 0)
			_exit(7);
		int st = 0;
		pid_t w = waitpid(p, &st, 0);
		/* The one child of the template that was running when it froze is
		 * not a child of a spawned process (fork semantics): ECHILD there. */
		if (w < 0 && errno == ECHILD && mx_child() && !l->echild_seen)
			l->echild_seen = 1;
		else if (p < 0 || w != p || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
			loop_bad(l, "fork/waitpid: status %#lx", st);
		atomic_fetch_add(&l->rounds, 1);
		scn_sleep_ms(2);
	}
	return NULL;
}
static void fork_setup(mx_case *c) { loop_start(&lf, fork_loop); }
static void fork_verify(mx_case *c)
{
	loop_verify(c, &lf);
	pid_t w = waitpid(-1, NULL, WNOHANG);
	CHECK(c, w == -1 && errno == ECHILD, "a child process is left unreaped (waitpid: %d, %s)", (int)w,
	      w < 0 ? strerror(errno) : "");
}

/* ---- posix_spawn of this program, which exits 7 at once -------------------------- */
static void *spawn_loop(void *a)
{
	struct loop *l = a;
	char *argv[] = { "mx_proc", "--exit", "7", NULL };
	while (!atomic_load(&l->stop)) {
		pid_t p;
		int st = 0, e = posix_spawn(&p, "/proc/self/exe", NULL, NULL, argv, environ);
		pid_t w = e ? -1 : waitpid(p, &st, 0);
		if (w < 0 && errno == ECHILD && mx_child() && !l->echild_seen)
			l->echild_seen = 1;   /* as for fork */
		else if (e || w != p || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
			loop_bad(l, "posix_spawn/waitpid: status %#lx", e ? -e : st);
		atomic_fetch_add(&l->rounds, 1);
		scn_sleep_ms(5);
	}
	return NULL;
}
static void spawn_setup(mx_case *c) { loop_start(&ls, spawn_loop); }
static void spawn_verify(mx_case *c) { loop_verify(c, &ls); }

/* ---- system() ---------------------------------------------------------------------- */
static void *system_loop(void *a)
{
	struct loop *l = a;
	while (!atomic_load(&l->stop)) {
		int st = system("exit 7");
		if (st < 0 && errno == ECHILD && mx_child() && !l->echild_seen)
			l->echild_seen = 1;   /* as for fork */
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
			loop_bad(l, "system: status %#lx", st);
		atomic_fetch_add(&l->rounds, 1);
		scn_sleep_ms(5);
	}
	return NULL;
}
static void system_setup(mx_case *c) { loop_start(&lsys, system_loop); }
static void system_verify(mx_case *c) { loop_verify(c, &lsys); }

/* ---- dlopen / dlclose in a loop, and a module held open ------------------------------ */
static char dlpath[600];
static void set_dlpath(void)
{
	const char *d = getenv("MX_BIN");
	snprintf(dlpath, sizeof dlpath, "%s/mx_dlmod.so", d ? d : ".");
}
static void *dl_loop(void *a)
{
	struct loop *l = a;
	while (!atomic_load(&l->stop)) {
		void *h = dlopen(dlpath, RTLD_NOW | RTLD_LOCAL);
		const char *why = h ? NULL : dlerror();
		int (*f)(int) = h ? (int (*)(int))dlsym(h, "mx_dl_value") : NULL;
		if (h && !f)
			why = dlerror();
		int v = f ? f(5) : -1;
		if (why && atomic_fetch_add(&l->bad, 1) == 0)
			snprintf(l->why, sizeof l->why, "%s: %s", h ? "dlsym" : "dlopen", why);
		else if (!why && v != 15 + 1234)
			loop_bad(l, "dlopen'ed function returned %ld", v);
		if (h)
			dlclose(h);
		atomic_fetch_add(&l->rounds, 1);
	}
	return NULL;
}
static void dlopen_setup(mx_case *c) { set_dlpath(); MUST(access(dlpath, R_OK) == 0); loop_start(&ldl, dl_loop); }
static void dlopen_verify(mx_case *c) { loop_verify(c, &ldl); }

static void *held_h;
static int *held_tls;
static void dlheld_setup(mx_case *c)
{
	set_dlpath();
	MUST((held_h = dlopen(dlpath, RTLD_NOW)) != NULL);
	int *(*addr)(void) = NULL;
	(void)addr;
	MUST((held_tls = dlsym(held_h, "mx_dl_tls")) != NULL);
	*held_tls = 4321;   /* main's copy */
}
static void dlheld_verify(mx_case *c)
{
	int (*f)(int) = (int (*)(int))dlsym(held_h, "mx_dl_value");
	CHECK(c, *held_tls == 4321, "main's TLS in the module is %d, want 4321", *held_tls);
	CHECK(c, f && f(1) == 3 + 4321, "the module's function returned %d", f ? f(1) : -1);
	CHECK(c, dlclose(held_h) == 0, "dlclose: %s", dlerror());
}

/* ---- a thread exiting: its key destructor blocked when frozen ------------------------ */
static pthread_key_t key;
static int dtor_pipe[2];
static atomic_int dtor_runs, dtor_in;
static pthread_t exiting_t;
static void dtor(void *v)
{
	atomic_store(&dtor_in, 1);
	char b;
	while (read(dtor_pipe[0], &b, 1) < 0 && errno == EINTR)
		;
	if (v == (void *)0x5ee)
		atomic_fetch_add(&dtor_runs, 1);
}
static void *exiting(void *a) { pthread_setspecific(key, (void *)0x5ee); return (void *)0x77; }
static void exiting_setup(mx_case *c)
{
	MUST(pthread_key_create(&key, dtor) == 0 && pipe2(dtor_pipe, O_CLOEXEC) == 0);
	exiting_t = scn_thread(exiting, NULL);
	while (!atomic_load(&dtor_in))
		scn_sleep_ms(5);
	scn_sleep_ms(20);
}
static void exiting_verify(mx_case *c)
{
	CHECK(c, atomic_load(&dtor_runs) == 0, "the destructor finished before its release");
	CHECK(c, write(dtor_pipe[1], "d", 1) == 1, "write");
	void *rv = scn_join(exiting_t, "exiting thread");
	CHECK(c, rv == (void *)0x77 && atomic_load(&dtor_runs) == 1, "join returned %p, destructor ran %d times",
	      rv, atomic_load(&dtor_runs));
}

/* ---- after the resume: 64 new threads, each returning its own value ------------------- */
static void *ret_arg(void *a) { return a; }
static void create_verify(mx_case *c)
{
	pthread_t t[64];
	int ok = 0;
	for (intptr_t i = 0; i < 64; i++)
		if (pthread_create(&t[i], NULL, ret_arg, (void *)(i + 1)) != 0)
			t[i] = 0;
	for (intptr_t i = 0; i < 64; i++) {
		void *rv = NULL;
		ok += t[i] && pthread_join(t[i], &rv) == 0 && rv == (void *)(i + 1);
	}
	CHECK(c, ok == 64, "%d of 64 new threads returned their value", ok);
}

static mx_case cases[] = {
	{ "fork-during-freeze", "", fork_setup, fork_verify },
	{ "posix_spawn-during-freeze", "", spawn_setup, spawn_verify },
	{ "system-during-freeze", "", system_setup, system_verify },
	{ "dlopen-during-freeze", "", dlopen_setup, dlopen_verify },
	{ "dlopen-module-held", "", dlheld_setup, dlheld_verify },
	{ "thread-exiting-destructor", "", exiting_setup, exiting_verify },
	{ "threads-created-after-resume", "", NULL, create_verify },
};

int main(int argc, char **argv)
{
	return mx_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
