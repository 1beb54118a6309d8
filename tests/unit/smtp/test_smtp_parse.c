/*
 * test_smtp_parse.c - table-driven tests for src/smtp/smtp_parse.c and
 * smtp_param.c (the ESMTP parameters of MAIL and RCPT).
 *
 * Vectors: THREATS.md P-01..P-08, R-01 (all 16 nmap forms), R-04, R-05,
 * plus valid/invalid address lists in the style of Dovecot's
 * test-smtp-address.c. Every path case is run
 *  1. on the literal,
 *  2. on an exactly-sized heap copy (ASan sees any read past the end),
 *  3. on every prefix, each in its own exactly-sized heap buffer (the
 *     parser is not resumable, so this is our "byte by byte" split: each
 *     truncation point is a new end of input), checking the invariants,
 *  4. when valid: smtp_path_format, then parse again: the same struct.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_parse.h"

#define B(s) s, sizeof(s) - 1
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* An exactly-sized heap copy: nothing readable after the last byte. */
static char *
dup_exact(const char *s, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

/* What must hold for any path the parser accepts. */
static void
check_path_invariants(const struct smtp_path *p)
{
	size_t i;
	unsigned char c;
	bool any8 = false;

	assert_true(p->local_len <= SMTP_LOCAL_MAX);
	assert_true(p->domain_len <= SMTP_DOMAIN_MAX);
	assert_int_equal(p->local[p->local_len], '\0');
	assert_int_equal(p->domain[p->domain_len], '\0');
	if (p->is_null) {
		assert_int_equal(p->local_len, 0);
		assert_int_equal(p->domain_len, 0);
		return;
	}
	for (i = 0; i < p->local_len; i++) {
		c = (unsigned char)p->local[i];
		assert_true(c >= 0x20 && c != 0x7f);
		any8 |= c >= 0x80;
	}
	assert_true(p->domain_len > 0);
	for (i = 0; i < p->domain_len; i++) {
		c = (unsigned char)p->domain[i];
		assert_true(c > 0x20 && c != 0x7f);
		any8 |= c >= 0x80;
		/* Lower case, except the "IPv6:" tag of a literal. */
		if (c >= 'A' && c <= 'Z')
			assert_true(p->is_literal && i >= 1 && i <= 4 &&
				    strncmp(p->domain, "[IPv6:", 6) == 0);
	}
	assert_int_equal(any8, p->is_utf8);
	if (p->is_literal) {
		assert_int_equal(p->domain[0], '[');
		assert_int_equal(p->domain[p->domain_len - 1], ']');
	}
}

/* ------------------------------------------------------------------ */
/* Paths */

enum kind { MAIL, RCPT, RCPT8 };

struct path_case {
	enum kind kind;
	const char *in;
	size_t len;
	enum smtp_perr err;
	const char *local;  /* expected when OK or NO_DOMAIN; NULL: skip */
	const char *domain; /* expected when OK */
	unsigned flags;
};

#define F_NULL 1u
#define F_LIT 2u
#define F_UTF8 4u

#define OK SMTP_PERR_OK
#define SYN SMTP_PERR_SYNTAX
#define NODOM SMTP_PERR_NO_DOMAIN
#define LONG SMTP_PERR_TOO_LONG
#define UNDECL SMTP_PERR_UTF8_UNDECLARED
#define BADU8 SMTP_PERR_BAD_UTF8
#define PSYN SMTP_PERR_PARAM_SYNTAX
#define PUNK SMTP_PERR_PARAM_UNKNOWN
#define PBIG SMTP_PERR_SIZE_TOO_BIG

/* clang-format off */
static const struct path_case path_cases[] = {
	/* Plain and null paths. */
	{ MAIL, B("FROM:<>"), OK, "", "", F_NULL },
	{ MAIL, B("from:<>"), OK, "", "", F_NULL },
	{ MAIL, B("FROM: <>"), OK, "", "", F_NULL },
	{ MAIL, B("FROM:<s@example.org>"), OK, "s", "example.org", 0 },
	{ MAIL, B("FROM:   <a@b.c>"), OK, "a", "b.c", 0 },
	{ MAIL, B("FROM:<Alice@Local.TEST>"), OK, "Alice", "local.test", 0 },
	{ MAIL, B("FROM:<a@b> "), OK, "a", "b", 0 },
	{ RCPT, B("TO:<alice@local.test>"), OK, "alice", "local.test", 0 },
	{ RCPT, B("to:<bob@example.net>"), OK, "bob", "example.net", 0 },
	{ RCPT, B("To: <x@y.z>"), OK, "x", "y.z", 0 },
	/* Dovecot-style valid list. */
	{ MAIL, B("FROM:<\"user@frop\"@domain.tld>"), OK, "user@frop",
	  "domain.tld", 0 },
	{ MAIL, B("FROM:<user@[IPv6:::1]>"), OK, "user", "[IPv6:::1]", F_LIT },
	{ MAIL, B("FROM:<user@[ipv6:::1]>"), OK, "user", "[IPv6:::1]", F_LIT },
	{ MAIL, B("FROM:<u@[IPv6:2001:DB8::1]>"), OK, "u",
	  "[IPv6:2001:db8::1]", F_LIT },
	{ MAIL, B("FROM:<u@[IPv6:1:2:3:4:5:6:7:8]>"), OK, "u",
	  "[IPv6:1:2:3:4:5:6:7:8]", F_LIT },
	{ MAIL, B("FROM:<u@[IPv6:::ffff:192.0.2.1]>"), OK, "u",
	  "[IPv6:::ffff:192.0.2.1]", F_LIT },
	{ MAIL, B("FROM:<u@[IPv6:1:2:3:4::192.0.2.1]>"), OK, "u",
	  "[IPv6:1:2:3:4::192.0.2.1]", F_LIT },
	{ MAIL, B("FROM:<x@[192.0.2.1]>"), OK, "x", "[192.0.2.1]", F_LIT },
	{ MAIL, B("FROM:<x@[255.255.255.255]>"), OK, "x",
	  "[255.255.255.255]", F_LIT },
	{ MAIL, B("FROM:<a.!b@example.org>"), OK, "a.!b", "example.org", 0 },
	{ MAIL, B("FROM:<%s%s%s%n@example.org>"), OK, "%s%s%s%n",
	  "example.org", 0 },
	{ MAIL, B("FROM:<\"\"@x.example>"), OK, "", "x.example", 0 },
	{ MAIL, B("FROM:<\"a b\"@x.example>"), OK, "a b", "x.example", 0 },
	{ MAIL, B("FROM:<\"a\\\"b\\\\c\"@x.example>"), OK, "a\"b\\c",
	  "x.example", 0 },
	{ MAIL, B("FROM:<\"\\a\\ \"@x.example>"), OK, "a ", "x.example", 0 },
	{ MAIL, B("FROM:<\"a..b\"@x.example>"), OK, "a..b", "x.example", 0 },
	{ MAIL, B("FROM:<\"<>;|\"@x.example>"), OK, "<>;|", "x.example", 0 },
	{ MAIL, B("FROM:<a@b-c.example>"), OK, "a", "b-c.example", 0 },
	{ MAIL, B("FROM:<a@1.2.3.4>"), OK, "a", "1.2.3.4", 0 },
	{ MAIL, B("FROM:<a@xn--bcher-kva.example>"), OK, "a",
	  "xn--bcher-kva.example", 0 },
	{ MAIL, B("FROM:<!#$%&'*+-/=?^_`{|}~@x>"), OK,
	  "!#$%&'*+-/=?^_`{|}~", "x", 0 },
	/* R-04: source routes are parsed and dropped. */
	{ RCPT, B("TO:<@a.example,@b.example:alice@local.test>"), OK, "alice",
	  "local.test", 0 },
	{ MAIL, B("FROM:<@a.example:x@y>"), OK, "x", "y", 0 },
	{ RCPT, B("TO:<\"alice\"@local.test>"), OK, "alice", "local.test",
	  0 },
	/* R-04: invalid. */
	{ RCPT, B("TO:<\"user@local.test>"), SYN, NULL, NULL, 0 },
	{ RCPT, B("TO:<x@[256.256.256.256]>"), SYN, NULL, NULL, 0 },
	{ RCPT, B("TO:<x@[IPv6:::1]>"), OK, "x", "[IPv6:::1]", F_LIT },
	{ RCPT, B("TO:<alice@local.test@example.net>"), SYN, NULL, NULL, 0 },
	{ RCPT, B("TO:<x@[10.0.0.5]>"), OK, "x", "[10.0.0.5]", F_LIT },
	{ MAIL, B("FROM:<user@[::1]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a..b@x>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<.a@x>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a.@x>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<.@x>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[256.256.256.256]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[1.2.3.256]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[1.2.3]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[01.2.3.4]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[1.2.3.4.5]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[0x7f.1.1.1]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[ 1.2.3.4]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[1.2.3.4>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[1.2.3.4]x>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[IPv6:]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[IPv6:1::2:3:4:5:6:7]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[IPv6:::1%eth0]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[IPv6:1.2.3.4]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[IPv4:1.2.3.4]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[tag:foo]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@[a\\]b]>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<@>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<@x>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@example.com.>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@.example.com>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@-a.example>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@a-.example>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@a..example>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<x@a_b.example>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b>x"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b>\tSIZE=1"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a b@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a\"b@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\"b@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a\\b@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a\x00" "b@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\x00" "b\"@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\rb\"@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\nb\"@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\tb\"@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\\\x01\"@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\\\x00\"@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\x7f\"@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\\"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\"a\\\"@c>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b\x7f>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b\x00>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<@a.example:>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<@a.example,b.example:x@y>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<@a.example x@y>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<@a.example.:x@y>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<<a@b>>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:"), SYN, NULL, NULL, 0 },
	{ MAIL, B(""), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:a@b"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM: a@b"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM<a@b>"), SYN, NULL, NULL, 0 },
	{ MAIL, B(" FROM:<a@b>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:\t<a@b>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("TO:<a@b>"), SYN, NULL, NULL, 0 },
	{ RCPT, B("FROM:<a@b>"), SYN, NULL, NULL, 0 },
	{ RCPT, B("TO:<>"), SYN, NULL, NULL, 0 },
	/* No domain (R-01 7, 8, 14). */
	{ MAIL, B("FROM:<x>"), NODOM, "x", NULL, 0 },
	{ RCPT, B("TO:<Postmaster>"), NODOM, "Postmaster", NULL, 0 },
	{ MAIL, B("FROM:<\"x\">"), NODOM, "x", NULL, 0 },
	{ MAIL, B("FROM:<a!b>"), NODOM, "a!b", NULL, 0 },
	/* P-07 */
	{ MAIL, B("FROM:x\""), SYN, NULL, NULL, 0 },
	{ RCPT, B("TO:x\""), SYN, NULL, NULL, 0 },
	{ RCPT, B("TO:nonexistent"), SYN, NULL, NULL, 0 },
	/* P-08 */
	{ MAIL, B("FROM:<;sleep 10;>"), SYN, NULL, NULL, 0 },
	{ RCPT,
	  B("TO:<${run{\\x2Fbin\\x2Fsh\\t-c\\t\\x22id\\x3E\\x2Ftmp\\x2Fpwn"
	    "\\x22}}@local.test>"),
	  SYN, NULL, NULL, 0 },
	{ RCPT, B("TO:<root+${run{x}}@local.test>"), OK, "root+${run{x}}",
	  "local.test", 0 },
	/* P-03, R-05: 8-bit and UTF-8. */
	{ MAIL, B("FROM:<\xff\xfe@example.net>"), UNDECL, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\xc0\xaf@example.net> SMTPUTF8"), BADU8, NULL, NULL,
	  0 },
	{ MAIL, B("FROM:<\xce\xb4@example.org>"), UNDECL, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\xce\xb4@example.org> SMTPUTF8"), OK, "\xce\xb4",
	  "example.org", F_UTF8 },
	{ MAIL, B("FROM:<\xce\xb4@example.org> smtputf8 BODY=8BITMIME"), OK,
	  "\xce\xb4", "example.org", F_UTF8 },
	{ MAIL, B("FROM:<a@\xe4\xbe\x8b.example> SMTPUTF8"), OK, "a",
	  "\xe4\xbe\x8b.example", F_UTF8 },
	{ MAIL, B("FROM:<a@EX\xc3\x84MPLE.org> SMTPUTF8"), OK, "a",
	  "ex\xc3\x84mple.org", F_UTF8 },
	{ MAIL, B("FROM:<\"\xce\xb4 x\"@example.org> SMTPUTF8"), OK,
	  "\xce\xb4 x", "example.org", F_UTF8 },
	{ MAIL, B("FROM:<\"\\\xce\xb4\"@example.org> SMTPUTF8"), SYN, NULL,
	  NULL, 0 },
	{ MAIL, B("FROM:<x@[1.2.3.\xc3\x84]> SMTPUTF8"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\xce\xb4@x@y> SMTPUTF8"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\xce\xb4@x@y>"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\xce\xb4@x>y"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\xce\xb4\xff@x> SMTPUTF8 FOO"), PUNK, NULL, NULL,
	  0 },
	{ MAIL, B("FROM:<a@b>\xff"), SYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> SMTPUTF8 X=\xff"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\xce\xb4@example.org> FOO"), PUNK, NULL, NULL, 0 },
	{ MAIL, B("FROM:<\xed\xa0\x80@x> SMTPUTF8"), BADU8, NULL, NULL, 0 },
	{ MAIL, B("FROM:<@\xce\xb4.example:a@b> SMTPUTF8"), OK, "a", "b", 0 },
	{ MAIL, B("FROM:<@\xce\xb4.example:a@b>"), UNDECL, NULL, NULL, 0 },
	{ RCPT8, B("TO:<\xf4\x90\x80\x80@local.test>"), BADU8, NULL, NULL, 0 },
	{ RCPT8, B("TO:<a@local.test\xe2\x82>"), BADU8, NULL, NULL, 0 },
	{ RCPT8, B("TO:<a@local.test\xe2\x82"), BADU8, NULL, NULL, 0 },
	{ RCPT8, B("TO:<\xed\xa0\x80@x>"), BADU8, NULL, NULL, 0 },
	{ RCPT8, B("TO:<\xe0\x80\xaf@x>"), BADU8, NULL, NULL, 0 },
	{ RCPT8, B("TO:<\x80@x>"), BADU8, NULL, NULL, 0 },
	{ RCPT8, B("TO:<\xf0\x9f\x98\x80@x>"), OK, "\xf0\x9f\x98\x80", "x",
	  F_UTF8 },
	{ RCPT8, B("TO:<a@\xce\x94.example>"), OK, "a", "\xce\x94.example",
	  F_UTF8 },
	{ RCPT8, B("TO:<a@b>"), OK, "a", "b", 0 },
	{ RCPT, B("TO:<\xce\xb4@local.test>"), UNDECL, NULL, NULL, 0 },
	{ RCPT, B("TO:<a@\xce\xb4>"), UNDECL, NULL, NULL, 0 },
	{ RCPT, B("TO:<\"\xce\xb4\"@x>"), UNDECL, NULL, NULL, 0 },
	{ RCPT, B("TO:<\"\\\xce\xb4\"@x>"), UNDECL, NULL, NULL, 0 },
	{ RCPT, B("TO:<x@[\xce\xb4]>"), UNDECL, NULL, NULL, 0 },
	/* Parameters (P-07, A-07, D-06). */
	{ MAIL, B("FROM:<s@example.org> SIZE=184467440737095516160"), PBIG,
	  NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE=18446744073709551616"), PBIG,
	  NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE=000000000000000000001"), PBIG,
	  NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE=-1"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE=+1"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE=1k"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE="), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE=1=2"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SIZE=1 SIZE=2"), PUNK, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> size=1 SIZE=1"), PUNK, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> BODY=8BITMIME BODY=7BIT FOO=bar"),
	  PUNK, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> FOO=bar"), PUNK, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> X-Y"), PUNK, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> -X=1"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> X_Y=1"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> =1"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> <c@d>"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> BODY=BINARYMIME"), PSYN, NULL, NULL,
	  0 },
	{ MAIL, B("FROM:<s@example.org> BODY"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SMTPUTF8=yes"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<s@example.org> SMTPUTF8 SMTPUTF8"), PUNK, NULL, NULL,
	  0 },
	{ MAIL, B("FROM:<alice@local.test> AUTH=Raven+0AReyes"), PSYN, NULL,
	  NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH=a+0a"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH=a+4"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH=a+"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH=a+7F"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH=a+00"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH=a+0D+0A"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH="), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH"), PSYN, NULL, NULL, 0 },
	{ MAIL, B("FROM:<a@b> AUTH=<> AUTH=<>"), PUNK, NULL, NULL, 0 },
	{ RCPT, B("TO:<a@b> NOTIFY=NEVER"), PUNK, NULL, NULL, 0 },
	{ RCPT, B("TO:<a@b> ORCPT=rfc822;a+2Bb@c"), PUNK, NULL, NULL, 0 },
	{ RCPT, B("TO:<a@b> =x"), PSYN, NULL, NULL, 0 },
	{ RCPT, B("TO:<a@b> x=\x01"), PSYN, NULL, NULL, 0 },
	{ RCPT, B("TO:<a@b>   "), OK, "a", "b", 0 },
	{ RCPT, B("TO:<a@b>x"), SYN, NULL, NULL, 0 },
};
/* clang-format on */

