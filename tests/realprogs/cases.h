/* The cases of the real-program suite: one file each (case_*.c). */
#ifndef NUWA_RP_CASES_H
#define NUWA_RP_CASES_H

#include "rp.h"

struct rp_case {
	const char *name;
	const char *shows;          /* the PASS line: what the case demonstrated */
	int (*run)(struct rp *r);   /* 0, or -1 with r->why set */
};

extern const struct rp_case case_memcached, case_python, case_ruby, case_haproxy,
	case_unbound, case_nginx, case_redis, case_node, case_caddy,
	case_perl, case_java, case_unbound_user;

#endif
