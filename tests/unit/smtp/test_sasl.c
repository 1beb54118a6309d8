/*
 * test_sasl.c - strict base64 (RFC 4648 4), AUTH PLAIN (RFC 4616) and
 * AUTH LOGIN under RFC 4954, with the THREATS.md vectors,
 *
 *
 * Every input is handed over as a heap copy of exactly its length, without
 * a terminating NUL, and every output buffer is exactly as large as the
 * contract allows, so ASan reports any read or write one octet too far
 * (Exim CVE-2018-6789).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/sasl.h"

static const char *const result_names[] = {
    "CONTINUE",	   "DONE",	   "CANCELLED", "BAD_BASE64",
    "BAD_MESSAGE", "UNKNOWN_MECH", "TOO_LONG",	"SYNTAX",
};

static const char *
rname(enum sasl_result r)
{
	if ((size_t)r < sizeof(result_names) / sizeof(result_names[0]))
		return result_names[r];
	return "?";
}

/* Heap copy of exactly n octets (no NUL), so ASan sees overreads. */
static char *
dup_exact(const void *p, size_t n)
{
	char *d = malloc(n != 0 ? n : 1);

	assert_non_null(d);
	if (n != 0)
		memcpy(d, p, n);
	return d;
}

static enum sasl_result
start_n(struct sasl *s, const char *args, size_t n)
{
	char *d = dup_exact(args, n);
	enum sasl_result r = sasl_start(s, d, n);

	free(d);
	return r;
}

static enum sasl_result
step_n(struct sasl *s, const char *line, size_t n)
{
	char *d = dup_exact(line, n);
	enum sasl_result r = sasl_step(s, d, n);

	free(d);
	return r;
}

static enum sasl_result
start(struct sasl *s, const char *args)
{
	return start_n(s, args, strlen(args));
}

static enum sasl_result
step(struct sasl *s, const char *line)
{
	return step_n(s, line, strlen(line));
}

/* After any failure the whole struct must be zero (wiped), but for the
   user name of a malformed message, kept for the log line. */
static void
assert_wiped(const struct sasl *s)
{
	static const struct sasl zero;
	struct sasl copy = *s;

	explicit_bzero(copy.bad_user, sizeof(copy.bad_user));
	copy.bad_user_len = 0;
	assert_memory_equal(&copy, &zero, sizeof(zero));
	assert_string_equal(sasl_challenge(s), "");
	assert_null(memchr(s->bad_user, '\0', s->bad_user_len));
}

static void
expect(enum sasl_result got, enum sasl_result want, const char *what,
       size_t idx)
{
	if (got != want)
		fail_msg("%s #%zu: got %s, want %s", what, idx, rname(got),
			 rname(want));
}

static void
assert_creds(const struct sasl *s, const char *user, size_t ulen,
	     const char *pass, size_t plen)
{
	assert_int_equal(s->user_len, ulen);
	assert_memory_equal(s->user, user, ulen);
	assert_int_equal(s->user[ulen], '\0');
	assert_int_equal(s->pass_len, plen);
	assert_memory_equal(s->pass, pass, plen);
	assert_int_equal(s->pass[plen], '\0');
}

/* Any result that is neither CONTINUE nor DONE must leave nothing. */
static void
check_after(const struct sasl *s, enum sasl_result r)
{
	if (r != SASL_CONTINUE && r != SASL_DONE)
		assert_wiped(s);
}

/* ---- base64 ---- */

/* RFC 4648 10 test vectors. */
static const struct {
	const char *plain, *b64;
} rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void
test_b64_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t pl = strlen(rfc4648[i].plain);
		size_t bl = strlen(rfc4648[i].b64);
		char *in = dup_exact(rfc4648[i].b64, bl);
		unsigned char *out = malloc(pl != 0 ? pl : 1);
		char *enc = malloc(bl + 1);

		/* Decode into exactly pl octets. */
		assert_int_equal(sasl_base64_decode(in, bl, out, pl), pl);
		assert_memory_equal(out, rfc4648[i].plain, pl);
		/* One octet short: refused, nothing written past. */
		if (pl > 0)
			assert_int_equal(
			    sasl_base64_decode(in, bl, out, pl - 1), -1);
		/* Encode into exactly bl + 1. */
		assert_int_equal(
		    sasl_base64_encode((const unsigned char *)rfc4648[i].plain,
				       pl, enc, bl + 1),
		    bl);
		assert_string_equal(enc, rfc4648[i].b64);
		assert_int_equal(
		    sasl_base64_encode((const unsigned char *)rfc4648[i].plain,
				       pl, enc, bl),
		    -1);
		free(in);
		free(out);
		free(enc);
	}
}

