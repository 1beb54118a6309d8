/*
 * session_data.c - the content path: the DATA and BDAT verbs, the content
 * scanner (dot-unstuffing, bare CR/LF and NUL, RFC 5321 4.1.1.4 and 4.5.2),
 * the header section watch (size, Received hops, From:), the Received
 * header, and the end of a message (refuse or commit). Called from
 * session.c; calls only the shared helpers of session_state.c and
 * session_sender.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "smtp/session_int.h"

static int
session_data_flush(struct session *s)
{
	if (s->stage_len == 0)
		return 0;
	if (!s->tx.failed && s->tx.has_msg) {
		if (s->ops->msg_write(s->ctx, s->stage, s->stage_len) < 0)
			session_tx_fail(s, R_TEMP_FAIL);
		else
			s->tx.written += s->stage_len;
	}
	s->stage_len = 0;
	return 0;
}

/* Stage one octet for msg_write. */
static void
session_data_stage(struct session *s, unsigned char c)
{
	s->stage[s->stage_len++] = (char)c;
	if (s->stage_len == SESSION_STAGE_SIZE)
		session_data_flush(s);
}

/*
 * Watch the header fields that are kept: count Received fields (loop
 * detection, RFC 5321 6.3) and collect From: for the sender check. Lines
 * end at CRLF only: the line rules refuse any other line end before an
 * octet gets here.
 */
static void
session_data_watch(struct session *s, unsigned char c)
{
	struct session_tx *tx = &s->tx;

	if (tx->hline_bol) {
		tx->hline_bol = false;
		tx->hline_len = 0;
		tx->from_name = false;
		/* A field ends where a line does not continue it. */
		if (c != ' ' && c != '\t')
			tx->in_from = false;
	}
	if (tx->in_from)
		session_sender_from_octet(s, c, false);
	if (c == '\n') {
		tx->hline_bol = true;
		return;
	}
	if (tx->hline_len < sizeof(tx->hline) || tx->from_name) {
		if (tx->hline_len < sizeof(tx->hline))
			tx->hline[tx->hline_len] = (char)c;
		tx->hline_len++;
		if (tx->hline_len == 9 &&
		    strncasecmp(tx->hline, "Received:", 9) == 0) {
			tx->received++;
			if (tx->received > s->cfg->hop_limit)
				session_tx_fail(s, R_LOOP);
		}
	}
	/* "From:", also in the obsolete form with white space before the
	   colon (RFC 5322 4.5.8), however many: a second From field must
	   not hide from the check. */
	if (tx->hline_len >= 4 && !tx->in_from && s->has_auth &&
	    strncasecmp(tx->hline, "From", 4) == 0) {
		if (tx->hline_len == 4)
			tx->from_name = true;
		if (tx->from_name && c == ':' && tx->hline_len > 4) {
			tx->from_name = false;
			session_sender_from_octet(s, c, true);
		} else if (tx->from_name && tx->hline_len > 4 && c != ' ' &&
			   c != '\t') {
			tx->from_name = false;
		}
	}
}

/* A header octet that is kept: watched, then staged. */
static void
session_data_keep(struct session *s, unsigned char c)
{
	session_data_watch(s, c);
	session_data_stage(s, c);
}

/*
 * Is the held start of a line the name of a Return-Path field,
 * "Return-Path" *WSP ":" in any case (RFC 5322 3.6.7, 4.5.8)? 1: yes,
 * 0: it may still become one, -1: it cannot. A name followed by more
 * white space than the hold keeps is taken for one: such a line is a
 * Return-Path field in the obsolete form or no field at all.
 */
static int
session_data_is_return_path(const struct session_tx *tx)
{
	static const char name[] = "return-path";
	const size_t name_len = sizeof(name) - 1;
	size_t n = tx->hold_len;
	char last = tx->hold[n - 1];

	for (size_t i = 0; i < n && i < name_len; i++) {
		char c = tx->hold[i];

		if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != name[i])
			return -1;
	}
	if (n <= name_len)
		return 0;
	for (size_t i = name_len; i + 1 < n; i++)
		if (tx->hold[i] != ' ' && tx->hold[i] != '\t')
			return -1;
	if (last == ':')
		return 1;
	if (last != ' ' && last != '\t')
		return -1;
	return n == SESSION_HOLD_MAX ? 1 : 0;
}

/* The held octets are not a Return-Path: keep them. */
static void
session_data_release(struct session *s)
{
	struct session_tx *tx = &s->tx;

	tx->holding = false;
	for (size_t i = 0; i < tx->hold_len; i++)
		session_data_keep(s, (unsigned char)tx->hold[i]);
	tx->hold_len = 0;
}

