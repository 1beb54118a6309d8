/*
 * test_probe_reply.c - the resumable SMTP reply reader of `postern probe`
 * (src/probe/probe_reply.c). Every case runs on the whole input, byte by
 * byte, and split at every position into two pieces: the replies must be
 * the same each time (the reader keeps its position, STYLE.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probe/probe_reply.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_REPLIES 8

struct outcome {
	size_t n;
	struct probe_reply r[MAX_REPLIES];
	const char *error; /* NULL when no error */
	size_t left;	   /* octets never consumed (after the last reply) */
};

/* Feed `in` in pieces of `step` octets (0: first `split` then the rest). */
static void
run(const char *in, size_t len, size_t step, size_t split, struct outcome *o)
{
	struct probe_reply_reader rd;
	size_t pos = 0;

	memset(o, 0, sizeof(*o));
	probe_reply_reader_init(&rd);
	while (pos < len) {
		size_t piece =
		    step > 0 ? step : (pos < split ? split : len - pos);
		unsigned char *copy;
		size_t off = 0;

		if (piece > len - pos)
			piece = len - pos;
		/* an exactly-sized heap copy: ASan sees any read past it */
		copy = malloc(piece);
		assert_non_null(copy);
		memcpy(copy, in + pos, piece);
		while (off < piece) {
			const char *why = NULL;
			size_t used = 0;
			struct probe_reply rep;
			enum probe_reply_status st = probe_reply_feed(
			    &rd, copy + off, piece - off, &used, &rep, &why);

			assert_true(used <= piece - off);
			off += used;
			if (st == PROBE_REPLY_ERROR) {
				assert_non_null(why);
				o->error = why;
				free(copy);
				return;
			}
			if (st == PROBE_REPLY_MORE) {
				assert_int_equal(off, piece);
				break;
			}
			assert_true(o->n < MAX_REPLIES);
			o->r[o->n++] = rep;
		}
		free(copy);
		pos += piece;
	}
	o->left = rd.line_len;
}

static void
same(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->n, b->n);
	assert_true((a->error == NULL) == (b->error == NULL));
	if (a->error != NULL)
		assert_string_equal(a->error, b->error);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->r[i].code, b->r[i].code);
		assert_int_equal(a->r[i].n_lines, b->r[i].n_lines);
		assert_int_equal(a->r[i].text_len, b->r[i].text_len);
		assert_memory_equal(a->r[i].text, b->r[i].text,
				    a->r[i].text_len + 1);
		assert_string_equal(a->r[i].enhanced, b->r[i].enhanced);
		assert_int_equal(a->r[i].bare_lf, b->r[i].bare_lf);
	}
}

/* Whole, byte by byte, and every two-piece split give the same. */
static void
run_all(const char *in, size_t len, struct outcome *whole)
{
	struct outcome other;

	run(in, len, len > 0 ? len : 1, 0, whole);
	run(in, len, 1, 0, &other);
	same(whole, &other);
	for (size_t split = 1; split < len; split++) {
		run(in, len, 0, split, &other);
		same(whole, &other);
	}
}

struct good_case {
	const char *in;
	int code;
	const char *enhanced;
	size_t n_lines;
	const char *text;
	int bare_lf;
};

