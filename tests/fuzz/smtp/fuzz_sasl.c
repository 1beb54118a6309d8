/*
 * fuzz_sasl.c - libFuzzer harness for src/smtp/sasl.c (THREATS 12, #5): the
 * strict base64 decoder, the PLAIN splitter and the LOGIN state machine.
 *
 * The input is used three ways:
 *  1. split at '\n' into lines: the first goes to sasl_start(), the next
 *     to sasl_step() while the exchange continues, and after an exchange
 *     ends the next line starts a new one. Each line is an exactly-sized
 *     heap copy, so ASan sees any read past its end.
 *  2. decoded whole with sasl_base64_decode() into a buffer of exactly
 *     3*ceil(n/4) octets (Exim CVE-2018-6789);
 *  3. encoded as raw octets and decoded back.
 *
 * Oracles, besides the sanitizers:
 *  - SASL_DONE: user and password are 1 to 255 octets, NUL-terminated,
 *    with no NUL, CR or LF inside;
 *  - SASL_CONTINUE: the challenge is one of the three we ever send;
 *  - any other result leaves the struct all zero (credentials wiped);
 *  - a decoded length is at most 3*ceil(n/4), fits the buffer exactly
 *    (one octet less is refused), and encoding the result gives back the
 *    very input (so nothing non-canonical is accepted);
 *  - decode(encode(x)) == x.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/sasl.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *
xmalloc(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

static void
check_field(const char *p, size_t len)
{
	size_t i;

	CHECK(len >= 1 && len <= SASL_FIELD_MAX);
	CHECK(p[len] == '\0');
	for (i = 0; i < len; i++)
		CHECK(p[i] != '\0' && p[i] != '\r' && p[i] != '\n');
}

static void
check_result(const struct sasl *s, enum sasl_result r)
{
	static const struct sasl zero;
	const char *c;

	switch (r) {
	case SASL_DONE:
		CHECK(s->mech == SASL_MECH_PLAIN || s->mech == SASL_MECH_LOGIN);
		check_field(s->user, s->user_len);
		check_field(s->pass, s->pass_len);
		break;
	case SASL_CONTINUE:
		CHECK(s->mech == SASL_MECH_PLAIN || s->mech == SASL_MECH_LOGIN);
		c = sasl_challenge(s);
		CHECK(strcmp(c, "") == 0 || strcmp(c, "VXNlcm5hbWU6") == 0 ||
		      strcmp(c, "UGFzc3dvcmQ6") == 0);
		break;
	default: {
		/* Wiped, but for the user name of a malformed message. */
		struct sasl copy = *s;

		CHECK(r <= SASL_SYNTAX);
		CHECK(r == SASL_BAD_MESSAGE || s->bad_user_len == 0);
		CHECK(s->bad_user_len <= SASL_FIELD_MAX);
		memset(copy.bad_user, 0, sizeof(copy.bad_user));
		copy.bad_user_len = 0;
		CHECK(memcmp(&copy, &zero, sizeof(zero)) == 0);
		break;
	}
	}
}

/* Feed the input line by line through the SASL state machine. */
static void
run_lines(const uint8_t *data, size_t size)
{
	struct sasl s;
	enum sasl_result r = SASL_DONE;
	size_t pos = 0, len;
	const uint8_t *nl;
	char *line;

	sasl_reset(&s);
	while (pos <= size) {
		nl = memchr(data + pos, '\n', size - pos);
		len = nl != NULL ? (size_t)(nl - (data + pos)) : size - pos;
		line = xmalloc(len);
		memcpy(line, data + pos, len);
		if (r == SASL_CONTINUE)
			r = sasl_step(&s, line, len);
		else
			r = sasl_start(&s, line, len);
		free(line);
		check_result(&s, r);
		if (nl == NULL)
			break;
		pos += len + 1;
	}
	sasl_reset(&s);
}

/* Decode the whole input into an exactly-sized buffer. */
static void
run_decode(const uint8_t *data, size_t size)
{
	size_t cap = 3 * ((size + 3) / 4);
	char *in = xmalloc(size), *enc;
	unsigned char *out = xmalloc(cap);
	long n;

	memcpy(in, data, size);
	n = sasl_base64_decode(in, size, out, cap);
	CHECK(n >= -1 && (n < 0 || (size_t)n <= cap));
	if (n >= 0) {
		/* Canonical: re-encoding yields exactly the input. */
		enc = xmalloc(size + 1);
		CHECK(sasl_base64_encode(out, (size_t)n, enc, size + 1) ==
		      (long)size);
		CHECK(memcmp(enc, data, size) == 0);
		free(enc);
		if (n > 0)
			CHECK(sasl_base64_decode(in, size, out,
						 (size_t)n - 1) == -1);
	}
	free(in);
	free(out);
}

/* decode(encode(x)) == x for the input as raw octets. */
static void
run_round_trip(const uint8_t *data, size_t size)
{
	size_t elen = (size + 2) / 3 * 4;
	char *enc = xmalloc(elen + 1), *in;
	unsigned char *out = xmalloc(size);

	CHECK(sasl_base64_encode(data, size, enc, elen + 1) == (long)elen);
	CHECK(strlen(enc) == elen);
	in = xmalloc(elen);
	memcpy(in, enc, elen);
	CHECK(sasl_base64_decode(in, elen, out, size) == (long)size);
	CHECK(memcmp(out, data, size) == 0);
	free(in);
	free(enc);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_lines(data, size);
	run_decode(data, size);
	run_round_trip(data, size);
	return 0;
}
