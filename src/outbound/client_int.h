/*
 * client_int.h - what the files of the SMTP client engine share (client.c:
 * session set-up, input; client_tx.c: transactions; client_base.c: output,
 * results, failures). Not for others.
 */
#ifndef POSTERN_CLIENT_INT_H
#define POSTERN_CLIENT_INT_H

#include "outbound/client.h"

enum client_state {
	CS_GREETING = 0, /* waiting for 220 */
	CS_EHLO,	 /* EHLO sent */
	CS_HELO,	 /* HELO sent */
	CS_STARTTLS,	 /* STARTTLS sent */
	CS_TLS_WAIT,	 /* the driver does the handshake */
	CS_AUTH,	 /* AUTH PLAIN, or the last step of LOGIN, sent */
	CS_AUTH_USER,	 /* AUTH LOGIN sent: 334 asks for the user */
	CS_AUTH_PASS,	 /* user sent: 334 asks for the password */
	CS_READY,	 /* no transaction */
	CS_RSET,	 /* RSET sent before a transaction */
	CS_TX,		 /* MAIL, RCPT, DATA going out and answered */
	CS_BODY,	 /* the driver feeds the content */
	CS_DOT,		 /* the final dot sent */
	CS_TX_DONE,	 /* results wait for the driver */
	CS_QUIT,	 /* QUIT sent */
	CS_CLOSED,
};

struct client {
	struct client_params p;
	enum client_state state;
	struct peer_reply_parser parser;
	struct client_features f;
	bool is_tls;
	bool has_auth;	   /* AUTH answered 235 */
	bool need_rset;	   /* the last transaction did not end with "." */
	bool is_broken;	   /* the session failed during a transaction */
	bool out_secret;   /* the output holds credentials: wipe it */
	bool has_error;
	struct client_result error;

	/* Output not yet taken by the driver. */
	char *out;
	size_t out_len, out_off, out_cap;

	/* The transaction. */
	const struct client_tx *tx;
	size_t sent;	 /* steps sent: MAIL, each RCPT, DATA */
	size_t answered; /* steps answered */
	bool mail_ok;
	bool discard;	 /* a 354 we did not want: "." sent to end it */
	size_t n_accepted;
	bool accepted[CLIENT_RCPT_MAX];
	bool has_result[CLIENT_RCPT_MAX];
	struct client_result results[CLIENT_RCPT_MAX];
	bool bol;	 /* content: at the beginning of a line */
	bool ends_crlf;	 /* content so far ends with CRLF (or is empty) */
	char last;	 /* the last content octet */
};

/* client_base.c (calls neither client.c nor client_tx.c) */
void client_wipe_output(struct client *c);
void client_out(struct client *c, const char *s, size_t len);
void client_outs(struct client *c, const char *s);
void client_result_from_reply(struct client_result *r,
			      const struct peer_reply *reply,
			      enum client_stage stage);
void client_result_local(struct client_result *r, enum client_status status,
			 enum client_stage stage, const char *dsn,
			 const char *text);
void client_fail(struct client *c, const struct client_result *r,
		 bool send_quit);
void client_protocol_error(struct client *c, enum client_stage stage,
			   const char *what);
void client_fail_reply(struct client *c, const struct peer_reply *reply,
		       enum client_stage stage);

void client_tx_fail_open(struct client *c, const struct client_result *r);
enum client_stage client_tx_stage(const struct client *c);

/* client_tx.c */
void client_tx_reply(struct client *c, const struct peer_reply *reply);
void client_rset_reply(struct client *c, const struct peer_reply *reply);

#endif
