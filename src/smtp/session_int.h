/*
 * session_int.h - what the files of the session engine share: the session
 * struct, its states and the helpers that change them. Not for others.
 */
#ifndef POSTERN_SESSION_INT_H
#define POSTERN_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "smtp/reply.h"
#include "smtp/sasl.h"
#include "smtp/session.h"
#include "smtp/smtp_parse.h"

/* RFC 5321 4.5.3.1.4: a command line is 512 octets with its CRLF. MAIL
   may be longer by what each extension parameter it carries allows. */
#define SESSION_CMD_MAX 512
#define SESSION_ALLOW_SIZE 26	  /* RFC 1870 3 (5) */
#define SESSION_ALLOW_BODY 16	  /* RFC 6152 2 (5), as RFC 1652 */
#define SESSION_ALLOW_SMTPUTF8 10 /* RFC 6531 3.4 (5) */
#define SESSION_ALLOW_AUTH 500	  /* RFC 4954 3 (5) */
#define SESSION_MAIL_MAX                                                       \
	(SESSION_CMD_MAX + SESSION_ALLOW_SIZE + SESSION_ALLOW_BODY +          \
	 SESSION_ALLOW_SMTPUTF8 + SESSION_ALLOW_AUTH)
/* The lines of an AUTH exchange may be longer (RFC 4954 4). */
#define SESSION_AUTH_LINE_MAX 12288
/* Input held while parked or before processing (pipelined commands). */
#define SESSION_INPUT_MAX (64 * 1024)
#define SESSION_STAGE_SIZE (16 * 1024)
#define SESSION_JUNK_LIMIT 100
/* Errors and refusals before each further one is answered slowly. */
#define SESSION_SOFT_ERRORS 10

enum session_state {
	SESSION_PREGREET = 0, /* connected, greeting not sent yet */
	SESSION_GREETED,      /* waiting for HELO/EHLO */
	SESSION_READY,	      /* HELO done, no transaction */
	SESSION_MAIL,	      /* MAIL accepted */
	SESSION_RCPT,	      /* at least one RCPT accepted */
	SESSION_DATA,	      /* reading DATA content */
	SESSION_BDAT,	      /* reading a BDAT chunk */
	SESSION_COMMIT,	      /* parked until session_commit_done() */
	SESSION_AUTH,	      /* SASL exchange: lines are responses */
	SESSION_AUTH_WAIT,    /* parked until session_auth_done() */
	SESSION_RCPT_WAIT,    /* parked until session_send_done() */
	SESSION_TLS_WAIT,     /* parked until session_tls_started() */
	SESSION_CLOSED,	      /* closing once the output is flushed */
	SESSION_STATE_COUNT
};


/* DATA framing states (dot-unstuffing, CRLF.CRLF), see
   session_data_scan(); the content rules are the same for BDAT. */
enum data_state {
	DATA_BOL = 0, /* at the beginning of a line */
	DATA_DOT,     /* "." at the beginning of a line */
	DATA_DOT_CR,  /* "." CR at the beginning of a line */
	DATA_TEXT,    /* inside a line */
	DATA_CR,      /* CR inside a line */
};

/* Octets held at the start of a header line until its field name is
   known: "Return-Path" and white space before the colon. */
#define SESSION_HOLD_MAX 64

/* The mail transaction: RSET frees this one thing. Why a message is
   refused at its end: the first reason wins. */
struct session_tx {
	char sender[SMTP_PATH_MAX + 1];
	struct spool_rcpt *rcpts;
	char **rcpt_addrs;
	char **rcpt_dirs;
	size_t n_rcpts;
	unsigned rcpt_count; /* accepted RCPT commands, duplicates too */
	unsigned nonrole_rcpts; /* accepted, not postmaster or abuse */
	unsigned counted; /* recipients the guard counted (send limits) */
	bool committing;  /* handed to msg_commit: no undo unless it fails */
	bool is_held;	  /* a send verdict said HOLD */
	/* The recipient waiting for the guard's verdict (RCPT_WAIT). */
	char pend_addr[SMTP_PATH_MAX + 1];
	char *pend_dir; /* its Maildir; NULL: remote */
	bool pend_nonrole;
	bool pend_known; /* already in the transaction: not counted again */
	bool local_sender;   /* mx, no AUTH, sender in our domains */
	bool smtputf8;
	bool is_bdat;	  /* BDAT seen: DATA no longer allowed */
	bool has_msg;	  /* msg_begin succeeded */
	bool failed;	  /* refused: skip content until the end */
	enum reply_id fail_reply;
	char queue_id[SPOOL_ID_MAX];
	uint64_t size;	  /* message octets (after unstuffing) */
	uint64_t written; /* octets handed to msg_write, header included */

	/* The line rules of content (session_data_emit). */
	bool last_cr;	  /* the last content octet was a CR */
	bool told;	  /* the refusal was answered (a BDAT chunk) */

	/* Header section tracking (RFC 5322 2.2). */
	bool in_header;
	uint64_t header_bytes;
	bool field_bol;	  /* at the start of a header line */
	bool holding;	  /* hold[] has the start of a field's line */
	bool dropping;	  /* in a dropped field (Return-Path:) */
	char hold[SESSION_HOLD_MAX];
	size_t hold_len;
	unsigned received;
	char hline[10]; /* first octets of the current line */
	size_t hline_len;
	bool hline_bol;

	/* The From: field(s), for the sender check of submission. */
	char *from;
	size_t from_len;
	unsigned from_fields;
	bool in_from;
	bool from_name;	/* the line began "From", then only spaces */
	bool from_overflow;
};