/* Inputs a strict decoder refuses (RFC 4648 3.2, 3.3, 3.5). */
static const struct {
	const char *in;
	size_t len; /* 0: strlen */
} bad_b64[] = {
    {"QUFBQUF", 0}, /* 4n+3: CVE-2018-6789 (THREATS A-04 #1) */
    {"Q", 0},	    /* 4n+1 */
    {"QU", 0},	    /* 4n+2 */
    {"QUF", 0},	    /* 4n+3 */
    {"QUFBQ", 0},   /* 4n+1 */
    {"QUFBQU", 0},  /* 4n+2 */
    {"Zg=", 0},	    /* short padding */
    {"Zg", 0},	    /* unpadded */
    {"=", 0},	    /* "=" is the caller's business */
    {"==", 0},		{"===", 0},	 {"====", 0},
    {"A===", 0},     /* three pads */
    {"AA=A", 0},     /* padding in the middle of a group */
    {"Zg==Zg==", 0}, /* padding in the middle of the text */
    {"Zm8=Zm9v", 0},	{"Zm9v\r\n", 0}, {" Zm9v", 0},
    {"Zm9v ", 0},	{"Zm 9v", 0},	 {"Zm9\tv", 0},
    {"Zm9-", 0}, /* base64url alphabet (RFC 4648 5) */
    {"Zm9_", 0},	{"Zm9..", 0},	 {"Zm\0v", 4},
    {"\xc3\xa9Zg=", 0}, /* 8-bit */
    {"Zh==", 0},	/* non-canonical: low 4 bits of 'h' set */
    {"AB==", 0},	/* non-canonical */
    {"Zm9=", 0},	/* non-canonical: low 2 bits of '9' set */
    {"AAB=", 0},	/* non-canonical */
    {"Zm//Zm9=", 0},	/* non-canonical in the last group only */
    {"*", 0},		{"Zm9v*", 0},
};

static void
test_b64_bad(void **state)
{
	unsigned char *out = malloc(64);

	(void)state;
	for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
		size_t n =
		    bad_b64[i].len ? bad_b64[i].len : strlen(bad_b64[i].in);
		char *in = dup_exact(bad_b64[i].in, n);

		memset(out, 0xa5, 64);
		if (sasl_base64_decode(in, n, out, 64) != -1)
			fail_msg("bad_b64 #%zu accepted", i);
		/* Refused before writing a single octet. */
		for (size_t k = 0; k < 64; k++)
			assert_int_equal(out[k], 0xa5);
		free(in);
	}
	free(out);
}

/* Canonical last symbols are accepted (the counterpart of the above). */
static void
test_b64_canonical_edges(void **state)
{
	unsigned char out[3];

	(void)state;
	assert_int_equal(sasl_base64_decode("AA==", 4, out, 1), 1);
	assert_int_equal(out[0], 0);
	assert_int_equal(sasl_base64_decode("/w==", 4, out, 1), 1);
	assert_int_equal(out[0], 0xff);
	assert_int_equal(sasl_base64_decode("//8=", 4, out, 2), 2);
	assert_int_equal(out[0], 0xff);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(sasl_base64_decode("////", 4, out, 3), 3);
	assert_int_equal(sasl_base64_decode("+/+/", 4, out, 3), 3);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(sasl_base64_decode("", 0, out, 0), 0);
	/* Exactly-sized output of zero: a non-empty decode is refused. */
	assert_int_equal(sasl_base64_decode("AA==", 4, out, 0), -1);
}

/*
 * Every input length from 0 to 64, each with an output buffer of exactly
 * 3*ceil(n/4) octets on the heap: only multiples of 4 decode, and then to
 * exactly 3n/4 octets.
 */
static void
test_b64_all_lengths(void **state)
{
	(void)state;
	for (size_t n = 0; n <= 64; n++) {
		char *in = malloc(n != 0 ? n : 1);
		size_t cap = 3 * ((n + 3) / 4);
		unsigned char *out = malloc(cap != 0 ? cap : 1);
		long got;

		memset(in, 'Q', n);
		got = sasl_base64_decode(in, n, out, cap);
		if (n % 4 == 0) {
			assert_int_equal(got, (long)cap);
			if (n > 0)
				assert_int_equal(
				    sasl_base64_decode(in, n, out, cap - 1),
				    -1);
		} else {
			if (got != -1)
				fail_msg("length %zu (4n+%zu) accepted", n,
					 n % 4);
		}
		/* With padding at the end: 4n+1/2/3 plus pads. */
		if (n >= 4 && n % 4 == 0) {
			in[n - 1] = '=';
			in[n - 2] = 'A'; /* 'A' keeps the pad bits zero */
			assert_int_equal(sasl_base64_decode(in, n, out, cap),
					 (long)cap - 1);
			in[n - 2] = '=';
			in[n - 3] = 'A';
			assert_int_equal(sasl_base64_decode(in, n, out, cap),
					 (long)cap - 2);
			assert_int_equal(
			    sasl_base64_decode(in, n, out, cap - 3), -1);
		}
		free(in);
		free(out);
	}
}

