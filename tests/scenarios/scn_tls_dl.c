/* scn_tls_dl.c — scn_tls_dl.so: loaded with dlopen after start-up, so its
 * TLS block is dynamic (allocated per thread on first use through the DTV). */
#include "scn_tls_lib.h"
static __thread uint64_t dl_tls[SCN_TLS_WORDS] = { 11, 22, 33 };
uint64_t *scn_dl_tls_addr(void) { return dl_tls; }