/* Expected MAIL parameters for the valid cases that have some. */
struct param_case {
	const char *in;
	size_t len;
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	const char *auth; /* NULL: no AUTH= */
};

/* clang-format off */
static const struct param_case param_cases[] = {
	{ B("FROM:<x@x>"), false, 0, SMTP_BODY_NONE, false, NULL },
	{ B("FROM:<x@x> SIZE=1000"), true, 1000, SMTP_BODY_NONE, false,
	  NULL },
	{ B("FROM:<x@x> SIZE=0"), true, 0, SMTP_BODY_NONE, false, NULL },
	{ B("FROM:<x@x> SIZE=18446744073709551615"), true, UINT64_MAX,
	  SMTP_BODY_NONE, false, NULL },
	{ B("FROM:<x@x> SIZE=00000000000000000001"), true, 1, SMTP_BODY_NONE,
	  false, NULL },
	{ B("FROM:<x@x> body=8bitmime"), false, 0, SMTP_BODY_8BITMIME, false,
	  NULL },
	{ B("FROM:<x@x> BODY=7Bit"), false, 0, SMTP_BODY_7BIT, false, NULL },
	{ B("FROM:<x@x> BODY=7BIT SIZE=5 SMTPUTF8 AUTH=<>"), true, 5,
	  SMTP_BODY_7BIT, true, "<>" },
	{ B("FROM:<x@x>   SIZE=1   SmtpUtf8   "), true, 1, SMTP_BODY_NONE,
	  true, NULL },
	{ B("FROM:<x@x> AUTH=a+2Bb@c"), false, 0, SMTP_BODY_NONE, false,
	  "a+b@c" },
	{ B("FROM:<x@x> AUTH=+3C+3E"), false, 0, SMTP_BODY_NONE, false, "<>" },
	{ B("FROM:<x@x> AUTH=+C3+A9"), false, 0, SMTP_BODY_NONE, false,
	  "\xc3\xa9" },
	{ B("FROM:<> SIZE=5"), true, 5, SMTP_BODY_NONE, false, NULL },
};
/* clang-format on */