/* decode(encode(x)) == x for random data of every length up to 300. */
static void
test_b64_round_trip(void **state)
{
	uint32_t seed = 12345;

	(void)state;
	for (size_t n = 0; n <= 300; n++) {
		for (int rep = 0; rep < 8; rep++) {
			unsigned char *x = malloc(n != 0 ? n : 1);
			size_t elen = (n + 2) / 3 * 4;
			char *e = malloc(elen + 1);
			unsigned char *y = malloc(n != 0 ? n : 1);
			char *ein;

			for (size_t i = 0; i < n; i++) {
				seed ^= seed << 13; /* xorshift32 */
				seed ^= seed >> 17;
				seed ^= seed << 5;
				x[i] = (unsigned char)seed;
			}
			assert_int_equal(sasl_base64_encode(x, n, e, elen + 1),
					 elen);
			assert_int_equal(sasl_base64_encode(x, n, e, elen), -1);
			assert_int_equal(strlen(e), elen);
			ein = dup_exact(e, elen);
			assert_int_equal(sasl_base64_decode(ein, elen, y, n),
					 (long)n);
			assert_memory_equal(x, y, n);
			free(ein);
			free(x);
			free(y);
			free(e);
		}
	}
}

/* ---- AUTH start ---- */

struct start_case {
	const char *args;
	enum sasl_result want;
	const char *challenge; /* for CONTINUE */
	const char *user;      /* for DONE */
	const char *pass;
};

