/*
 * test_session_rcpt.c - the recipient decision for the role addresses
 * (issue 7 items 2 and 3): postmaster@ and abuse@ of every domain of ours
 * and <Postmaster> alone are always accepted (RFC 5321 4.5.1, RFC 2142),
 * delivered to the `postmaster` mailbox or a Maildir of their own, and
 * never refused for the sender (mx-local-senders) or the From: check; a
 * sender in our domains from a client without AUTH on mx is refused.
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
#define AUTH "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n"
#define MAILDIR "/tmp/postern-test-mail/"

/* The test configuration with two domains and extra lines. */
static void
start(struct harness *h, enum listen_role role, const char *extra)
{
	char cfg[2048];

	snprintf(cfg, sizeof(cfg), "%sdomains other.test\n%s",
		 test_config_text, extra);
	h_start_cfg(h, role, cfg);
	h_sends(h, EHLO, false);
	if (role != ROLE_MX) {
		h_sends(h, AUTH, false);
		h_auth_done(h, SESSION_AUTH_OK);
	}
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

/* Without `postmaster`: each role has a Maildir of its own, any case,
   every domain; <Postmaster> alone is the first domain's. */
static void
test_roles_own_maildir(void **state)
{
	struct harness h;

	start(&h, ROLE_MX, "");
	h_sends(&h, "MAIL FROM:<s@example.org>\r\n", false);
	h_sends(&h, "RCPT TO:<postmaster@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<Postmaster>\r\n", false);
	h_sends(&h, "RCPT TO:<ABUSE@Other.TEST>\r\n", false);
	h_sends(&h, "RCPT TO:<\"PostMaster\"@other.test>\r\n", false);
	h_sends(&h, "RCPT TO:<abuse>\r\n", false);
	h_sends(&h, "RCPT TO:<postmaster@example.org>\r\n", false);
	h_sends(&h, "RCPT TO:<postmaster@[192.0.2.1]>\r\n", false);
	h_sends(&h, "RCPT TO:<postmasters@local.test>\r\n", false);
	h_sends(&h, "DATA\r\n", false);
	h_sends(&h, "Subject: x\r\n\r\nb\r\n.\r\n", false);
	expect_codes(&h, "220 250 250 250 250 250 250 501 554 554 550 354 "
			 "250");
	assert_string_equal(h.rcpts, "postmaster@local.test;"
				     "abuse@other.test;"
				     "postmaster@other.test;");
	assert_string_equal(h.dirs, MAILDIR "local.test/postmaster/Maildir;"
				    MAILDIR "other.test/abuse/Maildir;"
				    MAILDIR "other.test/postmaster/Maildir;");
	h_stop(&h);
}

/* With `postmaster alice@local.test` both roles go to alice; a mailbox
   configured under a role's name keeps its mail. */
static void
test_postmaster_directive(void **state)
{
	struct harness h;

	start(&h, ROLE_MX,
	      "postmaster alice@local.test\nmailbox abuse@other.test\n");
	h_sends(&h, "MAIL FROM:<>\r\n", false);
	h_sends(&h, "RCPT TO:<postmaster@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<abuse@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<abuse@other.test>\r\n", false);
	h_sends(&h, "DATA\r\n", false);
	h_sends(&h, "Subject: x\r\n\r\nb\r\n.\r\n", false);
	expect_codes(&h, "220 250 250 250 250 250 354 250");
	assert_string_equal(h.rcpts, "postmaster@local.test;"
				     "abuse@other.test;");
	assert_string_equal(h.dirs, MAILDIR "local.test/alice/Maildir;"
				    MAILDIR "other.test/abuse/Maildir;");
	h_stop(&h);
}

/* mx-local-senders: a sender in our domains without AUTH on mx gets
   550 5.7.1 at each RCPT but postmaster's and abuse's. */
static void
test_mx_local_senders(void **state)
{
	struct harness h;

	start(&h, ROLE_MX, "");
	h_sends(&h, "MAIL FROM:<eve@LOCAL.test>\r\n", false);
	h_sends(&h, "RCPT TO:<alice@local.test>\r\n", false);
	assert_non_null(strstr(h.out, "550 5.7.1 "));
	h_sends(&h, "RCPT TO:<bob@example.org>\r\n", false);
	h_sends(&h, "RCPT TO:<abuse@local.test>\r\n", false);
	h_sends(&h, "DATA\r\n", false);
	h_sends(&h, "Subject: x\r\n\r\nb\r\n.\r\n", false);
	expect_codes(&h, "220 250 250 550 554 250 354 250");
	assert_string_equal(h.rcpts, "abuse@local.test;");
	assert_string_equal(h.sender, "eve@local.test");
	/* the null sender and other domains are not ours */
	h_sends(&h, "MAIL FROM:<>\r\nRCPT TO:<alice@local.test>\r\n", false);
	h_sends(&h, "RSET\r\nMAIL FROM:<eve@sub.local.test>\r\n"
		    "RCPT TO:<alice@local.test>\r\n",
		false);
	expect_codes(&h, "220 250 250 550 554 250 354 250 250 250 250 250 "
			 "250");
	h_stop(&h);

	/* turned off */
	start(&h, ROLE_MX, "mx-local-senders accept\n");
	h_sends(&h, "MAIL FROM:<eve@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<alice@local.test>\r\n", false);
	expect_codes(&h, "220 250 250 250");
	h_stop(&h);

	/* an authenticated user is one of ours */
	start(&h, ROLE_SUBMISSIONS, "");
	h_sends(&h, "MAIL FROM:<alice@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<bob@local.test>\r\n", false);
	expect_codes(&h, "220 250 235 250 250");
	h_stop(&h);
}

/* The From: check spares a message to postmaster or abuse alone: a user
   reports spam by redirecting it, its From: unchanged. */
static void
test_from_check_roles(void **state)
{
	static const char spam[] =
		"DATA\r\nFrom: Spammer <ceo@local.test>\r\nSubject: spam\r\n"
		"\r\nbuy\r\n.\r\n";
	struct harness h;

	start(&h, ROLE_SUBMISSIONS, "");
	h_sends(&h, "MAIL FROM:<alice@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<abuse@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<postmaster@other.test>\r\n", false);
	h_sends(&h, spam, false);
	expect_codes(&h, "220 250 235 250 250 250 354 250");
	h_stop(&h);

	start(&h, ROLE_SUBMISSIONS, "");
	h_sends(&h, "MAIL FROM:<alice@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<abuse@local.test>\r\n", false);
	h_sends(&h, "RCPT TO:<bob@local.test>\r\n", false);
	h_sends(&h, spam, false);
	expect_codes(&h, "220 250 235 250 250 250 354 550");
	h_stop(&h);
}

/* The directives: the built-in configuration names demo; errors. */
static void
test_directives(void **state)
{
	static const char *const bad[] = {
		"postmaster nobody@elsewhere.test\n",
		"postmaster nobody\n",
		"postmaster ../x@local.test\n",
		"postmaster a@local.test\npostmaster b@local.test\n",
		"mx-local-senders maybe\n",
	};
	struct config *cfg;
	FILE *err = fopen("/dev/null", "w");
	char text[2048];

	assert_int_equal(config_load_builtin(&cfg, err), 0);
	assert_string_equal(cfg->postmaster.local, "demo");
	assert_string_equal(cfg->postmaster.domain, "example.test");
	assert_int_equal(cfg->mx_local_senders, MX_LOCAL_SENDERS_REFUSE);
	config_free(&cfg);
	snprintf(text, sizeof(text), "%spostmaster Alice@LOCAL.test\n"
				     "mx-local-senders accept\n",
		 test_config_text);
	assert_int_equal(config_load_string("t", text, &cfg, err), 0);
	assert_string_equal(cfg->postmaster.local, "alice");
	assert_string_equal(cfg->postmaster.domain, "local.test");
	assert_int_equal(cfg->mx_local_senders, MX_LOCAL_SENDERS_ACCEPT);
	config_free(&cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", test_config_text, bad[i]);
		if (config_load_string("t", text, &cfg, err) == 0)
			fail_msg("accepted: %s", bad[i]);
	}
	fclose(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles_own_maildir),
		cmocka_unit_test(test_postmaster_directive),
		cmocka_unit_test(test_mx_local_senders),
		cmocka_unit_test(test_from_check_roles),
		cmocka_unit_test(test_directives),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
