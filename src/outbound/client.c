/*
 * client.c - the SMTP client engine: session set-up (greeting, EHLO or
 * HELO, STARTTLS, AUTH), input, events. Transactions are in client_tx.c,
 * what both use in client_base.c. See client.h.
 */
#include "outbound/client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/sasl.h"

struct client *
client_new(const struct client_params *params)
{
	struct client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->p = *params;
	c->state = CS_GREETING;
	c->is_tls = params->tls == CLIENT_TLS_IMPLICIT;
	peer_reply_init(&c->parser);
	return c;
}

void
client_free(struct client **cp)
{
	struct client *c = *cp;

	if (c == NULL)
		return;
	client_wipe_output(c);
	free(c->out);
	free(c);
	*cp = NULL;
}

static void
client_fail_local(struct client *c, enum client_stage stage, const char *dsn,
		  const char *text)
{
	struct client_result r;

	client_result_local(&r, CLIENT_TEMP, stage, dsn, text);
	client_fail(c, &r, true);
}

/* --- EHLO ------------------------------------------------------------ */

/* Does `line` start with keyword `kw` followed by the end, ' ' or '='? */
static bool
client_ehlo_kw(const char *line, size_t len, const char *kw, size_t *arg_r)
{
	size_t n = strlen(kw);

	if (len < n || strncasecmp(line, kw, n) != 0)
		return false;
	if (len > n && line[n] != ' ' && line[n] != '=')
		return false;
	*arg_r = len > n ? n + 1 : n;
	return true;
}

/* RFC 1870 4: "SIZE" [SP number]; a bad number means no known limit. */
static void
client_ehlo_size(struct client_features *f, const char *s, size_t len)
{
	uint64_t v = 0;

	f->has_size = true;
	f->size_max = 0;
	if (len == 0 || len > 19)
		return;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	f->size_max = v;
}

/* RFC 4954 3: "AUTH" SP mechanisms (and the old "AUTH=" form). */
static void
client_ehlo_auth(struct client_features *f, const char *s, size_t len)
{
	size_t i = 0;

	f->has_auth = true;
	while (i < len) {
		size_t j = i;

		while (j < len && s[j] != ' ')
			j++;
		if (j - i == 5 && strncasecmp(s + i, "PLAIN", 5) == 0)
			f->auth_plain = true;
		else if (j - i == 5 && strncasecmp(s + i, "LOGIN", 5) == 0)
			f->auth_login = true;
		i = j + 1;
	}
}

static void
client_ehlo_line(struct client_features *f, const char *l, size_t len)
{
	size_t a;

	if (client_ehlo_kw(l, len, "PIPELINING", &a))
		f->pipelining = true;
	else if (client_ehlo_kw(l, len, "STARTTLS", &a))
		f->starttls = true;
	else if (client_ehlo_kw(l, len, "8BITMIME", &a))
		f->eightbitmime = true;
	else if (client_ehlo_kw(l, len, "SMTPUTF8", &a))
		f->smtputf8 = true;
	else if (client_ehlo_kw(l, len, "SIZE", &a))
		client_ehlo_size(f, l + a, len - a);
	else if (client_ehlo_kw(l, len, "AUTH", &a))
		client_ehlo_auth(f, l + a, len - a);
}

/* The keywords of an EHLO reply: every line after the first. */
static void
client_ehlo_parse(struct client_features *f, const struct peer_reply *r)
{
	const char *t = r->text, *end = r->text + r->text_len;
	const char *nl = memchr(t, '\n', r->text_len);

	memset(f, 0, sizeof(*f));
	f->is_esmtp = true;
	while (nl != NULL && nl < end) {
		const char *l = nl + 1;

		nl = memchr(l, '\n', (size_t)(end - l));
		client_ehlo_line(f, l, (size_t)((nl ? nl : end) - l));
	}
}

/* --- session set-up --------------------------------------------------- */

static void
client_send_ehlo(struct client *c, const char *verb)
{
	client_outs(c, verb);
	client_outs(c, " ");
	client_outs(c, c->p.helo);
	client_outs(c, "\r\n");
}

