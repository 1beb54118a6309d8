/*
 * test_session_data.c - one content scanner for DATA and BDAT (issue 6
 * item 3). Every message is sent by DATA, then by BDAT in one chunk, in
 * two chunks split at every offset, and one octet per chunk: the final
 * answer, the number of messages committed and the stored content must be
 * the same every time. The cases are THREATS D-01's end-of-data
 * sequences, a From: hidden behind a bare CR or LF, NUL, the hop and
 * header-size limits, and the Return-Path: a client sent (dropped, RFC
 * 5321 4.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/log.h"
#include "smtp/session.h"

#include "session_harness.h"

#define EHLO "EHLO client.example\r\n"
#define TX "MAIL FROM:<s@example.org>\r\nRCPT TO:<alice@local.test>\r\n"
#define AUTH "AUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw==\r\n"
#define TXSUB "MAIL FROM:<alice@local.test>\r\nRCPT TO:<bob@local.test>\r\n"
#define SMUGGLED                                                               \
	"MAIL FROM:<admin@local.test>\r\nRCPT TO:<alice@local.test>\r\n"      \
	"DATA\r\nFrom: admin@local.test\r\nSubject: smuggled\r\n\r\nx\r\n"
#define HEAD "From: a@example.org\r\nSubject: one\r\n\r\nbody"

/* A message as a client sends it by DATA: up to and with CRLF.CRLF. */
struct content_case {
	const char *name;
	bool submission; /* alice, authenticated, on 465; else mx */
	const char *data;
	size_t len;
	const char *reply; /* the expected final reply, its first 9 octets */
};

#define CASE(name, sub, bytes, reply)                                          \
	{name, sub, bytes, sizeof(bytes) - 1, reply}

static const struct content_case cases[] = {
	/* THREATS D-01: none ends the message; the whole one is refused. */
	CASE("eod LF.LF", false, HEAD "\n.\n" SMUGGLED ".\r\n", "550 5.5.2"),
	CASE("eod LF.CRLF", false, HEAD "\n.\r\n" SMUGGLED ".\r\n",
	     "550 5.5.2"),
	CASE("eod CRLF.LF", false, HEAD "\r\n.\n" SMUGGLED ".\r\n",
	     "550 5.5.2"),
	CASE("eod CR.CRLF", false, HEAD "\r.\r\n" SMUGGLED ".\r\n",
	     "550 5.5.2"),
	CASE("eod CRLF.CR", false, HEAD "\r\n.\r" SMUGGLED ".\r\n",
	     "550 5.5.2"),
	CASE("eod LF.CR", false, HEAD "\n.\r" SMUGGLED ".\r\n", "550 5.5.2"),
	CASE("eod CR.LF", false, HEAD "\r.\n" SMUGGLED ".\r\n", "550 5.5.2"),
	CASE("eod CR.CR", false, HEAD "\r.\r" SMUGGLED ".\r\n", "550 5.5.2"),
	CASE("eod CRLF NUL.CRLF", false, HEAD "\r\n\0.\r\n" SMUGGLED ".\r\n",
	     "550 5.6.0"),
	CASE("eod CRLF.CRCRLF", false, HEAD "\r\n.\r\r\n" SMUGGLED ".\r\n",
	     "550 5.5.2"),
	CASE("bare CR then LF", false, "Subject: x\r\r\n\r\nb\r\n.\r\n",
	     "550 5.5.2"),
	CASE("NUL in the body", false, "Subject: x\r\n\r\na\0b\r\n.\r\n",
	     "550 5.6.0"),
	/* A From: hidden behind a bare CR or LF: one line to a reader that
	   splits at CRLF only, two to one that splits anywhere. */
	CASE("From hidden after a bare CR", true,
	     "From: alice@local.test\r\nSubject: x\rFrom: ceo@local.test\r\n"
	     "\r\nbody\r\n.\r\n",
	     "550 5.5.2"),
	CASE("From hidden after a bare LF", true,
	     "From: alice@local.test\r\nSubject: x\nFrom: ceo@local.test\r\n"
	     "\r\nbody\r\n.\r\n",
	     "550 5.5.2"),
	CASE("From hidden in a From after a bare CR", true,
	     "From: alice@local.test\rFrom: ceo@local.test\r\n\r\nb\r\n.\r\n",
	     "550 5.5.2"),
	CASE("two From fields", true,
	     "From: alice@local.test\r\nFrom: ceo@local.test\r\n\r\nb\r\n"
	     ".\r\n",
	     "550 5.7.1"),
	CASE("From not owned", true, "From: ceo@local.test\r\n\r\nb\r\n.\r\n",
	     "550 5.7.1"),
	CASE("From owned", true,
	     "From: Alice <alice@local.test>\r\nSubject: ok\r\n\r\n"
	     "..dot\r\nbody\r\n.\r\n",
	     "250 2.0.0"),
	/* The hop count and the header size (test config: 3 and 1 KiB). */
	CASE("too many hops", false,
	     "Received: a\r\nReceived: b\r\nreceived: c\r\nRECEIVED: d\r\n\r\n"
	     "x\r\n.\r\n",
	     "554 5.4.6"),
	CASE("hops in the body do not count", false,
	     "Subject: x\r\n\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n"
	     "Received: d\r\n.\r\n",
	     "250 2.0.0"),
	CASE("header section too big", false,
	     "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "\r\n\t"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "\r\n\r\nbody\r\n.\r\n",
	     "552 5.3.4"),
	/* RFC 5321 4.4: the Return-Path is the delivering MTA's to add. */
	CASE("Return-Path dropped", false,
	     "Return-Path: <ceo@local.test>\r\nSubject: x\r\n\r\nb\r\n.\r\n",
	     "250 2.0.0"),
	CASE("Return-Path folded, any case, obsolete form", false,
	     "Subject: x\r\nreturn-PATH \t: <ceo@local.test>\r\n"
	     "\t(folded)\r\n  more\r\nX-Return-Path: kept\r\n"
	     "Return-Pathology: kept\r\nReturn-Path\r\n"
	     "Return-Path: <again@local.test>\r\n\r\n"
	     "Return-Path: <in@the.body>\r\n.\r\n",
	     "250 2.0.0"),
	CASE("Return-Path last in the header", true,
	     "From: alice@local.test\r\nReturn-Path: <x@y>\r\n"
	     " ceo@local.test\r\n\r\nb\r\n.\r\n",
	     "250 2.0.0"),
};

