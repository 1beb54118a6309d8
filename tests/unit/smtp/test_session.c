/*
 * test_session.c - the session engine as dialogues. Each dialogue is a list
 * of client turns (the bytes a client sends before it waits for replies);
 * the expected replies are checked by their codes, and every dialogue is
 * run twice: each turn whole, and each turn byte by byte. Both must give
 * the same replies (RFC 2920: any split of the bytes, the same answers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/config.h"
#include "lib/log.h"
#include "smtp/session.h"

#include "session_harness.h"

struct dialogue {
	const char *name;
	enum listen_role role;
	const char *turns[12]; /* client turns, NULL-terminated */
	const char *codes;     /* expected reply codes */
	int commits;	       /* messages committed */
	bool closed;	       /* session closing at the end */
};

#define EHLO "EHLO client.example\r\n"
#define TX "MAIL FROM:<s@example.org>\r\nRCPT TO:<alice@local.test>\r\n"

static const struct dialogue dialogues[] = {
	{"plain delivery",
	 ROLE_MX,
	 {EHLO, TX "DATA\r\n", "Subject: t\r\n\r\nbody\r\n.\r\n", "QUIT\r\n"},
	 "220 250 250 250 354 250 221",
	 1,
	 true},
	{"helo, two recipients, dot unstuffing",
	 ROLE_MX,
	 {"HELO c.example\r\n",
	  "MAIL FROM:<>\r\nRCPT TO:<alice@local.test>\r\n"
	  "RCPT TO:<bob@local.test>\r\nDATA\r\n",
	  "..leading\r\n. \r\n.x\r\n.\r\n"},
	 "220 250 250 250 250 354 250",
	 1,
	 false},
	{"bare LF in a command is one reply",
	 ROLE_MX,
	 {"HELO a\nMAIL FROM:<x@example.net>\r\n"},
	 "220 500",
	 0,
	 false},
	{"bare CR in a command is one reply",
	 ROLE_MX,
	 {"EHLO a\rRCPT TO:<x@example.net>\r\n"},
	 "220 500",
	 0,
	 false},
	{"NUL in a command",
	 ROLE_MX,
	 {"HELO a\0b\r\n"},
	 "220 500",
	 0,
	 false},
	{"out of order",
	 ROLE_MX,
	 {"MAIL FROM:<a@example.org>\r\n", EHLO, "RCPT TO:<alice@local.test>\r\n",
	  "DATA\r\n", "MAIL FROM:<a@example.org>\r\n",
	  "MAIL FROM:<a@example.org>\r\n", "DATA\r\n"},
	 "220 503 250 503 503 250 503 554",
	 0,
	 false},
	{"relay denied, unknown mailbox, no domain",
	 ROLE_MX,
	 {EHLO, "MAIL FROM:<a@example.org>\r\n",
	  "RCPT TO:<victim@example.net>\r\n", "RCPT TO:<nobody@local.test>\r\n",
	  "RCPT TO:<alice>\r\n", "RCPT TO:<\"alice@local.test\">\r\n",
	  "RCPT TO:<alice@local.test@example.net>\r\n",
	  "RCPT TO:<x@[IPv6:::1]>\r\n", "RCPT TO:<\"alice\"@LOCAL.test>\r\n"},
	 "220 250 250 554 550 501 501 501 554 250",
	 0,
	 false},
	{"size declared too big",
	 ROLE_MX,
	 {EHLO, "MAIL FROM:<a@example.org> SIZE=999999999999\r\n",
	  "MAIL FROM:<a@example.org> SIZE=184467440737095516160\r\n",
	  "MAIL FROM:<a@example.org> SIZE=-1\r\n",
	  "MAIL FROM:<s@example.org> BODY=8BITMIME BODY=7BIT FOO=bar\r\n"},
	 "220 250 552 552 501 555",
	 0,
	 false},
	{"message too big, still in sync",
	 ROLE_MX,
	 {EHLO, TX "DATA\r\n",
	  "Subject: big\r\n\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
	  "QUIT\r\nRSET\r\n.\r\n",
	  "NOOP\r\n"},
	 "220 250 250 250 354 552 250",
	 0,
	 false},
	{"mail loop",
	 ROLE_MX,
	 {EHLO, TX "DATA\r\n",
	  "Received: a\r\nReceived: b\r\nreceived: c\r\nRECEIVED: d\r\n\r\n"
	  "x\r\n.\r\n"},
	 "220 250 250 250 354 554",
	 0,
	 false},
	{"Received in the body is not a hop",
	 ROLE_MX,
	 {EHLO, TX "DATA\r\n",
	  "Subject: x\r\n\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n"
	  "Received: d\r\n.\r\n"},
	 "220 250 250 250 354 250",
	 1,
	 false},
	{"too many recipients",
	 ROLE_MX,
	 {EHLO, "MAIL FROM:<>\r\n", "RCPT TO:<alice@local.test>\r\n",
	  "RCPT TO:<bob@local.test>\r\n", "RCPT TO:<alice@local.test>\r\n",
	  "RCPT TO:<bob@local.test>\r\n", "RCPT TO:<alice@local.test>\r\n",
	  "RCPT TO:<bob@local.test>\r\n", "RCPT TO:<bob@local.test>\r\n"},
	 "220 250 250 250 250 250 250 250 452 452",
	 0,
	 false},
	{"error limit",
	 ROLE_MX,
	 {"XYZZY\r\n", "XYZZY\r\n", "XYZZY\r\n", "XYZZY\r\n", "XYZZY\r\n",
	  "XYZZY\r\n", "XYZZY\r\n", "XYZZY\r\n", "XYZZY\r\n", "XYZZY\r\n",
	  "XYZZY\r\n"},
	 "220 500 500 500 500 500 500 500 500 500 500 421",
	 0,
	 true},
	{"vrfy expn help noop rset",
	 ROLE_MX,
	 {"VRFY root\r\n", "VRFY nosuchuser\r\n", "EXPN staff\r\n", "HELP\r\n",
	  "NOOP\r\n", "RSET\r\n", "DEBUG\r\n", "ETRN local.test\r\n",
	  "XCLIENT ADDR=1.2.3.4\r\n", "AUTH LOGIN\r\n"},
	 "220 252 252 502 214 250 250 502 502 502 503",
	 0,
	 false},
	{"http is not smtp",
	 ROLE_MX,
	 {"GET / HTTP/1.1\r\nHost: mx\r\n\r\n"},
	 "220 221",
	 0,
	 true},
	{"bdat in chunks",
	 ROLE_MX,
	 {EHLO, TX, "BDAT 6\r\nSubjec", "BDAT 8\r\nt: b\r\n\r\n",
	  "BDAT 3 LAST\r\n.\r\n", "NOOP\r\n"},
	 "220 250 250 250 250 250 250 250",
	 1,
	 false},
	{"bdat 0 last ends a message; null chunk refused",
	 ROLE_MX,
	 {EHLO, TX, "BDAT 0\r\n", "BDAT 3\r\nx\r\n", "BDAT 0 LAST\r\n"},
	 "220 250 250 250 551 250 250",
	 1,
	 false},
	{"data after bdat",
	 ROLE_MX,
	 {EHLO, TX, "BDAT 3\r\nx\r\n", "DATA\r\n", "RSET\r\n"},
	 "220 250 250 250 250 503 250",
	 0,
	 false},
	{"bdat without a transaction skips its payload",
	 ROLE_MX,
	 {EHLO, "BDAT 12\r\nQUIT\r\nNOOP\r\n", "NOOP\r\n"},
	 "220 250 503 250",
	 0,
	 false},
	{"bdat bad syntax hangs up",
	 ROLE_MX,
	 {EHLO, TX, "BDAT 18446744073709551617\r\n"},
	 "220 250 250 250 521",
	 0,
	 true},
};

