/* Looking up a --call name without the dynamic loader's lock.
 *
 * dlsym() takes the loader's lock (GL(dl_load_lock)) and, for a name it
 * does not find, mallocs the error text; dladdr() takes the lock too.  The
 * template answers spawn requests while the program is frozen, possibly with
 * a thread parked inside dlopen() or malloc() holding those locks: dlsym()
 * would then never return.  So the dynamic symbol tables are read here
 * directly, the way ld.so itself reads them:
 *
 *   - the loaded objects: _r_debug.r_map, ld.so's list for debuggers, in
 *     load order (the executable, preloaded libraries, their dependencies,
 *     then dlopen()ed objects); each link_map gives l_addr (load bias) and
 *     l_ld (its PT_DYNAMIC);
 *   - each object's DT_SYMTAB, DT_STRTAB, DT_STRSZ, DT_VERSYM and DT_GNU_HASH
 *     (or DT_HASH); glibc adds l_addr to those entries in place when it loads
 *     an object (elf_get_dynamic_info), the vDSO's are left relative: a value
 *     below l_addr is relative;
 *   - the first definition that dlsym(RTLD_DEFAULT) would accept: defined,
 *     global or weak, not a hidden version (VERSYM bit 15).
 *
 * A parked thread may be half-way through dlopen() or dlclose(): a link_map
 * on the list whose object is already unmapped, or freed.  Every read of the
 * loader's data therefore goes through process_vm_readv() on this very
 * process, which fails with EFAULT instead of faulting.  If the kernel
 * refuses it (seccomp), memory is read directly, but only while
 * _r_debug.r_state says the list is consistent (RT_CONSISTENT: no dlopen or
 * dlclose in progress).
 *
 * Differences from dlsym(RTLD_DEFAULT), documented in docs/cli.md: objects
 * dlopen()ed with RTLD_LOCAL are searched too (the public link_map does not
 * say how an object was loaded). */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "ffcall.h"
#include "base.h"
#include "sys.h"

#define MAX_OBJECTS 4096    /* a garbage list cannot loop forever */
#define MAX_DYN 512
#define MAX_CHAIN 65536

static int direct_reads;   /* process_vm_readv refused: read in place */

static int peek(void *dst, const void *src, size_t n)
{
	if (!direct_reads) {
		struct iovec l = { dst, n }, r = { (void *)src, n };
		long k = SC(SYS_process_vm_readv, sys_getpid(), &l, 1, &r, 1, 0);
		if (k == (long)n)
			return 0;
		if (k != -ENOSYS && k != -EPERM)
			return -EFAULT;
		direct_reads = 1;
	}
	if (!src || _r_debug.r_state != RT_CONSISTENT)
		return -EAGAIN;
	memcpy(dst, src, n);
	return 0;
}

struct object {
	uintptr_t base;
	const ElfW(Sym) *symtab;
	const char *strtab;
	size_t strsz;
	const ElfW(Half) *versym;
	const uint32_t *gnu_hash;
	const uint32_t *sysv_hash;
};

static uintptr_t adjust(uintptr_t p, uintptr_t base)
{
	return p && p < base ? p + base : p;
}

static int read_object(const struct link_map *lm, struct object *o)
{
	memset(o, 0, sizeof *o);
	o->base = lm->l_addr;
	for (int i = 0; i < MAX_DYN; i++) {
		ElfW(Dyn) d;
		if (peek(&d, lm->l_ld + i, sizeof d) < 0)
			return -EFAULT;
		uintptr_t p = adjust(d.d_un.d_ptr, o->base);
		switch (d.d_tag) {
		case DT_NULL:
			return o->symtab && o->strtab && (o->gnu_hash || o->sysv_hash) ? 0 : -ENOENT;
		case DT_SYMTAB: o->symtab = (const void *)p; break;
		case DT_STRTAB: o->strtab = (const void *)p; break;
		case DT_STRSZ: o->strsz = d.d_un.d_val; break;
		case DT_VERSYM: o->versym = (const void *)p; break;
		case DT_GNU_HASH: o->gnu_hash = (const void *)p; break;
		case DT_HASH: o->sysv_hash = (const void *)p; break;
		}
	}
	return -ENOENT;
}

/* Is symbol i named `name` and a definition dlsym would take?  0: yes. */
static int match(const struct object *o, uint32_t i, const char *name, size_t len,
                 ElfW(Sym) *out)
{
	ElfW(Sym) s;
	char buf[FFCALL_NAME_MAX + 1];
	if (peek(&s, o->symtab + i, sizeof s) < 0)
		return -EFAULT;
	if (o->strsz && (s.st_name >= o->strsz || o->strsz - s.st_name < len + 1))
		return -ENOENT;
	if (peek(buf, o->strtab + s.st_name, len + 1) < 0)
		return -EFAULT;
	if (memcmp(buf, name, len) || buf[len])
		return -ENOENT;
	int bind = ELF64_ST_BIND(s.st_info), type = ELF64_ST_TYPE(s.st_info);
	if (s.st_shndx == SHN_UNDEF || (s.st_value == 0 && type != STT_TLS) ||
	    (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE))
		return -ENOENT;
	if (o->versym) {
		ElfW(Half) v;
		if (peek(&v, o->versym + i, sizeof v) < 0)
			return -EFAULT;
		if ((v & 0x7fff) >= 2 && (v & 0x8000))
			return -ENOENT;   /* a hidden (non-default) version */
	}
	*out = s;
	return 0;
}

