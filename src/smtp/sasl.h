/*
 * sasl.h - SMTP AUTH (RFC 4954) mechanisms PLAIN (RFC 4616) and LOGIN,
 * and strict base64 (RFC 4648 4). No I/O, no allocation: the session feeds
 * lines and gets back what to answer. After SASL_DONE the credentials
 * are in user/pass until sasl_reset(), which wipes them; every other
 * result wipes them at once.
 */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <stdbool.h>
#include <stddef.h>

#define SASL_FIELD_MAX 255	/* RFC 4616: each of authzid, authcid, passwd */
#define SASL_LINE_MAX 12288	/* RFC 4954 4: AUTH command line */

enum sasl_mech {
	SASL_MECH_NONE = 0,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

/* What the session must do after sasl_start() or sasl_step(). */
enum sasl_result {
	SASL_CONTINUE,	     /* send "334 <challenge>" (sasl_challenge) */
	SASL_DONE,	     /* credentials complete: verify them */
	SASL_CANCELLED,	     /* client sent "*": 501 5.0.0 */
	SASL_BAD_BASE64,     /* 501 5.5.2 */
	SASL_BAD_MESSAGE,    /* decoded but malformed (NULs, lengths, an
				authzid that is not the authcid): 535 5.7.8 */
	SASL_UNKNOWN_MECH,   /* 504 5.5.4 */
	SASL_TOO_LONG,	     /* a line over the limit: 500 5.5.6 */
	SASL_SYNTAX,	     /* bad AUTH arguments: 501 5.5.4 */
};

struct sasl {
	enum sasl_mech mech;
	int step;
	char challenge[16]; /* base64 text for the 334 line */
	char user[SASL_FIELD_MAX + 1];
	size_t user_len;
	char pass[SASL_FIELD_MAX + 1];
	size_t pass_len;
	/* After SASL_BAD_MESSAGE: the user name of the malformed message,
	   when one could be found (for the log line; never the password). */
	char bad_user[SASL_FIELD_MAX + 1];
	size_t bad_user_len;
};

/*
 * Strict base64 decode: only the RFC 4648 alphabet, length a multiple of 4,
 * '=' only as final padding, non-zero pad bits refused. Writes at most
 * `size` octets. Returns the decoded length, or -1. "=" alone (RFC 4954's
 * empty response) is handled by the callers, not here.
 */
long sasl_base64_decode(const char *in, size_t len, unsigned char *out,
			size_t size);
/* Encode; returns the length written (NUL-terminated), or -1. */
long sasl_base64_encode(const unsigned char *in, size_t len, char *out,
			size_t size);

/*
 * Start: `args` is what follows "AUTH " (mechanism, optional initial
 * response), not terminated. Mechanism names are case-insensitive. An
 * initial response "=" means empty. Unknown mechanisms (CRAM-MD5,
 * DIGEST-MD5, NTLM, EXTERNAL, GSSAPI, ...) give SASL_UNKNOWN_MECH.
 */
enum sasl_result sasl_start(struct sasl *sasl, const char *args, size_t len);
/* A continuation line from the client (without CRLF). */
enum sasl_result sasl_step(struct sasl *sasl, const char *line, size_t len);
/* The base64 challenge for a 334 reply ("" for an empty one). */
const char *sasl_challenge(const struct sasl *sasl);
/* Wipe everything (explicit_bzero of the credentials). */
void sasl_reset(struct sasl *sasl);

/* The mechanism names offered in EHLO. */
#define SASL_MECHANISMS "PLAIN LOGIN"

#endif
