/* fuzz_ctl_proto — the control protocol's decoder (ctl_proto.c): framing,
 * validation and every field reader, on arbitrary bytes from a client.
 *
 * Properties (beyond "no sanitizer report"):
 *  - ctl_frame never claims more bytes than it was given, and a frame it
 *    accepts has a payload within them and within the limit;
 *  - on a message ctl_validate accepts, every string a reader returns lies
 *    inside the payload and ends with its NUL there; repeated readers
 *    (ctl_count, ctl_get_nth_str) agree with each other;
 *  - re-encoding the fields read gives a message that decodes to the same
 *    values (encoder and decoder agree). */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"

static char enc[CTL_MAX_REQUEST + 4096];

static void check_str(const struct ctl_msg *m, const char *s)
{
	assert(s >= m->payload && s < m->payload + m->len);
	size_t room = (size_t)(m->payload + m->len - s);
	assert(memchr(s, 0, room) != NULL);
}

static void one_message(const struct ctl_msg *m)
{
	if (ctl_validate(m) != 0)
		return;
	struct ctl_buf b;
	ctl_begin(&b, enc, sizeof enc, m->type);
	for (uint16_t tag = 0; tag < 24; tag++) {
		uint32_t u;
		int32_t i;
		const char *s;
		int ru = ctl_get_u32(m, tag, &u);
		int ri = ctl_get_i32(m, tag, &i);
		assert(ru == ri && (ru == 0 || ru == -ENOENT || ru == -EPROTO));
		if (ru == 0) {
			assert((uint32_t)i == u);
			ctl_put_u32(&b, tag, u);
		}
		int rs = ctl_get_str(m, tag, &s);
		assert(rs == 0 || rs == -ENOENT || rs == -EPROTO);
		if (rs == 0) {
			check_str(m, s);
			if (ru != 0)   /* 4 bytes ending in NUL read as both: encode once */
				ctl_put_str(&b, tag, s);
		}
		unsigned n = ctl_count(m, tag);
		for (unsigned k = 0; k < n && k < 64; k++) {
			const char *t = ctl_get_nth_str(m, tag, k);
			if (t)
				check_str(m, t);
		}
		assert(ctl_get_nth_str(m, tag, n) == NULL);
		if (n == 0)
			assert(ru == -ENOENT && rs == -ENOENT);
		if (n > 1)
			assert(ru == -EPROTO && rs == -EPROTO);
	}
	long len = ctl_end(&b);
	assert(len >= CTL_HDR_SIZE);
	struct ctl_msg m2;
	assert(ctl_frame(enc, (size_t)len, UINT32_MAX, &m2) == len);
	assert(ctl_validate(&m2) == 0 && m2.type == m->type);
	for (uint16_t tag = 0; tag < 24; tag++) {
		uint32_t u1, u2;
		const char *s1, *s2;
		if (ctl_get_u32(m, tag, &u1) == 0)
			assert(ctl_get_u32(&m2, tag, &u2) == 0 && u1 == u2);
		if (ctl_get_u32(m, tag, &u1) != 0 && ctl_get_str(m, tag, &s1) == 0)
			assert(ctl_get_str(&m2, tag, &s2) == 0 && !strcmp(s1, s2));
	}
	(void)ctl_type_name(m->type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly `size` bytes: ASan sees any read past the input */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	size_t off = 0;
	/* a stream of messages, as the server reads them */
	while (off <= size) {
		struct ctl_msg m;
		size_t have = size - off;
		long r = ctl_frame(buf + off, have, CTL_MAX_REQUEST, &m);
		assert(r == 0 || r == -EPROTO || r == -EPROTONOSUPPORT || r == -EMSGSIZE || r >= CTL_HDR_SIZE);
		if (r <= 0)
			break;
		assert((size_t)r <= have && m.len <= CTL_MAX_REQUEST && (size_t)r == CTL_HDR_SIZE + m.len);
		assert(m.payload == buf + off + CTL_HDR_SIZE);
		/* every shorter prefix asks for more (or is refused the same way) */
		struct ctl_msg p;
		long pr = ctl_frame(buf + off, (size_t)r - 1, CTL_MAX_REQUEST, &p);
		assert(pr == 0);
		one_message(&m);
		off += (size_t)r;
	}
	free(buf);
	return 0;
}
