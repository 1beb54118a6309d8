/*
 * probe_intrusive.c - the checks that leave marks: smuggling (sends short
 * labelled messages to --deliver-to, a mailbox of the target), lockout
 * (wrong passwords for --user, only inside TLS) and conn-limit (many
 * connections at once). The last two run only with --intrusive, once
 * per run, after every other check; each is bounded in count and time.
 */
#include "probe/probe_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#define PROBE_LOCKOUT_TRIES 12
#define PROBE_CONN_LIMIT_MAX 64

/* ---- smuggling
 * ---------------------------------------------------------------- */

static const struct {
	const char *name;
	const char *seq;
} probe_smuggle[] = {
    {"<LF>.<LF>", "\n.\n"},
    {"<CR>.<CR>", "\r.\r"},
    {"<CR><LF>.<LF>", "\r\n.\n"},
    {"<LF>.<CR><LF>", "\n.\r\n"},
};

/* The test message: labelled, addressed to --deliver-to, the sequence
   under test, a line that would be a command if the sequence ended the
   data, then the real end and QUIT. */
static void
probe_smuggle_message(const struct probe *pr, size_t v, struct probe_buf *b)
{
	unsigned char rnd[8];
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0x33, sizeof(rnd));
	gmtime_r(&now, &tm);
	(void)strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	probe_buf_addf(
	    b,
	    "From: postern probe <postern-probe@postern-probe.invalid>"
	    "\r\nTo: <%s>\r\n"
	    "Subject: postern probe: SMTP smuggling test (%s)\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%02x%02x%02x%02x%02x%02x%02x%02x@"
	    "postern-probe.invalid>\r\n\r\n"
	    "This message was sent by `postern probe --deliver-to` "
	    "to test whether\r\n%s ends a message on this server. "
	    "It can be deleted.\r\n",
	    pr->o->deliver_to, probe_smuggle[v].name, date, rnd[0], rnd[1],
	    rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
	    probe_smuggle[v].name);
	probe_buf_addf(b, "test%sNOOP postern-probe-smuggled\r\n.\r\nQUIT\r\n",
		       probe_smuggle[v].seq);
}

/*
 * One variant on a new session. Returns the number of replies after the
 * message (1: only the real end counted; 2 or more: the sequence ended
 * the data and the next line ran as a command), -2 when MAIL or RCPT got
 * 530 (TLS or authentication first), or -1 with why.
 */
static int
probe_smuggle_one(struct probe_port_state *ps, size_t v, bool tls, char *why,
		  size_t why_size, int *code_r)
{
	struct probe_session t = {0};
	struct probe_buf msg = {0};
	struct peer_reply r;
	int n = 0;

	r.code = 0;
	probe_conn_init(&t.c, ps->pr->o->timeout);
	if (probe_session_get(ps, &t, tls) < 0) {
		(void)snprintf(why, why_size, "%s", t.c.error);
		return -1;
	}
	if (probe_conn_cmd(&t.c, &r, "MAIL FROM:<>") < 0 || r.code != 250 ||
	    probe_conn_cmd(&t.c, &r, "RCPT TO:<%s>", ps->pr->o->deliver_to) <
		0 ||
	    (r.code != 250 && r.code != 251) ||
	    probe_conn_cmd(&t.c, &r, "DATA") < 0 || r.code != 354) {
		(void)snprintf(why, why_size,
			       "the transaction to %s is refused "
			       "(%d)",
			       ps->pr->o->deliver_to, r.code);
		probe_session_end(&t);
		return r.code == 530 ? -2 : -1;
	}
	probe_smuggle_message(ps->pr, v, &msg);
	if (probe_conn_send(&t.c, msg.s, msg.len) == 0) {
		ps->pr->sent.messages++;
		for (int i = 0; i < 8 && probe_conn_reply(&t.c, &r) == 0; i++) {
			if (i == 0)
				*code_r = r.code;
			if (r.code == 221)
				break;
			n++;
		}
	}
	probe_buf_free(&msg);
	probe_conn_close(&t.c);
	if (n == 0)
		(void)snprintf(why, why_size, "%s", "no reply to the message");
	return n > 0 ? n : -1;
}