static void
run_dialogue(const struct dialogue *d, bool split)
{
	struct harness h;
	char codes[512];

	h_start(&h, d->role);
	for (size_t i = 0; d->turns[i] != NULL; i++) {
		const char *t = d->turns[i];
		size_t len = strlen(t);

		/* The NUL test needs its embedded NUL. */
		if (strncmp(t, "HELO a", 6) == 0 && len == 6)
			len = 10;
		h_send(&h, t, len, split);
	}
	h_codes(&h, codes, sizeof(codes));
	if (strcmp(codes, d->codes) != 0)
		fail_msg("%s (%s): codes \"%s\", expected \"%s\"\n%s", d->name,
			 split ? "split" : "whole", codes, d->codes, h.out);
	assert_int_equal(h.commits, d->commits);
	assert_int_equal(session_is_closing(h.s), d->closed);
	h_stop(&h);
}

static void
test_dialogues(void **state)
{
	for (size_t i = 0; i < sizeof(dialogues) / sizeof(dialogues[0]); i++) {
		run_dialogue(&dialogues[i], false);
		run_dialogue(&dialogues[i], true);
	}
}

/* What is stored: the Received header, then the content unstuffed. */
static void
test_stored_content(void **state)
{
	struct harness h;
	const char *body;

	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	h_sends(&h, "Subject: d\r\n\r\n..leading\r\n. \r\n.x\r\n.\r\n", false);
	assert_int_equal(h.commits, 1);
	h.msg[h.msg_len] = '\0';
	assert_memory_equal(h.msg, "Received: from client.example ([192.0.2.1])"
				   "\r\n\tby mx.local.test with ESMTP id TESTID0"
				   "\r\n\tfor <alice@local.test>; ",
			    100);
	body = strstr(h.msg, "+0000\r\n");
	assert_non_null(body);
	assert_string_equal(body + 7,
			    "Subject: d\r\n\r\n.leading\r\n \r\nx\r\n");
	assert_string_equal(h.sender, "s@example.org");
	assert_string_equal(h.rcpts, "alice@local.test;");
	assert_non_null(strstr(h.out, "250 2.0.0 Ok: queued as TESTID0\r\n"));
	h_stop(&h);
}