#define SESSION_FROM_MAX 2048 /* octets of From: kept for the check */

struct session {
	struct session_params p;
	const struct config *cfg;
	const struct session_ops *ops;
	void *ctx;

	enum session_state state;
	bool is_esmtp;
	bool shutting_down;
	bool discard_line; /* dropping an overlong line up to its CRLF */

	/* RFC 2920 3.1 for clients that must wait (session_must_sync). */
	bool sync_wait;	  /* a group-ending command's reply not yet taken */
	bool early;	  /* input came before that reply was taken */
	const char *sync_after; /* the verb that ended the group (log) */
	bool in_overflow; /* more than SESSION_INPUT_MAX held while parked */
	char helo[SMTP_DOMAIN_MAX + 1];

	/* TLS (RFC 3207, RFC 8314). */
	bool is_tls;
	bool wants_tls; /* STARTTLS answered: the driver starts TLS */
	char tls_version[32];
	char tls_cipher[64];

	/* AUTH (RFC 4954). */
	struct sasl sasl;
	bool has_auth;
	char *auth_user;
	char **auth_addrs; /* the user's name and aliases */
	size_t n_auth_addrs;
	unsigned auth_failures;

	/* Unprocessed input. */
	char *in;
	size_t in_len, in_cap;

	/* Replies not yet taken by the driver. */
	char *out;
	size_t out_len, out_cap, out_off;

	/* DATA / BDAT content. */
	enum data_state dstate;
	uint64_t bdat_left; /* payload octets still expected */
	bool bdat_last;
	bool bdat_orphan; /* chunk refused outright: skip, then reply */
	enum reply_id bdat_reply;
	enum session_state bdat_return; /* state after the chunk */
	char *stage; /* content waiting for msg_write */
	size_t stage_len;

	struct session_tx tx;

	unsigned errors;
	unsigned rejects;
	bool delay;	/* hold the output error-delay seconds (tarpit) */
	unsigned junk;
	unsigned commands;
	unsigned messages;
};

/*
 * Who calls whom: session.c (public entry points, input framing, the verb
 * table) calls the files below; session_cmd.c, session_data.c and
 * session_auth.c call only session_state.c and session_sender.c, which
 * call no other file of the engine.
 */

/* session_state.c: shared helpers */
const char *session_state_name(enum session_state state);
void session_set_state(struct session *s, enum session_state state);
void session_buf_append(char **buf, size_t *len, size_t *cap, size_t first,
			const char *data, size_t n);
void session_out(struct session *s, const char *text, size_t len);
void session_outf(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void session_reply(struct session *s, enum reply_id id);
void session_close(struct session *s);
bool session_needs_tls(const struct session *s);
bool session_must_sync(const struct session *s);
void session_group_end(struct session *s, const char *verb);
void session_tls_injection(struct session *s);
void session_tx_reset(struct session *s);
void session_tx_fail(struct session *s, enum reply_id id);
enum reply_id session_perr_reply(enum smtp_perr err, bool is_mail);
void session_log_addr(struct session *s, const char *event, const char *key,
		      const char *addr, size_t len, enum reply_id id);

/* session_sender.c: who may send what (shared) */
enum reply_id session_sender_check(struct session *s, const char *addr);
void session_sender_from_octet(struct session *s, unsigned char c,
			       bool start);
enum reply_id session_sender_check_from(struct session *s);

/* session.c */
void session_process(struct session *s);

/* session_cmd.c: the verbs of the verb table */
void session_cmd_helo(struct session *s, const struct smtp_command *cmd);
void session_cmd_mail(struct session *s, const struct smtp_command *cmd);
void session_cmd_rset(struct session *s, const struct smtp_command *cmd);
void session_cmd_noop(struct session *s, const struct smtp_command *cmd);
void session_cmd_quit(struct session *s, const struct smtp_command *cmd);
void session_cmd_help(struct session *s, const struct smtp_command *cmd);
void session_cmd_vrfy(struct session *s, const struct smtp_command *cmd);
void session_cmd_expn(struct session *s, const struct smtp_command *cmd);
void session_cmd_unimplemented(struct session *s,
			       const struct smtp_command *cmd);
void session_cmd_unknown(struct session *s, const struct smtp_command *cmd);
void session_cmd_non_smtp(struct session *s, const struct smtp_command *cmd);

/* session_rcpt.c: RCPT, the recipient decision */
void session_rcpt_cmd(struct session *s, const struct smtp_command *cmd);
bool session_rcpt_verdict(struct session *s, enum session_send_result r);

/* session_data.c: DATA, BDAT and the content path */
void session_data_cmd(struct session *s, const struct smtp_command *cmd);
void session_data_cmd_bdat(struct session *s, const struct smtp_command *cmd);
size_t session_data_scan(struct session *s, const unsigned char *p,
			 size_t len, bool *end_r);
void session_data_bdat_take(struct session *s, const unsigned char *p,
			    size_t n);
void session_data_bdat_done(struct session *s);
void session_data_end(struct session *s);
void session_data_committed(struct session *s, int result);

/* session_auth.c: STARTTLS, AUTH */
void session_auth_starttls(struct session *s, const struct smtp_command *cmd);
void session_auth_cmd(struct session *s, const struct smtp_command *cmd);
void session_auth_line(struct session *s, const char *line, size_t len);
void session_auth_line_too_long(struct session *s);
bool session_auth_verdict(struct session *s, enum session_auth_result result,
			  const char *user, const char *const *addresses,
			  size_t n_addresses);
bool session_auth_tls_started(struct session *s, const char *version,
			      const char *cipher);
void session_auth_reset(struct session *s);

#endif
