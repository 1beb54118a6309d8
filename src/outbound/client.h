/*
 * client.h - the SMTP client engine (RFC 5321 and extensions), I/O-free.
 *
 * Like the server engine (smtp/session.h) it never touches a socket, a
 * file or a clock: the driver feeds the server's bytes with
 * client_input(), sends what client_output() holds, and acts on
 * client_event(). One engine is one connection to one server; it carries
 * any number of transactions, one after the other (connection reuse).
 *
 * A session: greeting, EHLO (HELO when EHLO is refused with 5xx and
 * nothing needs ESMTP), STARTTLS when offered and wanted (RFC 3207; the
 * driver does the handshake), EHLO again, AUTH PLAIN or LOGIN when
 * credentials are given (RFC 4954; only over TLS), then transactions:
 * MAIL with SIZE (RFC 1870), BODY=8BITMIME (RFC 6152) and SMTPUTF8
 * (RFC 6531) as needed, RCPT for up to CLIENT_RCPT_MAX recipients, DATA
 * with dot-stuffing (RFC 5321 4.5.2); MAIL, RCPT and DATA go as one group
 * when the server offers PIPELINING (RFC 2920). RSET precedes a
 * transaction when the one before it did not end with the final dot.
 *
 * Ownership: the caller keeps the params and the transaction (strings,
 * recipient array) alive until the transaction is done.
 */
#ifndef POSTERN_CLIENT_H
#define POSTERN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/peer_reply.h"

#define CLIENT_RCPT_MAX 50   /* recipients per transaction */
#define CLIENT_TEXT_MAX 512  /* octets of a result's text, NUL included */
#define CLIENT_INPUT_MAX (64 * 1024) /* unanswered input we hold */

enum client_tls {
	CLIENT_TLS_NONE = 0, /* never STARTTLS */
	CLIENT_TLS_MAY,	     /* STARTTLS when offered; refused: plain text */
	CLIENT_TLS_REQUIRE,  /* STARTTLS must succeed, else 4.7.4 */
	CLIENT_TLS_IMPLICIT, /* the connection is TLS from the start */
};

struct client_params {
	const char *helo;      /* our host name, for EHLO and HELO */
	enum client_tls tls;
	const char *auth_user; /* AUTH after TLS; NULL: do not authenticate */
	const char *auth_pass;
};

/* One transaction: a message for up to CLIENT_RCPT_MAX recipients. */
struct client_tx {
	const char *sender;	     /* canonical, without <>; "" for <> */
	const char *const *rcpts;    /* canonical addresses */
	size_t n_rcpts;		     /* 1..CLIENT_RCPT_MAX */
	uint64_t size;		     /* octets of the message */
	bool is_8bit;		     /* content holds octets over 127 */
	bool is_utf8;		     /* an address needs SMTPUTF8 */
};

enum client_status {
	CLIENT_OK = 0, /* delivered (the final dot got 2xx) */
	CLIENT_TEMP,   /* try again later (or at another host) */
	CLIENT_PERM,   /* give up: bounce */
};

/* Which step an answer or a failure belongs to (for logs and DSNs). */
enum client_stage {
	CLIENT_STAGE_GREETING = 0,
	CLIENT_STAGE_EHLO,
	CLIENT_STAGE_HELO,
	CLIENT_STAGE_STARTTLS,
	CLIENT_STAGE_TLS, /* the handshake */
	CLIENT_STAGE_AUTH,
	CLIENT_STAGE_RSET,
	CLIENT_STAGE_MAIL,
	CLIENT_STAGE_RCPT,
	CLIENT_STAGE_DATA,
	CLIENT_STAGE_DOT, /* the end of the message content */
	CLIENT_STAGE_QUIT,
	CLIENT_STAGE_COUNT
};

struct client_result {
	enum client_status status;
	enum client_stage stage;
	unsigned code;		     /* the server's reply code; 0: ours */
	char dsn[PEER_REPLY_STATUS_MAX]; /* "5.1.1": the server's or made
					      up from the class */
	char text[CLIENT_TEXT_MAX];  /* "550 5.1.1 ..." (printable ASCII),
					or our own reason */
	bool is_remote;		     /* the text is the server's reply */
};