void
probe_smuggling_check(struct probe_port_state *ps)
{
	struct probe_buf ok = {0}, bad = {0};
	char why[256] = "";
	size_t tried = 0;
	bool tls = false;

	if (ps->pr->o->deliver_to == NULL) {
		probe_set(ps->out, PC_SMUGGLING, PROBE_SKIP,
			  "needs --deliver-to ADDRESS (sends short messages "
			  "there)");
		return;
	}
	for (size_t v = 0; v < sizeof(probe_smuggle) / sizeof(*probe_smuggle);
	     v++) {
		int code = 0,
		    n = probe_smuggle_one(ps, v, tls, why, sizeof(why), &code);

		/* 530 before TLS on a STARTTLS port: inside TLS then. */
		if (n == -2 && !tls && ps->tls_works &&
		    ps->out->role == PROBE_ROLE_STARTTLS) {
			tls = true;
			n = probe_smuggle_one(ps, v, tls, why, sizeof(why),
					      &code);
		}
		if (n < 0)
			break;
		tried++;
		if (n >= 2)
			probe_buf_addf(&bad, "%s%s", bad.len ? ", " : "",
				       probe_smuggle[v].name);
		else
			probe_buf_addf(&ok, "%s%s (%d)", ok.len ? ", " : "",
				       probe_smuggle[v].name, code);
	}
	if (bad.len > 0)
		probe_set(ps->out, PC_SMUGGLING, PROBE_FAIL,
			  "%s ends DATA: the next line ran as a command, so a "
			  "second message can be smuggled in one",
			  bad.s);
	else if (tried == 0)
		probe_set(ps->out, PC_SMUGGLING, PROBE_SKIP, "not tested: %s",
			  why);
	else
		probe_set(ps->out, PC_SMUGGLING,
			  tried < sizeof(probe_smuggle) / sizeof(*probe_smuggle)
			      ? PROBE_WARN
			      : PROBE_PASS,
			  "only <CR><LF>.<CR><LF> ends DATA; the message with "
			  "%s got one reply%s%s",
			  ok.s, why[0] ? "; then " : "", why);
	probe_buf_free(&ok);
	probe_buf_free(&bad);
}

/* ---- lockout ---------------------------------------------------------------
 */

/* The first port where AUTH PLAIN is offered inside TLS. */
static struct probe_port_state *
probe_auth_port(struct probe_port_state *states, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *args;
		size_t len;

		if (states[i].has_ehlo_tls &&
		    probe_ehlo_has(&states[i].ehlo_tls, "AUTH", &args, &len))
			return &states[i];
	}
	return NULL;
}

/* AUTH PLAIN with a random wrong password (RFC 4616). */
static int
probe_wrong_password(struct probe_port_state *ps, struct probe_session *s,
		     struct peer_reply *r)
{
	const char *user = ps->pr->o->user;
	unsigned char raw[600], rnd[18], b64[820];
	size_t ulen = strlen(user), o = 0;
	int n;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -1;
	raw[o++] = '\0';
	memcpy(raw + o, user, ulen);
	o += ulen;
	raw[o++] = '\0';
	n = EVP_EncodeBlock(raw + o, rnd, sizeof(rnd)); /* the password */
	o += (size_t)n;
	n = EVP_EncodeBlock(b64, raw, (int)o);
	if (n <= 0)
		return -1;
	ps->pr->sent.passwords++;
	return probe_conn_cmd(&s->c, r, "AUTH PLAIN %s", (char *)b64);
}

/*
 * Wrong passwords, one after the other, until the server refuses to check
 * them: a 4xx other than 421 to AUTH (postern: 454 4.7.0), or no session
 * at all. A 421 only ends the session (a per-session limit): the probe
 * connects again, as an attacker would.
 */
static void
probe_lockout(struct probe_port_state *ps)
{
	const char *user = ps->pr->o->user;
	struct probe_session s = {0};
	struct peer_reply r;
	unsigned sent = 0, refused = 0, sessions = 0;

	probe_conn_init(&s.c, ps->pr->o->timeout);
	for (int round = 0;
	     round < 2 * PROBE_LOCKOUT_TRIES && sent < PROBE_LOCKOUT_TRIES;
	     round++) {
		if (!probe_conn_is_open(&s.c))
			sessions++;
		if (probe_session_get(ps, &s, true) < 0) {
			probe_set(ps->out, PC_LOCKOUT, PROBE_PASS,
				  "after %u wrong passwords for %s (535) the "
				  "server turns us away (%s)",
				  refused, user, s.c.error);
			return;
		}
		if (probe_wrong_password(ps, &s, &r) < 0) {
			probe_conn_close(&s.c);
			continue;
		}
		sent++;
		if (r.code == 535) {
			refused++;
			continue;
		}
		if (r.code == 421) {
			probe_conn_close(&s.c);
			continue;
		}
		if (r.code == 235)
			probe_set(ps->out, PC_LOCKOUT, PROBE_FAIL,
				  "a random password was accepted for %s",
				  user);
		else if (r.code / 100 == 4)
			probe_set(ps->out, PC_LOCKOUT, PROBE_PASS,
				  "locked after %u wrong passwords for %s "
				  "(535): %d %s",
				  refused, user, r.code, r.status);
		else
			probe_set(ps->out, PC_LOCKOUT, PROBE_SKIP,
				  "AUTH PLAIN refused (%u)", r.code);
		probe_session_end(&s);
		return;
	}
	probe_set(ps->out, PC_LOCKOUT, PROBE_FAIL,
		  "%u wrong passwords for %s in %u sessions, each "
		  "answered 535: no lockout",
		  refused, user, sessions);
	probe_session_end(&s);
}

