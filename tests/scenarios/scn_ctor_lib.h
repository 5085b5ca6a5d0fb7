/* scn_ctor_lib.h — interface of libscn_ctor.so, whose constructor starts
 * threads before main (and possibly before libnuwa's own constructor). */
#ifndef NUWA_SCN_CTOR_LIB_H
#define NUWA_SCN_CTOR_LIB_H
#include <pthread.h>
#include <sys/types.h>

extern pthread_t scn_ctor_thread;      /* made by the constructor */
extern pid_t scn_ctor_tid;              /* its tid in the original process */
extern volatile int scn_ctor_errors;    /* failures seen by library threads */
extern volatile int scn_ctor_grandchildren; /* threads it made, all running */
void scn_ctor_stop(void);               /* lets every library thread end */
#define SCN_CTOR_RESULT 0x5ca1ab1eUL     /* what the constructor thread returns */
#endif