static const struct good_case good[] = {
    {"220 mx.example.com ESMTP\r\n", 220, "", 1, "mx.example.com ESMTP", 0},
    {"250 2.1.0 Ok\r\n", 250, "2.1.0", 1, "2.1.0 Ok", 0},
    {"250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 250, "", 3,
     "mx.example.com\nPIPELINING\n8BITMIME", 0},
    {"250\r\n", 250, "", 1, "", 0},
    {"250 \r\n", 250, "", 1, "", 0},
    {"554 5.7.1 <x@example.net>: Relay access denied\r\n", 554, "5.7.1", 1,
     "5.7.1 <x@example.net>: Relay access denied", 0},
    /* A lone LF ends a line too, and is noted. */
    {"220 bare\n", 220, "", 1, "bare", 1},
    {"250-a\r\n250 b\n", 250, "", 2, "a\nb", 1},
    /* A CR inside a line stays in the text. */
    {"250 a\rb\r\n", 250, "", 1, "a\rb", 0},
    /* Not enhanced codes: class 3, too many digits, no space after. */
    {"354 3.0.0 go\r\n", 354, "", 1, "3.0.0 go", 0},
    {"550 5.1234.1 x\r\n", 550, "", 1, "5.1234.1 x", 0},
    {"550 5.1.1x y\r\n", 550, "", 1, "5.1.1x y", 0},
    {"421 4.7.0\r\n", 421, "4.7.0", 1, "4.7.0", 0},
    /* Hostile text is kept as received (escaping is the printer's). */
    {"220 \x1b[31m\"quote\\\r\n", 220, "", 1, "\x1b[31m\"quote\\", 0},
};

static void
test_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(good); i++) {
		struct outcome o;

		run_all(good[i].in, strlen(good[i].in), &o);
		assert_null(o.error);
		assert_int_equal(o.n, 1);
		assert_int_equal(o.r[0].code, good[i].code);
		assert_string_equal(o.r[0].enhanced, good[i].enhanced);
		assert_int_equal(o.r[0].n_lines, good[i].n_lines);
		assert_string_equal(o.r[0].text, good[i].text);
		assert_int_equal(o.r[0].text_len, strlen(good[i].text));
		assert_int_equal(o.r[0].bare_lf, good[i].bare_lf);
		assert_int_equal(o.left, 0);
	}
}

struct bad_case {
	const char *in;
	size_t len;
	const char *error;
};

#define BAD(s, e)                                                              \
	{                                                                      \
		s, sizeof(s) - 1, e                                            \
	}

static const struct bad_case bad[] = {
    BAD("hello\r\n", "reply line does not start with a reply code"),
    BAD("25\r\n", "reply line does not start with a reply code"),
    BAD("\r\n", "reply line does not start with a reply code"),
    BAD("150 x\r\n", "reply line does not start with a reply code"),
    BAD("650 x\r\n", "reply line does not start with a reply code"),
    BAD("2a0 x\r\n", "reply line does not start with a reply code"),
    BAD("250x\r\n", "reply code not followed by a space or '-'"),
    BAD("250-a\r\n251 b\r\n", "reply lines with different codes"),
    BAD("250 a\0b\r\n", "NUL in a reply"),
};

static void
test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		struct outcome o;

		run_all(bad[i].in, bad[i].len, &o);
		assert_non_null(o.error);
		assert_string_equal(o.error, bad[i].error);
		assert_int_equal(o.n, 0);
	}
}

/* Pipelined replies in one buffer come out one by one, in order. */
static void
test_several(void **state)
{
	static const char in[] = "250 2.0.0 Ok\r\n250-x\r\n250 y\r\n501 5.5.4 "
				 "bad\r\n250 z\r\n221 bye";
	struct outcome o;

	(void)state;
	run_all(in, sizeof(in) - 1, &o);
	assert_null(o.error);
	assert_int_equal(o.n, 4);
	assert_int_equal(o.r[0].code, 250);
	assert_int_equal(o.r[1].n_lines, 2);
	assert_int_equal(o.r[2].code, 501);
	assert_string_equal(o.r[2].enhanced, "5.5.4");
	assert_string_equal(o.r[3].text, "z");
	/* "221 bye" without its line end waits in the reader. */
	assert_int_equal(o.left, 7);
}

/* A malformed line after good replies: those come out, then the error,
   and the reader stays dead. */
