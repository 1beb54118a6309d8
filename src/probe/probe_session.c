/*
 * probe_session.c - SMTP sessions of `postern probe` on one port: connect,
 * TLS first on implicit TLS (RFC 8314), the greeting, EHLO, STARTTLS
 * (RFC 3207); and the decision of a port's role. A 421 greeting (a
 * connection-rate limit) is waited out, within the run's budget. Nothing
 * is sent before the server's greeting on a port that may be plain SMTP:
 * a client that talks first is marked as a spammer by pregreet tests
 * (Postfix postscreen).
 */
#include "probe/probe_int.h"

#include <ctype.h>
#include <string.h>
#include <unistd.h>

#include "smtp/smtp_parse.h"

/* Waits after successive refusals at connect (seconds): a token bucket
   (postern's conn-rate-per-address) refills in a second or two, a fixed
   window takes longer. */
static const unsigned probe_backoff_s[] = {2, 4, 8, 20};

bool
probe_backoff(struct probe *pr, unsigned attempt)
{
	unsigned n = sizeof(probe_backoff_s) / sizeof(*probe_backoff_s);
	unsigned wait = attempt < n ? probe_backoff_s[attempt] : 0;

	if (wait == 0 || pr->backoff_spent + wait > PROBE_BACKOFF_BUDGET)
		return false;
	pr->backoff_spent += wait;
	sleep(wait);
	return true;
}

const char *
probe_sni(const struct probe *pr)
{
	if (pr->o->name != NULL)
		return pr->o->name;
	return pr->host_is_ip ? NULL : pr->o->host;
}

static SSL_CTX *
probe_ctx(const struct probe_port_state *ps)
{
	return ps->tls_legacy ? ps->pr->tls_legacy : ps->pr->tls_modern;
}

/* How far probe_connect_greet() got before it failed. */
enum probe_greet_stage {
	PROBE_GREET_CONNECT = 0, /* no TCP connection */
	PROBE_GREET_TLS,	 /* the handshake failed */
	PROBE_GREET_READ,	 /* no reply (timeout, EOF, garbage) */
	PROBE_GREET_CODE,	 /* a reply, but not 220 */
};

/*
 * Connect, shake hands first when `tls_first`, read the greeting. A 421
 * greeting closes the connection and, within the backoff budget, waits
 * and tries again. 0 with a 220 greeting in *greet_r, or -1 (c->error,
 * *stage_r; a connection that failed at PROBE_GREET_READ is left open so
 * that the caller can see whether anything arrived).
 */
static int
probe_connect_greet(struct probe_port_state *ps, struct probe_conn *c,
		    bool tls_first, SSL_CTX *ctx, struct peer_reply *greet_r,
		    enum probe_greet_stage *stage_r)
{
	struct probe *pr = ps->pr;

	greet_r->code = 0;
	for (unsigned i = 0;; i++) {
		*stage_r = PROBE_GREET_CONNECT;
		probe_conn_init(c, pr->o->timeout);
		if (pr->sent.connections >= PROBE_CONN_BUDGET) {
			(void)snprintf(c->error, sizeof(c->error),
				       "connection budget (%d) spent",
				       PROBE_CONN_BUDGET);
			return -1;
		}
		pr->sent.connections++;
		if (probe_conn_open(c, ps->addr, ps->addr_len) < 0)
			return -1;
		*stage_r = PROBE_GREET_TLS;
		if (tls_first) {
			pr->sent.handshakes++;
			if (probe_conn_tls(c, ctx, probe_sni(pr)) < 0) {
				bool closed = c->peer_closed;

				probe_conn_close(c);
				if (closed && probe_backoff(pr, i))
					continue;
				return -1;
			}
		}
		*stage_r = PROBE_GREET_READ;
		if (probe_conn_reply(c, greet_r) < 0) {
			/* A close before any byte: turned away at connect. */
			if (!(c->eof && c->len == 0 && probe_backoff(pr, i)))
				return -1;
			probe_conn_close(c);
			continue;
		}
		*stage_r = PROBE_GREET_CODE;
		if (greet_r->code == 220)
			return 0;
		probe_conn_close(c);
		if (greet_r->code != 421 || !probe_backoff(pr, i))
			break;
	}
	(void)snprintf(c->error, sizeof(c->error), "greeting %d %.200s",
		       greet_r->code, greet_r->text);
	for (char *p = c->error; *p != '\0'; p++)
		if (!isprint((unsigned char)*p))
			*p = '?';
	return -1;
}

/* The same, for callers that only want success or failure. */
static int
probe_connect_ready(struct probe_port_state *ps, struct probe_conn *c,
		    bool tls_first, SSL_CTX *ctx)
{
	enum probe_greet_stage stage;
	struct peer_reply greet;

	if (probe_connect_greet(ps, c, tls_first, ctx, &greet, &stage) == 0)
		return 0;
	probe_conn_close(c);
	return -1;
}

/* EHLO, or HELO when EHLO is refused (RFC 5321 4.1.4: then no
   extensions). 0 or -1. */
