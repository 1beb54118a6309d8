/*
 * test_session_send.c - the session's side of send limits
 * (docs/sendlimit.md): an authenticated session asks at each RCPT and is
 * parked until the verdict; 451 4.7.1 per limit; pipelined RCPTs are
 * answered in order, each after its verdict, however the bytes are split;
 * a HOLD verdict holds the message; recipients of a message not sent are
 * given back; a session without AUTH never asks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/session.h"

#include "session_harness.h"

#define EHLO "EHLO client.example\r\n"
#define AUTH "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n"
#define MAIL "MAIL FROM:<alice@local.test>\r\n"
#define MSG "From: alice@local.test\r\nSubject: t\r\n\r\nhi\r\n.\r\n"

static void
start(struct harness *h, enum listen_role role)
{
	h_start_limited(h, role, test_config_text);
	h_sends(h, EHLO, false);
	if (role != ROLE_MX) {
		h_sends(h, AUTH, false);
		h_auth_done(h, SESSION_AUTH_OK);
	}
	h->out_len = 0;
	h->out[0] = '\0';
}

static void
expect_codes(struct harness *h, const char *want)
{
	char codes[256];

	h_codes(h, codes, sizeof(codes));
	if (strcmp(codes, want) != 0)
		fail_msg("codes \"%s\", expected \"%s\"\n%s", codes, want,
			 h->out);
}

/* Each verdict and its reply; a refused recipient is not in the
   envelope. */
static void
test_verdicts(void **state)
{
	static const struct {
		enum session_send_result r;
		const char *line;
		const char *refused; /* the metrics' reason, "": none */
	} cases[] = {
	    {SESSION_SEND_OK, "250 2.1.5 Recipient ok\r\n", ""},
	    {SESSION_SEND_OVER_HOUR,
	     "451 4.7.1 Hourly recipient limit of this account reached, try "
	     "later\r\n",
	     "send_limit_hour"},
	    {SESSION_SEND_OVER_DAY, "451 4.7.1 Daily recipient limit",
	     "send_limit_day"},
	    {SESSION_SEND_OVER_NEW, "451 4.7.1 Daily limit of new recipients",
	     "new_recipients_day"},
	    {SESSION_SEND_HELD, "451 4.7.1 Unusual sending volume",
	     "send_burst"},
	    {SESSION_SEND_TEMPFAIL, "451 4.3.0 ", ""},
	};
	struct harness h;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start(&h, ROLE_SUBMISSIONS);
		h_sends(&h, MAIL "RCPT TO:<Bob@Remote.Example>\r\n", false);
		/* Parked: no reply to the RCPT until the verdict. */
		expect_codes(&h, "250");
		assert_true(h.send_pending);
		assert_true(session_is_parked(h.s));
		assert_string_equal(h.send_account, "alice@local.test");
		assert_string_equal(h.send_rcpt, "Bob@remote.example");
		h_send_done(&h, cases[i].r);
		assert_non_null(strstr(h.out, cases[i].line));
		assert_string_equal(h.refused, cases[i].refused);
		assert_int_equal(h.n_refused, cases[i].refused[0] != '\0');
		assert_false(session_is_parked(h.s));
		h_stop(&h);
	}
}

/* Pipelined: MAIL, three RCPTs and DATA in one write, or byte by byte:
   the second RCPT is asked only after the first is answered. */
static void
test_pipelined_in_order(void **state)
{
	struct harness h;

	(void)state;
	for (int split = 0; split < 2; split++) {
		start(&h, ROLE_SUBMISSIONS);
		h_sends(&h,
			MAIL "RCPT TO:<a@r.example>\r\nRCPT TO:<b@r.example>\r\n"
			     "RCPT TO:<bob@local.test>\r\nDATA\r\n",
			split);
		assert_int_equal(h.send_asked, 1);
		assert_string_equal(h.send_rcpt, "a@r.example");
		h_send_done(&h, SESSION_SEND_OK);
		assert_int_equal(h.send_asked, 2);
		assert_string_equal(h.send_rcpt, "b@r.example");
		h_send_done(&h, SESSION_SEND_OVER_HOUR);
		assert_string_equal(h.send_rcpt, "bob@local.test");
		h_send_done(&h, SESSION_SEND_OK);
		expect_codes(&h, "250 250 451 250 354");
		h_sends(&h, MSG, split);
		expect_codes(&h, "250 250 451 250 354 250");
		assert_string_equal(h.rcpts, "a@r.example(remote);bob@local.test;");
		assert_false(h.env_hold);
		assert_int_equal(h.undone, 0); /* sent: nothing given back */
		h_stop(&h);
	}
}

