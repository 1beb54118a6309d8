/*
 * smtp_parse.h - SMTP command lines, RFC 5321 paths and ESMTP parameters.
 * No I/O, no allocation: every function reads a caller's buffer and fills a
 * caller's struct. One path parser serves MAIL, RCPT, the relay decision and
 * delivery (THREATS R-01, R-04).
 */
#ifndef POSTERN_SMTP_PARSE_H
#define POSTERN_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX 256   /* RFC 5321 4.5.3.1.3, with the brackets */

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_TURN, /* 502 5.5.1, but it ends a group (RFC 2920 3.1) */
	/* Known but never implemented (THREATS N-03): 502 5.5.1. */
	SMTP_VERB_UNIMPLEMENTED,
	/* HTTP verbs and "Name:" header lines sent as commands (P-05). */
	SMTP_VERB_NON_SMTP,
	SMTP_VERB_COUNT
};

struct smtp_command {
	enum smtp_verb verb;
	size_t line_len;  /* the whole line, without its CRLF */
	const char *args; /* after the verb and one space; not terminated */
	size_t args_len;  /* 0 when there are no arguments */
	bool has_space;	  /* the verb was followed by a space */
};

/*
 * Split a command line (without its CRLF) into verb and arguments. The verb
 * is matched case-insensitively. `line` must not contain NUL, CR or LF
 * (the session rejects those first). Never fails: unknown verbs give
 * SMTP_VERB_UNKNOWN.
 */
void smtp_parse_command(const char *line, size_t len,
			struct smtp_command *cmd_r);

const char *smtp_verb_name(enum smtp_verb verb);

/* Why a path or parameter was refused; the session maps each to a reply. */
enum smtp_perr {
	SMTP_PERR_OK = 0,
	SMTP_PERR_SYNTAX,	   /* bad path syntax: 501 5.1.7 MAIL, 5.1.3 RCPT */
	SMTP_PERR_NO_DOMAIN,	   /* a mailbox without @domain: same replies */
	SMTP_PERR_TOO_LONG,	   /* local > 64, domain > 255, path > 256 */
	SMTP_PERR_UTF8_UNDECLARED, /* 8-bit without SMTPUTF8: 553 5.6.7 */
	SMTP_PERR_BAD_UTF8,	   /* invalid UTF-8: 500 5.5.2 */
	SMTP_PERR_PARAM_SYNTAX,	   /* malformed parameter: 501 5.5.4 */
	SMTP_PERR_PARAM_UNKNOWN,   /* unknown or duplicate keyword: 555 5.5.4 */
	SMTP_PERR_SIZE_TOO_BIG,	   /* SIZE= over 2^64-1: 552 5.3.4 */
};

struct smtp_path {
	bool is_null;	 /* "<>" */
	bool is_literal; /* domain is an address literal "[...]" */
	bool is_utf8;	 /* local part or domain has octets >= 0x80 */
	char local[SMTP_LOCAL_MAX + 1];	  /* dequoted, NUL-terminated */
	size_t local_len;
	char domain[SMTP_DOMAIN_MAX + 1]; /* ASCII lower-cased; a literal keeps
					     its brackets: "[192.0.2.1]" */
	size_t domain_len;
};

enum smtp_body {
	SMTP_BODY_NONE = 0, /* not declared */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

struct smtp_mail_params {
	bool has_size;
	uint64_t size;	  /* SIZE= (RFC 1870) */
	enum smtp_body body; /* BODY= (RFC 6152) */
	bool smtputf8;	  /* SMTPUTF8 (RFC 6531) */
	bool has_auth;	  /* AUTH= (RFC 4954 5), value decoded from xtext */
	char auth[SMTP_PATH_MAX + 1];
};

/*
 * Parse the arguments of MAIL ("FROM:<path> params") or RCPT
 * ("TO:<path> params"). The keyword is case-insensitive; spaces between the
 * colon and the '<' are tolerated; the angle brackets are required. A
 * source route ("@a,@b:") is accepted and dropped (RFC 5321 3.6.1, C).
 * Rules:
 *  - local part: dot-string or quoted-string (RFC 5321 4.1.2); the result is
 *    dequoted. "%", "!" and "@" inside a quoted local part stay part of the
 *    local part, nothing is rewritten.
 *  - domain: LDH labels (no trailing dot), or "[IPv4]" or "[IPv6:...]"
 *    checked with inet_pton; other literals are refused.
 *  - octets >= 0x80 only when SMTPUTF8 applies (MAIL: the SMTPUTF8
 *    parameter in the same command; RCPT: `smtputf8` from the MAIL), and
 *    then strict UTF-8 (no overlong forms, surrogates, or > U+10FFFF).
 *  - parameters: keyword[=value] separated by spaces; each keyword at most
 *    once. MAIL knows SIZE, BODY (7BIT, 8BITMIME), SMTPUTF8 and AUTH;
 *    RCPT knows none yet. AUTH= is xtext-decoded (RFC 3461 4) and refused
 *    if the result holds a CTL.
 *  - "<>" is allowed for MAIL only.
 * Returns SMTP_PERR_OK or the first error. On SMTP_PERR_NO_DOMAIN,
 * path_r->local holds the local part (RFC 5321 4.5.1 "Postmaster").
 */
enum smtp_perr smtp_parse_mail(const char *args, size_t len,
			       struct smtp_path *path_r,
			       struct smtp_mail_params *params_r);
enum smtp_perr smtp_parse_rcpt(const char *args, size_t len, bool smtputf8,
			       struct smtp_path *path_r);

/*
 * Write `path` as it would appear between angle brackets, quoting the local
 * part when it is not a dot-string. Returns the length, or -1 when it does
 * not fit (the output is always NUL-terminated when size > 0).
 */
int smtp_path_format(const struct smtp_path *path, char *buf, size_t size);

/* Is [s, s+len) valid UTF-8 in the strict sense above? */
bool smtp_utf8_valid(const unsigned char *s, size_t len);

/*
 * Parse "BDAT <size> [LAST]" arguments (RFC 3030): 1*DIGIT, no overflow,
 * one space, optional LAST (case-insensitive). Returns 0 or -1.
 */
int smtp_parse_bdat(const char *args, size_t len, uint64_t *size_r,
		    bool *last_r);

/*
 * Is a HELO/EHLO argument acceptable? A domain (LDH labels, a trailing dot
 * allowed) or an address literal; no spaces after it (EHLO takes one
 * argument; trailing spaces are tolerated). Returns true when acceptable.
 */
bool smtp_helo_valid(const char *args, size_t len);

#endif
