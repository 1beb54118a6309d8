/*
 * mtasts.c - MTA-STS (RFC 8461) without I/O: the TXT record, the policy,
 * MX matching, the cache file's text and name. See mtasts.h.
 */
#include "outbound/mtasts.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MTASTS_KEY_MAX 32 /* RFC 8461 3.1/3.2: a field name */

static bool
mtasts_is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool
mtasts_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char
mtasts_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* RFC 8461 3.1/3.2 field names: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" /
   "-" / "."). */
static bool
mtasts_key_ok(const char *k, size_t n)
{
	if (n == 0 || n > MTASTS_KEY_MAX || !mtasts_is_alnum((unsigned char)k[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!mtasts_is_alnum((unsigned char)k[i]) && k[i] != '_' &&
		    k[i] != '-' && k[i] != '.')
			return false;
	return true;
}

/* --- the TXT record (RFC 8461 3.1) ----------------------------------- */

static bool
mtasts_txt_is_sts(const char *r, size_t n)
{
	return n >= 7 && memcmp(r, "v=STSv1", 7) == 0 &&
	       (n == 7 || r[7] == ';' || mtasts_is_wsp((unsigned char)r[7]));
}

/* One field, `name=value`, at r[*off]; an `id` is copied into `id`. */
static int
mtasts_txt_field(const char *r, size_t n, size_t *off, char *id)
{
	size_t i = *off, k = i, v;

	while (i < n && r[i] != '=' && r[i] != ';' &&
	       !mtasts_is_wsp((unsigned char)r[i]))
		i++;
	if (i >= n || r[i] != '=' || !mtasts_key_ok(r + k, i - k))
		return -1;
	v = ++i;
	/* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) */
	while (i < n && (unsigned char)r[i] >= 0x21 &&
	       (unsigned char)r[i] <= 0x7e && r[i] != ';' && r[i] != '=')
		i++;
	if (i == v)
		return -1;
	if (v - k == 3 && memcmp(r + k, "id", 2) == 0) {
		if (i - v > MTASTS_ID_MAX)
			return -1;
		for (size_t j = v; j < i; j++)
			if (!mtasts_is_alnum((unsigned char)r[j]))
				return -1;
		if (id[0] == '\0') { /* the first id counts */
			memcpy(id, r + v, i - v);
			id[i - v] = '\0';
		}
	}
	*off = i;
	return 0;
}

/* sts-text-record = sts-version 1*(*WSP %x3B *WSP sts-field) [%x3B] */
static int
mtasts_txt_one(const char *r, size_t n, char *id)
{
	size_t i = 7, fields = 0;

	id[0] = '\0';
	for (;;) {
		while (i < n && mtasts_is_wsp((unsigned char)r[i]))
			i++;
		if (i >= n)
			break;
		if (r[i++] != ';')
			return -1;
		while (i < n && mtasts_is_wsp((unsigned char)r[i]))
			i++;
		if (i >= n)
			break; /* a final ';' */
		if (mtasts_txt_field(r, n, &i, id) < 0)
			return -1;
		fields++;
	}
	return fields > 0 && id[0] != '\0' ? 0 : -1;
}

int
mtasts_txt_parse(const char *const *recs, const size_t *lens, size_t n,
		 char id[MTASTS_ID_MAX + 1], const char **error_r)
{
	size_t found = 0, which = 0;

	for (size_t i = 0; i < n; i++) {
		if (mtasts_txt_is_sts(recs[i], lens[i])) {
			found++;
			which = i;
		}
	}
	if (found == 0) {
		*error_r = "no STSv1 TXT record";
		return -1;
	}
	if (found > 1) {
		*error_r = "more than one STSv1 TXT record";
		return -1;
	}
	if (mtasts_txt_one(recs[which], lens[which], id) < 0) {
		*error_r = "malformed STSv1 TXT record";
		return -1;
	}
	return 0;
}

/* --- the policy (RFC 8461 3.2) --------------------------------------- */

/* A host name of a pattern: LDH labels of 1 to 63 octets, at most 253 in
   all, lower-cased into `out`; one final dot is dropped. */
static int
mtasts_domain(const char *s, size_t n, char *out)
{
	size_t label = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (mtasts_is_alnum(c) || c == '-') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)mtasts_lower(c);
	}
	if (label == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

static int
mtasts_mx_add(struct mtasts_policy *p, const char *v, size_t n,
	      const char **error_r)
{
	char *out;
	size_t skip = 0;

	if (p->n_mx >= MTASTS_MX_MAX) {
		*error_r = "too many mx patterns";
		return -1;
	}
	out = p->mx[p->n_mx];
	if (n >= 2 && v[0] == '*' && v[1] == '.') {
		memcpy(out, "*.", 2);
		skip = 2;
	}
	if (mtasts_domain(v + skip, n - skip, out + skip) < 0) {
		*error_r = "malformed mx pattern";
		return -1;
	}
	p->n_mx++;
	return 0;
}

static int
mtasts_max_age(const char *v, size_t n, unsigned long *out)
{
	unsigned long a = 0;

	if (n == 0 || n > 10) /* 1*10DIGIT */
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		a = a * 10 + (unsigned long)(v[i] - '0');
	}
	*out = a > MTASTS_MAX_AGE_MAX ? MTASTS_MAX_AGE_MAX : a;
	return 0;
}

enum { SEEN_VERSION = 1, SEEN_MODE = 2, SEEN_AGE = 4 };

/* One `key: value` line (without its line end). */
static int
mtasts_policy_line(const char *l, size_t n, struct mtasts_policy *p,
		   unsigned *seen, const char **error_r)
{
	const char *colon = memchr(l, ':', n);
	size_t k, vs, ve;

	*error_r = "malformed policy line";
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)l[i] < 0x20 && l[i] != '\t') ||
		    l[i] == 0x7f)
			return -1;
	if (colon == NULL)
		return -1;
	k = (size_t)(colon - l);
	if (!mtasts_key_ok(l, k))
		return -1;
	vs = k + 1;
	ve = n;
	while (vs < ve && mtasts_is_wsp((unsigned char)l[vs]))
		vs++;
	while (ve > vs && mtasts_is_wsp((unsigned char)l[ve - 1]))
		ve--;
	if (k == 2 && memcmp(l, "mx", 2) == 0)
		return mtasts_mx_add(p, l + vs, ve - vs, error_r);
	if (k == 7 && memcmp(l, "version", 7) == 0 && !(*seen & SEEN_VERSION)) {
		*seen |= SEEN_VERSION;
		*error_r = "unknown policy version";
		return ve - vs == 5 && memcmp(l + vs, "STSv1", 5) == 0 ? 0 : -1;
	}
	if (k == 4 && memcmp(l, "mode", 4) == 0 && !(*seen & SEEN_MODE)) {
		static const char *const modes[] = {"none", "testing",
						    "enforce"};

		*seen |= SEEN_MODE;
		for (size_t i = 0; i < 3; i++)
			if (ve - vs == strlen(modes[i]) &&
			    memcmp(l + vs, modes[i], ve - vs) == 0) {
				p->mode = (enum mtasts_mode)i;
				return 0;
			}
		*error_r = "unknown policy mode";
		return -1;
	}
	if (k == 7 && memcmp(l, "max_age", 7) == 0 && !(*seen & SEEN_AGE)) {
		*seen |= SEEN_AGE;
		*error_r = "malformed max_age";
		return mtasts_max_age(l + vs, ve - vs, &p->max_age);
	}
	return 0; /* unknown or repeated: ignored */
}

