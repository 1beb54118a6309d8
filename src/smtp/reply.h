/*
 * reply.h - every fixed SMTP reply, in one table (reply.c): RFC 5321 code,
 * RFC 3463 enhanced status code, text. Nothing a client sent is ever echoed
 * in a reply (THREATS P-05).
 */
#ifndef POSTERN_REPLY_H
#define POSTERN_REPLY_H

#include <stddef.h>

enum reply_id {
	R_SUCCESS = 0,		/* 250 2.0.0 Ok */
	R_SENDER_OK,		/* 250 2.1.0 */
	R_RCPT_OK,		/* 250 2.1.5 */
	R_RSET_OK,		/* 250 2.0.0 Reset */
	R_NOOP_OK,
	R_BDAT_OK,		/* 250 2.0.0 chunk received */
	R_DATA_GO,		/* 354 */
	R_QUIT,			/* 221 2.0.0 */
	R_VRFY,			/* 252 2.0.0 */
	R_HELP,			/* 214 2.0.0 */
	R_TLS_GO,		/* 220 2.0.0 Ready to start TLS */
	R_SHUTDOWN,		/* 421 4.3.2 shutting down */
	R_TIMEOUT,		/* 421 4.4.2 timeout exceeded */
	R_TOO_MANY_ERRORS,	/* 421 4.7.0 */
	R_TOO_MANY_SESSIONS,	/* 421 4.7.0 */
	R_TEMP_FAIL,		/* 451 4.3.0 local error */
	R_NO_STORAGE,		/* 452 4.3.1 */
	R_TOO_MANY_RCPTS,	/* 452 4.5.3 */
	R_TLS_UNAVAILABLE,	/* 454 4.7.0 */
	R_UNRECOGNIZED,		/* 500 5.5.2 command not recognized */
	R_LINE_TOO_LONG,	/* 500 5.5.2 line too long */
	R_BAD_UTF8,		/* 500 5.5.2 bad UTF-8 */
	R_NUL,			/* 500 5.5.2 NUL */
	R_BARE_LF_CMD,		/* 500 5.5.2 bare CR or LF */
	R_SYNTAX,		/* 501 5.5.4 syntax error in arguments */
	R_SYNTAX_HELO,		/* 501 5.5.4 Syntax: HELO/EHLO hostname */
	R_BAD_HELO,		/* 501 5.5.2 invalid hostname */
	R_SYNTAX_MAIL,		/* 501 5.5.4 Syntax: MAIL FROM:<address> */
	R_SYNTAX_RCPT,		/* 501 5.5.4 Syntax: RCPT TO:<address> */
	R_BAD_SENDER,		/* 501 5.1.7 */
	R_BAD_RCPT,		/* 501 5.1.3 */
	R_BAD_PARAM,		/* 501 5.5.4 bad parameter */
	R_NO_ARGS,		/* 501 5.5.4 no arguments allowed */
	R_NOT_IMPLEMENTED,	/* 502 5.5.1 */
	R_EXPN,			/* 502 5.5.1 */
	R_NEED_HELO,		/* 503 5.5.1 send HELO/EHLO first */
	R_NEED_MAIL,		/* 503 5.5.1 need MAIL command */
	R_NESTED_MAIL,		/* 503 5.5.1 nested MAIL command */
	R_NEED_RCPT,		/* 503 5.5.1 need RCPT command */
	R_DATA_AFTER_BDAT,	/* 503 5.5.1 DATA after BDAT */
	R_AUTH_NOT_AVAILABLE,	/* 503 5.5.1 AUTH not available */
	R_TLS_ACTIVE,		/* 554 5.5.1 TLS already active */
	R_NEED_TLS,		/* 530 5.7.0 Must issue a STARTTLS command first */
	R_NEED_AUTH,		/* 530 5.7.0 Authentication required */
	R_BDAT_SYNTAX,		/* 521 5.5.4 Syntax: BDAT count [LAST] */
	R_BDAT_NULL,		/* 551 5.7.1 Null BDAT request */
	R_NO_MAILBOX,		/* 550 5.1.1 no such mailbox */
	R_BARE_LF_DATA,		/* 550 5.5.2 bare CR or LF in message */
	R_NUL_DATA,		/* 550 5.6.0 NUL in message */
	R_TOO_BIG,		/* 552 5.3.4 message too big */
	R_HEADER_TOO_BIG,	/* 552 5.3.4 header section too big */
	R_UTF8_UNDECLARED,	/* 553 5.6.7 */
	R_RELAY_DENIED,		/* 554 5.7.1 relay access denied */
	R_LOOP,			/* 554 5.4.6 too many hops */
	R_NO_VALID_RCPTS,	/* 554 5.5.1 no valid recipients */
	R_SYNC,			/* 554 5.5.0 protocol synchronization */
	R_PREGREET,		/* 554 5.5.0 talking before the greeting */
	R_PARAM_UNKNOWN,	/* 555 5.5.4 */
	R_NON_SMTP,		/* 221 2.7.0 not an SMTP client */
	R_AUTH_OK,		/* 235 2.7.0 */
	R_AUTH_FAILED,		/* 535 5.7.8 */
	R_AUTH_TEMP,		/* 454 4.7.0 */
	R_AUTH_CANCELLED,	/* 501 5.0.0 */
	R_AUTH_BAD_BASE64,	/* 501 5.5.2 */
	R_AUTH_MECH,		/* 504 5.5.4 */
	R_AUTH_TOO_LONG,	/* 500 5.5.6 */
	R_AUTH_SYNTAX,		/* 501 5.5.4 Syntax: AUTH mechanism */
	R_AUTH_ALREADY,		/* 503 5.5.1 already authenticated */
	R_AUTH_IN_TX,		/* 503 5.5.1 transaction in progress */
	R_AUTH_TOO_MANY,	/* 421 4.7.0 too many failures */
	R_SENDER_NOT_OWNED,	/* 553 5.7.1 */
	R_FROM_NOT_OWNED,	/* 550 5.7.1 */
	R_LOCAL_SENDER,		/* 550 5.7.1 our domain without AUTH on mx */
	R_CONN_LOCKED,		/* 421 4.7.0 access refused */
	R_CONN_TOO_FAST,	/* 421 4.7.0 too many connections a minute */
	R_CONN_TOO_MANY,	/* 421 4.7.0 too many connections from you */
	R_SEND_LIMIT_HOUR,	/* 451 4.7.1 send-limit-hour reached */
	R_SEND_LIMIT_DAY,	/* 451 4.7.1 send-limit-day reached */
	R_SEND_LIMIT_NEW,	/* 451 4.7.1 new-recipients-day reached */
	R_SEND_HELD,		/* 451 4.7.1 send-burst alarm, refuse */
	REPLY_COUNT
};

/* What a reply counts toward (the session's two limits). */
enum reply_counts {
	REPLY_COUNTS_NONE = 0,
	REPLY_COUNTS_ERROR,  /* a protocol error: error-limit */
	REPLY_COUNTS_REJECT, /* a policy refusal: reject-limit */
};

struct reply {
	unsigned short code;	/* 250 */
	const char *status;	/* "2.0.0" */
	const char *text;	/* "Ok" */
	unsigned char closes;	/* the session ends after this reply */
	unsigned char counts;	/* enum reply_counts */
};

const struct reply *reply_get(enum reply_id id);

/*
 * Write "code status text\r\n" for `id` into buf. Returns the length, or 0
 * when buf is too small (it never is for REPLY_LINE_MAX).
 */
#define REPLY_LINE_MAX 512
size_t reply_format(enum reply_id id, char *buf, size_t size);

#endif
