/*
 * probe_smtp.c - the SMTP checks of `postern probe`: banner.version,
 * auth.before_tls and auth.plaintext_mechanisms (AUTH is started without
 * credentials and cancelled with "*", RFC 4954 section 4), tls.starttls
 * with the STARTTLS command-injection test (CVE-2011-0411), users.vrfy,
 * users.expn and pipelining (RFC 2920). Every reply is hostile input: it is
 * shown through probe_buf_add_peer() only.
 */
#include "probe/probe_int.h"

#include <ctype.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/ssl.h>

/* Software and operating-system names that a banner should not show. */
/* (Words that are also common English, like "exchange", are left out:
   Microsoft's banner names "Microsoft".) */
static const char *const probe_software[] = {
    "postfix",	   "exim",	 "sendmail",	"qmail",    "netqmail",
    "opensmtpd",   "microsoft",	 "haraka",	"courier",  "zimbra",
    "mdaemon",	   "kerio",	 "hmailserver", "postern",  "maddy",
    "chasquid",	   "mailenable", "communigate", "axigen",   "icewarp",
    "smartermail", "ironport",	 "barracuda",	"zmailer",  "xmail",
    "argosoft",	   "ecelerity",	 "stalwart",	"debian",   "ubuntu",
    "centos",	   "redhat",	 "fedora",	"freebsd",  "openbsd",
    "netbsd",	   "dovecot",	 "cyrus",	"domino",   "merak",
    "surgemail",   "sophos",	 "proofpoint",	"mimecast",
};

/* Names nmap's smtp-enum-users tries by default, and postmaster (RFC
   5321 section 4.5.1 makes it exist everywhere). */
static const char *const probe_user_names[] = {
    "postmaster", "root",  "admin", "administrator", "webadmin", "sysadmin",
    "netadmin",	  "guest", "user",  "web",	     "test",
};

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- banner.version --------------------------------------------------------
 */

static bool
probe_token_char(char c)
{
	return isalnum((unsigned char)c) || c == '.';
}

/* "3.7.11", "v4.96", "8.15.2": digits '.' digits, not a dotted quad. */
static bool
probe_is_version(const char *t, size_t n)
{
	size_t i = 0, parts = 1, digits = 0;
	bool all_numeric = true, small = true;
	unsigned v = 0;

	if (n > 0 && (t[0] == 'v' || t[0] == 'V'))
		i = 1;
	if (i >= n || !isdigit((unsigned char)t[i]))
		return false;
	for (; i < n; i++) {
		if (isdigit((unsigned char)t[i])) {
			v = v * 10 + (unsigned)(t[i] - '0');
			small &= v <= 255;
			digits++;
		} else if (t[i] == '.' && digits > 0) {
			parts++;
			digits = 0;
			v = 0;
		} else {
			all_numeric = false;
			if (parts < 2)
				return false;
		}
	}
	if (parts < 2 || (all_numeric && digits == 0))
		return false;
	return !(all_numeric && parts == 4 && small);
}

int
probe_banner_scan(const char *text, size_t len, struct probe_buf *b)
{
	int worst = 0;
	size_t i = 0;

	while (i < len) {
		size_t start, n;

		while (i < len && !probe_token_char(text[i]))
			i++;
		start = i;
		while (i < len && probe_token_char(text[i]))
			i++;
		n = i - start;
		while (n > 0 && text[start + n - 1] == '.')
			n--;
		if (n == 0)
			continue;
		int kind = probe_is_version(text + start, n) ? 2 : 0;

		for (size_t k = 0; kind == 0 && k < N_ELEMENTS(probe_software);
		     k++)
			if (strlen(probe_software[k]) == n &&
			    strncasecmp(text + start, probe_software[k], n) ==
				0)
				kind = 1;
		if (kind == 0)
			continue;
		if (b->len > 0)
			probe_buf_add(b, " ", 1);
		probe_buf_add_peer(b, text + start, n, 40);
		if (kind > worst)
			worst = kind;
	}
	return worst;
}

/* Scan every line of a reply; the first word of the first line (the
   server's name) is skipped when `skip_name`, and a leading RFC 3463
   code on each line is. Found words go to b after `where`. */
