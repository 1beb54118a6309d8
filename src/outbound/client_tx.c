/*
 * client_tx.c - the SMTP client's transactions: MAIL, RCPT, DATA, the
 * content with dot-stuffing, the per-recipient results. See client.h.
 *
 * A transaction is a row of steps: MAIL (0), RCPT 1..n, DATA (n + 1).
 * `sent` counts the steps written, `answered` the replies read; replies
 * come in the order of the commands (RFC 2920 3.1). With PIPELINING every
 * step goes at once; without it, one at a time.
 */
#include "outbound/client_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void
client_tx_finish(struct client *c, bool need_rset)
{
	struct client_result r;

	/* Cannot happen: every path gives each recipient its result. */
	client_result_local(&r, CLIENT_TEMP, client_tx_stage(c), "4.3.0",
			    "no reply recorded");
	client_tx_fail_open(c, &r);
	c->need_rset = need_rset;
	c->state = CS_TX_DONE;
}

/* A reply for every recipient not yet answered (2yz too: the dot). */
static void
client_tx_reply_open(struct client *c, const struct peer_reply *reply,
		     enum client_stage stage)
{
	struct client_result r;

	client_result_from_reply(&r, reply, stage);
	client_tx_fail_open(c, &r);
}

/* 421: the server is leaving (RFC 5321 3.8); no QUIT. */
static void
client_tx_closing(struct client *c, const struct peer_reply *reply,
		  enum client_stage stage)
{
	struct client_result r;

	client_result_from_reply(&r, reply, stage);
	client_fail(c, &r, false);
}

/* MAIL FROM:<sender> with what the message needs and the server has. */
static void
client_send_mail(struct client *c)
{
	const struct client_tx *tx = c->tx;
	char num[32];

	client_outs(c, "MAIL FROM:<");
	client_outs(c, tx->sender);
	client_outs(c, ">");
	if (c->f.has_size) { /* RFC 1870 6 */
		snprintf(num, sizeof(num), " SIZE=%" PRIu64, tx->size);
		client_outs(c, num);
	}
	if (tx->is_8bit && c->f.eightbitmime)
		client_outs(c, " BODY=8BITMIME"); /* RFC 6152 2 */
	if (tx->is_utf8 && c->f.smtputf8)
		client_outs(c, " SMTPUTF8"); /* RFC 6531 3.4 */
	client_outs(c, "\r\n");
}

static void
client_send_step(struct client *c, size_t k)
{
	if (k == 0) {
		client_send_mail(c);
	} else if (k <= c->tx->n_rcpts) {
		client_outs(c, "RCPT TO:<");
		client_outs(c, c->tx->rcpts[k - 1]);
		client_outs(c, ">\r\n");
	} else {
		client_outs(c, "DATA\r\n");
	}
}

/* Send what may go now. Without PIPELINING, DATA goes only when MAIL
   and at least one RCPT were accepted; else the transaction ends. */
static void
client_tx_send_next(struct client *c)
{
	size_t total = c->tx->n_rcpts + 2;

	while (c->state == CS_TX && c->sent < total) {
		if (!c->f.pipelining && c->answered < c->sent)
			return;
		if (!c->f.pipelining && c->sent == total - 1 &&
		    c->n_accepted == 0) {
			client_tx_finish(c, true);
			return;
		}
		client_send_step(c, c->sent++);
	}
}

/* A reply class a step cannot get (1yz is not SMTP; 3yz only to DATA). */
static bool
client_tx_bad_class(struct client *c, const struct peer_reply *reply,
		    bool is_data)
{
	if (reply->code / 100 == 3 && !(is_data && reply->code == 354)) {
		client_protocol_error(c, client_tx_stage(c),
				      "unexpected 3yz reply");
		return true;
	}
	if (is_data && reply->code / 100 == 2) {
		client_protocol_error(c, CLIENT_STAGE_DATA,
				      "2yz reply to DATA");
		return true;
	}
	return false;
}

static void
client_mail_reply(struct client *c, const struct peer_reply *reply)
{
	if (reply->code / 100 == 2) {
		c->mail_ok = true;
		return;
	}
	client_tx_reply_open(c, reply, CLIENT_STAGE_MAIL);
	if (!c->f.pipelining)
		client_tx_finish(c, true);
}

static void
client_rcpt_reply(struct client *c, size_t i, const struct peer_reply *reply)
{
	struct client_result *r = &c->results[i];

	if (c->has_result[i])
		return; /* MAIL failed: these answers mean nothing */
	if (reply->code / 100 == 2) {
		c->accepted[i] = true;
		c->n_accepted++;
		return;
	}
	client_result_from_reply(r, reply, CLIENT_STAGE_RCPT);
	c->has_result[i] = true;
}

/* 354 without anything to send (a server that accepts DATA after
   refusing every recipient): a lone "." ends it (RFC 2920 3.1). */
static void
client_data_reply(struct client *c, const struct peer_reply *reply)
{
	if (reply->code == 354) {
		if (c->mail_ok && c->n_accepted > 0) {
			c->state = CS_BODY;
			return;
		}
		client_outs(c, ".\r\n");
		c->discard = true;
		c->state = CS_DOT;
		return;
	}
	client_tx_reply_open(c, reply, CLIENT_STAGE_DATA);
	client_tx_finish(c, true);
}

