/*
 * session.c - the SMTP state machine. See session.h for the contract.
 *
 * Framing (RFC 5321 2.3.8, 4.1.1.4): a command line ends only at CRLF. A
 * line holding a bare CR or LF, or a NUL, is refused whole with one reply,
 * so it can never be split into two commands (THREATS P-01, P-03). In DATA
 * only CRLF "." CRLF ends the message; bare CR, bare LF or NUL anywhere in
 * the content make the whole message refused at the real terminator
 * (THREATS D-01), so no smuggling sequence ends a message early.
 */
#include "smtp/session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "smtp/session_int.h"

static const char *const session_state_names[SESSION_STATE_COUNT] = {
	"pregreet", "greeted", "ready", "mail",	  "rcpt",
	"data",	    "bdat",    "commit", "auth",  "auth-wait",
	"tls-wait", "closed",
};



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

/* Append raw reply text to the output buffer. Replies are small and
   bounded by the input that causes them, so this grows as needed. */
/*
 * Append to a growable buffer (doubling from `first` octets); aborts when
 * memory runs out, which in a worker loses only that worker's sessions.
 */
static void
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

void
session_out(struct session *s, const char *text, size_t len)
{
	if (s->out_off > 0 && s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
	session_buf_append(&s->out, &s->out_len, &s->out_cap, 256, text, len);
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

/* --- transaction ----------------------------------------------------- */

void
session_tx_reset(struct session *s)
{
	struct session_tx *tx = &s->tx;

	if (tx->has_msg && s->ops->msg_abort != NULL)
		s->ops->msg_abort(s->ctx);
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
	    s->state == SESSION_DATA || s->state == SESSION_BDAT)
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

static int
session_flush_stage(struct session *s)
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

/*
 * Watch the header section as content passes: count Received fields
 * (loop detection, RFC 5321 6.3) and the section's size (THREATS D-05).
 * The section ends at the first empty line.
 */
static void
session_header_octet(struct session *s, unsigned char c)
{
	struct session_tx *tx = &s->tx;

	if (!tx->in_header)
		return;
	tx->header_bytes++;
	if (tx->header_bytes > s->cfg->header_size_limit)
		session_tx_fail(s, R_HEADER_TOO_BIG);
	if (tx->hline_bol) {
		tx->hline_bol = false;
		tx->hline_len = 0;
		tx->from_name = false;
		if (c == '\r' || c == '\n') {
			tx->in_header = false; /* empty line */
			tx->in_from = false;
			return;
		}
		/* A field ends where a line does not continue it. */
		if (c != ' ' && c != '\t')
			tx->in_from = false;
	}
	if (tx->in_from)
		session_from_octet(s, c, false);
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
			session_from_octet(s, c, true);
		} else if (tx->from_name && tx->hline_len > 4 && c != ' ' &&
			   c != '\t') {
			tx->from_name = false;
		}
	}
}

/* One octet of stored content: size check, header watch, staging. */
static void
session_emit(struct session *s, unsigned char c)
{
	struct session_tx *tx = &s->tx;

	if (tx->failed)
		return;
	tx->size++;
	if (tx->size > s->cfg->max_message_size) {
		session_tx_fail(s, R_TOO_BIG);
		return;
	}
	session_header_octet(s, c);
	s->stage[s->stage_len++] = (char)c;
	if (s->stage_len == SESSION_STAGE_SIZE)
		session_flush_stage(s);
}

/* Queue the Received header (RFC 5321 4.4) as the first content. */
static void
session_write_received(struct session *s)
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
session_msg_begin(struct session *s)
{
	struct session_tx *tx = &s->tx;

	if (s->ops->msg_begin(s->ctx, tx->queue_id) < 0) {
		log_warning(s->p.id, "rejected reason=spool-open-failed");
		return -1;
	}
	tx->has_msg = true;
	tx->in_header = true;
	tx->hline_bol = true;
	if (s->stage == NULL) {
		s->stage = malloc(SESSION_STAGE_SIZE);
		if (s->stage == NULL)
			abort();
	}
	session_write_received(s);
	return 0;
}

