/* exec wrappers: a forked child that execs leaves no control socket behind
 * (tests/scenarios/execs.c: every exec* variant). */
#include "harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(exec, .fini = nh_cleanup_all, .timeout = 60);

Test(exec, every_variant_removes_the_childs_socket)
{
	char dir[] = "/tmp/nuwa-exec-test-XXXXXX";
	cr_assert(mkdtemp(dir), "mkdtemp");
	char env_dir[128];
	snprintf(env_dir, sizeof env_dir, "NUWA_RUNTIME_DIR=%s", dir);
	const char *env[] = { env_dir, NULL };
	struct nh_opts o = { .env = env };
	nh_proc *p = nh_start("execs", &o);
	nh_expect_ready(p);
	nh_finish(p, NH_FINISH_MS);
	nh_expect_results(p, 1);

	/* each child saw its own socket before exec: the check can fail */
	int yes = nh_count(p->out.data, " yes\n"), no = nh_count(p->out.data, " no\n");
	if (yes != 7 || no != 0)
		nh_fail(p, "expected 7 children that saw their socket, got %d (and %d without)", yes, no);

	/* and none is left now (the original's own was removed at its exit) */
	DIR *d = opendir(dir);
	cr_assert(d);
	struct dirent *e;
	int left = 0;
	char names[512] = "";
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".sock")) {
			left++;
			strncat(names, e->d_name, sizeof names - strlen(names) - 2);
			strcat(names, " ");
		}
	closedir(d);
	if (left)
		nh_fail(p, "socket files left in %s: %s", dir, names);
	rmdir(dir);
	nh_free(p);
}
