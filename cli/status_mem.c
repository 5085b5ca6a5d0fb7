/* nuwa status: what the template saves, in memory.  For the process and
 * each child it lists, /proc/PID/smaps_rollup (Linux 4.14) sums its
 * mappings:
 *   Rss   resident pages mapped by the process
 *   Pss   each page divided by the number of processes mapping it
 *   USS   Private_Clean + Private_Dirty: pages mapped by this process alone,
 *         what it would give back by exiting
 *   shared = Rss - USS (Shared_Clean + Shared_Dirty): pages it maps with
 *         others, for a child mostly the template's, copy-on-write
 * Read here by nuwa, not by the template: the kernel walks the page tables,
 * and the template's control thread is spared a page-table walk per child.
 * A process we may not read (another user's) or that is gone is skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "status_mem.h"

struct mem { long rss, pss, uss, shared; };

static int read_rollup(pid_t pid, struct mem *m)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long pc = 0, pd = 0, sc = 0, sd = 0;
	*m = (struct mem){ -1, -1, 0, 0 };
	while (fgets(line, sizeof line, f)) {
		long v;
		char key[64];
		if (sscanf(line, "%63[^:]: %ld kB", key, &v) != 2)
			continue;
		if (!strcmp(key, "Rss")) m->rss = v;
		else if (!strcmp(key, "Pss")) m->pss = v;
		else if (!strcmp(key, "Private_Clean")) pc = v;
		else if (!strcmp(key, "Private_Dirty")) pd = v;
		else if (!strcmp(key, "Shared_Clean")) sc = v;
		else if (!strcmp(key, "Shared_Dirty")) sd = v;
	}
	fclose(f);
	m->uss = pc + pd;
	m->shared = sc + sd;
	return m->rss >= 0 && m->pss >= 0 ? 0 : -1;
}

/* Where key (e.g. "\"children\":[") starts at nesting depth 1 of a JSON
 * object (a member of the top-level object, not of one inside it), or NULL.
 * Strings are skipped, escapes included. */
static const char *json_member(const char *text, const char *key)
{
	size_t klen = strlen(key);
	int depth = 0, in_str = 0;
	for (const char *p = text; *p; p++) {
		if (in_str) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				in_str = 0;
			continue;
		}
		if (depth == 1 && *p == '"' && !strncmp(p, key, klen))
			return p + klen;
		if (*p == '"')
			in_str = 1;
		else if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
	}
	return NULL;
}

/* Numbers in a list "N, N, ..." or "N N ..." from p, until anything else. */
static int pid_list(const char *p, pid_t *out, int n, int max)
{
	while (n < max) {
		while (*p == ' ' || *p == ',')
			p++;
		char *e;
		long v = strtol(p, &e, 10);
		if (e == p || v <= 0)
			break;
		out[n++] = (pid_t)v;
		p = e;
	}
	return n;
}

/* The children libnuwa made (text: the line "children N PID...", JSON: the
 * top-level "children" list), then the pooled ones (text: "  pooled PID"
 * lines; JSON: "pid" members of "pool"'s "children"); npool gets how many
 * of the latter there are. */
static int children_of(const char *text, int json, pid_t *out, int max, int *npool)
{
	int n = 0;
	*npool = 0;
	if (json) {
		const char *p = json_member(text, "\"children\":[");
		if (p)
			n = pid_list(p, out, n, max);
		const char *pool = json_member(text, "\"pool\":{");
		const char *end = pool ? strchr(pool, ']') : NULL;
		p = pool ? strstr(pool, "\"children\":[") : NULL;
		for (; p && end && n < max && (p = strstr(p, "\"pid\":")) && p < end; p += 6) {
			out[n++] = (pid_t)atol(p + 6);
			(*npool)++;
		}
		return n;
	}
	const char *p = strstr(text, "\nchildren ");
	if (p) {
		p += 10;
		strtol(p, (char **)&p, 10);   /* the count */
		n = pid_list(p, out, n, max);
	}
	for (p = text; n < max && (p = strstr(p, "\n  pooled ")); p += 10) {
		out[n++] = (pid_t)atol(p + 10);
		(*npool)++;
	}
	return n;
}

static void line(int json, int *first, pid_t pid, const char *role, const struct mem *m)
{
	if (json)
		printf("%s{\"pid\":%d,\"role\":\"%s\",\"rss_kb\":%ld,\"pss_kb\":%ld,\"uss_kb\":%ld,"
		       "\"shared_kb\":%ld}", *first ? "" : ",", (int)pid, role, m->rss, m->pss, m->uss,
		       m->shared);
	else
		printf("  %-8s %7d  rss %9ld  pss %9ld  uss %9ld  shared %9ld\n", role, (int)pid,
		       m->rss, m->pss, m->uss, m->shared);
	*first = 0;
}

void status_mem_print(const char *text, pid_t pid, int json)
{
	static pid_t kids[1024 + 64];
	int npool;
	int nk = children_of(text, json, kids, 1024 + 64, &npool);
	size_t len = strlen(text);
	const char *end = text + len;
	if (json) {
		/* the object's last '}': the memory goes in before it */
		while (end > text && end[-1] != '}')
			end--;
		if (end == text) {
			fputs(text, stdout);
			return;
		}
		end--;
	}
	fwrite(text, 1, (size_t)(end - text), stdout);
	if (!json && len && text[len - 1] != '\n')
		putchar('\n');
	int first = 1;
	struct mem m, sum = { 0, 0, 0, 0 };
	int counted = 0;
	if (json)
		printf(",\"memory\":[");
	else
		printf("memory (kB, smaps_rollup; uss: its own pages, shared: pages it maps "
		       "with others, for a child the template's copy-on-write ones)\n");
	if (read_rollup(pid, &m) == 0)
		line(json, &first, pid, strstr(text, json ? "\"state\":\"template\"" :
		     "\nstate template") ? "template" : "process", &m);
	for (int i = 0; i < nk; i++) {
		if (read_rollup(kids[i], &m) < 0)
			continue;
		int pooled = i >= nk - npool;
		line(json, &first, kids[i], pooled ? "pool" : "child", &m);
		if (pooled)
			continue;   /* ready in the pool: not in the children's sum */
		sum.rss += m.rss;
		sum.uss += m.uss;
		sum.shared += m.shared;
		counted++;
	}
	if (json) {
		printf("]%s", end);
		return;
	}
	if (counted && sum.rss > 0)
		printf("  children: %d, resident %ld kB, of which their own %ld kB; %ld kB (%ld%%) "
		       "shared\n", counted, sum.rss, sum.uss, sum.shared, sum.shared * 100 / sum.rss);
}