static const struct start_case start_cases[] = {
    /* [SUB]: \0alice@local.test\0pass */
    {"PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==", SASL_DONE, NULL,
     "alice@local.test", "pass"},
    {"plain AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==", SASL_DONE, NULL,
     "alice@local.test", "pass"},
    {"PlAiN AGFsaWNlQGxvY2FsLnRlc3QAd3Jvbmc=", SASL_DONE, NULL,
     "alice@local.test", "wrong"},
    {"PLAIN AG5vc3VjaHVzZXJAbG9jYWwudGVzdAB3cm9uZw==", SASL_DONE, NULL,
     "nosuchuser@local.test", "wrong"},
    /* RFC 4616 4 examples: "tim" with and without authzid */
    {"PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm", SASL_DONE, NULL, "tim",
     "tanstaaftanstaaf"},
    {"PLAIN dGltAHRpbQB0YW5zdGFhZnRhbnN0YWFm", SASL_DONE, NULL, "tim",
     "tanstaaftanstaaf"},
    /* authcid Ursel asks to act as Kurt: proxy authorization refused */
    {"PLAIN S3VydABVcnNlbABr9m1tZWw=", SASL_BAD_MESSAGE, NULL, NULL, NULL},
    /* A-04 #1: 4n+3 */
    {"PLAIN QUFBQUF", SASL_BAD_BASE64, NULL, NULL, NULL},
    /* A-04 #2 */
    {"PLAIN YWxpY2VAbG9jYWwudGVzdABwYXNz", SASL_BAD_MESSAGE, NULL, NULL, NULL},
    {"PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcwBleHRyYQ==", SASL_BAD_MESSAGE, NULL,
     NULL, NULL},
    {"PLAIN AAA=", SASL_BAD_MESSAGE, NULL, NULL, NULL},
    {"PLAIN =", SASL_BAD_MESSAGE, NULL, NULL, NULL},
    /* A-04 #3: authzid bob, authcid alice */
    {"PLAIN Ym9iQGxvY2FsLnRlc3QAYWxpY2VAbG9jYWwudGVzdABwYXNz", SASL_BAD_MESSAGE,
     NULL, NULL, NULL},
    /* A-07 #2: CR LF in the user name */
    {"PLAIN AGFsaWNlDQpBVVRIIE9LIHVzZXI9cm9vdAB4", SASL_BAD_MESSAGE, NULL, NULL,
     NULL},
    /* bad base64 in the initial response */
    {"PLAIN Zh==", SASL_BAD_BASE64, NULL, NULL, NULL},
    {"PLAIN AGFsaWNl=QGxv", SASL_BAD_BASE64, NULL, NULL, NULL},
    {"PLAIN *", SASL_BAD_BASE64, NULL, NULL, NULL},
    {"PLAIN ==", SASL_BAD_BASE64, NULL, NULL, NULL},
    /* no initial response: empty challenge (RFC 4616 2) */
    {"PLAIN", SASL_CONTINUE, "", NULL, NULL},
    {"plain", SASL_CONTINUE, "", NULL, NULL},
    /* LOGIN */
    {"LOGIN", SASL_CONTINUE, "VXNlcm5hbWU6", NULL, NULL},
    {"login", SASL_CONTINUE, "VXNlcm5hbWU6", NULL, NULL},
    {"LOGIN YWxpY2VAbG9jYWwudGVzdA==", SASL_CONTINUE, "UGFzc3dvcmQ6", NULL,
     NULL},
    {"LOGIN =", SASL_BAD_MESSAGE, NULL, NULL, NULL},
    {"LOGIN QUFBQUF", SASL_BAD_BASE64, NULL, NULL, NULL},
    {"LOGIN YWxpY2UNCg==", SASL_BAD_MESSAGE, NULL, NULL,
     NULL},						/* "alice\r\n" */
    {"LOGIN YQBi", SASL_BAD_MESSAGE, NULL, NULL, NULL}, /* "a\0b" */
    /* mechanisms we do not offer */
    {"CRAM-MD5", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"DIGEST-MD5", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=", SASL_UNKNOWN_MECH,
     NULL, NULL, NULL},
    {"NTLM", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"EXTERNAL =", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"EXTERNAL", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"GSSAPI", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"XOAUTH2 dXNlcj1hAWF1dGg9QmVhcmVyIHgBAQ==", SASL_UNKNOWN_MECH, NULL, NULL,
     NULL},
    {"OAUTHBEARER", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"SCRAM-SHA-256", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"ANONYMOUS", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"SPA", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"PLAINX", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"PLAI", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"LOGIN2", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"X", SASL_UNKNOWN_MECH, NULL, NULL, NULL},
    {"ABCDEFGHIJKLMNOPQRST", SASL_UNKNOWN_MECH, NULL, NULL,
     NULL}, /* 20: longest name */
    /* syntax (RFC 4954 4: "AUTH" SP sasl-mech [SP initial-response]) */
    {"", SASL_SYNTAX, NULL, NULL, NULL},
    {" ", SASL_SYNTAX, NULL, NULL, NULL},
    {" PLAIN", SASL_SYNTAX, NULL, NULL, NULL},
    {"PLAIN ", SASL_SYNTAX, NULL, NULL, NULL},
    {"LOGIN ", SASL_SYNTAX, NULL, NULL, NULL},
    {"PLAIN  AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==", SASL_SYNTAX, NULL, NULL, NULL},
    {"PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw== ", SASL_SYNTAX, NULL, NULL, NULL},
    {"PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw== x", SASL_SYNTAX, NULL, NULL, NULL},
    {"PLAIN = =", SASL_SYNTAX, NULL, NULL, NULL},
    {"LOGIN YWxpY2VAbG9jYWwudGVzdA== cGFzcw==", SASL_SYNTAX, NULL, NULL, NULL},
    {"ABCDEFGHIJKLMNOPQRSTU", SASL_SYNTAX, NULL, NULL,
     NULL}, /* 21 characters */
    {"PL@IN", SASL_SYNTAX, NULL, NULL, NULL},
    {"PLAIN\tAGFs", SASL_SYNTAX, NULL, NULL, NULL},
    {"PLAIN\r\n", SASL_SYNTAX, NULL, NULL, NULL},
    {"\xc3\x89", SASL_SYNTAX, NULL, NULL, NULL},
};

static void
test_start_table(void **state)
{
	struct sasl s;

	(void)state;
	for (size_t i = 0; i < sizeof(start_cases) / sizeof(start_cases[0]);
	     i++) {
		const struct start_case *c = &start_cases[i];
		enum sasl_result r;

		memset(&s, 0x5a, sizeof(s)); /* sasl_start wipes first */
		r = start(&s, c->args);
		expect(r, c->want, c->args, i);
		check_after(&s, r);
		if (r == SASL_CONTINUE)
			assert_string_equal(sasl_challenge(&s), c->challenge);
		if (r == SASL_DONE) {
			assert_creds(&s, c->user, strlen(c->user), c->pass,
				     strlen(c->pass));
			sasl_reset(&s);
			assert_wiped(&s);
		}
	}
}

/* A NUL inside the arguments never passes for the end of the string. */
static void
test_start_nul(void **state)
{
	struct sasl s;

	(void)state;
	expect(start_n(&s, "PLAIN\0", 6), SASL_SYNTAX, "PLAIN\\0", 0);
	expect(start_n(&s, "PLAIN AAA=\0", 11), SASL_BAD_BASE64, "AAA=\\0", 1);
	expect(start_n(&s, "LOG\0IN", 6), SASL_SYNTAX, "LOG\\0IN", 2);
	assert_wiped(&s);
}

