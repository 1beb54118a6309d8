/*
 * guard_proto.c - encoder and decoder of guard frames (guard_proto.h).
 * Pure functions: no I/O, no allocation.
 */
#include "auth/guard_proto.h"

#include <string.h>

/* Field layout per type: what the encoder writes, the decoder expects. */
enum proto_layout {
	LAYOUT_NONE,	 /* no field */
	LAYOUT_AUTH_REQ, /* user, pass, addr, role */
	LAYOUT_AUTH_RES, /* result, user, count, list */
	LAYOUT_ADDR,	 /* addr */
	LAYOUT_RESULT,	 /* result */
	LAYOUT_LIST,	 /* count, list */
	LAYOUT_SEND_REQ,  /* user, rcpt */
	LAYOUT_SEND_RES,  /* result, alarm, count, baseline */
	LAYOUT_SEND_UNDO, /* user, count */
	LAYOUT_NOTICE,	  /* user, count, baseline */
	LAYOUT_USER,	  /* user (NOTICE_DONE) */
};

static enum proto_layout
proto_layout_of(unsigned type, bool *ok_r)
{
	*ok_r = true;
	switch (type) {
	case GUARD_MSG_AUTH_REQ:
		return LAYOUT_AUTH_REQ;
	case GUARD_MSG_AUTH_RES:
		return LAYOUT_AUTH_RES;
	case GUARD_MSG_CONN_OPEN:
	case GUARD_MSG_CONN_CLOSE:
		return LAYOUT_ADDR;
	case GUARD_MSG_CONN_RES:
		return LAYOUT_RESULT;
	case GUARD_MSG_USERS_CHUNK:
		return LAYOUT_LIST;
	case GUARD_MSG_USERS_BEGIN:
	case GUARD_MSG_USERS_END:
		return LAYOUT_NONE;
	case GUARD_MSG_SEND_REQ:
		return LAYOUT_SEND_REQ;
	case GUARD_MSG_SEND_RES:
		return LAYOUT_SEND_RES;
	case GUARD_MSG_SEND_UNDO:
		return LAYOUT_SEND_UNDO;
	case GUARD_MSG_NOTICE:
		return LAYOUT_NOTICE;
	case GUARD_MSG_NOTICE_DONE:
		return LAYOUT_USER;
	}
	*ok_r = false;
	return LAYOUT_NONE;
}

