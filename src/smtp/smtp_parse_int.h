/*
 * smtp_parse_int.h - what the command parser's files share: locale-free
 * ASCII classes and the ESMTP parameter reader (smtp_param.c), which
 * smtp_parse.c calls for MAIL and RCPT. Not for use outside src/smtp/.
 */
#ifndef POSTERN_SMTP_PARSE_INT_H
#define POSTERN_SMTP_PARSE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/smtp_parse.h"

/* ---------------------------------------------------------------------
 * ASCII helpers (no <ctype.h>: its answers depend on the locale)
 */

static inline bool
is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static inline bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

static inline unsigned char
to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 'a' - 'A') : c;
}

/* Case-insensitive ASCII comparison of n octets. */
static inline bool
ascii_caseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (to_lower((unsigned char)a[i]) !=
		    to_lower((unsigned char)b[i]))
			return false;
	return true;
}

/* ---------------------------------------------------------------------
 * ESMTP parameters (smtp_param.c)
 */

struct smtp_param {
	const char *key;
	size_t key_len;
	const char *val; /* NULL when there is no "=" */
	size_t val_len;
};

/*
 * The next parameter of `s` at *pos (advanced past it). Returns 1 with *p
 * filled, 0 at the end, -1 on bad syntax.
 */
int smtp_param_next(const char *s, size_t len, size_t *pos,
		    struct smtp_param *p);

/* Apply one MAIL parameter to `params`; `seen` (0 at the start of the
   command) refuses a keyword given twice. */
enum smtp_perr smtp_param_mail(const struct smtp_param *p,
			       struct smtp_mail_params *params, unsigned *seen);

#endif