/* ---- PLAIN messages, as initial response and as continuation ---- */

struct plain_case {
	const char *msg;
	size_t len;
	enum sasl_result want;
	const char *user;
	size_t ulen;
	const char *pass;
	size_t plen;
};

#define M(s) s, sizeof(s) - 1
static const struct plain_case plain_cases[] = {
    {M("\0alice\0pass"), SASL_DONE, M("alice"), M("pass")},
    {M("alice\0alice\0pass"), SASL_DONE, M("alice"), M("pass")},
    {M("ALICE@Local.Test\0alice@local.test\0pass"), SASL_DONE,
     M("alice@local.test"), M("pass")},
    {M("bob\0alice\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("alicex\0alice\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("alic\0alice\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\xc3\xa9\0\xc3\x89\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL,
     0}, /* ASCII only */
    {M("\0\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0alice\0"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0\0"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M(""), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("alice"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0alice\0pass\0"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0alice\0pa\0ss"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0\0alice\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0alice\0pa\rss"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0alice\0pass\n"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0al\nice\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0alice\r\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("al\rice\0al\rice\0pass"), SASL_BAD_MESSAGE, NULL, 0, NULL, 0},
    {M("\0\xc3\xa9l\xc3\xa8ve\0p\xc3\xa4ss"), SASL_DONE,
     M("\xc3\xa9l\xc3\xa8ve"), M("p\xc3\xa4ss")},
    {M("\0a\tb\x7f\0 \x01 "), SASL_DONE, M("a\tb\x7f"), M(" \x01 ")},
    {M("\0\xff\0\xff"), SASL_DONE, M("\xff"), M("\xff")},
};
#undef M

static void
check_plain(struct sasl *s, const struct plain_case *c, size_t i, bool initial)
{
	size_t elen = (c->len + 2) / 3 * 4;
	char *line = malloc(7 + elen);
	enum sasl_result r;

	memcpy(line, "PLAIN ", 6);
	assert_int_equal(sasl_base64_encode((const unsigned char *)c->msg,
					    c->len, line + 6, elen + 1),
			 elen);
	if (initial) {
		/* RFC 4954 4: an empty initial response is "=". */
		r = elen != 0 ? start_n(s, line, 6 + elen)
			      : start(s, "PLAIN =");
	} else {
		assert_int_equal(start(s, "PLAIN"), SASL_CONTINUE);
		assert_string_equal(sasl_challenge(s), "");
		r = step_n(s, line + 6, elen);
	}
	expect(r, c->want, initial ? "plain initial" : "plain step", i);
	check_after(s, r);
	if (r == SASL_DONE) {
		assert_creds(s, c->user, c->ulen, c->pass, c->plen);
		/* The exchange is over: further lines are out of place. */
		assert_int_equal(step(s, "AAAA"), SASL_SYNTAX);
		assert_wiped(s);
	}
	free(line);
}

static void
test_plain_table(void **state)
{
	struct sasl s;

	(void)state;
	sasl_reset(&s);
	for (size_t i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]);
	     i++) {
		check_plain(&s, &plain_cases[i], i, true);
		check_plain(&s, &plain_cases[i], i, false);
	}
}

/* RFC 4616 2: each part at most 255 octets; 255 passes, 256 does not. */
static void
test_plain_field_limits(void **state)
{
	static const size_t z[] = {0, 255, 0, 0, 256, 0, 0};
	static const size_t c[] = {255, 255, 1, 256, 255, 255, 1};
	static const size_t p[] = {255, 255, 255, 1, 255, 256, 0};
	static const enum sasl_result want[] = {
	    SASL_DONE,	      SASL_DONE,	SASL_DONE,
	    SASL_BAD_MESSAGE, SASL_BAD_MESSAGE, SASL_BAD_MESSAGE,
	    SASL_BAD_MESSAGE,
	};
	struct sasl s;

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct plain_case pc = {0};
		char *msg = malloc(z[i] + c[i] + p[i] + 2);
		char *u = malloc(c[i] + 1), *pw = malloc(p[i] + 1);

		memset(u, 'u', c[i]);
		memset(pw, 'p', p[i]);
		memset(msg, 'U', z[i]); /* authzid = authcid, other case */
		msg[z[i]] = '\0';
		memcpy(msg + z[i] + 1, u, c[i]);
		msg[z[i] + 1 + c[i]] = '\0';
		memcpy(msg + z[i] + 2 + c[i], pw, p[i]);
		pc.msg = msg;
		pc.len = z[i] + c[i] + p[i] + 2;
		pc.want = want[i];
		pc.user = u;
		pc.ulen = c[i];
		pc.pass = pw;
		pc.plen = p[i];
		check_plain(&s, &pc, i, true);
		check_plain(&s, &pc, i, false);
		free(msg);
		free(u);
		free(pw);
	}
}

/* PLAIN without initial response: cancel, bad base64, long lines. */
static void
test_plain_continuation(void **state)
{
	struct sasl s;
	char *big;

	(void)state;
	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_int_equal(step(&s, "*"), SASL_CANCELLED);
	assert_wiped(&s);
	/* Outside an exchange, "*" is not a cancel. */
	assert_int_equal(step(&s, "*"), SASL_SYNTAX);

	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_int_equal(step(&s, ""), SASL_BAD_MESSAGE); /* empty message */
	assert_wiped(&s);

	/* "=" is only for the initial response. */
	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_int_equal(step(&s, "="), SASL_BAD_BASE64);
	assert_wiped(&s);

	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_int_equal(step(&s, "QUFBQUF"), SASL_BAD_BASE64);
	assert_wiped(&s);

	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_int_equal(step(&s, "**"), SASL_BAD_BASE64);
	assert_wiped(&s);

	/* Valid base64 of 768 octets: one more than three 255-octet parts. */
	big = malloc(SASL_LINE_MAX + 7);
	memset(big, 'A', SASL_LINE_MAX + 7);
	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, big, 1024), SASL_BAD_MESSAGE);
	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, big, SASL_LINE_MAX), SASL_BAD_MESSAGE);
	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, big, SASL_LINE_MAX + 1), SASL_TOO_LONG);
	assert_wiped(&s);
	/* The same through the initial response. */
	memcpy(big, "PLAIN ", 6);
	assert_int_equal(start_n(&s, big, 6 + 1024), SASL_BAD_MESSAGE);
	assert_int_equal(start_n(&s, big, SASL_LINE_MAX), SASL_BAD_BASE64);
	assert_int_equal(start_n(&s, big, SASL_LINE_MAX - 2), SASL_BAD_MESSAGE);
	assert_int_equal(start_n(&s, big, SASL_LINE_MAX + 1), SASL_TOO_LONG);
	assert_wiped(&s);
	free(big);
}

