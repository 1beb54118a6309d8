/*
 * session.c - the SMTP state machine. See session.h for the contract.
 *
 * Framing (RFC 5321 2.3.8, 4.1.1.4): a command line ends only at CRLF. A
 * line holding a bare CR or LF, or a NUL, is refused whole with one reply,
 * so it can never be split into two commands (THREATS P-01, P-03). In DATA
 * only CRLF "." CRLF ends the message; bare CR, bare LF or NUL anywhere in
 * the content make the whole message refused at the real terminator
 * (THREATS D-01), so no smuggling sequence ends a message early.
 *
 * This file holds the public entry points, the input framing and the verb
 * table; it is the only file of the engine that calls the others:
 * session_cmd.c (HELO, MAIL and small verbs), session_rcpt.c (RCPT),
 * session_data.c (DATA, BDAT and the content path), session_auth.c
 * (STARTTLS, AUTH). Those call only the shared helpers of session_state.c
 * and session_sender.c.
 */
#include "smtp/session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "smtp/session_int.h"

/*
 * More than SESSION_INPUT_MAX octets came while parked: the client is
 * far ahead of the replies, further than any pipelined group goes. Once
 * it has the reply it waited for, it gets 554 5.5.0 and the session ends.
 */
static bool
session_overflowed(struct session *s)
{
	if (!s->in_overflow || s->state == SESSION_CLOSED)
		return false;
	log_notice(s->p.id, "rejected reason=pipelining-overflow");
	explicit_bzero(s->in, s->in_len);
	s->in_len = 0;
	session_tx_reset(s);
	session_reply(s, R_SYNC);
	return true;
}

void
session_commit_done(struct session *s, int result)
{
	if (s->state != SESSION_COMMIT)
		return;
	session_data_committed(s, result);
	if (s->state == SESSION_CLOSED || session_overflowed(s))
		return;
	session_process(s);
}

void
session_auth_done(struct session *s, enum session_auth_result result,
		  const char *user, const char *const *addresses,
		  size_t n_addresses)
{
	if (session_auth_verdict(s, result, user, addresses, n_addresses) &&
	    !session_overflowed(s))
		session_process(s);
}

void
session_send_done(struct session *s, enum session_send_result result)
{
	if (session_rcpt_verdict(s, result) && !session_overflowed(s))
		session_process(s);
}

void
session_tls_started(struct session *s, const char *version,
		    const char *cipher)
{
	if (session_auth_tls_started(s, version, cipher))
		session_process(s);
}

/* --- commands -------------------------------------------------------- */

enum {
	CMD_ENDS_GROUP = 1 << 0, /* RFC 2920 3.1: last in a pipelined group */
	CMD_NO_ARGS = 1 << 1,	 /* takes no argument */
	CMD_JUNK = 1 << 2,	 /* counts toward the junk-command limit */
	CMD_PRE_TLS = 1 << 3,	 /* allowed before TLS on submission */
};
/* HELO is not in RFC 2920's list, but a client that said HELO was never
   offered PIPELINING (RFC 2920 2): it must wait anyway (as Postfix). */

struct session_cmd {
	enum smtp_verb verb;
	unsigned flags;
	void (*run)(struct session *s, const struct smtp_command *cmd);
};

