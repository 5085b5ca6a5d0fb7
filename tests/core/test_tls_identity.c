/* Thread-local storage (64 pthread keys, __thread in the program, a linked
 * and a dlopen'ed library, key destructors) and thread identity
 * (pthread_self, names, affinity, policy, masks, sigaltstack, getpid ==
 * gettid in main); see tests/scenarios/tls.c and identity.c. */
#include "harness.h"

#include <criterion/criterion.h>

TestSuite(tls_identity, .fini = nh_cleanup_all, .timeout = 120);

Test(tls_identity, tls_twice)
{
	nh_run_clones("tls", NULL, 2, 1, 0);
}

Test(tls_identity, tls_random20)
{
	nh_run_clones("tls", NULL, 20, 1, 60);
}

Test(tls_identity, identity_twice)
{
	nh_run_clones("identity", NULL, 2, 1, 0);
}

Test(tls_identity, identity_random20)
{
	nh_run_clones("identity", NULL, 20, 1, 60);
}