/* THREATS D-01: none of these ends DATA; the message is refused whole at
   the real CRLF.CRLF and nothing after the fake end runs as a command. */
static void
test_smuggling(void **state)
{
	static const char *const eods[] = {
		"\n.\n",  "\n.\r\n", "\r\n.\n", "\r.\r\n",	   "\r\n.\r",
		"\n.\r",  "\r.\n",   "\r.\r",	"\r\n\0.\r\n", "\r\n.\r\r\n",
	};
	static const size_t eod_lens[] = {3, 4, 4, 4, 4, 3, 3, 3, 6, 6};
	static const char smuggled[] =
		"MAIL FROM:<admin@local.test>\r\nRCPT TO:<alice@local.test>\r\n"
		"DATA\r\nFrom: admin@local.test\r\nSubject: smuggled\r\n\r\n"
		"x\r\n.\r\n";

	for (size_t i = 0; i < sizeof(eods) / sizeof(eods[0]); i++) {
		for (int split = 0; split < 2; split++) {
			struct harness h;
			char buf[512], codes[128];
			size_t n = 0;
			const char *head =
				"From: a@example.org\r\nSubject: one\r\n\r\nbody";

			memcpy(buf, head, strlen(head));
			n = strlen(head);
			memcpy(buf + n, eods[i], eod_lens[i]);
			n += eod_lens[i];
			memcpy(buf + n, smuggled, sizeof(smuggled) - 1);
			n += sizeof(smuggled) - 1;
			h_start(&h, ROLE_MX);
			h_sends(&h, EHLO, split);
			h_sends(&h, TX "DATA\r\n", split);
			h_send(&h, buf, n, split);
			h_codes(&h, codes, sizeof(codes));
			if (strcmp(codes, "220 250 250 250 354 550") != 0)
				fail_msg("eod %zu split %d: %s", i, split,
					 h.out);
			assert_int_equal(h.commits, 0);
			assert_non_null(strstr(h.out, "550 5."));
			h_stop(&h);
		}
	}
}

