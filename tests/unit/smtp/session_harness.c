/*
 * session_harness.c - see session_harness.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "session_harness.h"

const char test_config_text[] =
	"hostname mx.local.test\n"
	"domains local.test\n"
	"mailbox alice@local.test bob@local.test\n"
	"spool /tmp/postern-test-spool\n"
	"maildir /tmp/postern-test-mail/%d/%n/Maildir\n"
	"listen 127.0.0.1:2525 mx\n"
	"max-message-size 4K\n"
	"max-recipients 5\n"
	"error-limit 10\n"
	"hop-limit 3\n"
	"header-size-limit 1K\n";


static int
h_begin(void *ctx, char *id_r)
{
	struct harness *h = ctx;

	if (h->begin_fail)
		return -1;
	snprintf(id_r, SPOOL_ID_MAX, "TESTID%d", h->commits);
	h->msg_len = 0;
	h->msg_open = true;
	return 0;
}

static int
h_write(void *ctx, const void *buf, size_t len)
{
	struct harness *h = ctx;

	assert_true(h->msg_open);
	assert_true(h->msg_len + len < sizeof(h->msg));
	memcpy(h->msg + h->msg_len, buf, len);
	h->msg_len += len;
	return 0;
}

static void
h_abort(void *ctx)
{
	struct harness *h = ctx;

	h->msg_open = false;
	h->msg_len = 0;
}

static void
h_commit(void *ctx, const struct session_envelope *env)
{
	struct harness *h = ctx;
	size_t o = 0;

	h->commit_pending = true;
	h->msg_open = false;
	snprintf(h->sender, sizeof(h->sender), "%s", env->sender);
	snprintf(h->env_auth, sizeof(h->env_auth), "%s",
		 env->auth_user ? env->auth_user : "-");
	h->env_hold = env->hold;
	h->rcpts[0] = '\0';
	for (size_t i = 0; i < env->n_rcpts; i++)
		o += (size_t)snprintf(h->rcpts + o, sizeof(h->rcpts) - o,
				      "%s%s;", env->rcpts[i].address,
				      env->rcpts[i].maildir ? "" : "(remote)");
	h->dirs[0] = '\0';
	o = 0;
	for (size_t i = 0; i < env->n_rcpts; i++)
		o += (size_t)snprintf(h->dirs + o, sizeof(h->dirs) - o, "%s;",
				      env->rcpts[i].maildir
					      ? env->rcpts[i].maildir
					      : "-");
}

static void
h_auth(void *ctx, const char *user, size_t ulen, const char *pass,
       size_t plen)
{
	struct harness *h = ctx;

	assert_false(h->auth_pending);
	h->auth_pending = true;
	snprintf(h->auth_user, sizeof(h->auth_user), "%.*s", (int)ulen, user);
	snprintf(h->auth_pass, sizeof(h->auth_pass), "%.*s", (int)plen, pass);
}

static bool
h_is_user(void *ctx, const char *address)
{
	return strcmp(address, "carol@local.test") == 0;
}

static bool
h_has_space(void *ctx, unsigned long long size)
{
	struct harness *h = ctx;

	h->space_asked = size;
	return !h->no_space;
}

const struct session_ops h_ops = {
	.has_space = h_has_space,
	.msg_begin = h_begin,
	.msg_write = h_write,
	.msg_abort = h_abort,
	.msg_commit = h_commit,
	.auth = h_auth,
	.is_user = h_is_user,
};

static void
h_send_check(void *ctx, const char *account, const char *rcpt)
{
	struct harness *h = ctx;

	assert_false(h->send_pending);
	h->send_pending = true;
	h->send_asked++;
	snprintf(h->send_account, sizeof(h->send_account), "%s", account);
	snprintf(h->send_rcpt, sizeof(h->send_rcpt), "%s", rcpt);
}

static void
h_send_undo(void *ctx, const char *account, unsigned n)
{
	struct harness *h = ctx;

	assert_string_equal(account, "alice@local.test");
	h->undone += n;
}

/* The refused hook: the reason of the last call, a call count. */
static void
h_refused(void *ctx, const char *reason)
{
	struct harness *h = ctx;

	snprintf(h->refused, sizeof(h->refused), "%s", reason);
	h->n_refused++;
}

