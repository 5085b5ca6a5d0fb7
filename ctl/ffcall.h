/* ffcall.h — `nuwa spawn --call 'NAME(TYPE:VALUE, ...)'`: call a function of
 * the program in a spawned child, through libffi.
 *
 * Syntax (spaces allowed around names, commas and parentheses):
 *     call  := NAME '(' [arg {',' arg}] ')'
 *     NAME  := [A-Za-z_][A-Za-z0-9_]*   looked up as dlsym(RTLD_DEFAULT) would (ffsym.c)
 *     arg   := int:N | long:N           decimal, 0x hex or 0 octal, range-checked
 *            | double:X                 strtod syntax (1.5, -2e3, inf, nan)
 *            | str:TEXT | str:"TEXT"    bare TEXT: no , ( ) " and no outer spaces;
 *                                       quoted: \" \\ \n \t \xHH escapes
 *            | ptr:null                 a null pointer (no other pointer value)
 * The return value is ignored.  Functions returning a struct by value are not
 * supported.
 *
 * The parser (ffcall_parse.c) has no dependencies and is used by the CLI to
 * report syntax errors before connecting; resolving and calling (ffcall.c)
 * happen in the template, which resolves every name before it forks.
 */
#ifndef NUWA_FFCALL_H
#define NUWA_FFCALL_H

#include <stddef.h>

#define FFCALL_MAX_ARGS 12
#define FFCALL_NAME_MAX 128

enum ffcall_type { FFA_INT, FFA_LONG, FFA_DOUBLE, FFA_STR, FFA_PTR };

struct ffcall_arg {
	int type;
	union {
		int i;
		long l;
		double d;
		const char *s;   /* points into the caller's string arena */
		void *p;
	} v;
};

struct ffcall_spec {
	char name[FFCALL_NAME_MAX];
	int nargs;
	struct ffcall_arg args[FFCALL_MAX_ARGS];
};

/* Parse one spec.  Strings are copied into arena[*used .. cap) (which must
 * outlive the spec).  Returns 0, or -EINVAL with a one-line reason in err. */
int ffcall_parse(const char *text, struct ffcall_spec *out, char *arena, size_t *used,
                 size_t cap, char *err, size_t errlen);

const char *ffcall_type_name(int type);

/* ---- ffcall.c (libffi) ---------------------------------------------------- */

/* Parse, resolve (dlsym + "is it a function?") and prepare up to 16 specs
 * into the single static plan.  Returns 0 or -errno with err set; on error
 * the plan is empty.  Control thread only. */
int ffcall_plan_prepare(const char *const *specs, int n, char *err, size_t errlen);
int ffcall_plan_count(void);
/* ffsym.c: NAME among the dynamic symbols of the loaded objects, without
 * the loader's lock or malloc.  0 with *addr (an IFUNC resolved) and
 * *is_function (STT_FUNC or STT_GNU_IFUNC); -ENOENT; -EAGAIN when not
 * found but an object being loaded or unloaded could not be searched. */
int ffsym_lookup(const char *name, void **addr, int *is_function);
/* Run the prepared plan, in order; the argument is ignored (it has the
 * signature of tmpl_spawn()'s child_fn).  In a spawned child. */
void ffcall_plan_run(void *unused);
/* The plan's memory: every pointer in it points into itself, to libffi's
 * static types or to the program's functions, so a copy of these bytes at
 * the same address in a child forked earlier (a pooled one) is the plan. */
const void *ffcall_plan_image(size_t *len);

#endif
