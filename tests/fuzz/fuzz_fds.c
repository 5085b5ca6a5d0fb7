/* fuzz_fds — NUWA_FDS="5=share,7=recreate,..." (fdremap/spec.c,
 * fdremap_parse_spec), with the policy table replaced by a recorder.
 *
 * Properties: it returns 0 or a negative errno; on an error nothing is
 * recorded (a bad spec is refused as a whole) and the reason is one
 * non-empty line that quotes the spec; on success every recorded entry is a
 * descriptor 0..INT_MAX with one of the four policies, and the entries are
 * those of the text: a re-parse of "FD=policy,..." rebuilt from them records
 * the same. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdr.h"
#include "fdremap.h"
#include "nuwa.h"

static int rec_fd[512], rec_pol[512], nrec;

int fdremap_set_policy(int fd, int policy)
{
	assert(nrec < 512);
	rec_fd[nrec] = fd;
	rec_pol[nrec++] = policy;
	return 0;
}
void fdr_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}
const char *fdr_errname(long negerr) { return "error"; }

static const char *pol_name(int p)
{
	switch (p) {
	case NUWA_FD_AUTO: return "auto";
	case NUWA_FD_SHARE: return "share";
	case NUWA_FD_RECREATE: return "recreate";
	case NUWA_FD_CLOSE: return "close";
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = 0;
	char err[512] = "";
	nrec = 0;
	int r = fdremap_parse_spec(s, err, sizeof err);
	assert(r == 0 || (r < 0 && r >= -4095));
	if (r < 0) {
		assert(nrec == 0 && err[0]);
	} else {
		static char again[512 * 24];
		size_t len = 0;
		again[0] = 0;
		int n = nrec, fds[512], pols[512];
		memcpy(fds, rec_fd, sizeof fds);
		memcpy(pols, rec_pol, sizeof pols);
		for (int i = 0; i < n; i++) {
			assert(fds[i] >= 0 && pol_name(pols[i]));
			len += (size_t)snprintf(again + len, sizeof again - len, "%s%d=%s", i ? "," : "", fds[i],
						pol_name(pols[i]));
		}
		nrec = 0;
		assert(fdremap_parse_spec(again, err, sizeof err) == 0 && nrec == n);
		for (int i = 0; i < n; i++)
			assert(rec_fd[i] == fds[i] && rec_pol[i] == pols[i]);
	}
	free(s);
	return 0;
}
