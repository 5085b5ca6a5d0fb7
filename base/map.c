/* Memory that libnuwa's own tables grow into: anonymous mappings, never
 * malloc (application threads may be parked inside it). */
#include <sys/mman.h>

#include "base.h"
#include "sys.h"

/* p (old bytes, NULL for none) grown to size bytes: the new address (the
 * contents kept, the rest zero), or NULL with p left as it was. */
void *nuwa_map_grow(void *p, size_t old, size_t size)
{
	long m = p ? sys_mremap(p, old, size, MREMAP_MAYMOVE)
	           : sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	return m < 0 && m > -4096 ? NULL : (void *)m;
}