static enum smtp_perr
parse_kind(enum kind kind, const char *s, size_t len, struct smtp_path *p,
	   struct smtp_mail_params *mp)
{
	switch (kind) {
	case MAIL:
		return smtp_parse_mail(s, len, p, mp);
	case RCPT:
		return smtp_parse_rcpt(s, len, false, p);
	case RCPT8:
		return smtp_parse_rcpt(s, len, true, p);
	}
	fail();
	return SMTP_PERR_SYNTAX;
}

/*
 * Format the path, put it back into a command and parse it again: the
 * same struct must come out (the canonical form is a fixed point).
 */
static void
check_round_trip(enum kind kind, const struct smtp_path *p)
{
	char canon[SMTP_PATH_MAX * 2 + 1], line[SMTP_PATH_MAX * 2 + 32];
	struct smtp_mail_params mp;
	struct smtp_path p2;
	int n, m;

	n = smtp_path_format(p, canon, sizeof(canon));
	assert_true(n >= 0);
	assert_int_equal((size_t)n, strlen(canon));
	assert_true(n + 2 <= SMTP_PATH_MAX);
	if (kind == MAIL)
		m = snprintf(line, sizeof(line), "FROM:<%s>%s", canon,
			     p->is_utf8 ? " SMTPUTF8" : "");
	else
		m = snprintf(line, sizeof(line), "TO:<%s>", canon);
	assert_true(m > 0 && (size_t)m < sizeof(line));
	assert_int_equal(parse_kind(kind, line, (size_t)m, &p2, &mp),
			 SMTP_PERR_OK);
	assert_memory_equal(p, &p2, sizeof(p2));
}