/* The message ended (CRLF.CRLF, or BDAT LAST): refuse it or commit it. */
static void
session_msg_end(struct session *s)
{
	struct session_tx *tx = &s->tx;
	struct session_envelope env;

	session_flush_stage(s);
	if (tx->failed || !tx->has_msg) {
		enum reply_id id = tx->failed ? tx->fail_reply : R_TEMP_FAIL;
		const struct reply *r = reply_get(id);

		log_info(s->p.id, "rejected reason=\"%s\" code=%u status=%s",
			 r->text, r->code, r->status ? r->status : "-");
		session_tx_reset(s);
		session_reply(s, id);
		return;
	}
	if (s->has_auth && s->cfg->from_header_check) {
		enum reply_id id = session_check_from(s);

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
	session_set_state(s, SESSION_COMMIT);
	s->ops->msg_commit(s->ctx, &env);
}

/*
 * Is the input waiting behind a group end exactly "QUIT" CRLF? A client
 * may say goodbye without waiting for the last reply (Postfix's SMTP
 * client sends "." and QUIT together); that is no smuggling risk.
 */
static bool
session_rest_is_quit(const struct session *s)
{
	return s->in_len == 6 && strncasecmp(s->in, "QUIT\r\n", 6) == 0;
}

void
session_commit_done(struct session *s, int result)
{
	char line[REPLY_LINE_MAX];
	struct session_tx *tx = &s->tx;
	int n;

	if (s->state != SESSION_COMMIT)
		return;
	tx->has_msg = false; /* the driver owns what is left of it */
	if (result == 0) {
		n = snprintf(line, sizeof(line),
			     "250 2.0.0 Ok: queued as %s\r\n", tx->queue_id);
		log_info(s->p.id, "accepted id=%s size=%llu rcpts=%zu",
			 tx->queue_id, (unsigned long long)tx->written,
			 tx->n_rcpts);
		s->messages++;
		session_set_state(s, SESSION_READY);
		session_tx_reset(s);
		if (n > 0 && (size_t)n < sizeof(line))
			session_out(s, line, (size_t)n);
	} else {
		log_warning(s->p.id, "rejected id=%s reason=commit-failed",
			    tx->queue_id);
		session_set_state(s, SESSION_READY);
		session_tx_reset(s);
		session_reply(s, R_TEMP_FAIL);
	}
	if (s->state == SESSION_CLOSED)
		return;
	/* Input that came while the reply was not yet sent is pipelining
	   past the end of data: refused for unauthenticated clients
	   (THREATS D-04). */
	if (s->early_input || (s->in_len > 0 && s->p.role == ROLE_MX &&
				!session_rest_is_quit(s))) {
		log_notice(s->p.id, "rejected reason=pipelining-after-data");
		session_reply(s, R_SYNC);
		return;
	}
	session_process(s);
}

/* --- DATA content ---------------------------------------------------- */

/*
 * Scan DATA content. Returns the number of octets consumed; sets *end_r
 * when CRLF.CRLF was seen (consumed included). Dot-unstuffing per RFC 5321
 * 4.5.2. A bare CR or LF never brings the scanner to the beginning of a
 * line, so no sequence but CRLF.CRLF can end the message (D-01).
 */
static size_t
session_data_scan(struct session *s, const unsigned char *p, size_t len,
		  bool *end_r)
{
	size_t i;

	*end_r = false;
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

	again:
		if (c == '\0')
			session_tx_fail(s, R_NUL_DATA);
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
				session_emit(s, c);
				continue;
			}
			goto again;
		case DATA_DOT_CR:
			if (c == '\n') {
				*end_r = true;
				return i + 1;
			}
			/* "." CR then not LF: a bare CR. */
			session_tx_fail(s, R_BARE_LF_DATA);
			session_emit(s, '\r');
			s->dstate = DATA_TEXT;
			goto again;
		case DATA_TEXT:
			if (c == '\r') {
				s->dstate = DATA_CR;
				continue;
			}
			if (c == '\n')
				session_tx_fail(s, R_BARE_LF_DATA);
			session_emit(s, c);
			continue;
		case DATA_CR:
			if (c == '\n') {
				session_emit(s, '\r');
				session_emit(s, '\n');
				s->dstate = DATA_BOL;
				continue;
			}
			session_tx_fail(s, R_BARE_LF_DATA);
			session_emit(s, '\r');
			s->dstate = DATA_TEXT;
			goto again;
		}
	}
	return i;
}