/* A long line gets one 500 and the session stays in sync; the reply
   never echoes the client. */
static void
test_long_line_and_echo(void **state)
{
	struct harness h;
	char *line = malloc(100010);
	char codes[128];

	memcpy(line, "EHLO ", 5);
	memset(line + 5, 'a', 100000);
	memcpy(line + 100005, "\r\n", 3);
	h_start(&h, ROLE_MX);
	h_sends(&h, line, false);
	h_sends(&h, "NOOP\r\n", false);
	h_sends(&h, "HELO ", false);
	h_sends(&h, "x\r\n", false);
	h_sends(&h, "<script>alert(1)</script>\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 500 250 250 500");
	assert_null(strstr(h.out, "script"));
	assert_null(strstr(h.out, "aaaa"));
	/* 513 octets with CRLF: over RFC 5321's 512. */
	memset(line, 'n', 600);
	memcpy(line, "NOOP ", 5);
	memcpy(line + 511, "\r\n", 3);
	h.out_len = 0;
	h_sends(&h, line, false);
	assert_memory_equal(h.out, "500 5.5.2", 9);
	free(line);
	h_stop(&h);
}

static void
test_temp_failures(void **state)
{
	struct harness h;
	char codes[128];

	h_start(&h, ROLE_MX);
	h.begin_fail = 1;
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 451");
	h_stop(&h);

	h_start(&h, ROLE_MX);
	h.commit_fail = 1;
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	h_sends(&h, "x\r\n.\r\n", false);
	h_sends(&h, "NOOP\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 354 451 250");
	h_stop(&h);
}

static void
test_timeout_and_shutdown(void **state)
{
	struct harness h;
	char codes[128];

	h_start(&h, ROLE_MX);
	session_timeout(h.s);
	h_drain(&h);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 421");
	assert_non_null(strstr(h.out, "421 4.4.2"));
	assert_true(session_is_closing(h.s));
	h_stop(&h);

	/* Shutdown in a transaction: it finishes, then 421. */
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	session_shutdown(h.s);
	h_sends(&h, "x\r\n.\r\n", false);
	h_sends(&h, "MAIL FROM:<>\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 354 250 421");
	assert_int_equal(h.commits, 1);
	h_stop(&h);
}

/* The header section limit, then the session is still in sync. */
static void
test_header_limit(void **state)
{
	struct harness h;
	char buf[2048], codes[128];
	size_t n = 0;

	n += (size_t)snprintf(buf, sizeof(buf), "X: a\r\n");
	while (n < 1500)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " b\r\n");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\nbody\r\n.\r\n");
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	h_send(&h, buf, n, false);
	h_sends(&h, "NOOP\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 354 552 250");
	h_stop(&h);
}

/* THREATS D-07 #3 scaled down: a chunk over the limit is skipped, then a
   normal transaction works. */
static void
test_bdat_too_big(void **state)
{
	struct harness h;
	char *chunk = malloc(5000);
	char codes[128];

	memset(chunk, 'A', 5000);
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX, false);
	h_sends(&h, "BDAT 5000\r\n", false);
	h_send(&h, chunk, 5000, false);
	h_sends(&h, "BDAT 10 LAST\r\n", false);
	h_send(&h, chunk, 10, false);
	h_sends(&h, TX, false);
	h_sends(&h, "BDAT 5 LAST\r\n", false);
	h_send(&h, chunk, 5, false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 552 552 250 250 250");
	assert_int_equal(h.commits, 1);
	free(chunk);
	h_stop(&h);
}