static uint32_t gnu_hash_of(const char *s)
{
	uint32_t h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

static uint32_t sysv_hash_of(const char *s)
{
	uint32_t h = 0, g;
	for (; *s; s++) {
		h = (h << 4) + (unsigned char)*s;
		if ((g = h & 0xf0000000))
			h ^= g >> 24;
		h &= ~g;
	}
	return h;
}

/* The ELF GNU hash table: nbuckets, symoffset, bloom size, bloom shift,
 * bloom words (64-bit), buckets, then one chain word per symbol from
 * symoffset, the low bit marking a chain's end. */
static int lookup_gnu(const struct object *o, const char *name, size_t len, ElfW(Sym) *out)
{
	uint32_t hdr[4];
	if (peek(hdr, o->gnu_hash, sizeof hdr) < 0)
		return -EFAULT;
	uint32_t nb = hdr[0], off = hdr[1], nbloom = hdr[2], shift = hdr[3];
	if (!nb || !nbloom)
		return -ENOENT;
	uint32_t h = gnu_hash_of(name);
	const uint64_t *bloom = (const uint64_t *)(o->gnu_hash + 4);
	uint64_t word;
	if (peek(&word, bloom + (h / 64) % nbloom, sizeof word) < 0)
		return -EFAULT;
	uint64_t mask = (1ull << (h % 64)) | (1ull << ((h >> shift) % 64));
	if ((word & mask) != mask)
		return -ENOENT;
	const uint32_t *buckets = (const uint32_t *)(bloom + nbloom);
	const uint32_t *chain = buckets + nb;
	uint32_t i;
	if (peek(&i, buckets + h % nb, sizeof i) < 0)
		return -EFAULT;
	if (i < off)
		return -ENOENT;
	for (int n = 0; n < MAX_CHAIN; n++, i++) {
		uint32_t h2;
		if (peek(&h2, chain + (i - off), sizeof h2) < 0)
			return -EFAULT;
		if ((h | 1) == (h2 | 1)) {
			int r = match(o, i, name, len, out);
			if (r != -ENOENT)
				return r;
		}
		if (h2 & 1)
			break;
	}
	return -ENOENT;
}

/* The SysV hash table: nbucket, nchain, buckets, chains. */
static int lookup_sysv(const struct object *o, const char *name, size_t len, ElfW(Sym) *out)
{
	uint32_t hdr[2];
	if (peek(hdr, o->sysv_hash, sizeof hdr) < 0)
		return -EFAULT;
	if (!hdr[0])
		return -ENOENT;
	const uint32_t *buckets = o->sysv_hash + 2, *chain = buckets + hdr[0];
	uint32_t i;
	if (peek(&i, buckets + sysv_hash_of(name) % hdr[0], sizeof i) < 0)
		return -EFAULT;
	for (int n = 0; i != STN_UNDEF && i < hdr[1] && n < MAX_CHAIN; n++) {
		int r = match(o, i, name, len, out);
		if (r != -ENOENT)
			return r;
		if (peek(&i, chain + i, sizeof i) < 0)
			return -EFAULT;
	}
	return -ENOENT;
}

int ffsym_lookup(const char *name, void **addr, int *is_function)
{
	size_t len = strlen(name);
	if (len == 0 || len > FFCALL_NAME_MAX)
		return -ENOENT;
	int busy = 0;
	const struct link_map *next;
	if (peek(&next, &_r_debug.r_map, sizeof next) < 0)
		return -EAGAIN;
	for (int n = 0; next && n < MAX_OBJECTS; n++) {
		struct link_map lm;
		if (peek(&lm, next, sizeof lm) < 0) {
			busy = 1;   /* a link_map freed under a parked dlclose() */
			break;
		}
		next = lm.l_next;
		struct object o;
		ElfW(Sym) s;
		int r = lm.l_ld ? read_object(&lm, &o) : -ENOENT;
		if (r == 0)
			r = o.gnu_hash ? lookup_gnu(&o, name, len, &s) : lookup_sysv(&o, name, len, &s);
		if (r == -EFAULT || r == -EAGAIN) {
			busy = 1;   /* an object half loaded or half unloaded: skip it */
			continue;
		}
		if (r < 0)
			continue;
		int type = ELF64_ST_TYPE(s.st_info);
		uintptr_t a = o.base + s.st_value;
		*is_function = type == STT_FUNC || type == STT_GNU_IFUNC;
		if (type == STT_GNU_IFUNC)   /* what dlsym returns: the resolver's choice */
			a = ((uintptr_t (*)(void))a)();
		*addr = (void *)a;
		return 0;
	}
	return busy ? -EAGAIN : -ENOENT;
}
