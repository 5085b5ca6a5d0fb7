#include "bench_util.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int futex_wait_shared(volatile int *addr, int val, int64_t timeout_ns)
{
	struct timespec ts = { timeout_ns / 1000000000, timeout_ns % 1000000000 };
	return syscall(SYS_futex, addr, FUTEX_WAIT, val, timeout_ns >= 0 ? &ts : NULL, NULL, 0);
}

void futex_wake_shared(volatile int *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

int wait_change(volatile int *addr, int val, int64_t deadline_ns)
{
	while (__atomic_load_n(addr, __ATOMIC_ACQUIRE) == val) {
		int64_t left = deadline_ns - now_ns();
		if (left <= 0)
			return -1;
		futex_wait_shared(addr, val, left);
	}
	return 0;
}

void *shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap shared: %s", strerror(errno));
	return p;
}

int read_smaps_rollup(pid_t pid, struct mem_usage *m)
{
	char path[64], line[256];
	long v, priv = 0;
	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	memset(m, 0, sizeof *m);
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "Rss: %ld", &v) == 1)
			m->rss = v;
		else if (sscanf(line, "Pss: %ld", &v) == 1)
			m->pss = v;
		else if (sscanf(line, "Private_Clean: %ld", &v) == 1)
			priv += v;
		else if (sscanf(line, "Private_Dirty: %ld", &v) == 1)
			priv += v;
		else if (sscanf(line, "Anonymous: %ld", &v) == 1)
			m->anon = v;
	}
	fclose(f);
	m->uss = priv;
	return 0;
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- JSON ---------------------------------------------------------------- */

static void jw_sep(struct jw *w, const char *key)
{
	if (w->need_comma[w->depth])
		fputc(',', w->f);
	w->need_comma[w->depth] = 1;
	if (key)
		fprintf(w->f, "\"%s\":", key);
}

void jw_begin(struct jw *w, FILE *f)
{
	memset(w, 0, sizeof *w);
	w->f = f;
	fputc('{', f);
	w->depth = 1;
}

void jw_end(struct jw *w)
{
	fputs("}\n", w->f);
	fflush(w->f);
}

void jw_key(struct jw *w, const char *key) { jw_sep(w, key); }

void jw_obj_open(struct jw *w, const char *key)
{
	jw_sep(w, key);
	fputc('{', w->f);
	w->need_comma[++w->depth] = 0;
}

void jw_obj_close(struct jw *w)
{
	w->depth--;
	fputc('}', w->f);
}

void jw_arr_open(struct jw *w, const char *key)
{
	jw_sep(w, key);
	fputc('[', w->f);
	w->need_comma[++w->depth] = 0;
}

void jw_arr_close(struct jw *w)
{
	w->depth--;
	fputc(']', w->f);
}

void jw_int(struct jw *w, const char *key, long long v)
{
	jw_sep(w, key);
	fprintf(w->f, "%lld", v);
}

void jw_num(struct jw *w, const char *key, double v)
{
	jw_sep(w, key);
	fprintf(w->f, "%.6g", v);
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	jw_sep(w, key);
	fputc('"', w->f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(w->f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(w->f, "\\u%04x", *s);
		else
			fputc(*s, w->f);
	}
	fputc('"', w->f);
}

void jw_bool(struct jw *w, const char *key, int v)
{
	jw_sep(w, key);
	fputs(v ? "true" : "false", w->f);
}

void jw_nums(struct jw *w, const char *key, const double *v, int n)
{
	jw_arr_open(w, key);
	for (int i = 0; i < n; i++)
		jw_num(w, NULL, v[i]);
	jw_arr_close(w);
}