enum client_event {
	CLIENT_EV_WAIT = 0, /* waiting for the server (send the output) */
	CLIENT_EV_TLS,	    /* send the output, then do the TLS handshake
			       and call client_tls_done() */
	CLIENT_EV_READY,    /* client_tx_begin() or client_quit() */
	CLIENT_EV_BODY,	    /* client_body() ... client_body_end() */
	CLIENT_EV_TX_DONE,  /* client_rcpt_result(), then client_tx_end() */
	CLIENT_EV_CLOSED,   /* send the output and close; client_error() */
};

/* What the server offered in its EHLO reply (RFC 5321 4.1.1.1). */
struct client_features {
	bool is_esmtp;
	bool pipelining;   /* RFC 2920 */
	bool starttls;	   /* RFC 3207 */
	bool eightbitmime; /* RFC 6152 */
	bool smtputf8;	   /* RFC 6531 */
	bool has_size;	   /* RFC 1870 */
	uint64_t size_max; /* 0: no limit given */
	bool auth_plain;   /* RFC 4954, RFC 4616 */
	bool auth_login;
	bool has_auth;	   /* AUTH offered at all */
};

struct client;

struct client *client_new(const struct client_params *params);
/* Wipes any credentials still in the output, then frees. */
void client_free(struct client **c);

/* Bytes from the server. */
void client_input(struct client *c, const void *buf, size_t len);

/* What to do now. */
enum client_event client_event(const struct client *c);

/* Output waiting to be sent; consume what was written. */
const char *client_output(const struct client *c, size_t *len_r);
void client_output_consume(struct client *c, size_t n);

/* The TLS handshake asked for by CLIENT_EV_TLS ended: on success EHLO
   is sent again (RFC 3207 4.2), else the session fails. `reason` (may be
   NULL) goes into the error text. */
void client_tls_done(struct client *c, bool ok, const char *reason);
/* Is the connection encrypted (handshake done, or implicit)? */
bool client_is_tls(const struct client *c);
const struct client_features *client_features(const struct client *c);
/* Has the session authenticated (AUTH answered 235)? */
bool client_is_authenticated(const struct client *c);

/*
 * Start a transaction (in CLIENT_EV_READY). A message the server cannot
 * take as it is ends at once (CLIENT_EV_TX_DONE, nothing sent, every
 * recipient failed): SMTPUTF8 needed and not offered, 5.6.7 (RFC 6531
 * 3.4); 8-bit content without 8BITMIME, 5.6.3; larger than the server's
 * SIZE, 5.3.4 (RFC 1870 6). Returns 0, or -1 when not ready or the
 * recipient count is out of range.
 */
int client_tx_begin(struct client *c, const struct client_tx *tx);
/* Message content (in CLIENT_EV_BODY), as stored: CRLF line ends, not
   dot-stuffed (the engine stuffs it). */
void client_body(struct client *c, const void *buf, size_t len);
/* The content is complete: CRLF if the last line lacks one, then ".". */
void client_body_end(struct client *c);
/* Result of recipient `i` of the transaction (in CLIENT_EV_TX_DONE). */
const struct client_result *client_rcpt_result(const struct client *c,
					       size_t i);
/* Results taken: back to CLIENT_EV_READY, or CLIENT_EV_CLOSED when the
   session failed during the transaction. */
void client_tx_end(struct client *c);

/* Say QUIT (in CLIENT_EV_READY); CLIENT_EV_CLOSED follows the 221. */
void client_quit(struct client *c);
/* The peer closed the connection, or the driver gave up waiting: any
   open transaction fails (temporarily), the session is closed. */
void client_eof(struct client *c);
void client_timeout(struct client *c);

/* Why the session ended, or NULL when it ended with QUIT. */
const struct client_result *client_error(const struct client *c);

/* Seconds to wait for the server in the current step (RFC 5321
   4.5.3.2), 0 when the driver waits for nothing. */
unsigned client_timeout_secs(const struct client *c);

/* "RCPT TO" and the like, for "in reply to ..." texts. */
const char *client_stage_name(enum client_stage stage);

#endif