static int
probe_banner_reply(const struct peer_reply *r, bool skip_name,
		   const char *where, struct probe_buf *b)
{
	struct probe_buf found = {0};
	const char *line;
	size_t len;
	int worst = 0, k;

	for (size_t i = 0; peer_reply_line(r, i, &line, &len); i++) {
		size_t skip = 0;

		if ((i == 0 && skip_name) ||
		    (len > 0 && isdigit((unsigned char)line[0]) &&
		     line[1] == '.')) {
			skip = strcspn(line, " ");
			if (skip > len)
				skip = len;
		}
		k = probe_banner_scan(line + skip, len - skip, &found);
		if (k > worst)
			worst = k;
	}
	if (found.len > 0)
		probe_buf_addf(b, "%s%s: %s", b->len > 0 ? "; " : "", where,
			       found.s);
	probe_buf_free(&found);
	return worst;
}

static void
probe_banner_check(struct probe_port_state *ps, struct probe_session *s)
{
	const struct peer_reply *ehlo =
	    s->is_tls ? &ps->ehlo_tls : &ps->ehlo_plain;
	struct probe_buf b = {0};
	struct peer_reply help;
	int worst, k;

	worst = probe_banner_reply(&ps->greeting, true, "greeting", &b);
	k = probe_banner_reply(ehlo, true, "EHLO", &b);
	worst = k > worst ? k : worst;
	ps->pr->sent.help++;
	if (probe_conn_cmd(&s->c, &help, "HELP") == 0 && help.code < 500) {
		k = probe_banner_reply(&help, false, "HELP", &b);
		worst = k > worst ? k : worst;
	}
	if (worst == 2) {
		struct probe_buf d = {0};

		probe_buf_addf(&d, "the software version shows (%s)", b.s);
		probe_set_owned(ps->out, PC_BANNER_VERSION, PROBE_FAIL,
				probe_buf_take(&d));
	} else if (worst == 1) {
		probe_set(ps->out, PC_BANNER_VERSION, PROBE_WARN,
			  "the software name shows, without a version (%s)",
			  b.s);
	} else {
		probe_set(ps->out, PC_BANNER_VERSION, PROBE_PASS,
			  "greeting, EHLO and HELP name no software or "
			  "version");
	}
	probe_buf_free(&b);
}

/* ---- AUTH -------------------------------------------------------------------
 */

/* Mechanisms that carry the password (or a bearer token) in clear. */
static bool
probe_mech_is_clear(const char *m, size_t n)
{
	static const char *const clear[] = {"PLAIN", "LOGIN", "XOAUTH2",
					    "OAUTHBEARER"};

	for (size_t i = 0; i < N_ELEMENTS(clear); i++)
		if (strlen(clear[i]) == n && strncasecmp(m, clear[i], n) == 0)
			return true;
	return false;
}

/* The AUTH mechanisms an EHLO reply lists, as text; count of clear ones
   in *clear_r. false when AUTH is not listed. */
static bool
probe_auth_mechs(const struct peer_reply *ehlo, struct probe_buf *b,
		 unsigned *clear_r)
{
	const char *args;
	size_t len, i = 0;

	*clear_r = 0;
	if (!probe_ehlo_has(ehlo, "AUTH", &args, &len))
		return false;
	while (i < len) {
		size_t start;

		while (i < len && args[i] == ' ')
			i++;
		start = i;
		while (i < len && args[i] != ' ')
			i++;
		if (i == start)
			break;
		if (probe_mech_is_clear(args + start, i - start))
			(*clear_r)++;
		if (b->len > 0)
			probe_buf_add(b, " ", 1);
		probe_buf_add_peer(b, args + start, i - start, 40);
	}
	return true;
}

/*
 * Start AUTH PLAIN and AUTH LOGIN before TLS without credentials: a 334
 * means the server would take a password in clear; "*" cancels it (RFC
 * 4954 section 4). The replies go to codes[2].
 */
static void
probe_auth_try(struct probe_port_state *ps, struct probe_session *s,
	       int codes[2])
{
	static const char *const mechs[2] = {"PLAIN", "LOGIN"};
	struct peer_reply r;

	for (int i = 0; i < 2; i++) {
		codes[i] = 0;
		for (int attempt = 0; attempt < 2; attempt++) {
			if (probe_session_get(ps, s, false) < 0)
				break;
			ps->pr->sent.auth_probes++;
			if (probe_conn_cmd(&s->c, &r, "AUTH %s", mechs[i]) <
			    0) {
				probe_conn_close(&s->c);
				continue;
			}
			codes[i] = r.code;
			if (r.code == 334 && probe_conn_cmd(&s->c, &r, "*") < 0)
				probe_conn_close(&s->c);
			break;
		}
	}
}

