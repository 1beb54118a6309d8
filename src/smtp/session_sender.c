/*
 * session_sender.c - who may send what on submission: the envelope sender
 * and the From: header of an authenticated session must belong to the
 * login (its address or one of its aliases). Shared by the MAIL verb
 * (session_cmd.c) and the content path (session_data.c); calls no other
 * file of the engine.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "smtp/session_int.h"

static bool
session_sender_owns(const struct session *s, const char *addr, size_t len)
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
session_sender_check(struct session *s, const char *addr)
{
	if (addr[0] == '\0' || session_sender_owns(s, addr, strlen(addr)))
		return R_SENDER_OK;
	log_notice(s->p.id, "rejected reason=sender-not-owned");
	return R_SENDER_NOT_OWNED;
}

/* Collect the body of From: fields as the header passes (bounded). */
void
session_sender_from_octet(struct session *s, unsigned char c, bool start)
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
session_sender_trim(const char **p, size_t *len)
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
session_sender_mailbox_ok(const struct session *s, const char *p, size_t len)
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

		session_sender_trim(&a, &alen);
		return alen > 0 && session_sender_owns(s, a, alen);
	}
	{
		const char *a = spec;
		size_t alen = n;

		session_sender_trim(&a, &alen);
		return alen > 0 && memchr(a, ' ', alen) == NULL &&
		       session_sender_owns(s, a, alen);
	}
}

/*
 * The From: header of an authenticated user's message must hold exactly
 * one From field whose every mailbox is the user's (from-header-check).
 */
enum reply_id
session_sender_check_from(struct session *s)
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

			session_sender_trim(&e, &elen);
			if (elen > 0) {
				if (!session_sender_mailbox_ok(s, e, elen))
					return R_FROM_NOT_OWNED;
				mailboxes++;
			}
			start = p + i + 1;
		}
	}
	return mailboxes > 0 ? R_SUCCESS : R_FROM_NOT_OWNED;
}