/* --- commands -------------------------------------------------------- */

enum {
	CMD_ENDS_GROUP = 1 << 0, /* RFC 2920 3.1: last in a pipelined group */
	CMD_NO_ARGS = 1 << 1,	 /* takes no argument */
	CMD_JUNK = 1 << 2,	 /* counts toward the junk-command limit */
	CMD_PRE_TLS = 1 << 3,	 /* allowed before TLS on submission */
};

struct session_cmd {
	enum smtp_verb verb;
	unsigned flags;
	void (*run)(struct session *s, const struct smtp_command *cmd);
};

/* Is this a submission session still waiting for TLS (RFC 8314 3.3)? */
static bool
session_needs_tls(const struct session *s)
{
	return s->p.role != ROLE_MX && !s->is_tls;
}

/*
 * The EHLO keywords, minimal per role and state (THREATS N-02): before TLS
 * a submission port offers only what is needed to start TLS; AUTH only
 * under TLS on submission roles, never on mx (A-01).
 */
static void
session_ehlo_reply(struct session *s)
{
	char line[128];
	const char *kw[8];
	size_t n = 0;
	int len;

	kw[n++] = "PIPELINING";
	kw[n++] = NULL; /* SIZE, formatted below */
	if (!session_needs_tls(s)) {
		kw[n++] = "8BITMIME";
		kw[n++] = "SMTPUTF8";
		kw[n++] = "CHUNKING";
	}
	if (s->p.tls_available && !s->is_tls)
		kw[n++] = "STARTTLS";
	if (s->p.role != ROLE_MX && s->is_tls && !s->has_auth)
		kw[n++] = "AUTH " SASL_MECHANISMS;
	kw[n++] = "ENHANCEDSTATUSCODES";
	len = snprintf(line, sizeof(line), "250-%s\r\n", s->cfg->hostname);
	session_out(s, line, (size_t)len);
	for (size_t i = 0; i < n; i++) {
		char sep = i + 1 == n ? ' ' : '-';

		if (kw[i] == NULL)
			len = snprintf(line, sizeof(line), "250%cSIZE %llu\r\n",
				       sep,
				       (unsigned long long)
					       s->cfg->max_message_size);
		else
			len = snprintf(line, sizeof(line), "250%c%s\r\n", sep,
				       kw[i]);
		session_out(s, line, (size_t)len);
	}
}

static void
cmd_helo(struct session *s, const struct smtp_command *cmd)
{
	bool ehlo = cmd->verb == SMTP_VERB_EHLO;
	char line[128];
	int n;

	if (cmd->args_len == 0) {
		session_reply(s, R_SYNTAX_HELO);
		return;
	}
	if (!smtp_helo_valid(cmd->args, cmd->args_len)) {
		session_reply(s, R_BAD_HELO);
		return;
	}
	/* RFC 5321 4.1.4: EHLO/HELO imply RSET. */
	session_tx_reset(s);
	n = (int)cmd->args_len;
	while (n > 0 && cmd->args[n - 1] == ' ')
		n--;
	if (n > SMTP_DOMAIN_MAX)
		n = SMTP_DOMAIN_MAX;
	memcpy(s->helo, cmd->args, (size_t)n);
	s->helo[n] = '\0';
	s->is_esmtp = ehlo;
	session_set_state(s, SESSION_READY);
	{
		char esc[300];

		log_info(s->p.id, "helo name=%s esmtp=%s",
			 log_escape(esc, sizeof(esc), s->helo, strlen(s->helo),
				    255),
			 ehlo ? "yes" : "no");
	}
	if (!ehlo) {
		n = snprintf(line, sizeof(line), "250 %s\r\n",
			     s->cfg->hostname);
		session_out(s, line, (size_t)n);
		return;
	}
	session_ehlo_reply(s);
}