/*
 * One octet of the header section (it ends at the first empty line):
 * its size is capped (THREATS D-05), and a Return-Path field the client
 * sent is dropped with its folded lines, since the delivering MTA adds
 * the one that counts (RFC 5321 4.4). The start of each field's line is
 * held until its name is known.
 */
static void
session_data_header(struct session *s, unsigned char c)
{
	struct session_tx *tx = &s->tx;

	if (++tx->header_bytes > s->cfg->header_size_limit)
		session_tx_fail(s, R_HEADER_TOO_BIG);
	if (tx->field_bol) {
		tx->field_bol = false;
		if (c == '\r') { /* the empty line: the body follows */
			tx->in_header = false;
			tx->in_from = false;
			session_data_stage(s, c);
			return;
		}
		if (c != ' ' && c != '\t') { /* a new field */
			tx->dropping = false;
			tx->holding = true;
			tx->hold_len = 0;
		}
	}
	if (c == '\n')
		tx->field_bol = true;
	if (tx->dropping)
		return;
	if (!tx->holding) {
		session_data_keep(s, c);
		return;
	}
	tx->hold[tx->hold_len++] = (char)c;
	switch (session_data_is_return_path(tx)) {
	case 0:
		return;
	case 1:
		tx->holding = false;
		tx->hold_len = 0;
		tx->dropping = true;
		log_info(s->p.id, "dropped header=return-path");
		return;
	default:
		session_data_release(s);
	}
}

/*
 * One octet of content as stored (DATA after dot-unstuffing, BDAT as
 * sent): one set of rules for both. CR and LF only as CRLF and no NUL
 * (RFC 5321 2.3.8, 4.1.1.4; THREATS D-01), else the whole message is
 * refused at its end; the size limit; the header section. Nothing is
 * looked at once the message is refused.
 */
static void
session_data_emit(struct session *s, unsigned char c)
{
	struct session_tx *tx = &s->tx;

	if (tx->failed)
		return;
	if (c == '\0')
		session_tx_fail(s, R_NUL_DATA);
	else if (tx->last_cr != (c == '\n'))
		session_tx_fail(s, R_BARE_LF_DATA);
	tx->last_cr = c == '\r';
	if (tx->failed)
		return;
	tx->size++;
	if (tx->size > s->cfg->max_message_size) {
		session_tx_fail(s, R_TOO_BIG);
		return;
	}
	if (tx->in_header)
		session_data_header(s, c);
	else
		session_data_stage(s, c);
}

/* Queue the Received header (RFC 5321 4.4) as the first content. */
static void
session_data_received(struct session *s)
{
	char date[64], helo[SMTP_DOMAIN_MAX + 1], buf[1400], proto[16];
	char tls[160];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* The HELO name was validated; neuter anything that could still
	   confuse a header parser (as Postfix does), THREATS F-03. */
	n = 0;
	for (const char *p = s->helo; *p != '\0' && n < SMTP_DOMAIN_MAX; p++)
		helo[n++] = (*p > 0x20 && *p < 0x7f &&
			     strchr("<>()\\\";@", *p) == NULL)
				    ? *p
				    : '?';
	helo[n] = '\0';
	/* RFC 3848: ESMTPS with TLS, ESMTPSA with TLS and AUTH; RFC 6531
	   3.7.3: UTF8SMTP for SMTPUTF8. */
	snprintf(proto, sizeof(proto), "%s%s%s%s",
		 s->tx.smtputf8 ? "UTF8SMTP" : s->is_esmtp ? "ESMTP" : "SMTP",
		 s->is_tls ? "S" : "", s->has_auth ? "A" : "", "");
	if (s->is_tls)
		snprintf(tls, sizeof(tls), "\r\n\t(using %s with cipher %s)",
			 s->tls_version, s->tls_cipher);
	else
		tls[0] = '\0';
	if (s->tx.n_rcpts == 1)
		n = snprintf(buf, sizeof(buf),
			     "Received: from %s ([%s])%s\r\n"
			     "\tby %s with %s id %s\r\n"
			     "\tfor <%s>; %s\r\n",
			     helo, s->p.client_addr, tls, s->cfg->hostname,
			     proto, s->tx.queue_id, s->tx.rcpt_addrs[0], date);
	else
		n = snprintf(buf, sizeof(buf),
			     "Received: from %s ([%s])%s\r\n"
			     "\tby %s with %s id %s; %s\r\n",
			     helo, s->p.client_addr, tls, s->cfg->hostname,
			     proto, s->tx.queue_id, date);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		session_tx_fail(s, R_TEMP_FAIL);
		return;
	}
	if (s->ops->msg_write(s->ctx, buf, (size_t)n) < 0)
		session_tx_fail(s, R_TEMP_FAIL);
	else
		s->tx.written += (size_t)n;
}

