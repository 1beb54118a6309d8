/*
 * fuzz_client.c - libFuzzer harness for the SMTP client engine
 * (src/outbound/client.c, client_tx.c) against a hostile server.
 *
 * Input: byte 0 picks the TLS mode and whether credentials are set, byte 1
 * how the server's bytes are cut into reads; the rest is everything the
 * server says. The harness plays the queue: it starts a transaction of
 * three recipients whenever the engine is ready (at most three times),
 * feeds a body with lines that need dot-stuffing, says the TLS handshake
 * worked, takes results, says QUIT at the end.
 *
 * Oracles, besides the sanitizers:
 *  - AUTH never goes out before TLS (credentials in clear text);
 *  - at CLIENT_EV_TX_DONE every recipient has a result, with a status of
 *    the right class and a printable, NUL-terminated text;
 *  - the engine never sends a line with a bare CR or LF outside the body.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/client.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const rcpts[] = {"a@example.net", "b@example.net",
				    "c\xc3\xa9@example.net"};

static void
check_result(const struct client_result *r)
{
	size_t n;

	CHECK(r != NULL);
	CHECK(r->status <= CLIENT_PERM);
	CHECK(r->stage < CLIENT_STAGE_COUNT);
	n = strlen(r->text);
	CHECK(n < CLIENT_TEXT_MAX);
	for (size_t i = 0; i < n; i++)
		CHECK(r->text[i] >= 0x20 && r->text[i] < 0x7f);
	CHECK(r->dsn[0] == '2' || r->dsn[0] == '4' || r->dsn[0] == '5');
	if (r->is_remote)
		CHECK(r->code >= 200 && r->code <= 559);
}

/* Take the output; AUTH only over TLS. */
static void
drain(struct client *c, bool in_body)
{
	size_t len;
	const char *out = client_output(c, &len);

	if (!client_is_tls(c))
		CHECK(len < 5 || memmem(out, len, "AUTH ", 5) == NULL);
	if (!in_body)
		for (size_t i = 0; i < len; i++)
			if (out[i] == '\n')
				CHECK(i > 0 && out[i - 1] == '\r');
	client_output_consume(c, len);
}

/* Act on the engine's event, as the queue would. */
static void
step(struct client *c, const struct client_tx *tx, unsigned *txs)
{
	for (int guard = 0; guard < 8; guard++) {
		switch (client_event(c)) {
		case CLIENT_EV_TLS:
			drain(c, false);
			client_tls_done(c, true, NULL);
			break;
		case CLIENT_EV_READY:
			if (*txs >= 3) {
				client_quit(c);
				drain(c, false);
				return;
			}
			(*txs)++;
			CHECK(client_tx_begin(c, tx) == 0);
			break;
		case CLIENT_EV_BODY:
			drain(c, false);
			client_body(c, ".x\r\n..\r\nend", 11);
			client_body_end(c);
			drain(c, true);
			break;
		case CLIENT_EV_TX_DONE:
			for (size_t i = 0; i < tx->n_rcpts; i++)
				check_result(client_rcpt_result(c, i));
			CHECK(client_rcpt_result(c, tx->n_rcpts) == NULL);
			client_tx_end(c);
			break;
		case CLIENT_EV_CLOSED:
			drain(c, false);
			return;
		case CLIENT_EV_WAIT:
			drain(c, false);
			return;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client_params p = {"out.example.org", CLIENT_TLS_NONE, NULL,
				  NULL};
	struct client_tx tx = {"s@example.org", rcpts, 3, 12345, false, false};
	struct client *c;
	size_t cut, off = 0;
	unsigned txs = 0;

	if (size < 2)
		return 0;
	p.tls = (enum client_tls)(data[0] & 3);
	if (data[0] & 4) {
		p.auth_user = "user";
		p.auth_pass = "pass";
	}
	tx.is_8bit = data[0] & 8;
	tx.is_utf8 = data[0] & 16;
	cut = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	c = client_new(&p);
	CHECK(c != NULL);
	while (off < size && client_event(c) != CLIENT_EV_CLOSED) {
		size_t n = size - off < cut ? size - off : cut;

		client_input(c, data + off, n);
		off += n;
		step(c, &tx, &txs);
	}
	if (client_event(c) != CLIENT_EV_CLOSED) {
		client_eof(c);
		step(c, &tx, &txs);
	}
	if (client_error(c) != NULL)
		check_result(client_error(c));
	client_free(&c);
	return 0;
}
