/* mx_mem — memory with each madvise flag, and the mappings fork() treats
 * specially.  The program's own choices are kept: MADV_WIPEONFORK is the
 * program asking for zeroes in a child, MAP_SHARED memory is shared with the
 * children; MADV_DONTFORK (V8 uses it) must not leave holes in a child
 * (DESIGN.md §6). */
#include "mx.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#define REG (256 * 1024)

struct region { char *p; size_t len; int advice; const char *flag; uint32_t seed; };
static struct region r_dontfork = { .advice = MADV_DONTFORK, .seed = 61 },
	r_wipe = { .advice = MADV_WIPEONFORK, .flag = "wf", .seed = 62 },
	r_dontdump = { .advice = MADV_DONTDUMP, .flag = "dd", .seed = 63 },
	r_merge = { .advice = MADV_MERGEABLE, .flag = "mg", .seed = 64 },
	r_huge = { .advice = MADV_HUGEPAGE, .flag = "hg", .seed = 65 },
	r_nohuge = { .advice = MADV_NOHUGEPAGE, .flag = "nh", .seed = 66 },
	r_random = { .advice = MADV_RANDOM, .flag = "rr", .seed = 67 };

static void region_setup(struct region *r)
{
	r->len = r->advice == MADV_HUGEPAGE || r->advice == MADV_NOHUGEPAGE ? 4 << 20 : REG;
	r->p = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	MUST(r->p != MAP_FAILED);
	MUST(madvise(r->p, r->len, r->advice) == 0);
	mx_fill(r->p, r->len, r->seed);
}
static int has_flag(const char *flags, const char *f)
{
	char pad[300];
	snprintf(pad, sizeof pad, " %s ", flags);
	char want[8];
	snprintf(want, sizeof want, " %s ", f);
	return strstr(pad, want) != NULL;
}
/* Contents as in the template, and the flag still on the mapping. */
static void region_verify(mx_case *c, struct region *r)
{
	char flags[300];
	CHECK(c, mx_check_pattern(r->p, r->len, r->seed), "the contents differ");
	if (r->flag)
		CHECK(c, has_flag(mx_vmflags(r->p, flags, sizeof flags), r->flag), "VmFlags \"%s\" lack %s", flags, r->flag);
}
#define REGION(NAME) \
	static void NAME##_setup(mx_case *c) { region_setup(&r_##NAME); } \
	static void NAME##_verify(mx_case *c) { region_verify(c, &r_##NAME); }
REGION(dontfork) REGION(dontdump) REGION(merge) REGION(huge) REGION(nohuge) REGION(random)

/* MADV_WIPEONFORK: zeroes in the children, the contents in the original. */
static void wipe_setup(mx_case *c) { region_setup(&r_wipe); }
static void wipe_verify(mx_case *c)
{
	char flags[300];
	if (mx_child()) {
		size_t nz = 0;
		for (size_t i = 0; i < r_wipe.len; i++)
			nz += r_wipe.p[i] != 0;
		CHECK(c, nz == 0, "%zu bytes are not zero in a child", nz);
	} else {
		CHECK(c, mx_check_pattern(r_wipe.p, r_wipe.len, r_wipe.seed), "the original's contents differ");
	}
	CHECK(c, has_flag(mx_vmflags(r_wipe.p, flags, sizeof flags), "wf"), "VmFlags \"%s\" lack wf", flags);
}

/* MAP_SHARED anonymous memory is one memory for all: each child adds one;
 * the original, last, finds three. */
static atomic_long *shared;
static void shared_setup(mx_case *c)
{
	MUST((shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED);
	atomic_store(shared, 1000);
}
static void shared_verify(mx_case *c)
{
	if (mx_child())
		atomic_fetch_add(shared, 1);
	else
		CHECK(c, atomic_load(shared) == 1003, "the shared word is %ld, want 1003", atomic_load(shared));
}

/* A read-only mapping stays read-only. */
static char *ro;
static void ro_setup(mx_case *c)
{
	MUST((ro = mmap(NULL, REG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED);
	mx_fill(ro, REG, 68);
	MUST(mprotect(ro, REG, PROT_READ) == 0);
}
static void ro_verify(mx_case *c)
{
	char flags[300];
	mx_vmflags(ro, flags, sizeof flags);
	CHECK(c, mx_check_pattern(ro, REG, 68), "the contents differ");
	CHECK(c, has_flag(flags, "rd") && !has_flag(flags, "wr"), "VmFlags \"%s\": want rd without wr", flags);
}

/* A private file mapping written before the freeze: the copy-on-write page
 * is in every process, the file unchanged. */
static char *fm, fpath[600];
static void filemap_setup(mx_case *c)
{
	const char *d = getenv("MX_DIR");
	MUST(d);
	snprintf(fpath, sizeof fpath, "%s/mapped", d);
	int fd = open(fpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	MUST(fd >= 0 && ftruncate(fd, 8192) == 0);
	MUST((fm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)) != MAP_FAILED);
	close(fd);
	memcpy(fm, "private", 7);
}
static void filemap_verify(mx_case *c)
{
	char b[8] = { 0 };
	int fd = open(fpath, O_RDONLY | O_CLOEXEC);
	CHECK(c, fd >= 0 && pread(fd, b, 7, 0) == 7 && !memcmp(b, "\0\0\0\0\0\0\0", 7), "the file was changed");
	if (fd >= 0)
		close(fd);
	CHECK(c, !memcmp(fm, "private", 7) && fm[4096] == 0, "the private copy differs");
}

static mx_case cases[] = {
	{ "madv-dontfork", "", dontfork_setup, dontfork_verify },
	{ "madv-wipeonfork", "mem", wipe_setup, wipe_verify },
	{ "madv-dontdump", "mem", dontdump_setup, dontdump_verify },
	{ "madv-mergeable", "mem", merge_setup, merge_verify },
	{ "madv-hugepage", "mem", huge_setup, huge_verify },
	{ "madv-nohugepage", "mem", nohuge_setup, nohuge_verify },
	{ "madv-random", "mem", random_setup, random_verify },
	{ "mmap-shared-anonymous", "mem", shared_setup, shared_verify },
	{ "mprotect-read-only", "mem", ro_setup, ro_verify },
	{ "mmap-private-file-cow", "mem", filemap_setup, filemap_verify },
};

int main(int argc, char **argv)
{
	return mx_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
