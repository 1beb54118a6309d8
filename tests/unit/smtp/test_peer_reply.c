/*
 * test_peer_reply.c - the reply parser of postern's clients, the queue
 * process and the probe (src/smtp/peer_reply.c).
 *
 * Every case runs whole, byte by byte, and split in two at every offset
 * (each piece in an exactly-sized heap buffer, so ASan sees a read past
 * its end): all must give the same result and consume the same octets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/peer_reply.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

struct reply_case {
	const char *in;
	enum peer_reply_result result;
	unsigned code;
	const char *status;
	const char *text;
	unsigned n_lines;
	enum peer_reply_error error;
	size_t used; /* 0: all of `in` */
};

/* A complete reply, an incomplete one, an error. */
#define DONE(in, code, st, text, lines)                                        \
	{in, PEER_REPLY_DONE, code, st, text, lines, PEER_REPLY_OK, 0}
#define MORE(in) {in, PEER_REPLY_MORE, 0, "", "", 0, PEER_REPLY_OK, 0}
#define ERR(in, e) {in, PEER_REPLY_ERROR, 0, NULL, NULL, 0, e, 0}

static const struct reply_case cases[] = {
    DONE("250 2.0.0 Ok\r\n", 250, "2.0.0", "2.0.0 Ok", 1),
    DONE("220 mx.example.net ESMTP\r\n", 220, "", "mx.example.net ESMTP", 1),
    DONE("250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	 "250 8BITMIME\r\n",
	 250, "", "mx.example.net\nPIPELINING\nSIZE 10240000\n8BITMIME", 4),
    /* Text is optional (RFC 5321 4.2): "250" and "250-" are lines. */
    DONE("250\r\n", 250, "", "", 1),
    DONE("250-\r\n250 x\r\n", 250, "", "\nx", 2),
    /* Bare LF ends a line too; a CR inside a line is kept. */
    DONE("550 5.1.1 no\n", 550, "5.1.1", "5.1.1 no", 1),
    DONE("550 a\rb\r\n", 550, "", "a\rb", 1),
    DONE("550 a\r\r\n", 550, "", "a\r", 1),
    /* Enhanced status codes (RFC 3463): class must match, 1-3 digits. */
    DONE("451 4.3.0 try later\r\n", 451, "4.3.0", "4.3.0 try later", 1),
    DONE("550 5.123.456\r\n", 550, "5.123.456", "5.123.456", 1),
    DONE("550 4.1.1 wrong class\r\n", 550, "", "4.1.1 wrong class", 1),
    DONE("550 5.1234.1 x\r\n", 550, "", "5.1234.1 x", 1),
    DONE("550 5.1.1234 x\r\n", 550, "", "5.1.1234 x", 1),
    DONE("550 5.1.1x\r\n", 550, "", "5.1.1x", 1),
    DONE("550 5..1 x\r\n", 550, "", "5..1 x", 1),
    DONE("550 5.1\r\n", 550, "", "5.1", 1),
    DONE("550 5.1.\r\n", 550, "", "5.1.", 1),
    /* Only the first line's code counts. */
    DONE("550-first\r\n550 5.1.1 second\r\n", 550, "",
	 "first\n5.1.1 second", 2),
    /* Pipelined replies: one is taken, the rest stays. */
    {"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n", PEER_REPLY_DONE, 250, "2.1.0",
     "2.1.0 Ok", 1, PEER_REPLY_OK, 14},
    /* Incomplete. */
    MORE("250-a\r\n250 b"),
    MORE(""),
    MORE("25"),
    /* Errors. */
    ERR("250-a\r\n251 b\r\n", PEER_REPLY_CODE_MISMATCH),
    ERR("25\r\n", PEER_REPLY_SYNTAX),
    ERR("\r\n", PEER_REPLY_SYNTAX),
    ERR("150 x\r\n", PEER_REPLY_SYNTAX),
    ERR("650 x\r\n", PEER_REPLY_SYNTAX),
    ERR("260 x\r\n", PEER_REPLY_SYNTAX),
    ERR("25x x\r\n", PEER_REPLY_SYNTAX),
    ERR("250x\r\n", PEER_REPLY_SYNTAX),
    ERR("250\tx\r\n", PEER_REPLY_SYNTAX),
    ERR(" 250 x\r\n", PEER_REPLY_SYNTAX),
    ERR("HTTP/1.1 400\r\n", PEER_REPLY_SYNTAX),
    ERR("250-ok\r\nxyz\r\n", PEER_REPLY_SYNTAX),
};

