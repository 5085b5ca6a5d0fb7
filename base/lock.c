/* Futexes, and a lock for libnuwa's own data.  FUTEX_*_PRIVATE: every
 * waiter is in this process (the futex words are never shared). */
#include <linux/futex.h>
#include "base.h"
#include "sys.h"

long nuwa_futex_wait(volatile int *addr, int val, const struct timespec *rel)
{
	return sys_futex(addr, FUTEX_WAIT_PRIVATE, val, rel);
}

long nuwa_futex_wake(volatile int *addr, int n)
{
	return sys_futex(addr, FUTEX_WAKE_PRIVATE, n, NULL);
}

/* Drepper's three-state futex mutex ("Futexes are tricky", mutex3):
 * 0 free, 1 locked, 2 locked with waiters. */
void nuwa_lock(nuwa_lock_t *l)
{
	int c = 0;
	if (__atomic_compare_exchange_n(&l->v, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (c != 2)
		c = __atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		nuwa_futex_wait(&l->v, 2, NULL);
		c = __atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE);
	}
}

void nuwa_unlock(nuwa_lock_t *l)
{
	if (__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2)
		nuwa_futex_wake(&l->v, 1);
}
