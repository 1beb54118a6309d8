/*
 * session_state.c - what every part of the session engine shares: the one
 * state setter, the output buffer, table replies with their error counting,
 * and the mail transaction's reset. This file calls no other file of the
 * engine (session.c dispatches; session_cmd.c, session_data.c,
 * session_auth.c and session_sender.c call only what is here).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "smtp/session_int.h"

static const char *const session_state_names[SESSION_STATE_COUNT] = {
	"pregreet", "greeted", "ready", "mail",	  "rcpt",
	"data",	    "bdat",    "commit", "auth",  "auth-wait", "rcpt-wait",
	"tls-wait", "closed",
};

const char *
session_state_name(enum session_state state)
{
	return session_state_names[state];
}

/* --- state and output ------------------------------------------------ */

void
session_set_state(struct session *s, enum session_state state)
{
	if (s->state == state)
		return;
	log_debug(s->p.id, "state from=%s to=%s",
		  session_state_names[s->state], session_state_names[state]);
	s->state = state;
}

/*
 * Append to a growable buffer (doubling from `first` octets); aborts when
 * memory runs out, which in a worker loses only that worker's sessions.
 */
void
session_buf_append(char **buf, size_t *len, size_t *cap, size_t first,
		   const char *data, size_t n)
{
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : first;
		char *p;

		while (c < *len + n)
			c *= 2;
		p = realloc(*buf, c);
		if (p == NULL)
			abort();
		*buf = p;
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
}

/* Append raw reply text to the output buffer. Replies are small and
   bounded by the input that causes them, so this grows as needed. */
