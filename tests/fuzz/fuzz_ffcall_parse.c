/* fuzz_ffcall_parse — the `nuwa spawn --call` parser (ffcall_parse.c), run by
 * the CLI on the user's text and by the template on what a client sends.
 *
 * Properties: it returns 0 or -EINVAL; on -EINVAL the reason is one
 * non-empty line; on 0 the name is a C identifier, there are at most
 * FFCALL_MAX_ARGS arguments of known types, every string lies in the arena
 * (NUL-terminated, within what `used` says), and parsing is deterministic. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ffcall.h"

static void parse(const char *text, struct ffcall_spec *sp, char *arena, size_t cap, size_t *used, int *rc,
		  char *err)
{
	*used = 0;
	err[0] = 0;
	*rc = ffcall_parse(text, sp, arena, used, cap, err, 200);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	static struct ffcall_spec sp, sp2;
	size_t cap = 1 + (size % 512);   /* small arenas too: the bound is checked */
	char *arena = malloc(cap), *arena2 = malloc(cap);
	char err[200], err2[200];
	size_t used, used2;
	int rc, rc2;
	parse(text, &sp, arena, cap, &used, &rc, err);
	assert(rc == 0 || rc == -EINVAL);
	assert(used <= cap);
	if (rc) {
		assert(err[0]);
		assert(!strchr(err, '\n'));
	} else {
		assert(isalpha((unsigned char)sp.name[0]) || sp.name[0] == '_');
		for (const char *p = sp.name; *p; p++)
			assert(isalnum((unsigned char)*p) || *p == '_');
		assert(sp.nargs >= 0 && sp.nargs <= FFCALL_MAX_ARGS);
		for (int i = 0; i < sp.nargs; i++) {
			assert(sp.args[i].type >= FFA_INT && sp.args[i].type <= FFA_PTR);
			assert(ffcall_type_name(sp.args[i].type) != NULL);
			if (sp.args[i].type == FFA_STR) {
				const char *s = sp.args[i].v.s;
				assert(s >= arena && s < arena + used);
				assert(memchr(s, 0, (size_t)(arena + used - s)));
			}
			if (sp.args[i].type == FFA_PTR)
				assert(sp.args[i].v.p == NULL);
		}
	}
	parse(text, &sp2, arena2, cap, &used2, &rc2, err2);
	assert(rc2 == rc && used2 == used && (rc || (!strcmp(sp.name, sp2.name) && sp.nargs == sp2.nargs)));
	free(arena);
	free(arena2);
	free(text);
	return 0;
}