/* Open the message at the driver: DATA, or the first BDAT chunk. */
static int
session_data_begin(struct session *s)
{
	struct session_tx *tx = &s->tx;

	if (s->ops->msg_begin(s->ctx, tx->queue_id) < 0) {
		log_warning(s->p.id, "rejected reason=spool-open-failed");
		return -1;
	}
	tx->has_msg = true;
	tx->in_header = true;
	tx->field_bol = true;
	tx->hline_bol = true;
	if (s->stage == NULL) {
		s->stage = malloc(SESSION_STAGE_SIZE);
		if (s->stage == NULL)
			abort();
	}
	session_data_received(s);
	return 0;
}

/* Answer a refused message. A BDAT message refused at one chunk counts
   once toward reject-limit, however many chunks follow it. */
static void
session_data_refuse(struct session *s, enum reply_id id, bool told)
{
	char line[REPLY_LINE_MAX];

	if (!told) {
		session_reply(s, id);
		return;
	}
	session_out(s, line, reply_format(id, line, sizeof(line)));
}

/* The message ended (CRLF.CRLF, or BDAT LAST): refuse it or commit it. */
void
session_data_end(struct session *s)
{
	struct session_tx *tx = &s->tx;
	struct session_envelope env;

	/* Content that ends in the middle of a field name (BDAT), or in a
	   CR (BDAT; DATA always ends in CRLF). */
	if (tx->holding && !tx->failed)
		session_data_release(s);
	if (tx->last_cr)
		session_tx_fail(s, R_BARE_LF_DATA);
	session_data_flush(s);
	if (tx->failed || !tx->has_msg) {
		enum reply_id id = tx->failed ? tx->fail_reply : R_TEMP_FAIL;
		const struct reply *r = reply_get(id);
		bool told = tx->told;

		log_info(s->p.id, "rejected reason=\"%s\" code=%u status=%s",
			 r->text, r->code, r->status ? r->status : "-");
		session_tx_reset(s);
		session_data_refuse(s, id, told);
		return;
	}
	/* Mail to postmaster or abuse alone is not held to the From:
	   check: a user reports spam by redirecting it, its From: kept. */
	if (s->has_auth && s->cfg->from_header_check &&
	    tx->nonrole_rcpts > 0) {
		enum reply_id id = session_sender_check_from(s);

		if (id != R_SUCCESS) {
			log_notice(s->p.id, "rejected reason=from-not-owned "
					    "user=%s",
				   s->auth_user);
			session_tx_reset(s);
			session_reply(s, id);
			return;
		}
	}
	env.sender = tx->sender;
	env.rcpts = tx->rcpts;
	env.n_rcpts = tx->n_rcpts;
	env.size = tx->written;
	env.auth_user = s->has_auth ? s->auth_user : NULL;
	env.hold = tx->is_held;
	tx->committing = true;
	session_set_state(s, SESSION_COMMIT);
	s->ops->msg_commit(s->ctx, &env);
}

/* The commit asked for at the end of data finished: the reply. */
void
session_data_committed(struct session *s, int result)
{
	struct session_tx *tx = &s->tx;

	tx->has_msg = false; /* the driver owns what is left of it */
	if (result == 0) {
		log_info(s->p.id, "accepted id=%s size=%llu rcpts=%zu",
			 tx->queue_id, (unsigned long long)tx->written,
			 tx->n_rcpts);
		s->messages++;
		session_set_state(s, SESSION_READY);
		session_outf(s, "250 2.0.0 Ok: queued as %s\r\n",
			     tx->queue_id);
		session_tx_reset(s);
	} else {
		log_warning(s->p.id, "rejected id=%s reason=commit-failed",
			    tx->queue_id);
		tx->committing = false; /* not sent: give the count back */
		session_set_state(s, SESSION_READY);
		session_tx_reset(s);
		session_reply(s, R_TEMP_FAIL);
	}
}

/* --- DATA content ---------------------------------------------------- */

/*
 * Frame DATA content. Returns the number of octets consumed; sets *end_r
 * when CRLF.CRLF was seen (consumed included). Dot-unstuffing per RFC 5321
 * 4.5.2. A bare CR or LF never brings the scanner to the beginning of a
 * line, so no sequence but CRLF.CRLF can end the message (D-01). What is
 * left is content, judged by session_data_emit() as BDAT's is: the CR of
 * a CRLF is passed on when its LF comes.
 */