/* ---- conn-limit ------------------------------------------------------------
 */

/*
 * Hold up to PROBE_CONN_LIMIT_MAX connections at once, each waiting for
 * its greeting (TLS first on implicit TLS). Passes when the server
 * refuses one (a 4xx/5xx greeting, a close, or no greeting in time).
 */
static void
probe_conn_limit(struct probe_port_state *ps)
{
	struct probe_conn *c = calloc(PROBE_CONN_LIMIT_MAX, sizeof(*c));
	bool implicit = ps->out->role == PROBE_ROLE_IMPLICIT_TLS;
	struct peer_reply r;
	int held = 0;
	const char *why = NULL;
	char text[300] = "";

	if (c == NULL)
		abort();
	for (; held < PROBE_CONN_LIMIT_MAX; held++) {
		struct probe_conn *k = &c[held];

		probe_conn_init(k, ps->pr->o->timeout);
		ps->pr->sent.connections++;
		if (probe_conn_open(k, ps->addr, ps->addr_len) < 0 ||
		    (implicit &&
		     probe_conn_tls(k,
				    ps->tls_legacy ? ps->pr->tls_legacy
						   : ps->pr->tls_modern,
				    probe_sni(ps->pr)) < 0) ||
		    probe_conn_reply(k, &r) < 0) {
			why = k->error;
			break;
		}
		if (r.code != 220) {
			(void)snprintf(text, sizeof(text), "greeting %d %s",
				       r.code, r.status);
			why = text;
			break;
		}
	}
	if (why != NULL)
		probe_set(ps->out, PC_CONN_LIMIT, PROBE_PASS,
			  "%d connections at once greeted, the next refused "
			  "(%s)",
			  held, why);
	else
		probe_set(ps->out, PC_CONN_LIMIT, PROBE_FAIL,
			  "%d connections at once from one address, all "
			  "greeted: no limit up to %d",
			  held, PROBE_CONN_LIMIT_MAX);
	for (int i = 0; i < PROBE_CONN_LIMIT_MAX; i++)
		probe_conn_close(&c[i]);
	free(c);
}

void
probe_intrusive_checks(struct probe *pr, struct probe_port_state *states,
		       size_t n)
{
	struct probe_port_state *auth = probe_auth_port(states, n), *any = NULL;
	const char *why = "needs --intrusive (tries wrong passwords)";

	for (size_t i = 0; i < n && any == NULL; i++)
		if (states[i].out->role >= PROBE_ROLE_PLAIN)
			any = &states[i];
	if (pr->o->intrusive && pr->o->user == NULL)
		why = "needs --user ACCOUNT (tries wrong passwords)";
	else if (pr->o->intrusive && auth == NULL)
		why = "no port offers AUTH inside TLS";
	else if (pr->o->intrusive)
		probe_lockout(auth);
	if (pr->o->intrusive && any != NULL)
		probe_conn_limit(any);
	for (size_t i = 0; i < n; i++) {
		struct probe_port *out = states[i].out;

		if (!out->checks[PC_LOCKOUT].is_set) {
			if (pr->o->intrusive && pr->o->user != NULL &&
			    auth != NULL)
				probe_set(out, PC_LOCKOUT, PROBE_SKIP,
					  "tested on port %u", auth->port);
			else
				probe_set(out, PC_LOCKOUT, PROBE_SKIP, "%s",
					  why);
		}
		if (!out->checks[PC_CONN_LIMIT].is_set) {
			if (pr->o->intrusive && any != NULL)
				probe_set(out, PC_CONN_LIMIT, PROBE_SKIP,
					  "tested on port %u", any->port);
			else
				probe_set(out, PC_CONN_LIMIT, PROBE_SKIP, "%s",
					  pr->o->intrusive
					      ? "no port answered SMTP"
					      : "needs --intrusive (opens "
						"many connections)");
		}
	}
}