int
mtasts_policy_parse(const char *body, size_t len, struct mtasts_policy *p,
		    const char **error_r)
{
	unsigned seen = 0;
	size_t off = 0;

	memset(p, 0, sizeof(*p));
	if (len > MTASTS_BODY_MAX) {
		*error_r = "policy too large";
		return -1;
	}
	while (off < len) {
		const char *nl = memchr(body + off, '\n', len - off);
		size_t end = nl != NULL ? (size_t)(nl - body) : len, n;

		n = end - off;
		if (n > 0 && body[off + n - 1] == '\r')
			n--; /* CRLF or LF */
		if (n > 0 &&
		    mtasts_policy_line(body + off, n, p, &seen, error_r) < 0)
			return -1;
		off = end + 1;
	}
	if (!(seen & SEEN_VERSION) || !(seen & SEEN_MODE) ||
	    !(seen & SEEN_AGE)) {
		*error_r = "policy without version, mode or max_age";
		return -1;
	}
	if (p->mode != MTASTS_MODE_NONE && p->n_mx == 0) {
		*error_r = "policy without mx";
		return -1;
	}
	return 0;
}

/* --- matching (RFC 8461 4.1) ----------------------------------------- */

bool
mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
	char h[DNS_NAME_MAX + 1];
	size_t n = strnlen(host, DNS_NAME_MAX + 1);

	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		h[i] = (char)mtasts_lower((unsigned char)host[i]);
	h[n] = '\0';
	for (size_t i = 0; i < p->n_mx; i++) {
		const char *pat = p->mx[i];
		const char *dot;

		if (pat[0] != '*') {
			if (strcmp(pat, h) == 0)
				return true;
			continue;
		}
		/* "*.example.com": exactly one label before "example.com" */
		dot = strchr(h, '.');
		if (dot != NULL && dot != h && strcmp(dot, pat + 1) == 0)
			return true;
	}
	return false;
}