/* An exactly-sized heap copy: nothing readable after the last octet. */
static char *
dup_exact(const char *s, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

/* Feed `in` in pieces ending at the offsets cuts[]; stop at a result. */
static enum peer_reply_result
feed_pieces(struct peer_reply_parser *p, const char *in, size_t len,
	    const size_t *cuts, size_t n_cuts, size_t *used_r)
{
	enum peer_reply_result r = PEER_REPLY_MORE;
	size_t from = 0;

	*used_r = 0;
	for (size_t k = 0; k <= n_cuts; k++) {
		size_t to = k < n_cuts ? cuts[k] : len, used;
		char *piece = dup_exact(in + from, to - from);

		r = peer_reply_feed(p, piece, to - from, &used);
		free(piece);
		assert_true(used <= to - from);
		*used_r += used;
		if (r != PEER_REPLY_MORE)
			return r;
		assert_int_equal(used, to - from);
		from = to;
	}
	return r;
}

static void
check_case(const struct reply_case *c, const size_t *cuts, size_t n_cuts)
{
	struct peer_reply_parser *p = malloc(sizeof(*p));
	size_t len = strlen(c->in), used;
	enum peer_reply_result r;

	assert_non_null(p);
	peer_reply_init(p);
	r = feed_pieces(p, c->in, len, cuts, n_cuts, &used);
	if (r != c->result)
		fail_msg("case %s: result %d, expected %d", c->in, r,
			 c->result);
	if (r == PEER_REPLY_ERROR) {
		assert_int_equal(p->error, c->error);
		/* An error sticks. */
		assert_int_equal(peer_reply_feed(p, "250 x\r\n", 7, &used),
				 PEER_REPLY_ERROR);
		assert_int_equal(used, 0);
	} else if (r == PEER_REPLY_DONE) {
		assert_int_equal(used, c->used ? c->used : len);
		assert_int_equal(p->reply.code, c->code);
		assert_string_equal(p->reply.status, c->status);
		assert_string_equal(p->reply.text, c->text);
		assert_int_equal(p->reply.text_len, strlen(c->text));
		assert_int_equal(p->reply.n_lines, c->n_lines);
		assert_false(p->reply.is_truncated);
	} else {
		assert_int_equal(used, len);
	}
	free(p);
}

static void
test_cases_whole(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		check_case(&cases[i], NULL, 0);
}

static void
test_cases_every_split(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		size_t len = strlen(cases[i].in);

		for (size_t k = 0; k <= len; k++)
			check_case(&cases[i], &k, 1);
	}
}

static void
test_cases_byte_by_byte(void **state)
{
	size_t cuts[256];

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		size_t len = strlen(cases[i].in);

		assert_true(len < N_ELEMENTS(cuts));
		for (size_t k = 0; k < len; k++)
			cuts[k] = k;
		check_case(&cases[i], cuts, len);
	}
}

/* Several pipelined replies in one buffer, split at every offset, give the
   same replies in order (RFC 2920). */
static void
test_pipelined_every_split(void **state)
{
	static const char in[] = "250 2.1.0 Ok\r\n250-a\r\n250 2.1.5 b\r\n"
				 "554 5.5.1 no valid recipients\r\n";
	static const unsigned codes[] = {250, 250, 554};
	size_t len = sizeof(in) - 1;

	for (size_t k = 0; k <= len; k++) {
		struct peer_reply_parser p;
		size_t n = 0, off = 0, used, piece_end = k;

		peer_reply_init(&p);
		while (off < len) {
			size_t end = off < piece_end ? piece_end : len;
			enum peer_reply_result r =
			    peer_reply_feed(&p, in + off, end - off, &used);

			off += used;
			if (r == PEER_REPLY_DONE) {
				assert_true(n < 3);
				assert_int_equal(p.reply.code, codes[n]);
				n++;
				peer_reply_init(&p);
			} else {
				assert_int_equal(r, PEER_REPLY_MORE);
			}
		}
		assert_int_equal(n, 3);
		assert_string_equal(p.reply.text, "");
	}
}