/* Submission before TLS: only the way to TLS works (RFC 8314, T-04). */
static void
test_submission_before_tls(void **state)
{
	struct harness h;
	char codes[256];

	h_start(&h, ROLE_SUBMISSION);
	h_sends(&h, EHLO, false);
	assert_non_null(strstr(h.out, "250-STARTTLS\r\n"));
	assert_null(strstr(h.out, "AUTH"));
	assert_null(strstr(h.out, "CHUNKING"));
	assert_null(strstr(h.out, "8BITMIME"));
	h_sends(&h, "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n", false);
	assert_false(h.auth_pending); /* never asked the guard */
	h_sends(&h, "MAIL FROM:<alice@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<bob@example.net>\r\n", false);
	h_sends(&h, "DATA\r\n", false);
	h_sends(&h, "VRFY alice\r\n", false);
	h_sends(&h, "NOOP\r\n", false);
	h_sends(&h, "STARTTLS now\r\n", false);
	h_sends(&h, "BDAT 1 LAST\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 530 530 530 530 530 250 501 530");
	assert_true(session_is_closing(h.s));
	h_stop(&h);

	/* STARTTLS with plain text behind it (CVE-2011-0411). */
	h_start(&h, ROLE_SUBMISSION);
	h_sends(&h, EHLO, false);
	h_sends(&h, "STARTTLS\r\nEHLO injected\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 220"); /* then closed */
	assert_false(session_wants_tls(h.s));
	assert_true(session_is_closing(h.s));
	h_stop(&h);
}

/* STARTTLS, AUTH, then what an authenticated user may send. */
static void
test_submission_auth(void **state)
{
	struct harness h;
	char codes[256];

	h_start(&h, ROLE_SUBMISSION);
	h_sends(&h, EHLO, false);
	h_sends(&h, "MAIL FROM:<s@example.org>\r\n", false);
	h_sends(&h, "STARTTLS\r\n", false);
	assert_true(session_wants_tls(h.s));
	assert_true(session_is_parked(h.s));
	session_tls_started(h.s, "TLSv1.3", "TLS_AES_256_GCM_SHA384");
	h_drain(&h);
	/* RFC 3207 4.2: EHLO again; nothing from before survives. */
	h_sends(&h, "RCPT TO:<alice@local.test>\r\n", false);
	h_sends(&h, "AUTH LOGIN\r\n", false);
	h_sends(&h, EHLO, false);
	assert_non_null(strstr(h.out, "250-AUTH PLAIN LOGIN\r\n"));
	assert_null(strstr(h.out, "STARTTLS\r\n250-AUTH"));
	h_sends(&h, "STARTTLS\r\n", false);
	h_sends(&h, "MAIL FROM:<alice@local.test>\r\n", false);
	h_sends(&h, "AUTH CRAM-MD5\r\n", false);
	h_sends(&h, "AUTH PLAIN QUFBQUF\r\n", false);
	h_sends(&h, "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n", false);
	assert_true(h.auth_pending);
	assert_string_equal(h.auth_user, "alice@local.test");
	assert_string_equal(h.auth_pass, "pass");
	h_auth_done(&h, SESSION_AUTH_OK);
	h_sends(&h, "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n", false);
	h_sends(&h, "MAIL FROM:<ceo@local.test>\r\n", false);
	h_sends(&h, "MAIL FROM:<SALES@local.test> AUTH=<>\r\n", false);
	h_sends(&h, "RCPT TO:<bob@example.net>\r\n", false);
	h_sends(&h, "RCPT TO:<carol@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<nobody@local.test>\r\n", false);
	h_sends(&h, "DATA\r\n", false);
	h_sends(&h, "From: Alice <alice@local.test>\r\nSubject: x\r\n\r\nhi\r\n"
		    ".\r\n",
		false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 530 220 503 503 250 554 530 504 "
				   "501 235 503 553 250 250 250 550 354 250");
	assert_int_equal(h.commits, 1);
	assert_string_equal(h.rcpts,
			    "bob@example.net(remote);carol@local.test;");
	assert_string_equal(h.env_auth, "alice@local.test");
	assert_non_null(strstr(h.msg, "with ESMTPSA id"));
	assert_non_null(strstr(h.msg, "(using TLSv1.3 with cipher "
				      "TLS_AES_256_GCM_SHA384)"));
	h_stop(&h);
}

