/*
 * probe_relay.c - relay.open: does the server take mail for a foreign
 * domain from anyone? The 16 MAIL/RCPT pairs of nmap's smtp-open-relay
 * (scripts/smtp-open-relay.nse), then more: source routes of two hops,
 * "%" and "!" without a domain or quoted, quoted "@" at the server, IPv4
 * and IPv6 literals, a trailing dot, upper and mixed case, a space after
 * the colon. Each pair is RSET, MAIL, RCPT, stopped there: DATA is never
 * sent (docs/probe.md). The quoted forms are built, and every form is
 * classified, with the server's own path parser (src/smtp/smtp_parse.c):
 * a valid RFC 5321 path or not, and whether its domain is foreign.
 */
#include "probe/probe_int.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_parse.h"

#define PROBE_RELAY_FROM "antispam"
#define PROBE_RELAY_TO "relaytest"

struct probe_relay_ctx {
	const char *d, *s, *i; /* foreign domain, server name, IP literal */
	struct probe_relay_form *forms;
	size_t n, max;
};

/*
 * Expand a form: "$D" is the foreign domain, "$S" the server's name, "$I"
 * its IP literal, "$F" and "$T" the sender and recipient local parts
 * (antispam, relaytest, as nmap's).
 */
static void
probe_relay_expand(const struct probe_relay_ctx *x, const char *fmt, char *out,
		   size_t size)
{
	size_t o = 0;

	for (const char *p = fmt; *p != '\0' && o + 1 < size; p++) {
		const char *ins = NULL;
		char k = *p == '$' ? p[1] : '\0';

		if (k == 'F')
			ins = PROBE_RELAY_FROM;
		else if (k == 'T')
			ins = PROBE_RELAY_TO;
		else if (k == 'D')
			ins = x->d;
		else if (k == 'S')
			ins = x->s;
		else if (k == 'I')
			ins = x->i;
		if (ins == NULL) {
			out[o++] = *p;
			continue;
		}
		p++;
		for (; *ins != '\0' && o + 1 < size; ins++)
			out[o++] = *ins;
	}
	out[o] = '\0';
}

