/* freezepoints.h — shared between freezepoints.c (setup, main, the wake-ups
 * after EOF) and freezepoints_calls.c (one blocking call per thread). */
#ifndef NUWA_SCN_FREEZEPOINTS_H
#define NUWA_SCN_FREEZEPOINTS_H

#include "scn.h"

#include <semaphore.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

struct fp {
	const char *name;
	void (*fn)(struct fp *);
	pthread_t t;
	volatile int entered, done;
};

extern struct fp fps[];
extern const int nfp;

/* Set or held by main (freezepoints.c), waited for by the calls. */
extern pthread_mutex_t go_mx;
extern pthread_cond_t go_cv;
extern int go;                         /* set by main after EOF */
extern volatile int stop_sleepers;
extern pthread_mutex_t held_mx, held_tmx; /* held by main */
extern pthread_rwlock_t held_rw;          /* write-held by main */
extern sem_t sem_a, sem_b, sem_c;
extern int sp_recv[2], sp_recvfrom[2], sp_recvmsg[2];
extern int listen_fd;
extern char lockpath[64], flockpath[64];   /* fcntl and flock targets */
extern pid_t helper;
extern pthread_t join_target;

#define SIG_WI  (SIGRTMIN + 2)
#define SIG_TW  (SIGRTMIN + 3)
#define SIG_W   (SIGRTMIN + 4)

void on_usr1(int s);

/* freezepoints_sized.c: lengths unknown to the compiler (fortified: __*_chk) */
void fp_read_sized(struct fp *f);
void fp_recv_sized(struct fp *f);
void fp_recvfrom_sized(struct fp *f);
void fp_poll_sized(struct fp *f);
void fp_ppoll_sized(struct fp *f);
void fp_fgets_sized(struct fp *f);
void fp_fgets_unlocked_sized(struct fp *f);
void fp_fread_sized(struct fp *f);
void fp_fread_unlocked_sized(struct fp *f);
void fp_fgetws_sized(struct fp *f);
void fp_fgetwc(struct fp *f);
void fp_getline(struct fp *f);
void fp_getc_unlocked(struct fp *f);
void sized_pread_check(void);
void sized_overflow(void);
void *join_target_fn(void *a);

#endif
