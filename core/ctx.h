/* A minimal setjmp/longjmp of our own.  glibc's siglongjmp mangles pointers
 * with the thread's pointer guard (fine, same TCB) but _FORTIFY_SOURCE builds
 * route it through __longjmp_chk, which aborts on a jump from a temporary
 * stack to a frame on another stack — exactly what resuming a thread does. */
#ifndef NUWA_CTX_H
#define NUWA_CTX_H
#include <stdint.h>

struct nuwa_ctx {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};

/* Returns 0 when saving, and the value given to ctx_jump when jumped to. */
intptr_t ctx_save(struct nuwa_ctx *c) __attribute__((returns_twice));
__attribute__((noreturn)) void ctx_jump(const struct nuwa_ctx *c, intptr_t val);
#endif