/* The verb table: flags per RFC 2920 3.1 and the action. */
static const struct session_cmd session_cmds[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = {SMTP_VERB_UNKNOWN, CMD_PRE_TLS,
			       session_cmd_unknown},
	[SMTP_VERB_HELO] = {SMTP_VERB_HELO, CMD_ENDS_GROUP | CMD_PRE_TLS,
			    session_cmd_helo},
	[SMTP_VERB_EHLO] = {SMTP_VERB_EHLO, CMD_ENDS_GROUP | CMD_PRE_TLS,
			    session_cmd_helo},
	[SMTP_VERB_MAIL] = {SMTP_VERB_MAIL, 0, session_cmd_mail},
	[SMTP_VERB_RCPT] = {SMTP_VERB_RCPT, 0, session_rcpt_cmd},
	[SMTP_VERB_DATA] = {SMTP_VERB_DATA, CMD_ENDS_GROUP | CMD_NO_ARGS,
			    session_data_cmd},
	[SMTP_VERB_BDAT] = {SMTP_VERB_BDAT, 0, session_data_cmd_bdat},
	[SMTP_VERB_RSET] = {SMTP_VERB_RSET,
			    CMD_NO_ARGS | CMD_JUNK | CMD_PRE_TLS,
			    session_cmd_rset},
	[SMTP_VERB_NOOP] = {SMTP_VERB_NOOP,
			    CMD_ENDS_GROUP | CMD_JUNK | CMD_PRE_TLS,
			    session_cmd_noop},
	[SMTP_VERB_QUIT] = {SMTP_VERB_QUIT,
			    CMD_ENDS_GROUP | CMD_NO_ARGS | CMD_PRE_TLS,
			    session_cmd_quit},
	[SMTP_VERB_HELP] = {SMTP_VERB_HELP, CMD_JUNK | CMD_PRE_TLS,
			    session_cmd_help},
	[SMTP_VERB_VRFY] = {SMTP_VERB_VRFY, CMD_ENDS_GROUP | CMD_JUNK,
			    session_cmd_vrfy},
	[SMTP_VERB_EXPN] = {SMTP_VERB_EXPN, CMD_ENDS_GROUP | CMD_JUNK,
			    session_cmd_expn},
	[SMTP_VERB_STARTTLS] = {SMTP_VERB_STARTTLS,
				CMD_ENDS_GROUP | CMD_NO_ARGS | CMD_PRE_TLS,
				NULL},
	[SMTP_VERB_AUTH] = {SMTP_VERB_AUTH, CMD_ENDS_GROUP, session_auth_cmd},
	[SMTP_VERB_TURN] = {SMTP_VERB_TURN, CMD_ENDS_GROUP | CMD_PRE_TLS,
			    session_cmd_unimplemented},
	[SMTP_VERB_UNIMPLEMENTED] = {SMTP_VERB_UNIMPLEMENTED, CMD_PRE_TLS,
				     session_cmd_unimplemented},
	[SMTP_VERB_NON_SMTP] = {SMTP_VERB_NON_SMTP, CMD_PRE_TLS,
				session_cmd_non_smtp},
};

/*
 * RFC 2920 3.1: a client that must wait (session_must_sync) and sent this
 * line before the reply to a group-ending command came is refused, and
 * the session ends. A QUIT is let through: it ends the session anyway
 * (Postfix's SMTP client sends "." and QUIT together).
 */
static bool
session_pipelined(struct session *s, const char *line, size_t len)
{
	if (!s->early || !session_must_sync(s) ||
	    (len == 4 && strncasecmp(line, "QUIT", 4) == 0))
		return false;
	log_notice(s->p.id, "rejected reason=pipelining after=%s",
		   s->sync_after != NULL ? s->sync_after : "-");
	session_tx_reset(s);
	session_reply(s, R_SYNC);
	return true;
}

/* Run a command through the checks every verb shares, then its row. */
static void
session_run(struct session *s, const struct smtp_command *cmd,
	    const struct session_cmd *c)
{
	if ((c->flags & CMD_NO_ARGS) && cmd->args_len > 0) {
		session_reply(s, R_NO_ARGS);
		return;
	}
	/* RFC 8314 and THREATS T-04: on a submission port only what leads
	   to TLS works in clear text. A BDAT's payload cannot be trusted to
	   be skipped: hang up. */
	if (session_needs_tls(s) && !(c->flags & CMD_PRE_TLS)) {
		session_tx_reset(s);
		session_reply(s, R_NEED_TLS);
		if (cmd->verb == SMTP_VERB_BDAT)
			session_close(s);
		return;
	}
	if (cmd->verb == SMTP_VERB_STARTTLS) {
		session_auth_starttls(s, cmd);
		return;
	}
	c->run(s, cmd);
	/* NOOP, RSET, VRFY, HELP past the junk limit count as errors
	   (THREATS X-03). */
	if ((c->flags & CMD_JUNK) && ++s->junk > SESSION_JUNK_LIMIT &&
	    s->state != SESSION_CLOSED && ++s->errors >= s->cfg->error_limit) {
		char r[REPLY_LINE_MAX];

		log_notice(s->p.id, "junk-limit commands=%u", s->junk);
		session_out(s, r, reply_format(R_TOO_MANY_ERRORS, r, sizeof(r)));
		session_close(s);
	}
}

