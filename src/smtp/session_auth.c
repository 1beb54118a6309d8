/*
 * session_auth.c - the doors of submission: STARTTLS (RFC 3207), AUTH
 * (RFC 4954) and who may send what (the envelope sender and the From:
 * header must belong to the login).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "smtp/session_int.h"

/* AUTH failures in one session before it is closed (THREATS A-02). */
#define SESSION_AUTH_FAILURES_MAX 3

/* --- STARTTLS -------------------------------------------------------- */

/*
 * STARTTLS: only once, without arguments, after EHLO (RFC 3207 4). Bytes
 * the client sent behind it in clear text would otherwise be read as if
 * they came through TLS (CVE-2011-0411): they end the session instead.
 */
void
session_cmd_starttls(struct session *s, const struct smtp_command *cmd,
		     bool more)
{
	if (s->is_tls) {
		session_reply(s, R_TLS_ACTIVE);
		return;
	}
	if (!s->p.tls_available) {
		session_reply(s, R_TLS_UNAVAILABLE);
		return;
	}
	if (s->state == SESSION_GREETED) {
		session_reply(s, R_NEED_HELO);
		return;
	}
	if (more) {
		log_notice(s->p.id, "rejected reason=starttls-injection");
		session_tx_reset(s);
		session_reply(s, R_SYNC);
		return;
	}
	session_tx_reset(s);
	session_reply(s, R_TLS_GO);
	s->wants_tls = true;
	session_set_state(s, SESSION_TLS_WAIT);
}

bool
session_wants_tls(const struct session *s)
{
	return s->wants_tls && s->state == SESSION_TLS_WAIT;
}

/* Keep only printable ASCII of what OpenSSL tells (it goes into a
   header). */
static void
session_copy_printable(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src != NULL && src[i] != '\0' && i + 1 < size; i++)
		dst[i] = (src[i] > 0x20 && src[i] < 0x7f && src[i] != '(' &&
			  src[i] != ')' && src[i] != '\\')
				 ? src[i]
				 : '?';
	dst[i] = '\0';
}

void
session_tls_started(struct session *s, const char *version,
		    const char *cipher)
{
	session_copy_printable(s->tls_version, sizeof(s->tls_version),
			       version);
	session_copy_printable(s->tls_cipher, sizeof(s->tls_cipher), cipher);
	s->is_tls = true;
	s->wants_tls = false;
	log_info(s->p.id, "tls version=%s cipher=%s", s->tls_version,
		 s->tls_cipher);
	if (s->state != SESSION_TLS_WAIT)
		return; /* implicit TLS, before the greeting */
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	s->helo[0] = '\0';
	s->is_esmtp = false;
	session_tx_reset(s);
	session_auth_reset(s);
	session_set_state(s, SESSION_GREETED);
	session_process(s);
}

/* --- AUTH ------------------------------------------------------------ */

void
session_auth_reset(struct session *s)
{
	sasl_reset(&s->sasl);
	for (size_t i = 0; i < s->n_auth_addrs; i++)
		free(s->auth_addrs[i]);
	free(s->auth_addrs);
	free(s->auth_user);
	s->auth_addrs = NULL;
	s->n_auth_addrs = 0;
	s->auth_user = NULL;
	s->has_auth = false;
}

/* Act on what the SASL machine says. */
static void
session_sasl_result(struct session *s, enum sasl_result r)
{
	char line[64];
	enum reply_id id;

	switch (r) {
	case SASL_CONTINUE:
		snprintf(line, sizeof(line), "334 %s\r\n",
			 sasl_challenge(&s->sasl));
		session_out(s, line, strlen(line));
		session_set_state(s, SESSION_AUTH);
		return;
	case SASL_DONE:
		session_set_state(s, SESSION_AUTH_WAIT);
		if (s->ops->auth == NULL) {
			sasl_reset(&s->sasl);
			session_auth_done(s, SESSION_AUTH_TEMPFAIL, NULL, NULL,
					  0);
			return;
		}
		s->ops->auth(s->ctx, s->sasl.user, s->sasl.user_len,
			     s->sasl.pass, s->sasl.pass_len);
		sasl_reset(&s->sasl);
		return;
	case SASL_CANCELLED:
		id = R_AUTH_CANCELLED;
		break;
	case SASL_BAD_BASE64:
		id = R_AUTH_BAD_BASE64;
		break;
	case SASL_BAD_MESSAGE: {
		/* Malformed credentials are failed credentials; the guard
		   is not asked (nothing to verify). One line, escaped. */
		char esc[1100];

		id = R_AUTH_FAILED;
		s->auth_failures++;
		log_info(s->p.id, "auth result=fail reason=malformed user=%s "
				  "failures=%u",
			 log_escape(esc, sizeof(esc), s->sasl.bad_user,
				    s->sasl.bad_user_len, 255),
			 s->auth_failures);
		break;
	}
	case SASL_UNKNOWN_MECH:
		id = R_AUTH_MECH;
		break;
	case SASL_TOO_LONG:
		id = R_AUTH_TOO_LONG;
		break;
	case SASL_SYNTAX:
	default:
		id = R_AUTH_SYNTAX;
		break;
	}
	sasl_reset(&s->sasl);
	session_set_state(s, SESSION_READY);
	session_reply(s, id);
	if (s->auth_failures >= SESSION_AUTH_FAILURES_MAX &&
	    s->state != SESSION_CLOSED)
		session_reply(s, R_AUTH_TOO_MANY);
}

