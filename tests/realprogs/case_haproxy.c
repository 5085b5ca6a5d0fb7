#include "cases.h"
static int run(struct rp *r) { return rp_fail(r, "not written yet"); }
const struct rp_case case_haproxy = { "haproxy", "", run };