/* AUTH PLAIN with its initial response (RFC 4616 2, RFC 4954 4). */
static void
client_auth_plain(struct client *c)
{
	size_t ul = strlen(c->p.auth_user), pl = strlen(c->p.auth_pass);
	unsigned char raw[2 * SASL_FIELD_MAX + 2];
	char b64[sizeof(raw) * 4 / 3 + 8];
	long n;

	if (ul > SASL_FIELD_MAX || pl > SASL_FIELD_MAX) {
		client_fail_local(c, CLIENT_STAGE_AUTH, "4.7.0",
				  "relay credentials too long");
		return;
	}
	raw[0] = '\0';
	memcpy(raw + 1, c->p.auth_user, ul);
	raw[ul + 1] = '\0';
	memcpy(raw + ul + 2, c->p.auth_pass, pl);
	n = sasl_base64_encode(raw, ul + pl + 2, b64, sizeof(b64));
	explicit_bzero(raw, sizeof(raw));
	c->out_secret = true;
	client_outs(c, "AUTH PLAIN ");
	client_out(c, b64, n > 0 ? (size_t)n : 0);
	client_outs(c, "\r\n");
	explicit_bzero(b64, sizeof(b64));
	c->state = CS_AUTH;
}

/* One base64 line of AUTH LOGIN: the user or the password. */
static void
client_auth_login_line(struct client *c, const char *s)
{
	char b64[SASL_FIELD_MAX * 4 / 3 + 8];
	size_t len = strlen(s);
	long n;

	if (len > SASL_FIELD_MAX) {
		client_fail_local(c, CLIENT_STAGE_AUTH, "4.7.0",
				  "relay credentials too long");
		return;
	}
	n = sasl_base64_encode((const unsigned char *)s, len, b64,
			       sizeof(b64));
	c->out_secret = true;
	client_out(c, b64, n > 0 ? (size_t)n : 0);
	client_outs(c, "\r\n");
	explicit_bzero(b64, sizeof(b64));
}

/* After EHLO (and TLS): authenticate if asked to, else ready. */
static void
client_after_ehlo(struct client *c)
{
	if (c->p.auth_user == NULL || c->has_auth) {
		c->state = CS_READY;
		return;
	}
	if (!c->is_tls) { /* never credentials in clear text */
		client_fail_local(c, CLIENT_STAGE_AUTH, "4.7.10",
				  "relay credentials need TLS, and the "
				  "session is not encrypted");
		return;
	}
	if (c->f.auth_plain) {
		client_auth_plain(c);
	} else if (c->f.auth_login) {
		client_outs(c, "AUTH LOGIN\r\n");
		c->state = CS_AUTH_USER;
	} else {
		client_fail_local(c, CLIENT_STAGE_AUTH, "4.7.0",
				  c->f.has_auth
				      ? "no common SASL mechanism with host"
				      : "host does not offer AUTH");
	}
}

/* EHLO answered: STARTTLS next when wanted and possible. */
static void
client_ehlo_done(struct client *c)
{
	bool wants_tls = c->p.tls == CLIENT_TLS_MAY ||
			 c->p.tls == CLIENT_TLS_REQUIRE;

	if (!c->is_tls && wants_tls && c->f.starttls) {
		client_outs(c, "STARTTLS\r\n");
		c->state = CS_STARTTLS;
		return;
	}
	if (!c->is_tls && c->p.tls == CLIENT_TLS_REQUIRE) {
		client_fail_local(c, CLIENT_STAGE_STARTTLS, "4.7.4",
				  "TLS is required, but was not offered by "
				  "host");
		return;
	}
	client_after_ehlo(c);
}

static void
client_greeting_reply(struct client *c, const struct peer_reply *r)
{
	if (r->code != 220) {
		client_fail_reply(c, r, CLIENT_STAGE_GREETING);
		return;
	}
	client_send_ehlo(c, "EHLO");
	c->state = CS_EHLO;
}

/*
 * EHLO refused: HELO when nothing needs ESMTP (RFC 5321 3.2: a 5xx to
 * EHLO from an old server). Not after STARTTLS, nor with TLS or AUTH
 * required.
 */
