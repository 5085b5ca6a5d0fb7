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

/* The same with a relative timespec timeout t (may be NULL): the call is
 * written with FP_LEFT as its timeout, which holds the time left until the
 * deadline taken at entry — so a retry, in a child too, ends on time. */
#define FP_RETRY_TIMED(fp, t, call) ({                                     \
	struct timespec fp_dl_ = { 0, 0 }, fp_left_ = { 0, 0 };            \
	if (t)                                                             \
		fp_dl_ = ts_add(ts_now(CLOCK_MONOTONIC), *(t)), fp_left_ = *(t); \
	const struct timespec *FP_LEFT = (t) ? &fp_left_ : NULL;           \
	unsigned fp_s_ = fp_enter(fp);                                     \
	__typeof__(call) fp_r_;                                            \
	while ((fp_r_ = (call)) < 0 && errno == EINTR && fp_ours(fp_s_)) { \
		fp_s_ = nuwa_self.sigcount;                                \
		if (t)                                                     \
			fp_left_ = ts_sub(fp_dl_, ts_now(CLOCK_MONOTONIC)); \
	}                                                                  \
	fp_leave();                                                        \
	fp_r_; })

/* The same with a timeout in milliseconds (poll, epoll_wait: -1 forever,
 * 0 no wait): the variable ms is updated to what is left before a retry. */
#define FP_RETRY_MS(fp, ms, call) ({                                       \
	struct timespec fp_dl_ = { 0, 0 };                                 \
	if ((ms) > 0)                                                      \
		fp_dl_ = ts_add(ts_now(CLOCK_MONOTONIC),                   \
		                (struct timespec){ (ms) / 1000, (long)((ms) % 1000) * 1000000L }); \
	unsigned fp_s_ = fp_enter(fp);                                     \
	__typeof__(call) fp_r_;                                            \
	while ((fp_r_ = (call)) < 0 && errno == EINTR && fp_ours(fp_s_)) { \
		fp_s_ = nuwa_self.sigcount;                                \
		if ((ms) > 0)                                              \
			(ms) = ts_to_ms_remaining(fp_dl_);                 \
	}                                                                  \
	fp_leave();                                                        \
	fp_r_; })

/* interpose/poll.c: the mask a ppoll/pselect/epoll_pwait call installs,
 * with the park signal kept deliverable; in may be NULL (returns NULL). */
#include <signal.h>
const sigset_t *fp_wait_mask(const sigset_t *in, sigset_t *buf);

#endif