static void
probe_auth_before_tls(struct probe_port_state *ps, struct probe_session *s)
{
	struct probe_buf mechs = {0};
	unsigned clear;
	int codes[2];
	bool offered;

	if (ps->out->role == PROBE_ROLE_IMPLICIT_TLS) {
		probe_set(ps->out, PC_AUTH_BEFORE_TLS, PROBE_PASS,
			  "implicit TLS: nothing is said before TLS");
		return;
	}
	offered = probe_auth_mechs(&ps->ehlo_plain, &mechs, &clear);
	probe_auth_try(ps, s, codes);
	ps->auth_plain_code = codes[0];
	ps->auth_login_code = codes[1];
	ps->clear_offered_plain = clear;
	if (offered || codes[0] == 334 || codes[1] == 334) {
		struct probe_buf d = {0};

		probe_buf_addf(&d, "%s", "AUTH without TLS:");
		if (offered)
			probe_buf_addf(&d, " EHLO offers %s;", mechs.s);
		probe_buf_addf(&d, " AUTH PLAIN gets %d, AUTH LOGIN gets %d%s",
			       codes[0], codes[1],
			       codes[0] == 334 || codes[1] == 334
				   ? " (334: it would take a password)"
				   : "");
		probe_set_owned(ps->out, PC_AUTH_BEFORE_TLS, PROBE_FAIL,
				probe_buf_take(&d));
	} else {
		probe_set(ps->out, PC_AUTH_BEFORE_TLS, PROBE_PASS,
			  "no AUTH before TLS: not offered; AUTH PLAIN gets "
			  "%d, AUTH LOGIN gets %d",
			  codes[0], codes[1]);
	}
	probe_buf_free(&mechs);
}

void
probe_auth_verdict(struct probe_port_state *ps)
{
	struct probe_buf before = {0}, after = {0};
	unsigned clear_before = 0, clear_after;
	bool pre = false, post = false;
	bool accepted =
	    ps->auth_plain_code == 334 || ps->auth_login_code == 334;

	if (ps->out->role != PROBE_ROLE_IMPLICIT_TLS)
		pre = probe_auth_mechs(&ps->ehlo_plain, &before, &clear_before);
	if (ps->has_ehlo_tls)
		post = probe_auth_mechs(&ps->ehlo_tls, &after, &clear_after);
	if (clear_before > 0 || accepted) {
		probe_set(ps->out, PC_AUTH_PLAINTEXT, PROBE_FAIL,
			  "passwords in clear text: without TLS %s%s%s",
			  pre ? "EHLO offers " : "", pre ? before.s : "",
			  accepted
			      ? (pre ? ", and AUTH gets 334" : "AUTH gets 334")
			      : "");
	} else if (pre) {
		probe_set(ps->out, PC_AUTH_PLAINTEXT, PROBE_WARN,
			  "without TLS EHLO offers %s (no password in clear, "
			  "but AUTH belongs inside TLS)",
			  before.s);
	} else if (post) {
		probe_set(ps->out, PC_AUTH_PLAINTEXT, PROBE_PASS,
			  "AUTH only inside TLS: %s", after.s);
	} else {
		probe_set(ps->out, PC_AUTH_PLAINTEXT, PROBE_SKIP,
			  "no AUTH offered on this port");
	}
	probe_buf_free(&before);
	probe_buf_free(&after);
}

/* ---- users.vrfy and users.expn ------------------------------------------ */

enum probe_ucls {
	PROBE_U_NONE = 0, /* no reply */
	PROBE_U_YES,	  /* 250, 251: the user exists */
	PROBE_U_MAYBE,	  /* 252: cannot verify (RFC 5321 3.5.3) */
	PROBE_U_NO,	  /* 550, 551, 553: no such user */
	PROBE_U_OFF,	  /* 500, 502, 504: not available */
	PROBE_U_AUTH,	  /* 530: needs authentication (or TLS) */
	PROBE_U_OTHER,	  /* 4xx and the rest */
};

