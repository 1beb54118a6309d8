/*
 * sasl.c - SMTP AUTH (RFC 4954) with the mechanisms PLAIN (RFC 4616) and
 * LOGIN, and strict base64 (RFC 4648 4).
 *
 * No I/O and no allocation. The session hands us the text after "AUTH "
 * and then each continuation line; we answer what to do next. Decoded
 * credentials live only in struct sasl (and briefly in stack buffers that
 * are wiped before return). Any result other than SASL_CONTINUE and
 * SASL_DONE wipes the whole struct, so a failed or cancelled exchange
 * leaves nothing behind (Postfix CVE-2011-1720: state kept across a
 * cancelled mechanism).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "smtp/sasl.h"

/* RFC 4422 3.1: sasl-mech = 1*20mech-char */
#define SASL_MECH_NAME_MAX 20
/* RFC 4616 2: authzid NUL authcid NUL passwd, each at most 255 octets. */
#define SASL_PLAIN_MAX (3 * SASL_FIELD_MAX + 2)

/* Where an exchange stands; kept in sasl->step. */
enum sasl_step {
	STEP_NONE = 0,	 /* no exchange */
	STEP_PLAIN_MSG,	 /* PLAIN: waiting for the whole message */
	STEP_LOGIN_USER, /* LOGIN: sent "Username:" */
	STEP_LOGIN_PASS, /* LOGIN: sent "Password:" */
	STEP_DONE,	 /* credentials complete */
};

/* The LOGIN prompts, already in base64 (draft-murchison-sasl-login). */
#define LOGIN_USER_PROMPT "VXNlcm5hbWU6" /* "Username:" */
#define LOGIN_PASS_PROMPT "UGFzc3dvcmQ6" /* "Password:" */

#define CHALLENGE_SIZE sizeof(((struct sasl *)0)->challenge)
_Static_assert(sizeof(LOGIN_USER_PROMPT) <= CHALLENGE_SIZE, "challenge");
_Static_assert(sizeof(LOGIN_PASS_PROMPT) <= CHALLENGE_SIZE, "challenge");

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of one base64 symbol (RFC 4648 4, table 1), or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Validate `in` as strict base64 and return its decoded length, or -1.
 * RFC 4648 3.3: no character outside the alphabet (no whitespace);
 * 3.2: length a multiple of 4 and '=' only as the final one or two
 * symbols; 3.5: the bits a pad leaves over must be zero, so that every
 * octet string has exactly one encoding.
 */
static long
b64_decoded_len(const char *in, size_t len)
{
	size_t i, pad = 0;
	int v;

	if (len % 4 != 0 || len / 4 > LONG_MAX / 3)
		return -1;
	if (len == 0)
		return 0;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (b64_value((unsigned char)in[i]) < 0)
			return -1;
	v = b64_value((unsigned char)in[len - pad - 1]);
	if ((pad == 1 && (v & 0x03) != 0) || (pad == 2 && (v & 0x0f) != 0))
		return -1;
	return (long)(len / 4 * 3 - pad);
}

/*
 * Strict decode (see sasl.h). The input is validated and its exact decoded
 * length compared with `size` before a single octet is written, so an
 * invalid or oversized input leaves `out` untouched (Exim CVE-2018-6789
 * wrote one octet past a 3*(len/4)+1 buffer on a 4n+3 input).
 */
long
sasl_base64_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
	long n = b64_decoded_len(in, len);
	size_t i, o = 0;
	uint32_t acc;
	int k;

	if (n < 0 || (size_t)n > size)
		return -1;
	for (i = 0; i < len; i += 4) {
		acc = 0;
		for (k = 0; k < 4; k++) {
			int v = b64_value((unsigned char)in[i + k]);

			acc = acc << 6 | (uint32_t)(v < 0 ? 0 : v);
		}
		for (k = 2; k >= 0 && o < (size_t)n; k--)
			out[o++] = (unsigned char)(acc >> (8 * k));
	}
	return n;
}

/*
 * Encode with padding (RFC 4648 4) and NUL-terminate. Fails with -1,
 * writing nothing, when `size` cannot hold 4*ceil(len/3)+1 octets.
 */
