/*
 * reply.c - the reply table. Codes per RFC 5321 4.2 and the verb sections;
 * enhanced status codes per RFC 3463 (and RFC 4954, 6531, 3030 for their
 * extensions). Texts are constant: none carries input from the client.
 */
#include "smtp/reply.h"

#include <stdio.h>

#define REPLY(id, code, status, text, closes)                                  \
	[id] = {code, status, text, closes, reply_counts_for(code, id)}

/* Client mistakes (syntax, sequence, unknown commands) are errors; refused
   addresses and messages are rejections; temporary local trouble and
   limits the client cannot help count as neither. */
#define reply_counts_for(code, id)                                             \
	((code) < 400 || (code) == 421 || (code) == 451 || (code) == 452 ||     \
			 (code) == 454                                         \
		 ? REPLY_COUNTS_NONE                                           \
	 : (id) == R_AUTH_FAILED                                               \
		 ? REPLY_COUNTS_NONE                                           \
	 : (id) == R_NO_MAILBOX || (id) == R_RELAY_DENIED ||                  \
			 (id) == R_SENDER_NOT_OWNED ||                         \
			 (id) == R_FROM_NOT_OWNED ||                           \
			 (id) == R_LOCAL_SENDER ||                             \
			 (id) == R_BARE_LF_DATA || (id) == R_NUL_DATA ||       \
			 (id) == R_TOO_BIG || (id) == R_HEADER_TOO_BIG ||      \
			 (id) == R_LOOP                                        \
		 ? REPLY_COUNTS_REJECT                                         \
		 : REPLY_COUNTS_ERROR)

