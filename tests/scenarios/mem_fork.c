/* mem_fork — memory the program marked MADV_DONTFORK or MADV_WIPEONFORK.
 *
 * Three worker threads wait on a condition variable.  Before READY the
 * program fills two regions with a known pattern:
 *   D  16 pages, marked MADV_DONTFORK through the raw system call (as a
 *      JIT or an RDMA library does, never seen by a libc wrapper);
 *   W   4 pages, marked MADV_WIPEONFORK.
 * After EOF every process (the original and each clone) checks, from main
 * and from a resumed worker:
 *   - D is mapped, holds the pattern, and is still "dc" in /proc/self/smaps;
 *   - W holds the pattern in the original and only zeroes in a clone, and
 *     is still "wf";
 *   - a plain fork() made by the program leaves D out of its child (the
 *     grandchild dies of SIGSEGV reading it) and gives it a zeroed W, as
 *     fork() always did.
 */
#include "scn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define D_PAGES 16
#define W_PAGES 4

static unsigned char *dreg, *wreg;
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;          /* 0 wait, 1 check, 2 stop */
static int checked;

static unsigned char pattern(size_t i) { return (unsigned char)(scn_mix(i) | 1); }

static void fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(i);
}

/* -1 the region is not mapped, 0 pattern, 1 zeroes, 2 anything else */
static int classify(const unsigned char *p, size_t n)
{
	/* mincore fails with ENOMEM on an unmapped range: no fault needed */
	unsigned char vec[D_PAGES];
	if (mincore((void *)p, n, vec) != 0 && errno == ENOMEM)
		return -1;
	int pat = 1, zero = 1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != pattern(i))
			pat = 0;
		if (p[i])
			zero = 0;
	}
	return pat ? 0 : zero ? 1 : 2;
}

/* The VmFlags line of the mapping that holds addr has flag f: 1, 0, -1
 * when no mapping holds addr. */
static int smaps_flag(const void *addr, const char *f)
{
	int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = 0;
	int in = 0, res = -1;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		unsigned long a, b;
		if (strchr("0123456789abcdef", line[0]) && sscanf(line, "%lx-%lx", &a, &b) == 2)
			in = (uintptr_t)addr >= a && (uintptr_t)addr < b;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			char pat[8] = " ";
			strcat(pat, f);
			char *hit = strstr(line + 8, pat);
			res = hit && (hit[3] == ' ' || hit[3] == 0);
			break;
		}
		line = nl ? nl + 1 : NULL;
	}
	return res;
}

/* A plain fork() by the program: the grandchild reports what it sees. */
static void check_app_fork(const char *who)
{
	pid_t pid = fork();
	if (pid < 0) {
		scn_fail("%s: fork: %s", who, strerror(errno));
		return;
	}
	if (pid == 0) {
		if (classify(wreg, W_PAGES * PAGE) != 1)
			_exit(3);   /* W must be zero after fork() */
		/* The default action: under ASan its SIGSEGV handler would make
		 * the expected fault a report and an abort. */
		signal(SIGSEGV, SIG_DFL);
		volatile unsigned char c = dreg[0];   /* D must be absent: SIGSEGV */
		(void)c;
		_exit(4);
	}
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		scn_fail("%s: waitpid: %s", who, strerror(errno));
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		scn_fail("%s: after the program's fork() the WIPEONFORK region is not zero", who);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 4)
		scn_fail("%s: the program's fork() copied the MADV_DONTFORK region "
		         "(its flag was not put back)", who);
	else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
		scn_fail("%s: the program's fork() child ended with status 0x%x, "
		         "not SIGSEGV", who, st);
}

static void check_all(const char *who)
{
	int clone = scn_is_clone();
	int d = classify(dreg, D_PAGES * PAGE);
	if (d == -1)
		scn_fail("%s: the MADV_DONTFORK region is not mapped", who);
	else if (d != 0)
		scn_fail("%s: the MADV_DONTFORK region lost its data (%s)", who,
		         d == 1 ? "zeroes" : "other bytes");
	else if (smaps_flag(dreg, "dc") != 1)
		scn_fail("%s: the MADV_DONTFORK region is no longer 'dc' in smaps", who);
	int w = classify(wreg, W_PAGES * PAGE);
	if (w != (clone ? 1 : 0))
		scn_fail("%s: the WIPEONFORK region holds %s, expected %s", who,
		         w == -1 ? "no mapping" : w == 0 ? "the pattern" : w == 1 ? "zeroes" : "other bytes",
		         clone ? "zeroes" : "the pattern");
	if (smaps_flag(wreg, "wf") != 1)
		scn_fail("%s: the WIPEONFORK region is no longer 'wf' in smaps", who);
	if (d == 0)
		check_app_fork(who);
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	pthread_mutex_lock(&mx);
	for (;;) {
		while (phase == 0)
			pthread_cond_wait(&cv, &mx);
		if (phase == 2)
			break;
		if (idx == 0 && !checked) {
			pthread_mutex_unlock(&mx);
			check_all("worker");
			pthread_mutex_lock(&mx);
			checked = 1;
			pthread_cond_broadcast(&cv);
		}
		while (phase == 1)
			pthread_cond_wait(&cv, &mx);
	}
	pthread_mutex_unlock(&mx);
	return NULL;
}

int main(void)
{
	scn_init();
	dreg = mmap(NULL, D_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	wreg = mmap(NULL, W_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dreg == MAP_FAILED || wreg == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	fill(dreg, D_PAGES * PAGE);
	fill(wreg, W_PAGES * PAGE);
	if (syscall(SYS_madvise, dreg, D_PAGES * PAGE, MADV_DONTFORK) != 0)
		scn_fail("madvise(MADV_DONTFORK): %s", strerror(errno));
	if (madvise(wreg, W_PAGES * PAGE, MADV_WIPEONFORK) != 0)
		scn_fail("madvise(MADV_WIPEONFORK): %s", strerror(errno));
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		t[i] = scn_thread(worker, (void *)(intptr_t)i);
	scn_ready();
	scn_wait_eof();
	scn_watchdog(20);
	scn_phase("checks");
	check_all("main");
	pthread_mutex_lock(&mx);
	phase = 1;
	pthread_cond_broadcast(&cv);
	while (!checked)
		pthread_cond_wait(&cv, &mx);
	phase = 2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	for (int i = 0; i < 3; i++)
		scn_join(t[i], "worker");
	return scn_finish();
}