long
sasl_base64_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
	size_t i, o = 0, need;
	uint32_t acc;

	if (len / 3 + 1 > ((size_t)LONG_MAX - 1) / 4)
		return -1;
	need = (len + 2) / 3 * 4;
	if (size < need + 1)
		return -1;
	for (i = 0; i < len; i += 3) {
		acc = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			acc |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			acc |= in[i + 2];
		out[o++] = b64_alphabet[acc >> 18 & 0x3f];
		out[o++] = b64_alphabet[acc >> 12 & 0x3f];
		out[o++] = i + 1 < len ? b64_alphabet[acc >> 6 & 0x3f] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[acc & 0x3f] : '=';
	}
	out[o] = '\0';
	return (long)o;
}

/* ASCII-only case-insensitive equality; no locale (user names are octets). */
static bool
ascii_caseeq(const char *a, const char *b, size_t len)
{
	size_t i;
	unsigned char x, y;

	for (i = 0; i < len; i++) {
		x = (unsigned char)a[i];
		y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/*
 * A credential field may hold any octet but NUL, CR and LF: RFC 4616 2
 * already forbids NUL, and CR or LF would let a decoded name forge log
 * lines or headers (THREATS A-07, Exim CVE-2020-28021).
 */
static bool
field_ok(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] == '\0' || p[i] == '\r' || p[i] == '\n')
			return false;
	return true;
}

static void
set_challenge(struct sasl *sasl, const char *text)
{
	size_t n = strlen(text);

	memcpy(sasl->challenge, text, n + 1);
}

/*
 * Decode one client response into `out` (at most `size` octets); the
 * caller has checked the line length against SASL_LINE_MAX. RFC 4954
 * 4: "=" is an empty initial response, which only `is_initial` allows.
 * A response that is valid base64 but decodes to more than `size` octets is
 * a bad message, not bad base64. Sets *n_r and returns SASL_CONTINUE on
 * success.
 */
static enum sasl_result
decode_response(const char *in, size_t len, bool is_initial, unsigned char *out,
		size_t size, size_t *n_r)
{
	long n;

	*n_r = 0;
	if (is_initial && len == 1 && in[0] == '=')
		return SASL_CONTINUE;
	n = b64_decoded_len(in, len);
	if (n < 0)
		return SASL_BAD_BASE64;
	if ((size_t)n > size)
		return SASL_BAD_MESSAGE;
	if (sasl_base64_decode(in, len, out, size) != n)
		return SASL_BAD_BASE64; /* cannot happen */
	*n_r = (size_t)n;
	return SASL_CONTINUE;
}

/*
 * Split a decoded PLAIN message (RFC 4616 2):
 *   message = [authzid] UTF8NUL authcid UTF8NUL passwd
 * Exactly two NULs (field_ok() refuses a third one inside passwd);
 * authcid and passwd non-empty; every part at most 255
 * octets. We allow no proxy authorization, so authzid must be empty or
 * name the authcid itself (THREATS A-04 #3: "bob" never rides on alice's
 * password).
 */
static enum sasl_result
plain_split(struct sasl *sasl, const unsigned char *msg, size_t n)
{
	const unsigned char *nul1, *nul2, *authc, *pass;
	size_t zlen, clen, plen;

	nul1 = memchr(msg, '\0', n);
	if (nul1 == NULL)
		return SASL_BAD_MESSAGE;
	authc = nul1 + 1;
	nul2 = memchr(authc, '\0', n - (size_t)(authc - msg));
	if (nul2 == NULL)
		return SASL_BAD_MESSAGE;
	pass = nul2 + 1;
	zlen = (size_t)(nul1 - msg);
	clen = (size_t)(nul2 - authc);
	plen = n - (size_t)(pass - msg);
	if (zlen > SASL_FIELD_MAX || clen == 0 || clen > SASL_FIELD_MAX ||
	    plen == 0 || plen > SASL_FIELD_MAX)
		return SASL_BAD_MESSAGE;
	/* Kept for the failure's log line should the checks below fail;
	   only once the shape is right, so that a password sent in the
	   place of the user name ("user NUL password NUL") is never kept. */
	sasl->bad_user_len = clen;
	memcpy(sasl->bad_user, authc, clen);
	if (!field_ok(msg, zlen) || !field_ok(authc, clen) ||
	    !field_ok(pass, plen))
		return SASL_BAD_MESSAGE;
	if (zlen != 0 &&
	    (zlen != clen ||
	     !ascii_caseeq((const char *)msg, (const char *)authc, clen)))
		return SASL_BAD_MESSAGE;
	memcpy(sasl->user, authc, clen);
	sasl->user[clen] = '\0';
	sasl->user_len = clen;
	memcpy(sasl->pass, pass, plen);
	sasl->pass[plen] = '\0';
	sasl->pass_len = plen;
	sasl->step = STEP_DONE;
	return SASL_DONE;
}

