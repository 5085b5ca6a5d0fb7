/* NUWA_FDS="5=share,7=recreate,9=close": per-descriptor policy overrides,
 * parsed once at start-up.  A bad spec is refused as a whole (nothing is
 * applied) with a one-line reason; core then leaves libnuwa inert. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include "fdr.h"
#include "fdremap.h"
#include "nuwa.h"

static int policy_word(const char *w, size_t n)
{
	static const struct { const char *name; int pol; } words[] = {
		{ "auto", NUWA_FD_AUTO }, { "share", NUWA_FD_SHARE },
		{ "recreate", NUWA_FD_RECREATE }, { "close", NUWA_FD_CLOSE },
	};
	for (unsigned i = 0; i < sizeof words / sizeof *words; i++)
		if (strlen(words[i].name) == n && !strncasecmp(w, words[i].name, n))
			return words[i].pol;
	return -1;
}

#define MAX_SPEC 256

int fdremap_parse_spec(const char *spec, char *err, size_t errlen)
{
	int fds[MAX_SPEC], pols[MAX_SPEC], n = 0;
	if (!spec)
		return 0;
	const char *p = spec;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return 0;
	for (;;) {
		const char *item = p;
		while (*p == ' ' || *p == '\t')
			p++;
		long fd = 0;
		int digits = 0;
		while (*p >= '0' && *p <= '9' && fd <= 0x7fffffff) {
			fd = fd * 10 + (*p++ - '0');
			digits++;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		const char *why = NULL;
		if (!digits)
			why = "expected a descriptor number";
		else if (fd > 0x7fffffff)
			why = "descriptor number too large";
		else if (*p != '=')
			why = "expected '='";
		int pol = -1;
		if (!why) {
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
			const char *w = p;
			while (*p && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			pol = policy_word(w, (size_t)(p - w));
			if (pol < 0)
				why = "policy must be share, recreate, close or auto";
			while (*p == ' ' || *p == '\t')
				p++;
			if (!why && *p && *p != ',')
				why = "expected ',' between entries";
		}
		if (!why && n == MAX_SPEC)
			why = "too many entries";
		if (why) {
			size_t il = strcspn(item, ",");
			fdr_fmt(err, errlen, "NUWA_FDS=\"%s\": bad entry \"%.*s\" (%s); "
				"expected FD=share|recreate|close|auto[,...]", spec, (int)il, item, why);
			return -EINVAL;
		}
		for (int i = 0; i < n; i++)
			if (fds[i] == (int)fd && pols[i] != pol) {
				fdr_fmt(err, errlen, "NUWA_FDS=\"%s\": descriptor %ld given two policies", spec, fd);
				return -EINVAL;
			}
		fds[n] = (int)fd;
		pols[n++] = pol;
		if (!*p)
			break;
		p++; /* ',' */
	}
	for (int i = 0; i < n; i++) {
		int r = fdremap_set_policy(fds[i], pols[i]);
		if (r < 0) {
			fdr_fmt(err, errlen, "NUWA_FDS: cannot record policy for fd %d: %s", fds[i], fdr_errname(r));
			return r;
		}
	}
	return 0;
}