/* What a DATA reader stores for `d` (RFC 5321 4.5.2): a "." at the start
   of a line is dropped, CRLF "." CRLF ends it. A reference model. */
static size_t
unstuff(const char *d, size_t len, char *out)
{
	size_t n = 0;
	bool bol = true;

	for (size_t i = 0; i < len; i++) {
		if (bol && d[i] == '.') {
			if (i + 2 < len && d[i + 1] == '\r' &&
			    d[i + 2] == '\n')
				return n;
			bol = false;
			continue;
		}
		bol = d[i] == '\n' && n > 0 && out[n - 1] == '\r';
		out[n++] = d[i];
	}
	fail_msg("no end of data");
	return 0;
}

/* The last reply line of the session. */
static void
last_reply(const struct harness *h, char *buf, size_t size)
{
	const char *p = h->out, *last = h->out;

	while ((p = strstr(p, "\r\n")) != NULL && p[2] != '\0') {
		p += 2;
		last = p;
	}
	snprintf(buf, size, "%.*s", (int)strcspn(last, "\r"), last);
}

struct outcome {
	char reply[256];
	int commits;
	char body[4096];
};

static void
open_tx(struct harness *h, const struct content_case *c)
{
	if (c->submission) {
		h_start(h, ROLE_SUBMISSIONS);
		h_sends(h, EHLO, false);
		h_sends(h, AUTH, false);
		h_auth_done(h, SESSION_AUTH_OK);
		h_sends(h, TXSUB, false);
	} else {
		h_start(h, ROLE_MX);
		h_sends(h, EHLO, false);
		h_sends(h, TX, false);
	}
}

static void
close_tx(struct harness *h, struct outcome *o)
{
	last_reply(h, o->reply, sizeof(o->reply));
	o->commits = h->commits;
	o->body[0] = '\0';
	if (h->commits > 0)
		snprintf(o->body, sizeof(o->body), "%s", h_body(h));
	h_stop(h);
}

