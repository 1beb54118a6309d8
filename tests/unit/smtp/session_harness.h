/*
 * session_harness.h - drives the session engine in unit tests: a fake
 * spool and guard behind session_ops, the replies collected as text.
 */
#ifndef POSTERN_TEST_SESSION_HARNESS_H
#define POSTERN_TEST_SESSION_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "smtp/session.h"

extern const char test_config_text[];
extern const struct session_ops h_ops; /* the fake spool and guard */

struct harness {
	struct config *cfg;
	struct session *s;
	char out[1 << 16];
	size_t out_len;
	char msg[1 << 16]; /* content of the last message */
	size_t msg_len;
	bool msg_open;
	bool commit_pending;
	int commits;
	int begin_fail;	 /* msg_begin fails */
	int commit_fail; /* commits fail */
	char rcpts[512];
	char dirs[1024]; /* the recipients' Maildirs, ";" after each */
	char sender[300];
	char auth_user[300]; /* what ops->auth got */
	char auth_pass[300];
	bool auth_pending;
	char env_auth[300];
	bool no_space;
	unsigned long long space_asked;
	/* send limits (h_start_limited): what ops->send_check got */
	bool send_pending;
	unsigned send_asked;
	char send_account[300];
	char send_rcpt[300];
	unsigned undone; /* recipients given back by ops->send_undo */
	bool env_hold;	 /* the last envelope's hold */
	char refused[64]; /* the reason ops->refused got last (limited) */
	int n_refused;
};

/* Start a session on the test configuration (or `config_text`). */
void h_start(struct harness *h, enum listen_role role);
void h_start_cfg(struct harness *h, enum listen_role role,
		 const char *config_text);
void h_stop(struct harness *h);
/* The same with the send-limit hooks of ops (docs/sendlimit.md). */
void h_start_limited(struct harness *h, enum listen_role role,
		     const char *config_text);
/* Answer the pending send check. */
void h_send_done(struct harness *h, enum session_send_result r);
/* Take the replies waiting; then complete commits as they come. */
void h_drain(struct harness *h);
void h_settle(struct harness *h);
/* Complete a pending AUTH with the guard's verdict (alice, with the
   alias sales@local.test). */
void h_auth_done(struct harness *h, enum session_auth_result r);
/* Send one client turn, whole or byte by byte. */
void h_send(struct harness *h, const char *bytes, size_t len, bool split);
void h_sends(struct harness *h, const char *bytes, bool split);
/* The reply codes of h->out, space separated, e.g. "220 250 250". Only
   the last line of a multi-line reply counts. */
void h_codes(const struct harness *h, char *buf, size_t size);
/* The stored message after the Received header (NUL-terminated). */
const char *h_body(struct harness *h);

#endif
