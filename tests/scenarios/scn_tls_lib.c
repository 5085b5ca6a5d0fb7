/* scn_tls_lib.c — libscn_tls.so: static TLS of a linked library. */
#include "scn_tls_lib.h"
__thread uint64_t scn_lib_tls[SCN_TLS_WORDS];
uint64_t *scn_lib_tls_addr(void) { return scn_lib_tls; }