static bool
perr_valid(enum smtp_perr r)
{
	return r >= SMTP_PERR_OK && r <= SMTP_PERR_SIZE_TOO_BIG;
}

static void
run_path_case(const struct path_case *c)
{
	struct smtp_path p, p2;
	struct smtp_mail_params mp, mp2;
	enum smtp_perr r;
	size_t k;
	char *h;

	/* 1. whole, from the literal */
	r = parse_kind(c->kind, c->in, c->len, &p, &mp);
	if (r != c->err)
		fail_msg("case \"%.*s\": got %d, want %d", (int)c->len, c->in,
			 r, c->err);
	if (r == SMTP_PERR_OK || r == SMTP_PERR_NO_DOMAIN) {
		if (c->local != NULL)
			assert_string_equal(p.local, c->local);
	}
	if (r == SMTP_PERR_OK) {
		check_path_invariants(&p);
		assert_int_equal(p.is_null, (c->flags & F_NULL) != 0);
		assert_int_equal(p.is_literal, (c->flags & F_LIT) != 0);
		assert_int_equal(p.is_utf8, (c->flags & F_UTF8) != 0);
		if (c->domain != NULL)
			assert_string_equal(p.domain, c->domain);
		if (!p.is_null)
			check_round_trip(c->kind, &p);
		if (c->kind == MAIL && p.is_utf8)
			assert_true(mp.smtputf8);
	}

	/* 2. whole, from an exactly-sized heap copy: same answer */
	h = dup_exact(c->in, c->len);
	assert_int_equal(parse_kind(c->kind, h, c->len, &p2, &mp2), r);
	assert_memory_equal(&p, &p2, sizeof(p));
	free(h);

	/* 3. every prefix, each in its own exactly-sized buffer */
	for (k = 0; k < c->len; k++) {
		h = dup_exact(c->in, k);
		r = parse_kind(c->kind, h, k, &p2, &mp2);
		assert_true(perr_valid(r));
		if (r == SMTP_PERR_OK)
			check_path_invariants(&p2);
		free(h);
	}
}

static void
test_paths(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMENTS(path_cases); i++)
		run_path_case(&path_cases[i]);
}

static void
test_mail_params(void **state)
{
	struct smtp_mail_params mp;
	struct smtp_path p;
	size_t i;
	char *h;

	(void)state;
	for (i = 0; i < N_ELEMENTS(param_cases); i++) {
		const struct param_case *c = &param_cases[i];

		h = dup_exact(c->in, c->len);
		assert_int_equal(smtp_parse_mail(h, c->len, &p, &mp),
				 SMTP_PERR_OK);
		free(h);
		assert_int_equal(mp.has_size, c->has_size);
		assert_true(mp.size == c->size);
		assert_int_equal(mp.body, c->body);
		assert_int_equal(mp.smtputf8, c->smtputf8);
		assert_int_equal(mp.has_auth, c->auth != NULL);
		if (c->auth != NULL)
			assert_string_equal(mp.auth, c->auth);
	}
}

/* R-01: the 16 MAIL/RCPT pairs of nmap's smtp-open-relay.nse. */
struct relay_case {
	const char *from, *to;
	enum smtp_perr from_err, to_err;
	const char *local, *domain; /* of the RCPT when OK */
};