static enum probe_ucls
probe_user_class(int code)
{
	switch (code) {
	case 250:
	case 251:
		return PROBE_U_YES;
	case 252:
		return PROBE_U_MAYBE;
	case 550:
	case 551:
	case 553:
		return PROBE_U_NO;
	case 500:
	case 502:
	case 504:
		return PROBE_U_OFF;
	case 530:
		return PROBE_U_AUTH;
	default:
		return code == 0 ? PROBE_U_NONE : PROBE_U_OTHER;
	}
}

/* One VRFY or EXPN, reopening the session once if it broke. */
static int
probe_user_ask(struct probe_port_state *ps, struct probe_session *s, bool tls,
	       const char *verb, const char *name)
{
	struct peer_reply r;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (probe_session_get(ps, s, tls) < 0)
			return 0;
		if (verb[0] == 'V')
			ps->pr->sent.vrfy++;
		else
			ps->pr->sent.expn++;
		if (probe_conn_cmd(&s->c, &r, "%s %s", verb, name) == 0 &&
		    r.code != 421)
			return r.code;
		probe_conn_close(&s->c);
	}
	return 0;
}

/* The verdict from the answers: names[0] is the random one. */
static void
probe_user_verdict(struct probe_port *out, enum probe_check id,
		   const char *verb, const char *const *names, const int *codes,
		   size_t n)
{
	enum probe_ucls rnd = probe_user_class(codes[0]);
	struct probe_buf told = {0};
	size_t asked = 0, same = 0, off = 0;

	for (size_t i = 1; i < n; i++) {
		enum probe_ucls c = probe_user_class(codes[i]);

		if (c == PROBE_U_NONE || c == PROBE_U_OTHER)
			continue;
		asked++;
		same += c == rnd;
		off += c == PROBE_U_OFF;
		if (c != rnd &&
		    (c == PROBE_U_YES || c == PROBE_U_MAYBE || c == PROBE_U_NO))
			probe_buf_addf(&told, "%s%s (%d)", told.len ? ", " : "",
				       names[i], codes[i]);
	}
	if (rnd == PROBE_U_OFF ||
	    (rnd != PROBE_U_NONE && asked > 0 && off == asked))
		probe_set(out, id, PROBE_PASS, "%s not available (%d)", verb,
			  codes[0]);
	else if (rnd == PROBE_U_AUTH)
		probe_set(out, id, PROBE_PASS, "%s needs authentication (%d)",
			  verb, codes[0]);
	else if (told.len > 0 && (rnd == PROBE_U_YES || rnd == PROBE_U_MAYBE ||
				  rnd == PROBE_U_NO))
		probe_set(out, id, PROBE_FAIL,
			  "%s tells users apart: a random name gets %d, but "
			  "%s",
			  verb, codes[0], told.s);
	else if (rnd == PROBE_U_NO && same == asked && asked > 0)
		probe_set(out, id, PROBE_WARN,
			  "%s looks names up: %zu common names and a random "
			  "one all get %d, an existing user would be confirmed",
			  verb, asked, codes[0]);
	else if (asked > 0 && same == asked)
		probe_set(out, id, PROBE_PASS,
			  "%s gives the same answer (%d) for %zu common names "
			  "and a random one",
			  verb, codes[0], asked);
	else
		probe_set(out, id, PROBE_SKIP,
			  "%s: no usable answer (random name: %d)", verb,
			  codes[0]);
	probe_buf_free(&told);
}

static void
probe_users_check(struct probe_port_state *ps, struct probe_session *s,
		  const char *verb, enum probe_check id)
{
	const char *names[1 + N_ELEMENTS(probe_user_names)];
	int codes[1 + N_ELEMENTS(probe_user_names)] = {0};
	unsigned char rnd[6];
	char random_name[32];
	bool tls = s->is_tls;
	size_t n = 0;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0x5a, sizeof(rnd));
	(void)snprintf(random_name, sizeof(random_name),
		       "pp%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		       rnd[3], rnd[4], rnd[5]);
	names[0] = random_name;
	for (size_t i = 0; i < N_ELEMENTS(probe_user_names); i++)
		names[i + 1] = probe_user_names[i];
	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		codes[i] = probe_user_ask(ps, s, tls, verb, names[i]);
		n = i + 1;
		enum probe_ucls c = probe_user_class(codes[i]);

		/* 530 before TLS on a STARTTLS port: ask again inside TLS. */
		if (c == PROBE_U_AUTH && !tls &&
		    ps->out->role == PROBE_ROLE_STARTTLS) {
			tls = true;
			i = (size_t)-1;
			continue;
		}
		if (c == PROBE_U_AUTH || c == PROBE_U_NONE ||
		    (i == 1 && c == PROBE_U_OFF &&
		     probe_user_class(codes[0]) == PROBE_U_OFF))
			break;
	}
	probe_user_verdict(ps->out, id, verb, names, codes, n);
}