void
session_out(struct session *s, const char *text, size_t len)
{
	if (s->out_off > 0 && s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
	session_buf_append(&s->out, &s->out_len, &s->out_cap, 256, text, len);
}

/*
 * Append one formatted reply line (CRLF included in `fmt`). A reply line
 * is at most 512 octets (RFC 5321 4.5.3.1.5) and every value formatted
 * into one is bounded far below that (a hostname has at most 253); one
 * that would not fit is a bug: it is logged, and the client gets 451
 * 4.3.0 rather than a cut line or bytes past the buffer.
 */
void
session_outf(struct session *s, const char *fmt, ...)
{
	char line[REPLY_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		log_error(s->p.id, "reply-too-long length=%d", n);
		n = (int)reply_format(R_TEMP_FAIL, line, sizeof(line));
	}
	session_out(s, line, (size_t)n);
}

void
session_close(struct session *s)
{
	session_set_state(s, SESSION_CLOSED);
}

/* Answer with a table reply. Protocol errors and policy refusals count
   toward their limits; reaching one ends the session with 421 (THREATS
   P-05, X-02, N-01). */
void
session_reply(struct session *s, enum reply_id id)
{
	char line[REPLY_LINE_MAX];
	const struct reply *r = reply_get(id);
	size_t n = reply_format(id, line, sizeof(line));
	bool over = false;

	session_out(s, line, n);
	if (r->closes) {
		session_close(s);
		return;
	}
	if (r->counts == REPLY_COUNTS_ERROR)
		over = ++s->errors >= s->cfg->error_limit;
	else if (r->counts == REPLY_COUNTS_REJECT)
		over = ++s->rejects >= s->cfg->reject_limit;
	/* Past the soft limit every error costs the client time (THREATS
	   X-03, N-01), as Postfix's smtpd_error_sleep_time. */
	if (r->counts != REPLY_COUNTS_NONE && !over &&
	    s->errors + s->rejects > SESSION_SOFT_ERRORS)
		s->delay = s->cfg->error_delay > 0;
	if (over) {
		log_notice(s->p.id, "error-limit errors=%u rejects=%u",
			   s->errors, s->rejects);
		n = reply_format(R_TOO_MANY_ERRORS, line, sizeof(line));
		session_out(s, line, n);
		session_close(s);
	}
}

/* Is this a submission session still waiting for TLS (RFC 8314 3.3)? */
bool
session_needs_tls(const struct session *s)
{
	return s->p.role != ROLE_MX && !s->is_tls;
}

/* --- MAIL and RCPT ------------------------------------------------- */

/* The reply to a path or parameter the parser refused (MAIL, RCPT). */
enum reply_id
session_perr_reply(enum smtp_perr err, bool is_mail)
{
	switch (err) {
	case SMTP_PERR_OK:
		return R_SUCCESS;
	case SMTP_PERR_SYNTAX:
	case SMTP_PERR_NO_DOMAIN:
	case SMTP_PERR_TOO_LONG:
		return is_mail ? R_BAD_SENDER : R_BAD_RCPT;
	case SMTP_PERR_UTF8_UNDECLARED:
		return R_UTF8_UNDECLARED;
	case SMTP_PERR_BAD_UTF8:
		return R_BAD_UTF8;
	case SMTP_PERR_PARAM_SYNTAX:
		return R_BAD_PARAM;
	case SMTP_PERR_PARAM_UNKNOWN:
		return R_PARAM_UNKNOWN;
	case SMTP_PERR_SIZE_TOO_BIG:
		return R_TOO_BIG;
	}
	return R_SYNTAX;
}

/* One log line per MAIL or RCPT: the address escaped, the reply. */
void
session_log_addr(struct session *s, const char *event, const char *key,
		 const char *addr, size_t len, enum reply_id id)
{
	char esc[600];
	const struct reply *r = reply_get(id);

	log_info(s->p.id, "%s %s=%s code=%u status=%s", event, key,
		 log_escape(esc, sizeof(esc), addr, len, 300),
		 r->code, r->status ? r->status : "-");
}

/* --- pipelining (RFC 2920) ------------------------------------------ */

/* Must this client wait where RFC 2920 3.1 ends a group? Unauthenticated
   clients on mx do (Postfix smtpd_forbid_unauth_pipelining); submission
   clients are let through (they need AUTH before they can send). */
bool
session_must_sync(const struct session *s)
{
	return s->p.role == ROLE_MX && !s->has_auth;
}

/*
 * A command that ends a pipelining group (RFC 2920 3.1) was answered, or
 * for BDAT LAST its payload is in. Until the driver has taken the reply,
 * input is early: sent before the reply came. Input already waiting
 * behind the command is early too. Which octets are early depends only
 * on the order of commands and of the driver taking replies, never on
 * how the input was cut into session_input() calls.
 */
void
session_group_end(struct session *s, const char *verb)
{
	if (!session_must_sync(s) || s->state == SESSION_CLOSED)
		return;
	s->sync_wait = true;
	s->sync_after = verb;
	if (s->in_len > 0)
		s->early = true;
}

/*
 * Plain text came behind STARTTLS, before the handshake: it must never be
 * read as if it came through TLS (CVE-2011-0411, THREATS T-01). The
 * session ends after the 220, without another plain-text reply, and the
 * bytes are wiped.
 */
void
session_tls_injection(struct session *s)
{
	log_notice(s->p.id, "rejected reason=starttls-injection");
	if (s->in != NULL)
		explicit_bzero(s->in, s->in_len);
	s->in_len = 0;
	s->wants_tls = false;
	session_close(s);
}

/* --- transaction ----------------------------------------------------- */

void
session_tx_reset(struct session *s)
{
	struct session_tx *tx = &s->tx;

	if (tx->has_msg && s->ops->msg_abort != NULL)
		s->ops->msg_abort(s->ctx);
	/* Recipients counted for a message that was not sent are given
	   back (docs/sendlimit.md "When a recipient counts"). */
	if (tx->counted > 0 && !tx->committing && s->auth_user != NULL &&
	    s->ops->send_undo != NULL)
		s->ops->send_undo(s->ctx, s->auth_user, tx->counted);
	free(tx->pend_dir);
	for (size_t i = 0; i < tx->n_rcpts; i++) {
		free(tx->rcpt_addrs[i]);
		free(tx->rcpt_dirs[i]);
	}
	free(tx->rcpts);
	free(tx->rcpt_addrs);
	free(tx->rcpt_dirs);
	free(tx->from);
	memset(tx, 0, sizeof(*tx));
	s->stage_len = 0;
	s->bdat_left = 0;
	s->bdat_last = false;
	if (s->state == SESSION_MAIL || s->state == SESSION_RCPT ||
	    s->state == SESSION_RCPT_WAIT || s->state == SESSION_DATA ||
	    s->state == SESSION_BDAT)
		session_set_state(s, SESSION_READY);
}

/* Remember the first reason to refuse the message. */
void
session_tx_fail(struct session *s, enum reply_id id)
{
	if (!s->tx.failed) {
		s->tx.failed = true;
		s->tx.fail_reply = id;
	}
}