/* The From: header must be the user's too (from-header-check). */
static void
test_submission_from_header(void **state)
{
	static const struct {
		const char *header;
		bool ok;
	} cases[] = {
		{"From: alice@local.test\r\n", true},
		{"From: \"Alice A.\" <Alice@Local.Test>\r\n", true},
		{"From: alice@local.test (Alice)\r\n", true},
		{"from:\r\n <alice@local.test>,\r\n sales@local.test\r\n", true},
		{"From: ceo@local.test\r\n", false},
		{"From: \"alice@local.test\" <ceo@local.test>\r\n", false},
		{"From: Alice <alice@local.test>, ceo@local.test\r\n", false},
		{"From: alice@local.test\r\nFrom: alice@local.test\r\n", false},
		{"Subject: no from\r\n", false},
		{"From: undisclosed:;\r\n", false},
		{"From: (<alice@local.test>) ceo@local.test\r\n", false},
		{"From: <alice@local.test> <ceo@local.test>\r\n", false},
		{"From: <alice@local.test>ceo@local.test\r\n", false},
		{"From: alice@local.test\r\nFrom  : ceo@local.test\r\n", false},
		{"From : alice@local.test\r\n", true},
		{"Fromage: x\r\nFrom: alice@local.test\r\n", true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct harness h;
		char codes[128], body[512];

		h_start(&h, ROLE_SUBMISSIONS);
		h_sends(&h, EHLO, false);
		h_sends(&h, "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n",
			false);
		h_auth_done(&h, SESSION_AUTH_OK);
		h_sends(&h, "MAIL FROM:<alice@local.test>\r\n", false);
		h_sends(&h, "RCPT TO:<bob@local.test>\r\n", false);
		h_sends(&h, "DATA\r\n", false);
		snprintf(body, sizeof(body), "%s\r\nbody\r\n.\r\n",
			 cases[i].header);
		h_sends(&h, body, false);
		h_codes(&h, codes, sizeof(codes));
		if (strcmp(codes, cases[i].ok ? "220 250 235 250 250 354 250"
					      : "220 250 235 250 250 354 550") !=
		    0)
			fail_msg("case %zu: %s", i, h.out);
		h_stop(&h);
	}
}

/* Failed logins: 535, three per session then 421; locked gives 454. */
static void
test_submission_auth_failures(void **state)
{
	struct harness h;
	char codes[256];

	h_start(&h, ROLE_SUBMISSIONS);
	h_sends(&h, EHLO, false);
	h_sends(&h, "AUTH LOGIN\r\n", false);
	h_sends(&h, "*\r\n", false);
	h_sends(&h, "AUTH LOGIN YWxpY2VAbG9jYWwudGVzdA==\r\n", false);
	h_sends(&h, "d3Jvbmc=\r\n", false);
	assert_string_equal(h.auth_pass, "wrong");
	h_auth_done(&h, SESSION_AUTH_FAIL);
	h_sends(&h, "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n", false);
	h_auth_done(&h, SESSION_AUTH_LOCKED);
	h_sends(&h, "AUTH PLAIN Ym9iQGxvY2FsLnRlc3QAYWxpY2VAbG9jYWwudGVzdABwYXNz"
		    "\r\n",
		false);
	h_sends(&h, "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAd3Jvbmc=\r\n", false);
	h_auth_done(&h, SESSION_AUTH_FAIL);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 334 501 334 535 454 535 535 421");
	assert_true(session_is_closing(h.s));
	h_stop(&h);

	/* mx never offers or accepts AUTH. */
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	assert_null(strstr(h.out, "AUTH"));
	h_sends(&h, "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n", false);
	assert_false(h.auth_pending);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 503");
	h_stop(&h);
}

/* THREATS X-05: no room in the spool, 452 4.3.1 at MAIL. */
static void
test_no_space(void **state)
{
	struct harness h;
	char codes[128];

	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h.no_space = true;
	h_sends(&h, "MAIL FROM:<a@example.org> SIZE=1000\r\n", false);
	assert_int_equal(h.space_asked, 1000);
	h.no_space = false;
	h_sends(&h, "MAIL FROM:<a@example.org>\r\n", false);
	assert_int_equal(h.space_asked, 0);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 452 250");
	assert_non_null(strstr(h.out, "452 4.3.1 "));
	h_stop(&h);
}

/* The tarpit: past 10 errors and refusals, error replies are held. */
static void
test_tarpit(void **state)
{
	struct harness h;

	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, "MAIL FROM:<>\r\n", false);
	for (int i = 0; i < 10; i++) {
		h_sends(&h, "RCPT TO:<nobody@local.test>\r\n", false);
		assert_false(session_take_delay(h.s));
	}
	h_sends(&h, "RCPT TO:<nobody@local.test>\r\n", false);
	assert_true(session_take_delay(h.s));
	assert_false(session_take_delay(h.s)); /* asking clears it */
	h_sends(&h, "RCPT TO:<alice@local.test>\r\n", false);
	assert_false(session_take_delay(h.s)); /* a success is not held */
	h_stop(&h);
}

