/* What ASan cannot know about libnuwa's own thread and the children
 * libnuwa makes (see asan.h).  Empty in a plain build. */
#include "asan.h"

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/lsan_interface.h>

#include "base.h"

int nuwa_asan_forked;

void nuwa_asan_own_thread(void)
{
	pthread_attr_t a;
	void *lo;
	size_t n;
	char *sp;
	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return;
	if (pthread_attr_getstack(&a, &lo, &n) == 0 && (char *)lo < sp && sp <= (char *)lo + n)
		__asan_unpoison_memory_region(lo, (size_t)(sp - (char *)lo));
	pthread_attr_destroy(&a);
}

/* LeakSanitizer calls this hook before its leak check at exit (libasan
 * references it weak and undefined: ld.so binds it to this definition).
 * In a child made by a raw clone (fork.c) ASan's thread records still hold
 * the parent's tids, and no call can update them: LSan suspends the
 * child's tasks by their real tids, finds none of its threads among them
 * ("Running thread N was not suspended"), scans no thread's stack or
 * registers, and reports as leaked everything only they point to.  The
 * check stays on in every process libnuwa did not fork: the original
 * program, after any number of freezes, spawns and thaws, runs every line
 * of libnuwa a child runs but the child's own start. */
NUWA_EXPORT int __lsan_is_turned_off(void)
{
	return nuwa_asan_forked;
}
#endif