/* The reply to the final dot: the outcome of every accepted recipient. */
static void
client_dot_reply(struct client *c, const struct peer_reply *reply)
{
	if (reply->code / 100 == 3) {
		client_protocol_error(c, CLIENT_STAGE_DOT,
				      "3yz reply to end of data");
		return;
	}
	if (reply->code == 421) {
		client_tx_closing(c, reply, CLIENT_STAGE_DOT);
		return;
	}
	if (!c->discard)
		client_tx_reply_open(c, reply, CLIENT_STAGE_DOT);
	client_tx_finish(c, false);
}

void
client_tx_reply(struct client *c, const struct peer_reply *reply)
{
	size_t k, n = c->tx->n_rcpts;

	if (c->state == CS_DOT) {
		client_dot_reply(c, reply);
		return;
	}
	k = c->answered;
	if (client_tx_bad_class(c, reply, k == n + 1))
		return;
	if (reply->code == 421) {
		client_tx_closing(c, reply, client_tx_stage(c));
		return;
	}
	c->answered++;
	if (k == 0)
		client_mail_reply(c, reply);
	else if (k <= n)
		client_rcpt_reply(c, k - 1, reply);
	else
		client_data_reply(c, reply);
	if (c->state == CS_TX)
		client_tx_send_next(c);
}

void
client_rset_reply(struct client *c, const struct peer_reply *reply)
{
	if (reply->code / 100 == 2) {
		c->need_rset = false;
		c->state = CS_TX;
		client_tx_send_next(c);
		return;
	}
	client_fail_reply(c, reply, CLIENT_STAGE_RSET);
}

/* What the server cannot take, judged before anything is sent. */
static bool
client_tx_refuse(struct client *c)
{
	const struct client_tx *tx = c->tx;
	struct client_result r;
	char text[CLIENT_TEXT_MAX];

	if (tx->is_utf8 && !c->f.smtputf8) {
		client_result_local(&r, CLIENT_PERM, CLIENT_STAGE_MAIL, "5.6.7",
				    "SMTPUTF8 is required, but was not "
				    "offered by host");
	} else if (tx->is_8bit && !c->f.eightbitmime) {
		client_result_local(&r, CLIENT_PERM, CLIENT_STAGE_MAIL, "5.6.3",
				    "message has 8-bit content, and host "
				    "does not offer 8BITMIME");
	} else if (c->f.size_max > 0 && tx->size > c->f.size_max) {
		snprintf(text, sizeof(text),
			 "message size %" PRIu64 " exceeds the limit of %" PRIu64
			 " octets of host",
			 tx->size, c->f.size_max);
		client_result_local(&r, CLIENT_PERM, CLIENT_STAGE_MAIL, "5.3.4",
				    text);
	} else {
		return false;
	}
	client_tx_fail_open(c, &r);
	return true;
}

int
client_tx_begin(struct client *c, const struct client_tx *tx)
{
	if (c->state != CS_READY || tx->n_rcpts == 0 ||
	    tx->n_rcpts > CLIENT_RCPT_MAX)
		return -1;
	c->tx = tx;
	c->sent = c->answered = 0;
	c->mail_ok = c->discard = false;
	c->n_accepted = 0;
	memset(c->accepted, 0, sizeof(c->accepted));
	memset(c->has_result, 0, sizeof(c->has_result));
	c->bol = c->ends_crlf = true;
	c->last = '\0';
	if (client_tx_refuse(c)) {
		c->state = CS_TX_DONE; /* nothing sent: no RSET needed */
		return 0;
	}
	if (c->need_rset) {
		client_outs(c, "RSET\r\n");
		c->state = CS_RSET;
		return 0;
	}
	c->state = CS_TX;
	client_tx_send_next(c);
	return 0;
}

/* RFC 5321 4.5.2: a line that begins with "." gets one more. */
void
client_body(struct client *c, const void *buf, size_t len)
{
	const char *p = buf, *end = p + len, *run = p;

	if (c->state != CS_BODY || len == 0)
		return;
	while (p < end) {
		const char *nl;

		if (c->bol && *p == '.') {
			client_out(c, run, (size_t)(p - run));
			client_out(c, ".", 1);
			run = p;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			c->bol = false;
			break;
		}
		p = nl + 1;
		c->bol = true;
	}
	client_out(c, run, (size_t)(end - run));
	c->ends_crlf = len >= 2 ? (end[-2] == '\r' && end[-1] == '\n')
				: (c->last == '\r' && end[-1] == '\n');
	c->last = end[-1];
}

void
client_body_end(struct client *c)
{
	if (c->state != CS_BODY)
		return;
	if (!c->ends_crlf)
		client_outs(c, "\r\n");
	client_outs(c, ".\r\n");
	c->state = CS_DOT;
}

const struct client_result *
client_rcpt_result(const struct client *c, size_t i)
{
	if (c->state != CS_TX_DONE || c->tx == NULL || i >= c->tx->n_rcpts)
		return NULL;
	return &c->results[i];
}

void
client_tx_end(struct client *c)
{
	if (c->state != CS_TX_DONE)
		return;
	c->tx = NULL;
	c->state = c->is_broken ? CS_CLOSED : CS_READY;
}
