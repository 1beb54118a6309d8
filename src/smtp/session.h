/*
 * session.h - the SMTP state machine (RFC 5321 and extensions), I/O-free.
 *
 * Bytes go in with session_input(); replies come out of session_output();
 * message content goes to the caller through session_ops. The engine never
 * touches a socket, a file or a clock of its own (but for the Received
 * header's date), so the event loop, a unit test and a fuzzer drive it
 * alike.
 *
 * Ownership: the caller owns the params and the config they point to, and
 * keeps them alive as long as the session.
 */
#ifndef POSTERN_SESSION_H
#define POSTERN_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "store/spool.h"

struct session;

struct session_params {
	const struct config *cfg;
	enum listen_role role;
	const char *id;		 /* session id for logs, e.g. "a1b2c3" */
	const char *client_addr; /* "192.0.2.1" or "2001:db8::1" */
	bool tls_available;	 /* a certificate is loaded: offer STARTTLS */
};

/* The envelope handed over at end of data. */
struct session_envelope {
	const char *sender; /* canonical, without brackets; "" for <> */
	const struct spool_rcpt *rcpts;
	size_t n_rcpts;
	unsigned long long size; /* octets written, Received header included */
	const char *auth_user;	 /* the login, or NULL */
	bool hold;		 /* the send-burst alarm holds it (queue) */
};

/*
 * What the engine asks of its driver. Each returns 0 on success; a -1 from
 * msg_begin or msg_write makes the transaction end with 451 4.3.0.
 */
struct session_ops {
	/* A message begins; write its queue id (< SPOOL_ID_MAX) to id_r. */
	int (*msg_begin)(void *ctx, char *id_r);
	/* Content, in order: the Received header, then the message as
	   stored (dot-unstuffed, CRLF line ends kept). */
	int (*msg_write)(void *ctx, const void *buf, size_t len);
	/* The message is refused or the session ends: throw it away. */
	void (*msg_abort)(void *ctx);
	/* End of data, all checks passed: make it durable and deliver, then
	   call session_commit_done(). The session is parked until then. */
	void (*msg_commit)(void *ctx, const struct session_envelope *env);
	/* Credentials to verify (the guard): answer later with
	   session_auth_done(). The session is parked until then. The buffers
	   are wiped right after the call: copy what must be kept. */
	void (*auth)(void *ctx, const char *user, size_t user_len,
		     const char *pass, size_t pass_len);
	/* Is `address` (canonical, lower-case) a user of the users file? */
	bool (*is_user)(void *ctx, const char *address);
	/* Is there room in the spool for a message of `size` octets (0:
	   undeclared)? Asked at MAIL; NULL means always. */
	bool (*has_space)(void *ctx, unsigned long long size);
	/* An authenticated session's recipient (docs/sendlimit.md): may the
	   account send to it? Answer later with session_send_done(); the
	   session is parked until then. NULL: no send limits. */
	void (*send_check)(void *ctx, const char *account, const char *rcpt);
	/* `n` recipients the guard counted were not sent after all (RSET, a
	   refused or failed message, the end of the session). */
	void (*send_undo)(void *ctx, const char *account, unsigned n);
	/* A message was refused at its end: `reason` is "size", "content",
	   "loop", "from_not_owned" or "tempfail"; or a recipient was refused
	   by the guard's verdict: "send_limit_hour", "send_limit_day",
	   "new_recipients_day" or "send_burst" (metrics). May be NULL. */
	void (*refused)(void *ctx, const char *reason);
};

/* The send-limit verdict (see guard.h guard_send_result): */
enum session_send_result {
	SESSION_SEND_OK = 0,	/* 250 */
	SESSION_SEND_HOLD,	/* 250; the message will be held */
	SESSION_SEND_OVER_HOUR, /* 451 4.7.1 */
	SESSION_SEND_OVER_DAY,	/* 451 4.7.1 */
	SESSION_SEND_OVER_NEW,	/* 451 4.7.1 */
	SESSION_SEND_HELD,	/* 451 4.7.1 (burst-action refuse) */
	SESSION_SEND_TEMPFAIL,	/* 451 4.3.0 */
};

/* The AUTH verdict (see guard.h): */
enum session_auth_result {
	SESSION_AUTH_OK = 0,	 /* 235 2.7.0 */
	SESSION_AUTH_FAIL,	 /* 535 5.7.8 */
	SESSION_AUTH_LOCKED,	 /* 454 4.7.0 */
	SESSION_AUTH_TEMPFAIL,	 /* 454 4.7.0 */
};

struct session *session_new(const struct session_params *params,
			    const struct session_ops *ops, void *ctx);
/* Frees the session; a message still open is aborted. */
void session_free(struct session **s);

/* Send the greeting now (the driver may wait greet-delay first). */
void session_greet(struct session *s);

/* Feed bytes from the client. */
void session_input(struct session *s, const void *buf, size_t len);

/* The commit asked for by msg_commit finished: result 0 gives
   "250 2.0.0 Ok: queued as <id>", -1 gives 451 4.3.0. */
void session_commit_done(struct session *s, int result);

/* The verdict asked for by ops->auth. On success `user` is the login and
   `addresses` the sender addresses it owns (copied). */
void session_auth_done(struct session *s, enum session_auth_result result,
		       const char *user, const char *const *addresses,
		       size_t n_addresses);

/* The verdict asked for by ops->send_check. */
void session_send_done(struct session *s, enum session_send_result result);

/* After STARTTLS was answered (220) and the output flushed, the driver
   starts the TLS handshake. The session is parked until then. */
bool session_wants_tls(const struct session *s);
/* The handshake succeeded: everything known from before is forgotten
   (RFC 3207 4.2) and the client must say EHLO again. For implicit TLS
   (RFC 8314) call it before session_greet(). */
void session_tls_started(struct session *s, const char *version,
			 const char *cipher);

/* The current state's timeout expired: 421 4.4.2 and close. */
void session_timeout(struct session *s);

/* The server is stopping: idle sessions get 421 4.3.2 now, a session in
   a transaction finishes it and gets 421 at its next command. */
void session_shutdown(struct session *s);

/* Replies waiting to be sent; consume what was written. */
const char *session_output(const struct session *s, size_t *len_r);
void session_output_consume(struct session *s, size_t n);

/* Once the output is flushed, close the connection. */
bool session_is_closing(const struct session *s);
/* Parked: waiting for a commit; do not expect progress from input. */
bool session_is_parked(const struct session *s);
/* Input bytes held but not yet processed (bounded by the engine). */
size_t session_pending_input(const struct session *s);
/* Seconds the driver should wait for input in the current state. */
unsigned session_timeout_secs(const struct session *s);
/* Reading message content (DATA or BDAT): the timeout applies between two
   reads; otherwise it is a deadline for the whole command (a client that
   trickles a command byte by byte still meets it, THREATS X-01). */
bool session_in_content(const struct session *s);

/* Should the replies now waiting be held error-delay seconds first (the
   tarpit)? Asking clears the request. */
bool session_take_delay(struct session *s);

/* Log the disconnect line with the session's counters. `reason` is a
   word: quit, timeout, eof, error, shutdown. */
void session_log_disconnect(const struct session *s, const char *reason);

#endif
