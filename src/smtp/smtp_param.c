/*
 * smtp_param.c - ESMTP parameters of MAIL and RCPT (RFC 5321 4.1.2
 * esmtp-param): the generic keyword[=value] reader and the MAIL keywords
 * SIZE, BODY, SMTPUTF8 and AUTH. Called by smtp_parse.c, which owns the
 * paths; no I/O, no allocation. See smtp_parse_int.h.
 */
#include "smtp/smtp_parse_int.h"

#include <string.h>

/*
 * The next parameter at *pos: esmtp-keyword = (ALPHA / DIGIT)
 * *(ALPHA / DIGIT / "-"), esmtp-value = 1*(%d33-60 / %d62-126).
 * Parameters are separated by one or more spaces; trailing spaces are
 * tolerated. Returns 1 with *p filled, 0 at the end, -1 on bad syntax.
 */
int
smtp_param_next(const char *s, size_t len, size_t *pos, struct smtp_param *p)
{
	size_t i = *pos, end;
	unsigned char c;

	while (i < len && s[i] == ' ')
		i++;
	if (i == len) {
		*pos = i;
		return 0;
	}
	end = i;
	while (end < len && s[end] != ' ')
		end++;
	p->key = s + i;
	p->key_len = 0;
	while (i < end && s[i] != '=') {
		c = (unsigned char)s[i];
		if (!is_alnum(c) && (c != '-' || p->key_len == 0))
			return -1;
		p->key_len++;
		i++;
	}
	if (p->key_len == 0)
		return -1;
	p->val = NULL;
	p->val_len = 0;
	if (i < end) {
		i++;
		p->val = s + i;
		p->val_len = end - i;
		if (p->val_len == 0)
			return -1;
		for (; i < end; i++) {
			c = (unsigned char)s[i];
			if (c < 33 || c > 126 || c == '=')
				return -1;
		}
	}
	*pos = end;
	return 1;
}

static bool
param_is(const struct smtp_param *p, const char *name)
{
	size_t n = strlen(name);

	return p->key_len == n && ascii_caseeq(p->key, name, n);
}

/* SIZE=1*20DIGIT (RFC 1870 6), overflow-checked into uint64_t. */
static enum smtp_perr
param_size(const struct smtp_param *p, uint64_t *size_r)
{
	uint64_t v = 0, d;
	size_t i;

	if (p->val == NULL)
		return SMTP_PERR_PARAM_SYNTAX;
	for (i = 0; i < p->val_len; i++)
		if (!is_digit((unsigned char)p->val[i]))
			return SMTP_PERR_PARAM_SYNTAX;
	if (p->val_len > 20)
		return SMTP_PERR_SIZE_TOO_BIG;
	for (i = 0; i < p->val_len; i++) {
		d = (uint64_t)(p->val[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return SMTP_PERR_SIZE_TOO_BIG;
		v = v * 10 + d;
	}
	*size_r = v;
	return SMTP_PERR_OK;
}

static int
hex_upper(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * AUTH=xtext (RFC 4954 5, RFC 3461 4): xchar is 33..126 but "+" and "=",
 * hexchar is "+" and two upper-case hex digits. The decoded mailbox (or
 * "<>") must fit and hold no CTL (THREATS A-07: "AUTH=Raven+0AReyes").
 */
static enum smtp_perr
param_auth(const struct smtp_param *p, struct smtp_mail_params *params)
{
	size_t i, n = 0;
	int hi, lo;
	unsigned char c;

	if (p->val == NULL)
		return SMTP_PERR_PARAM_SYNTAX;
	for (i = 0; i < p->val_len; i++) {
		c = (unsigned char)p->val[i];
		if (c == '+') {
			if (p->val_len - i < 3)
				return SMTP_PERR_PARAM_SYNTAX;
			hi = hex_upper((unsigned char)p->val[i + 1]);
			lo = hex_upper((unsigned char)p->val[i + 2]);
			if (hi < 0 || lo < 0)
				return SMTP_PERR_PARAM_SYNTAX;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return SMTP_PERR_PARAM_SYNTAX;
		if (n >= SMTP_PATH_MAX)
			return SMTP_PERR_PARAM_SYNTAX;
		params->auth[n++] = (char)c;
	}
	params->auth[n] = '\0';
	params->has_auth = true;
	return SMTP_PERR_OK;
}

enum {
	SEEN_SIZE = 1 << 0,
	SEEN_BODY = 1 << 1,
	SEEN_SMTPUTF8 = 1 << 2,
	SEEN_AUTH = 1 << 3,
};

/* Apply one MAIL parameter; each keyword at most once. */
enum smtp_perr
smtp_param_mail(const struct smtp_param *p, struct smtp_mail_params *params,
		unsigned *seen)
{
	unsigned bit;

	if (param_is(p, "SIZE"))
		bit = SEEN_SIZE;
	else if (param_is(p, "BODY"))
		bit = SEEN_BODY;
	else if (param_is(p, "SMTPUTF8"))
		bit = SEEN_SMTPUTF8;
	else if (param_is(p, "AUTH"))
		bit = SEEN_AUTH;
	else
		return SMTP_PERR_PARAM_UNKNOWN;
	if (*seen & bit)
		return SMTP_PERR_PARAM_UNKNOWN;
	*seen |= bit;

	switch (bit) {
	case SEEN_SIZE:
		params->has_size = true;
		return param_size(p, &params->size);
	case SEEN_BODY: /* RFC 6152 2 */
		if (p->val != NULL && p->val_len == 4 &&
		    ascii_caseeq(p->val, "7BIT", 4))
			params->body = SMTP_BODY_7BIT;
		else if (p->val != NULL && p->val_len == 8 &&
			 ascii_caseeq(p->val, "8BITMIME", 8))
			params->body = SMTP_BODY_8BITMIME;
		else
			return SMTP_PERR_PARAM_SYNTAX;
		return SMTP_PERR_OK;
	case SEEN_SMTPUTF8: /* RFC 6531 3.4: no value */
		if (p->val != NULL)
			return SMTP_PERR_PARAM_SYNTAX;
		params->smtputf8 = true;
		return SMTP_PERR_OK;
	default:
		return param_auth(p, params);
	}
}
