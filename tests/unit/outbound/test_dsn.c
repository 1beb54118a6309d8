/*
 * test_dsn.c - delivery status notifications (src/outbound/dsn.c):
 * the whole text of a bounce compared with a golden copy, the delayed
 * notice, hostile addresses, replies and headers, the null sender.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outbound/dsn.h"

#define T0 1700000000 /* Tue, 14 Nov 2023 22:13:20 +0000 */

static const char orig[] = "From: alice@example.org\r\n"
			   "To: bob@example.net\r\n"
			   "Subject: hello\r\n"
			   "\r\n"
			   "body text that is not in the notice\r\n";

static const struct dsn_rcpt two[] = {
    {"bob@example.net", DSN_FAILED, "5.1.1", "mx.example.net",
     "550 5.1.1 <bob@example.net>: no such user", true, "RCPT TO", T0 + 60,
     0},
    {"carol@example.net", DSN_FAILED, "5.4.4", NULL,
     "domain example.net has a null MX", false, NULL, 0, 0},
};

static struct dsn_report
report(const struct dsn_rcpt *rcpts, size_t n)
{
	struct dsn_report r = {"out.example.org", "06553f1c02a3b70012ab004",
			       "alice@example.org", T0, T0 + 120, "=_b1",
			       rcpts, n, orig, sizeof(orig) - 1};

	return r;
}

static const char golden[] =
    "Return-Path: <>\r\n"
    "Date: Tue, 14 Nov 2023 22:15:20 +0000\r\n"
    "From: Mail Delivery System <MAILER-DAEMON@out.example.org>\r\n"
    "To: <alice@example.org>\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Message-ID: <06553f1c02a3b70012ab004.1700000120.dsn@out.example.org>\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"=_b1\"\r\n"
    "\r\n"
    "This is a MIME-encapsulated message.\r\n"
    "\r\n"
    "--=_b1\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "This is the mail system at host out.example.org.\r\n"
    "\r\n"
    "Your message could not be delivered to the recipients below.\r\n"
    "The reasons follow; the headers of your message are attached.\r\n"
    "\r\n"
    "<bob@example.net>: host mx.example.net said: 550 5.1.1 "
    "<bob@example.net>: no\r\n"
    "such user (in reply to RCPT TO command)\r\n"
    "\r\n"
    "<carol@example.net>: domain example.net has a null MX\r\n"
    "\r\n"
    "--=_b1\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; out.example.org\r\n"
    "X-Postern-Queue-ID: 06553f1c02a3b70012ab004\r\n"
    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@example.net\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.example.net\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: no such user\r\n"
    "Last-Attempt-Date: Tue, 14 Nov 2023 22:14:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; carol@example.net\r\n"
    "Action: failed\r\n"
    "Status: 5.4.4\r\n"
    "Diagnostic-Code: X-Postern; domain example.net has a null MX\r\n"
    "\r\n"
    "--=_b1\r\n"
    "Content-Description: Undelivered Message Headers\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "From: alice@example.org\r\n"
    "To: bob@example.net\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "--=_b1--\r\n";

static void
test_bounce_golden(void **state)
{
	struct dsn_report r = report(two, 2);
	const char *err = NULL;
	char *buf;
	size_t len;

	assert_int_equal(dsn_write(&r, &buf, &len, &err), 0);
	if (len != sizeof(golden) - 1 || memcmp(buf, golden, len) != 0)
		fail_msg("got:\n%s", buf);
	assert_int_equal(strlen(buf), len);
	free(buf);
}

