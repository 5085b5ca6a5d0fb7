/* scn_tls_lib.h — __thread variables in a linked shared library
 * (libscn_tls.so) and in a dlopen'ed one (scn_tls_dl.so, dynamic TLS). */
#ifndef NUWA_SCN_TLS_LIB_H
#define NUWA_SCN_TLS_LIB_H
#include <stdint.h>
#define SCN_TLS_WORDS 8
extern __thread uint64_t scn_lib_tls[SCN_TLS_WORDS];
uint64_t *scn_lib_tls_addr(void);
/* scn_tls_dl.so exports: uint64_t *scn_dl_tls_addr(void); */
typedef uint64_t *(*scn_dl_tls_fn)(void);
#endif
