/*
 * fuzz_probe_reply.c - libFuzzer harness for the SMTP reply reader of
 * `postern probe` (src/probe/probe_reply.c): the server's bytes are
 * hostile input.
 *
 * Input: byte 0 picks the size of the pieces the rest is fed in (1 to
 * 256 octets); the rest is what a server sends.
 *
 * Oracles, besides the sanitizers:
 *  - the replies and the error are the same whether the input is fed
 *    whole, in pieces of that size, or one octet at a time;
 *  - each reply has a code 200..599, 1 to PROBE_REPLY_LINES_MAX lines,
 *    text without NUL whose LFs are exactly the line separators, and an
 *    enhanced code that is empty or "d.d+.d+";
 *  - the consumed counts never exceed what was fed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: oracle failed: %s\n",          \
				__FILE__, __LINE__, #x);                       \
			abort();                                               \
		}                                                              \
	} while (0)

#define MAX_KEEP 64

struct result {
	size_t n; /* replies seen (all counted, MAX_KEEP kept) */
	int code[MAX_KEEP];
	size_t lines[MAX_KEEP], text_len[MAX_KEEP];
	uint32_t text_sum[MAX_KEEP];
	const char *error;
};

static void
check_reply(const struct probe_reply *r)
{
	size_t lf = 0;

	CHECK(r->code >= 200 && r->code <= 599);
	CHECK(r->n_lines >= 1 && r->n_lines <= PROBE_REPLY_LINES_MAX);
	CHECK(r->text_len < sizeof(r->text));
	CHECK(r->text[r->text_len] == '\0');
	CHECK(strlen(r->text) == r->text_len);
	for (size_t i = 0; i < r->text_len; i++)
		lf += r->text[i] == '\n';
	CHECK(lf == r->n_lines - 1);
	if (r->enhanced[0] != '\0') {
		size_t dots = 0, len = strlen(r->enhanced);

		CHECK(len >= 5 && len < sizeof(r->enhanced));
		CHECK(r->enhanced[0] == '2' || r->enhanced[0] == '4' ||
		      r->enhanced[0] == '5');
		for (size_t i = 0; i < len; i++) {
			CHECK(
			    (r->enhanced[i] >= '0' && r->enhanced[i] <= '9') ||
			    r->enhanced[i] == '.');
			dots += r->enhanced[i] == '.';
		}
		CHECK(dots == 2);
		CHECK(r->enhanced[0] == r->text[0]);
	}
}

static void
feed(const uint8_t *data, size_t size, size_t step, struct result *res)
{
	struct probe_reply_reader rd;
	struct probe_reply rep;
	size_t pos = 0;

	memset(res, 0, sizeof(*res));
	probe_reply_reader_init(&rd);
	while (pos < size) {
		size_t piece = size - pos < step ? size - pos : step;
		uint8_t *copy = malloc(piece);
		size_t off = 0;

		CHECK(copy != NULL);
		memcpy(copy, data + pos, piece);
		while (off < piece) {
			const char *why = NULL;
			size_t used = 0;
			enum probe_reply_status st = probe_reply_feed(
			    &rd, copy + off, piece - off, &used, &rep, &why);

			CHECK(used <= piece - off);
			off += used;
			if (st == PROBE_REPLY_ERROR) {
				CHECK(why != NULL);
				res->error = why;
				free(copy);
				return;
			}
			if (st == PROBE_REPLY_MORE) {
				CHECK(off == piece);
				break;
			}
			CHECK(used > 0);
			check_reply(&rep);
			if (res->n < MAX_KEEP) {
				uint32_t sum = 0;

				for (size_t i = 0; i < rep.text_len; i++)
					sum = sum * 31 + (uint8_t)rep.text[i];
				res->code[res->n] = rep.code;
				res->lines[res->n] = rep.n_lines;
				res->text_len[res->n] = rep.text_len;
				res->text_sum[res->n] = sum;
			}
			res->n++;
		}
		free(copy);
		pos += piece;
	}
}

static void
same(const struct result *a, const struct result *b)
{
	size_t keep = a->n < MAX_KEEP ? a->n : MAX_KEEP;

	CHECK(a->n == b->n);
	CHECK((a->error == NULL) == (b->error == NULL));
	if (a->error != NULL)
		CHECK(strcmp(a->error, b->error) == 0);
	for (size_t i = 0; i < keep; i++) {
		CHECK(a->code[i] == b->code[i]);
		CHECK(a->lines[i] == b->lines[i]);
		CHECK(a->text_len[i] == b->text_len[i]);
		CHECK(a->text_sum[i] == b->text_sum[i]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct result whole, pieces, bytes;
	size_t step;

	if (size < 1)
		return 0;
	step = (size_t)data[0] + 1;
	data++;
	size--;
	feed(data, size, size > 0 ? size : 1, &whole);
	feed(data, size, step, &pieces);
	same(&whole, &pieces);
	if (size <= 4096) {
		feed(data, size, 1, &bytes);
		same(&whole, &bytes);
	}
	return 0;
}