static enum reply_id
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

static void
session_log_addr(struct session *s, const char *event, const char *key,
		 const char *addr, size_t len, enum reply_id id)
{
	char esc[600];
	const struct reply *r = reply_get(id);

	log_info(s->p.id, "%s %s=%s code=%u status=%s", event, key,
		 log_escape(esc, sizeof(esc), addr, len, 300),
		 r->code, r->status ? r->status : "-");
}

static void
cmd_mail(struct session *s, const struct smtp_command *cmd)
{
	struct smtp_path path;
	struct smtp_mail_params params;
	enum smtp_perr err;
	enum reply_id id;
	char addr[SMTP_PATH_MAX + 1] = "";

	if (s->state == SESSION_GREETED) {
		session_reply(s, R_NEED_HELO);
		return;
	}
	if (s->state != SESSION_READY) {
		session_reply(s, R_NESTED_MAIL);
		return;
	}
	if (s->shutting_down) {
		session_reply(s, R_SHUTDOWN);
		return;
	}
	if (cmd->args_len > SESSION_MAILRCPT_MAX) {
		session_reply(s, R_LINE_TOO_LONG);
		return;
	}
	err = smtp_parse_mail(cmd->args, cmd->args_len, &path, &params);
	if (err == SMTP_PERR_OK &&
	    params.has_size && params.size > s->cfg->max_message_size)
		err = SMTP_PERR_SIZE_TOO_BIG;
	id = err == SMTP_PERR_OK ? R_SENDER_OK : session_perr_reply(err, true);
	if (err == SMTP_PERR_OK &&
	    smtp_path_format(&path, addr, sizeof(addr)) < 0)
		id = R_BAD_SENDER;
	if (id == R_SENDER_OK && s->p.role != ROLE_MX && !s->has_auth)
		id = R_NEED_AUTH;
	/* THREATS X-05: refuse early, not half way through DATA. */
	if (id == R_SENDER_OK && s->ops->has_space != NULL &&
	    !s->ops->has_space(s->ctx, params.has_size ? params.size : 0))
		id = R_NO_STORAGE;
	if (id == R_SENDER_OK && s->has_auth)
		id = session_check_sender(s, addr);
	if (id == R_SENDER_OK)
		session_log_addr(s, "mail", "from", addr, strlen(addr), id);
	else
		session_log_addr(s, "mail", "from", cmd->args, cmd->args_len,
				 id);
	if (id != R_SENDER_OK) {
		session_reply(s, id);
		return;
	}
	memcpy(s->tx.sender, addr, sizeof(addr));
	s->tx.smtputf8 = params.smtputf8;
	session_set_state(s, SESSION_MAIL);
	session_reply(s, R_SENDER_OK);
}

/* Add a recipient, local (its Maildir) or remote (dir NULL); a mailbox or
   remote address named twice is kept once. */