/*
 * AUTH (RFC 4954 4): on submission roles, under TLS (the pre-TLS gate
 * answered 530 before this), after EHLO, once, outside a transaction.
 * Never on mx (THREATS A-01).
 */
void
session_cmd_auth(struct session *s, const struct smtp_command *cmd)
{
	if (s->p.role == ROLE_MX) {
		session_reply(s, R_AUTH_NOT_AVAILABLE);
		return;
	}
	if (s->state == SESSION_GREETED) {
		session_reply(s, R_NEED_HELO);
		return;
	}
	if (s->has_auth) {
		session_reply(s, R_AUTH_ALREADY);
		return;
	}
	if (s->state != SESSION_READY) {
		session_reply(s, R_AUTH_IN_TX);
		return;
	}
	session_sasl_result(s, sasl_start(&s->sasl, cmd->args, cmd->args_len));
}

void
session_auth_line(struct session *s, const char *line, size_t len)
{
	session_sasl_result(s, sasl_step(&s->sasl, line, len));
}

void
session_auth_line_too_long(struct session *s)
{
	session_sasl_result(s, SASL_TOO_LONG);
}

void
session_auth_done(struct session *s, enum session_auth_result result,
		  const char *user, const char *const *addresses,
		  size_t n_addresses)
{
	char esc[600];

	if (s->state != SESSION_AUTH_WAIT)
		return;
	session_set_state(s, SESSION_READY);
	switch (result) {
	case SESSION_AUTH_OK:
		s->has_auth = true;
		s->auth_user = strdup(user != NULL ? user : "");
		s->auth_addrs = calloc(n_addresses + 1, sizeof(char *));
		if (s->auth_user == NULL || s->auth_addrs == NULL)
			abort();
		for (size_t i = 0; i < n_addresses; i++) {
			s->auth_addrs[i] = strdup(addresses[i]);
			if (s->auth_addrs[i] == NULL)
				abort();
			s->n_auth_addrs++;
		}
		log_info(s->p.id, "auth result=ok user=%s",
			 log_escape(esc, sizeof(esc), s->auth_user,
				    strlen(s->auth_user), 255));
		session_reply(s, R_AUTH_OK);
		break;
	case SESSION_AUTH_FAIL:
		s->auth_failures++;
		log_info(s->p.id, "auth result=fail failures=%u",
			 s->auth_failures);
		session_reply(s, R_AUTH_FAILED);
		if (s->auth_failures >= SESSION_AUTH_FAILURES_MAX)
			session_reply(s, R_AUTH_TOO_MANY);
		break;
	case SESSION_AUTH_LOCKED:
		log_info(s->p.id, "auth result=locked");
		session_reply(s, R_AUTH_TEMP);
		break;
	case SESSION_AUTH_TEMPFAIL:
	default:
		log_warning(s->p.id, "auth result=tempfail");
		session_reply(s, R_AUTH_TEMP);
		break;
	}
	if (s->state != SESSION_CLOSED)
		session_process(s);
}

/* --- who may send what ----------------------------------------------- */

static bool
session_owns(const struct session *s, const char *addr, size_t len)
{
	for (size_t i = 0; i < s->n_auth_addrs; i++)
		if (strlen(s->auth_addrs[i]) == len &&
		    strncasecmp(s->auth_addrs[i], addr, len) == 0)
			return true;
	return false;
}

/* The envelope sender of an authenticated session must be the user's own
   address or one of its aliases (Postfix reject_sender_login_mismatch);
   the null sender is allowed. THREATS R-03. */
enum reply_id
session_check_sender(struct session *s, const char *addr)
{
	if (addr[0] == '\0' || session_owns(s, addr, strlen(addr)))
		return R_SENDER_OK;
	log_notice(s->p.id, "rejected reason=sender-not-owned");
	return R_SENDER_NOT_OWNED;
}