/* ---- LOGIN ---- */

/* A-05 #1: LOGIN, cancel, LOGIN with initial response, password. */
static void
test_login_a05(void **state)
{
	struct sasl s;

	(void)state;
	sasl_reset(&s);
	assert_int_equal(start(&s, "LOGIN"), SASL_CONTINUE);
	assert_string_equal(sasl_challenge(&s), "VXNlcm5hbWU6");
	assert_int_equal(step(&s, "*"), SASL_CANCELLED);
	assert_wiped(&s);
	assert_int_equal(start(&s, "LOGIN YWxpY2VAbG9jYWwudGVzdA=="),
			 SASL_CONTINUE);
	assert_string_equal(sasl_challenge(&s), "UGFzc3dvcmQ6");
	assert_int_equal(step(&s, "cGFzcw=="), SASL_DONE);
	assert_creds(&s, "alice@local.test", 16, "pass", 4);
	sasl_reset(&s);
	assert_wiped(&s);
}

/*
 * A-05 #2 (nmap smtp-vuln-cve2011-1720): unknown mechanisms, each
 * followed by a stray "*", leave no state behind.
 */
static void
test_login_cve_2011_1720(void **state)
{
	struct sasl s;

	(void)state;
	assert_int_equal(start(&s, "CRAM-MD5"), SASL_UNKNOWN_MECH);
	assert_wiped(&s);
	assert_int_equal(step(&s, "*"), SASL_SYNTAX);
	assert_int_equal(start(&s, "DIGEST-MD5"), SASL_UNKNOWN_MECH);
	assert_int_equal(step(&s, "*"), SASL_SYNTAX);
	assert_wiped(&s);
	/* Mechanism switch: a LOGIN half done, then PLAIN from scratch. */
	assert_int_equal(start(&s, "LOGIN YWxpY2VAbG9jYWwudGVzdA=="),
			 SASL_CONTINUE);
	assert_int_equal(start(&s, "PLAIN"), SASL_CONTINUE);
	assert_string_equal(sasl_challenge(&s), "");
	assert_int_equal(s.user_len, 0);
	assert_int_equal(s.user[0], '\0');
	assert_int_equal(step(&s, "AGJvYgBzZWNyZXQ="), SASL_DONE);
	assert_creds(&s, "bob", 3, "secret", 6);
}

/* A LOGIN exchange, with an event at step 0 (user) or 1 (password). */
struct login_case {
	const char *ir;	       /* initial response, or NULL */
	const char *lines[3];  /* continuation lines, NULL-terminated */
	enum sasl_result want; /* of the last line */
	const char *user, *pass;
};