static int
probe_hello(struct probe *pr, struct probe_conn *c, struct peer_reply *r)
{
	pr->sent.ehlo++;
	if (probe_conn_cmd(c, r, "EHLO %s", pr->helo) < 0)
		return -1;
	if (r->code == 250)
		return 0;
	if (r->code / 100 != 5 || probe_conn_cmd(c, r, "HELO %s", pr->helo) < 0)
		return -1;
	if (r->code != 250) {
		(void)snprintf(c->error, sizeof(c->error), "HELO refused: %d",
			       r->code);
		return -1;
	}
	/* Keep only the first line: no extensions after HELO. */
	r->n_lines = 1;
	return 0;
}

/* STARTTLS on an open plain session, the handshake, EHLO again. */
static int
probe_starttls(struct probe_port_state *ps, struct probe_conn *c,
	       struct peer_reply *ehlo_r)
{
	struct peer_reply r;

	if (probe_conn_cmd(c, &r, "STARTTLS") < 0)
		return -1;
	if (r.code != 220) {
		(void)snprintf(c->error, sizeof(c->error),
			       "STARTTLS refused: %u", r.code);
		return -1;
	}
	ps->pr->sent.handshakes++;
	if (probe_conn_tls(c, probe_ctx(ps), probe_sni(ps->pr)) < 0)
		return -1;
	return probe_hello(ps->pr, c, ehlo_r);
}

int
probe_session_get(struct probe_port_state *ps, struct probe_session *s,
		  bool tls)
{
	bool implicit = ps->out->role == PROBE_ROLE_IMPLICIT_TLS;

	if (implicit)
		tls = true;
	if (probe_conn_is_open(&s->c) && s->is_tls == tls &&
	    s->c.errors < PROBE_SESSION_TIRED)
		return 0;
	if (probe_conn_is_open(&s->c))
		probe_session_end(s);
	if (tls && !implicit && ps->out->role != PROBE_ROLE_STARTTLS) {
		(void)snprintf(s->c.error, sizeof(s->c.error), "no TLS");
		return -1;
	}
	if (probe_connect_ready(ps, &s->c, implicit, probe_ctx(ps)) < 0 ||
	    probe_hello(ps->pr, &s->c, &s->ehlo) < 0 ||
	    (tls && !implicit && probe_starttls(ps, &s->c, &s->ehlo) < 0)) {
		probe_conn_close(&s->c);
		return -1;
	}
	s->is_tls = tls;
	return 0;
}

void
probe_session_end(struct probe_session *s)
{
	struct peer_reply r;

	if (probe_conn_is_open(&s->c) && !s->c.eof &&
	    probe_conn_sendf(&s->c, "QUIT") == 0)
		(void)probe_conn_reply(&s->c, &r);
	probe_conn_close(&s->c);
}

int
probe_session_tls_ready(struct probe_port_state *ps, struct probe_conn *c)
{
	struct peer_reply r;

	if (ps->out->role == PROBE_ROLE_IMPLICIT_TLS) {
		probe_conn_init(c, ps->pr->o->timeout);
		if (ps->pr->sent.connections >= PROBE_CONN_BUDGET)
			return -1;
		ps->pr->sent.connections++;
		return probe_conn_open(c, ps->addr, ps->addr_len);
	}
	if (probe_connect_ready(ps, c, false, NULL) < 0 ||
	    probe_hello(ps->pr, c, &r) < 0 ||
	    probe_conn_cmd(c, &r, "STARTTLS") < 0) {
		probe_conn_close(c);
		return -1;
	}
	if (r.code != 220) {
		probe_conn_close(c);
		(void)snprintf(c->error, sizeof(c->error),
			       "STARTTLS refused: %u", r.code);
		return -1;
	}
	return 0;
}

/* ---- the role of a port ------------------------------------------------ */

/* The greeting's first word when it is a domain or an address literal
   (RFC 5321 4.3.1), else our view of the target. */
static void
probe_note_srvname(struct probe_port_state *ps)
{
	const char *t = ps->greeting.text;
	size_t n = strcspn(t, " \n");

	if (n > 0 && n < sizeof(ps->srvname) && smtp_helo_valid(t, n)) {
		memcpy(ps->srvname, t, n);
		ps->srvname[n] = '\0';
		if (n > 1 && ps->srvname[n - 1] == '.')
			ps->srvname[n - 1] = '\0';
		return;
	}
	(void)snprintf(ps->srvname, sizeof(ps->srvname), "%s",
		       ps->pr->host_is_ip ? ps->pr->ip_literal
					  : ps->pr->o->host);
}

/*
 * Implicit TLS: the modern context, else the legacy one (a server that
 * speaks only old TLS); then the greeting. 0 or -1 (the role stays
 * unknown, or closed when no TCP connection was made).
 */