/* One complete command line (CRLF removed). */
static void
session_command(struct session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const struct session_cmd *c;

	s->commands++;
	if (session_pipelined(s, line, len))
		return;
	if (memchr(line, '\0', len) != NULL) {
		session_reply(s, R_NUL);
		return;
	}
	if (memchr(line, '\r', len) != NULL || memchr(line, '\n', len)) {
		log_notice(s->p.id, "rejected reason=bare-newline-in-command");
		session_reply(s, R_BARE_LF_CMD);
		return;
	}
	smtp_parse_command(line, len, &cmd);
	c = &session_cmds[cmd.verb];
	if (s->shutting_down && s->state <= SESSION_READY &&
	    cmd.verb != SMTP_VERB_QUIT) {
		session_reply(s, R_SHUTDOWN);
		return;
	}
	/* RFC 5321 4.5.3.1.4; MAIL checks its own allowance. */
	if (len + 2 > SESSION_CMD_MAX && cmd.verb != SMTP_VERB_MAIL) {
		session_reply(s, R_LINE_TOO_LONG);
		return;
	}
	session_run(s, &cmd, c);
	/* Success or failure, the command ends its group (RFC 2920 3.1);
	   STARTTLS has its own rule (session_tls_injection). */
	if ((c->flags & CMD_ENDS_GROUP) && cmd.verb != SMTP_VERB_STARTTLS)
		session_group_end(s, smtp_verb_name(cmd.verb));
}

/* --- input ----------------------------------------------------------- */

static void
session_in_consume(struct session *s, size_t n)
{
	if (n >= s->in_len) {
		s->in_len = 0;
		return;
	}
	memmove(s->in, s->in + n, s->in_len - n);
	s->in_len -= n;
}

/* Find CRLF in the input; returns the offset of the CR or -1. */
static long
session_find_crlf(const struct session *s)
{
	const char *p = s->in, *end = s->in + s->in_len;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));

		if (lf == NULL)
			return -1;
		if (lf > s->in && lf[-1] == '\r')
			return (long)(lf - 1 - s->in);
		p = lf + 1;
	}
	return -1;
}

/*
 * The longest line worth holding: the longest MAIL command, or in an AUTH
 * exchange its longest line. A longer line gets its 500 as soon as it
 * passes this, and the rest of it is dropped up to its CRLF unread.
 */
static size_t
session_line_max(const struct session *s)
{
	return s->state == SESSION_AUTH ? SESSION_AUTH_LINE_MAX
					: SESSION_MAIL_MAX - 2;
}

/* A line too long to hold: 500, or for AUTH 500 5.5.6 (RFC 4954 4). */
static void
session_line_too_long(struct session *s)
{
	log_notice(s->p.id, "rejected reason=line-too-long");
	if (s->state == SESSION_AUTH)
		session_auth_line_too_long(s);
	else
		session_reply(s, R_LINE_TOO_LONG);
}