/* ---- pipelining ---------------------------------------------------------- */

/*
 * RFC 2920: a group sent in one write gets its replies in order. The
 * group's replies can be told apart: RSET 2xx, MAIL any, RCPT with the
 * null path (never valid, RFC 5321 4.1.1.3) 5xx, RSET 2xx, NOOP 2xx
 * (NOOP may only end a group, RFC 2920 3.1).
 */
void
probe_pipelining_check(struct probe_port_state *ps, struct probe_session *s)
{
	static const char group[] = "RSET\r\nMAIL FROM:<>\r\nRCPT TO:<>\r\n"
				    "RSET\r\nNOOP\r\n";
	const struct peer_reply *ehlo =
	    s->is_tls ? &ps->ehlo_tls : &ps->ehlo_plain;
	struct peer_reply r;
	int codes[5] = {0};
	size_t got = 0;

	if (!probe_ehlo_has(ehlo, "PIPELINING", NULL, NULL)) {
		probe_set(ps->out, PC_PIPELINING, PROBE_SKIP,
			  "PIPELINING not offered%s",
			  s->is_tls ? "" : " before TLS");
		return;
	}
	if (probe_session_get(ps, s, s->is_tls) < 0 ||
	    probe_conn_send(&s->c, group, sizeof(group) - 1) < 0) {
		probe_set(ps->out, PC_PIPELINING, PROBE_SKIP, "%s", s->c.error);
		return;
	}
	ps->pr->sent.pipelined++;
	for (; got < 5 && probe_conn_reply(&s->c, &r) == 0; got++)
		codes[got] = r.code;
	bool extra = got == 5 && probe_conn_reply_within(&s->c, &r, 300) == 0;
	bool order = codes[0] / 100 == 2 && codes[2] / 100 == 5 &&
		     codes[3] / 100 == 2 && codes[4] / 100 == 2;

	if (got == 5 && order && !extra)
		probe_set(ps->out, PC_PIPELINING, PROBE_PASS,
			  "a group of 5 (RSET MAIL RCPT RSET NOOP) got 5 "
			  "replies in order (%d %d %d %d %d)",
			  codes[0], codes[1], codes[2], codes[3], codes[4]);
	else
		probe_set(ps->out, PC_PIPELINING, PROBE_FAIL,
			  "a group of 5 (RSET MAIL RCPT RSET NOOP) got %zu "
			  "replies (%d %d %d %d %d)%s%s",
			  got, codes[0], codes[1], codes[2], codes[3], codes[4],
			  got == 5 && !order ? ", out of order" : "",
			  extra ? ", and more than asked for" : "");
	if (got < 5 || extra)
		probe_conn_close(&s->c);
}

void
probe_smtp_checks(struct probe_port_state *ps, struct probe_session *s)
{
	probe_banner_check(ps, s);
	probe_auth_before_tls(ps, s);
	probe_users_check(ps, s, "VRFY", PC_USERS_VRFY);
	probe_users_check(ps, s, "EXPN", PC_USERS_EXPN);
	probe_pipelining_check(ps, s);
}

/* ---- tls.starttls ------------------------------------------------------ */

/*
 * CVE-2011-0411: "STARTTLS\r\nNOOP\r\n" in one write. A server that keeps
 * the NOOP across the handshake answers it inside TLS, unasked: a
 * man in the middle could inject commands. Returns 1 when the server did,
 * 0 when not, -1 when the test could not be made (detail in b).
 */