static void
test_line_limit(void **state)
{
	size_t len = PEER_REPLY_LINE_MAX + 2;
	char *in = malloc(len + 2);
	struct peer_reply_parser *p = malloc(sizeof(*p));
	size_t used;

	assert_non_null(in);
	assert_non_null(p);
	/* Exactly PEER_REPLY_LINE_MAX octets, then CRLF: accepted. */
	memset(in, 'x', len);
	memcpy(in, "250 ", 4);
	memcpy(in + PEER_REPLY_LINE_MAX, "\r\n", 2);
	peer_reply_init(p);
	assert_int_equal(peer_reply_feed(p, in, len, &used),
			 PEER_REPLY_DONE);
	assert_int_equal(used, len);
	assert_int_equal(p->reply.text_len, PEER_REPLY_LINE_MAX - 4);
	/* One more octet: refused, at that octet. */
	memset(in, 'x', len + 2);
	memcpy(in, "250 ", 4);
	memcpy(in + PEER_REPLY_LINE_MAX + 1, "\r\n", 2);
	peer_reply_init(p);
	assert_int_equal(peer_reply_feed(p, in, len + 1, &used),
			 PEER_REPLY_ERROR);
	assert_int_equal(p->error, PEER_REPLY_LINE_TOO_LONG);
	assert_int_equal(used, PEER_REPLY_LINE_MAX + 1);
	/* A CR in the last place counts as text when no LF follows it. */
	memset(in, 'x', len);
	memcpy(in, "250 ", 4);
	in[PEER_REPLY_LINE_MAX] = '\r';
	peer_reply_init(p);
	assert_int_equal(peer_reply_feed(p, in, PEER_REPLY_LINE_MAX + 2,
					   &used),
			 PEER_REPLY_ERROR);
	assert_int_equal(p->error, PEER_REPLY_LINE_TOO_LONG);
	free(in);
	free(p);
}

static void
test_line_count_and_text_limit(void **state)
{
	struct peer_reply_parser *p = malloc(sizeof(*p));
	char line[200];
	size_t used, total = 0;
	int n;

	assert_non_null(p);
	peer_reply_init(p);
	/* 99 continuation lines of 150 octets: text is cut, not refused. */
	for (unsigned i = 0; i + 1 < PEER_REPLY_LINES_MAX; i++) {
		n = snprintf(line, sizeof(line), "250-%0146u\r\n", i);
		assert_true(n > 0 && (size_t)n < sizeof(line));
		assert_int_equal(peer_reply_feed(p, line, (size_t)n, &used),
				 PEER_REPLY_MORE);
		total += 146 + (i > 0);
	}
	assert_int_equal(peer_reply_feed(p, "250 end\r\n", 9, &used),
			 PEER_REPLY_DONE);
	assert_int_equal(p->reply.n_lines, PEER_REPLY_LINES_MAX);
	assert_true(total > PEER_REPLY_TEXT_MAX);
	assert_true(p->reply.is_truncated);
	assert_int_equal(p->reply.text_len, PEER_REPLY_TEXT_MAX);
	assert_int_equal(strlen(p->reply.text), PEER_REPLY_TEXT_MAX);
	/* One line more is refused. */
	peer_reply_init(p);
	for (unsigned i = 0; i < PEER_REPLY_LINES_MAX; i++)
		assert_int_equal(peer_reply_feed(p, "250-x\r\n", 7, &used),
				 PEER_REPLY_MORE);
	assert_int_equal(peer_reply_feed(p, "250 x\r\n", 7, &used),
			 PEER_REPLY_ERROR);
	assert_int_equal(p->error, PEER_REPLY_TOO_MANY_LINES);
	free(p);
}

static void
test_nul_refused(void **state)
{
	struct peer_reply_parser p;
	size_t used;

	peer_reply_init(&p);
	assert_int_equal(peer_reply_feed(&p, "250 a\0b\r\n", 9, &used),
			 PEER_REPLY_ERROR);
	assert_int_equal(p.error, PEER_REPLY_SYNTAX);
	assert_int_equal(used, 6);
}

