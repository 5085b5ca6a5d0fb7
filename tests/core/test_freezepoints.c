/* A thread blocked in each freeze point of DESIGN.md §2 (poll … flock), and
 * in the entry points fortified or optimised builds call instead (__read_chk,
 * __poll_chk, __fgets_chk, __getdelim, __uflow …): every call returns what it
 * would without libnuwa, in the original and in every clone
 * (tests/scenarios/freezepoints.c).  Each test runs on the three builds of
 * the scenario: plain, -O2 -D_FORTIFY_SOURCE=2 and =3. */
#include "harness.h"

#include <criterion/criterion.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(freezepoints, .fini = nh_cleanup_all, .timeout = 120);

#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Policy idle: the freeze fails unless every thread is idle — a blocking
 * call that no freeze point covers would be a busy thread.  The timeout is
 * long: a freeze that parks idle threads needs milliseconds. */
#define IDLE_ENV ENV("NUWA_FREEZE_POLICY=idle", "NUWA_FREEZE_TIMEOUT_MS=8000")

Test(freezepoints, twice) { nh_run_clones("freezepoints", NULL, 2, 1, 0); }
Test(freezepoints, twice_fortify2) { nh_run_clones("freezepoints-fortify2", NULL, 2, 1, 0); }
Test(freezepoints, twice_fortify3) { nh_run_clones("freezepoints-fortify3", NULL, 2, 1, 0); }

static void idle_twice(const char *name)
{
	struct nh_opts o = { .env = IDLE_ENV };
	nh_run_clones(name, &o, 2, 1, 0);
}

Test(freezepoints, idle_policy) { idle_twice("freezepoints"); }
Test(freezepoints, idle_policy_fortify2) { idle_twice("freezepoints-fortify2"); }
Test(freezepoints, idle_policy_fortify3) { idle_twice("freezepoints-fortify3"); }

Test(freezepoints, random20) { nh_run_clones("freezepoints", NULL, 20, 1, 80); }
Test(freezepoints, random20_fortify2) { nh_run_clones("freezepoints-fortify2", NULL, 20, 1, 80); }
Test(freezepoints, random20_fortify3) { nh_run_clones("freezepoints-fortify3", NULL, 20, 1, 80); }

/* ---- the builds really are what they claim: undefined dynamic symbols ---- */

/* Names the ELF file imports (undefined symbols of .dynsym), as one
 * "\0name\0name\0…" string so that "\0NAME\0" finds an exact name. */
static char *imports(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", getenv("NUWA_SCENARIO_DIR"), name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	cr_assert(fd >= 0 && fstat(fd, &st) == 0, "cannot open %s", path);
	char *f = malloc((size_t)st.st_size);
	cr_assert(f && read(fd, f, (size_t)st.st_size) == st.st_size, "cannot read %s", path);
	close(fd);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
	cr_assert(!memcmp(eh->e_ident, ELFMAG, SELFMAG) && eh->e_ident[EI_CLASS] == ELFCLASS64);
	Elf64_Shdr *sh = (Elf64_Shdr *)(f + eh->e_shoff);
	size_t cap = 4096, len = 1;
	char *out = calloc(1, cap);
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		const char *str = f + sh[sh[i].sh_link].sh_offset;
		Elf64_Sym *sym = (Elf64_Sym *)(f + sh[i].sh_offset);
		for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++) {
			if (sym[k].st_shndx != SHN_UNDEF || !sym[k].st_name)
				continue;
			const char *s = str + sym[k].st_name;
			size_t n = strlen(s) + 1;
			if (len + n + 1 > cap)
				out = realloc(out, cap *= 2);
			memcpy(out + len, s, n);
			len += n;
		}
	}
	out[len] = 0;
	free(f);
	return out;
}

static int imports_sym(const char *list, const char *sym)
{
	for (const char *p = list + 1; *p; p += strlen(p) + 1)
		if (!strcmp(p, sym))
			return 1;
	return 0;
}

static const char *const fortified_syms[] = {
	"__read_chk", "__pread64_chk", "__recv_chk", "__recvfrom_chk", "__poll_chk",
	"__ppoll_chk", "__fgets_chk", "__fgets_unlocked_chk", "__fread_chk",
	"__fread_unlocked_chk", "__fgetws_chk", "__getdelim", "__uflow",
};
static const char *const plain_syms[] = {
	"read", "pread64", "recv", "recvfrom", "poll", "ppoll", "fgets", "fgets_unlocked",
	"fread", "fread_unlocked", "fgetws", "fgetwc", "getline", "getc_unlocked",
};
#define N(a) (sizeof a / sizeof a[0])

static void expect_fortified(const char *name)
{
	char *l = imports(name);
	for (size_t i = 0; i < N(fortified_syms); i++)
		cr_expect(imports_sym(l, fortified_syms[i]), "%s does not import %s", name,
		          fortified_syms[i]);
	free(l);
}

Test(freezepoints, builds_import_what_they_test)
{
	char *l = imports("freezepoints");
	for (size_t i = 0; i < N(plain_syms); i++)
		cr_expect(imports_sym(l, plain_syms[i]), "the plain build does not import %s",
		          plain_syms[i]);
	for (size_t i = 0; i < N(fortified_syms); i++)
		cr_expect(!imports_sym(l, fortified_syms[i]), "the plain build imports %s",
		          fortified_syms[i]);
	free(l);
	expect_fortified("freezepoints-fortify2");
	expect_fortified("freezepoints-fortify3");
	char *f2 = imports("fault-fortify2"), *f3 = imports("fault-fortify3");
	cr_expect(imports_sym(f2, "__read_chk") && imports_sym(f3, "__read_chk"),
	          "the fortified fault builds do not import __read_chk");
	free(f2);
	free(f3);
}

/* libnuwa calls the real __read_chk: a read longer than its buffer still
 * aborts, before anything is read. */
static void overflow_aborts(const char *name)
{
	nh_proc *p = nh_start(name, &(struct nh_opts){ .argv = ARGV("overflow") });
	nh_finish(p, NH_FINISH_MS);
	if (!WIFSIGNALED(p->wstatus) || WTERMSIG(p->wstatus) != SIGABRT ||
	    !strstr(p->err.data, "buffer overflow detected"))
		nh_fail(p, "a read longer than its buffer did not abort in __read_chk (status 0x%x)",
		        p->wstatus);
	nh_free(p);
}

Test(freezepoints, fortify_check_kept_fortify2) { overflow_aborts("freezepoints-fortify2"); }
Test(freezepoints, fortify_check_kept_fortify3) { overflow_aborts("freezepoints-fortify3"); }