static void
test_delayed(void **state)
{
	struct dsn_rcpt d = {"bob@example.net", DSN_DELAYED, "4.4.1",
			     "mx.example.net",
			     "connect to mx.example.net[192.0.2.1]:25: "
			     "Connection refused",
			     false, NULL, T0 + 3600, T0 + 5 * 86400};
	struct dsn_report r = report(&d, 1);
	const char *err = NULL;
	char *buf;
	size_t len;

	assert_int_equal(dsn_write(&r, &buf, &len, &err), 0);
	assert_non_null(strstr(buf, "Subject: Delayed Mail (still being "
				    "retried)\r\n"));
	assert_non_null(strstr(buf, "THIS IS A WARNING ONLY."));
	assert_non_null(strstr(buf, "\r\nDelivery will be tried again until "
				    "Sun, 19 Nov 2023 22:13:20 +0000.\r\n"));
	assert_non_null(strstr(buf, "\r\nAction: delayed\r\nStatus: "
				    "4.4.1\r\nRemote-MTA: dns; "
				    "mx.example.net\r\nDiagnostic-Code: "
				    "X-Postern; connect to"));
	assert_non_null(strstr(buf, "\r\nLast-Attempt-Date: Tue, 14 Nov 2023 "
				    "23:13:20 +0000\r\nWill-Retry-Until: Sun, "
				    "19 Nov 2023 22:13:20 +0000\r\n"));
	free(buf);
}

/* RFC 3464 / RFC 5321 6.1: never a notice to the null sender. */
static void
test_null_sender(void **state)
{
	struct dsn_report r = report(two, 2);
	const char *err = NULL;
	char *buf = NULL;
	size_t len;

	r.sender = "";
	assert_int_equal(dsn_write(&r, &buf, &len, &err), -1);
	assert_string_equal(err, "no notice for the null sender");
	assert_null(buf);
	r = report(two, 0);
	assert_int_equal(dsn_write(&r, &buf, &len, &err), -1);
	r = report(two, 1);
	r.boundary = "bad boundary";
	assert_int_equal(dsn_write(&r, &buf, &len, &err), -1);
	assert_string_equal(err, "bad boundary");
	r.boundary = "";
	assert_int_equal(dsn_write(&r, &buf, &len, &err), -1);
}

/* A remote reply and an address with controls, 8-bit octets or a CR LF
   never get through raw; a non-ASCII address uses RFC 6533 "utf-8". */
static void
test_hostile_fields(void **state)
{
	static char diag[2000];
	struct dsn_rcpt d = {"b\xc3\xb8+x=y\\@ex\xe2\x82\xac.net", DSN_FAILED,
			     "5.0.0", "mx.example.net", diag, true, "DATA",
			     T0, 0};
	struct dsn_report r = report(&d, 1);
	const char *err = NULL;
	char *buf;
	size_t len;

	memset(diag, 'x', sizeof(diag) - 1);
	memcpy(diag, "550 a\r\nInjected: yes\x01\xff", 22);
	assert_int_equal(dsn_write(&r, &buf, &len, &err), 0);
	assert_non_null(strstr(buf, "Final-Recipient: utf-8; "
				    "b\\x{F8}\\x{2B}x\\x{3D}y\\x{5C}@ex\\x{20AC}"
				    ".net\r\n"));
	assert_null(strstr(buf, "\r\nInjected"));
	assert_non_null(strstr(buf, "Diagnostic-Code: smtp; 550 a??Injected: "
				    "yes??xxx"));
	/* Cut at DSN_DIAG_MAX octets, marked. */
	assert_non_null(strstr(buf, "xxx...\r\n"));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		assert_true((c >= 0x20 && c < 0x7f) || c == '\r' ||
			    c == '\n' || c == '\t');
		if (c == '\n')
			assert_int_equal(buf[i - 1], '\r');
		if (c == '\r')
			assert_int_equal(buf[i + 1], '\n');
	}
	free(buf);
}

/* The longest line of buf (CRLF not counted); *human_r: the longest
   line with a space in it of the human-readable part. */
static size_t
longest_line(const char *buf, size_t *human_r)
{
	const char *part = strstr(buf, "Content-Description: Notification");
	const char *end = strstr(buf, "Content-Description: Delivery report");
	size_t max = 0;

	*human_r = 0;
	for (const char *p = buf; *p != '\0';) {
		const char *eol = strstr(p, "\r\n");
		size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);

		if (n > max)
			max = n;
		if (p > part && p < end && memchr(p, ' ', n) != NULL &&
		    n > *human_r)
			*human_r = n;
		p += n + (eol != NULL ? 2 : 0);
	}
	return max;
}

/* RFC 5322 2.1.1: a 600-octet address and a 900-octet diagnostic; no
   line over 998 octets; the human part folded at spaces within 78. */
