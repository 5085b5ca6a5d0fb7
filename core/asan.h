/* What AddressSanitizer cannot know about resuming a thread in place
 * (`make test-sanitize`; gcc defines __SANITIZE_ADDRESS__ under
 * -fsanitize=address).  In a plain build every macro here is empty.
 *
 * ASan keeps, per thread, a record found through the thread's TLS (its
 * stack bounds, its tid) and a shadow byte per 8 bytes of memory, on the
 * stack too: a function's prologue poisons the redzones around its
 * address-taken locals, its epilogue clears them.  A task resumed in a
 * child (fork.c) runs first on a temporary clone stack with the thread's
 * own TLS, then ctx_jump()s into a frame of that thread's stack, leaving
 * the frames the parent had below that frame (the futex wait) without
 * their epilogues: their poison stays in the child's copy of the shadow. */
#ifndef NUWA_ASAN_H
#define NUWA_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>

/* For the few functions that run on the temporary clone stack.  The
 * compiler puts __asan_handle_no_return() before a noreturn call
 * (ctx_jump) to clear the frames a longjmp abandons, from the stack
 * pointer to the top of the stack ASan's record names; on the clone stack
 * that is another mapping, so ASan refuses and warns ("False positive
 * error reports may follow").  Nothing there has locals to instrument. */
#define NUWA_NO_ASAN __attribute__((no_sanitize_address))

/* How deep the parent's frames under a parked frame went: park_wait()
 * and the futex wait (core/park.c), fork_child()'s wait (fork.c); tens of
 * bytes each, with room to spare.  A page: glibc puts a guard page of at
 * least that size below every thread stack, so this stays in the stack or
 * its guard, whose shadow exists (ASan reserves the shadow of all memory). */
#define NUWA_ASAN_ABANDONED 4096

/* Right after the jump, on the thread's own stack: clear the shadow of
 * what lies below the stack pointer (on x86-64 nothing live is there but
 * the 128-byte red zone of a leaf function, and this caller is not one). */
static inline void nuwa_asan_resumed_frame(void)
{
	char *sp;
	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
	__asan_unpoison_memory_region(sp - NUWA_ASAN_ABANDONED, NUWA_ASAN_ABANDONED);
}

/* First thing in a thread libnuwa starts itself (the control thread):
 * REAL(pthread_create) is glibc's, past ASan's interceptor (which comes
 * before libnuwa in the lookup order), so ASan never saw the thread start
 * and never cleared the shadow of its stack, as it does for the threads it
 * sees.  glibc may hand out a stack from its cache of exited threads'
 * stacks (after a fork(), every other thread's), with their poison: clear
 * the part below the caller's frame, still unused (asan.c). */
void nuwa_asan_own_thread(void);

/* This process is a child made by fork.c, or a descendant of one (asan.c). */
extern int nuwa_asan_forked;
static inline void nuwa_asan_child(void) { nuwa_asan_forked = 1; }
#else
#define NUWA_NO_ASAN
static inline void nuwa_asan_resumed_frame(void) {}
static inline void nuwa_asan_child(void) {}
static inline void nuwa_asan_own_thread(void) {}
#endif

#endif