const char *
mtasts_mode_name(enum mtasts_mode mode)
{
	return mode == MTASTS_MODE_ENFORCE   ? "enforce"
	       : mode == MTASTS_MODE_TESTING ? "testing"
					     : "none";
}

/* --- the cache file -------------------------------------------------- */

long
mtasts_cache_format(char *buf, size_t size, const char *id, time_t expires,
		    time_t mailed, const char *body, size_t len)
{
	int n = snprintf(buf, size,
			 "postern-mta-sts 1\nid %s\nexpires %lld\n"
			 "mailed %lld\n\n",
			 id, (long long)expires, (long long)mailed);

	if (n < 0 || (size_t)n >= size || size - (size_t)n < len)
		return -1;
	memcpy(buf + n, body, len);
	return (long)((size_t)n + len);
}

/* `prefix` and the rest of the line up to its LF, which must follow. */
static const char *
mtasts_cache_line(const char *s, const char *end, const char *prefix,
		  size_t *n_r)
{
	size_t pl = strlen(prefix);
	const char *nl;

	if ((size_t)(end - s) < pl || memcmp(s, prefix, pl) != 0)
		return NULL;
	s += pl;
	nl = memchr(s, '\n', (size_t)(end - s));
	if (nl == NULL)
		return NULL;
	*n_r = (size_t)(nl - s);
	return s;
}

/* A `PREFIX DIGITS` line (1 to 18 digits) at *s; *s moves past it. */
static int
mtasts_cache_time(const char **s, const char *end, const char *prefix,
		  time_t *t_r)
{
	size_t n;
	const char *v = mtasts_cache_line(*s, end, prefix, &n);
	long long t = 0;

	if (v == NULL || n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		t = t * 10 + (v[i] - '0');
	}
	*t_r = (time_t)t;
	*s = v + n + 1;
	return 0;
}

int
mtasts_cache_parse(const char *buf, size_t len, struct mtasts_cached *c,
		   const char **error_r)
{
	const char *start = buf, *end = buf + len, *v;
	size_t n;

	*error_r = "malformed cache file";
	c->mailed = 0;
	if (len > MTASTS_CACHE_MAX ||
	    mtasts_cache_line(buf, end, "postern-mta-sts 1", &n) == NULL ||
	    n != 0)
		return -1;
	buf += 18;
	v = mtasts_cache_line(buf, end, "id ", &n);
	if (v == NULL || n == 0 || n > MTASTS_ID_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!mtasts_is_alnum((unsigned char)v[i]))
			return -1;
	memcpy(c->id, v, n);
	c->id[n] = '\0';
	buf = v + n + 1;
	if (mtasts_cache_time(&buf, end, "expires ", &c->expires) < 0)
		return -1;
	if (buf < end && *buf == 'm' &&
	    mtasts_cache_time(&buf, end, "mailed ", &c->mailed) < 0)
		return -1;
	if (buf >= end || *buf != '\n')
		return -1;
	buf++;
	c->body_off = (size_t)(buf - start);
	return mtasts_policy_parse(buf, (size_t)(end - buf), &c->policy,
				   error_r);
}

enum mtasts_refresh
mtasts_refresh_check(const struct mtasts_cached *c, time_t now)
{
	time_t max_age = (time_t)c->policy.max_age;
	time_t limit = max_age / 2 < MTASTS_REFRESH_AGE ? max_age / 2
							: MTASTS_REFRESH_AGE;

	if (c->expires <= now || c->mailed <= 0 || now - c->mailed >= max_age)
		return MTASTS_REFRESH_NO;
	/* fetched at expires - max_age */
	return now - (c->expires - max_age) >= limit ? MTASTS_REFRESH_DUE
						     : MTASTS_REFRESH_LATER;
}

int
mtasts_cache_name(const char *domain, bool tmp, char *buf, size_t size)
{
	size_t n = strnlen(domain, 254), label = 0;
	int w;

	if (n == 0 || n > 253)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
	}
	if (label == 0)
		return -1;
	w = snprintf(buf, size, "%s.%s", tmp ? "t" : "p", domain);
	return w < 0 || (size_t)w >= size ? -1 : 0;
}