size_t
session_data_scan(struct session *s, const unsigned char *p, size_t len,
		  bool *end_r)
{
	size_t i;

	*end_r = false;
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

	again:
		switch (s->dstate) {
		case DATA_BOL:
			if (c == '.') {
				s->dstate = DATA_DOT;
				continue;
			}
			s->dstate = DATA_TEXT;
			goto again;
		case DATA_DOT:
			if (c == '\r') {
				s->dstate = DATA_DOT_CR;
				continue;
			}
			/* ".x" stores "x", "..x" stores ".x". */
			s->dstate = DATA_TEXT;
			if (c == '.') {
				session_data_emit(s, c);
				continue;
			}
			goto again;
		case DATA_DOT_CR:
			if (c == '\n') {
				*end_r = true;
				return i + 1;
			}
			/* "." CR then not LF: a bare CR, stored (and so
			   refused) like any other. */
			session_data_emit(s, '\r');
			s->dstate = DATA_TEXT;
			goto again;
		case DATA_TEXT:
			if (c == '\r') {
				s->dstate = DATA_CR;
				continue;
			}
			session_data_emit(s, c);
			continue;
		case DATA_CR:
			if (c == '\n') {
				session_data_emit(s, '\r');
				session_data_emit(s, '\n');
				s->dstate = DATA_BOL;
				continue;
			}
			session_data_emit(s, '\r');
			s->dstate = DATA_TEXT;
			goto again;
		}
	}
	return i;
}

/* Shared checks of DATA and BDAT: a transaction with recipients. */
static enum reply_id
session_data_check_tx(struct session *s)
{
	if (s->state == SESSION_GREETED)
		return R_NEED_HELO;
	if (s->state == SESSION_READY)
		return R_NEED_MAIL;
	if (s->state == SESSION_MAIL)
		return R_NO_VALID_RCPTS;
	return R_SUCCESS;
}

void
session_data_cmd(struct session *s, const struct smtp_command *cmd)
{
	enum reply_id id = session_data_check_tx(s);

	if (id != R_SUCCESS) {
		session_reply(s, id);
		return;
	}
	if (s->tx.is_bdat) {
		session_reply(s, R_DATA_AFTER_BDAT);
		return;
	}
	if (session_data_begin(s) < 0 || s->tx.failed) {
		session_tx_reset(s);
		session_reply(s, R_TEMP_FAIL);
		return;
	}
	s->dstate = DATA_BOL;
	session_set_state(s, SESSION_DATA);
	session_reply(s, R_DATA_GO);
}

/*
 * BDAT (RFC 3030). The payload of a well-formed BDAT is always consumed,
 * even when the command is refused, so it is never read as commands;
 * after a refusal in a transaction the rest of its chunks are skipped
 * until LAST (THREATS D-07).
 */
void
session_data_cmd_bdat(struct session *s, const struct smtp_command *cmd)
{
	uint64_t size;
	bool last;
	enum reply_id id;

	if (smtp_parse_bdat(cmd->args, cmd->args_len, &size, &last) < 0) {
		/* The payload length is unknown: hang up (RFC 3030 2). */
		session_tx_reset(s);
		session_reply(s, R_BDAT_SYNTAX);
		return;
	}
	id = session_data_check_tx(s);
	if (id == R_SUCCESS && size == 0 && !last)
		id = R_BDAT_NULL;
	s->bdat_orphan = id != R_SUCCESS;
	s->bdat_reply = id;
	s->bdat_return = s->state;
	s->bdat_left = size;
	s->bdat_last = last;
	if (id == R_SUCCESS) {
		if (!s->tx.is_bdat) {
			s->tx.is_bdat = true;
			if (session_data_begin(s) < 0)
				session_tx_fail(s, R_TEMP_FAIL);
		}
		/* Written so as not to overflow (as Postfix). */
		if (size > s->cfg->max_message_size - s->tx.size)
			session_tx_fail(s, R_TOO_BIG);
		s->bdat_return = SESSION_RCPT;
	}
	session_set_state(s, SESSION_BDAT);
}

/* Store payload octets of a BDAT chunk (n <= bdat_left); nothing of a
   refused chunk or a failed transaction is kept. */
void
session_data_bdat_take(struct session *s, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n && !s->bdat_orphan && !s->tx.failed; i++)
		session_data_emit(s, p[i]);
	s->bdat_left -= n;
}

/* A BDAT chunk's payload is complete: answer it. BDAT LAST ends a
   pipelining group (RFC 3030 4.2, RFC 2920 3.1), refused or not. */
void
session_data_bdat_done(struct session *s)
{
	bool last = s->bdat_last;

	session_set_state(s, s->bdat_return);
	if (s->bdat_orphan) {
		s->bdat_orphan = false;
		session_reply(s, s->bdat_reply);
	} else if (last) {
		session_data_end(s);
	} else {
		session_data_flush(s);
		/* After a refusal keep skipping chunks until LAST or RSET,
		   and answer each with the refusal. */
		if (!s->tx.failed) {
			session_reply(s, R_BDAT_OK);
		} else {
			session_data_refuse(s, s->tx.fail_reply, s->tx.told);
			s->tx.told = true;
		}
	}
	if (last)
		session_group_end(s, "BDAT");
}
