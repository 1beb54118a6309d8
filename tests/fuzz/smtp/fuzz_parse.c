/*
 * fuzz_parse.c - libFuzzer harness for src/smtp/smtp_parse.c and the ESMTP
 * parameters it reads with smtp_param.c (THREATS 12, #3/#4).
 *
 * Input: byte 0 holds flags (bit 0: SMTPUTF8 is in force for RCPT), the
 * rest is one command line or argument string. libFuzzer hands us an
 * exactly-sized buffer, so ASan sees any read past its end.
 *
 * Oracles, besides the sanitizers:
 *  - an accepted path has a lower-case domain and no CTL or NUL anywhere,
 *    and 8-bit octets only with SMTPUTF8;
 *  - parse -> smtp_path_format -> parse gives the same struct (the
 *    canonical form is a fixed point), and it fits in 256 octets;
 *  - a decoded AUTH= value holds no CTL;
 *  - BDAT: printing the result and parsing it again gives the same;
 *  - smtp_utf8_valid agrees with a straightforward reference decoder;
 *  - an accepted HELO argument is printable ASCII with no inner space.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_path(const struct smtp_path *p, bool utf8_ok)
{
	bool any8 = false;
	unsigned char c;
	size_t i;

	CHECK(p->local_len <= SMTP_LOCAL_MAX);
	CHECK(p->domain_len <= SMTP_DOMAIN_MAX);
	CHECK(p->local[p->local_len] == '\0');
	CHECK(p->domain[p->domain_len] == '\0');
	if (p->is_null) {
		CHECK(p->local_len == 0 && p->domain_len == 0);
		CHECK(!p->is_literal && !p->is_utf8);
		return;
	}
	CHECK(p->domain_len > 0);
	for (i = 0; i < p->local_len; i++) {
		c = (unsigned char)p->local[i];
		CHECK(c >= 0x20 && c != 0x7f);
		any8 |= c >= 0x80;
	}
	for (i = 0; i < p->domain_len; i++) {
		c = (unsigned char)p->domain[i];
		CHECK(c > 0x20 && c != 0x7f);
		any8 |= c >= 0x80;
		if (c >= 'A' && c <= 'Z')
			CHECK(p->is_literal && i >= 1 && i <= 4 &&
			      memcmp(p->domain, "[IPv6:", 6) == 0);
	}
	CHECK(any8 == p->is_utf8);
	if (p->is_utf8) {
		CHECK(utf8_ok);
		CHECK(smtp_utf8_valid((const unsigned char *)p->local,
				      p->local_len));
		CHECK(smtp_utf8_valid((const unsigned char *)p->domain,
				      p->domain_len));
	}
	if (p->is_literal)
		CHECK(p->domain[0] == '[' &&
		      p->domain[p->domain_len - 1] == ']');
}

/* Format, wrap in a MAIL or RCPT, parse again: the same struct. */
static void
check_round_trip(const struct smtp_path *p, bool is_mail, bool utf8)
{
	char canon[SMTP_PATH_MAX * 2], line[SMTP_PATH_MAX * 2 + 32];
	struct smtp_mail_params mp;
	struct smtp_path p2;
	enum smtp_perr r;
	int n, m;

	n = smtp_path_format(p, canon, sizeof(canon));
	CHECK(n >= 0 && (size_t)n == strlen(canon));
	CHECK((size_t)n + 2 <= SMTP_PATH_MAX);
	if (p->is_null) {
		CHECK(n == 0);
		return;
	}
	if (is_mail) {
		m = snprintf(line, sizeof(line), "FROM:<%s>%s", canon,
			     utf8 ? " SMTPUTF8" : "");
		CHECK(m > 0 && (size_t)m < sizeof(line));
		r = smtp_parse_mail(line, (size_t)m, &p2, &mp);
	} else {
		m = snprintf(line, sizeof(line), "TO:<%s>", canon);
		CHECK(m > 0 && (size_t)m < sizeof(line));
		r = smtp_parse_rcpt(line, (size_t)m, utf8, &p2);
	}
	CHECK(r == SMTP_PERR_OK);
	CHECK(memcmp(p, &p2, sizeof(p2)) == 0);
}

/* Reference UTF-8 check (RFC 3629 3): decode, then judge the value. */
static bool
ref_utf8_valid(const uint8_t *s, size_t len)
{
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 2;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 3;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 4;
			cp = s[i] & 0x07;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min[n] || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command cmd;
	struct smtp_path path;
	struct smtp_mail_params mp;
	const char *line;
	size_t len, i;
	bool utf8, last, last2;
	uint64_t n, n2;
	char buf[64];
	int m;

	if (size < 1)
		return 0;
	utf8 = data[0] & 1;
	line = (const char *)data + 1;
	len = size - 1;

	smtp_parse_command(line, len, &cmd);
	CHECK(cmd.verb < SMTP_VERB_COUNT);
	CHECK(cmd.args >= line && cmd.args + cmd.args_len == line + len);
	CHECK(smtp_verb_name(cmd.verb) != NULL);

	if (smtp_parse_mail(line, len, &path, &mp) == SMTP_PERR_OK) {
		check_path(&path, mp.smtputf8);
		check_round_trip(&path, true, path.is_utf8);
		if (mp.has_auth)
			for (i = 0; mp.auth[i] != '\0'; i++)
				CHECK((unsigned char)mp.auth[i] >= 0x20 &&
				      mp.auth[i] != 0x7f);
		CHECK(mp.body <= SMTP_BODY_8BITMIME);
	}
	if (cmd.verb == SMTP_VERB_MAIL &&
	    smtp_parse_mail(cmd.args, cmd.args_len, &path, &mp) == SMTP_PERR_OK)
		check_path(&path, mp.smtputf8);

	if (smtp_parse_rcpt(line, len, utf8, &path) == SMTP_PERR_OK) {
		CHECK(!path.is_null);
		check_path(&path, utf8);
		check_round_trip(&path, false, utf8);
	}

	if (smtp_parse_bdat(line, len, &n, &last) == 0) {
		m = snprintf(buf, sizeof(buf), "%llu%s", (unsigned long long)n,
			     last ? " LAST" : "");
		CHECK(m > 0 && (size_t)m < sizeof(buf));
		CHECK(smtp_parse_bdat(buf, (size_t)m, &n2, &last2) == 0);
		CHECK(n == n2 && last == last2);
	}

	if (smtp_helo_valid(line, len)) {
		bool trailing = false;

		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)line[i];

			CHECK(c >= 0x20 && c < 0x7f);
			if (c == ' ')
				trailing = true;
			else
				CHECK(!trailing);
		}
	}

	CHECK(smtp_utf8_valid(data, size) == ref_utf8_valid(data, size));
	return 0;
}