/*
 * Issue 6 item 4: a hostname of 253 octets (the most the configuration
 * allows) in the greeting, the EHLO and HELO replies and the Received
 * header. The replies were sent with snprintf's would-be length from a
 * 128-octet buffer: stack bytes to every client (ASan: stack overflow).
 */
static void
test_long_hostname(void **state)
{
	char host[254], cfg[1024], want[600], codes[128];
	struct harness h;

	memset(host, 'a', 253);
	host[63] = host[127] = host[191] = '.';
	host[253] = '\0';
	/* the test configuration begins "hostname mx.local.test\n" */
	snprintf(cfg, sizeof(cfg), "hostname %s%s", host,
		 test_config_text + strlen("hostname mx.local.test"));
	for (int ehlo = 0; ehlo < 2; ehlo++) {
		h_start_cfg(&h, ROLE_MX, cfg);
		snprintf(want, sizeof(want), "220 %s ESMTP\r\n", host);
		assert_string_equal(h.out, want);
		h_sends(&h, ehlo ? EHLO : "HELO client.example\r\n", false);
		snprintf(want, sizeof(want), "220 %s ESMTP\r\n250%c%s\r\n",
			 host, ehlo ? '-' : ' ', host);
		assert_memory_equal(h.out, want, strlen(want));
		if (ehlo)
			assert_non_null(
				strstr(h.out, "\r\n250 ENHANCEDSTATUSCODES"
					      "\r\n"));
		else
			assert_int_equal(h.out_len, strlen(want));
		h_sends(&h, TX "DATA\r\n", false);
		h_sends(&h, "Subject: x\r\n\r\nb\r\n.\r\n", false);
		h_codes(&h, codes, sizeof(codes));
		assert_string_equal(codes, "220 250 250 250 354 250");
		h.msg[h.msg_len] = '\0';
		snprintf(want, sizeof(want), "\tby %s with %s id TESTID0\r\n",
			 host, ehlo ? "ESMTP" : "SMTP");
		assert_non_null(strstr(h.msg, want));
		/* every reply line is printable text ending in CRLF */
		for (size_t i = 0; i < h.out_len; i++)
			assert_true((h.out[i] >= 0x20 && h.out[i] < 0x7f) ||
				    (h.out[i] == '\r' && h.out[i + 1] == '\n') ||
				    (h.out[i] == '\n' && h.out[i - 1] == '\r'));
		h_stop(&h);
	}
}

