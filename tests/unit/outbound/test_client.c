/*
 * test_client.c - the SMTP client engine (src/outbound/client.c,
 * client_tx.c), driven like the queue drives it, without a socket.
 *
 * Each dialogue feeds the server's replies whole and byte by byte (the
 * replies of a pipelined group also split at every offset) and checks the
 * exact bytes the engine sends, its events and its per-recipient results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outbound/client.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static bool split_mode; /* feed the server's bytes one at a time */

static struct client *
new_client(enum client_tls tls, const char *user, const char *pass)
{
	static struct client_params p;
	struct client *c;

	p.helo = "out.example.org";
	p.tls = tls;
	p.auth_user = user;
	p.auth_pass = pass;
	c = client_new(&p);
	assert_non_null(c);
	return c;
}

/* The server says `s` (whole, or one octet at a time). */
static void
server(struct client *c, const char *s)
{
	size_t len = strlen(s);

	if (!split_mode) {
		client_input(c, s, len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		char *one = malloc(1);

		assert_non_null(one);
		*one = s[i];
		client_input(c, one, 1);
		free(one);
	}
}

/* The engine has sent exactly `want` since the last call. */
static void
expect_out(struct client *c, const char *want)
{
	size_t len;
	const char *out = client_output(c, &len);

	if (len != strlen(want) || memcmp(out, want, len) != 0)
		fail_msg("output:\n%.*s\nwanted:\n%s", (int)len, out, want);
	client_output_consume(c, len);
}

static void
expect_result(struct client *c, size_t i, enum client_status status,
	      enum client_stage stage, const char *dsn, const char *text)
{
	const struct client_result *r = client_rcpt_result(c, i);

	assert_non_null(r);
	if (r->status != status || r->stage != stage ||
	    strcmp(r->dsn, dsn) != 0 || strcmp(r->text, text) != 0)
		fail_msg("rcpt %zu: status %d stage %d dsn %s text \"%s\"", i,
			 r->status, r->stage, r->dsn, r->text);
}

#define EHLO_PLAIN "250-mx.example.net\r\n250 8BITMIME\r\n"
#define EHLO_PIPE                                                              \
	"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 100000\r\n"          \
	"250-8BITMIME\r\n250-SMTPUTF8\r\n250 STARTTLS\r\n"

/* Greeting and EHLO; the engine is ready after it. */
static struct client *
ready_client(enum client_tls tls, const char *ehlo)
{
	struct client *c = new_client(tls, NULL, NULL);

	assert_int_equal(client_event(c), CLIENT_EV_WAIT);
	expect_out(c, "");
	server(c, "220 mx.example.net ESMTP\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, ehlo);
	assert_int_equal(client_event(c), CLIENT_EV_READY);
	return c;
}

static const char *const two_rcpts[] = {"bob@example.net",
					"nobody@example.net"};

static void
run_split(void (*fn)(void))
{
	split_mode = false;
	fn();
	split_mode = true;
	fn();
	split_mode = false;
}

/* One at a time: MAIL, RCPT, RCPT, DATA; one refused recipient. */
static void
dialogue_plain(void)
{
	struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PLAIN);
	struct client_tx tx = {"alice@example.org", two_rcpts, 2, 10, false,
			       false};

	assert_false(client_features(c)->pipelining);
	assert_true(client_features(c)->eightbitmime);
	assert_int_equal(client_tx_begin(&*c, &tx), 0);
	expect_out(c, "MAIL FROM:<alice@example.org>\r\n");
	assert_int_equal(client_timeout_secs(c), 300);
	server(c, "250 2.1.0 Ok\r\n");
	expect_out(c, "RCPT TO:<bob@example.net>\r\n");
	server(c, "250 2.1.5 Ok\r\n");
	expect_out(c, "RCPT TO:<nobody@example.net>\r\n");
	server(c, "550 5.1.1 <nobody@example.net>: no such user\r\n");
	expect_out(c, "DATA\r\n");
	assert_int_equal(client_timeout_secs(c), 120);
	server(c, "354 go ahead\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_BODY);
	client_body(c, "Subject: x\r\n\r\n.hidden\r\n", 23);
	client_body_end(c);
	expect_out(c, "Subject: x\r\n\r\n..hidden\r\n.\r\n");
	assert_int_equal(client_timeout_secs(c), 600);
	server(c, "250 2.0.0 Ok: queued as 123\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
	expect_result(c, 0, CLIENT_OK, CLIENT_STAGE_DOT, "2.0.0",
		      "250 2.0.0 Ok: queued as 123");
	expect_result(c, 1, CLIENT_PERM, CLIENT_STAGE_RCPT, "5.1.1",
		      "550 5.1.1 <nobody@example.net>: no such user");
	assert_null(client_rcpt_result(c, 2));
	client_tx_end(c);
	assert_int_equal(client_event(c), CLIENT_EV_READY);
	assert_null(client_rcpt_result(c, 0));
	client_quit(c);
	expect_out(c, "QUIT\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_WAIT);
	server(c, "221 2.0.0 Bye\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_null(client_error(c));
	client_free(&c);
	assert_null(c);
}

static void
test_plain(void **state)
{
	run_split(dialogue_plain);
}

/* The replies of a pipelined group, split at every offset. */
static void
test_pipelining_every_split(void **state)
{
	static const char replies[] =
	    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no\r\n354 go\r\n";
	static const char *const utf8_rcpts[] = {"b\xc3\xb8@example.net",
						 "c@example.net"};
	size_t len = sizeof(replies) - 1;

	for (size_t k = 0; k <= len; k++) {
		struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);
		struct client_tx tx = {"a@example.org", utf8_rcpts, 2, 4242,
				       true, true};

		assert_int_equal(client_tx_begin(c, &tx), 0);
		expect_out(c, "MAIL FROM:<a@example.org> SIZE=4242 "
			      "BODY=8BITMIME SMTPUTF8\r\n"
			      "RCPT TO:<b\xc3\xb8@example.net>\r\n"
			      "RCPT TO:<c@example.net>\r\nDATA\r\n");
		client_input(c, replies, k);
		client_input(c, replies + k, len - k);
		assert_int_equal(client_event(c), CLIENT_EV_BODY);
		client_body(c, "x", 1);
		client_body_end(c);
		expect_out(c, "x\r\n.\r\n");
		client_input(c, "250 ok\r\n", 8);
		expect_result(c, 0, CLIENT_OK, CLIENT_STAGE_DOT, "2.0.0",
			      "250 ok");
		expect_result(c, 1, CLIENT_PERM, CLIENT_STAGE_RCPT, "5.1.1",
			      "550 5.1.1 no");
		client_free(&c);
	}
}

/* EHLO refused: HELO, and no extension is used. */
static void
dialogue_helo(void)
{
	struct client *c = new_client(CLIENT_TLS_MAY, NULL, NULL);
	static const char *const one[] = {"bob@example.net"};
	struct client_tx tx = {"", one, 1, 10, false, false};

	server(c, "220 old.example.net\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, "502 5.5.2 what?\r\n");
	expect_out(c, "HELO out.example.org\r\n");
	server(c, "250 old.example.net\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_READY);
	assert_false(client_features(c)->is_esmtp);
	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "MAIL FROM:<>\r\n");
	client_free(&c);
}

static void
test_helo(void **state)
{
	run_split(dialogue_helo);
}

/* EHLO refused and TLS required: no HELO, the session fails. */
static void
test_helo_not_with_tls_required(void **state)
{
	struct client *c = new_client(CLIENT_TLS_REQUIRE, NULL, NULL);

	server(c, "220 old.example.net\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, "502 5.5.2 what?\r\n");
	expect_out(c, "QUIT\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_int_equal(client_error(c)->status, CLIENT_TEMP);
	assert_int_equal(client_error(c)->code, 502);
	assert_int_equal(client_error(c)->stage, CLIENT_STAGE_EHLO);
	client_free(&c);
}

static void
dialogue_starttls(void)
{
	struct client *c = new_client(CLIENT_TLS_MAY, NULL, NULL);

	server(c, "220 mx\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, EHLO_PIPE);
	expect_out(c, "STARTTLS\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_WAIT);
	server(c, "220 2.0.0 Ready to start TLS\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_TLS);
	assert_false(client_is_tls(c));
	client_tls_done(c, true, NULL);
	assert_true(client_is_tls(c));
	assert_false(client_features(c)->pipelining); /* forgotten */
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, "250-mx\r\n250 PIPELINING\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_READY);
	assert_true(client_features(c)->pipelining);
	assert_false(client_features(c)->starttls);
	client_free(&c);
}

static void
test_starttls(void **state)
{
	run_split(dialogue_starttls);
}

/* STARTTLS refused: plain text when TLS is only wanted, failure when it
   is required. */
static void
test_starttls_refused(void **state)
{
	for (int required = 0; required < 2; required++) {
		struct client *c = new_client(
		    required ? CLIENT_TLS_REQUIRE : CLIENT_TLS_MAY, NULL, NULL);

		server(c, "220 mx\r\n");
		expect_out(c, "EHLO out.example.org\r\n");
		server(c, EHLO_PIPE);
		expect_out(c, "STARTTLS\r\n");
		server(c, "454 4.7.0 TLS not available\r\n");
		if (!required) {
			assert_int_equal(client_event(c), CLIENT_EV_READY);
			assert_false(client_is_tls(c));
			expect_out(c, "");
		} else {
			assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
			expect_out(c, "QUIT\r\n");
			assert_string_equal(client_error(c)->dsn, "4.7.0");
			assert_int_equal(client_error(c)->stage,
					 CLIENT_STAGE_STARTTLS);
		}
		client_free(&c);
	}
}

static void
test_tls_required_not_offered(void **state)
{
	struct client *c = new_client(CLIENT_TLS_REQUIRE, NULL, NULL);

	server(c, "220 mx\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, EHLO_PLAIN);
	expect_out(c, "QUIT\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_string_equal(client_error(c)->dsn, "4.7.4");
	assert_string_equal(client_error(c)->text,
			    "TLS is required, but was not offered by host");
	assert_false(client_error(c)->is_remote);
	client_free(&c);
}

/* Plain text after the 220 to STARTTLS is never taken as the encrypted
   server's (response injection, CVE-2011-0411). */
static void
test_starttls_injection(void **state)
{
	struct client *c = new_client(CLIENT_TLS_MAY, NULL, NULL);

	server(c, "220 mx\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, EHLO_PIPE);
	expect_out(c, "STARTTLS\r\n");
	client_input(c, "220 go\r\n250-mx\r\n250 AUTH PLAIN\r\n", 34);
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_string_equal(client_error(c)->text,
			    "protocol error: data after STARTTLS reply");
	expect_out(c, "");
	client_free(&c);
}

static void
test_tls_handshake_failed(void **state)
{
	struct client *c = new_client(CLIENT_TLS_MAY, NULL, NULL);

	server(c, "220 mx\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, EHLO_PIPE);
	expect_out(c, "STARTTLS\r\n");
	server(c, "220 go\r\n");
	client_tls_done(c, false, "certificate verify failed");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	expect_out(c, ""); /* no plain-text QUIT inside a TLS attempt */
	assert_string_equal(client_error(c)->dsn, "4.7.5");
	assert_string_equal(client_error(c)->text,
			    "TLS handshake failed: certificate verify failed");
	assert_int_equal(client_error(c)->stage, CLIENT_STAGE_TLS);
	client_free(&c);
}

/* AUTH PLAIN over implicit TLS: "\0joe\0secret" in base64. */
static void
dialogue_auth_plain(void)
{
	struct client *c = new_client(CLIENT_TLS_IMPLICIT, "joe", "secret");

	assert_true(client_is_tls(c));
	server(c, "220 relay\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, "250-relay\r\n250 AUTH LOGIN PLAIN\r\n");
	expect_out(c, "AUTH PLAIN AGpvZQBzZWNyZXQ=\r\n");
	assert_false(client_is_authenticated(c));
	server(c, "235 2.7.0 Authentication successful\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_READY);
	assert_true(client_is_authenticated(c));
	client_free(&c);
}

static void
test_auth_plain(void **state)
{
	run_split(dialogue_auth_plain);
}

/* AUTH LOGIN after STARTTLS (the old "AUTH=" form offers it). */
static void
dialogue_auth_login(void)
{
	struct client *c = new_client(CLIENT_TLS_REQUIRE, "joe", "secret");

	server(c, "220 relay\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, "250-relay\r\n250 STARTTLS\r\n");
	expect_out(c, "STARTTLS\r\n");
	server(c, "220 go\r\n");
	client_tls_done(c, true, NULL);
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, "250-relay\r\n250 AUTH=LOGIN\r\n");
	expect_out(c, "AUTH LOGIN\r\n");
	server(c, "334 VXNlcm5hbWU6\r\n");
	expect_out(c, "am9l\r\n");
	server(c, "334 UGFzc3dvcmQ6\r\n");
	expect_out(c, "c2VjcmV0\r\n");
	server(c, "235 2.7.0 ok\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_READY);
	assert_true(client_is_authenticated(c));
	client_free(&c);
}

static void
test_auth_login(void **state)
{
	run_split(dialogue_auth_login);
}

/* Credentials never go out in clear text. */
static void
test_auth_needs_tls(void **state)
{
	struct client *c = new_client(CLIENT_TLS_MAY, "joe", "secret");

	server(c, "220 relay\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, "250-relay\r\n250 AUTH PLAIN LOGIN\r\n");
	expect_out(c, "QUIT\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_string_equal(client_error(c)->dsn, "4.7.10");
	client_free(&c);
}

static void
test_auth_refused(void **state)
{
	static const char *const ehlos[] = {"250-r\r\n250 AUTH CRAM-MD5\r\n",
					    "250 r\r\n"};
	static const char *const texts[] = {
	    "no common SASL mechanism with host", "host does not offer AUTH"};
	struct client *c = new_client(CLIENT_TLS_IMPLICIT, "joe", "bad");

	server(c, "220 relay\r\n");
	expect_out(c, "EHLO out.example.org\r\n");
	server(c, "250-relay\r\n250 AUTH PLAIN\r\n");
	expect_out(c, "AUTH PLAIN AGpvZQBiYWQ=\r\n");
	server(c, "535 5.7.8 Authentication credentials invalid\r\n");
	expect_out(c, "QUIT\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_int_equal(client_error(c)->status, CLIENT_TEMP);
	assert_string_equal(client_error(c)->text,
			    "535 5.7.8 Authentication credentials invalid");
	client_free(&c);
	for (size_t i = 0; i < N_ELEMENTS(ehlos); i++) {
		c = new_client(CLIENT_TLS_IMPLICIT, "joe", "bad");
		server(c, "220 relay\r\n");
		expect_out(c, "EHLO out.example.org\r\n");
		server(c, ehlos[i]);
		expect_out(c, "QUIT\r\n");
		assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
		assert_string_equal(client_error(c)->text, texts[i]);
		client_free(&c);
	}
}

/* What the server cannot take is refused before anything is sent, and
   the session stays usable without RSET. */
static void
test_refused_locally(void **state)
{
	static const char *const one[] = {"b@example.net"};
	struct client_tx utf8 = {"a@example.org", one, 1, 10, false, true};
	struct client_tx eight = {"a@example.org", one, 1, 10, true, false};
	struct client_tx big = {"a@example.org", one, 1, 100001, false, false};
	struct client_tx ok = {"a@example.org", one, 1, 100000, false, false};
	struct client *c = ready_client(
	    CLIENT_TLS_NONE, "250-mx\r\n250-SIZE 100000\r\n250 PIPELINING\r\n");

	assert_int_equal(client_tx_begin(c, &utf8), 0);
	assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
	expect_result(c, 0, CLIENT_PERM, CLIENT_STAGE_MAIL, "5.6.7",
		      "SMTPUTF8 is required, but was not offered by host");
	assert_false(client_rcpt_result(c, 0)->is_remote);
	client_tx_end(c);
	assert_int_equal(client_tx_begin(c, &eight), 0);
	expect_result(c, 0, CLIENT_PERM, CLIENT_STAGE_MAIL, "5.6.3",
		      "message has 8-bit content, and host does not offer "
		      "8BITMIME");
	client_tx_end(c);
	assert_int_equal(client_tx_begin(c, &big), 0);
	expect_result(c, 0, CLIENT_PERM, CLIENT_STAGE_MAIL, "5.3.4",
		      "message size 100001 exceeds the limit of 100000 "
		      "octets of host");
	client_tx_end(c);
	expect_out(c, "");
	assert_int_equal(client_tx_begin(c, &ok), 0);
	expect_out(c, "MAIL FROM:<a@example.org> SIZE=100000\r\n"
		      "RCPT TO:<b@example.net>\r\nDATA\r\n");
	client_free(&c);
}

static void
test_tx_begin_bounds(void **state)
{
	const char *many[CLIENT_RCPT_MAX + 1];
	struct client_tx tx = {"a@example.org", many, CLIENT_RCPT_MAX + 1, 1,
			       false, false};
	struct client *c = new_client(CLIENT_TLS_NONE, NULL, NULL);

	for (size_t i = 0; i < N_ELEMENTS(many); i++)
		many[i] = "x@example.net";
	assert_int_equal(client_tx_begin(c, &tx), -1); /* not ready */
	client_free(&c);
	c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);
	assert_int_equal(client_tx_begin(c, &tx), -1);
	tx.n_rcpts = 0;
	assert_int_equal(client_tx_begin(c, &tx), -1);
	tx.n_rcpts = CLIENT_RCPT_MAX;
	assert_int_equal(client_tx_begin(c, &tx), 0);
	assert_int_equal(client_tx_begin(c, &tx), -1); /* busy */
	client_free(&c);
}

/* MAIL refused: every recipient fails; RSET precedes the next one. */
static void
dialogue_mail_refused(void)
{
	struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PLAIN);
	struct client_tx tx = {"a@example.org", two_rcpts, 2, 10, false,
			       false};

	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "MAIL FROM:<a@example.org>\r\n");
	server(c, "553 5.7.1 sender rejected\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
	expect_result(c, 0, CLIENT_PERM, CLIENT_STAGE_MAIL, "5.7.1",
		      "553 5.7.1 sender rejected");
	expect_result(c, 1, CLIENT_PERM, CLIENT_STAGE_MAIL, "5.7.1",
		      "553 5.7.1 sender rejected");
	client_tx_end(c);
	expect_out(c, "");
	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "RSET\r\n");
	server(c, "250 2.0.0 Ok\r\n");
	expect_out(c, "MAIL FROM:<a@example.org>\r\n");
	server(c, "451 4.3.0 later\r\n");
	expect_result(c, 1, CLIENT_TEMP, CLIENT_STAGE_MAIL, "4.3.0",
		      "451 4.3.0 later");
	client_tx_end(c);
	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "RSET\r\n");
	server(c, "500 what\r\n");
	expect_out(c, "QUIT\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
	expect_result(c, 0, CLIENT_TEMP, CLIENT_STAGE_RSET, "5.0.0",
		      "500 what");
	client_tx_end(c);
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	client_free(&c);
}

static void
test_mail_refused(void **state)
{
	run_split(dialogue_mail_refused);
}

/* Every RCPT refused: no DATA without pipelining; with it, DATA's 554 is
   expected and the recipients keep their own replies. */
static void
dialogue_no_rcpt(void)
{
	struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PLAIN);
	struct client_tx tx = {"a@example.org", two_rcpts, 2, 10, false,
			       false};

	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "MAIL FROM:<a@example.org>\r\n");
	server(c, "250 ok\r\n");
	expect_out(c, "RCPT TO:<bob@example.net>\r\n");
	server(c, "450 4.2.0 greylisted\r\n");
	expect_out(c, "RCPT TO:<nobody@example.net>\r\n");
	server(c, "550 5.1.1 unknown\r\n");
	expect_out(c, "");
	assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
	expect_result(c, 0, CLIENT_TEMP, CLIENT_STAGE_RCPT, "4.2.0",
		      "450 4.2.0 greylisted");
	expect_result(c, 1, CLIENT_PERM, CLIENT_STAGE_RCPT, "5.1.1",
		      "550 5.1.1 unknown");
	client_tx_end(c);
	client_free(&c);

	c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);
	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "MAIL FROM:<a@example.org> SIZE=10\r\n"
		      "RCPT TO:<bob@example.net>\r\n"
		      "RCPT TO:<nobody@example.net>\r\nDATA\r\n");
	server(c, "250 ok\r\n450 4.2.0 greylisted\r\n550 5.1.1 unknown\r\n"
		  "554 5.5.1 no valid recipients\r\n");
	expect_result(c, 0, CLIENT_TEMP, CLIENT_STAGE_RCPT, "4.2.0",
		      "450 4.2.0 greylisted");
	expect_result(c, 1, CLIENT_PERM, CLIENT_STAGE_RCPT, "5.1.1",
		      "550 5.1.1 unknown");
	client_tx_end(c);
	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "RSET\r\n");
	client_free(&c);
}

static void
test_no_rcpt(void **state)
{
	run_split(dialogue_no_rcpt);
}

/* A server that says 354 after refusing every recipient gets a lone dot
   (RFC 2920 3.1), and no RSET is needed after it. */
static void
dialogue_unwanted_354(void)
{
	struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);
	struct client_tx tx = {"a@example.org", two_rcpts, 2, 10, false,
			       false};

	assert_int_equal(client_tx_begin(c, &tx), 0);
	client_output_consume(c, 1000);
	server(c, "250 ok\r\n550 no\r\n550 no\r\n354 go\r\n");
	expect_out(c, ".\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_WAIT);
	server(c, "554 no valid recipients\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
	expect_result(c, 0, CLIENT_PERM, CLIENT_STAGE_RCPT, "5.0.0", "550 no");
	client_tx_end(c);
	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "MAIL FROM:<a@example.org> SIZE=10\r\n"
		      "RCPT TO:<bob@example.net>\r\n"
		      "RCPT TO:<nobody@example.net>\r\nDATA\r\n");
	client_free(&c);
}

static void
test_unwanted_354(void **state)
{
	run_split(dialogue_unwanted_354);
}

/* DATA refused, or the final dot refused: the accepted recipients get
   that reply. */
static void
dialogue_data_and_dot_refused(void)
{
	static const char *const one[] = {"b@example.net"};
	struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);
	struct client_tx tx = {"a@example.org", two_rcpts, 2, 10, false,
			       false};
	struct client_tx tx1 = {"a@example.org", one, 1, 10, false, false};

	assert_int_equal(client_tx_begin(c, &tx), 0);
	client_output_consume(c, 1000);
	server(c, "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n451 4.3.0 disk\r\n");
	expect_result(c, 0, CLIENT_TEMP, CLIENT_STAGE_DATA, "4.3.0",
		      "451 4.3.0 disk");
	expect_result(c, 1, CLIENT_PERM, CLIENT_STAGE_RCPT, "5.1.1",
		      "550 5.1.1 no");
	client_tx_end(c);
	assert_int_equal(client_tx_begin(c, &tx1), 0);
	expect_out(c, "RSET\r\n");
	server(c, "250 ok\r\n");
	client_output_consume(c, 1000);
	server(c, "250 ok\r\n250 ok\r\n354 go\r\n");
	client_body(c, "Subject: big\r\n", 14);
	client_body_end(c);
	server(c, "552 5.3.4 too big\r\n");
	expect_result(c, 0, CLIENT_PERM, CLIENT_STAGE_DOT, "5.3.4",
		      "552 5.3.4 too big");
	client_tx_end(c);
	assert_int_equal(client_event(c), CLIENT_EV_READY);
	client_free(&c);
}

static void
test_data_and_dot_refused(void **state)
{
	run_split(dialogue_data_and_dot_refused);
}

/* 421 in the middle: the rest fails for now, no QUIT, session over. */
static void
dialogue_421(void)
{
	struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PLAIN);
	struct client_tx tx = {"a@example.org", two_rcpts, 2, 10, false,
			       false};

	assert_int_equal(client_tx_begin(c, &tx), 0);
	expect_out(c, "MAIL FROM:<a@example.org>\r\n");
	server(c, "250 ok\r\n");
	expect_out(c, "RCPT TO:<bob@example.net>\r\n");
	server(c, "550 5.1.1 no\r\n");
	expect_out(c, "RCPT TO:<nobody@example.net>\r\n");
	server(c, "421 4.3.2 shutting down\r\n");
	expect_out(c, "");
	assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
	expect_result(c, 0, CLIENT_PERM, CLIENT_STAGE_RCPT, "5.1.1",
		      "550 5.1.1 no");
	expect_result(c, 1, CLIENT_TEMP, CLIENT_STAGE_RCPT, "4.3.2",
		      "421 4.3.2 shutting down");
	client_tx_end(c);
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_string_equal(client_error(c)->text, "421 4.3.2 shutting down");
	client_free(&c);
}

static void
test_421(void **state)
{
	run_split(dialogue_421);
}

static void
test_eof_and_timeout(void **state)
{
	struct client_tx tx = {"a@example.org", two_rcpts, 2, 10, false,
			       false};

	for (int timeout = 0; timeout < 2; timeout++) {
		struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);

		assert_int_equal(client_tx_begin(c, &tx), 0);
		client_output_consume(c, 1000);
		server(c, "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n");
		client_body(c, "partial", 7);
		if (timeout)
			client_timeout(c);
		else
			client_eof(c);
		assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
		expect_result(c, 0, CLIENT_TEMP, CLIENT_STAGE_DOT, "4.4.2",
			      timeout ? "timeout while waiting for reply to "
					"end of data"
				      : "lost connection while waiting for "
					"reply to end of data");
		expect_result(c, 1, CLIENT_PERM, CLIENT_STAGE_RCPT, "5.1.1",
			      "550 5.1.1 no");
		client_tx_end(c);
		assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
		client_free(&c);
	}
	/* Before the greeting. */
	{
		struct client *c = new_client(CLIENT_TLS_NONE, NULL, NULL);

		client_eof(c);
		assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
		assert_string_equal(client_error(c)->text,
				    "lost connection while waiting for "
				    "reply to the initial greeting");
		client_free(&c);
	}
}

static void
test_greeting_refused(void **state)
{
	struct client *c = new_client(CLIENT_TLS_NONE, NULL, NULL);

	server(c, "554-5.7.1 go away\r\n554 really\r\n");
	expect_out(c, "QUIT\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_int_equal(client_error(c)->code, 554);
	assert_int_equal(client_error(c)->status, CLIENT_TEMP);
	assert_string_equal(client_error(c)->text,
			    "554 5.7.1 go away really");
	assert_true(client_error(c)->is_remote);
	client_free(&c);
}

/* A reply nobody asked for: 421 ends the session, anything else too, as
   a protocol error. Garbage is a protocol error as well. */
static void
test_unsolicited_and_garbage(void **state)
{
	struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);

	server(c, "421 4.4.2 idle too long\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_string_equal(client_error(c)->text, "421 4.4.2 idle too long");
	expect_out(c, "");
	client_free(&c);

	c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);
	server(c, "250 surprise\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_string_equal(client_error(c)->text,
			    "protocol error: reply to no command");
	client_free(&c);

	c = new_client(CLIENT_TLS_NONE, NULL, NULL);
	server(c, "SSH-2.0-OpenSSH\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_string_equal(client_error(c)->text, "protocol error: syntax");
	assert_int_equal(client_error(c)->stage, CLIENT_STAGE_GREETING);
	client_free(&c);

	/* A greeting that is not 220 but 2yz, a 334 to HELO: broken. */
	c = new_client(CLIENT_TLS_NONE, NULL, NULL);
	server(c, "250 hello\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_string_equal(client_error(c)->text,
			    "protocol error: unexpected reply code");
	assert_string_equal(client_error(c)->dsn, "4.5.0");
	expect_out(c, "");
	client_free(&c);
	c = new_client(CLIENT_TLS_NONE, NULL, NULL);
	server(c, "220 mx\r\n502 no\r\n");
	expect_out(c, "EHLO out.example.org\r\nHELO out.example.org\r\n");
	server(c, "334 what\r\n");
	assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
	assert_int_equal(client_error(c)->stage, CLIENT_STAGE_HELO);
	assert_string_equal(client_error(c)->dsn, "4.5.0");
	client_free(&c);

	/* 354 to MAIL. */
	{
		static const char *const one[] = {"b@example.net"};
		struct client_tx tx = {"a@example.org", one, 1, 1, false,
				       false};

		c = ready_client(CLIENT_TLS_NONE, EHLO_PLAIN);
		assert_int_equal(client_tx_begin(c, &tx), 0);
		client_output_consume(c, 1000);
		server(c, "354 what\r\n");
		assert_int_equal(client_event(c), CLIENT_EV_TX_DONE);
		expect_result(c, 0, CLIENT_TEMP, CLIENT_STAGE_MAIL, "4.5.0",
			      "protocol error: unexpected 3yz reply");
		client_tx_end(c);
		assert_int_equal(client_event(c), CLIENT_EV_CLOSED);
		client_free(&c);
	}
}

/* Dot-stuffing over every split of the content into two calls. */
static void
test_dot_stuffing_every_split(void **state)
{
	static const char body[] = ".a\r\n..b\r\nc.d\r\n.\r\n\r\n.";
	static const char want[] =
	    "..a\r\n...b\r\nc.d\r\n..\r\n\r\n..\r\n.\r\n";
	static const char *const one[] = {"b@example.net"};
	size_t len = sizeof(body) - 1;

	for (size_t k = 0; k <= len; k++) {
		struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);
		struct client_tx tx = {"", one, 1, len, false, false};
		char *a = malloc(k + 1), *b = malloc(len - k + 1);

		assert_non_null(a);
		assert_non_null(b);
		memcpy(a, body, k);
		memcpy(b, body + k, len - k);
		assert_int_equal(client_tx_begin(c, &tx), 0);
		client_output_consume(c, 1000);
		server(c, "250 ok\r\n250 ok\r\n354 go\r\n");
		client_body(c, a, k);
		client_body(c, b, len - k);
		client_body_end(c);
		expect_out(c, want);
		free(a);
		free(b);
		client_free(&c);
	}
}

/* Content ending in CRLF gets no extra line; split CR|LF counts. */
static void
test_body_end_crlf(void **state)
{
	static const char *const one[] = {"b@example.net"};
	struct client_tx tx = {"", one, 1, 3, false, false};
	struct client *c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);

	assert_int_equal(client_tx_begin(c, &tx), 0);
	client_output_consume(c, 1000);
	server(c, "250 ok\r\n250 ok\r\n354 go\r\n");
	client_body(c, "x\r", 2);
	client_body(c, "\n", 1);
	client_body_end(c);
	expect_out(c, "x\r\n.\r\n");
	client_free(&c);

	c = ready_client(CLIENT_TLS_NONE, EHLO_PIPE);
	assert_int_equal(client_tx_begin(c, &tx), 0);
	client_output_consume(c, 1000);
	server(c, "250 ok\r\n250 ok\r\n354 go\r\n");
	client_body_end(c); /* empty content */
	expect_out(c, ".\r\n");
	client_free(&c);
}

/* EHLO keywords: any case, SIZE without or with a bad number. */
static void
test_ehlo_keywords(void **state)
{
	struct client *c = ready_client(
	    CLIENT_TLS_NONE, "250-mx\r\n250-pipelining\r\n250-Size\r\n"
			     "250-AUTH LOGIN\r\n250-8BITMIMEX\r\n250 smtputf8\r\n");
	const struct client_features *f = client_features(c);

	assert_true(f->is_esmtp && f->pipelining && f->has_size);
	assert_int_equal(f->size_max, 0);
	assert_true(f->auth_login && !f->auth_plain && f->has_auth);
	assert_false(f->eightbitmime);
	assert_true(f->smtputf8);
	client_free(&c);
	c = ready_client(CLIENT_TLS_NONE,
			 "250-mx\r\n250 SIZE 99999999999999999999999\r\n");
	assert_true(client_features(c)->has_size);
	assert_int_equal(client_features(c)->size_max, 0);
	client_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_pipelining_every_split),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_helo_not_with_tls_required),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_starttls_refused),
		cmocka_unit_test(test_tls_required_not_offered),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_tls_handshake_failed),
		cmocka_unit_test(test_auth_plain),
		cmocka_unit_test(test_auth_login),
		cmocka_unit_test(test_auth_needs_tls),
		cmocka_unit_test(test_auth_refused),
		cmocka_unit_test(test_refused_locally),
		cmocka_unit_test(test_tx_begin_bounds),
		cmocka_unit_test(test_mail_refused),
		cmocka_unit_test(test_no_rcpt),
		cmocka_unit_test(test_unwanted_354),
		cmocka_unit_test(test_data_and_dot_refused),
		cmocka_unit_test(test_421),
		cmocka_unit_test(test_eof_and_timeout),
		cmocka_unit_test(test_greeting_refused),
		cmocka_unit_test(test_unsolicited_and_garbage),
		cmocka_unit_test(test_dot_stuffing_every_split),
		cmocka_unit_test(test_body_end_crlf),
		cmocka_unit_test(test_ehlo_keywords),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