static void
test_long_lines(void **state)
{
	static char addr[601], words[901], solid[901];
	struct dsn_rcpt d[2] = {
	    {addr, DSN_FAILED, "5.0.0", "mx.example.net", words, true,
	     "DATA", T0, 0},
	    {addr, DSN_FAILED, "5.0.0", "mx.example.net", solid, true,
	     "DATA", T0, 0}};
	struct dsn_report r = report(d, 2);
	const char *err = NULL;
	char *buf;
	size_t len, human;

	memset(addr, 'a', 600);
	memcpy(addr + 588, "@example.net", 12);
	for (size_t i = 0; i < 900; i++)
		words[i] = i % 7 == 6 ? ' ' : 'w';
	memcpy(words, "550 ", 4);
	memset(solid, 's', 900);
	memcpy(solid, "550 ", 4);
	assert_int_equal(dsn_write(&r, &buf, &len, &err), 0);
	assert_true(longest_line(buf, &human) <= 998);
	assert_true(human <= 78);
	/* The address stays whole, on a line of its own. */
	assert_non_null(strstr(buf, "\r\n<aaaa"));
	assert_non_null(strstr(buf, "@example.net>:\r\nhost mx.example.net"));
	/* Nothing lost in the folding: the words, then the cut mark. */
	assert_non_null(strstr(buf, "sss\r\n(in reply to DATA command)\r\n"));
	free(buf);
}

/* Original headers holding our boundary: refused, another is chosen. */
static void
test_boundary_in_content(void **state)
{
	static const char evil[] = "Subject: x\r\n--=_b1\r\nX: y\r\n\r\nbody";
	struct dsn_report r = report(two, 1);
	const char *err = NULL;
	char *buf = NULL;
	size_t len;

	r.headers = evil;
	r.headers_len = sizeof(evil) - 1;
	assert_int_equal(dsn_write(&r, &buf, &len, &err), -1);
	assert_string_equal(err, "boundary found in the content");
	r.boundary = "=_b2";
	assert_int_equal(dsn_write(&r, &buf, &len, &err), 0);
	free(buf);
}

static void
test_8bit_headers(void **state)
{
	static const char h[] = "Subject: caf\xc3\xa9\r\n\r\nx";
	struct dsn_report r = report(two, 1);
	const char *err = NULL;
	char *buf;
	size_t len;

	r.headers = h;
	r.headers_len = sizeof(h) - 1;
	assert_int_equal(dsn_write(&r, &buf, &len, &err), 0);
	assert_non_null(strstr(buf, "Content-Type: text/rfc822-headers\r\n"
				    "Content-Transfer-Encoding: 8bit\r\n\r\n"
				    "Subject: caf\xc3\xa9\r\n\r\n--=_b1--\r\n"));
	free(buf);
}

static void
test_header_len(void **state)
{
	char *big;

	assert_int_equal(dsn_header_len(orig, sizeof(orig) - 1), 62);
	assert_int_equal(dsn_header_len("\r\nbody", 6), 0);
	assert_int_equal(dsn_header_len("A: b\r\n", 6), 6);
	assert_int_equal(dsn_header_len("A: b", 4), 4);
	assert_int_equal(dsn_header_len("", 0), 0);
	/* Longer than the cap: the complete lines that fit. */
	big = malloc(DSN_HEADERS_MAX + 100);
	assert_non_null(big);
	memset(big, 'a', DSN_HEADERS_MAX + 100);
	memcpy(big + 1000, "\r\n", 2);
	memcpy(big + DSN_HEADERS_MAX - 10, "\r\n", 2);
	assert_int_equal(dsn_header_len(big, DSN_HEADERS_MAX + 100),
			 DSN_HEADERS_MAX - 8);
	free(big);
}

static void
test_date(void **state)
{
	char buf[64];

	dsn_date(T0, buf, sizeof(buf));
	assert_string_equal(buf, "Tue, 14 Nov 2023 22:13:20 +0000");
	dsn_date(0, buf, sizeof(buf));
	assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounce_golden),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_null_sender),
		cmocka_unit_test(test_hostile_fields),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_boundary_in_content),
		cmocka_unit_test(test_8bit_headers),
		cmocka_unit_test(test_header_len),
		cmocka_unit_test(test_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
