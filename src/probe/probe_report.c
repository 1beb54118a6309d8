/*
 * probe_report.c - the results of `postern probe`: check names, outcomes,
 * the overall grade (the rule is written in docs/probe.md), the human
 * report and the JSON object. Details may carry bytes a server sent (a
 * banner is hostile input): JSON escapes them, the human report shows
 * printable ASCII only.
 */
#include "probe/probe_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const probe_check_names[PC_COUNT] = {
    [PC_BANNER_VERSION] = "banner.version",
    [PC_TLS_STARTTLS] = "tls.starttls",
    [PC_TLS_PROTOCOLS] = "tls.protocols",
    [PC_TLS_CIPHERS] = "tls.ciphers",
    [PC_TLS_CERTIFICATE] = "tls.certificate",
    [PC_TLS_DANE] = "tls.dane",
    [PC_AUTH_BEFORE_TLS] = "auth.before_tls",
    [PC_AUTH_PLAINTEXT] = "auth.plaintext_mechanisms",
    [PC_RELAY_OPEN] = "relay.open",
    [PC_USERS_VRFY] = "users.vrfy",
    [PC_USERS_EXPN] = "users.expn",
    [PC_PIPELINING] = "pipelining",
    [PC_SMUGGLING] = "smuggling",
    [PC_LOCKOUT] = "lockout",
    [PC_CONN_LIMIT] = "conn-limit",
};

/*
 * What a failure of each check costs (docs/probe.md, "Grade"): F when
 * the server can be used to send mail it should not (relay, smuggling),
 * E when passwords can travel in clear, D for weak or missing TLS and for
 * unlimited password guessing, C for the rest.
 */
static const char probe_severity[PC_COUNT] = {
    [PC_BANNER_VERSION] = 'C',	[PC_TLS_STARTTLS] = 'D',
    [PC_TLS_PROTOCOLS] = 'D',	[PC_TLS_CIPHERS] = 'D',
    [PC_TLS_CERTIFICATE] = 'D', [PC_TLS_DANE] = 'D',
    [PC_AUTH_BEFORE_TLS] = 'E', [PC_AUTH_PLAINTEXT] = 'E',
    [PC_RELAY_OPEN] = 'F',	[PC_USERS_VRFY] = 'C',
    [PC_USERS_EXPN] = 'C',	[PC_PIPELINING] = 'C',
    [PC_SMUGGLING] = 'F',	[PC_LOCKOUT] = 'D',
    [PC_CONN_LIMIT] = 'C',
};

/* ---- strings ---------------------------------------------------------- */

static void
probe_buf_grow(struct probe_buf *b, size_t more)
{
	size_t need = b->len + more + 1;
	char *s;

	if (need <= b->cap)
		return;
	if (need < 64)
		need = 64;
	if (need < b->cap * 2)
		need = b->cap * 2;
	s = realloc(b->s, need);
	if (s == NULL) {
		fprintf(stderr, "postern probe: out of memory\n");
		abort();
	}
	b->s = s;
	b->cap = need;
}

void
probe_buf_add(struct probe_buf *b, const char *s, size_t len)
{
	probe_buf_grow(b, len);
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

void
probe_buf_addf(struct probe_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	probe_buf_grow(b, (size_t)n);
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n;
}

void
probe_buf_add_peer(struct probe_buf *b, const char *s, size_t len, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = len < max ? len : max;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};

		if (c >= 0x20 && c < 0x7f && c != '\\')
			probe_buf_add(b, (const char *)&c, 1);
		else
			probe_buf_add(b, esc, 4);
	}
	if (n < len)
		probe_buf_add(b, "...", 3);
}

char *
probe_buf_take(struct probe_buf *b)
{
	char *s = b->s;

	if (s == NULL) {
		s = strdup("");
		if (s == NULL)
			abort();
	}
	memset(b, 0, sizeof(*b));
	return s;
}

