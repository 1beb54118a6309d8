/*
 * fuzz_peer_reply.c - libFuzzer harness for the reply parser of every
 * client (src/smtp/peer_reply.c): what a hostile server sends us.
 *
 * Input: byte 0 picks a split offset, the rest is what the server sends
 * (any number of pipelined replies). Oracles, besides the sanitizers:
 *  - the replies and the error are the same whole, split in two at the
 *    chosen offset, and byte by byte (RFC 2920: any split, same replies);
 *  - a reply's code is 200..559, its line count within the limit, its
 *    text within the limit and NUL-free, its status well formed with the
 *    class of the code; a summary is printable ASCII.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/peer_reply.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REPLIES 64

struct outcome {
	unsigned n;
	unsigned codes[MAX_REPLIES];
	size_t text_lens[MAX_REPLIES];
	uint32_t text_hash[MAX_REPLIES];
	enum peer_reply_error error;
};

static uint32_t
hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void
check_reply(const struct peer_reply *r)
{
	char sum[600];
	size_t n;

	CHECK(r->code >= 200 && r->code <= 559);
	CHECK(r->n_lines >= 1 && r->n_lines <= PEER_REPLY_LINES_MAX);
	CHECK(r->text_len <= PEER_REPLY_TEXT_MAX);
	CHECK(strlen(r->text) == r->text_len);
	if (r->status[0] != '\0') {
		size_t len = strlen(r->status);

		CHECK(len >= 5 && len <= 9);
		CHECK(r->status[0] == (char)('0' + r->code / 100));
		CHECK(strncmp(r->text, r->status, len) == 0);
	}
	n = peer_reply_summary(r, sum, sizeof(sum));
	CHECK(n < sizeof(sum) && strlen(sum) == n && n >= 3);
	for (size_t i = 0; i < n; i++)
		CHECK(sum[i] >= 0x20 && sum[i] < 0x7f);
}

/* Feed `data` in pieces of at most `step` octets (0: the first piece
   ends at `cut`, then the rest). */
static void
run(const uint8_t *data, size_t size, size_t cut, size_t step,
    struct outcome *o)
{
	struct peer_reply_parser *p = malloc(sizeof(*p));
	size_t off = 0;

	CHECK(p != NULL);
	memset(o, 0, sizeof(*o));
	peer_reply_init(p);
	while (off < size) {
		size_t end = step ? off + step : (off < cut ? cut : size);
		size_t used;
		enum peer_reply_result r;

		if (end > size)
			end = size;
		r = peer_reply_feed(p, (const char *)data + off, end - off,
				      &used);
		CHECK(used <= end - off);
		off += used;
		if (r == PEER_REPLY_ERROR) {
			o->error = p->error;
			CHECK(o->error != PEER_REPLY_OK);
			break;
		}
		if (r == PEER_REPLY_MORE) {
			CHECK(off == end);
			continue;
		}
		check_reply(&p->reply);
		if (o->n < MAX_REPLIES) {
			o->codes[o->n] = p->reply.code;
			o->text_lens[o->n] = p->reply.text_len;
			o->text_hash[o->n] =
			    hash(p->reply.text, p->reply.text_len);
		}
		o->n++;
		peer_reply_init(p);
	}
	free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, split, bytes;
	size_t cut;

	if (size < 1)
		return 0;
	cut = size > 1 ? data[0] % size : 0;
	data++;
	size--;
	run(data, size, size, 0, &whole);
	run(data, size, cut, 0, &split);
	run(data, size, 0, 1, &bytes);
	CHECK(memcmp(&whole, &split, sizeof(whole)) == 0);
	CHECK(memcmp(&whole, &bytes, sizeof(whole)) == 0);
	return 0;
}
