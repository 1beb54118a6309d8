/*
 * test_session_pipelining.c - RFC 2920 pipelining on the mx role (issue 7
 * item 1): which command is refused for not waiting, and that no cut of
 * the client's bytes into reads changes a reply.
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

#define EHLO "EHLO client.example\r\n"
#define TX "MAIL FROM:<s@example.org>\r\nRCPT TO:<alice@local.test>\r\n"

/* Pipelining past a group end (RFC 2920 3.1) on the mx role. */
static void
test_sync(void **state)
{
	struct harness h;
	char codes[128];
	char *big;

	/* P-06 #2: MAIL, RCPT, DATA and the body in one segment: the body
	   came before the 354. */
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 354 554");
	assert_true(session_is_closing(h.s));
	assert_int_equal(h.commits, 0);
	h_stop(&h);

	/* The end of the content starts a new group: MAIL and RCPT behind
	   it, some while the commit runs, are answered after it; DATA ends
	   the group, and content behind it is refused (D-04). */
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	{
		static const char two[] =
			"Subject: 1\r\n\r\nmail 1\r\n.\r\nMAIL FROM:<b@e>\r\n";

		session_input(h.s, two, sizeof(two) - 1);
	}
	h_drain(&h);
	assert_true(session_is_parked(h.s));
	h_send(&h, "RCPT TO:<alice@local.test>\r\n", 28, false);
	h_settle(&h);
	h_sends(&h, "DATA\r\nSubject: 2\r\n\r\nmail 2\r\n.\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 354 250 250 250 354 554");
	assert_int_equal(h.commits, 1);
	assert_true(session_is_closing(h.s));
	h_stop(&h);

	/* A reply taken, then the next command: no violation. */
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, "NOOP\r\n", false);
	h_sends(&h, "NOOP\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250");
	h_stop(&h);

	/* A QUIT right behind the end of data (or behind EHLO) is allowed:
	   Postfix's client sends "." and QUIT together. */
	h_start(&h, ROLE_MX);
	h_sends(&h, "EHLO c.example\r\nQUIT\r\n", false);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 221");
	h_stop(&h);
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	session_input(h.s, "x\r\n.\r\nQUIT\r\n", 12);
	h_settle(&h);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 354 250 221");
	assert_int_equal(h.commits, 1);
	h_stop(&h);
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	session_input(h.s, "x\r\n.\r\n", 6);
	h_drain(&h);
	session_input(h.s, "QUIT\r\n", 6); /* while parked */
	h_settle(&h);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 354 250 221");
	h_stop(&h);

	/* More than 64 KiB while parked: the message's reply, then 554. */
	big = malloc(70000);
	memset(big, 'x', 70000);
	memcpy(big, "NOOP ", 5);
	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX "DATA\r\n", false);
	session_input(h.s, "x\r\n.\r\n", 6);
	for (int i = 0; i < 2; i++)
		session_input(h.s, big, 35000);
	h_settle(&h);
	h_codes(&h, codes, sizeof(codes));
	assert_string_equal(codes, "220 250 250 250 354 250 554");
	assert_true(session_is_closing(h.s));
	free(big);
	h_stop(&h);

	/* Talking before the greeting. */
	{
		struct session_params p = {0};
		FILE *err = fopen("/dev/null", "w");

		memset(&h, 0, sizeof(h));
		assert_int_equal(config_load_string("t", test_config_text,
						    &h.cfg, err),
				 0);
		fclose(err);
		p.cfg = h.cfg;
		p.role = ROLE_MX;
		p.id = "t";
		p.client_addr = "192.0.2.1";
		h.s = session_new(&p, &h_ops, &h);
		session_input(h.s, "EHLO x\r\n", 8);
		h_drain(&h);
		assert_memory_equal(h.out, "554 5.5.0", 9);
		assert_true(session_is_closing(h.s));
		session_greet(h.s);
		h_drain(&h);
		assert_null(strstr(h.out, "220"));
		h_stop(&h);
	}
}

/*
 * RFC 2920 3.1 as issue 7 item 1 reads it: on mx an unauthenticated
 * client is refused (554 5.5.0) only for a command it sent after a
 * group-ending command (EHLO, HELO, DATA, VRFY, EXPN, TURN, NOOP, QUIT,
 * STARTTLS, BDAT LAST) before that command's reply was taken; the end of
 * message content starts a new group. Each stream is fed whole, then cut
 * in two at every offset and in three at every pair of offsets a prime
 * apart, with no reply taken in between (the client wrote it all before
 * reading): the replies must be the same every time.
 */
struct split_case {
	const char *name;
	enum listen_role role;
	const char *prefix[4]; /* turns first, each answered */
	const char *stream;
	const char *codes; /* of the stream's replies */
	int commits;
	bool closed;
};

#define TXD TX "DATA\r\n"