static int
session_add_rcpt(struct session *s, const char *addr, const char *dir)
{
	struct session_tx *tx = &s->tx;
	size_t n = tx->n_rcpts;

	for (size_t i = 0; i < n; i++) {
		if (dir != NULL && tx->rcpt_dirs[i] != NULL &&
		    strcmp(tx->rcpt_dirs[i], dir) == 0)
			return 0;
		if (dir == NULL && tx->rcpt_dirs[i] == NULL &&
		    strcasecmp(tx->rcpt_addrs[i], addr) == 0)
			return 0;
	}
	tx->rcpts = realloc(tx->rcpts, (n + 1) * sizeof(*tx->rcpts));
	tx->rcpt_addrs = realloc(tx->rcpt_addrs, (n + 1) * sizeof(char *));
	tx->rcpt_dirs = realloc(tx->rcpt_dirs, (n + 1) * sizeof(char *));
	if (tx->rcpts == NULL || tx->rcpt_addrs == NULL ||
	    tx->rcpt_dirs == NULL)
		abort();
	tx->rcpt_addrs[n] = strdup(addr);
	tx->rcpt_dirs[n] = dir != NULL ? strdup(dir) : NULL;
	if (tx->rcpt_addrs[n] == NULL || (dir != NULL && tx->rcpt_dirs[n] == NULL))
		abort();
	tx->n_rcpts = n + 1;
	for (size_t i = 0; i <= n; i++) {
		tx->rcpts[i].address = tx->rcpt_addrs[i];
		tx->rcpts[i].maildir = tx->rcpt_dirs[i];
	}
	return 0;
}

/*
 * The recipient decision, on the one canonical parse (THREATS R-01): on the
 * mx role only our own domains, and there only existing mailboxes.
 */
static enum reply_id
session_route_rcpt(struct session *s, const struct smtp_path *path,
		   const char *addr)
{
	const struct config_mailbox *mb;
	struct config_mailbox user;
	char dir[4096], lower[SMTP_PATH_MAX + 1];

	if (path->is_literal || !config_is_local_domain(s->cfg, path->domain)) {
		/* Only an authenticated submission relays (RFC 6409), and
		   never to an address literal: mail routed by IP address
		   could reach internal hosts (THREATS R-04). */
		if (!s->has_auth || path->is_literal)
			return R_RELAY_DENIED;
		session_add_rcpt(s, addr, NULL);
		s->tx.rcpt_count++;
		return R_RCPT_OK;
	}
	mb = config_find_mailbox(s->cfg, path->local, path->domain);
	if (mb == NULL) {
		/* A user of the users file is a mailbox too. */
		size_t i;

		for (i = 0; addr[i] != '\0' && i < sizeof(lower) - 1; i++)
			lower[i] = (char)((addr[i] >= 'A' && addr[i] <= 'Z')
						  ? addr[i] + 32
						  : addr[i]);
		lower[i] = '\0';
		if (path->is_utf8 || s->ops->is_user == NULL ||
		    !s->ops->is_user(s->ctx, lower))
			return R_NO_MAILBOX;
		user.local = lower;
		user.domain = strchr(lower, '@') + 1;
		lower[user.domain - lower - 1] = '\0';
		mb = &user;
	}
	if (config_maildir_path(s->cfg, mb, dir, sizeof(dir)) < 0)
		return R_NO_MAILBOX;
	session_add_rcpt(s, addr, dir);
	s->tx.rcpt_count++;
	return R_RCPT_OK;
}

static void
cmd_rcpt(struct session *s, const struct smtp_command *cmd)
{
	struct smtp_path path;
	enum smtp_perr err;
	enum reply_id id;
	char addr[SMTP_PATH_MAX + 1] = "";

	if (s->state == SESSION_GREETED) {
		session_reply(s, R_NEED_HELO);
		return;
	}
	if (s->state != SESSION_MAIL && s->state != SESSION_RCPT) {
		session_reply(s, R_NEED_MAIL);
		return;
	}
	if (cmd->args_len > SESSION_MAILRCPT_MAX) {
		session_reply(s, R_LINE_TOO_LONG);
		return;
	}
	if (s->tx.rcpt_count >= s->cfg->max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, not counted as an error. */
		char line[REPLY_LINE_MAX];

		session_out(s, line,
			    reply_format(R_TOO_MANY_RCPTS, line, sizeof(line)));
		return;
	}
	err = smtp_parse_rcpt(cmd->args, cmd->args_len, s->tx.smtputf8, &path);
	if (err != SMTP_PERR_OK) {
		id = session_perr_reply(err, false);
	} else if (smtp_path_format(&path, addr, sizeof(addr)) < 0) {
		id = R_BAD_RCPT;
	} else {
		id = session_route_rcpt(s, &path, addr);
	}
	session_log_addr(s, "rcpt", "to", addr[0] ? addr : cmd->args,
			 addr[0] ? strlen(addr) : cmd->args_len, id);
	if (id == R_RCPT_OK)
		session_set_state(s, SESSION_RCPT);
	session_reply(s, id);
}

