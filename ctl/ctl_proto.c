/* Control-socket message encoding and decoding (format in ctl_proto.h).
 * Pure functions over caller memory: used by libnuwa's control thread, which
 * must not allocate, and by the `nuwa` command. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "ctl_proto.h"

/* ---- encoding ------------------------------------------------------------ */

static void put_raw(struct ctl_buf *b, const void *p, size_t n)
{
	if (b->err)
		return;
	if (n > b->cap - b->len) {
		b->err = -EMSGSIZE;
		return;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_field_hdr(struct ctl_buf *b, uint16_t tag, uint32_t vlen)
{
	put_raw(b, &tag, 2);
	put_raw(b, &vlen, 4);
}

void ctl_begin(struct ctl_buf *b, void *mem, size_t cap, uint16_t type)
{
	b->p = mem;
	b->cap = cap;
	b->len = 0;
	b->err = 0;
	uint16_t version = CTL_VERSION;
	uint32_t zero = 0;
	put_raw(b, CTL_MAGIC, 4);
	put_raw(b, &version, 2);
	put_raw(b, &type, 2);
	put_raw(b, &zero, 4);
}

void ctl_put_u32(struct ctl_buf *b, uint16_t tag, uint32_t v)
{
	put_field_hdr(b, tag, 4);
	put_raw(b, &v, 4);
}

void ctl_put_i32(struct ctl_buf *b, uint16_t tag, int32_t v)
{
	put_field_hdr(b, tag, 4);
	put_raw(b, &v, 4);
}

void ctl_put_str(struct ctl_buf *b, uint16_t tag, const char *s)
{
	size_t n = strlen(s);
	if (n >= UINT32_MAX) {
		b->err = -EMSGSIZE;
		return;
	}
	put_field_hdr(b, tag, (uint32_t)n + 1);
	put_raw(b, s, n + 1);
}

char *ctl_reserve_str(struct ctl_buf *b, uint16_t tag, size_t max)
{
	if (b->err || max >= UINT32_MAX || CTL_FIELD_HDR + max + 1 > b->cap - b->len) {
		b->err = b->err ? b->err : -EMSGSIZE;
		return NULL;
	}
	put_field_hdr(b, tag, 0);       /* length fixed by ctl_commit_str */
	return b->p + b->len;
}

void ctl_commit_str(struct ctl_buf *b, char *s, size_t n)
{
	if (b->err || !s)
		return;
	/* A NUL inside would make the receiver reject the message: cut there. */
	char *nul = memchr(s, 0, n);
	if (nul)
		n = (size_t)(nul - s);
	s[n] = 0;
	uint32_t vlen = (uint32_t)n + 1;
	memcpy(s - 4, &vlen, 4);
	b->len += vlen;
}

long ctl_end(struct ctl_buf *b)
{
	if (b->err)
		return b->err;
	uint32_t len = (uint32_t)(b->len - CTL_HDR_SIZE);
	memcpy(b->p + 8, &len, 4);
	return (long)b->len;
}

/* ---- decoding ------------------------------------------------------------ */

long ctl_frame(const void *buf, size_t have, uint32_t max, struct ctl_msg *m)
{
	const char *p = buf;
	/* Check the magic as soon as its bytes arrive: garbage is refused at
	 * once instead of after waiting for a length that never comes. */
	size_t k = have < 4 ? have : 4;
	if (memcmp(p, CTL_MAGIC, k))
		return -EPROTO;
	if (have < CTL_HDR_SIZE)
		return 0;
	memcpy(&m->version, p + 4, 2);
	memcpy(&m->type, p + 6, 2);
	memcpy(&m->len, p + 8, 4);
	m->payload = p + CTL_HDR_SIZE;
	if (m->version != CTL_VERSION)
		return -EPROTONOSUPPORT;
	if (m->len > max)
		return -EMSGSIZE;
	if (have - CTL_HDR_SIZE < m->len)
		return 0;
	return (long)(CTL_HDR_SIZE + m->len);
}

/* Walks the fields; *pos is the offset of the next field header. */
static int next_field(const struct ctl_msg *m, size_t *pos, uint16_t *tag,
                      const char **val, uint32_t *vlen)
{
	if (*pos == m->len)
		return 0;
	if (m->len - *pos < CTL_FIELD_HDR)
		return -EPROTO;
	memcpy(tag, m->payload + *pos, 2);
	memcpy(vlen, m->payload + *pos + 2, 4);
	*pos += CTL_FIELD_HDR;
	if (*vlen > m->len - *pos)
		return -EPROTO;
	*val = m->payload + *pos;
	*pos += *vlen;
	return 1;
}

static int tag_is_string(uint16_t tag)
{
	return tag == CTL_F_MESSAGE || tag == CTL_F_TEXT || tag == CTL_F_CALL ||
	       tag == CTL_F_ENV || tag == CTL_F_CWD || tag == CTL_F_CGROUP;
}

static int tag_is_known(uint16_t tag)
{
	return (tag >= CTL_F_ERRNO && tag <= CTL_F_LAST) || tag == CTL_F_POOL;
}

int ctl_validate(const struct ctl_msg *m)
{
	size_t pos = 0;
	uint16_t tag;
	const char *val;
	uint32_t vlen;
	int r;
	while ((r = next_field(m, &pos, &tag, &val, &vlen)) > 0) {
		if (!tag_is_known(tag))
			continue;
		if (tag_is_string(tag)) {
			if (vlen == 0 || val[vlen - 1] != 0 || memchr(val, 0, vlen - 1))
				return -EPROTO;
		} else if (vlen != 4) {
			return -EPROTO;
		}
	}
	return r;
}

/* The single occurrence of tag: 1 found, 0 absent, -EPROTO duplicated. */
static int find_one(const struct ctl_msg *m, uint16_t tag, const char **val, uint32_t *vlen)
{
	size_t pos = 0;
	uint16_t t;
	const char *v;
	uint32_t n;
	int found = 0, r;
	while ((r = next_field(m, &pos, &t, &v, &n)) > 0) {
		if (t != tag)
			continue;
		if (found++)
			return -EPROTO;
		*val = v;
		*vlen = n;
	}
	return r < 0 ? r : found;
}

int ctl_get_u32(const struct ctl_msg *m, uint16_t tag, uint32_t *v)
{
	const char *val;
	uint32_t n;
	int r = find_one(m, tag, &val, &n);
	if (r <= 0)
		return r ? r : -ENOENT;
	if (n != 4)
		return -EPROTO;
	memcpy(v, val, 4);
	return 0;
}

int ctl_get_i32(const struct ctl_msg *m, uint16_t tag, int32_t *v)
{
	return ctl_get_u32(m, tag, (uint32_t *)v);
}

int ctl_get_str(const struct ctl_msg *m, uint16_t tag, const char **s)
{
	const char *val;
	uint32_t n;
	int r = find_one(m, tag, &val, &n);
	if (r <= 0)
		return r ? r : -ENOENT;
	if (n == 0 || val[n - 1] != 0 || memchr(val, 0, n - 1))
		return -EPROTO;
	*s = val;
	return 0;
}

const char *ctl_get_nth_str(const struct ctl_msg *m, uint16_t tag, unsigned nth)
{
	size_t pos = 0;
	uint16_t t;
	const char *v;
	uint32_t n;
	while (next_field(m, &pos, &t, &v, &n) > 0) {
		if (t != tag)
			continue;
		if (nth-- == 0)
			return (n && v[n - 1] == 0 && !memchr(v, 0, n - 1)) ? v : NULL;
	}
	return NULL;
}

unsigned ctl_count(const struct ctl_msg *m, uint16_t tag)
{
	size_t pos = 0;
	uint16_t t;
	const char *v;
	uint32_t n;
	unsigned c = 0;
	while (next_field(m, &pos, &t, &v, &n) > 0)
		c += t == tag;
	return c;
}

/* ---- names --------------------------------------------------------------- */

const char *ctl_type_name(unsigned type)
{
	switch (type) {
	case CTL_REQ_HELLO: return "hello";
	case CTL_REQ_STATUS: return "status";
	case CTL_REQ_FREEZE: return "freeze";
	case CTL_REQ_SPAWN: return "spawn";
	case CTL_REQ_THAW: return "thaw";
	case CTL_REQ_STOP: return "stop";
	case CTL_REQ_SIGNAL: return "signal";
	case CTL_REQ_POOL: return "pool";
	case CTL_REP_OK: return "ok";
	case CTL_REP_ERROR: return "error";
	case CTL_REP_SPAWNED: return "spawned";
	case CTL_REP_EXITED: return "exited";
	}
	return "unknown";
}

/* Same order as enum ctl_state / enum ctl_mode in ctl/ctlsock.h
 * (checked by static assertions in ctl/ctl_serve.c). */
const char *ctl_state_name(unsigned state)
{
	static const char *const n[] = { "running", "freezing", "template" };
	return state < 3 ? n[state] : "unknown";
}

const char *ctl_mode_name(unsigned mode)
{
	static const char *const n[] = { "clone", "template", "snapshot" };
	return mode < 3 ? n[mode] : "unknown";
}

/* Send one whole message on a stream socket, with up to 3 descriptors
 * riding on its first byte (SCM_RIGHTS); the rest follows plainly.
 * Returns 0 or -errno.  Shared by the nuwa command and nuwa_spawn(). */
int ctl_send_with_fds(int fd, const void *msg, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 3)];
	} ctrl;
	if (nfds < 0 || nfds > 3)
		return -EINVAL;
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds > 0) {
		memset(&ctrl, 0, sizeof ctrl);   /* the cmsg padding goes out too */
		mh.msg_control = ctrl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	while (iov.iov_len) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
	}
	return 0;
}