static struct probe_relay_form *
probe_relay_new(struct probe_relay_ctx *x, const char *kind)
{
	struct probe_relay_form *f;

	if (x->n >= x->max)
		return NULL;
	f = &x->forms[x->n++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	return f;
}

/* A form written with the letters of probe_relay_expand(). */
static void
probe_relay_pair(struct probe_relay_ctx *x, const char *kind, const char *from,
		 const char *to)
{
	struct probe_relay_form *f = probe_relay_new(x, kind);

	if (f == NULL)
		return;
	probe_relay_expand(x, from, f->from, sizeof(f->from));
	probe_relay_expand(x, to, f->to, sizeof(f->to));
}

/* A form whose recipient has a quoted local part, written by
   smtp_path_format() from the local part and the domain. */
static void
probe_relay_quoted(struct probe_relay_ctx *x, const char *kind,
		   const char *local, const char *domain)
{
	struct probe_relay_form *f = probe_relay_new(x, kind);
	struct smtp_path p;

	if (f == NULL)
		return;
	memset(&p, 0, sizeof(p));
	probe_relay_expand(x, "$F@$I", f->from, sizeof(f->from));
	probe_relay_expand(x, local, p.local, sizeof(p.local));
	p.local_len = strlen(p.local);
	probe_relay_expand(x, domain, p.domain, sizeof(p.domain));
	p.domain_len = strlen(p.domain);
	if (smtp_path_format(&p, f->to, sizeof(f->to)) < 0)
		x->n--;
}

/* Does `domain` (from our parser: lower case) name the server itself? */
static bool
probe_relay_is_own(const struct probe_relay_ctx *x, const char *domain)
{
	return strcasecmp(domain, x->s) == 0 || strcasecmp(domain, x->i) == 0;
}

static void
probe_relay_classify(const struct probe_relay_ctx *x,
		     struct probe_relay_form *f)
{
	char args[320];
	struct smtp_path p;
	int n = snprintf(args, sizeof(args), "TO:<%s>", f->to);

	if (n < 0 || (size_t)n >= sizeof(args))
		return;
	f->valid = smtp_parse_rcpt(args, (size_t)n, false, &p) == SMTP_PERR_OK;
	f->foreign = f->valid && !probe_relay_is_own(x, p.domain);
}

static void
probe_relay_case(const char *in, char *out, size_t size, bool upper_all)
{
	size_t i = 0;
	bool start = true;

	for (; in[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (char)(upper_all || start ? toupper(c) : c);
		start = c == '.' || c == '@';
	}
	out[i] = '\0';
}

size_t
probe_relay_forms(const char *domain, const char *srvname,
		  const char *ip_literal, struct probe_relay_form *forms,
		  size_t max)
{
	struct probe_relay_ctx x = {domain, srvname, ip_literal, forms, 0, max};
	char up[300], mixed[300];

	/* nmap smtp-open-relay, in its order. */
	probe_relay_pair(&x, "nmap 1", "", "$T@$D");
	probe_relay_pair(&x, "nmap 2", "$F@$D", "$T@$D");
	probe_relay_pair(&x, "nmap 3", "$F@$S", "$T@$D");
	probe_relay_pair(&x, "nmap 4", "$F@$I", "$T@$D");
	probe_relay_pair(&x, "nmap 5", "$F@$I", "$T%$D@$I");
	probe_relay_pair(&x, "nmap 6", "$F@$I", "$T%$D@$S");
	probe_relay_pair(&x, "nmap 7", "$F@$I", "\"$T@$D\"");
	probe_relay_pair(&x, "nmap 8", "$F@$I", "\"$T%$D\"");
	probe_relay_pair(&x, "nmap 9", "$F@$I", "$T@$D@$I");
	probe_relay_quoted(&x, "nmap 10", "$T@$D", "$I");
	probe_relay_pair(&x, "nmap 11", "$F@$I", "$T@$D@$S");
	probe_relay_pair(&x, "nmap 12", "$F@$I", "@$I:$T@$D");
	probe_relay_pair(&x, "nmap 13", "$F@$I", "@$S:$T@$D");
	probe_relay_pair(&x, "nmap 14", "$F@$I", "$D!$T");
	probe_relay_pair(&x, "nmap 15", "$F@$I", "$D!$T@$I");
	probe_relay_pair(&x, "nmap 16", "$F@$I", "$D!$T@$S");
	/* More forms (docs/probe.md). */
	probe_relay_pair(&x, "source route, two hops", "$F@$I",
			 "@$S,@$I:$T@$D");
	probe_relay_pair(&x, "source route, null sender", "", "@$S:$T@$D");
	probe_relay_pair(&x, "percent, no domain", "$F@$I", "$T%$D");
	probe_relay_quoted(&x, "quoted percent", "$T%$D", "$S");
	probe_relay_quoted(&x, "quoted at-sign", "$T@$D", "$S");
	probe_relay_quoted(&x, "quoted bang path", "$D!$T", "$S");
	probe_relay_pair(&x, "percent, trailing dot", "$F@$I", "$T%$D@$S.");
	probe_relay_pair(&x, "IPv4 literal", "$F@$I", "$T@[192.0.2.1]");
	probe_relay_pair(&x, "IPv6 literal", "$F@$I", "$T@[IPv6:2001:db8::1]");
	probe_relay_pair(&x, "trailing dot", "$F@$I", "$T@$D.");
	probe_relay_case(domain, up, sizeof(up), true);
	probe_relay_case(domain, mixed, sizeof(mixed), false);
	x.d = up;
	probe_relay_pair(&x, "upper case", "$F@$I", "RELAYTEST@$D");
	probe_relay_pair(&x, "local sender, upper case", "$F@$S", "$T@$D");
	x.d = mixed;
	probe_relay_pair(&x, "mixed case", "$F@$I", "Relaytest@$D");
	x.d = domain;
	probe_relay_pair(&x, "space after the colon", "$F@$I", "$T@$D");
	if (x.n > 0 &&
	    strcmp(x.forms[x.n - 1].kind, "space after the colon") == 0)
		x.forms[x.n - 1].space = true;
	for (size_t i = 0; i < x.n; i++)
		probe_relay_classify(&x, &x.forms[i]);
	return x.n;
}

/* ---- the check ------------------------------------------------------------
 */

struct probe_relay_run {
	size_t tried, accepted, temp, refused, errors;
	int mail_code, rcpt_code; /* a typical refusal */
	bool needs_auth;
	char auth_text[120];
	struct probe_buf acc;
};

/*
 * One form: RSET, MAIL, RCPT. Returns 1 done, 0 retry on a new session,
 * -1 when MAIL or RCPT said 530 (authentication or TLS needed).
 */
static int
probe_relay_one(struct probe_port_state *ps, struct probe_session *s,
		const struct probe_relay_form *f, struct probe_relay_run *run)
{
	struct peer_reply r;

	if (probe_conn_cmd(&s->c, &r, "RSET") < 0 || r.code == 421)
		return 0;
	ps->pr->sent.relay_pairs++;
	if (probe_conn_cmd(&s->c, &r, "MAIL FROM:<%s>", f->from) < 0 ||
	    r.code == 421)
		return 0;
	if (r.code == 530)
		goto auth;
	if (r.code / 100 != 2) {
		run->refused++;
		run->mail_code = r.code;
		return 1;
	}
	if (probe_conn_cmd(&s->c, &r, "RCPT TO:%s<%s>", f->space ? " " : "",
			   f->to) < 0 ||
	    r.code == 421)
		return 0;
	if (r.code == 530)
		goto auth;
	if (r.code / 100 == 2) {
		run->accepted++;
		probe_buf_addf(
		    &run->acc, "%sMAIL FROM:<%s> -> RCPT TO:<%s> (%s)",
		    run->acc.len ? "; " : "", f->from, f->to, f->kind);
	} else if (r.code / 100 == 4) {
		run->temp++;
	} else {
		run->refused++;
		run->rcpt_code = r.code;
	}
	return 1;
auth:
	(void)snprintf(run->auth_text, sizeof(run->auth_text), "%u %s", r.code,
		       r.status);
	return -1;
}

/* Every form on one session state; false when 530 asks for more. */
static bool
probe_relay_forms_run(struct probe_port_state *ps, struct probe_session *s,
		      bool tls, const struct probe_relay_form *forms, size_t n,
		      struct probe_relay_run *run)
{
	for (size_t i = 0; i < n; i++) {
		int rc = 0;

		for (int attempt = 0; attempt < 3 && rc == 0; attempt++) {
			if (probe_session_get(ps, s, tls) < 0)
				break;
			rc = probe_relay_one(ps, s, &forms[i], run);
			if (rc == 0)
				probe_conn_close(&s->c);
		}
		if (rc < 0) {
			run->needs_auth = true;
			return false;
		}
		run->tried++;
		if (rc == 0)
			run->errors++;
	}
	return true;
}

static void
probe_relay_verdict(struct probe_port *out, struct probe_relay_run *run,
		    size_t n)
{
	if (run->accepted > 0)
		probe_set(out, PC_RELAY_OPEN, PROBE_FAIL,
			  "open relay: %zu of %zu forms accepted at RCPT (no "
			  "DATA sent): %s",
			  run->accepted, n, run->acc.s);
	else if (run->needs_auth)
		probe_set(out, PC_RELAY_OPEN, PROBE_PASS,
			  "MAIL needs authentication (%s)", run->auth_text);
	else if (run->temp > 0)
		probe_set(out, PC_RELAY_OPEN, PROBE_WARN,
			  "no form accepted, but %zu got a temporary refusal "
			  "(4xx), which may hide an open relay",
			  run->temp);
	else if (run->errors > 0)
		probe_set(out, PC_RELAY_OPEN, PROBE_WARN,
			  "no form accepted, but %zu of %zu could not be tried "
			  "(connection lost)",
			  run->errors, n);
	else if (run->mail_code != 0 && run->rcpt_code != 0)
		probe_set(out, PC_RELAY_OPEN, PROBE_PASS,
			  "all %zu forms refused (at MAIL with %d, at RCPT "
			  "with %d)",
			  n, run->mail_code, run->rcpt_code);
	else
		probe_set(out, PC_RELAY_OPEN, PROBE_PASS,
			  "all %zu forms refused at %s (%d)", n,
			  run->mail_code != 0 ? "MAIL" : "RCPT",
			  run->mail_code != 0 ? run->mail_code
					      : run->rcpt_code);
}

void
probe_relay_check(struct probe_port_state *ps, struct probe_session *s)
{
	struct probe_relay_form forms[PROBE_RELAY_FORMS_MAX];
	const char *domain = ps->pr->o->relay_domain;
	struct probe_relay_run run;
	size_t n;
	bool tls = s->is_tls;

	memset(&run, 0, sizeof(run));
	n = probe_relay_forms(domain, ps->srvname, ps->pr->ip_literal, forms,
			      PROBE_RELAY_FORMS_MAX);
	if (!probe_relay_forms_run(ps, s, tls, forms, n, &run) && !tls &&
	    ps->out->role == PROBE_ROLE_STARTTLS && run.accepted == 0) {
		/* 530 before TLS: "Must issue a STARTTLS command first" is
		   no proof; try again inside TLS. */
		memset(&run, 0, sizeof(run));
		(void)probe_relay_forms_run(ps, s, true, forms, n, &run);
	}
	if (run.tried == 0 && !run.needs_auth)
		probe_set(ps->out, PC_RELAY_OPEN, PROBE_SKIP,
			  "no session for the relay test: %s", s->c.error);
	else
		probe_relay_verdict(ps->out, &run, n);
	probe_buf_free(&run.acc);
	if (probe_conn_is_open(&s->c)) {
		struct peer_reply r;

		if (probe_conn_cmd(&s->c, &r, "RSET") < 0)
			probe_conn_close(&s->c);
	}
}