static void
client_ehlo_reply(struct client *c, const struct peer_reply *r)
{
	if (r->code / 100 == 2) {
		client_ehlo_parse(&c->f, r);
		client_ehlo_done(c);
		return;
	}
	if (r->code / 100 == 5 && r->code != 554 && !c->is_tls &&
	    c->p.tls != CLIENT_TLS_REQUIRE && c->p.auth_user == NULL) {
		client_send_ehlo(c, "HELO");
		c->state = CS_HELO;
		return;
	}
	client_fail_reply(c, r, CLIENT_STAGE_EHLO);
}

static void
client_helo_reply(struct client *c, const struct peer_reply *r)
{
	if (r->code / 100 != 2) {
		client_fail_reply(c, r, CLIENT_STAGE_HELO);
		return;
	}
	memset(&c->f, 0, sizeof(c->f));
	c->state = CS_READY;
}

/* STARTTLS refused: go on in plain text when TLS is only wanted. */
static void
client_starttls_reply(struct client *c, const struct peer_reply *r)
{
	if (r->code == 220) {
		c->state = CS_TLS_WAIT;
		return;
	}
	if (c->p.tls == CLIENT_TLS_REQUIRE || r->code == 421) {
		client_fail_reply(c, r, CLIENT_STAGE_STARTTLS);
		return;
	}
	client_after_ehlo(c);
}

static void
client_auth_reply(struct client *c, const struct peer_reply *r)
{
	if (c->state == CS_AUTH && r->code == 235) {
		c->has_auth = true;
		c->state = CS_READY;
		return;
	}
	if (c->state == CS_AUTH_USER && r->code == 334) {
		client_auth_login_line(c, c->p.auth_user);
		c->state = CS_AUTH_PASS;
		return;
	}
	if (c->state == CS_AUTH_PASS && r->code == 334) {
		client_auth_login_line(c, c->p.auth_pass);
		c->state = CS_AUTH;
		return;
	}
	client_fail_reply(c, r, CLIENT_STAGE_AUTH);
}

static void
client_quit_reply(struct client *c, const struct peer_reply *r)
{
	c->state = CS_CLOSED;
}

/* A complete reply, in the current state. */
static void
peer_reply(struct client *c, const struct peer_reply *r)
{
	switch (c->state) {
	case CS_GREETING:
		client_greeting_reply(c, r);
		break;
	case CS_EHLO:
		client_ehlo_reply(c, r);
		break;
	case CS_HELO:
		client_helo_reply(c, r);
		break;
	case CS_STARTTLS:
		client_starttls_reply(c, r);
		break;
	case CS_AUTH:
	case CS_AUTH_USER:
	case CS_AUTH_PASS:
		client_auth_reply(c, r);
		break;
	case CS_RSET:
		client_rset_reply(c, r);
		break;
	case CS_TX:
	case CS_DOT:
		client_tx_reply(c, r);
		break;
	case CS_QUIT:
		client_quit_reply(c, r);
		break;
	case CS_READY:
	case CS_BODY:
	case CS_TX_DONE:
	case CS_TLS_WAIT:
		/* Nothing was asked: a 421 is the server leaving (RFC 5321
		   3.8), anything else breaks the protocol. */
		if (r->code == 421)
			client_fail_reply(c, r, client_tx_stage(c));
		else
			client_protocol_error(c, client_tx_stage(c),
					      "reply to no command");
		break;
	case CS_CLOSED:
		break;
	}
}

/* The stage whose reply the engine waits for, for error texts. */
static enum client_stage
client_stage_now(const struct client *c)
{
	switch (c->state) {
	case CS_GREETING:
		return CLIENT_STAGE_GREETING;
	case CS_EHLO:
		return CLIENT_STAGE_EHLO;
	case CS_HELO:
		return CLIENT_STAGE_HELO;
	case CS_STARTTLS:
		return CLIENT_STAGE_STARTTLS;
	case CS_TLS_WAIT:
		return CLIENT_STAGE_TLS;
	case CS_AUTH:
	case CS_AUTH_USER:
	case CS_AUTH_PASS:
		return CLIENT_STAGE_AUTH;
	case CS_QUIT:
		return CLIENT_STAGE_QUIT;
	default:
		return client_tx_stage(c);
	}
}