/* A command line of exactly `len` octets without CRLF: `head`, spaces,
   then `tail`. */
static char *
line_of(const char *head, const char *tail, size_t len)
{
	size_t h = strlen(head), t = strlen(tail);
	char *l = malloc(len + 3);

	assert_true(h + t <= len);
	memcpy(l, head, h);
	memset(l + h, ' ', len - h - t);
	memcpy(l + len - t, tail, t);
	memcpy(l + len, "\r\n", 3);
	return l;
}

/*
 * Issue 7 item 5, RFC 5321 4.5.3.1.4: a command line is at most 512
 * octets with its CRLF. MAIL may be longer by what each extension
 * parameter it carries allows: SIZE 26 (RFC 1870 3), BODY 16 (RFC 6152
 * 2), SMTPUTF8 10 (RFC 6531 3.4), AUTH 500 (RFC 4954 3). RCPT carries
 * none here: 512. Each limit is tried at its length and one octet over.
 */
static void
test_line_length(void **state)
{
	static const struct {
		const char *head, *tail;
		size_t max; /* with CRLF */
	} cases[] = {
		{"MAIL FROM:<a@example.org>", "", 512},
		{"MAIL FROM:<a@example.org>", " SIZE=1000", 512 + 26},
		{"MAIL FROM:<a@example.org>", " BODY=8BITMIME", 512 + 16},
		{"MAIL FROM:<a@example.org>", " SMTPUTF8", 512 + 10},
		{"MAIL FROM:<a@example.org>", " AUTH=<>", 512 + 500},
		{"MAIL FROM:<a@example.org>",
		 " SIZE=1000 BODY=8BITMIME SMTPUTF8 AUTH=<>",
		 512 + 26 + 16 + 10 + 500},
		{"RCPT TO:<alice@local.test>", "", 512},
		{"NOOP", " x", 512},
		{"HELO c.example", "", 512},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int over = 0; over < 2; over++) {
			struct harness h;
			char *l = line_of(cases[i].head, cases[i].tail,
					  cases[i].max - 2 + (size_t)over);
			const char *want = over ? "500 5.5.2 " : "25";
			const char *last;

			h_start(&h, ROLE_MX);
			h_sends(&h, EHLO, false);
			if (l[0] == 'R')
				h_sends(&h, "MAIL FROM:<>\r\n", false);
			h_sends(&h, l, false);
			last = h.out + h.out_len - 2;
			while (last > h.out && last[-1] != '\n')
				last--;
			if (strncmp(last, want, strlen(want)) != 0)
				fail_msg("%s...%s at %zu: %s", cases[i].head,
					 cases[i].tail,
					 cases[i].max - 2 + (size_t)over, last);
			/* in sync: the next command is answered */
			h_sends(&h, "RSET\r\n", false);
			assert_memory_equal(h.out + h.out_len - 17,
					    "250 2.0.0 Reset\r\n", 17);
			free(l);
			h_stop(&h);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialogues),
		cmocka_unit_test(test_stored_content),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_long_line_and_echo),
		cmocka_unit_test(test_temp_failures),
		cmocka_unit_test(test_timeout_and_shutdown),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_bdat_too_big),
		cmocka_unit_test(test_submission_before_tls),
		cmocka_unit_test(test_submission_auth),
		cmocka_unit_test(test_submission_from_header),
		cmocka_unit_test(test_submission_auth_failures),
		cmocka_unit_test(test_no_space),
		cmocka_unit_test(test_tarpit),
		cmocka_unit_test(test_long_hostname),
		cmocka_unit_test(test_line_length),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
