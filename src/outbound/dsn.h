/*
 * dsn.h - delivery status notifications (RFC 3464, RFC 6522), no I/O.
 *
 * A notice is a complete message (CRLF line ends) for the sender's
 * Maildir: multipart/report; report-type=delivery-status with a human
 * part, a message/delivery-status part (Reporting-MTA, Arrival-Date, then
 * per recipient Final-Recipient, Action, Status, Remote-MTA,
 * Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until) and the original
 * message's header section as text/rfc822-headers.
 *
 * Everything that came from outside (addresses, the remote server's
 * reply, the original headers) is hostile: addresses and replies are
 * written as printable ASCII only (RFC 6533 utf-8 address type for
 * non-ASCII addresses), and the original headers go into their own part,
 * whose boundary is checked not to occur in any of them.
 */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define DSN_HEADERS_MAX (256 * 1024) /* octets of original headers kept */
#define DSN_DIAG_MAX 900	     /* octets of a diagnostic kept */

enum dsn_action {
	DSN_FAILED = 0, /* RFC 3464 2.3.3 "failed": a bounce */
	DSN_DELAYED,	/* "delayed": still being retried */
};

struct dsn_rcpt {
	const char *address;	 /* the final recipient, canonical */
	enum dsn_action action;
	const char *status;	 /* RFC 3463 code, "5.1.1" */
	const char *remote_mta;	 /* host name that answered, or NULL */
	const char *diagnostic;	 /* the remote reply, or our reason; NULL:
				    none */
	bool is_remote;		 /* diagnostic is an SMTP reply */
	const char *in_reply_to; /* "RCPT TO" and the like, or NULL */
	time_t last_attempt;	 /* 0: never tried */
	time_t retry_until;	 /* delayed: when we give up */
};

struct dsn_report {
	const char *reporting_mta; /* our host name */
	const char *queue_id;
	const char *sender;	   /* the original sender; never empty */
	time_t arrival;		   /* when we accepted the message */
	time_t now;		   /* the notice's Date */
	const char *boundary;	   /* unique text, [0-9A-Za-z=_.]{1,60} */
	const struct dsn_rcpt *rcpts;
	size_t n_rcpts;		   /* >= 1, all of the same action */
	const char *headers;	   /* the original header section */
	size_t headers_len;
};

/*
 * Write the notice into a new buffer (*buf_r, to free). Returns 0, or -1
 * with *error_r: the null sender (RFC 3464 / RFC 5321 6.1: never a
 * notice about a notice), no recipient, a bad boundary, the boundary
 * found in the content (choose another and call again), no memory.
 */
int dsn_write(const struct dsn_report *r, char **buf_r, size_t *len_r,
	      const char **error_r);

/*
 * The length of a message's header section (RFC 5322 2.1), through the
 * empty line that ends it, or all of `len` when there is none; cut back
 * to the end of a line when longer than DSN_HEADERS_MAX.
 */
size_t dsn_header_len(const char *msg, size_t len);

/* RFC 5322 3.3 date-time in UTC: "Tue, 14 Nov 2023 22:13:20 +0000".
   buf has at least 32 octets. */
void dsn_date(time_t t, char *buf, size_t size);

#endif