static const struct login_case login_cases[] = {
    {NULL,
     {"YWxpY2VAbG9jYWwudGVzdA==", "cGFzcw==", NULL},
     SASL_DONE,
     "alice@local.test",
     "pass"},
    {"YWxpY2VAbG9jYWwudGVzdA==",
     {"cGFzcw==", NULL},
     SASL_DONE,
     "alice@local.test",
     "pass"},
    /* cancel at each step */
    {NULL, {"*", NULL}, SASL_CANCELLED, NULL, NULL},
    {NULL, {"YWxpY2VAbG9jYWwudGVzdA==", "*", NULL}, SASL_CANCELLED, NULL, NULL},
    {"YWxpY2VAbG9jYWwudGVzdA==", {"*", NULL}, SASL_CANCELLED, NULL, NULL},
    /* empty user or password */
    {NULL, {"", NULL}, SASL_BAD_MESSAGE, NULL, NULL},
    {NULL, {"YWxpY2U=", "", NULL}, SASL_BAD_MESSAGE, NULL, NULL},
    {"YWxpY2U=", {"", NULL}, SASL_BAD_MESSAGE, NULL, NULL},
    /* "=" only in the initial response */
    {NULL, {"=", NULL}, SASL_BAD_BASE64, NULL, NULL},
    {NULL, {"YWxpY2U=", "=", NULL}, SASL_BAD_BASE64, NULL, NULL},
    /* bad base64 at each step */
    {NULL, {"QUFBQUF", NULL}, SASL_BAD_BASE64, NULL, NULL},
    {NULL, {"YWxpY2U=", "cGFzcw", NULL}, SASL_BAD_BASE64, NULL, NULL},
    {NULL, {"YWxpY2U=", "cGFzcw== ", NULL}, SASL_BAD_BASE64, NULL, NULL},
    {NULL, {"YWxpY2U=", "cGFzcx==", NULL}, SASL_BAD_BASE64, NULL, NULL},
    /* NUL, CR, LF in user or password */
    {NULL, {"YWxpY2UNCkFVVEggT0s=", NULL}, SASL_BAD_MESSAGE, NULL, NULL},
    {NULL, {"YWxpY2UK", NULL}, SASL_BAD_MESSAGE, NULL, NULL},
    {NULL, {"AGFsaWNl", NULL}, SASL_BAD_MESSAGE, NULL, NULL},
    {NULL, {"YWxpY2U=", "cGEAc3M=", NULL}, SASL_BAD_MESSAGE, NULL, NULL},
    {NULL, {"YWxpY2U=", "cGFzcw0K", NULL}, SASL_BAD_MESSAGE, NULL, NULL},
    /* 8-bit octets are fine */
    {NULL,
     {"w6lsw6h2ZQ==", "/w==", NULL},
     SASL_DONE,
     "\xc3\xa9l\xc3\xa8ve",
     "\xff"},
};

static void
test_login_table(void **state)
{
	struct sasl s;

	(void)state;
	for (size_t i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]);
	     i++) {
		const struct login_case *c = &login_cases[i];
		enum sasl_result r;
		size_t k;
		char args[64];
		int n;

		n = snprintf(args, sizeof(args), "LOGIN%s%s", c->ir ? " " : "",
			     c->ir ? c->ir : "");
		assert_true(n > 0 && (size_t)n < sizeof(args));
		assert_int_equal(start(&s, args), SASL_CONTINUE);
		assert_string_equal(sasl_challenge(&s),
				    c->ir ? "UGFzc3dvcmQ6" : "VXNlcm5hbWU6");
		for (k = 0; c->lines[k + 1] != NULL; k++) {
			assert_int_equal(step(&s, c->lines[k]), SASL_CONTINUE);
			assert_string_equal(sasl_challenge(&s), "UGFzc3dvcmQ6");
		}
		r = step(&s, c->lines[k]);
		expect(r, c->want, "login", i);
		check_after(&s, r);
		if (r == SASL_DONE) {
			assert_creds(&s, c->user, strlen(c->user), c->pass,
				     strlen(c->pass));
			assert_int_equal(step(&s, "*"), SASL_SYNTAX);
			assert_wiped(&s);
		}
	}
}