/* Process command lines until input runs out or the mode changes. */
static bool
session_process_line(struct session *s)
{
	long crlf = session_find_crlf(s);

	if (s->discard_line) {
		if (crlf < 0) {
			/* Keep a trailing CR: its LF may come next. */
			size_t keep = s->in_len > 0 &&
					      s->in[s->in_len - 1] == '\r'
				      ? 1
				      : 0;
			session_in_consume(s, s->in_len - keep);
			return false;
		}
		session_in_consume(s, (size_t)crlf + 2);
		s->discard_line = false;
		return true;
	}
	if (crlf < 0) {
		if (s->in_len > session_line_max(s)) {
			s->discard_line = true;
			session_line_too_long(s);
			return s->state != SESSION_CLOSED;
		}
		return false;
	}
	if ((size_t)crlf > session_line_max(s)) {
		session_in_consume(s, (size_t)crlf + 2);
		session_line_too_long(s);
		return true;
	}
	{
		char line[SESSION_AUTH_LINE_MAX + 1];
		size_t len = (size_t)crlf;

		memcpy(line, s->in, len);
		session_in_consume(s, len + 2);
		if (s->state == SESSION_AUTH)
			session_auth_line(s, line, len);
		else
			session_command(s, line, len);
		/* AUTH lines carry credentials: leave no copy behind. */
		explicit_bzero(line, len);
		explicit_bzero(s->in + s->in_len, len + 2);
	}
	return true;
}

static bool
session_process_data(struct session *s)
{
	bool end;
	size_t n = session_data_scan(s, (const unsigned char *)s->in,
				     s->in_len, &end);

	session_in_consume(s, n);
	if (!end)
		return false;
	session_data_end(s);
	return true;
}

static bool
session_process_bdat(struct session *s)
{
	size_t n = s->in_len;

	if (n > s->bdat_left)
		n = (size_t)s->bdat_left;
	session_data_bdat_take(s, (const unsigned char *)s->in, n);
	session_in_consume(s, n);
	if (s->bdat_left > 0)
		return false;
	session_data_bdat_done(s);
	return true;
}

void
session_process(struct session *s)
{
	bool progress = true;

	while (progress && s->in_len > 0) {
		switch (s->state) {
		case SESSION_PREGREET:
		case SESSION_CLOSED:
		case SESSION_COMMIT:
		case SESSION_AUTH_WAIT:
		case SESSION_RCPT_WAIT:
		case SESSION_TLS_WAIT:
			return;
		case SESSION_DATA:
			/* Content sent before the 354 came (THREATS P-06). */
			if (s->early && session_must_sync(s)) {
				log_notice(s->p.id, "rejected reason=pipelining "
						    "after=DATA");
				session_tx_reset(s);
				session_reply(s, R_SYNC);
				return;
			}
			progress = session_process_data(s);
			break;
		case SESSION_BDAT:
			progress = session_process_bdat(s);
			break;
		default:
			progress = session_process_line(s);
			break;
		}
	}
	/* A zero-length final chunk needs no input to complete. */
	if (s->state == SESSION_BDAT && s->bdat_left == 0)
		session_data_bdat_done(s);
}

/*
 * Feed input in slices, so that a large write from the client never makes
 * a large buffer here: each slice is processed before the next is taken.
 * While parked, input is held up to SESSION_INPUT_MAX and processed once
 * the reply came (the driver stops reading a submission client then).
 */
void
session_input(struct session *s, const void *buf, size_t len)
{
	const char *p = buf;

	if (len > 0 && s->sync_wait)
		s->early = true;
	while (len > 0 && s->state != SESSION_CLOSED) {
		size_t n = len < SESSION_STAGE_SIZE ? len : SESSION_STAGE_SIZE;

		if (s->state == SESSION_PREGREET) {
			log_notice(s->p.id, "rejected reason=pregreet");
			session_reply(s, R_PREGREET);
			return;
		}
		if (s->state == SESSION_TLS_WAIT) {
			session_tls_injection(s);
			return;
		}
		if (session_is_parked(s) &&
		    (s->in_overflow || s->in_len + n > SESSION_INPUT_MAX)) {
			s->in_overflow = true;
			return;
		}
		session_buf_append(&s->in, &s->in_len, &s->in_cap, 1024, p, n);
		p += n;
		len -= n;
		session_process(s);
	}
	/* Give back a large buffer once it is drained (idle memory). */
	if (s->in_len == 0 && s->in_cap > 8192) {
		free(s->in);
		s->in = NULL;
		s->in_cap = 0;
	}
}