/* Shared checks of DATA and BDAT: a transaction with recipients. */
static enum reply_id
session_check_tx(struct session *s)
{
	if (s->state == SESSION_GREETED)
		return R_NEED_HELO;
	if (s->state == SESSION_READY)
		return R_NEED_MAIL;
	if (s->state == SESSION_MAIL)
		return R_NO_VALID_RCPTS;
	return R_SUCCESS;
}

static void
cmd_data(struct session *s, const struct smtp_command *cmd)
{
	enum reply_id id = session_check_tx(s);

	if (id != R_SUCCESS) {
		session_reply(s, id);
		return;
	}
	if (s->tx.is_bdat) {
		session_reply(s, R_DATA_AFTER_BDAT);
		return;
	}
	if (session_msg_begin(s) < 0 || s->tx.failed) {
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
static void
cmd_bdat(struct session *s, const struct smtp_command *cmd)
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
	id = session_check_tx(s);
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
			if (session_msg_begin(s) < 0)
				session_tx_fail(s, R_TEMP_FAIL);
		}
		/* Written so as not to overflow (as Postfix). */
		if (size > s->cfg->max_message_size - s->tx.size)
			session_tx_fail(s, R_TOO_BIG);
		s->bdat_return = SESSION_RCPT;
	}
	session_set_state(s, SESSION_BDAT);
}

/* A BDAT chunk's payload is complete: answer it. */
static void
session_bdat_done(struct session *s)
{
	session_set_state(s, s->bdat_return);
	if (s->bdat_orphan) {
		s->bdat_orphan = false;
		session_reply(s, s->bdat_reply);
		return;
	}
	if (s->bdat_last) {
		session_msg_end(s);
		return;
	}
	session_flush_stage(s);
	/* After a refusal keep skipping chunks until LAST or RSET, and
	   answer each with the refusal. */
	session_reply(s, s->tx.failed ? s->tx.fail_reply : R_BDAT_OK);
}

static void
cmd_rset(struct session *s, const struct smtp_command *cmd)
{
	session_tx_reset(s);
	session_reply(s, R_RSET_OK);
}

static void
cmd_noop(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_NOOP_OK);
}

static void
cmd_quit(struct session *s, const struct smtp_command *cmd)
{
	session_tx_reset(s);
	session_reply(s, R_QUIT);
}

static void
cmd_help(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_HELP);
}

/* RFC 5321 3.5.3 and 7.3: disclose nothing, the same for every name. */
static void
cmd_vrfy(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, cmd->args_len == 0 ? R_SYNTAX : R_VRFY);
}

static void
cmd_expn(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_EXPN);
}

static void
cmd_unimplemented(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_NOT_IMPLEMENTED);
}

static void
cmd_unknown(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_UNRECOGNIZED);
}

/* HTTP and header lines sent as commands: not an SMTP client (P-05). */
static void
cmd_non_smtp(struct session *s, const struct smtp_command *cmd)
{
	log_notice(s->p.id, "rejected reason=non-smtp-command");
	session_tx_reset(s);
	session_reply(s, R_NON_SMTP);
}