/* clang-format off */
static const struct relay_case relay_cases[] = {
	{ "<>", "<relaytest@nmap.scanme.org>", OK, OK, "relaytest",
	  "nmap.scanme.org" },
	{ "<antispam@nmap.scanme.org>", "<relaytest@nmap.scanme.org>", OK, OK,
	  "relaytest", "nmap.scanme.org" },
	{ "<antispam@mx.local.test>", "<relaytest@nmap.scanme.org>", OK, OK,
	  "relaytest", "nmap.scanme.org" },
	{ "<antispam@[192.0.2.10]>", "<relaytest@nmap.scanme.org>", OK, OK,
	  "relaytest", "nmap.scanme.org" },
	{ "<antispam@[192.0.2.10]>",
	  "<relaytest%nmap.scanme.org@[192.0.2.10]>", OK, OK,
	  "relaytest%nmap.scanme.org", "[192.0.2.10]" },
	{ "<antispam@[192.0.2.10]>",
	  "<relaytest%nmap.scanme.org@mx.local.test>", OK, OK,
	  "relaytest%nmap.scanme.org", "mx.local.test" },
	{ "<antispam@[192.0.2.10]>", "<\"relaytest@nmap.scanme.org\">", OK,
	  NODOM, NULL, NULL },
	{ "<antispam@[192.0.2.10]>", "<\"relaytest%nmap.scanme.org\">", OK,
	  NODOM, NULL, NULL },
	{ "<antispam@[192.0.2.10]>",
	  "<relaytest@nmap.scanme.org@[192.0.2.10]>", OK, SYN, NULL, NULL },
	{ "<antispam@[192.0.2.10]>",
	  "<\"relaytest@nmap.scanme.org\"@[192.0.2.10]>", OK, OK,
	  "relaytest@nmap.scanme.org", "[192.0.2.10]" },
	{ "<antispam@[192.0.2.10]>",
	  "<relaytest@nmap.scanme.org@mx.local.test>", OK, SYN, NULL, NULL },
	{ "<antispam@[192.0.2.10]>",
	  "<@[192.0.2.10]:relaytest@nmap.scanme.org>", OK, OK, "relaytest",
	  "nmap.scanme.org" },
	{ "<antispam@[192.0.2.10]>",
	  "<@mx.local.test:relaytest@nmap.scanme.org>", OK, OK, "relaytest",
	  "nmap.scanme.org" },
	{ "<antispam@[192.0.2.10]>", "<nmap.scanme.org!relaytest>", OK, NODOM,
	  NULL, NULL },
	{ "<antispam@[192.0.2.10]>",
	  "<nmap.scanme.org!relaytest@[192.0.2.10]>", OK, OK,
	  "nmap.scanme.org!relaytest", "[192.0.2.10]" },
	{ "<antispam@[192.0.2.10]>",
	  "<nmap.scanme.org!relaytest@mx.local.test>", OK, OK,
	  "nmap.scanme.org!relaytest", "mx.local.test" },
};
/* clang-format on */

static void
test_nmap_relay_forms(void **state)
{
	struct path_case pc;
	char buf[512];
	size_t i;
	int n;

	(void)state;
	assert_int_equal(N_ELEMENTS(relay_cases), 16);
	for (i = 0; i < N_ELEMENTS(relay_cases); i++) {
		const struct relay_case *c = &relay_cases[i];

		n = snprintf(buf, sizeof(buf), "FROM:%s", c->from);
		assert_true(n > 0 && (size_t)n < sizeof(buf));
		pc = (struct path_case){MAIL, buf,  (size_t)n, c->from_err,
					NULL, NULL, 0};
		if (strcmp(c->from, "<>") == 0)
			pc.flags = F_NULL;
		else if (strchr(c->from, '[') != NULL)
			pc.flags = F_LIT;
		run_path_case(&pc);

		n = snprintf(buf, sizeof(buf), "TO:%s", c->to);
		assert_true(n > 0 && (size_t)n < sizeof(buf));
		pc = (struct path_case){
		    RCPT, buf, (size_t)n, c->to_err, c->local, c->domain, 0};
		if (c->domain != NULL && c->domain[0] == '[')
			pc.flags = F_LIT;
		run_path_case(&pc);
	}
}

/* Length limits: local 64, domain 255, path 256 (RFC 5321 4.5.3.1). */
static void
test_limits(void **state)
{
	char buf[1200], label63[64];
	struct smtp_mail_params mp;
	struct smtp_path p;
	size_t o, i;

	(void)state;
	memset(label63, 'd', 63);
	label63[63] = '\0';

	/* local part: 64 ok, 65 too long */
	o = (size_t)snprintf(buf, sizeof(buf), "FROM:<%.64s@x>",
			     "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"
			     "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL");
	assert_int_equal(smtp_parse_mail(buf, o, &p, &mp), SMTP_PERR_OK);
	assert_int_equal(p.local_len, 64);
	o = (size_t)snprintf(buf, sizeof(buf), "FROM:<%.65s@x>",
			     "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"
			     "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL");
	assert_int_equal(smtp_parse_mail(buf, o, &p, &mp), SMTP_PERR_TOO_LONG);

	/* quoted: 64 after dequoting is fine though 130 on the wire */
	o = (size_t)snprintf(buf, sizeof(buf), "FROM:<\"");
	for (i = 0; i < 64; i++) {
		buf[o++] = '\\';
		buf[o++] = i % 2 ? '"' : '\\';
	}
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\"@x>");
	assert_int_equal(smtp_parse_mail(buf, o, &p, &mp), SMTP_PERR_OK);
	assert_int_equal(p.local_len, 64);
	check_round_trip(MAIL, &p);
	memmove(buf + 9, buf + 7, o - 7);
	buf[7] = '\\';
	buf[8] = 'x';
	o += 2;
	assert_int_equal(smtp_parse_mail(buf, o, &p, &mp), SMTP_PERR_TOO_LONG);

	/* label: 63 ok, 64 syntax */
	o = (size_t)snprintf(buf, sizeof(buf), "TO:<a@%s.x>", label63);
	assert_int_equal(smtp_parse_rcpt(buf, o, false, &p), SMTP_PERR_OK);
	o = (size_t)snprintf(buf, sizeof(buf), "TO:<a@%sd.x>", label63);
	assert_int_equal(smtp_parse_rcpt(buf, o, false, &p), SMTP_PERR_SYNTAX);

	/* whole path: 256 ok, 257 too long ("<" 1@ 252 ">" = 256) */
	o = (size_t)snprintf(buf, sizeof(buf), "TO:<a@%s.%s.%s.%.60s>", label63,
			     label63, label63, label63);
	assert_int_equal(o - 3, 256);
	assert_int_equal(smtp_parse_rcpt(buf, o, false, &p), SMTP_PERR_OK);
	assert_int_equal(p.domain_len, 252);
	check_round_trip(RCPT, &p);
	o = (size_t)snprintf(buf, sizeof(buf), "TO:<ab@%s.%s.%s.%.60s>",
			     label63, label63, label63, label63);
	assert_int_equal(smtp_parse_rcpt(buf, o, false, &p),
			 SMTP_PERR_TOO_LONG);

	/* the route counts towards the 256 */
	o = (size_t)snprintf(buf, sizeof(buf), "TO:<@%s.%s.%s.%s:a@b>", label63,
			     label63, label63, label63);
	assert_int_equal(smtp_parse_rcpt(buf, o, false, &p),
			 SMTP_PERR_TOO_LONG);

	/* domain: more than 255 */
	o = (size_t)snprintf(buf, sizeof(buf), "TO:<a@%s.%s.%s.%s.%s>", label63,
			     label63, label63, label63, label63);
	assert_int_equal(smtp_parse_rcpt(buf, o, false, &p),
			 SMTP_PERR_TOO_LONG);

	/* AUTH= decoded value: 256 ok, 257 refused */
	o = (size_t)snprintf(buf, sizeof(buf), "FROM:<a@b> AUTH=");
	for (i = 0; i < 256; i++)
		buf[o++] = 'u';
	assert_int_equal(smtp_parse_mail(buf, o, &p, &mp), SMTP_PERR_OK);
	assert_int_equal(strlen(mp.auth), 256);
	buf[o++] = 'u';
	assert_int_equal(smtp_parse_mail(buf, o, &p, &mp),
			 SMTP_PERR_PARAM_SYNTAX);

	/* a long route is linear and refused, never a hang */
	o = (size_t)snprintf(buf, sizeof(buf), "TO:<");
	while (o + 5 < sizeof(buf)) {
		memcpy(buf + o, "@a.b,", 5);
		o += 5;
	}
	assert_int_equal(smtp_parse_rcpt(buf, o, false, &p), SMTP_PERR_SYNTAX);
}

