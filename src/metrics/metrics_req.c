/*
 * metrics_req.c - the scrape request's method, path and Accept header.
 * See metrics_req.h. Malformed elements of Accept are skipped, never an
 * error: a scraper always gets an answer it can read.
 */
#include "metrics/metrics_req.h"

#include <string.h>
#include <strings.h>

/* A cursor over the header value. */
struct metrics_cur {
	const char *p, *end;
};

/* RFC 9110 5.6.2 tchar. */
static bool
metrics_req_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void
metrics_req_ows(struct metrics_cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* A token: its start and length (0: none). */
static size_t
metrics_req_token(struct metrics_cur *c, const char **tok_r)
{
	const char *start = c->p;

	while (c->p < c->end && *c->p != '\0' &&
	       metrics_req_tchar((unsigned char)*c->p))
		c->p++;
	*tok_r = start;
	return (size_t)(c->p - start);
}

/* A token or a quoted-string (RFC 9110 5.6.4), its inside in `val`
   (escapes kept, enough for the values compared here). */
static size_t
metrics_req_value(struct metrics_cur *c, const char **val_r)
{
	const char *start;

	if (c->p >= c->end || *c->p != '"')
		return metrics_req_token(c, val_r);
	start = ++c->p;
	while (c->p < c->end && *c->p != '"') {
		if (*c->p == '\\' && c->p + 1 < c->end)
			c->p++;
		c->p++;
	}
	*val_r = start;
	if (c->p >= c->end)
		return 0; /* unterminated */
	return (size_t)(c->p++ - start);
}

static bool
metrics_req_is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && strncasecmp(s, lit, n) == 0;
}

/* A weight "0", "0.5", "1.000" as thousandths; -1 when malformed. */
static int
metrics_req_qvalue(const char *s, size_t n)
{
	int q = 0, scale = 1000;

	if (n == 0 || (s[0] != '0' && s[0] != '1') || (n > 1 && s[1] != '.') ||
	    n > 5)
		return -1;
	q = (s[0] - '0') * 1000;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		scale /= 10;
		q += (s[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

/* One media range: which of our formats it covers, how specifically
   (2 exact, 1 type/ *, 0 * / *; -1: none) and its weight. */
struct metrics_range {
	int spec[2];
	int q;
	bool bad;
};

static void
metrics_req_type(struct metrics_range *r, const char *t, size_t tn,
		 const char *s, size_t sn)
{
	bool any_sub = metrics_req_is(s, sn, "*");

	r->spec[0] = r->spec[1] = -1;
	if (metrics_req_is(t, tn, "*") && any_sub) {
		r->spec[METRICS_TEXT] = 0; /* wildcards mean the old format */
	} else if (metrics_req_is(t, tn, "text")) {
		if (any_sub)
			r->spec[METRICS_TEXT] = 1;
		else if (metrics_req_is(s, sn, "plain"))
			r->spec[METRICS_TEXT] = 2;
	} else if (metrics_req_is(t, tn, "application") &&
		   metrics_req_is(s, sn, "openmetrics-text")) {
		r->spec[METRICS_OPENMETRICS] = 2;
	}
}

/* A parameter of a range: q, or a version that rules a format out. */
static void
metrics_req_param(struct metrics_range *r, const char *n, size_t nn,
		  const char *v, size_t vn)
{
	if (metrics_req_is(n, nn, "q")) {
		r->q = metrics_req_qvalue(v, vn);
		r->bad |= r->q < 0;
	} else if (metrics_req_is(n, nn, "version")) {
		if (r->spec[METRICS_OPENMETRICS] == 2 &&
		    !(vn == 5 && memcmp(v, "1.0.0", 5) == 0))
			r->spec[METRICS_OPENMETRICS] = -1;
		if (r->spec[METRICS_TEXT] == 2 &&
		    !(vn == 5 && memcmp(v, "0.0.4", 5) == 0))
			r->spec[METRICS_TEXT] = -1;
	}
}

/* Parse one element up to the next comma outside quotes (consumed). */
static void
metrics_req_range(struct metrics_cur *c, struct metrics_range *r)
{
	const char *t, *s, *n, *v;
	size_t tn, sn, nn, vn;

	r->q = 1000;
	r->bad = false;
	r->spec[0] = r->spec[1] = -1;
	metrics_req_ows(c);
	tn = metrics_req_token(c, &t);
	if (tn == 0 || c->p >= c->end || *c->p != '/')
		r->bad = true;
	else
		c->p++;
	sn = r->bad ? 0 : metrics_req_token(c, &s);
	r->bad |= sn == 0;
	if (!r->bad)
		metrics_req_type(r, t, tn, s, sn);
	for (;;) {
		metrics_req_ows(c);
		if (c->p >= c->end || *c->p == ',')
			break;
		if (r->bad || *c->p != ';') {
			r->bad = true;
			if (*c->p == '"')
				metrics_req_value(c, &v); /* skip it whole */
			else
				c->p++;
			continue;
		}
		c->p++;
		metrics_req_ows(c);
		nn = metrics_req_token(c, &n);
		if (nn == 0 || c->p >= c->end || *c->p != '=') {
			r->bad |= nn != 0; /* "a/b;" is allowed */
			continue;
		}
		c->p++;
		vn = metrics_req_value(c, &v);
		metrics_req_param(r, n, nn, v, vn);
	}
	if (c->p < c->end)
		c->p++; /* the comma */
}

enum metrics_format
metrics_req_accept(const char *accept, size_t len)
{
	struct metrics_cur c;
	int best_spec[2] = {-1, -1}, best_q[2] = {0, 0};

	if (accept == NULL)
		return METRICS_TEXT;
	c.p = accept;
	c.end = accept + (len < METRICS_REQ_ACCEPT_MAX ? len
						       : METRICS_REQ_ACCEPT_MAX);
	while (c.p < c.end) {
		struct metrics_range r;

		metrics_req_range(&c, &r);
		for (int f = 0; f < 2 && !r.bad; f++) {
			if (r.spec[f] < 0 || r.spec[f] < best_spec[f])
				continue;
			/* The most specific range rules (RFC 9110 12.5.1);
			   among equals the highest weight. */
			if (r.spec[f] > best_spec[f] || r.q > best_q[f])
				best_q[f] = r.q;
			best_spec[f] = r.spec[f];
		}
	}
	if (best_spec[METRICS_OPENMETRICS] >= 0 &&
	    best_q[METRICS_OPENMETRICS] > 0 &&
	    best_q[METRICS_OPENMETRICS] >= best_q[METRICS_TEXT])
		return METRICS_OPENMETRICS;
	return METRICS_TEXT;
}

/* The path is /metrics, with or without a query. */
static bool
metrics_req_path_ok(const char *uri, size_t n)
{
	static const char path[] = "/metrics";
	size_t pn = sizeof(path) - 1;

	return n >= pn && memcmp(uri, path, pn) == 0 &&
	       (n == pn || uri[pn] == '?');
}

void
metrics_req_parse(const char *method, const char *uri, size_t uri_len,
		  const char *accept, size_t accept_len, struct metrics_req *r)
{
	memset(r, 0, sizeof(*r));
	if (uri == NULL || !metrics_req_path_ok(uri, uri_len)) {
		r->status = 404;
		return;
	}
	if (method == NULL ||
	    (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
		r->status = 405;
		return;
	}
	r->status = 200;
	r->is_head = strcmp(method, "HEAD") == 0;
	r->format = metrics_req_accept(accept, accept_len);
}