static void
test_summary(void **state)
{
	struct peer_reply_parser p;
	char buf[64];
	size_t used;
	static const char in[] = "550-5.1.1 no\x01such\r\n550 user \xc3\xa9\r\n";

	peer_reply_init(&p);
	assert_int_equal(peer_reply_feed(&p, in, sizeof(in) - 1, &used),
			 PEER_REPLY_DONE);
	assert_int_equal(peer_reply_summary(&p.reply, buf, sizeof(buf)),
			 strlen("550 5.1.1 no?such user ??"));
	assert_string_equal(buf, "550 5.1.1 no?such user ??");
	assert_int_equal(peer_reply_summary(&p.reply, buf, 8), 7);
	assert_string_equal(buf, "550 5.1");
	assert_int_equal(peer_reply_summary(&p.reply, buf, 2), 1);
	assert_string_equal(buf, "5");
	assert_int_equal(peer_reply_summary(&p.reply, buf, 0), 0);
	peer_reply_init(&p);
	assert_int_equal(peer_reply_feed(&p, "221\r\n", 5, &used),
			 PEER_REPLY_DONE);
	peer_reply_summary(&p.reply, buf, sizeof(buf));
	assert_string_equal(buf, "221");
	assert_string_equal(peer_reply_error_name(PEER_REPLY_SYNTAX),
			    "syntax");
}

/* A line ended by LF alone is noted (the probe reports it), split
   anywhere: the CR of CRLF may arrive in one read and its LF in the next. */
static void
test_bare_lf_noted(void **state)
{
	static const struct {
		const char *in;
		bool bare;
	} c[] = {
	    {"250-a\r\n250 b\r\n", false},
	    {"250-a\n250 b\r\n", true},
	    {"250-a\r\n250 b\n", true},
	    {"250 a\rb\r\n", false},
	};

	for (size_t i = 0; i < N_ELEMENTS(c); i++) {
		size_t len = strlen(c[i].in);

		for (size_t cut = 0; cut <= len; cut++) {
			struct peer_reply_parser p;
			size_t used, used2 = 0;
			enum peer_reply_result r;

			peer_reply_init(&p);
			r = peer_reply_feed(&p, c[i].in, cut, &used);
			if (r == PEER_REPLY_MORE)
				r = peer_reply_feed(&p, c[i].in + cut,
						    len - cut, &used2);
			assert_int_equal(r, PEER_REPLY_DONE);
			assert_int_equal(p.reply.has_bare_lf, c[i].bare);
		}
	}
}

/* Each line of an EHLO reply, as the probe and the client read it. */
static void
test_line_access(void **state)
{
	static const char in[] = "250-mx\r\n250-AUTH PLAIN\r\n250 SIZE 10\r\n";
	struct peer_reply_parser p;
	const char *l;
	size_t used, len;

	peer_reply_init(&p);
	assert_int_equal(peer_reply_feed(&p, in, sizeof(in) - 1, &used),
			 PEER_REPLY_DONE);
	assert_true(peer_reply_line(&p.reply, 0, &l, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(l, "mx", 2);
	assert_true(peer_reply_line(&p.reply, 1, &l, &len));
	assert_int_equal(len, 10);
	assert_memory_equal(l, "AUTH PLAIN", 10);
	assert_true(peer_reply_line(&p.reply, 2, &l, &len));
	assert_int_equal(len, 7);
	assert_memory_equal(l, "SIZE 10", 7);
	assert_false(peer_reply_line(&p.reply, 3, &l, &len));
	assert_string_equal(peer_reply_error_text(PEER_REPLY_CODE_MISMATCH),
			    "reply lines with different codes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases_whole),
		cmocka_unit_test(test_cases_every_split),
		cmocka_unit_test(test_cases_byte_by_byte),
		cmocka_unit_test(test_pipelined_every_split),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_line_count_and_text_limit),
		cmocka_unit_test(test_nul_refused),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_bare_lf_noted),
		cmocka_unit_test(test_line_access),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