void
client_input(struct client *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0 && c->state != CS_CLOSED) {
		size_t used;
		enum peer_reply_result r;

		if (c->state == CS_TLS_WAIT) {
			/* Plain text after our STARTTLS's 220 would be taken
			   for the encrypted server's (CVE-2011-0411). */
			client_protocol_error(c, CLIENT_STAGE_TLS,
					      "data after STARTTLS reply");
			return;
		}
		r = peer_reply_feed(&c->parser, p, len, &used);
		p += used;
		len -= used;
		if (r == PEER_REPLY_MORE)
			return;
		if (r == PEER_REPLY_ERROR) {
			client_protocol_error(
			    c, client_stage_now(c),
			    peer_reply_error_name(c->parser.error));
			return;
		}
		peer_reply(c, &c->parser.reply);
		peer_reply_init(&c->parser);
	}
}

void
client_tls_done(struct client *c, bool ok, const char *reason)
{
	char text[CLIENT_TEXT_MAX];

	if (c->state != CS_TLS_WAIT)
		return;
	if (!ok) {
		struct client_result r;

		snprintf(text, sizeof(text), "TLS handshake failed: %s",
			 reason != NULL ? reason : "unknown error");
		client_result_local(&r, CLIENT_TEMP, CLIENT_STAGE_TLS, "4.7.5",
				    text);
		client_fail(c, &r, false); /* no plain QUIT after it */
		return;
	}
	c->is_tls = true;
	memset(&c->f, 0, sizeof(c->f)); /* RFC 3207 4.2: forget it all */
	client_send_ehlo(c, "EHLO");
	c->state = CS_EHLO;
}

bool
client_is_tls(const struct client *c)
{
	return c->is_tls;
}

const struct client_features *
client_features(const struct client *c)
{
	return &c->f;
}

bool
client_is_authenticated(const struct client *c)
{
	return c->has_auth;
}

enum client_event
client_event(const struct client *c)
{
	switch (c->state) {
	case CS_TLS_WAIT:
		return CLIENT_EV_TLS;
	case CS_READY:
		return CLIENT_EV_READY;
	case CS_BODY:
		return CLIENT_EV_BODY;
	case CS_TX_DONE:
		return CLIENT_EV_TX_DONE;
	case CS_CLOSED:
		return CLIENT_EV_CLOSED;
	default:
		return CLIENT_EV_WAIT;
	}
}

void
client_quit(struct client *c)
{
	if (c->state != CS_READY)
		return;
	client_outs(c, "QUIT\r\n");
	c->state = CS_QUIT;
}

/* The connection is gone (or silent): fail what is open. */
static void
client_lost(struct client *c, const char *what)
{
	struct client_result r;
	char text[CLIENT_TEXT_MAX];

	if (c->state == CS_QUIT || c->state == CS_CLOSED) {
		c->state = CS_CLOSED;
		return;
	}
	snprintf(text, sizeof(text), "%s while waiting for %s%s", what,
		 c->state == CS_READY || c->state == CS_TX_DONE ? ""
							       : "reply to ",
		 c->state == CS_READY || c->state == CS_TX_DONE
		     ? "the next command"
		     : client_stage_name(client_stage_now(c)));
	client_result_local(&r, CLIENT_TEMP, client_stage_now(c), "4.4.2",
			    text);
	client_fail(c, &r, false);
	if (c->state != CS_TX_DONE)
		c->state = CS_CLOSED;
}

void
client_eof(struct client *c)
{
	client_lost(c, "lost connection");
}

void
client_timeout(struct client *c)
{
	client_lost(c, "timeout");
}

const struct client_result *
client_error(const struct client *c)
{
	return c->has_error ? &c->error : NULL;
}

/* RFC 5321 4.5.3.2: 5 minutes for the greeting, MAIL and RCPT, 2 for
   DATA's 354, 3 between content blocks, 10 for the final reply. */
unsigned
client_timeout_secs(const struct client *c)
{
	switch (c->state) {
	case CS_READY:
	case CS_TLS_WAIT:
	case CS_TX_DONE:
	case CS_CLOSED:
		return 0;
	case CS_BODY:
		return 180;
	case CS_DOT:
		return 600;
	case CS_TX:
		return client_tx_stage(c) == CLIENT_STAGE_DATA ? 120 : 300;
	default:
		return 300;
	}
}
