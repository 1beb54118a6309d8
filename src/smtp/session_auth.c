/*
 * session_auth.c - the doors of submission: STARTTLS (RFC 3207) and AUTH
 * (RFC 4954). Who may send what is in session_sender.c. Called from
 * session.c (the verb table and the public entry points); calls only the
 * shared helpers of session_state.c.
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
 * they came through TLS (CVE-2011-0411): after the 220 they end the
 * session, whether they came with STARTTLS or before the handshake.
 */
void
session_auth_starttls(struct session *s, const struct smtp_command *cmd)
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
	session_tx_reset(s);
	session_reply(s, R_TLS_GO);
	s->wants_tls = true;
	session_set_state(s, SESSION_TLS_WAIT);
	if (s->in_len > 0)
		session_tls_injection(s);
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

/* The handshake is done: returns true when the session should go on with
   input it holds (STARTTLS, not implicit TLS). */
bool
session_auth_tls_started(struct session *s, const char *version,
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
		return false; /* implicit TLS, before the greeting */
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	s->helo[0] = '\0';
	s->is_esmtp = false;
	session_tx_reset(s);
	session_auth_reset(s);
	session_set_state(s, SESSION_GREETED);
	return true;
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
	enum reply_id id;

	switch (r) {
	case SASL_CONTINUE:
		session_outf(s, "334 %s\r\n", sasl_challenge(&s->sasl));
		session_set_state(s, SESSION_AUTH);
		return;
	case SASL_DONE:
		session_set_state(s, SESSION_AUTH_WAIT);
		if (s->ops->auth == NULL) {
			sasl_reset(&s->sasl);
			session_auth_verdict(s, SESSION_AUTH_TEMPFAIL, NULL,
					     NULL, 0);
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
session_auth_cmd(struct session *s, const struct smtp_command *cmd)
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

/* The guard's verdict: returns true when the session should go on with
   the input it holds. */
bool
session_auth_verdict(struct session *s, enum session_auth_result result,
		     const char *user, const char *const *addresses,
		     size_t n_addresses)
{
	char esc[600];

	if (s->state != SESSION_AUTH_WAIT)
		return false;
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
	return s->state != SESSION_CLOSED;
}
