/* Memory marked MADV_DONTFORK (V8's heap and code, RDMA buffers).
 *
 * Kernel facts relied on:
 * - madvise(MADV_DONTFORK) sets VM_DONTCOPY on the mappings; fork (and so
 *   libnuwa's raw clone without CLONE_VM) skips them in dup_mmap(): the
 *   child has a hole there.  The flag shows as "dc" on the VmFlags line of
 *   /proc/self/smaps (fs/proc/task_mmu.c show_smap_vma_flags), whoever
 *   set it, libc's madvise or a raw system call: smaps is the source of
 *   truth, no wrapper is needed.
 * - madvise(MADV_DOFORK) clears VM_DONTCOPY, except on VM_IO mappings
 *   ("io", device memory: EINVAL); madvise(MADV_DONTFORK) sets it again.
 *   Both only split or merge VMAs, the pages are untouched.
 * - MADV_WIPEONFORK ("wf", VM_WIPEONFORK) is left alone: the child gets
 *   zero-filled pages there, exactly as after fork().
 * - While every application thread is parked no mapping of the program
 *   can appear, vanish or change flags; libnuwa never sets VM_DONTCOPY on
 *   its own mappings (stacks, buffers), so every "dc" mapping is the
 *   program's.
 * smaps walks the page tables of every mapping (RSS, PSS), so it is read
 * once per freeze, when the template is made; each spawn then costs two
 * madvise calls per listed mapping (lift before the raw fork, put back in
 * the parent after it and in the child before anything else runs).
 * Nothing here allocates: the list lives in mmap'ed memory, smaps is read
 * into a static buffer by the control thread. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem_fork.h"
#include "nuwa_int.h"
#include "procfile.h"

#ifndef MADV_DONTFORK
#define MADV_DONTFORK 10
#define MADV_DOFORK 11
#endif

struct range { unsigned long start, end; int lifted; };

static struct range *ranges;   /* mmap'ed, grown with mremap */
static size_t nranges, cap_ranges;
static char smaps_buf[64 * 1024];

struct scan {
	unsigned long start, end;   /* mapping of the current header line */
	int err;                    /* -ENOMEM: list could not grow */
	int io_skipped;
};

static int ranges_push(unsigned long start, unsigned long end)
{
	if (nranges && ranges[nranges - 1].end == start) {
		ranges[nranges - 1].end = end;   /* adjacent: one madvise */
		return 0;
	}
	if (nranges == cap_ranges) {
		size_t ncap = cap_ranges ? cap_ranges * 2 : 256;
		void *p = nuwa_map_grow(ranges, cap_ranges * sizeof *ranges, ncap * sizeof *ranges);
		if (!p)
			return -ENOMEM;
		ranges = p;
		cap_ranges = ncap;
	}
	ranges[nranges++] = (struct range){ start, end, 0 };
	return 0;
}

/* "VmFlags: rd wr mr mw me dc ac" holds the two-letter flag f? */
static int has_flag(const char *s, const char *f)
{
	for (; *s; s++)
		if (s[0] == ' ' && s[1] == f[0] && s[2] == f[1] && (s[3] == ' ' || !s[3]))
			return 1;
	return 0;
}

static int on_line(char *line, void *arg)
{
	struct scan *sc = arg;
	char c = line[0];
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
		/* "start-end perms offset dev inode path" */
		const char *p = line;
		sc->start = (unsigned long)nuwa_parse_ull(&p, 16);
		sc->end = *p == '-' ? (p++, (unsigned long)nuwa_parse_ull(&p, 16)) : 0;
		return 0;
	}
	if (strncmp(line, "VmFlags:", 8) || !has_flag(line + 8, "dc") || sc->end <= sc->start)
		return 0;
	if (has_flag(line + 8, "io")) {
		/* device memory: MADV_DOFORK refuses it, as fork() would */
		nuwa_warn("mapping %lx-%lx is MADV_DONTFORK device memory (VM_IO): "
		          "children will not have it", sc->start, sc->end);
		sc->io_skipped++;
		return 0;
	}
	if (ranges_push(sc->start, sc->end) < 0) {
		sc->err = -ENOMEM;
		return 1;
	}
	return 0;
}

int mem_fork_prepare(char *err, size_t errlen)
{
	struct timespec t0 = ts_now(CLOCK_MONOTONIC);
	struct scan sc = { 0, 0, 0, 0 };
	nranges = 0;
	int r = nuwa_proc_lines("/proc/self/smaps", smaps_buf, sizeof smaps_buf, on_line, &sc);
	if (r == 0)
		r = sc.err;
	if (r < 0) {
		if (err && errlen)
			snprintf(err, errlen, "cannot list MADV_DONTFORK memory in "
			         "/proc/self/smaps (errno %d)", -r);
		nranges = 0;
		return r;
	}
	struct timespec d = ts_sub(ts_now(CLOCK_MONOTONIC), t0);
	nuwa_debug("smaps read in %ld us: %zu MADV_DONTFORK mappings to carry into children",
	           (long)(d.tv_sec * 1000000L + d.tv_nsec / 1000), nranges);
	return 0;
}

void mem_fork_lift(void)
{
	for (size_t i = 0; i < nranges; i++) {
		struct range *g = &ranges[i];
		long e = sys_madvise(g->start, g->end - g->start, MADV_DOFORK);
		g->lifted = e == 0;
		if (!g->lifted)
			nuwa_warn("madvise(%lx-%lx, MADV_DOFORK) failed (errno %ld): "
			          "children will not have this memory", g->start, g->end, -e);
	}
}

void mem_fork_lower(void)
{
	for (size_t i = 0; i < nranges; i++) {
		struct range *g = &ranges[i];
		long e = g->lifted ? sys_madvise(g->start, g->end - g->start, MADV_DONTFORK) : 0;
		if (e < 0)
			nuwa_warn("madvise(%lx-%lx, MADV_DONTFORK) failed (errno %ld): "
			          "the program's own fork() will copy this memory",
			          g->start, g->end, -e);
	}
}

void mem_fork_finish(void)
{
	nranges = 0;
}

int mem_fork_count(void)
{
	return (int)nranges;
}
