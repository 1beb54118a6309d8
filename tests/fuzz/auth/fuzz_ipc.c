/*
 * fuzz_ipc.c - libFuzzer harness for the guard's frames
 * (src/auth/guard_proto.c; THREATS Q-05 #3, section 12).
 *
 * Byte 0 picks the mode:
 *  - even: the rest is a frame as a worker or the guard would send it.
 *    decode() must never read outside it; an accepted frame obeys every
 *    rule of guard_proto.h, and encode(decode(x)) == x, byte for byte
 *    (the encoding is canonical), so decode(encode(decode(x))) agrees.
 *  - odd: the rest builds a message (byte 1: type, byte 2: result/role,
 *    alarm flag and the count and baseline numbers, then NUL-separated
 *    strings for user, password, address, recipient and the list). If
 *    encode() accepts it, decode() must give it back exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/guard_proto.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guard_msg m1, m2, built;
static unsigned char out[GUARD_HEADER_LEN + GUARD_FRAME_MAX];

static void
check_text(const char *s, size_t max)
{
	if (s == NULL)
		return;
	CHECK(strlen(s) <= max);
	CHECK(strchr(s, '\r') == NULL && strchr(s, '\n') == NULL);
}

static void
check_str_eq(const char *a, const char *b)
{
	CHECK((a == NULL) == (b == NULL));
	if (a != NULL)
		CHECK(strcmp(a, b) == 0);
}

static void
check_same(const struct guard_msg *a, const struct guard_msg *b)
{
	CHECK(a->type == b->type && a->id == b->id);
	CHECK(a->result == b->result && a->role == b->role);
	check_str_eq(a->user, b->user);
	check_str_eq(a->addr, b->addr);
	check_str_eq(a->rcpt, b->rcpt);
	CHECK(a->alarm == b->alarm && a->count == b->count &&
	      a->baseline == b->baseline);
	CHECK((a->pass == NULL) == (b->pass == NULL));
	CHECK(a->pass_len == b->pass_len);
	if (a->pass != NULL)
		CHECK(memcmp(a->pass, b->pass, a->pass_len) == 0);
	CHECK(a->n_list == b->n_list);
	for (size_t i = 0; i < a->n_list; i++)
		CHECK(strcmp(a->list[i], b->list[i]) == 0);
}

static void
fuzz_decode(const uint8_t *data, size_t size)
{
	const char *error = NULL;
	size_t n;

	if (size >= 4) {
		size_t want = guard_proto_frame_len(data);

		CHECK(want == 0 || (want >= GUARD_HEADER_LEN &&
				    want <= GUARD_FRAME_MAX + 4));
	}
	if (guard_proto_decode(data, size, &m1, &error) < 0) {
		CHECK(error != NULL);
		return;
	}
	CHECK(error == NULL);
	CHECK(m1.type >= GUARD_MSG_AUTH_REQ && m1.type <= GUARD_MSG_LAST);
	CHECK(m1.alarm <= 1);
	check_text(m1.rcpt, GUARD_USER_MAX);
	if (m1.type == GUARD_MSG_SEND_REQ || m1.type == GUARD_MSG_SEND_UNDO ||
	    m1.type == GUARD_MSG_NOTICE || m1.type == GUARD_MSG_NOTICE_DONE)
		CHECK(m1.user != NULL && m1.user[0] != '\0');
	if (m1.type == GUARD_MSG_NOTICE || m1.type == GUARD_MSG_NOTICE_DONE)
		CHECK(m1.id != 0);
	if (m1.type == GUARD_MSG_NOTICE_DONE)
		CHECK(m1.count == 0 && m1.baseline == 0);
	if (m1.type == GUARD_MSG_SEND_REQ)
		CHECK(m1.rcpt != NULL);
	CHECK(m1.n_list <= GUARD_LIST_MAX);
	check_text(m1.user, GUARD_USER_MAX);
	check_text(m1.addr, GUARD_ADDR_MAX);
	if (m1.pass != NULL) {
		CHECK(m1.pass_len <= GUARD_PASS_MAX);
		CHECK(memchr(m1.pass, '\0', m1.pass_len) == NULL);
	}
	for (size_t i = 0; i < m1.n_list; i++) {
		check_text(m1.list[i], GUARD_USER_MAX);
		CHECK(m1.list[i][0] != '\0');
	}
	n = guard_proto_encode(&m1, out, sizeof(out));
	CHECK(n == size);
	CHECK(memcmp(out, data, size) == 0);
	CHECK(guard_proto_decode(out, n, &m2, &error) == 0);
	check_same(&m1, &m2);
}

/* Next NUL-separated piece of [*p, end), or NULL when none is left. */
static const char *
piece(const char **p, const char *end, char *buf, size_t size, size_t *len)
{
	const char *s = *p, *z;
	size_t n;

	if (s >= end)
		return NULL;
	z = memchr(s, '\0', (size_t)(end - s));
	n = z != NULL ? (size_t)(z - s) : (size_t)(end - s);
	*p = s + n + 1;
	if (n >= size)
		n = size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static char pieces[4 + GUARD_LIST_MAX][GUARD_PASS_MAX + 2];

static void
fuzz_encode(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 2,
		   *end = (const char *)data + size;
	const char *error;
	size_t n, len;

	if (size < 2)
		return;
	memset(&built, 0, offsetof(struct guard_msg, arena));
	built.type = (enum guard_msg_type)(data[0] % (GUARD_MSG_LAST + 1));
	built.id = data[0] & 0x80 ? 0 : 0x01020304;
	built.result = data[1];
	built.role = data[1];
	built.alarm = data[1] >> 6;
	built.count = (uint32_t)data[1] * 0x01000193u;
	built.baseline = (uint32_t)data[1] * 0x00010003u;
	built.user = piece(&p, end, pieces[0], sizeof(pieces[0]), &len);
	built.pass = piece(&p, end, pieces[1], sizeof(pieces[1]), &len);
	built.pass_len = built.pass != NULL ? len : 0;
	built.addr = piece(&p, end, pieces[2], sizeof(pieces[2]), &len);
	built.rcpt = piece(&p, end, pieces[3], sizeof(pieces[3]), &len);
	while (
	    built.n_list < GUARD_LIST_MAX &&
	    (built.list[built.n_list] = piece(&p, end, pieces[4 + built.n_list],
					      sizeof(pieces[0]), &len)) != NULL)
		built.n_list++;
	n = guard_proto_encode(&built, out, sizeof(out));
	if (n == 0)
		return;
	CHECK(n <= sizeof(out));
	CHECK(guard_proto_decode(out, n, &m1, &error) == 0);
	/* Only the fields the type carries survive. */
	if (built.type < GUARD_MSG_SEND_REQ) {
		built.rcpt = NULL;
		built.alarm = 0;
		built.count = built.baseline = 0;
	}
	switch (built.type) {
	case GUARD_MSG_SEND_REQ:
		built.result = built.role = built.alarm = 0;
		built.count = built.baseline = 0;
		built.pass = built.addr = NULL;
		built.pass_len = 0;
		built.n_list = 0;
		break;
	case GUARD_MSG_SEND_RES:
		built.role = 0;
		built.user = built.pass = built.addr = built.rcpt = NULL;
		built.pass_len = 0;
		built.n_list = 0;
		break;
	case GUARD_MSG_NOTICE:
	case GUARD_MSG_NOTICE_DONE:
		built.result = built.role = built.alarm = 0;
		if (built.type == GUARD_MSG_NOTICE_DONE)
			built.count = built.baseline = 0;
		built.pass = built.addr = built.rcpt = NULL;
		built.pass_len = 0;
		built.n_list = 0;
		break;
	case GUARD_MSG_SEND_UNDO:
		built.result = built.role = built.alarm = 0;
		built.baseline = 0;
		built.pass = built.addr = built.rcpt = NULL;
		built.pass_len = 0;
		built.n_list = 0;
		break;
	case GUARD_MSG_AUTH_REQ:
		built.result = 0;
		built.n_list = 0;
		break;
	case GUARD_MSG_AUTH_RES:
		built.role = 0;
		if (built.user == NULL)
			built.user = "";
		built.pass = built.addr = NULL;
		built.pass_len = 0;
		break;
	case GUARD_MSG_CONN_OPEN:
	case GUARD_MSG_CONN_CLOSE:
		built.result = built.role = 0;
		built.user = built.pass = NULL;
		built.pass_len = 0;
		built.n_list = 0;
		break;
	case GUARD_MSG_CONN_RES:
		built.role = 0;
		built.user = built.pass = built.addr = NULL;
		built.pass_len = 0;
		built.n_list = 0;
		break;
	case GUARD_MSG_USERS_CHUNK:
		built.result = built.role = 0;
		built.user = built.pass = built.addr = NULL;
		built.pass_len = 0;
		break;
	default:
		built.result = built.role = 0;
		built.user = built.pass = built.addr = NULL;
		built.pass_len = 0;
		built.n_list = 0;
		break;
	}
	check_same(&built, &m1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		fuzz_decode(data + 1, size - 1);
	else
		fuzz_encode(data + 1, size - 1);
	return 0;
}