/* HOLD: accepted, and the whole message is held. */
static void
test_hold(void **state)
{
	struct harness h;

	(void)state;
	start(&h, ROLE_SUBMISSIONS);
	h_sends(&h, MAIL "RCPT TO:<a@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_OK);
	h_sends(&h, "RCPT TO:<b@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_HOLD);
	h_sends(&h, "DATA\r\n" MSG, false);
	expect_codes(&h, "250 250 250 354 250");
	assert_true(h.env_hold);
	/* The next message starts unheld (the guard says again). */
	h_sends(&h, MAIL "RCPT TO:<a@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_OK);
	h_sends(&h, "DATA\r\n" MSG, false);
	assert_false(h.env_hold);
	h_stop(&h);
}

/* Recipients of a message that is not sent are given back: RSET, a
   failed commit, the end of the session. */
static void
test_undo(void **state)
{
	struct harness h;

	(void)state;
	start(&h, ROLE_SUBMISSIONS);
	h_sends(&h, MAIL "RCPT TO:<a@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_OK);
	h_sends(&h, "RCPT TO:<b@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_OVER_DAY); /* not counted */
	h_sends(&h, "RCPT TO:<c@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_OK);
	h_sends(&h, "RSET\r\n", false);
	assert_int_equal(h.undone, 2);
	h.commit_fail = 1;
	h_sends(&h, MAIL "RCPT TO:<a@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_OK);
	h_sends(&h, "DATA\r\n" MSG, false);
	assert_int_equal(h.undone, 3);
	h.commit_fail = 0;
	h_sends(&h, MAIL "RCPT TO:<a@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_OK);
	h_stop(&h); /* the session ends in the transaction */
	assert_int_equal(h.undone, 4);
}

/* A recipient already in the transaction (the same remote address in
   any case, the same local mailbox) adds no copy: it is accepted without
   asking, so it is never counted twice, and RSET gives back only what
   was counted. */
static void
test_repeat_not_counted(void **state)
{
	struct harness h;

	(void)state;
	start(&h, ROLE_SUBMISSIONS);
	h_sends(&h, MAIL "RCPT TO:<a@r.example>\r\n", false);
	h_send_done(&h, SESSION_SEND_OK);
	h_sends(&h, "RCPT TO:<A@R.example>\r\nRCPT TO:<a@r.example>\r\n",
		false);
	assert_false(h.send_pending);
	h_sends(&h, "RCPT TO:<alice@local.test>\r\n", false);
	assert_true(h.send_pending);
	h_send_done(&h, SESSION_SEND_OK);
	h_sends(&h, "RCPT TO:<ALICE@local.test>\r\n", false);
	assert_false(h.send_pending);
	expect_codes(&h, "250 250 250 250 250 250");
	assert_int_equal(h.send_asked, 2);
	h_sends(&h, "RSET\r\n", false);
	assert_int_equal(h.undone, 2);
	h_stop(&h);
}

/* No AUTH (mx): never asked. */
static void
test_mx_never_asks(void **state)
{
	struct harness h;

	(void)state;
	start(&h, ROLE_MX);
	h_sends(&h,
		"MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@local.test>\r\n"
		"DATA\r\n",
		false);
	h_sends(&h, "Subject: t\r\n\r\nhi\r\n.\r\n", false);
	expect_codes(&h, "250 250 354 250");
	assert_int_equal(h.send_asked, 0);
	h_stop(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verdicts),
	    cmocka_unit_test(test_pipelined_in_order),
	    cmocka_unit_test(test_hold),
	    cmocka_unit_test(test_undo),
	    cmocka_unit_test(test_repeat_not_counted),
	    cmocka_unit_test(test_mx_never_asks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
