/* stdio reads not covered by io.c: the unlocked and the wide-character
 * ones (the plain counterparts of fortify.c's __fgets_unlocked_chk,
 * __fread_unlocked_chk, __fgetws_chk, __fgetws_unlocked_chk), and gets.
 * glibc reaches read(2) from them through hidden aliases: each publishes
 * idle around the call only; the read underneath restarts (SA_RESTART). */
#include <stdio.h>
#include <wchar.h>

#include "nuwa_int.h"

#undef fread_unlocked /* a macro in <bits/stdio.h> at -O2 */

#define STDIO_FP(call) ({ fp_enter(FP_STDIO_READ); __typeof__(call) r_ = (call); fp_leave(); r_; })

char *gets(char *s); /* gone from C11's <stdio.h>, still in glibc */

REAL_DECL(char *, fgets_unlocked, (char *, int, FILE *));
REAL_DECL(size_t, fread_unlocked, (void *, size_t, size_t, FILE *));
REAL_DECL(int, fgetc_unlocked, (FILE *));
REAL_DECL(int, getc_unlocked, (FILE *));
REAL_DECL(int, getchar_unlocked, (void));
REAL_DECL(char *, gets, (char *));
REAL_DECL(wchar_t *, fgetws, (wchar_t *, int, FILE *));
REAL_DECL(wchar_t *, fgetws_unlocked, (wchar_t *, int, FILE *));
REAL_DECL(wint_t, fgetwc, (FILE *));
REAL_DECL(wint_t, getwc, (FILE *));
REAL_DECL(wint_t, getwchar, (void));
REAL_DECL(wint_t, fgetwc_unlocked, (FILE *));
REAL_DECL(wint_t, getwc_unlocked, (FILE *));
REAL_DECL(wint_t, getwchar_unlocked, (void));

NUWA_EXPORT char *fgets_unlocked(char *s, int n, FILE *f) { return STDIO_FP(REAL(fgets_unlocked)(s, n, f)); }
NUWA_EXPORT size_t fread_unlocked(void *p, size_t sz, size_t n, FILE *f) { return STDIO_FP(REAL(fread_unlocked)(p, sz, n, f)); }
NUWA_EXPORT int fgetc_unlocked(FILE *f) { return STDIO_FP(REAL(fgetc_unlocked)(f)); }
NUWA_EXPORT int getc_unlocked(FILE *f) { return STDIO_FP(REAL(getc_unlocked)(f)); }
NUWA_EXPORT int getchar_unlocked(void) { return STDIO_FP(REAL(getchar_unlocked)()); }
NUWA_EXPORT char *gets(char *s) { return STDIO_FP(REAL(gets)(s)); }
NUWA_EXPORT wchar_t *fgetws(wchar_t *restrict s, int n, FILE *restrict f) { return STDIO_FP(REAL(fgetws)(s, n, f)); }
NUWA_EXPORT wchar_t *fgetws_unlocked(wchar_t *restrict s, int n, FILE *restrict f) { return STDIO_FP(REAL(fgetws_unlocked)(s, n, f)); }
NUWA_EXPORT wint_t fgetwc(FILE *f) { return STDIO_FP(REAL(fgetwc)(f)); }
NUWA_EXPORT wint_t getwc(FILE *f) { return STDIO_FP(REAL(getwc)(f)); }
NUWA_EXPORT wint_t getwchar(void) { return STDIO_FP(REAL(getwchar)()); }
NUWA_EXPORT wint_t fgetwc_unlocked(FILE *f) { return STDIO_FP(REAL(fgetwc_unlocked)(f)); }
NUWA_EXPORT wint_t getwc_unlocked(FILE *f) { return STDIO_FP(REAL(getwc_unlocked)(f)); }
NUWA_EXPORT wint_t getwchar_unlocked(void) { return STDIO_FP(REAL(getwchar_unlocked)()); }