/* Decode and split one PLAIN response; the scratch copy is wiped. */
static enum sasl_result
plain_message(struct sasl *sasl, const char *in, size_t len, bool is_initial)
{
	unsigned char msg[SASL_PLAIN_MAX];
	enum sasl_result r;
	size_t n;

	r = decode_response(in, len, is_initial, msg, sizeof(msg), &n);
	if (r == SASL_CONTINUE)
		r = plain_split(sasl, msg, n);
	explicit_bzero(msg, sizeof(msg));
	return r;
}

/*
 * One LOGIN field (user name or password): base64 of 1 to 255 octets,
 * none of them NUL, CR or LF. Stored NUL-terminated in `dst`.
 */
static enum sasl_result
login_field(const char *in, size_t len, bool is_initial, char *dst,
	    size_t *len_r)
{
	unsigned char buf[SASL_FIELD_MAX];
	enum sasl_result r;
	size_t n;

	r = decode_response(in, len, is_initial, buf, sizeof(buf), &n);
	if (r == SASL_CONTINUE && (n == 0 || !field_ok(buf, n)))
		r = SASL_BAD_MESSAGE;
	if (r == SASL_CONTINUE) {
		memcpy(dst, buf, n);
		dst[n] = '\0';
		*len_r = n;
	}
	explicit_bzero(buf, sizeof(buf));
	return r;
}

/* LOGIN: have the user name, ask for the password. */
static enum sasl_result
login_user(struct sasl *sasl, const char *in, size_t len, bool is_initial)
{
	enum sasl_result r;

	r = login_field(in, len, is_initial, sasl->user, &sasl->user_len);
	if (r != SASL_CONTINUE)
		return r;
	sasl->step = STEP_LOGIN_PASS;
	set_challenge(sasl, LOGIN_PASS_PROMPT);
	return SASL_CONTINUE;
}

/* LOGIN: have the password; the credentials are complete. */
static enum sasl_result
login_pass(struct sasl *sasl, const char *in, size_t len)
{
	enum sasl_result r;

	r = login_field(in, len, false, sasl->pass, &sasl->pass_len);
	if (r != SASL_CONTINUE)
		return r;
	sasl->step = STEP_DONE;
	return SASL_DONE;
}

