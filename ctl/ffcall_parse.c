/* Parser of --call specs (grammar in ffcall.h).  No allocation, no libffi:
 * the CLI links it to reject a typo before contacting the process, and the
 * template parses again (it trusts nothing the socket says). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffcall.h"

static const char *const type_names[] = { "int", "long", "double", "str", "ptr" };

const char *ffcall_type_name(int type)
{
	return type >= 0 && type <= FFA_PTR ? type_names[type] : "?";
}

struct parser {
	const char *text, *p;
	char *arena;
	size_t *used, cap;
	char *err;
	size_t errlen;
};

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parser *ps, const char *fmt, ...)
{
	char what[160], line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(line, sizeof line, "bad --call '%s': %s (at column %d)", ps->text, what,
	         (int)(ps->p - ps->text) + 1);
	/* One line whatever the text holds (a newline from a client, say):
	 * control characters are written as \xNN. */
	size_t o = 0;
	for (const unsigned char *c = (const unsigned char *)line; *c && o + 5 <= ps->errlen; c++)
		if (*c < 0x20 || *c == 0x7f)
			o += (size_t)snprintf(ps->err + o, ps->errlen - o, "\\x%02x", *c);
		else
			ps->err[o++] = (char)*c;
	if (ps->errlen)
		ps->err[o < ps->errlen ? o : ps->errlen - 1] = 0;
	return -EINVAL;
}

static void skip_ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

static int arena_put(struct parser *ps, char c)
{
	if (*ps->used >= ps->cap)
		return fail(ps, "strings too long (%zu bytes in all at most)", ps->cap);
	ps->arena[(*ps->used)++] = c;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static int parse_str(struct parser *ps, const char **out)
{
	const char *start = ps->arena + *ps->used;
	if (*ps->p == '"') {
		ps->p++;
		for (;;) {
			char c = *ps->p;
			if (!c)
				return fail(ps, "unterminated string");
			ps->p++;
			if (c == '"')
				break;
			if (c == '\\') {
				char e = *ps->p++;
				switch (e) {
				case '"': case '\\': c = e; break;
				case 'n': c = '\n'; break;
				case 't': c = '\t'; break;
				case 'x': {
					int h = hexval(ps->p[0]), l = h < 0 ? -1 : hexval(ps->p[1]);
					if (l < 0 || (h == 0 && l == 0))
						return fail(ps, "\\x needs two hex digits, not 00");
					c = (char)(h * 16 + l);
					ps->p += 2;
					break;
				}
				default:
					ps->p--;
					return fail(ps, "unknown escape \\%c (use \\\" \\\\ \\n \\t \\xHH)",
					            e ? e : ' ');
				}
			}
			if (arena_put(ps, c))
				return -EINVAL;
		}
	} else {
		const char *b = ps->p, *e;
		while (*ps->p && !strchr(",()\"", *ps->p))
			ps->p++;
		if (*ps->p == '"' || *ps->p == '(')
			return fail(ps, "'%c' in an unquoted string: quote it (str:\"...\")", *ps->p);
		for (e = ps->p; e > b && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		for (; b < e; b++)
			if (arena_put(ps, *b))
				return -EINVAL;
	}
	if (arena_put(ps, 0))
		return -EINVAL;
	*out = start;
	return 0;
}

/* The token up to the next ',' or ')' with surrounding blanks removed. */
static int scalar_token(struct parser *ps, char *tok, size_t len)
{
	const char *b = ps->p;
	while (*ps->p && *ps->p != ',' && *ps->p != ')')
		ps->p++;
	const char *e = ps->p;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e == b)
		return fail(ps, "missing value");
	if ((size_t)(e - b) >= len)
		return fail(ps, "value too long");
	memcpy(tok, b, e - b);
	tok[e - b] = 0;
	return 0;
}

static int parse_arg(struct parser *ps, struct ffcall_arg *a)
{
	size_t n = 0;
	while (isalpha((unsigned char)ps->p[n]))
		n++;
	int type = -1;
	for (int t = 0; t <= FFA_PTR; t++)
		if (strlen(type_names[t]) == n && !strncmp(ps->p, type_names[t], n))
			type = t;
	const char *colon = ps->p + n;
	while (*colon == ' ' || *colon == '\t')
		colon++;
	if (type < 0 || *colon != ':')
		return fail(ps, "expected TYPE:VALUE with TYPE one of int, long, double, str, ptr");
	ps->p = colon + 1;
	skip_ws(ps);
	a->type = type;
	if (type == FFA_STR)
		return parse_str(ps, &a->v.s);

	char tok[128], *end;
	const char *at = ps->p;
	if (scalar_token(ps, tok, sizeof tok))
		return -EINVAL;
	errno = 0;
	switch (type) {
	case FFA_INT:
	case FFA_LONG: {
		long v = strtol(tok, &end, 0);
		if (*end || errno == ERANGE || (type == FFA_INT && (v < INT_MIN || v > INT_MAX))) {
			ps->p = at;
			return fail(ps, "'%s' is not a valid %s", tok, type_names[type]);
		}
		if (type == FFA_INT)
			a->v.i = (int)v;
		else
			a->v.l = v;
		return 0;
	}
	case FFA_DOUBLE:
		a->v.d = strtod(tok, &end);
		if (*end || (errno == ERANGE && isinf(a->v.d))) {
			ps->p = at;
			return fail(ps, "'%s' is not a valid double", tok);
		}
		return 0;
	default:
		if (strcmp(tok, "null") && strcmp(tok, "NULL") && strcmp(tok, "0")) {
			ps->p = at;
			return fail(ps, "ptr:%s: only ptr:null is supported", tok);
		}
		a->v.p = NULL;
		return 0;
	}
}

int ffcall_parse(const char *text, struct ffcall_spec *out, char *arena, size_t *used,
                 size_t cap, char *err, size_t errlen)
{
	struct parser ps = { text, text, arena, used, cap, err, errlen };
	size_t used0 = *used;
	memset(out, 0, sizeof *out);

	skip_ws(&ps);
	size_t n = 0;
	if (isalpha((unsigned char)*ps.p) || *ps.p == '_')
		while (isalnum((unsigned char)ps.p[n]) || ps.p[n] == '_')
			n++;
	if (n == 0)
		goto bad_name;
	if (n >= sizeof out->name)
		return *used = used0, fail(&ps, "function name too long");
	memcpy(out->name, ps.p, n);
	ps.p += n;
	skip_ws(&ps);
	if (*ps.p != '(')
		return *used = used0, fail(&ps, "expected '(' after the function name "
		                        "(write NAME() for no arguments)");
	ps.p++;
	skip_ws(&ps);
	if (*ps.p == ')') {
		ps.p++;
	} else {
		for (;;) {
			if (out->nargs == FFCALL_MAX_ARGS)
				return *used = used0, fail(&ps, "more than %d arguments", FFCALL_MAX_ARGS);
			skip_ws(&ps);
			if (parse_arg(&ps, &out->args[out->nargs]))
				return *used = used0, -EINVAL;
			out->nargs++;
			skip_ws(&ps);
			if (*ps.p == ',') {
				ps.p++;
				continue;
			}
			if (*ps.p == ')') {
				ps.p++;
				break;
			}
			return *used = used0, fail(&ps, *ps.p ? "expected ',' or ')'" : "missing ')'");
		}
	}
	skip_ws(&ps);
	if (*ps.p)
		return *used = used0, fail(&ps, "unexpected text after ')'");
	return 0;
bad_name:
	return *used = used0, fail(&ps, "expected a function name ([A-Za-z_][A-Za-z0-9_]*)");
}