/* Does the type carry a request id (which must then be non-zero)? */
static bool
proto_has_id(unsigned type)
{
	return type == GUARD_MSG_AUTH_REQ || type == GUARD_MSG_AUTH_RES ||
	       type == GUARD_MSG_CONN_OPEN || type == GUARD_MSG_CONN_RES ||
	       type == GUARD_MSG_SEND_REQ || type == GUARD_MSG_SEND_RES ||
	       type == GUARD_MSG_NOTICE || type == GUARD_MSG_NOTICE_DONE;
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

bool
guard_proto_text_ok(const char *s, size_t len, size_t max)
{
	if (s == NULL || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return false;
	return true;
}

size_t
guard_proto_frame_len(const unsigned char hdr[4])
{
	uint32_t n = get32(hdr);

	if (n < GUARD_HEADER_LEN - 4 || n > GUARD_FRAME_MAX)
		return 0;
	return (size_t)n + 4;
}

/* --- decoding -------------------------------------------------------- */

struct proto_reader {
	const unsigned char *p;
	size_t left;
	char *arena;
	size_t used;
	const char *error;
};

/* The next field: its bytes and length, or -1 when it runs past the end. */
static int
rd_field(struct proto_reader *r, const unsigned char **f_r, size_t *len_r)
{
	size_t n;

	if (r->left < 2) {
		r->error = "truncated field length";
		return -1;
	}
	n = (size_t)r->p[0] << 8 | r->p[1];
	if (n > r->left - 2) {
		r->error = "field runs past the frame";
		return -1;
	}
	*f_r = r->p + 2;
	*len_r = n;
	r->p += 2 + n;
	r->left -= 2 + n;
	return 0;
}

/* A text field, copied NUL-terminated into the arena. */
static int
rd_text(struct proto_reader *r, size_t max, bool is_pass, const char **s_r,
	size_t *len_r)
{
	const unsigned char *f;
	size_t n;
	char *dst;

	if (rd_field(r, &f, &n) < 0)
		return -1;
	if (n > max) {
		r->error = "text field too long";
		return -1;
	}
	if (is_pass ? memchr(f, '\0', n) != NULL
		    : !guard_proto_text_ok((const char *)f, n, max)) {
		r->error = "forbidden octet in a text field";
		return -1;
	}
	/* The arena is as large as the frame, and each field costs at least
	   its two length octets, so n + 1 always fits; check anyway. */
	if (n + 1 > GUARD_FRAME_MAX - r->used) {
		r->error = "arena full";
		return -1;
	}
	dst = r->arena + r->used;
	memcpy(dst, f, n);
	dst[n] = '\0';
	r->used += n + 1;
	*s_r = dst;
	if (len_r != NULL)
		*len_r = n;
	return 0;
}

/* A field of exactly `width` octets (1, 2 or 4), big-endian. */
static int
rd_uint(struct proto_reader *r, size_t width, unsigned *v_r)
{
	const unsigned char *f;
	size_t n;
	uint32_t v = 0;

	if (rd_field(r, &f, &n) < 0)
		return -1;
	if (n != width) {
		r->error = "bad integer field";
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		v = v << 8 | f[i];
	*v_r = v;
	return 0;
}

/* SEND_REQ, SEND_RES, SEND_UNDO, NOTICE, NOTICE_DONE
   (docs/sendlimit.md). */
static int
rd_send(struct proto_reader *r, enum proto_layout layout,
	struct guard_msg *m)
{
	unsigned v;

	if (layout == LAYOUT_SEND_RES) {
		if (rd_uint(r, 1, &v) < 0)
			return -1;
		m->result = (uint8_t)v;
		if (rd_uint(r, 1, &v) < 0)
			return -1;
		if (v > 1) {
			r->error = "bad alarm flag";
			return -1;
		}
		m->alarm = (uint8_t)v;
		if (rd_uint(r, 4, &v) < 0)
			return -1;
		m->count = v;
		if (rd_uint(r, 4, &v) < 0)
			return -1;
		m->baseline = v;
		return 0;
	}
	if (rd_text(r, GUARD_USER_MAX, false, &m->user, NULL) < 0)
		return -1;
	if (m->user[0] == '\0') {
		r->error = "empty account";
		return -1;
	}
	if (layout == LAYOUT_SEND_REQ)
		return rd_text(r, GUARD_USER_MAX, false, &m->rcpt, NULL);
	if (layout == LAYOUT_USER)
		return 0;
	if (rd_uint(r, 4, &v) < 0)
		return -1;
	m->count = v;
	if (layout != LAYOUT_NOTICE)
		return 0;
	if (rd_uint(r, 4, &v) < 0)
		return -1;
	m->baseline = v;
	return 0;
}

static int
rd_list(struct proto_reader *r, struct guard_msg *m)
{
	unsigned count;

	if (rd_uint(r, 2, &count) < 0)
		return -1;
	if (count > GUARD_LIST_MAX) {
		r->error = "list count over bound";
		return -1;
	}
	for (unsigned i = 0; i < count; i++) {
		if (rd_text(r, GUARD_USER_MAX, false, &m->list[i], NULL) < 0)
			return -1;
		if (m->list[i][0] == '\0') {
			r->error = "empty name in a list";
			return -1;
		}
	}
	m->n_list = count;
	return 0;
}

static int
rd_layout(struct proto_reader *r, enum proto_layout layout, struct guard_msg *m)
{
	unsigned v;

	switch (layout) {
	case LAYOUT_NONE:
		return 0;
	case LAYOUT_AUTH_REQ:
		if (rd_text(r, GUARD_USER_MAX, false, &m->user, NULL) < 0 ||
		    rd_text(r, GUARD_PASS_MAX, true, &m->pass, &m->pass_len) <
			0 ||
		    rd_text(r, GUARD_ADDR_MAX, false, &m->addr, NULL) < 0 ||
		    rd_uint(r, 1, &v) < 0)
			return -1;
		m->role = (uint8_t)v;
		return 0;
	case LAYOUT_AUTH_RES:
		if (rd_uint(r, 1, &v) < 0)
			return -1;
		m->result = (uint8_t)v;
		if (rd_text(r, GUARD_USER_MAX, false, &m->user, NULL) < 0)
			return -1;
		return rd_list(r, m);
	case LAYOUT_ADDR:
		return rd_text(r, GUARD_ADDR_MAX, false, &m->addr, NULL);
	case LAYOUT_RESULT:
		if (rd_uint(r, 1, &v) < 0)
			return -1;
		m->result = (uint8_t)v;
		return 0;
	case LAYOUT_LIST:
		return rd_list(r, m);
	case LAYOUT_SEND_REQ:
	case LAYOUT_SEND_RES:
	case LAYOUT_SEND_UNDO:
	case LAYOUT_NOTICE:
	case LAYOUT_USER:
		return rd_send(r, layout, m);
	}
	return -1;
}

/*
 * Decode one frame. The caller has already bounded `len` with
 * guard_proto_frame_len(); we check it again, then walk the fields of the
 * type's layout and refuse anything left over.
 */
int
guard_proto_decode(const unsigned char *buf, size_t len, struct guard_msg *m,
		   const char **error_r)
{
	struct proto_reader r;
	enum proto_layout layout;
	bool known;

	m->type = 0;
	m->id = 0;
	m->result = 0;
	m->role = 0;
	m->user = m->pass = m->addr = m->rcpt = NULL;
	m->pass_len = 0;
	m->alarm = 0;
	m->count = m->baseline = 0;
	m->n_list = 0;
	*error_r = NULL;
	if (len < GUARD_HEADER_LEN || guard_proto_frame_len(buf) != len) {
		*error_r = "bad frame length";
		return -1;
	}
	layout = proto_layout_of(buf[4], &known);
	if (!known) {
		*error_r = "unknown frame type";
		return -1;
	}
	m->type = (enum guard_msg_type)buf[4];
	m->id = get32(buf + 5);
	if (proto_has_id(m->type) != (m->id != 0)) {
		*error_r = "bad request id";
		return -1;
	}
	r.p = buf + GUARD_HEADER_LEN;
	r.left = len - GUARD_HEADER_LEN;
	r.arena = m->arena;
	r.used = 0;
	r.error = NULL;
	if (rd_layout(&r, layout, m) < 0) {
		*error_r = r.error != NULL ? r.error : "bad frame";
		return -1;
	}
	if (r.left != 0) {
		*error_r = "trailing octets in frame";
		return -1;
	}
	return 0;
}

/* --- encoding -------------------------------------------------------- */

struct proto_writer {
	unsigned char *buf;
	size_t size;
	size_t used;
	bool bad;
};

static void
wr_field(struct proto_writer *w, const void *data, size_t n)
{
	if (w->bad || n > 0xffff || w->size - w->used < 2 + n ||
	    w->used + 2 + n - 4 > GUARD_FRAME_MAX) {
		w->bad = true;
		return;
	}
	w->buf[w->used] = (unsigned char)(n >> 8);
	w->buf[w->used + 1] = (unsigned char)n;
	if (n > 0)
		memcpy(w->buf + w->used + 2, data, n);
	w->used += 2 + n;
}

static void
wr_text(struct proto_writer *w, const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (s == NULL || !guard_proto_text_ok(s, n, max)) {
		w->bad = true;
		return;
	}
	wr_field(w, s, n);
}

static void
wr_u32(struct proto_writer *w, uint32_t v)
{
	unsigned char b[4];

	put32(b, v);
	wr_field(w, b, 4);
}

static void
wr_send(struct proto_writer *w, enum proto_layout layout,
	const struct guard_msg *m)
{
	if (layout == LAYOUT_SEND_RES) {
		wr_field(w, &m->result, 1);
		if (m->alarm > 1)
			w->bad = true;
		wr_field(w, &m->alarm, 1);
		wr_u32(w, m->count);
		wr_u32(w, m->baseline);
		return;
	}
	if (m->user == NULL || m->user[0] == '\0')
		w->bad = true;
	wr_text(w, m->user, GUARD_USER_MAX);
	if (layout == LAYOUT_SEND_REQ)
		wr_text(w, m->rcpt, GUARD_USER_MAX);
	else if (layout != LAYOUT_USER)
		wr_u32(w, m->count);
	if (layout == LAYOUT_NOTICE)
		wr_u32(w, m->baseline);
}

static void
wr_list(struct proto_writer *w, const struct guard_msg *m)
{
	unsigned char c[2];

	if (m->n_list > GUARD_LIST_MAX) {
		w->bad = true;
		return;
	}
	c[0] = (unsigned char)(m->n_list >> 8);
	c[1] = (unsigned char)m->n_list;
	wr_field(w, c, 2);
	for (size_t i = 0; i < m->n_list; i++) {
		if (m->list[i] == NULL || m->list[i][0] == '\0')
			w->bad = true;
		else
			wr_text(w, m->list[i], GUARD_USER_MAX);
	}
}

static void
wr_layout(struct proto_writer *w, enum proto_layout layout,
	  const struct guard_msg *m)
{
	switch (layout) {
	case LAYOUT_NONE:
		break;
	case LAYOUT_AUTH_REQ:
		wr_text(w, m->user, GUARD_USER_MAX);
		if (m->pass == NULL || m->pass_len > GUARD_PASS_MAX ||
		    memchr(m->pass, '\0', m->pass_len) != NULL)
			w->bad = true;
		else
			wr_field(w, m->pass, m->pass_len);
		wr_text(w, m->addr, GUARD_ADDR_MAX);
		wr_field(w, &m->role, 1);
		break;
	case LAYOUT_AUTH_RES:
		wr_field(w, &m->result, 1);
		wr_text(w, m->user != NULL ? m->user : "", GUARD_USER_MAX);
		wr_list(w, m);
		break;
	case LAYOUT_ADDR:
		wr_text(w, m->addr, GUARD_ADDR_MAX);
		break;
	case LAYOUT_RESULT:
		wr_field(w, &m->result, 1);
		break;
	case LAYOUT_LIST:
		wr_list(w, m);
		break;
	case LAYOUT_SEND_REQ:
	case LAYOUT_SEND_RES:
	case LAYOUT_SEND_UNDO:
	case LAYOUT_NOTICE:
	case LAYOUT_USER:
		wr_send(w, layout, m);
		break;
	}
}

size_t
guard_proto_encode(const struct guard_msg *m, unsigned char *buf, size_t size)
{
	struct proto_writer w = {buf, size, GUARD_HEADER_LEN, false};
	enum proto_layout layout;
	bool known;

	layout = proto_layout_of(m->type, &known);
	if (!known || size < GUARD_HEADER_LEN ||
	    proto_has_id(m->type) != (m->id != 0))
		return 0;
	buf[4] = (unsigned char)m->type;
	put32(buf + 5, m->id);
	wr_layout(&w, layout, m);
	if (w.bad)
		return 0;
	put32(buf, (uint32_t)(w.used - 4));
	return w.used;
}
