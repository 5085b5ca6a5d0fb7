/* The common shape of a freeze point without a timeout: publish "idle at
 * fp", call, and call again when the only reason to return was EINTR from
 * one of libnuwa's own signals. */
#ifndef NUWA_RETRY_H
#define NUWA_RETRY_H
#include <errno.h>
#include "nuwa_int.h"

#define FP_RETRY(fp, call) ({                                              \
	unsigned fp_s_ = fp_enter(fp);                                     \
	__typeof__(call) fp_r_;                                            \
	while ((fp_r_ = (call)) < 0 && errno == EINTR && fp_ours(fp_s_))   \
		fp_s_ = nuwa_self.sigcount;                                \
	fp_leave();                                                        \
	fp_r_; })

#endif
