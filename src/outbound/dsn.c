/*
 * dsn.c - delivery status notifications (RFC 3464). See dsn.h.
 */
#include "outbound/dsn.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 5322 2.1.1: lines of text SHOULD stay within 78 octets and MUST
   within 998 (CRLF not counted). */
#define DSN_LINE_WANT 78
#define DSN_LINE_MAX 998

/* A growable buffer; a failed growth sticks (checked once at the end). */
struct dsn_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void
dsn_add(struct dsn_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap - b->len < n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
dsn_adds(struct dsn_buf *b, const char *s)
{
	dsn_add(b, s, strlen(s));
}

static void dsn_addf(struct dsn_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
dsn_addf(struct dsn_buf *b, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		b->failed = true; /* callers bound every field */
		return;
	}
	dsn_add(b, line, (size_t)n);
}

void
dsn_date(time_t t, char *buf, size_t size)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
					   "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, size, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Printable ASCII (space included) kept, anything else '?', at most max
   octets. */
static void
dsn_add_clean(struct dsn_buf *b, const char *s, size_t max)
{
	char out[DSN_DIAG_MAX + 4];
	size_t n = 0;

	if (max > DSN_DIAG_MAX)
		max = DSN_DIAG_MAX;
	for (; s[n] != '\0' && n < max; n++) {
		unsigned char c = (unsigned char)s[n];

		out[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dsn_add(b, out, n);
	if (s[n] != '\0')
		dsn_adds(b, "...");
}

static bool
dsn_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* One UTF-8 sequence at s (NUL-terminated): its code point and length;
   an octet that starts no valid sequence stands for itself. */
static uint32_t
dsn_utf8(const unsigned char *s, size_t *len_r)
{
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 1;
	uint32_t cp = n == 1 ? s[0] : s[0] & (0x3f >> (n - 1));

	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*len_r = 1;
			return s[0];
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	*len_r = n;
	return cp;
}

/*
 * An address field value: "rfc822; addr" for printable ASCII, else RFC
 * 6533 3 "utf-8; " utf-8-addr-xtext: every code point outside %x21-7e,
 * and "+", "\" and "=", written \x{HEX}.
 */
static void
dsn_add_address(struct dsn_buf *b, const char *addr)
{
	const unsigned char *s = (const unsigned char *)addr;

	if (dsn_is_ascii(addr)) {
		dsn_adds(b, "rfc822; ");
		dsn_add_clean(b, addr, 600);
		return;
	}
	dsn_adds(b, "utf-8; ");
	for (size_t i = 0; s[i] != '\0';) {
		size_t n;
		uint32_t cp = dsn_utf8(s + i, &n);

		if (cp > 0x20 && cp < 0x7f && cp != '+' && cp != '\\' &&
		    cp != '=')
			dsn_add(b, (const char *)s + i, 1);
		else
			dsn_addf(b, "\\x{%X}", (unsigned)cp);
		i += n;
	}
}

static void
dsn_headers(struct dsn_buf *b, const struct dsn_report *r, bool delayed)
{
	char date[64];

	dsn_date(r->now, date, sizeof(date));
	dsn_adds(b, "Return-Path: <>\r\n");
	dsn_addf(b, "Date: %s\r\n", date);
	dsn_addf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
		 r->reporting_mta);
	dsn_adds(b, "To: <");
	dsn_add_clean(b, r->sender, 600); /* our user's address: ASCII */
	dsn_adds(b, ">\r\n");
	dsn_addf(b, "Subject: %s\r\n",
		 delayed ? "Delayed Mail (still being retried)"
			 : "Undelivered Mail Returned to Sender");
	dsn_addf(b, "Message-ID: <%s.%lld.dsn@%s>\r\n", r->queue_id,
		 (long long)r->now, r->reporting_mta);
	dsn_adds(b, "Auto-Submitted: auto-replied\r\n"); /* RFC 3834 5 */
	dsn_adds(b, "MIME-Version: 1.0\r\n");
	dsn_addf(b, "Content-Type: multipart/report; "
		    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
		 r->boundary);
	dsn_adds(b, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");
}

/* RFC 5322 2.1.1: text folded at the last space within 78 octets, else
   at the first space within 998, else cut at 998 octets. */
static void
dsn_add_folded(struct dsn_buf *b, const char *s, size_t n)
{
	while (n > DSN_LINE_WANT) {
		size_t cut = 0, skip = 1;

		for (size_t i = DSN_LINE_WANT; cut == 0 && i > 0; i--)
			if (s[i] == ' ')
				cut = i;
		for (size_t i = DSN_LINE_WANT + 1;
		     cut == 0 && i < n && i <= DSN_LINE_MAX; i++)
			if (s[i] == ' ')
				cut = i;
		if (cut == 0 && n <= DSN_LINE_MAX)
			break;
		if (cut == 0) {
			cut = DSN_LINE_MAX;
			skip = 0;
		}
		dsn_add(b, s, cut);
		dsn_adds(b, "\r\n");
		s += cut + skip;
		n -= cut + skip;
	}
	dsn_add(b, s, n);
}

/* One recipient in the human part: one paragraph, folded. */
static void
dsn_human_rcpt(struct dsn_buf *out, const struct dsn_rcpt *rc)
{
	struct dsn_buf t = {NULL, 0, 0, false}, *b = &t;

	dsn_adds(b, "<");
	dsn_add_clean(b, rc->address, 600);
	dsn_adds(b, ">: ");
	if (rc->diagnostic == NULL) {
		dsn_addf(b, "status %s", rc->status);
	} else if (rc->is_remote && rc->remote_mta != NULL) {
		dsn_addf(b, "host %s said: ", rc->remote_mta);
		dsn_add_clean(b, rc->diagnostic, DSN_DIAG_MAX);
	} else {
		dsn_add_clean(b, rc->diagnostic, DSN_DIAG_MAX);
	}
	if (rc->in_reply_to != NULL && rc->is_remote)
		dsn_addf(b, " (in reply to %s command)", rc->in_reply_to);
	if (t.failed)
		out->failed = true;
	else
		dsn_add_folded(out, t.p, t.len);
	free(t.p);
	dsn_adds(out, "\r\n\r\n");
}

static void
dsn_human(struct dsn_buf *b, const struct dsn_report *r, bool delayed)
{
	dsn_addf(b, "--%s\r\nContent-Description: Notification\r\n"
		    "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		 r->boundary);
	dsn_addf(b, "This is the mail system at host %s.\r\n\r\n",
		 r->reporting_mta);
	if (delayed) {
		char until[64];

		dsn_date(r->rcpts[0].retry_until, until, sizeof(until));
		dsn_adds(b, "THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND "
			    "YOUR MESSAGE.\r\n\r\n"
			    "Your message could not be delivered yet to the "
			    "recipients below.\r\n");
		dsn_addf(b, "Delivery will be tried again until %s.\r\n\r\n",
			 until);
	} else {
		dsn_adds(b, "Your message could not be delivered to the "
			    "recipients below.\r\nThe reasons follow; the "
			    "headers of your message are attached.\r\n\r\n");
	}
	for (size_t i = 0; i < r->n_rcpts; i++)
		dsn_human_rcpt(b, &r->rcpts[i]);
}

/* RFC 3464 2.3: the per-recipient fields. */
static void
dsn_status_rcpt(struct dsn_buf *b, const struct dsn_rcpt *rc)
{
	char date[64];

	dsn_adds(b, "\r\nFinal-Recipient: ");
	dsn_add_address(b, rc->address);
	dsn_addf(b, "\r\nAction: %s\r\n",
		 rc->action == DSN_DELAYED ? "delayed" : "failed");
	dsn_addf(b, "Status: %s\r\n", rc->status);
	if (rc->remote_mta != NULL)
		dsn_addf(b, "Remote-MTA: dns; %s\r\n", rc->remote_mta);
	if (rc->diagnostic != NULL) {
		dsn_adds(b, rc->is_remote ? "Diagnostic-Code: smtp; "
					  : "Diagnostic-Code: X-Postern; ");
		dsn_add_clean(b, rc->diagnostic, DSN_DIAG_MAX);
		dsn_adds(b, "\r\n");
	}
	if (rc->last_attempt != 0) {
		dsn_date(rc->last_attempt, date, sizeof(date));
		dsn_addf(b, "Last-Attempt-Date: %s\r\n", date);
	}
	if (rc->action == DSN_DELAYED) {
		dsn_date(rc->retry_until, date, sizeof(date));
		dsn_addf(b, "Will-Retry-Until: %s\r\n", date);
	}
}

static void
dsn_status(struct dsn_buf *b, const struct dsn_report *r)
{
	char date[64];

	dsn_addf(b, "--%s\r\nContent-Description: Delivery report\r\n"
		    "Content-Type: message/delivery-status\r\n\r\n",
		 r->boundary);
	dsn_addf(b, "Reporting-MTA: dns; %s\r\n", r->reporting_mta);
	dsn_addf(b, "X-Postern-Queue-ID: %s\r\n", r->queue_id);
	dsn_date(r->arrival, date, sizeof(date));
	dsn_addf(b, "Arrival-Date: %s\r\n", date);
	for (size_t i = 0; i < r->n_rcpts; i++)
		dsn_status_rcpt(b, &r->rcpts[i]);
	dsn_adds(b, "\r\n");
}

/* The original header section (RFC 6522: text/rfc822-headers). */
static void
dsn_original(struct dsn_buf *b, const struct dsn_report *r)
{
	bool is_8bit = false;
	size_t n = dsn_header_len(r->headers, r->headers_len);

	for (size_t i = 0; i < n; i++)
		is_8bit |= (unsigned char)r->headers[i] > 0x7f;
	dsn_addf(b, "--%s\r\nContent-Description: Undelivered Message "
		    "Headers\r\nContent-Type: text/rfc822-headers\r\n%s\r\n",
		 r->boundary,
		 is_8bit ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	dsn_add(b, r->headers, n);
	if (n < 2 || r->headers[n - 2] != '\r' || r->headers[n - 1] != '\n')
		dsn_adds(b, "\r\n");
	dsn_addf(b, "\r\n--%s--\r\n", r->boundary);
}

/* RFC 2046 5.1.1: 1-70 characters; we allow a safe subset. */
static bool
dsn_boundary_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 60)
		return false;
	return strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ=_.") == n;
}

/* Lines that begin with "--" and the boundary: the parts' delimiters
   and the close, nothing else. */
static size_t
dsn_count_delimiters(const char *p, size_t len, const char *boundary)
{
	size_t blen = strlen(boundary), count = 0;

	for (size_t i = 0; i + 2 + blen <= len; i++) {
		if ((i == 0 || p[i - 1] == '\n') && p[i] == '-' &&
		    p[i + 1] == '-' && memcmp(p + i + 2, boundary, blen) == 0)
			count++;
	}
	return count;
}

int
dsn_write(const struct dsn_report *r, char **buf_r, size_t *len_r,
	  const char **error_r)
{
	struct dsn_buf b = {0};
	bool delayed;

	if (r->sender == NULL || r->sender[0] == '\0') {
		*error_r = "no notice for the null sender";
		return -1;
	}
	if (r->n_rcpts == 0 || !dsn_boundary_ok(r->boundary)) {
		*error_r = r->n_rcpts == 0 ? "no recipient" : "bad boundary";
		return -1;
	}
	delayed = r->rcpts[0].action == DSN_DELAYED;
	dsn_headers(&b, r, delayed);
	dsn_human(&b, r, delayed);
	dsn_status(&b, r);
	dsn_original(&b, r);
	if (b.failed) {
		free(b.p);
		*error_r = "out of memory";
		return -1;
	}
	if (dsn_count_delimiters(b.p, b.len, r->boundary) != 4) {
		free(b.p);
		*error_r = "boundary found in the content";
		return -1;
	}
	*buf_r = b.p;
	*len_r = b.len;
	return 0;
}

size_t
dsn_header_len(const char *msg, size_t len)
{
	size_t max = len < DSN_HEADERS_MAX ? len : DSN_HEADERS_MAX;
	const char *end;

	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 0; /* no header at all */
	for (size_t i = 0; i + 3 < max; i++)
		if (msg[i] == '\r' && memcmp(msg + i, "\r\n\r\n", 4) == 0)
			return i + 2; /* the last header line's CRLF */
	if (len <= DSN_HEADERS_MAX)
		return len;
	/* Too long: the complete lines that fit. */
	end = NULL;
	for (size_t i = max; i >= 2; i--) {
		if (msg[i - 2] == '\r' && msg[i - 1] == '\n') {
			end = msg + i;
			break;
		}
	}
	return end != NULL ? (size_t)(end - msg) : 0;
}