/* ------------------------------------------------------------------ */
/* Formatting */

static void
test_format(void **state)
{
	struct smtp_path p;
	char buf[300];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.is_null = true;
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(smtp_path_format(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(smtp_path_format(&p, buf, 0), -1);

	memset(&p, 0, sizeof(p));
	memcpy(p.local, "a.b", 4);
	p.local_len = 3;
	memcpy(p.domain, "x.example", 10);
	p.domain_len = 9;
	assert_int_equal(smtp_path_format(&p, buf, sizeof(buf)), 13);
	assert_string_equal(buf, "a.b@x.example");
	/* exactly enough, one short */
	assert_int_equal(smtp_path_format(&p, buf, 14), 13);
	assert_int_equal(smtp_path_format(&p, buf, 13), -1);
	assert_string_equal(buf, "");

	memcpy(p.local, "a b", 4);
	assert_int_equal(smtp_path_format(&p, buf, sizeof(buf)), 15);
	assert_string_equal(buf, "\"a b\"@x.example");

	memcpy(p.local, "a\"\\", 4);
	assert_int_equal(smtp_path_format(&p, buf, sizeof(buf)), 17);
	assert_string_equal(buf, "\"a\\\"\\\\\"@x.example");

	memcpy(p.local, ".ab", 4);
	assert_int_equal(smtp_path_format(&p, buf, sizeof(buf)), 15);
	assert_string_equal(buf, "\".ab\"@x.example");

	p.local[0] = '\0';
	p.local_len = 0;
	assert_int_equal(smtp_path_format(&p, buf, sizeof(buf)), 12);
	assert_string_equal(buf, "\"\"@x.example");

	/* a corrupt struct is refused, not read past its arrays */
	p.local_len = SMTP_LOCAL_MAX + 1;
	assert_int_equal(smtp_path_format(&p, buf, sizeof(buf)), -1);
}

/* ------------------------------------------------------------------ */
/* UTF-8 */

struct utf8_case {
	const char *s;
	size_t len;
	bool valid;
};

/* clang-format off */
static const struct utf8_case utf8_cases[] = {
	{ B(""), true },
	{ B("plain ascii"), true },
	{ B("\x7f"), true },
	{ B("\xc2\x80"), true },	     /* U+0080 */
	{ B("\xdf\xbf"), true },	     /* U+07FF */
	{ B("\xe0\xa0\x80"), true },	     /* U+0800 */
	{ B("\xed\x9f\xbf"), true },	     /* U+D7FF */
	{ B("\xee\x80\x80"), true },	     /* U+E000 */
	{ B("\xef\xbf\xbf"), true },	     /* U+FFFF */
	{ B("\xf0\x90\x80\x80"), true },     /* U+10000 */
	{ B("\xf4\x8f\xbf\xbf"), true },     /* U+10FFFF */
	{ B("\xce\xb4\xce\xb4"), true },
	{ B("\x80"), false },		     /* lone continuation */
	{ B("\xbf"), false },
	{ B("\xc0\xaf"), false },	     /* overlong '/' */
	{ B("\xc1\xbf"), false },
	{ B("\xe0\x80\xaf"), false },	     /* overlong */
	{ B("\xe0\x9f\xbf"), false },
	{ B("\xf0\x80\x80\xaf"), false },    /* overlong */
	{ B("\xf0\x8f\xbf\xbf"), false },
	{ B("\xed\xa0\x80"), false },	     /* U+D800 surrogate */
	{ B("\xed\xbf\xbf"), false },	     /* U+DFFF */
	{ B("\xf4\x90\x80\x80"), false },    /* U+110000 */
	{ B("\xf5\x80\x80\x80"), false },
	{ B("\xff"), false },
	{ B("\xfe\xff"), false },
	{ B("\xce"), false },		     /* truncated */
	{ B("\xe2\x82"), false },
	{ B("\xf0\x9f\x98"), false },
	{ B("\xe2\x82\x41"), false },	     /* bad continuation */
	{ B("\xc3\xc3\xa9"), false },
	{ B("a\xce\xb4" "b\xff"), false },
};
/* clang-format on */

static void
test_utf8(void **state)
{
	size_t i;
	char *h;

	(void)state;
	for (i = 0; i < N_ELEMENTS(utf8_cases); i++) {
		h = dup_exact(utf8_cases[i].s, utf8_cases[i].len);
		if (smtp_utf8_valid((const unsigned char *)h,
				    utf8_cases[i].len) != utf8_cases[i].valid)
			fail_msg("utf8 case %zu", i);
		free(h);
	}
}

/* ------------------------------------------------------------------ */
/* Command lines */

struct cmd_case {
	const char *line;
	size_t len;
	enum smtp_verb verb;
	bool has_space;
	const char *args;
};

/* clang-format off */
static const struct cmd_case cmd_cases[] = {
	{ B("MAIL FROM:<x>"), SMTP_VERB_MAIL, true, "FROM:<x>" },
	{ B("mail from:<x>"), SMTP_VERB_MAIL, true, "from:<x>" },
	{ B("MAIL  FROM:<x>"), SMTP_VERB_MAIL, true, " FROM:<x>" },
	{ B("MAIL\tFROM:<x>"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("RCPT TO:<alice@local.test>"), SMTP_VERB_RCPT, true,
	  "TO:<alice@local.test>" },
	{ B("HELO a"), SMTP_VERB_HELO, true, "a" },
	{ B("EhLo c.example"), SMTP_VERB_EHLO, true, "c.example" },
	{ B("DATA"), SMTP_VERB_DATA, false, "" },
	{ B("DATA "), SMTP_VERB_DATA, true, "" },
	{ B("BDAT 1 LAST"), SMTP_VERB_BDAT, true, "1 LAST" },
	{ B("RSET"), SMTP_VERB_RSET, false, "" },
	{ B("NOOP"), SMTP_VERB_NOOP, false, "" },
	{ B("QUIT"), SMTP_VERB_QUIT, false, "" },
	{ B("QUIT\t"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("HELP"), SMTP_VERB_HELP, false, "" },
	{ B("VRFY alice"), SMTP_VERB_VRFY, true, "alice" },
	{ B("EXPN list"), SMTP_VERB_EXPN, true, "list" },
	{ B("StartTLS"), SMTP_VERB_STARTTLS, false, "" },
	{ B("STARTTLS now"), SMTP_VERB_STARTTLS, true, "now" },
	{ B("STARTTLSX"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("STARTTL"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw=="), SMTP_VERB_AUTH,
	  true, "PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==" },
	{ B(""), SMTP_VERB_UNKNOWN, false, "" },
	{ B(" "), SMTP_VERB_UNKNOWN, true, "" },
	{ B(" NOOP"), SMTP_VERB_UNKNOWN, true, "NOOP" },
	{ B("XYZZY"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("<script>alert(1)</script>"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("PROXY TCP4 127.0.0.1 192.0.2.10 1234 25"), SMTP_VERB_UNKNOWN,
	  true, "TCP4 127.0.0.1 192.0.2.10 1234 25" },
	{ B("EHLO\xff"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("\xc5\x9eMAIL"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("MAIL:"), SMTP_VERB_NON_SMTP, false, "" },
	/* N-03: known, never implemented */
	{ B("XCLIENT ADDR=127.0.0.1 NAME=localhost"), SMTP_VERB_UNIMPLEMENTED,
	  true, "ADDR=127.0.0.1 NAME=localhost" },
	{ B("TURN"), SMTP_VERB_TURN, false, "" },
	{ B("ATRN"), SMTP_VERB_UNIMPLEMENTED, false, "" },
	{ B("etrn x"), SMTP_VERB_UNIMPLEMENTED, true, "x" },
	{ B("XFORWARD NAME=x"), SMTP_VERB_UNIMPLEMENTED, true, "NAME=x" },
	{ B("XEXCH50 1 2"), SMTP_VERB_UNIMPLEMENTED, true, "1 2" },
	{ B("DEBUG"), SMTP_VERB_UNIMPLEMENTED, false, "" },
	{ B("WIZ"), SMTP_VERB_UNIMPLEMENTED, false, "" },
	{ B("KILL"), SMTP_VERB_UNIMPLEMENTED, false, "" },
	{ B("VERB"), SMTP_VERB_UNIMPLEMENTED, false, "" },
	{ B("SEND FROM:<a@b>"), SMTP_VERB_UNIMPLEMENTED, true, "FROM:<a@b>" },
	{ B("SOML FROM:<a@b>"), SMTP_VERB_UNIMPLEMENTED, true, "FROM:<a@b>" },
	{ B("SAML FROM:<a@b>"), SMTP_VERB_UNIMPLEMENTED, true, "FROM:<a@b>" },
	/* P-05: HTTP and header lines */
	{ B("GET / HTTP/1.1"), SMTP_VERB_NON_SMTP, true, "/ HTTP/1.1" },
	{ B("POST / HTTP/1.1"), SMTP_VERB_NON_SMTP, true, "/ HTTP/1.1" },
	{ B("PUT /x HTTP/1.1"), SMTP_VERB_NON_SMTP, true, "/x HTTP/1.1" },
	{ B("head / HTTP/1.0"), SMTP_VERB_NON_SMTP, true, "/ HTTP/1.0" },
	{ B("CONNECT mx:25 HTTP/1.1"), SMTP_VERB_NON_SMTP, true,
	  "mx:25 HTTP/1.1" },
	{ B("OPTIONS * HTTP/1.1"), SMTP_VERB_NON_SMTP, true, "* HTTP/1.1" },
	{ B("DELETE /"), SMTP_VERB_NON_SMTP, true, "/" },
	{ B("Host: mx"), SMTP_VERB_NON_SMTP, true, "mx" },
	{ B("User-Agent:"), SMTP_VERB_NON_SMTP, false, "" },
	{ B("Content-Length: 20"), SMTP_VERB_NON_SMTP, true, "20" },
	{ B(":"), SMTP_VERB_NON_SMTP, false, "" },
	{ B("Host:mx"), SMTP_VERB_UNKNOWN, false, "" },
	{ B("GETX /"), SMTP_VERB_UNKNOWN, true, "/" },
};
/* clang-format on */

static void
check_cmd(const char *line, size_t len, const struct cmd_case *c)
{
	struct smtp_command cmd;
	size_t alen = strlen(c->args);

	smtp_parse_command(line, len, &cmd);
	if (cmd.verb != c->verb)
		fail_msg("\"%.*s\": verb %d, want %d", (int)len, line, cmd.verb,
			 c->verb);
	assert_int_equal(cmd.has_space, c->has_space);
	assert_int_equal(cmd.args_len, alen);
	assert_true(cmd.args >= line && cmd.args + cmd.args_len == line + len);
	assert_memory_equal(cmd.args, c->args, alen);
}

static void
test_commands(void **state)
{
	struct smtp_command cmd;
	size_t i;
	char *h;

	(void)state;
	for (i = 0; i < N_ELEMENTS(cmd_cases); i++) {
		check_cmd(cmd_cases[i].line, cmd_cases[i].len, &cmd_cases[i]);
		h = dup_exact(cmd_cases[i].line, cmd_cases[i].len);
		check_cmd(h, cmd_cases[i].len, &cmd_cases[i]);
		free(h);
	}
	/* A verb followed by several spaces: its arguments are refused. */
	smtp_parse_command(B("MAIL  FROM:<a@b>"), &cmd);
	{
		struct smtp_path p;
		struct smtp_mail_params mp;

		assert_int_equal(
		    smtp_parse_mail(cmd.args, cmd.args_len, &p, &mp),
		    SMTP_PERR_SYNTAX);
	}
	smtp_parse_command(NULL, 0, &cmd);
	assert_int_equal(cmd.verb, SMTP_VERB_UNKNOWN);
	assert_int_equal(cmd.args_len, 0);
}

static void
test_verb_names(void **state)
{
	struct smtp_command cmd;
	const char *name;
	int v;

	(void)state;
	for (v = SMTP_VERB_HELO; v <= SMTP_VERB_AUTH; v++) {
		name = smtp_verb_name((enum smtp_verb)v);
		smtp_parse_command(name, strlen(name), &cmd);
		assert_int_equal(cmd.verb, v);
	}
	for (v = 0; v < SMTP_VERB_COUNT; v++) {
		name = smtp_verb_name((enum smtp_verb)v);
		assert_non_null(name);
		assert_true(strlen(name) > 0);
	}
	assert_string_equal(smtp_verb_name(SMTP_VERB_COUNT), "?");
	assert_string_equal(smtp_verb_name((enum smtp_verb)99), "?");
}

/* ------------------------------------------------------------------ */
/* BDAT */

struct bdat_case {
	const char *args;
	size_t len;
	int ret;
	uint64_t size;
	bool last;
};

/* clang-format off */
static const struct bdat_case bdat_cases[] = {
	{ B("0"), 0, 0, false },
	{ B("1"), 0, 1, false },
	{ B("1 LAST"), 0, 1, true },
	{ B("3 last"), 0, 3, true },
	{ B("52428900"), 0, 52428900, false },
	{ B("18446744073709551615"), 0, UINT64_MAX, false },
	{ B("18446744073709551615 LAST"), 0, UINT64_MAX, true },
	{ B("0000000000000000000000000000001"), 0, 1, false },
	{ B("18446744073709551616"), -1, 0, false },
	{ B("18446744073709551617"), -1, 0, false },
	{ B("99999999999999999999999"), -1, 0, false },
	{ B(""), -1, 0, false },
	{ B("+1"), -1, 0, false },
	{ B("-1"), -1, 0, false },
	{ B(" 1"), -1, 0, false },
	{ B("1 "), -1, 0, false },
	{ B("1  LAST"), -1, 0, false },
	{ B("1 LASTX"), -1, 0, false },
	{ B("1 LAS"), -1, 0, false },
	{ B("1\tLAST"), -1, 0, false },
	{ B("1 LAST "), -1, 0, false },
	{ B("LAST"), -1, 0, false },
	{ B("x"), -1, 0, false },
	{ B("1x"), -1, 0, false },
	{ B("0x10"), -1, 0, false },
	{ B("1 LAST\x00"), -1, 0, false },
};
/* clang-format on */

static void
test_bdat(void **state)
{
	uint64_t size;
	bool last;
	size_t i;
	char *h;

	(void)state;
	for (i = 0; i < N_ELEMENTS(bdat_cases); i++) {
		const struct bdat_case *c = &bdat_cases[i];

		h = dup_exact(c->args, c->len);
		size = 12345;
		last = true;
		if (smtp_parse_bdat(h, c->len, &size, &last) != c->ret)
			fail_msg("bdat \"%.*s\"", (int)c->len, c->args);
		free(h);
		if (c->ret == 0) {
			assert_true(size == c->size);
			assert_int_equal(last, c->last);
		}
	}
}

/* ------------------------------------------------------------------ */
/* HELO */

struct helo_case {
	const char *args;
	size_t len;
	bool valid;
};

/* clang-format off */
static const struct helo_case helo_cases[] = {
	{ B("c.example"), true },
	{ B("C.Example"), true },
	{ B("c.example."), true },
	{ B("localhost"), true },
	{ B("a"), true },
	{ B("[192.0.2.1]"), true },
	{ B("[IPv6:::1]"), true },
	{ B("[IPv6:2001:db8::1]"), true },
	{ B("c.example  "), true },
	{ B("xn--bcher-kva.example"), true },
	{ B(""), false },
	{ B("   "), false },
	{ B(" c.example"), false },
	{ B("a b"), false },
	{ B("c.example x"), false },
	{ B("a..b"), false },
	{ B("."), false },
	{ B(".a"), false },
	{ B("c.example.."), false },
	{ B("-a"), false },
	{ B("a-"), false },
	{ B("a-.b"), false },
	{ B("a_b"), false },
	{ B("[::1]"), false },
	{ B("[256.1.1.1]"), false },
	{ B("[1.2.3.4]."), false },
	{ B("[1.2.3.4"), false },
	{ B("a\x00" "b"), false },
	{ B("a\tb"), false },
	{ B("c.example\t"), false },
	{ B("\xce\xb4.example"), false },
	{ B("c.example\r"), false },
	{ B("a\x00"), false },
};
/* clang-format on */

static void
test_helo(void **state)
{
	char buf[600];
	size_t i, o;
	char *h;

	(void)state;
	for (i = 0; i < N_ELEMENTS(helo_cases); i++) {
		h = dup_exact(helo_cases[i].args, helo_cases[i].len);
		if (smtp_helo_valid(h, helo_cases[i].len) !=
		    helo_cases[i].valid)
			fail_msg("helo \"%.*s\"", (int)helo_cases[i].len,
				 helo_cases[i].args);
		free(h);
	}
	/* 255 octets ok, 256 not; a label of 64 not */
	for (o = 0; o < 255; o++)
		buf[o] = (o % 2) ? '.' : 'a';
	assert_true(smtp_helo_valid(buf, 255));
	buf[255] = 'a';
	buf[254] = 'a';
	assert_false(smtp_helo_valid(buf, 256));
	memset(buf, 'a', 64);
	assert_true(smtp_helo_valid(buf, 63));
	assert_false(smtp_helo_valid(buf, 64));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_mail_params),
	    cmocka_unit_test(test_nmap_relay_forms),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_commands),
	    cmocka_unit_test(test_verb_names),
	    cmocka_unit_test(test_bdat),
	    cmocka_unit_test(test_helo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