static const struct reply reply_table[REPLY_COUNT] = {
	REPLY(R_SUCCESS, 250, "2.0.0", "Ok", 0),
	REPLY(R_SENDER_OK, 250, "2.1.0", "Sender ok", 0),
	REPLY(R_RCPT_OK, 250, "2.1.5", "Recipient ok", 0),
	REPLY(R_RSET_OK, 250, "2.0.0", "Reset", 0),
	REPLY(R_NOOP_OK, 250, "2.0.0", "Ok", 0),
	REPLY(R_BDAT_OK, 250, "2.0.0", "Chunk received", 0),
	REPLY(R_DATA_GO, 354, NULL, "End data with <CR><LF>.<CR><LF>", 0),
	REPLY(R_QUIT, 221, "2.0.0", "Bye", 1),
	REPLY(R_VRFY, 252, "2.0.0",
	      "Cannot VRFY user, but will accept message and attempt delivery",
	      0),
	REPLY(R_HELP, 214, "2.0.0",
	      "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP "
	      "VRFY",
	      0),
	REPLY(R_TLS_GO, 220, "2.0.0", "Ready to start TLS", 0),
	REPLY(R_SHUTDOWN, 421, "4.3.2", "Service shutting down, try later", 1),
	REPLY(R_TIMEOUT, 421, "4.4.2", "Timeout exceeded, closing", 1),
	REPLY(R_TOO_MANY_ERRORS, 421, "4.7.0", "Too many errors, closing", 1),
	REPLY(R_TOO_MANY_SESSIONS, 421, "4.7.0",
	      "Too many connections, try later", 1),
	REPLY(R_TEMP_FAIL, 451, "4.3.0", "Local error in processing, try later",
	      0),
	REPLY(R_NO_STORAGE, 452, "4.3.1", "Insufficient system storage", 0),
	REPLY(R_TOO_MANY_RCPTS, 452, "4.5.3", "Too many recipients", 0),
	REPLY(R_TLS_UNAVAILABLE, 454, "4.7.0", "TLS not available", 0),
	REPLY(R_UNRECOGNIZED, 500, "5.5.2", "Command not recognized", 0),
	REPLY(R_LINE_TOO_LONG, 500, "5.5.2", "Line too long", 0),
	REPLY(R_BAD_UTF8, 500, "5.5.2", "Invalid UTF-8", 0),
	REPLY(R_NUL, 500, "5.5.2", "NUL octet in command", 0),
	REPLY(R_BARE_LF_CMD, 500, "5.5.2", "Bare CR or LF in command", 0),
	REPLY(R_SYNTAX, 501, "5.5.4", "Syntax error in arguments", 0),
	REPLY(R_SYNTAX_HELO, 501, "5.5.4", "Syntax: EHLO hostname", 0),
	REPLY(R_BAD_HELO, 501, "5.5.2", "Invalid hostname", 0),
	REPLY(R_SYNTAX_MAIL, 501, "5.5.4", "Syntax: MAIL FROM:<address>", 0),
	REPLY(R_SYNTAX_RCPT, 501, "5.5.4", "Syntax: RCPT TO:<address>", 0),
	REPLY(R_BAD_SENDER, 501, "5.1.7", "Bad sender address syntax", 0),
	REPLY(R_BAD_RCPT, 501, "5.1.3", "Bad recipient address syntax", 0),
	REPLY(R_BAD_PARAM, 501, "5.5.4", "Invalid parameter", 0),
	REPLY(R_NO_ARGS, 501, "5.5.4", "Syntax: no arguments allowed", 0),
	REPLY(R_NOT_IMPLEMENTED, 502, "5.5.1", "Command not implemented", 0),
	REPLY(R_EXPN, 502, "5.5.1", "EXPN not available", 0),
	REPLY(R_NEED_HELO, 503, "5.5.1", "Send HELO/EHLO first", 0),
	REPLY(R_NEED_MAIL, 503, "5.5.1", "Need MAIL command", 0),
	REPLY(R_NESTED_MAIL, 503, "5.5.1", "Nested MAIL command", 0),
	REPLY(R_NEED_RCPT, 503, "5.5.1", "Need RCPT command", 0),
	REPLY(R_DATA_AFTER_BDAT, 503, "5.5.1", "DATA and BDAT do not mix", 0),
	REPLY(R_AUTH_NOT_AVAILABLE, 503, "5.5.1", "AUTH not available", 0),
	REPLY(R_TLS_ACTIVE, 554, "5.5.1", "TLS already active", 0),
	REPLY(R_NEED_TLS, 530, "5.7.0", "Must issue a STARTTLS command first",
	      0),
	REPLY(R_NEED_AUTH, 530, "5.7.0", "Authentication required", 0),
	REPLY(R_BDAT_SYNTAX, 521, "5.5.4", "Syntax: BDAT count [LAST]", 1),
	REPLY(R_BDAT_NULL, 551, "5.7.1", "Null BDAT request", 0),
	REPLY(R_NO_MAILBOX, 550, "5.1.1", "No such mailbox here", 0),
	REPLY(R_BARE_LF_DATA, 550, "5.5.2",
	      "Message refused: bare CR or LF received", 0),
	REPLY(R_NUL_DATA, 550, "5.6.0", "Message refused: NUL octet received",
	      0),
	REPLY(R_TOO_BIG, 552, "5.3.4", "Message too big", 0),
	REPLY(R_HEADER_TOO_BIG, 552, "5.3.4", "Header section too big", 0),
	REPLY(R_UTF8_UNDECLARED, 553, "5.6.7",
	      "Must declare SMTPUTF8 to send a UTF-8 address", 0),
	REPLY(R_RELAY_DENIED, 554, "5.7.1", "Relay access denied", 0),
	REPLY(R_LOOP, 554, "5.4.6", "Too many hops, mail loop", 0),
	REPLY(R_NO_VALID_RCPTS, 554, "5.5.1", "No valid recipients", 0),
	REPLY(R_SYNC, 554, "5.5.0", "SMTP protocol synchronization error", 1),
	REPLY(R_PREGREET, 554, "5.5.0", "Talking before the greeting", 1),
	REPLY(R_PARAM_UNKNOWN, 555, "5.5.4",
	      "Parameter not recognized or repeated", 0),
	REPLY(R_NON_SMTP, 221, "2.7.0", "Not an SMTP client, goodbye", 1),
	REPLY(R_AUTH_OK, 235, "2.7.0", "Authentication successful", 0),
	REPLY(R_AUTH_FAILED, 535, "5.7.8",
	      "Authentication credentials invalid", 0),
	REPLY(R_AUTH_TEMP, 454, "4.7.0",
	      "Temporary authentication failure, try later", 0),
	REPLY(R_AUTH_CANCELLED, 501, "5.0.0", "Authentication cancelled", 0),
	REPLY(R_AUTH_BAD_BASE64, 501, "5.5.2", "Invalid base64 data", 0),
	REPLY(R_AUTH_MECH, 504, "5.5.4", "Unrecognized authentication mechanism",
	      0),
	REPLY(R_AUTH_TOO_LONG, 500, "5.5.6", "Authentication line too long", 0),
	REPLY(R_AUTH_SYNTAX, 501, "5.5.4", "Syntax: AUTH mechanism [response]",
	      0),
	REPLY(R_AUTH_ALREADY, 503, "5.5.1", "Already authenticated", 0),
	REPLY(R_AUTH_IN_TX, 503, "5.5.1", "Mail transaction in progress", 0),
	REPLY(R_AUTH_TOO_MANY, 421, "4.7.0",
	      "Too many authentication failures, closing", 1),
	REPLY(R_SENDER_NOT_OWNED, 553, "5.7.1",
	      "Sender address rejected: not owned by user", 0),
	REPLY(R_FROM_NOT_OWNED, 550, "5.7.1",
	      "From header address not owned by user", 0),
	REPLY(R_LOCAL_SENDER, 550, "5.7.1",
	      "Sender address in our domain: submit with authentication", 0),
	REPLY(R_CONN_LOCKED, 421, "4.7.0", "Access temporarily refused", 1),
	REPLY(R_CONN_TOO_FAST, 421, "4.7.0",
	      "Too many connections from your address, slow down", 1),
	REPLY(R_CONN_TOO_MANY, 421, "4.7.0",
	      "Too many connections from your address", 1),
	/* docs/sendlimit.md: RFC 3463 3.8, X.7.1 "delivery not authorized",
	   temporary: the limit frees itself (or an admin releases). */
	REPLY(R_SEND_LIMIT_HOUR, 451, "4.7.1",
	      "Hourly recipient limit of this account reached, try later", 0),
	REPLY(R_SEND_LIMIT_DAY, 451, "4.7.1",
	      "Daily recipient limit of this account reached, try later", 0),
	REPLY(R_SEND_LIMIT_NEW, 451, "4.7.1",
	      "Daily limit of new recipients of this account reached, try "
	      "later",
	      0),
	REPLY(R_SEND_HELD, 451, "4.7.1",
	      "Unusual sending volume: this account is suspended until the "
	      "postmaster releases it",
	      0),
};

const struct reply *
reply_get(enum reply_id id)
{
	if ((unsigned)id >= REPLY_COUNT)
		id = R_TEMP_FAIL;
	return &reply_table[id];
}

size_t
reply_format(enum reply_id id, char *buf, size_t size)
{
	const struct reply *r = reply_get(id);
	int n;

	if (r->status != NULL)
		n = snprintf(buf, size, "%u %s %s\r\n", r->code, r->status,
			     r->text);
	else
		n = snprintf(buf, size, "%u %s\r\n", r->code, r->text);
	if (n < 0 || (size_t)n >= size)
		return 0;
	return (size_t)n;
}