/* The verb table: flags per RFC 2920 3.1 and the action. */
static const struct session_cmd session_cmds[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = {SMTP_VERB_UNKNOWN, CMD_PRE_TLS, cmd_unknown},
	[SMTP_VERB_HELO] = {SMTP_VERB_HELO, CMD_ENDS_GROUP | CMD_PRE_TLS,
			    cmd_helo},
	[SMTP_VERB_EHLO] = {SMTP_VERB_EHLO, CMD_ENDS_GROUP | CMD_PRE_TLS,
			    cmd_helo},
	[SMTP_VERB_MAIL] = {SMTP_VERB_MAIL, 0, cmd_mail},
	[SMTP_VERB_RCPT] = {SMTP_VERB_RCPT, 0, cmd_rcpt},
	[SMTP_VERB_DATA] = {SMTP_VERB_DATA, CMD_ENDS_GROUP | CMD_NO_ARGS,
			    cmd_data},
	[SMTP_VERB_BDAT] = {SMTP_VERB_BDAT, 0, cmd_bdat},
	[SMTP_VERB_RSET] = {SMTP_VERB_RSET,
			    CMD_NO_ARGS | CMD_JUNK | CMD_PRE_TLS, cmd_rset},
	[SMTP_VERB_NOOP] = {SMTP_VERB_NOOP,
			    CMD_ENDS_GROUP | CMD_JUNK | CMD_PRE_TLS, cmd_noop},
	[SMTP_VERB_QUIT] = {SMTP_VERB_QUIT,
			    CMD_ENDS_GROUP | CMD_NO_ARGS | CMD_PRE_TLS,
			    cmd_quit},
	[SMTP_VERB_HELP] = {SMTP_VERB_HELP, CMD_JUNK | CMD_PRE_TLS, cmd_help},
	[SMTP_VERB_VRFY] = {SMTP_VERB_VRFY, CMD_ENDS_GROUP | CMD_JUNK,
			    cmd_vrfy},
	[SMTP_VERB_EXPN] = {SMTP_VERB_EXPN, CMD_ENDS_GROUP | CMD_JUNK,
			    cmd_expn},
	[SMTP_VERB_STARTTLS] = {SMTP_VERB_STARTTLS,
				CMD_ENDS_GROUP | CMD_NO_ARGS | CMD_PRE_TLS,
				NULL},
	[SMTP_VERB_AUTH] = {SMTP_VERB_AUTH, CMD_ENDS_GROUP,
			    session_cmd_auth},
	[SMTP_VERB_UNIMPLEMENTED] = {SMTP_VERB_UNIMPLEMENTED, CMD_PRE_TLS,
				     cmd_unimplemented},
	[SMTP_VERB_NON_SMTP] = {SMTP_VERB_NON_SMTP, CMD_PRE_TLS, cmd_non_smtp},
};

/* One complete command line (CRLF removed); `more` says whether further
   input was already waiting behind it. */