/* Collect the body of From: fields as the header passes (bounded). */
void
session_from_octet(struct session *s, unsigned char c, bool start)
{
	struct session_tx *tx = &s->tx;

	if (start) {
		tx->from_fields++;
		tx->in_from = true;
		return;
	}
	if (tx->from_overflow)
		return;
	if (tx->from == NULL) {
		tx->from = malloc(SESSION_FROM_MAX);
		if (tx->from == NULL)
			abort();
	}
	if (tx->from_len == SESSION_FROM_MAX) {
		tx->from_overflow = true;
		return;
	}
	tx->from[tx->from_len++] = (char)c;
}

/* Trim spaces, tabs, CR, LF at both ends of [*p, *p + *len). */
static void
session_trim(const char **p, size_t *len)
{
	while (*len > 0 && strchr(" \t\r\n", (*p)[0]) != NULL) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && strchr(" \t\r\n", (*p)[*len - 1]) != NULL)
		(*len)--;
}

/*
 * Check one element of the From: mailbox-list (RFC 5322 3.4): the address
 * in angle brackets if there are any, else the addr-spec with comments
 * removed. Quoted strings and comments are skipped when looking for the
 * brackets, so a display name cannot smuggle one in.
 */
static bool
session_from_mailbox_ok(const struct session *s, const char *p, size_t len)
{
	char spec[SMTP_PATH_MAX + 1];
	size_t n = 0;
	int depth = 0;
	bool quoted = false;
	const char *lt = NULL, *gt = NULL;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\\' && (quoted || depth > 0)) {
			i++;
			continue;
		}
		if (quoted) {
			quoted = c != '"';
			if (lt == NULL && n < sizeof(spec) - 1)
				spec[n++] = c;
			continue;
		}
		if (depth > 0) {
			depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			continue;
		}
		if (c == '(') {
			depth = 1;
		} else if (c == '"') {
			quoted = true;
			if (n < sizeof(spec) - 1)
				spec[n++] = c;
		} else if (c == '<' || c == '>') {
			/* One angle-addr, opened then closed, no more. */
			if (c == '<' && lt == NULL)
				lt = p + i + 1;
			else if (c == '>' && lt != NULL && gt == NULL)
				gt = p + i;
			else
				return false;
		} else if (gt != NULL) {
			/* After the angle-addr only white space (and
			   comments, skipped above) may follow. */
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				return false;
		} else if (n < sizeof(spec) - 1) {
			spec[n++] = c;
		} else {
			return false;
		}
	}
	if (quoted || depth != 0 || (lt != NULL) != (gt != NULL))
		return false;
	if (lt != NULL) {
		const char *a = lt;
		size_t alen = (size_t)(gt - lt);

		session_trim(&a, &alen);
		return alen > 0 && session_owns(s, a, alen);
	}
	{
		const char *a = spec;
		size_t alen = n;

		session_trim(&a, &alen);
		return alen > 0 && memchr(a, ' ', alen) == NULL &&
		       session_owns(s, a, alen);
	}
}

/*
 * The From: header of an authenticated user's message must hold exactly
 * one From field whose every mailbox is the user's (from-header-check).
 */
enum reply_id
session_check_from(struct session *s)
{
	const struct session_tx *tx = &s->tx;
	const char *p = tx->from, *start;
	int depth = 0;
	bool quoted = false, angle = false;
	unsigned mailboxes = 0;

	if (tx->from_fields != 1 || tx->from_overflow || tx->from == NULL)
		return R_FROM_NOT_OWNED;
	start = p;
	for (size_t i = 0; i <= tx->from_len; i++) {
		char c = i < tx->from_len ? p[i] : ',';

		if (i < tx->from_len && c == '\\' && (quoted || depth > 0)) {
			i++;
			continue;
		}
		if (quoted) {
			quoted = c != '"';
			continue;
		}
		if (depth > 0) {
			depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			continue;
		}
		if (c == '"')
			quoted = true;
		else if (c == '(')
			depth = 1;
		else if (c == '<')
			angle = true;
		else if (c == '>')
			angle = false;
		else if (c == ',' && !angle) {
			const char *e = start;
			size_t elen = (size_t)(p + i - start);

			session_trim(&e, &elen);
			if (elen > 0) {
				if (!session_from_mailbox_ok(s, e, elen))
					return R_FROM_NOT_OWNED;
				mailboxes++;
			}
			start = p + i + 1;
		}
	}
	return mailboxes > 0 ? R_SUCCESS : R_FROM_NOT_OWNED;
}
