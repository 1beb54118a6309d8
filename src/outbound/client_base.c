/*
 * client_base.c - what both halves of the SMTP client engine use
 * (client.c: session set-up; client_tx.c: transactions): the output
 * buffer, results, failures, stage names. Calls neither of them.
 */
#include "outbound/client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const client_stage_names[CLIENT_STAGE_COUNT] = {
    [CLIENT_STAGE_GREETING] = "the initial greeting",
    [CLIENT_STAGE_EHLO] = "EHLO",
    [CLIENT_STAGE_HELO] = "HELO",
    [CLIENT_STAGE_STARTTLS] = "STARTTLS",
    [CLIENT_STAGE_TLS] = "the TLS handshake",
    [CLIENT_STAGE_AUTH] = "AUTH",
    [CLIENT_STAGE_RSET] = "RSET",
    [CLIENT_STAGE_MAIL] = "MAIL FROM",
    [CLIENT_STAGE_RCPT] = "RCPT TO",
    [CLIENT_STAGE_DATA] = "DATA",
    [CLIENT_STAGE_DOT] = "end of data",
    [CLIENT_STAGE_QUIT] = "QUIT",
};

const char *
client_stage_name(enum client_stage stage)
{
	return stage < CLIENT_STAGE_COUNT ? client_stage_names[stage] : "?";
}

/* --- output ---------------------------------------------------------- */

/* Credentials leave no trace in memory once sent. */
void
client_wipe_output(struct client *c)
{
	if (c->out_secret && c->out != NULL)
		explicit_bzero(c->out, c->out_cap);
	c->out_secret = false;
}

void
client_out(struct client *c, const char *s, size_t len)
{
	if (c->out_off > 0 && c->out_off == c->out_len) {
		client_wipe_output(c);
		c->out_off = c->out_len = 0;
	}
	if (c->out_cap - c->out_len < len) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *n;

		while (cap - c->out_len < len)
			cap *= 2;
		n = malloc(cap);
		if (n == NULL)
			abort(); /* out of memory: nothing sane to do */
		if (c->out_len > 0)
			memcpy(n, c->out, c->out_len);
		if (c->out_secret && c->out != NULL)
			explicit_bzero(c->out, c->out_cap);
		free(c->out);
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out_len += len;
}

void
client_outs(struct client *c, const char *s)
{
	client_out(c, s, strlen(s));
}

const char *
client_output(const struct client *c, size_t *len_r)
{
	*len_r = c->out_len - c->out_off;
	return c->out != NULL ? c->out + c->out_off : "";
}

void
client_output_consume(struct client *c, size_t n)
{
	if (n > c->out_len - c->out_off)
		n = c->out_len - c->out_off;
	c->out_off += n;
	if (c->out_off == c->out_len) {
		client_wipe_output(c);
		c->out_off = c->out_len = 0;
	}
}

/* --- results and failures ------------------------------------------- */

static enum client_status
client_status_of(unsigned code)
{
	return code < 400 ? CLIENT_OK : code < 500 ? CLIENT_TEMP : CLIENT_PERM;
}

/* The server's reply as a result: its enhanced code, or X.0.0. */
void
client_result_from_reply(struct client_result *r,
			 const struct peer_reply *reply,
			 enum client_stage stage)
{
	r->status = client_status_of(reply->code);
	r->stage = stage;
	r->code = reply->code;
	r->is_remote = true;
	if (reply->status[0] != '\0') {
		memcpy(r->dsn, reply->status, sizeof(r->dsn));
	} else {
		r->dsn[0] = (char)('0' + reply->code / 100);
		memcpy(r->dsn + 1, ".0.0", sizeof(".0.0"));
	}
	peer_reply_summary(reply, r->text, sizeof(r->text));
}

void
client_result_local(struct client_result *r, enum client_status status,
		    enum client_stage stage, const char *dsn, const char *text)
{
	size_t n = strlen(text);

	r->status = status;
	r->stage = stage;
	r->code = 0;
	r->is_remote = false;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	if (n >= sizeof(r->text))
		n = sizeof(r->text) - 1;
	memcpy(r->text, text, n);
	r->text[n] = '\0';
}

/*
 * The session failed with `r`. In a transaction every recipient without
 * a result gets it and the driver sees the results first; otherwise the
 * session is closed now. QUIT is said only when the server still talks.
 */
void
client_fail(struct client *c, const struct client_result *r, bool send_quit)
{
	if (c->state == CS_CLOSED)
		return;
	if (!c->has_error) {
		c->error = *r;
		c->has_error = true;
	}
	if (send_quit)
		client_outs(c, "QUIT\r\n");
	if (c->state == CS_TX || c->state == CS_BODY || c->state == CS_DOT ||
	    c->state == CS_RSET) {
		client_tx_fail_open(c, r);
		c->is_broken = true;
		c->state = CS_TX_DONE;
		return;
	}
	if (c->state == CS_TX_DONE) {
		c->is_broken = true;
		return;
	}
	c->state = CS_CLOSED;
}

/* The server broke the protocol: fail and close without QUIT. */
void
client_protocol_error(struct client *c, enum client_stage stage,
		      const char *what)
{
	struct client_result r;
	char text[CLIENT_TEXT_MAX];

	snprintf(text, sizeof(text), "protocol error: %s", what);
	client_result_local(&r, CLIENT_TEMP, stage, "4.5.0", text);
	client_fail(c, &r, false);
}

/* A reply that ends the session set-up. 421 closes without QUIT (RFC
   5321 3.8); a 2yz or 3yz where it cannot be breaks the protocol. */
void
client_fail_reply(struct client *c, const struct peer_reply *reply,
		  enum client_stage stage)
{
	struct client_result r;

	if (reply->code < 400) {
		client_protocol_error(c, stage, "unexpected reply code");
		return;
	}
	client_result_from_reply(&r, reply, stage);
	r.status = CLIENT_TEMP; /* another host, or later, may work */
	client_fail(c, &r, reply->code != 421);
}

enum client_stage
client_tx_stage(const struct client *c)
{
	switch (c->state) {
	case CS_RSET:
		return CLIENT_STAGE_RSET;
	case CS_TX:
		if (c->answered == 0)
			return CLIENT_STAGE_MAIL;
		return c->answered <= c->tx->n_rcpts ? CLIENT_STAGE_RCPT
						     : CLIENT_STAGE_DATA;
	case CS_BODY:
	case CS_DOT:
	case CS_TX_DONE:
		return CLIENT_STAGE_DOT;
	default:
		return CLIENT_STAGE_MAIL;
	}
}

/* Every recipient without a result gets `r`. */
void
client_tx_fail_open(struct client *c, const struct client_result *r)
{
	if (c->tx == NULL)
		return;
	for (size_t i = 0; i < c->tx->n_rcpts; i++) {
		if (c->has_result[i])
			continue;
		c->results[i] = *r;
		c->has_result[i] = true;
	}
}