void
probe_buf_free(struct probe_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* ---- names and outcomes -------------------------------------------------- */

const char *
probe_check_name(enum probe_check id)
{
	return (unsigned)id < PC_COUNT ? probe_check_names[id] : "?";
}

const char *
probe_result_name(enum probe_result r)
{
	switch (r) {
	case PROBE_PASS:
		return "pass";
	case PROBE_WARN:
		return "warn";
	case PROBE_FAIL:
		return "fail";
	case PROBE_SKIP:
		break;
	}
	return "skip";
}

const char *
probe_role_name(enum probe_role r)
{
	switch (r) {
	case PROBE_ROLE_PLAIN:
		return "plain";
	case PROBE_ROLE_STARTTLS:
		return "starttls";
	case PROBE_ROLE_IMPLICIT_TLS:
		return "implicit-tls";
	case PROBE_ROLE_UNKNOWN:
		return "unknown";
	case PROBE_ROLE_CLOSED:
		break;
	}
	return "closed";
}

char
probe_check_severity(enum probe_check id)
{
	return (unsigned)id < PC_COUNT ? probe_severity[id] : 'C';
}

void
probe_set_owned(struct probe_port *p, enum probe_check id, enum probe_result r,
		char *detail)
{
	struct probe_outcome *o = &p->checks[id];

	free(o->detail);
	o->result = r;
	o->detail = detail;
	o->is_set = true;
}

void
probe_set(struct probe_port *p, enum probe_check id, enum probe_result r,
	  const char *fmt, ...)
{
	struct probe_buf b = {0};
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		probe_buf_grow(&b, (size_t)n);
		va_start(ap, fmt);
		n = vsnprintf(b.s, (size_t)n + 1, fmt, ap);
		va_end(ap);
		b.len = n > 0 ? (size_t)n : 0;
	}
	probe_set_owned(p, id, r, probe_buf_take(&b));
}

void
probe_set_rest(struct probe_port *p, enum probe_result r, const char *detail)
{
	for (int i = 0; i < PC_COUNT; i++)
		if (!p->checks[i].is_set)
			probe_set(p, (enum probe_check)i, r, "%s", detail);
}

/* ---- grade and exit status ---------------------------------------------- */

static bool
probe_any_reached(const struct probe_report *rep)
{
	for (size_t i = 0; i < rep->n_ports; i++)
		if (rep->ports[i].role != PROBE_ROLE_CLOSED &&
		    rep->ports[i].role != PROBE_ROLE_UNKNOWN)
			return true;
	return false;
}

char
probe_grade(const struct probe_report *rep, const char **why_r)
{
	static char why[160];
	char grade = 'A';
	bool warned = false;

	if (!probe_any_reached(rep)) {
		*why_r = "no port answered SMTP";
		return '-';
	}
	*why_r = "every check passed or did not apply";
	for (size_t i = 0; i < rep->n_ports; i++) {
		for (int c = 0; c < PC_COUNT; c++) {
			const struct probe_outcome *o =
			    &rep->ports[i].checks[c];
			char sev = probe_check_severity((enum probe_check)c);

			if (o->result == PROBE_WARN)
				warned = true;
			if (o->result != PROBE_FAIL || sev <= grade)
				continue;
			grade = sev;
			(void)snprintf(why, sizeof(why), "%s failed on port %u",
				       probe_check_name((enum probe_check)c),
				       rep->ports[i].port);
			*why_r = why;
		}
	}
	if (grade == 'A' && warned) {
		*why_r = "nothing failed, some checks warned";
		return 'B';
	}
	return grade;
}

int
probe_exit_status(const struct probe_report *rep)
{
	if (!probe_any_reached(rep))
		return 2;
	for (size_t i = 0; i < rep->n_ports; i++)
		for (int c = 0; c < PC_COUNT; c++)
			if (rep->ports[i].checks[c].result == PROBE_FAIL)
				return 1;
	return 0;
}

/* ---- JSON -----------------------------------------------------------------
 */

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
static size_t
probe_utf8_len(const unsigned char *s, size_t len)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * RFC 8259 section 7: '"', '\' and controls escaped; DEL and the
 * separators U+2028/U+2029 too (so the output is safe to embed in
 * JavaScript); invalid UTF-8 becomes U+FFFD.
 */