static int
probe_starttls_injection(struct probe_port_state *ps, struct probe_buf *b)
{
	static const char inject[] = "STARTTLS\r\nNOOP\r\n";
	struct probe_session t = {0};
	struct peer_reply r;
	int rc = 0;

	probe_conn_init(&t.c, ps->pr->o->timeout);
	if (probe_session_get(ps, &t, false) < 0) {
		probe_buf_addf(b, "injection test: %s", t.c.error);
		return -1;
	}
	if (probe_conn_send(&t.c, inject, sizeof(inject) - 1) < 0 ||
	    probe_conn_reply(&t.c, &r) < 0) {
		probe_buf_addf(b, "a command sent behind STARTTLS ends the "
				  "session");
	} else if (r.code != 220) {
		probe_buf_addf(b,
			       "a command sent behind STARTTLS is "
			       "refused (%d)",
			       r.code);
	} else if (ps->pr->sent.handshakes++,
		   probe_conn_tls(&t.c,
				  ps->tls_legacy ? ps->pr->tls_legacy
						 : ps->pr->tls_modern,
				  probe_sni(ps->pr)) < 0) {
		probe_buf_addf(b, "a command sent behind STARTTLS ends the "
				  "session at the handshake");
	} else if (probe_conn_reply_within(&t.c, &r, 1000) == 0) {
		rc = 1;
	} else if (probe_conn_cmd(&t.c, &r, "EHLO %s", ps->pr->helo) == 0 &&
		   probe_conn_reply_within(&t.c, &r, 500) == 0) {
		/* two replies to one EHLO: the NOOP was kept */
		rc = 1;
	} else {
		probe_buf_addf(b, "a command sent behind STARTTLS is "
				  "dropped");
	}
	if (rc == 1)
		probe_buf_addf(b, "a NOOP sent in clear behind STARTTLS is "
				  "answered inside TLS (command injection, "
				  "CVE-2011-0411)");
	probe_conn_close(&t.c);
	return rc;
}

void
probe_starttls_upgrade(struct probe_port_state *ps, struct probe_session *s)
{
	char why[sizeof(s->c.error)];

	if (ps->out->role != PROBE_ROLE_STARTTLS)
		return;
	if (probe_session_get(ps, s, true) < 0) {
		memcpy(why, s->c.error, sizeof(why));
		ps->tls_legacy = true;
		if (probe_session_get(ps, s, true) < 0) {
			ps->tls_legacy = false;
			probe_set(ps->out, PC_TLS_STARTTLS, PROBE_FAIL,
				  "STARTTLS offered, but it fails: %s", why);
			return;
		}
	}
	ps->tls_works = true;
	memcpy(&ps->ehlo_tls, &s->ehlo, sizeof(s->ehlo));
	ps->has_ehlo_tls = true;
	probe_tls_note_peer(ps, s->c.ssl);
}

void
probe_starttls_check(struct probe_port_state *ps)
{
	struct probe_buf b = {0};
	int inj;

	if (ps->out->role == PROBE_ROLE_PLAIN) {
		probe_set(ps->out, PC_TLS_STARTTLS, PROBE_FAIL,
			  "STARTTLS not offered: mail and logins cross the "
			  "network in clear");
		return;
	}
	if (ps->out->role == PROBE_ROLE_IMPLICIT_TLS) {
		probe_set(ps->out, PC_TLS_STARTTLS, PROBE_PASS,
			  "implicit TLS (RFC 8314): %s %s", ps->tls_version,
			  ps->tls_cipher);
		return;
	}
	if (!ps->tls_works)
		return; /* probe_starttls_upgrade() said why */
	inj = probe_starttls_injection(ps, &b);
	if (inj == 1)
		probe_set(ps->out, PC_TLS_STARTTLS, PROBE_FAIL,
			  "STARTTLS works (%s %s), but %s", ps->tls_version,
			  ps->tls_cipher, b.s);
	else if (probe_ehlo_has(&ps->ehlo_tls, "STARTTLS", NULL, NULL))
		probe_set(ps->out, PC_TLS_STARTTLS, PROBE_WARN,
			  "STARTTLS works (%s %s), but EHLO inside TLS offers "
			  "it again (RFC 3207 section 4.2); %s",
			  ps->tls_version, ps->tls_cipher, b.s);
	else
		probe_set(ps->out, PC_TLS_STARTTLS,
			  inj == 0 ? PROBE_PASS : PROBE_WARN,
			  "STARTTLS works (%s %s%s); %s", ps->tls_version,
			  ps->tls_cipher,
			  ps->tls_legacy ? ", only with old TLS settings" : "",
			  b.s);
	probe_buf_free(&b);
}