static void
session_command(struct session *s, const char *line, size_t len, bool more)
{
	struct smtp_command cmd;
	const struct session_cmd *c;

	s->commands++;
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
	if (len + 2 > SESSION_CMD_MAX && cmd.verb != SMTP_VERB_MAIL &&
	    cmd.verb != SMTP_VERB_RCPT) {
		session_reply(s, R_LINE_TOO_LONG);
		return;
	}
	/* RFC 2920 3.1: a command that ends a group must be answered before
	   the client sends more. An unauthenticated client that does not
	   wait is refused (Postfix smtpd_forbid_unauth_pipelining). */
	if ((c->flags & CMD_ENDS_GROUP) && more && s->p.role == ROLE_MX &&
	    cmd.verb != SMTP_VERB_QUIT && !session_rest_is_quit(s)) {
		log_notice(s->p.id, "rejected reason=pipelining verb=%s",
			   smtp_verb_name(cmd.verb));
		session_tx_reset(s);
		session_reply(s, R_SYNC);
		return;
	}
	if ((c->flags & CMD_NO_ARGS) && cmd.args_len > 0) {
		session_reply(s, R_NO_ARGS);
		return;
	}
	/* RFC 8314 and THREATS T-04: on a submission port only what leads
	   to TLS works in clear text. A BDAT's payload cannot be trusted to
	   be skipped: hang up. */
	if (session_needs_tls(s) && !(c->flags & CMD_PRE_TLS)) {
		session_tx_reset(s);
		session_reply(s, R_NEED_TLS);
		if (cmd.verb == SMTP_VERB_BDAT)
			session_close(s);
		return;
	}
	if (cmd.verb == SMTP_VERB_STARTTLS) {
		session_cmd_starttls(s, &cmd, more);
		return;
	}
	c->run(s, &cmd);
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
		if (s->in_len > SESSION_LINE_BUF_MAX) {
			log_notice(s->p.id, "rejected reason=line-too-long");
			s->discard_line = true;
			if (s->state == SESSION_AUTH)
				session_auth_line_too_long(s);
			else
				session_reply(s, R_LINE_TOO_LONG);
			return s->state != SESSION_CLOSED;
		}
		return false;
	}
	if ((size_t)crlf > SESSION_LINE_BUF_MAX) {
		session_in_consume(s, (size_t)crlf + 2);
		if (s->state == SESSION_AUTH)
			session_auth_line_too_long(s);
		else
			session_reply(s, R_LINE_TOO_LONG);
		return true;
	}
	{
		char line[SESSION_LINE_BUF_MAX + 1];
		size_t len = (size_t)crlf;

		memcpy(line, s->in, len);
		session_in_consume(s, len + 2);
		if (s->state == SESSION_AUTH)
			session_auth_line(s, line, len);
		else
			session_command(s, line, len, s->in_len > 0);
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
	session_msg_end(s);
	return true;
}

static bool
session_process_bdat(struct session *s)
{
	size_t n = s->in_len;

	if (n > s->bdat_left)
		n = (size_t)s->bdat_left;
	for (size_t i = 0; i < n && !s->bdat_orphan && !s->tx.failed; i++)
		session_emit(s, (unsigned char)s->in[i]);
	session_in_consume(s, n);
	s->bdat_left -= n;
	if (s->bdat_left > 0)
		return false;
	session_bdat_done(s);
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
		case SESSION_TLS_WAIT:
			return;
		case SESSION_DATA:
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
		session_bdat_done(s);
}

/*
 * Feed input in slices, so that a large write from the client never makes
 * a large buffer here: each slice is processed before the next is taken.
 * While parked, a submission client's pipelined input is held (the driver
 * stops reading then, which bounds it).
 */
void
session_input(struct session *s, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0 && s->state != SESSION_CLOSED) {
		size_t n = len < SESSION_STAGE_SIZE ? len : SESSION_STAGE_SIZE;

		if (s->state == SESSION_PREGREET) {
			log_notice(s->p.id, "rejected reason=pregreet");
			session_reply(s, R_PREGREET);
			return;
		}
		if (s->state == SESSION_COMMIT && s->p.role == ROLE_MX) {
			/* Input before the end-of-data reply: kept when it
			   could be a pipelined QUIT, else remembered;
			   session_commit_done() judges it (D-04). */
			if (s->in_len + len <= 6)
				session_buf_append(&s->in, &s->in_len,
						   &s->in_cap, 1024, p, len);
			else
				s->early_input = true;
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
	char line[300];
	int n;

	if (s->state != SESSION_PREGREET)
		return;
	/* RFC 5321 4.2: no software name or version (THREATS N-02). */
	n = snprintf(line, sizeof(line), "220 %s ESMTP\r\n", s->cfg->hostname);
	if (n > 0 && (size_t)n < sizeof(line))
		session_out(s, line, (size_t)n);
	session_set_state(s, SESSION_GREETED);
}

void
session_timeout(struct session *s)
{
	if (s->state == SESSION_CLOSED)
		return;
	log_info(s->p.id, "timeout state=%s", session_state_names[s->state]);
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
	       s->state == SESSION_TLS_WAIT;
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