static int
probe_detect_tls(struct probe_port_state *ps, struct probe_session *s)
{
	enum probe_greet_stage stage;

	for (int legacy = 0; legacy < 2; legacy++) {
		ps->tls_legacy = legacy == 1;
		if (probe_connect_greet(ps, &s->c, true, probe_ctx(ps),
					&ps->greeting, &stage) == 0)
			return 0;
		if (stage == PROBE_GREET_CONNECT)
			ps->out->role = PROBE_ROLE_CLOSED;
		if (stage != PROBE_GREET_TLS)
			break;
	}
	ps->tls_legacy = false;
	probe_conn_close(&s->c);
	return -1;
}

/*
 * Plain first: wait the whole timeout for a greeting. Returns 0 with a
 * 220 greeting, 1 when the server said nothing at all (implicit TLS is
 * then worth a try), -1 otherwise (closed, refused, not SMTP).
 */
static int
probe_detect_plain(struct probe_port_state *ps, struct probe_session *s)
{
	enum probe_greet_stage stage;
	bool silent;

	if (probe_connect_greet(ps, &s->c, false, NULL, &ps->greeting,
				&stage) == 0)
		return 0;
	if (stage == PROBE_GREET_CONNECT)
		ps->out->role = PROBE_ROLE_CLOSED;
	silent = stage == PROBE_GREET_READ && s->c.len == 0 && !s->c.eof;
	probe_conn_close(&s->c);
	return silent ? 1 : -1;
}

/* Where the checks left the detail when a port cannot be probed. */
static void
probe_detect_failed(struct probe_port_state *ps, const char *why)
{
	struct probe_buf b = {0};

	probe_buf_addf(&b, "%s: ",
		       ps->out->role == PROBE_ROLE_CLOSED
			   ? "no connection"
			   : "no SMTP service on this port");
	probe_buf_add_peer(&b, why, strlen(why), 200);
	probe_set_rest(ps->out, PROBE_SKIP, b.s);
	probe_buf_free(&b);
}

/*
 * The role: implicit TLS first on 465 (or a /tls hint), plain first
 * elsewhere; a port that stays silent for the whole timeout is then tried
 * with TLS. A plain port is STARTTLS when its EHLO lists it. Leaves the
 * session open after EHLO (before TLS on a STARTTLS port).
 */
void
probe_smtp_detect(struct probe_port_state *ps, struct probe_session *s)
{
	bool tls_first = ps->hint == PROBE_ROLE_IMPLICIT_TLS ||
			 (ps->hint != PROBE_ROLE_PLAIN &&
			  ps->hint != PROBE_ROLE_STARTTLS && ps->port == 465);
	int rc;

	ps->out->role = PROBE_ROLE_UNKNOWN;
	if (tls_first && probe_detect_tls(ps, s) == 0) {
		ps->out->role = PROBE_ROLE_IMPLICIT_TLS;
	} else if (ps->out->role != PROBE_ROLE_CLOSED) {
		rc = probe_detect_plain(ps, s);
		if (rc == 0)
			ps->out->role = PROBE_ROLE_PLAIN;
		else if (rc == 1 && !tls_first && probe_detect_tls(ps, s) == 0)
			ps->out->role = PROBE_ROLE_IMPLICIT_TLS;
	}
	if (ps->out->role != PROBE_ROLE_PLAIN &&
	    ps->out->role != PROBE_ROLE_IMPLICIT_TLS) {
		probe_detect_failed(ps, s->c.error);
		return;
	}
	probe_note_srvname(ps);
	if (probe_hello(ps->pr, &s->c, &s->ehlo) < 0) {
		ps->out->role = PROBE_ROLE_UNKNOWN;
		probe_detect_failed(ps, s->c.error);
		probe_conn_close(&s->c);
		return;
	}
	s->is_tls = ps->out->role == PROBE_ROLE_IMPLICIT_TLS;
	if (s->is_tls) {
		ps->tls_works = true;
		memcpy(&ps->ehlo_tls, &s->ehlo, sizeof(s->ehlo));
		ps->has_ehlo_tls = true;
		probe_tls_note_peer(ps, s->c.ssl);
		return;
	}
	memcpy(&ps->ehlo_plain, &s->ehlo, sizeof(s->ehlo));
	if (probe_ehlo_has(&s->ehlo, "STARTTLS", NULL, NULL))
		ps->out->role = PROBE_ROLE_STARTTLS;
}

bool
probe_ehlo_has(const struct peer_reply *ehlo, const char *kw,
	       const char **args_r, size_t *args_len_r)
{
	size_t kwlen = strlen(kw);
	const char *line;
	size_t len;

	for (size_t i = 1; peer_reply_line(ehlo, i, &line, &len); i++) {
		size_t n = 0;

		while (n < len && line[n] != ' ' && line[n] != '=')
			n++;
		if (n != kwlen || strncasecmp(line, kw, kwlen) != 0)
			continue;
		if (args_r != NULL) {
			*args_r = n < len ? line + n + 1 : line + n;
			*args_len_r = n < len ? len - n - 1 : 0;
		}
		return true;
	}
	return false;
}
