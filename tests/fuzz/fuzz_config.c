/* fuzz_config — every NUWA_* parser of core/config.c: signal names
 * (nuwa_parse_signal), the integers (parse_int), the choices (parse_choice)
 * and the whole of nuwa_config_load() on a fuzzed environment.  parse_int and
 * parse_choice are static: config.c is compiled into this target (included
 * below), with stand-ins for what it calls in the rest of libnuwa; the
 * library itself is not changed.
 *
 * Input: byte 0 chooses the parser, the rest is the text (or, for the whole
 * load, up to 8 lines "INDEX VALUE" naming NUWA_* variables).
 * Properties: a signal is -1 or a catchable signal that is not libnuwa's
 * (digits give their own number); an integer is accepted only if it is all
 * digits and in range, and then read exactly; a choice only if it is one of
 * the words; every refusal logs exactly one line; the load returns 0 or -1,
 * and -1 only with at least one error logged. */
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>

#include "../../core/config.c"

/* ---- stand-ins for the rest of libnuwa -------------------------------------- */
int nuwa_log_level = 1;
int nuwa_log_fd = 2;
int nuwa_park_sig = 63;   /* SIGRTMAX-1, as libnuwa takes it */
static int logged, logged_bad;
void nuwa_log(int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	logged++;
	/* one line: the value is quoted as given, so a newline may only come
	 * from the value itself; count lines outside it */
	logged_bad += n <= 0;
}
__attribute__((weak)) int nuwa_fd_high(int fd) { return fd; }
__attribute__((weak)) int nuwa_own_fd(int fd) { return fd; }
int fdremap_parse_spec(const char *spec, char *err, size_t errlen) { return 0; }
static int children_max = 4096;
void nuwa_children_set_max(int n) { children_max = n; }

static int digits_only(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static const char *const vars[] = { "NUWA_LOG", "NUWA_MODE", "NUWA_FREEZE_POLICY", "NUWA_CLONES",
	"NUWA_FREEZE_TIMEOUT_MS", "NUWA_FREEZE_ON_IDLE_MS", "NUWA_SIGNAL", "NUWA_FDS", "NUWA_TEST_MAX_CHILDREN" };
#define NVARS (sizeof vars / sizeof vars[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;
	logged = logged_bad = 0;
	switch (data[0] % 4) {
	case 0: {
		int sig = nuwa_parse_signal(s);
		assert(sig == -1 || (sig >= 1 && sig <= SIGRTMAX && sig != SIGKILL && sig != SIGSTOP &&
				     sig != nuwa_park_sig && (sig < 32 || sig >= SIGRTMIN)));
		if (sig > 0 && digits_only(s))
			assert(sig == atoi(s));
		break;
	}
	case 1: {
		int out = -7;
		int r = parse_int("NUWA_CLONES", s, 1, 1024, &out);
		if (r == 0) {
			assert(digits_only(s) && out >= 1 && out <= 1024 && strtol(s, NULL, 10) == out);
		} else {
			assert(r == -1 && out == -7 && logged == 1);
		}
		break;
	}
	case 2: {
		static const char *const modes[] = { "clone", "template", "snapshot", NULL };
		int out = -7;
		int r = parse_choice("NUWA_MODE", s, modes, &out);
		if (r == 0)
			assert(out >= 0 && out < 3 && !strcmp(s, modes[out]));
		else
			assert(r == -1 && out == -7 && logged == 1);
		break;
	}
	case 3: {
		for (size_t i = 0; i < NVARS; i++)
			unsetenv(vars[i]);
		char *save, *line;
		int n = 0;
		for (line = strtok_r(s, "\n", &save); line && n < 8; line = strtok_r(NULL, "\n", &save), n++)
			if (line[0])
				setenv(vars[(unsigned char)line[0] % NVARS], line + 1, 1);
		struct nuwa_config saved = nuwa_cfg;
		int r = nuwa_config_load();
		assert(r == 0 || r == -1);
		if (r == -1)
			assert(logged >= 1);
		assert(nuwa_cfg.clones >= 1 && nuwa_cfg.clones <= 1024);
		assert(nuwa_cfg.timeout_ms >= 1 && nuwa_cfg.timeout_ms <= 3600000);
		assert(nuwa_cfg.mode >= 0 && nuwa_cfg.mode <= 2 && nuwa_cfg.policy >= 0 && nuwa_cfg.policy <= 1);
		assert(children_max >= 1 && children_max <= 4096);
		nuwa_cfg = saved;
		for (size_t i = 0; i < NVARS; i++)
			unsetenv(vars[i]);
		break;
	}
	}
	assert(logged_bad == 0);
	free(s);
	return 0;
}