static const struct session_ops h_ops_limited = {
	.has_space = h_has_space,
	.msg_begin = h_begin,
	.msg_write = h_write,
	.msg_abort = h_abort,
	.msg_commit = h_commit,
	.auth = h_auth,
	.is_user = h_is_user,
	.send_check = h_send_check,
	.send_undo = h_send_undo,
	.refused = h_refused,
};

void
h_drain(struct harness *h)
{
	size_t len;
	const char *o = session_output(h->s, &len);

	assert_true(h->out_len + len < sizeof(h->out));
	memcpy(h->out + h->out_len, o, len);
	h->out_len += len;
	h->out[h->out_len] = '\0';
	session_output_consume(h->s, len);
}

void
h_settle(struct harness *h)
{
	h_drain(h);
	while (h->commit_pending) {
		h->commit_pending = false;
		h->commits++;
		session_commit_done(h->s, h->commit_fail ? -1 : 0);
		h_drain(h);
	}
}

static void
h_start_ops(struct harness *h, enum listen_role role, const char *config_text,
	    const struct session_ops *ops)
{
	struct session_params p = {0};
	FILE *err = fopen("/dev/null", "w");

	memset(h, 0, sizeof(*h));
	assert_int_equal(config_load_string("test", config_text, &h->cfg, err),
			 0);
	fclose(err);
	p.cfg = h->cfg;
	p.role = role;
	p.id = "test";
	p.client_addr = "192.0.2.1";
	p.tls_available = true;
	h->s = session_new(&p, ops, h);
	if (role == ROLE_SUBMISSIONS)
		session_tls_started(h->s, "TLSv1.3", "TLS_AES_128_GCM_SHA256");
	session_greet(h->s);
	h_drain(h);
}

void
h_start_cfg(struct harness *h, enum listen_role role, const char *config_text)
{
	h_start_ops(h, role, config_text, &h_ops);
}

void
h_start_limited(struct harness *h, enum listen_role role,
		const char *config_text)
{
	h_start_ops(h, role, config_text, &h_ops_limited);
}

void
h_send_done(struct harness *h, enum session_send_result r)
{
	assert_true(h->send_pending);
	h->send_pending = false;
	session_send_done(h->s, r);
	h_settle(h);
}

void
h_start(struct harness *h, enum listen_role role)
{
	h_start_cfg(h, role, test_config_text);
}

/* Complete a pending AUTH with the guard's verdict. */
void
h_auth_done(struct harness *h, enum session_auth_result r)
{
	static const char *const addrs[] = {"alice@local.test",
					    "sales@local.test"};

	assert_true(h->auth_pending);
	h->auth_pending = false;
	session_auth_done(h->s, r, "alice@local.test", addrs, 2);
	h_drain(h);
}

void
h_stop(struct harness *h)
{
	session_free(&h->s);
	config_free(&h->cfg);
}

void
h_send(struct harness *h, const char *bytes, size_t len, bool split)
{
	if (!split) {
		session_input(h->s, bytes, len);
		h_settle(h);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		session_input(h->s, bytes + i, 1);
		h_settle(h);
	}
}

void
h_sends(struct harness *h, const char *bytes, bool split)
{
	h_send(h, bytes, strlen(bytes), split);
}

void
h_codes(const struct harness *h, char *buf, size_t size)
{
	size_t o = 0;
	const char *p = h->out;

	buf[0] = '\0';
	while (*p != '\0') {
		const char *eol = strstr(p, "\r\n");

		assert_non_null(eol);
		if (eol - p >= 4 && p[3] == ' ')
			o += (size_t)snprintf(buf + o, size - o, "%s%.3s",
					      o ? " " : "", p);
		p = eol + 2;
	}
}

const char *
h_body(struct harness *h)
{
	const char *b;

	h->msg[h->msg_len] = '\0';
	b = strstr(h->msg, "+0000\r\n");
	assert_non_null(b);
	return b + 7;
}
