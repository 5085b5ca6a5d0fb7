/* Resolving and calling --call specs with libffi (syntax in ffcall.h).
 *
 * The plan is prepared in the template, on the control thread, before any
 * fork: an unknown symbol or a bad spec is reported to the requester and no
 * child is made.  The plan lives in static memory, so every child forked
 * afterwards has its own copy (fork copies the address space) and runs it
 * there after its threads resume; nothing is allocated on either side
 * (ffi_prep_cif and ffi_call work on caller memory and the stack).  Names
 * are resolved without the loader's lock (ffsym.c): the template resolves
 * them while the program is frozen. */
#include <elf.h>
#include <errno.h>
#include <ffi.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "ffcall.h"
#include "base.h"

#define PLAN_MAX 16
#define ARENA_SIZE 8192

static struct {
	int n;
	struct ffcall_spec spec[PLAN_MAX];
	void *fn[PLAN_MAX];
	ffi_cif cif[PLAN_MAX];
	ffi_type *types[PLAN_MAX][FFCALL_MAX_ARGS];
	void *values[PLAN_MAX][FFCALL_MAX_ARGS];
	char arena[ARENA_SIZE];
	size_t used;
} plan;

static ffi_type *ffi_type_of(int t)
{
	switch (t) {
	case FFA_INT: return &ffi_type_sint;
	case FFA_LONG: return &ffi_type_slong;
	case FFA_DOUBLE: return &ffi_type_double;
	default: return &ffi_type_pointer;
	}
}

static void *value_of(struct ffcall_arg *a)
{
	switch (a->type) {
	case FFA_INT: return &a->v.i;
	case FFA_LONG: return &a->v.l;
	case FFA_DOUBLE: return &a->v.d;
	case FFA_STR: return &a->v.s;
	default: return &a->v.p;
	}
}

int ffcall_plan_prepare(const char *const *specs, int n, char *err, size_t errlen)
{
	plan.n = 0;
	plan.used = 0;
	if (n > PLAN_MAX) {
		snprintf(err, errlen, "too many --call options (%d; at most %d)", n, PLAN_MAX);
		return -E2BIG;
	}
	for (int i = 0; i < n; i++) {
		struct ffcall_spec *s = &plan.spec[i];
		int r = ffcall_parse(specs[i], s, plan.arena, &plan.used, sizeof plan.arena,
		                     err, errlen);
		if (r < 0)
			return r;
		/* The dynamic symbols of every loaded object, in load order, as
		 * dlsym(RTLD_DEFAULT) sees them, but without the loader's lock
		 * (ffsym.c); the executable needs -rdynamic for its own functions
		 * to be there.  Data would crash the child far from the cause. */
		void *fn = NULL;
		int is_fn = 0;
		r = ffsym_lookup(s->name, &fn, &is_fn);
		if (r < 0) {
			snprintf(err, errlen, "--call '%s': unknown symbol '%s' (not in the "
			         "program's dynamic symbol table; link the program with -rdynamic "
			         "to export its own functions%s)", specs[i], s->name,
			         r == -EAGAIN ? "; an object that a frozen thread was loading or "
			         "unloading could not be searched" : "");
			return -ENOENT;
		}
		if (!is_fn) {
			snprintf(err, errlen, "--call '%s': '%s' is not a function", specs[i],
			         s->name);
			return -EINVAL;
		}
		for (int a = 0; a < s->nargs; a++) {
			plan.types[i][a] = ffi_type_of(s->args[a].type);
			plan.values[i][a] = value_of(&s->args[a]);
		}
		/* The return value is ignored; a 64-bit integer return covers void,
		 * int, long and pointer results (a double comes back in xmm0 and is
		 * simply not read). */
		if (ffi_prep_cif(&plan.cif[i], FFI_DEFAULT_ABI, (unsigned)s->nargs,
		                 &ffi_type_sint64, plan.types[i]) != FFI_OK) {
			snprintf(err, errlen, "--call '%s': libffi cannot prepare this signature",
			         specs[i]);
			return -EINVAL;
		}
		plan.fn[i] = fn;
	}
	plan.n = n;
	return 0;
}

int ffcall_plan_count(void)
{
	return plan.n;
}

const void *ffcall_plan_image(size_t *len)
{
	*len = sizeof plan;
	return &plan;
}

void ffcall_plan_run(void *unused)
{
	for (int i = 0; i < plan.n; i++) {
		ffi_arg ret = 0;
		nuwa_debug("--call %s(%d argument%s)", plan.spec[i].name, plan.spec[i].nargs,
		           plan.spec[i].nargs == 1 ? "" : "s");
		ffi_call(&plan.cif[i], FFI_FN(plan.fn[i]), &ret, plan.values[i]);
		nuwa_debug("--call %s returned %ld", plan.spec[i].name, (long)ret);
	}
}