/* Field and line limits for LOGIN; A-05 #3: 20000 octets -> TOO_LONG. */
static void
test_login_limits(void **state)
{
	unsigned char raw[256];
	char enc[400], *big;
	struct sasl s;
	long n;

	(void)state;
	memset(raw, 'x', sizeof(raw));
	/* 255 octets: accepted, at both steps. */
	n = sasl_base64_encode(raw, 255, enc, sizeof(enc));
	assert_true(n > 0);
	assert_int_equal(start(&s, "LOGIN"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, enc, (size_t)n), SASL_CONTINUE);
	assert_int_equal(step_n(&s, enc, (size_t)n), SASL_DONE);
	assert_int_equal(s.user_len, 255);
	assert_int_equal(s.pass_len, 255);
	assert_int_equal(s.user[255], '\0');
	/* 256 octets: refused, at both steps. */
	n = sasl_base64_encode(raw, 256, enc, sizeof(enc));
	assert_int_equal(start(&s, "LOGIN"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, enc, (size_t)n), SASL_BAD_MESSAGE);
	assert_wiped(&s);
	assert_int_equal(start(&s, "LOGIN eHh4"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, enc, (size_t)n), SASL_BAD_MESSAGE);
	assert_wiped(&s);

	big = malloc(20000);
	memset(big, 'A', 20000);
	assert_int_equal(start(&s, "LOGIN"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, big, 20000), SASL_TOO_LONG);
	assert_wiped(&s);
	assert_int_equal(start(&s, "LOGIN"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, big, SASL_LINE_MAX + 1), SASL_TOO_LONG);
	assert_int_equal(start(&s, "LOGIN eHh4"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, big, SASL_LINE_MAX + 1), SASL_TOO_LONG);
	/* At the limit the line is read, and its content is too large. */
	assert_int_equal(start(&s, "LOGIN"), SASL_CONTINUE);
	assert_int_equal(step_n(&s, big, SASL_LINE_MAX), SASL_BAD_MESSAGE);
	assert_wiped(&s);
	free(big);
}

/* sasl_step without sasl_start, and sasl_reset mid-exchange. */
static void
test_idle(void **state)
{
	struct sasl s;

	(void)state;
	sasl_reset(&s);
	assert_wiped(&s);
	assert_int_equal(step(&s, "AGFsaWNlAHBhc3M="), SASL_SYNTAX);
	assert_int_equal(step(&s, ""), SASL_SYNTAX);
	assert_wiped(&s);
	assert_int_equal(start(&s, "LOGIN YWxpY2U="), SASL_CONTINUE);
	assert_int_equal(s.user_len, 5);
	sasl_reset(&s);
	assert_wiped(&s);
	assert_int_equal(step(&s, "cGFzcw=="), SASL_SYNTAX);
}

/* A malformed PLAIN message keeps its user name for the log, and only
   that: never the password. */
static void
test_bad_message_keeps_user_only(void **state)
{
	struct sasl s;
	/* "\0alice\r\nAUTH OK user=root\0x" (THREATS A-07 #2) */
	const char *ir = "AGFsaWNlDQpBVVRIIE9LIHVzZXI9cm9vdAB4";

	memset(&s, 0, sizeof(s));
	assert_int_equal(sasl_start(&s, "PLAIN AGFsaWNlDQpBVVRIIE9LIHVzZXI9cm9v"
				       "dAB4",
				    strlen("PLAIN ") + strlen(ir)),
			 SASL_BAD_MESSAGE);
	assert_int_equal(s.bad_user_len, 24);
	assert_memory_equal(s.bad_user, "alice\r\nAUTH OK user=root", 24);
	assert_int_equal(s.pass_len, 0);
	assert_int_equal(s.pass[0], 0);
	sasl_reset(&s);
	assert_int_equal(s.bad_user_len, 0);

	/* "alice NUL secret NUL": the password sits where the user name
	   goes; nothing may be kept for the log. */
	assert_int_equal(sasl_start(&s, "PLAIN YWxpY2UAc2VjcmV0AA==", 26),
			 SASL_BAD_MESSAGE);
	assert_int_equal(s.bad_user_len, 0);
	assert_null(memmem(&s, sizeof(s), "secret", 6));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_message_keeps_user_only),
	    cmocka_unit_test(test_b64_rfc4648),
	    cmocka_unit_test(test_b64_bad),
	    cmocka_unit_test(test_b64_canonical_edges),
	    cmocka_unit_test(test_b64_all_lengths),
	    cmocka_unit_test(test_b64_round_trip),
	    cmocka_unit_test(test_start_table),
	    cmocka_unit_test(test_start_nul),
	    cmocka_unit_test(test_plain_table),
	    cmocka_unit_test(test_plain_field_limits),
	    cmocka_unit_test(test_plain_continuation),
	    cmocka_unit_test(test_login_a05),
	    cmocka_unit_test(test_login_cve_2011_1720),
	    cmocka_unit_test(test_login_table),
	    cmocka_unit_test(test_login_limits),
	    cmocka_unit_test(test_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