void
probe_json_string(FILE *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	fputc('"', out);
	while (i < len) {
		unsigned char c = p[i];
		size_t n = probe_utf8_len(p + i, len - i);

		if (n == 0) {
			fputs("\\ufffd", out);
			i++;
		} else if (n > 1) {
			if (n == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
			    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
				fprintf(out, "\\u%04x",
					0x2000 | (p[i + 2] - 0x80));
			else
				fwrite(p + i, 1, n, out);
			i += n;
		} else {
			if (c == '"' || c == '\\')
				fprintf(out, "\\%c", c);
			else if (c == '\n')
				fputs("\\n", out);
			else if (c == '\r')
				fputs("\\r", out);
			else if (c == '\t')
				fputs("\\t", out);
			else if (c < 0x20 || c == 0x7f)
				fprintf(out, "\\u%04x", c);
			else
				fputc(c, out);
			i++;
		}
	}
	fputc('"', out);
}

static void
probe_json_cstr(FILE *out, const char *s)
{
	probe_json_string(out, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* {"target": ..., "grade": ..., "ports": [{"port": ..., "role": ...,
   "checks": [{"id": ..., "result": ..., "detail": ...}]}]} */
void
probe_report_json(const struct probe_report *rep, FILE *out)
{
	const char *why;
	char grade = probe_grade(rep, &why);

	fputs("{\"target\": ", out);
	probe_json_cstr(out, rep->target);
	if (grade == '-')
		fputs(", \"grade\": null", out);
	else
		fprintf(out, ", \"grade\": \"%c\"", grade);
	fputs(", \"ports\": [", out);
	for (size_t i = 0; i < rep->n_ports; i++) {
		const struct probe_port *p = &rep->ports[i];

		fprintf(out, "%s{\"port\": %u, \"role\": \"%s\", \"checks\": [",
			i > 0 ? ", " : "", p->port, probe_role_name(p->role));
		for (int c = 0; c < PC_COUNT; c++) {
			fprintf(out,
				"%s{\"id\": \"%s\", \"result\": \"%s\", "
				"\"detail\": ",
				c > 0 ? ", " : "",
				probe_check_name((enum probe_check)c),
				probe_result_name(p->checks[c].result));
			probe_json_cstr(out, p->checks[c].detail);
			fputc('}', out);
		}
		fputs("]}", out);
	}
	fputs("]}\n", out);
}

/* ---- the human report ---------------------------------------------------- */

#define PROBE_TEXT_WIDTH 100

/* Write s as printable ASCII ('?' for anything else), cut to `max`
   columns with "..." unless max is 0. */
static void
probe_text_line(FILE *out, const char *s, size_t max)
{
	size_t len = s != NULL ? strlen(s) : 0;
	bool cut = max > 3 && len > max;
	size_t n = cut ? max - 3 : len;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		fputc(c >= 0x20 && c < 0x7f ? c : '?', out);
	}
	if (cut)
		fputs("...", out);
}

static const char *
probe_result_label(enum probe_result r)
{
	switch (r) {
	case PROBE_PASS:
		return "PASS";
	case PROBE_WARN:
		return "WARN";
	case PROBE_FAIL:
		return "FAIL";
	case PROBE_SKIP:
		break;
	}
	return "SKIP";
}

void
probe_report_text(const struct probe_report *rep, bool verbose, FILE *out)
{
	const char *why;
	char grade = probe_grade(rep, &why);

	fputs("postern probe of ", out);
	probe_text_line(out, rep->target, 0);
	fputs("\nsent: ", out);
	probe_text_line(out, rep->sent, 0);
	fputs("\n", out);
	for (size_t i = 0; i < rep->n_ports; i++) {
		const struct probe_port *p = &rep->ports[i];

		fprintf(out, "\nport %u (%s)", p->port,
			probe_role_name(p->role));
		if (p->host[0] != '\0') {
			fputs(" at ", out);
			probe_text_line(out, p->host, 0);
		}
		fputs("\n", out);
		for (int c = 0; c < PC_COUNT; c++) {
			const struct probe_outcome *o = &p->checks[c];

			fprintf(out, "  %s  %-26s ",
				probe_result_label(o->result),
				probe_check_name((enum probe_check)c));
			probe_text_line(out, o->detail,
					verbose ? 0 : PROBE_TEXT_WIDTH - 35);
			fputs("\n", out);
		}
	}
	if (grade == '-')
		fprintf(out, "\ngrade: none (%s)\n", why);
	else
		fprintf(out, "\ngrade: %c (%s; the rule: docs/probe.md)\n",
			grade, why);
}

void
probe_report_free(struct probe_report *rep)
{
	for (size_t i = 0; i < rep->n_ports; i++)
		for (int c = 0; c < PC_COUNT; c++)
			free(rep->ports[i].checks[c].detail);
	free(rep->ports);
	free(rep->sent);
	memset(rep, 0, sizeof(*rep));
}