static void
by_data(const struct content_case *c, struct outcome *o)
{
	struct harness h;

	open_tx(&h, c);
	h_sends(&h, "DATA\r\n", false);
	h_send(&h, c->data, c->len, false);
	close_tx(&h, o);
}

/* Send `content` by BDAT in chunks cut at the offsets in cuts[]. */
static void
by_bdat(const struct content_case *c, const char *content, size_t len,
	const size_t *cuts, size_t n_cuts, struct outcome *o)
{
	struct harness h;
	size_t from = 0;

	open_tx(&h, c);
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t to = i < n_cuts ? cuts[i] : len;
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "BDAT %zu%s\r\n", to - from,
			 i == n_cuts ? " LAST" : "");
		h_sends(&h, cmd, false);
		h_send(&h, content + from, to - from, false);
		from = to;
	}
	close_tx(&h, o);
}

static void
same_outcome(const struct content_case *c, const struct outcome *want,
	     const struct outcome *got, const char *how)
{
	if (strcmp(want->reply, got->reply) != 0 ||
	    want->commits != got->commits ||
	    strcmp(want->body, got->body) != 0)
		fail_msg("%s, %s: \"%s\" (%d) \"%s\", by DATA: \"%s\" (%d) "
			 "\"%s\"",
			 c->name, how, got->reply, got->commits, got->body,
			 want->reply, want->commits, want->body);
}

static void
test_bdat_like_data(void **state)
{
	static char content[4096];
	static size_t cuts[4096];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct content_case *c = &cases[i];
		struct outcome want, got;
		size_t len = unstuff(c->data, c->len, content);
		char how[64];

		by_data(c, &want);
		if (strncmp(want.reply, c->reply, 9) != 0)
			fail_msg("%s by DATA: %s", c->name, want.reply);
		assert_int_equal(want.commits, c->reply[0] == '2' ? 1 : 0);
		by_bdat(c, content, len, NULL, 0, &got);
		same_outcome(c, &want, &got, "one chunk");
		for (size_t k = 1; k <= len; k++) {
			snprintf(how, sizeof(how), "split at %zu", k);
			by_bdat(c, content, len, &k, 1, &got);
			same_outcome(c, &want, &got, how);
		}
		for (size_t k = 0; k + 1 < len; k++)
			cuts[k] = k + 1;
		by_bdat(c, content, len, cuts, len - 1, &got);
		same_outcome(c, &want, &got, "one octet a chunk");
	}
}

static const struct content_case *
find_case(const char *name)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i];
	fail_msg("no case %s", name);
	return NULL;
}

/* What is stored of a Return-Path: nothing, folded lines included, and
   only in the header section. */
static void
test_return_path_dropped(void **state)
{
	struct outcome o;

	by_data(find_case("Return-Path dropped"), &o);
	assert_string_equal(o.body, "Subject: x\r\n\r\nb\r\n");
	by_data(find_case("Return-Path folded, any case, obsolete form"),
		&o);
	assert_string_equal(o.body, "Subject: x\r\nX-Return-Path: kept\r\n"
				    "Return-Pathology: kept\r\nReturn-Path\r\n"
				    "\r\nReturn-Path: <in@the.body>\r\n");
	by_data(find_case("Return-Path last in the header"), &o);
	assert_string_equal(o.body, "From: alice@local.test\r\n\r\nb\r\n");
}

/* A BDAT message that ends in a bare CR: no DATA can say it. */
static void
test_bdat_trailing_cr(void **state)
{
	struct harness h;
	char reply[256];

	h_start(&h, ROLE_MX);
	h_sends(&h, EHLO, false);
	h_sends(&h, TX, false);
	h_sends(&h, "BDAT 19 LAST\r\nSubject: x\r\n\r\nbody\r", false);
	last_reply(&h, reply, sizeof(reply));
	assert_memory_equal(reply, "550 5.5.2", 9);
	assert_int_equal(h.commits, 0);
	h_sends(&h, "NOOP\r\n", false);
	last_reply(&h, reply, sizeof(reply));
	assert_memory_equal(reply, "250 ", 4);
	h_stop(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bdat_like_data),
		cmocka_unit_test(test_return_path_dropped),
		cmocka_unit_test(test_bdat_trailing_cr),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
