/* The dynamic loader's own locks, held by a thread frozen inside dlopen(),
 * dlclose(), dl_iterate_phdr() or a TLS allocation.
 *
 * ld.so's locks are recursive pthread mutexes inside _rtld_global
 * (GL(dl_load_lock), GL(dl_load_write_lock), GL(dl_load_tls_lock): glibc
 * 2.36 sysdeps/nptl/libc-lockP.h, __rtld_lock_recursive_t is a
 * pthread_mutex_t made with PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP), taken
 * through glibc's internal __pthread_mutex_lock, which no wrapper sees.  A
 * recursive mutex records its owner's tid (__owner) and its unlock fails
 * with EPERM for any other tid: in a child, the resumed thread that held
 * one could never release it, and every later dlopen(), dlsym() or lazy
 * binding in the child would wait for it forever.
 *
 * So at start-up we learn where _rtld_global lies (its symbol's address and
 * st_size, from dladdr1: the loader's lock is free then), and as each task
 * of a child takes its new tid, every recursive mutex in there that is held
 * by its old tid is given the new one — as owner.c does for the program's
 * own mutexes.  A held recursive mutex is unmistakable: __lock != 0,
 * __count >= 1, __kind recursive, __owner the old tid. */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>

#include "tls.h"

static char *rtld_global;
static size_t rtld_global_size;

void tls_rtld_init(void)
{
	if (rtld_global)
		return;
	void *p = dlsym(RTLD_DEFAULT, "_rtld_global");
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!p || !dladdr1(p, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || !sym->st_size)
		return;   /* another libc: nothing known to repair */
	rtld_global_size = sym->st_size;
	rtld_global = p;
}

/* tid holds one of the loader's locks: it is inside dlopen(), dlclose(),
 * dl_iterate_phdr() or a TLS allocation.  Read racily, from the control
 * thread (the words are aligned ints: a stale answer only costs a wait). */
int tls_rtld_held_by(pid_t tid)
{
	const size_t step = _Alignof(pthread_mutex_t);
	if (!rtld_global || tid <= 0)
		return 0;
	for (size_t off = 0; off + sizeof(pthread_mutex_t) <= rtld_global_size; off += step) {
		const volatile struct __pthread_mutex_s *m =
			(const volatile struct __pthread_mutex_s *)(void *)(rtld_global + off);
		if (m->__owner == tid && m->__lock != 0 && m->__count >= 1 &&
		    (m->__kind & 0x7f) == PTHREAD_MUTEX_RECURSIVE_NP)
			return 1;
	}
	return 0;
}

/* The tid holding one of the loader's locks, or 0 (racy read too). */
pid_t tls_rtld_holder(void)
{
	const size_t step = _Alignof(pthread_mutex_t);
	if (!rtld_global)
		return 0;
	for (size_t off = 0; off + sizeof(pthread_mutex_t) <= rtld_global_size; off += step) {
		const volatile struct __pthread_mutex_s *m =
			(const volatile struct __pthread_mutex_s *)(void *)(rtld_global + off);
		if (m->__owner > 0 && m->__lock != 0 && m->__count >= 1 &&
		    (m->__kind & 0x7f) == PTHREAD_MUTEX_RECURSIVE_NP)
			return m->__owner;
	}
	return 0;
}

void tls_rtld_rebind(pid_t old_tid, pid_t new_tid)
{
	const size_t step = _Alignof(pthread_mutex_t);
	if (!rtld_global || old_tid == new_tid)
		return;
	for (size_t off = 0; off + sizeof(pthread_mutex_t) <= rtld_global_size; off += step) {
		struct __pthread_mutex_s *m = (struct __pthread_mutex_s *)(void *)(rtld_global + off);
		if (m->__owner == old_tid && m->__lock != 0 && m->__count >= 1 &&
		    (m->__kind & 0x7f) == PTHREAD_MUTEX_RECURSIVE_NP)
			m->__owner = new_tid;
	}
}