/* RFC 4422 3.1: 1 to 20 of A-Z 0-9 '-' '_' (we also take lower case). */
static bool
mech_name_ok(const char *name, size_t len)
{
	size_t i;
	unsigned char c;

	if (len == 0 || len > SASL_MECH_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		c = (unsigned char)name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* Only PLAIN and LOGIN: every other mechanism is refused (THREATS A-08). */
static enum sasl_mech
mech_lookup(const char *name, size_t len)
{
	if (len == 5 && ascii_caseeq(name, "PLAIN", 5))
		return SASL_MECH_PLAIN;
	if (len == 5 && ascii_caseeq(name, "LOGIN", 5))
		return SASL_MECH_LOGIN;
	return SASL_MECH_NONE;
}

/* Every result but CONTINUE and DONE ends the exchange and wipes it. */
static enum sasl_result
sasl_finish(struct sasl *sasl, enum sasl_result r)
{
	char bad[SASL_FIELD_MAX];
	size_t bad_len = r == SASL_BAD_MESSAGE ? sasl->bad_user_len : 0;

	if (r == SASL_CONTINUE || r == SASL_DONE) {
		explicit_bzero(sasl->bad_user, sizeof(sasl->bad_user));
		sasl->bad_user_len = 0;
		return r;
	}
	memcpy(bad, sasl->bad_user, bad_len);
	sasl_reset(sasl);
	memcpy(sasl->bad_user, bad, bad_len);
	sasl->bad_user_len = bad_len;
	explicit_bzero(bad, sizeof(bad));
	return r;
}

/* Begin the exchange for an accepted mechanism. */
static enum sasl_result
sasl_begin(struct sasl *sasl, const char *ir, size_t irlen, bool has_ir)
{
	if (sasl->mech == SASL_MECH_PLAIN) {
		if (has_ir)
			return plain_message(sasl, ir, irlen, true);
		/* RFC 4616 2: the server's first challenge is empty. */
		sasl->step = STEP_PLAIN_MSG;
		set_challenge(sasl, "");
		return SASL_CONTINUE;
	}
	if (has_ir)
		return login_user(sasl, ir, irlen, true);
	sasl->step = STEP_LOGIN_USER;
	set_challenge(sasl, LOGIN_USER_PROMPT);
	return SASL_CONTINUE;
}

/*
 * RFC 4954 4: "AUTH" SP sasl-mech [SP initial-response]. Exactly one SP
 * between the words and none elsewhere: an empty mechanism, a trailing
 * SP or a third word is SASL_SYNTAX. A well-formed but unoffered
 * mechanism is SASL_UNKNOWN_MECH whatever follows it. Any earlier state
 * is wiped first.
 */
enum sasl_result
sasl_start(struct sasl *sasl, const char *args, size_t len)
{
	const char *sp, *ir = NULL;
	size_t mlen, irlen = 0;

	sasl_reset(sasl);
	if (len > SASL_LINE_MAX)
		return SASL_TOO_LONG;
	if (len == 0)
		return SASL_SYNTAX;
	sp = memchr(args, ' ', len);
	mlen = sp != NULL ? (size_t)(sp - args) : len;
	if (!mech_name_ok(args, mlen))
		return SASL_SYNTAX;
	sasl->mech = mech_lookup(args, mlen);
	if (sasl->mech == SASL_MECH_NONE)
		return SASL_UNKNOWN_MECH;
	if (sp != NULL) {
		ir = sp + 1;
		irlen = len - mlen - 1;
		if (irlen == 0 || memchr(ir, ' ', irlen) != NULL)
			return sasl_finish(sasl, SASL_SYNTAX);
	}
	return sasl_finish(sasl, sasl_begin(sasl, ir, irlen, sp != NULL));
}

/*
 * One continuation line. RFC 4954 4: "*" cancels. A continuation is plain
 * base64; "=" (empty) is only for the initial response, an empty line is
 * the empty response here. Called outside an exchange it answers
 * SASL_SYNTAX.
 */
enum sasl_result
sasl_step(struct sasl *sasl, const char *line, size_t len)
{
	enum sasl_result r;

	if (sasl->step != STEP_PLAIN_MSG && sasl->step != STEP_LOGIN_USER &&
	    sasl->step != STEP_LOGIN_PASS)
		r = SASL_SYNTAX;
	else if (len > SASL_LINE_MAX)
		r = SASL_TOO_LONG;
	else if (len == 1 && line[0] == '*')
		r = SASL_CANCELLED;
	else if (sasl->step == STEP_PLAIN_MSG)
		r = plain_message(sasl, line, len, false);
	else if (sasl->step == STEP_LOGIN_USER)
		r = login_user(sasl, line, len, false);
	else
		r = login_pass(sasl, line, len);
	return sasl_finish(sasl, r);
}

const char *
sasl_challenge(const struct sasl *sasl)
{
	return sasl->challenge;
}

/* Wipe the whole struct; all-zero is the idle state (SASL_MECH_NONE). */
void
sasl_reset(struct sasl *sasl)
{
	explicit_bzero(sasl, sizeof(*sasl));
}