/* --- life cycle ------------------------------------------------------ */

struct session *
session_new(const struct session_params *params,
	    const struct session_ops *ops, void *ctx)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		abort();
	s->p = *params;
	s->cfg = params->cfg;
	s->ops = ops;
	s->ctx = ctx;
	s->state = SESSION_PREGREET;
	return s;
}

void
session_free(struct session **sp)
{
	struct session *s = *sp;

	if (s == NULL)
		return;
	if (s->state != SESSION_COMMIT)
		session_tx_reset(s);
	else {
		/* The driver's commit is still running: it owns the
		   message; just drop our copy of the envelope. */
		s->tx.has_msg = false;
		session_tx_reset(s);
	}
	session_auth_reset(s);
	if (s->in != NULL)
		explicit_bzero(s->in, s->in_cap);
	free(s->in);
	free(s->out);
	free(s->stage);
	free(s);
	*sp = NULL;
}

void
session_greet(struct session *s)
{
	if (s->state != SESSION_PREGREET)
		return;
	/* RFC 5321 4.2: no software name or version (THREATS N-02). */
	session_outf(s, "220 %s ESMTP\r\n", s->cfg->hostname);
	session_set_state(s, SESSION_GREETED);
}

void
session_timeout(struct session *s)
{
	if (s->state == SESSION_CLOSED)
		return;
	log_info(s->p.id, "timeout state=%s", session_state_name(s->state));
	if (s->state != SESSION_COMMIT)
		session_tx_reset(s);
	session_reply(s, R_TIMEOUT);
}

void
session_shutdown(struct session *s)
{
	s->shutting_down = true;
	if (s->state == SESSION_GREETED || s->state == SESSION_READY ||
	    s->state == SESSION_PREGREET)
		session_reply(s, R_SHUTDOWN);
}

const char *
session_output(const struct session *s, size_t *len_r)
{
	*len_r = s->out_len - s->out_off;
	return s->out + s->out_off;
}

void
session_output_consume(struct session *s, size_t n)
{
	s->out_off += n;
	if (s->out_off >= s->out_len) {
		/* Every reply produced is taken: a client that must wait
		   may now send (parked, the awaited reply is still to
		   come). */
		if (!session_is_parked(s))
			s->sync_wait = false;
		s->out_off = s->out_len = 0;
		if (s->out_cap > 4096) {
			free(s->out);
			s->out = NULL;
			s->out_cap = 0;
		}
	}
}

bool
session_is_closing(const struct session *s)
{
	return s->state == SESSION_CLOSED;
}

bool
session_is_parked(const struct session *s)
{
	return s->state == SESSION_COMMIT || s->state == SESSION_AUTH_WAIT ||
	       s->state == SESSION_RCPT_WAIT || s->state == SESSION_TLS_WAIT;
}

size_t
session_pending_input(const struct session *s)
{
	return s->in_len;
}

unsigned
session_timeout_secs(const struct session *s)
{
	if (s->state == SESSION_DATA || s->state == SESSION_BDAT)
		return s->cfg->timeout_data;
	return s->cfg->timeout_command;
}

bool
session_take_delay(struct session *s)
{
	bool d = s->delay;

	s->delay = false;
	return d;
}

bool
session_in_content(const struct session *s)
{
	return s->state == SESSION_DATA || s->state == SESSION_BDAT;
}

void
session_log_disconnect(const struct session *s, const char *reason)
{
	log_info(s->p.id,
		 "disconnect reason=%s commands=%u errors=%u rejects=%u "
		 "messages=%u",
		 reason, s->commands, s->errors, s->rejects, s->messages);
}