static const struct split_case split_cases[] = {
	{"EHLO then MAIL", ROLE_MX, {NULL},
	 "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n", "250 554", 0,
	 true},
	{"HELO then MAIL", ROLE_MX, {NULL},
	 "HELO c.example\r\nMAIL FROM:<a@example.org>\r\n", "250 554", 0,
	 true},
	{"EHLO then QUIT", ROLE_MX, {NULL}, "EHLO c.example\r\nQUIT\r\n",
	 "250 221", 0, true},
	{"content, dot, RSET, NOOP", ROLE_MX, {EHLO, TXD},
	 "Subject: x\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\n",
	 "250 250 250", 1, false},
	{"content, dot, QUIT", ROLE_MX, {EHLO, TXD},
	 "x\r\n.\r\nQUIT\r\n", "250 221", 1, true},
	{"content, dot, a whole transaction (D-04)", ROLE_MX, {EHLO, TXD},
	 "Subject: 1\r\n\r\nmail 1\r\n.\r\nMAIL FROM:<b@example.org>\r\n"
	 "RCPT TO:<alice@local.test>\r\nDATA\r\nSubject: 2\r\n\r\n"
	 "mail 2\r\n.\r\n",
	 "250 250 250 354 554", 1, true},
	{"envelope, DATA and content (P-06)", ROLE_MX, {EHLO},
	 TXD "Subject: x\r\n\r\nbody\r\n.\r\n", "250 250 354 554", 0,
	 true},
	{"a group: RSET MAIL RCPT RCPT NOOP", ROLE_MX, {EHLO},
	 "RSET\r\nMAIL FROM:<>\r\nRCPT TO:<alice@local.test>\r\n"
	 "RCPT TO:<bob@local.test>\r\nNOOP\r\n",
	 "250 250 250 250 250", 0, false},
	{"NOOP then NOOP", ROLE_MX, {EHLO}, "NOOP\r\nNOOP\r\n", "250 554",
	 0, true},
	{"VRFY then RSET", ROLE_MX, {EHLO}, "VRFY x\r\nRSET\r\n", "252 554",
	 0, true},
	{"TURN then NOOP", ROLE_MX, {EHLO}, "TURN\r\nNOOP\r\n", "502 554", 0,
	 true},
	{"BDAT chunks, LAST, then MAIL", ROLE_MX, {EHLO, TX},
	 "BDAT 3\r\nab\rBDAT 4 LAST\r\n\nc\r\nMAIL FROM:<>\r\n",
	 "250 250 554", 1, true},
	{"BDAT LAST, then QUIT", ROLE_MX, {EHLO, TX},
	 "BDAT 3 LAST\r\nx\r\nQUIT\r\n", "250 221", 1, true},
	{"STARTTLS with plain text behind it", ROLE_MX, {EHLO},
	 "STARTTLS\r\nEHLO injected\r\n", "220", 0, true},
	{"a long line then NOOP NOOP", ROLE_MX, {EHLO},
	 "NOOP xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "\r\nNOOP\r\n",
	 "500 250", 0, false},
	{"submission after AUTH may pipeline anything", ROLE_SUBMISSIONS,
	 {EHLO, "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n"},
	 "MAIL FROM:<alice@local.test>\r\nRCPT TO:<bob@local.test>\r\n"
	 "DATA\r\nFrom: alice@local.test\r\n\r\nx\r\n.\r\nNOOP\r\n"
	 "NOOP\r\n",
	 "250 250 354 250 250 250", 1, false},
};

/* Feed `stream` cut at the offsets in cuts[] (ascending), completing
   commits between pieces when `commit` (the server may finish one while
   the client writes) but never taking a reply. */
static void
split_run(const struct split_case *c, const size_t *cuts, size_t n_cuts,
	  bool commit, struct harness *h, char *out, size_t size)
{
	size_t len = strlen(c->stream), from = 0, skip;

	h_start(h, c->role);
	for (size_t i = 0; c->prefix[i] != NULL; i++) {
		h_sends(h, c->prefix[i], false);
		if (h->auth_pending)
			h_auth_done(h, SESSION_AUTH_OK);
	}
	skip = h->out_len;
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t to = i < n_cuts ? cuts[i] : len;

		session_input(h->s, c->stream + from, to - from);
		while (commit && h->commit_pending) {
			h->commit_pending = false;
			h->commits++;
			session_commit_done(h->s, 0);
		}
		from = to;
	}
	h_settle(h);
	snprintf(out, size, "%s", h->out + skip);
}

static void
test_pipelining_any_split(void **state)
{
	for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]);
	     i++) {
		const struct split_case *c = &split_cases[i];
		size_t len = strlen(c->stream);
		char whole[4096], got[4096], codes[256];
		struct harness h;

		split_run(c, NULL, 0, false, &h, whole, sizeof(whole));
		h.out_len = 0;
		snprintf(h.out, sizeof(h.out), "%s", whole);
		h_codes(&h, codes, sizeof(codes));
		if (strcmp(codes, c->codes) != 0)
			fail_msg("%s: \"%s\", expected \"%s\"\n%s", c->name,
				 codes, c->codes, whole);
		assert_int_equal(h.commits, c->commits);
		assert_int_equal(session_is_closing(h.s), c->closed);
		h_stop(&h);
		for (size_t k = 1; k < len; k++) {
			for (int commit = 0; commit < 2; commit++) {
				split_run(c, &k, 1, commit, &h, got,
					  sizeof(got));
				if (strcmp(got, whole) != 0)
					fail_msg("%s, cut at %zu%s:\n%s\n"
						 "whole:\n%s",
						 c->name, k,
						 commit ? " (commits)" : "",
						 got, whole);
				h_stop(&h);
			}
			for (size_t j = k + 7; j < len; j += 13) {
				size_t cuts[2] = {k, j};

				split_run(c, cuts, 2, true, &h, got,
					  sizeof(got));
				if (strcmp(got, whole) != 0)
					fail_msg("%s, cut at %zu, %zu:\n%s\n"
						 "whole:\n%s",
						 c->name, k, j, got, whole);
				h_stop(&h);
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync),
		cmocka_unit_test(test_pipelining_any_split),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
