/* The manual pages of `nuwa` and its verbs (kept in step with docs/cli.md). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char overview[] =
"Usage: nuwa COMMAND [OPTIONS] [ARGS]\n"
"\n"
"Run a program under libnuwa, freeze it once it has warmed up, and spawn\n"
"running copies of it (every thread resumed) in about the time of a fork().\n"
"\n"
"Commands:\n"
"  run [OPTIONS] -- PROG [ARGS...]   run PROG with libnuwa preloaded\n"
"  freeze PID [--timeout MS] [--pool N]\n"
"                                    freeze PID into a template\n"
"  spawn PID|SOCKET [-n N] [--stdio] [--wait] [--call SPEC]... [--env N=V]...\n"
"        [--env-clear] [--cwd DIR] [--cgroup DIR]\n"
"                                    fork running children of a template\n"
"  status PID [--json]               mode, state, threads, descriptors, children,\n"
"                                    memory shared and private\n"
"  thaw PID                          resume a template exactly as it was\n"
"  stop PID                          end a template (its children keep running)\n"
"  pool PID N                        keep N children of a template ready\n"
"  list                              libnuwa processes of this user\n"
"  help COMMAND                      the manual page of COMMAND\n"
"\n"
"A typical session:\n"
"  nuwa run --mode template -- ./server --port 8080 &   # $! is its pid\n"
"  nuwa freeze $!                   # once it has warmed up\n"
"  nuwa spawn -n 4 $!               # four running copies, pids printed\n"
"  nuwa spawn --stdio --wait --call 'setenv(str:ROLE, str:worker, int:1)' $!\n"
"\n"
"Exit status: 0 success; 1 the process refused or the operation failed;\n"
"2 bad command line; 3 no such libnuwa process or cannot connect;\n"
"4 communication error.  'run' exits with PROG's status (125 nuwa failed,\n"
"126 PROG not executable, 127 PROG not found); 'spawn --wait' with the\n"
"child's (128+N when killed by signal N; 125 when nuwa itself failed).\n"
"\n"
"Control sockets live in $NUWA_RUNTIME_DIR, else $XDG_RUNTIME_DIR/nuwa, else\n"
"/tmp/nuwa-$UID (mode 0700), one per process: DIR/PID.sock.\n"
"'nuwa COMMAND --help' gives the details of each command.\n";

static const char run_help[] =
"Usage: nuwa run [OPTIONS] [--] PROG [ARGS...]\n"
"\n"
"Execute PROG with libnuwa preloaded (LD_PRELOAD, absolute path) and\n"
"configured by the options below.  PROG replaces nuwa and keeps its pid,\n"
"so '$!' after 'nuwa run ... &' is the pid to freeze.  libnuwa is found next\n"
"to nuwa in a build tree, else in the installation's library directory.\n"
"\n"
"Options (each sets the environment variable shown):\n"
"  -m, --mode MODE        what a freeze does (NUWA_MODE):\n"
"                           template  the program stays frozen and serves spawn\n"
"                                     requests until 'nuwa thaw' or 'nuwa stop'\n"
"                           snapshot  a forked child holds the frozen image and\n"
"                                     serves spawns; the program runs on at once\n"
"                           clone     N live copies are made and everyone resumes\n"
"                         (default: template, unless NUWA_MODE is already set)\n"
"  -s, --signal SIG       trigger signal, e.g. USR2, SIGUSR1, RTMIN+3 (NUWA_SIGNAL;\n"
"                         default USR2): 'kill -SIG PID' freezes like 'nuwa freeze'\n"
"  -l, --log LEVEL        error, warn, info or debug (NUWA_LOG; default warn)\n"
"      --log-file PATH    append libnuwa's log there instead of stderr\n"
"                         (NUWA_LOG_FILE)\n"
"      --freeze-on-idle MS  freeze automatically the first time every thread\n"
"                         has been idle for MS milliseconds (NUWA_FREEZE_ON_IDLE_MS)\n"
"      --timeout MS       how long a freeze waits for threads to become idle\n"
"                         (NUWA_FREEZE_TIMEOUT_MS; default 2000)\n"
"      --policy P         any: after the timeout freeze busy threads where they\n"
"                         are; idle: give up instead (NUWA_FREEZE_POLICY)\n"
"  -n, --clones N         copies per trigger in clone mode (NUWA_CLONES)\n"
"      --pool N           template mode: keep N children ready from the freeze\n"
"                         on (NUWA_POOL; see 'nuwa pool --help')\n"
"      --lib PATH         preload this libnuwa.so instead of the one found\n"
"  -h, --help             this text\n"
"\n"
"Under a service manager's Type=notify ($NOTIFY_SOCKET set), libnuwa takes\n"
"the socket from PROG's environment and reports READY=1 only once PROG is\n"
"frozen (e.g. with --freeze-on-idle); see share/doc/libnuwa/examples/systemd.\n"
"\n"
"Exit status: PROG's own; 125 if nuwa failed (bad option: 2), 126 if PROG\n"
"cannot be executed, 127 if it is not found.\n"
"\n"
"Example:\n"
"  nuwa run --mode template --log info -- python3 -c 'import numpy; input()'\n";

static const char freeze_help[] =
"Usage: nuwa freeze [--timeout MS] [--pool N] PID\n"
"\n"
"Freeze process PID (started under libnuwa) over its control socket and\n"
"return once the template is ready.  Prints one line saying so, then the\n"
"process report: every thread parked (idle in which call, or busy) and the\n"
"descriptors that children will get their own copies of.\n"
"\n"
"In template mode the process stays frozen; in snapshot mode it runs on and\n"
"the line names the pid of the child that holds the template; spawn from\n"
"that pid (or from PID: nuwa spawn follows).\n"
"\n"
"Options:\n"
"  -t, --timeout MS   how long to wait for every thread to reach a freeze\n"
"                     point (default: the process's NUWA_FREEZE_TIMEOUT_MS)\n"
"  -p, --pool N       template mode: keep N children (0 to 64) forked ahead of\n"
"                     time, every thread cloned back but none running, so that\n"
"                     a spawn only releases one (default: the process's\n"
"                     NUWA_POOL, else 0).  See 'nuwa pool --help'\n"
"  -h, --help         this text\n"
"\n"
"Exit status: 0 frozen; 1 the freeze failed (the reason is printed, e.g. a\n"
"thread stayed busy under policy idle; the program goes on as before) or\n"
"PID is already frozen; 2 usage; 3 PID is not a libnuwa process; 4 the\n"
"connection broke.\n";

static const char spawn_help[] =
"Usage: nuwa spawn [-n N] [--stdio] [--wait] [--call SPEC]... [--env NAME=VALUE]...\n"
"                  [--env-clear] [--cwd DIR] [--cgroup DIR] PID|SOCKET\n"
"\n"
"Ask the template PID (or the control socket at path SOCKET) for N running\n"
"children and print their pids, one a line, as they are made.  Every thread\n"
"of the program resumes in each child; the child's internal pipes, epoll,\n"
"eventfd ... are its own.\n"
"\n"
"Options:\n"
"  -n, --count N     children to make (1 to 1024; default 1)\n"
"  -s, --stdio       give the children this command's stdin, stdout and stderr\n"
"                    (passed over the socket) instead of the template's;\n"
"                    stdout is then the children's alone: their pids go to\n"
"                    stderr, as 'nuwa spawn: child PID'\n"
"  -w, --wait        wait until every child has exited and exit with the\n"
"                    status of the first that failed (0 if none did); a child\n"
"                    killed by signal N counts as 128+N.  SIGINT, SIGTERM and\n"
"                    SIGHUP received meanwhile are forwarded to the children.\n"
"                    With --stdio from a terminal the child is a job of your\n"
"                    shell: Ctrl-C, Ctrl-\\, Ctrl-Z and fg, and window-size\n"
"                    changes reach it; the terminal's modes are restored after\n"
"                    it (it joins nuwa's process group when the template runs\n"
"                    in the terminal's session, else nuwa forwards the signals)\n"
"  -c, --call SPEC   in each child, after its threads resume, call a function\n"
"                    of the program: NAME(TYPE:VALUE, ...) with TYPE one of\n"
"                      int:-3  long:0x7fffffffffff  double:2.5\n"
"                      str:text  str:\"with, commas\\n\"  ptr:null\n"
"                    Several --call run in order.  NAME must be in the\n"
"                    program's dynamic symbol table (libraries, or an executable\n"
"                    linked with -rdynamic); an unknown NAME is an error before\n"
"                    any child is made.  The return value is ignored.\n"
"  -e, --env NAME=VALUE\n"
"                    set NAME in each child's environment (repeatable; the last\n"
"                    of a NAME wins), before any of its threads runs again\n"
"      --env-clear   start each child from an empty environment (then --env)\n"
"  -C, --cwd DIR     run each child in directory DIR (relative to this\n"
"                    command's directory)\n"
"      --cgroup DIR  fork each child straight into the cgroup v2 directory DIR\n"
"                    (clone3 CLONE_INTO_CGROUP), e.g. one with memory.max set;\n"
"                    it must be writable and have no controllers enabled in\n"
"                    its cgroup.subtree_control\n"
"                    A bad --env (no '=', empty NAME, too long), --cwd (not a\n"
"                    directory) or --cgroup (not cgroup v2, not writable) is\n"
"                    an error before any child is made.\n"
"  -h, --help        this text\n"
"\n"
"Exit status: 0 children made; 1 the template refused (not frozen, unknown\n"
"symbol, ...) or a fork failed (pids made so far are printed); 2 usage;\n"
"3 no such libnuwa process; 4 communication error.  With --wait: the\n"
"children's status as above, and 125 when nuwa itself failed.\n"
"\n"
"Examples:\n"
"  nuwa spawn -n 8 1234\n"
"  nuwa spawn --stdio --wait --call 'setenv(str:MODE, str:worker, int:1)' 1234\n"
"  nuwa spawn --stdio --wait --env MODE=worker --cwd /srv/job 1234\n"
"  nuwa spawn --cgroup /sys/fs/cgroup/workers/w1 1234\n";

static const char status_help[] =
"Usage: nuwa status [--json] PID\n"
"\n"
"Print what libnuwa knows about process PID: mode, state (running, freezing,\n"
"template), every thread (tid, name, idle in which call or busy), every\n"
"descriptor with its kind and what children get (shared or rebuilt), the\n"
"control socket and the children spawned through it; then the memory of PID\n"
"and of each child, one line each, in kB from /proc/PID/smaps_rollup: rss\n"
"(resident), pss (shared pages divided among their users), uss (its own\n"
"pages: Private_Clean + Private_Dirty, what exiting would free) and shared\n"
"(rss - uss: for a child, mostly the template's pages, copy-on-write);\n"
"children waiting in the template's pool are the 'pool' lines.\n"
"\n"
"Options:\n"
"  -j, --json   one JSON object instead of text (the memory lines are its\n"
"               \"memory\" array: pid, role, rss_kb, pss_kb, uss_kb, shared_kb)\n"
"  -h, --help   this text\n"
"\n"
"Exit status: 0, or 2 usage, 3 no such libnuwa process, 4 communication error.\n";

static const char thaw_help[] =
"Usage: nuwa thaw PID\n"
"\n"
"Resume the template PID: every thread continues exactly where it was\n"
"frozen, as if nothing had happened.  Children already spawned are not\n"
"affected; the process can be frozen again later.\n"
"\n"
"Exit status: 0 thawed; 1 PID is not a template; 2 usage; 3 no such\n"
"libnuwa process; 4 communication error.\n";

static const char stop_help[] =
"Usage: nuwa stop PID\n"
"\n"
"End the template PID: the process exits at once (status 0) without\n"
"resuming its threads, so no atexit handler of the program runs.  Its\n"
"children are not touched: they keep running, adopted by init (or the\n"
"nearest subreaper); a 'nuwa spawn --wait' still waiting for one of them\n"
"ends with status 125 because the exit status can no longer be reported.\n"
"Prints how many spawned children keep running.\n"
"\n"
"Exit status: 0 stopped; 1 PID is not a template (use kill for a running\n"
"program); 2 usage; 3 no such libnuwa process; 4 communication error.\n";

static const char pool_help[] =
"Usage: nuwa pool PID N\n"
"\n"
"Make the template PID keep N children ready (0 to 64; 0 ends the pool).\n"
"A pooled child is forked ahead of time and resumed up to the release gate:\n"
"its descriptors are its own, every thread is cloned back with its new tid,\n"
"and no thread of the program runs, so it accepts no connection, fires no\n"
"timer and writes nothing.  A spawn takes one, gives it what is particular\n"
"to the request (--stdio, each --call, the constructors), lets its threads\n"
"run, and only then answers.  The template forks replacements in the\n"
"background, one at a time and after a short delay unless the pool is\n"
"empty, so a burst is served from the pool first and then by fresh forks.\n"
"A pooled child that dies is replaced.  'nuwa status' shows the pool;\n"
"pooled children are not spawned children until they are taken.  Thaw and\n"
"stop end them.  A spawn from the pool behaves exactly like one without it.\n"
"\n"
"The same at the freeze: 'nuwa freeze --pool N PID', or NUWA_POOL=N in the\n"
"program's environment ('nuwa run --pool N').\n"
"\n"
"Exit status: 0 done; 1 PID is not a template, or N is refused; 2 usage;\n"
"3 no such libnuwa process; 4 communication error.\n";

static const char list_help[] =
"Usage: nuwa list\n"
"\n"
"List the processes of this user that run libnuwa (one control socket each\n"
"in the runtime directory): PID, STATE, MODE, children spawned and still\n"
"running, and the command line.  Sockets left by processes that were killed\n"
"are removed.\n"
"\n"
"Exit status: 0, or 1 if the runtime directory cannot be read.\n";

static const struct { const char *verb, *text; } pages[] = {
	{ "run", run_help }, { "freeze", freeze_help }, { "spawn", spawn_help },
	{ "status", status_help }, { "thaw", thaw_help }, { "stop", stop_help },
	{ "pool", pool_help }, { "list", list_help },
};

int cli_has_help(const char *verb)
{
	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
		if (!strcmp(verb, pages[i].verb))
			return 1;
	return 0;
}

void cli_print_help(const char *verb)
{
	if (verb)
		for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
			if (!strcmp(verb, pages[i].verb)) {
				fputs(pages[i].text, stdout);
				return;
			}
	fputs(overview, stdout);
}
