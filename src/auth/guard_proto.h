/*
 * guard_proto.h - the frames spoken between workers and the guard
 * (DESIGN.md "Ask the guard by id"), and between the master and the guard.
 *
 * Worker <-> guard, over a SOCK_STREAM socketpair:
 *
 *     u32 length (big-endian; octets that follow, 5 .. GUARD_FRAME_MAX)
 *     u8  type
 *     u32 request id (big-endian; 0 only in CONN_CLOSE, SEND_UNDO and
 *         USERS_*)
 *     fields, each: u16 length (big-endian) + that many octets
 *
 * Every type has a fixed field layout (below); a frame that does not follow
 * it exactly (unknown type, a field running past the end, a trailing byte,
 * a count over its bound, a NUL/CR/LF in a text field) is refused, and the
 * peer that sent it is dropped (THREATS Q-05 #3). The decoder is a pure
 * function, fuzzed by tests/fuzz/fuzz_ipc.c.
 *
 *   AUTH_REQ   w->g  user, password, client address, role (1 octet)
 *   AUTH_RES   g->w  result (1 octet), user, count (u16 in a 2-octet
 *                    field), then `count` addresses
 *   CONN_OPEN  w->g  client address
 *   CONN_RES   g->w  result (1 octet)
 *   CONN_CLOSE w->g  client address (no reply)
 *   USERS_BEGIN g->w (no field): a new list of user names follows
 *   USERS_CHUNK g->w count, then `count` names
 *   USERS_END   g->w (no field): the list is complete; replace the old one
 *   SEND_REQ   w->g  account, recipient: may the authenticated account
 *                    send to one more recipient? (docs/sendlimit.md)
 *   SEND_RES   g->w  result (1 octet, guard_send_result), alarm (1 octet:
 *                    1 when this recipient raised the send-burst alarm;
 *                    its notice follows in a NOTICE frame),
 *                    count (4 octets: the account's sliding hour),
 *                    baseline (4 octets: its baseline, in hundredths)
 *   SEND_UNDO  w->g  account, count (4 octets): that many recipients
 *                    counted were not sent after all (no reply; id 0)
 *   NOTICE     g->w  account, count (4 octets), baseline (4 octets, in
 *                    hundredths): write the postmaster's notice of the
 *                    send-burst alarm the guard keeps pending under the
 *                    frame's id (the notice's number, never 0)
 *   NOTICE_DONE w->g account: the notice of that number is committed to
 *                    the spool (no reply; the id is the notice's number)
 *
 * Text fields hold no NUL, CR or LF; the password holds no NUL (RFC 4616
 * section 2) but may hold any other octet.
 *
 * Master -> guard (SOCK_STREAM or SOCK_SEQPACKET socketpair): one octet a
 * message, GUARD_MASTER_WORKER with the worker's socket attached
 * (SCM_RIGHTS), or GUARD_MASTER_RELOAD.
 */
#ifndef POSTERN_GUARD_PROTO_H
#define POSTERN_GUARD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct guard_client;

#define GUARD_FRAME_MAX 8192 /* octets after the length word */
#define GUARD_HEADER_LEN 9   /* length + type + id */
#define GUARD_USER_MAX 320   /* a user name or address */
#define GUARD_PASS_MAX 1024  /* a password */
#define GUARD_ADDR_MAX 64    /* a client address, inet_ntop text */
#define GUARD_LIST_MAX 256   /* addresses in AUTH_RES, names a chunk */

#define GUARD_MASTER_WORKER 'W'
#define GUARD_MASTER_RELOAD 'R'

enum guard_msg_type {
	GUARD_MSG_AUTH_REQ = 1,
	GUARD_MSG_AUTH_RES,
	GUARD_MSG_CONN_OPEN,
	GUARD_MSG_CONN_RES,
	GUARD_MSG_CONN_CLOSE,
	GUARD_MSG_USERS_BEGIN,
	GUARD_MSG_USERS_CHUNK,
	GUARD_MSG_USERS_END,
	GUARD_MSG_SEND_REQ = 9,
	GUARD_MSG_SEND_RES = 10,
	GUARD_MSG_SEND_UNDO = 11,
	GUARD_MSG_NOTICE = 12,
	GUARD_MSG_NOTICE_DONE = 13,
};
#define GUARD_MSG_LAST GUARD_MSG_NOTICE_DONE

/*
 * One decoded (or to-be-encoded) frame. After guard_proto_decode() every
 * string points into `arena` and is NUL-terminated; for encoding the
 * caller sets the pointers (arena unused). Fields a type does not carry
 * are ignored by the encoder and zero after decoding.
 */
struct guard_msg {
	enum guard_msg_type type;
	uint32_t id;
	uint8_t result; /* AUTH_RES: guard_auth_result; CONN_RES: conn */
	uint8_t role;	/* AUTH_REQ: enum listen_role */
	const char *user;
	const char *pass;
	size_t pass_len;
	const char *addr;
	const char *rcpt;  /* SEND_REQ: a recipient (at most GUARD_USER_MAX) */
	uint8_t alarm;	   /* SEND_RES: 0 or 1 */
	uint32_t count;	   /* SEND_RES, SEND_UNDO, NOTICE */
	uint32_t baseline; /* SEND_RES, NOTICE: hundredths an hour */
	const char *list[GUARD_LIST_MAX]; /* AUTH_RES addresses, USERS names */
	size_t n_list;
	char arena[GUARD_FRAME_MAX];
};

/*
 * Length of the whole frame announced by the 4-octet header `hdr`
 * (header included), or 0 when the announced length is out of bounds:
 * the peer must then be dropped without reading further.
 */
size_t guard_proto_frame_len(const unsigned char hdr[4]);

/*
 * Decode exactly one whole frame (length word included). Returns 0, or -1
 * with a static reason in *error_r (for the log). Never reads outside
 * buf[0 .. len).
 */
int guard_proto_decode(const unsigned char *buf, size_t len,
		       struct guard_msg *m, const char **error_r);

/*
 * Encode `m` into buf (at most `size` octets; GUARD_HEADER_LEN +
 * GUARD_FRAME_MAX always suffices). Returns the frame length, or 0 when a
 * field breaks the rules above or the frame would not fit.
 */
size_t guard_proto_encode(const struct guard_msg *m, unsigned char *buf,
			  size_t size);

/* Is `s` (length len) acceptable as a text field of at most max octets? */
bool guard_proto_text_ok(const char *s, size_t len, size_t max);

struct evbuffer;

/*
 * Take one frame from a socket's input buffer and decode it into *m
 * (guard_client.c, which links libevent). Returns 1 (a frame in *m; its
 * raw bytes are wiped and drained), 0 (not complete yet) or -1 (*error_r
 * says why: a bad length, no memory, or the decoder's reason; the peer
 * must be dropped).
 */
int guard_proto_read(struct evbuffer *in, struct guard_msg *m,
		     const char **error_r);

#endif
