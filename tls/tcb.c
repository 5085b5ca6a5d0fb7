/* The tid stored in glibc's struct pthread.
 *
 * glibc keeps each thread's kernel tid in its TCB (struct pthread, field
 * "tid"): pthread_kill, pthread_join (futex on it, cleared by the kernel via
 * CLONE_CHILD_CLEARTID), and the owner checks of error-checking, recursive
 * and robust mutexes read it.  A resumed thread gets a new tid, so the field
 * must be rewritten.  There is no API for its offset: find it once by
 * scanning a running thread's TCB for its own gettid(), and accept only an
 * offset where a second thread's TCB holds that thread's tid too. */
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys.h"
#include "tls.h"

#define TCB_SCAN_BYTES 4096

static int tid_off = -1;
void *nuwa_main_tcb;           /* pthread_self() of the main thread (init.c) */

void tls_init(void)
{
	tls_owner_resolve();
	tls_rtld_init();
	if (tid_off >= 0 || !nuwa_main_tcb)
		return;
	const char *me = (const char *)pthread_self();
	const char *main_tcb = nuwa_main_tcb;
	pid_t my_tid = (pid_t)sys_gettid();
	pid_t main_tid = (pid_t)sys_getpid();
	for (int off = 0; off < TCB_SCAN_BYTES; off += (int)sizeof(pid_t)) {
		if (*(const pid_t *)(me + off) == my_tid &&
		    *(const pid_t *)(main_tcb + off) == main_tid) {
			tid_off = off;
			nuwa_debug("struct pthread tid field at offset %d", off);
			return;
		}
	}
	nuwa_err("cannot find the tid field of struct pthread; libnuwa cannot resume threads");
}

int tls_tid_offset(void)
{
	return tid_off;
}

pid_t *tls_tid_ptr(void *tcb)
{
	return tid_off < 0 ? NULL : (pid_t *)((char *)tcb + tid_off);
}

void tls_set_tid(void *tcb, pid_t tid)
{
	pid_t *p = tls_tid_ptr(tcb);
	if (p)
		*p = tid;
}