static void
test_dead(void **state)
{
	static const char in[] = "250 ok\r\nxyz\r\n250 ok\r\n";
	struct probe_reply_reader rd;
	struct probe_reply r;
	const char *why;
	size_t used;
	struct outcome o;

	(void)state;
	run_all(in, sizeof(in) - 1, &o);
	assert_int_equal(o.n, 1);
	assert_non_null(o.error);
	probe_reply_reader_init(&rd);
	assert_int_equal(probe_reply_feed(&rd, (const unsigned char *)"x\r\n",
					  3, &used, &r, &why),
			 PROBE_REPLY_ERROR);
	assert_int_equal(probe_reply_feed(&rd,
					  (const unsigned char *)"250 a\r\n", 7,
					  &used, &r, &why),
			 PROBE_REPLY_ERROR);
	assert_int_equal(used, 0);
	assert_non_null(why);
}

/* The limits: a line of PROBE_REPLY_LINE_MAX octets passes, one more
   fails; PROBE_REPLY_LINES_MAX lines pass, one more fails; the text is
   bounded too. */
static void
test_limits(void **state)
{
	size_t cap =
	    (PROBE_REPLY_LINES_MAX + 2) * 64 + PROBE_REPLY_LINE_MAX + 8;
	char *in = malloc(cap);
	size_t n = 0;
	struct outcome o;

	(void)state;
	assert_non_null(in);
	memcpy(in, "250 ", 4);
	memset(in + 4, 'a', PROBE_REPLY_LINE_MAX - 4);
	memcpy(in + PROBE_REPLY_LINE_MAX, "\r\n", 2);
	run(in, PROBE_REPLY_LINE_MAX + 2, PROBE_REPLY_LINE_MAX + 2, 0, &o);
	assert_null(o.error);
	assert_int_equal(o.r[0].text_len, PROBE_REPLY_LINE_MAX - 4);
	memcpy(in, "250 ", 4);
	memset(in + 4, 'a', PROBE_REPLY_LINE_MAX - 3);
	memcpy(in + PROBE_REPLY_LINE_MAX + 1, "\r\n", 2);
	run(in, PROBE_REPLY_LINE_MAX + 3, 1, 0, &o);
	assert_non_null(o.error);
	assert_string_equal(o.error, "reply line too long");

	for (size_t i = 0; i < PROBE_REPLY_LINES_MAX; i++) {
		memcpy(in + n, "250-0123456789\r\n", 16);
		n += 16;
	}
	in[n - 13] = ' '; /* the last line ends the reply */
	run(in, n, 7, 0, &o);
	assert_null(o.error);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.r[0].n_lines, PROBE_REPLY_LINES_MAX);
	in[n - 13] = '-';
	memcpy(in + n, "250 x\r\n", 7);
	run(in, n + 7, 5, 0, &o);
	assert_non_null(o.error);
	assert_string_equal(o.error, "reply of too many lines");

	/* 16 lines of 2000 octets: over the 16 KiB of text. */
	n = 0;
	free(in);
	in = malloc(16 * 2010);
	assert_non_null(in);
	for (size_t i = 0; i < 16; i++) {
		memcpy(in + n, "250-", 4);
		memset(in + n + 4, 'b', 2000);
		memcpy(in + n + 2004, "\r\n", 2);
		n += 2006;
	}
	run(in, n, 1000, 0, &o);
	assert_non_null(o.error);
	assert_string_equal(o.error, "reply text too long");
	free(in);
}

static void
test_line_access(void **state)
{
	static const char in[] = "250-mx\r\n250-AUTH PLAIN\r\n250 SIZE 10\r\n";
	struct outcome o;
	const char *l;
	size_t len;

	(void)state;
	run_all(in, sizeof(in) - 1, &o);
	assert_true(probe_reply_line(&o.r[0], 0, &l, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(l, "mx", 2);
	assert_true(probe_reply_line(&o.r[0], 2, &l, &len));
	assert_int_equal(len, 7);
	assert_memory_equal(l, "SIZE 10", 7);
	assert_false(probe_reply_line(&o.r[0], 3, &l, &len));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_several), cmocka_unit_test(test_dead),
	    cmocka_unit_test(test_limits),  cmocka_unit_test(test_line_access),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
