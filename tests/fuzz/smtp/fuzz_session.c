/*
 * fuzz_session.c - the whole session engine under libFuzzer (THREATS 12,
 * harness 1). Byte 0 picks the role (mx, submission, submissions); the rest
 * is cut into TCP segments at each "\xff\xfe" marker (the marker itself is
 * dropped), and each segment is fed whole. Between segments commits
 * complete, AUTH verdicts arrive (password "pass" is right) and a STARTTLS
 * handshake completes.
 *
 * Oracles besides the sanitizers: no output after the session closed; one
 * "queued as" reply per completed commit; stored content never exceeds the
 * size limit; no plain-text input is waiting when TLS starts
 * (CVE-2011-0411); nothing is committed without a recipient; a
 * submission session never commits without AUTH.
 *
 * And the split oracle (RFC 2920, issue 7 item 1): the whole input is run
 * a second time with every segment cut again at pseudo-random points (a
 * function of the input), fed piece by piece with nothing taken or
 * completed in between, as a server reads one client write in pieces.
 * The replies must be the same octets as in the first run.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "lib/log.h"
#include "smtp/session.h"

static struct config *fz_cfg;

struct fz {
	struct session *s;
	char *transcript; /* every reply, in order */
	size_t t_len, t_cap;
	bool open, pending, is_bdat;
	unsigned long long stored;
	int commits;
	int queued;
	bool auth_pending, auth_ok, has_auth;
	bool send_pending; /* a send-limit check waits (docs/sendlimit.md) */
	enum session_send_result send_r;
	unsigned long counted, undone; /* recipients the fake guard counted */
	bool role_mx;
	unsigned char last2[2];
};

static int
fz_begin(void *ctx, char *id_r)
{
	struct fz *f = ctx;

	snprintf(id_r, SPOOL_ID_MAX, "FUZZ%d", f->commits);
	f->open = true;
	f->stored = 0;
	return 0;
}

static int
fz_write(void *ctx, const void *buf, size_t len)
{
	struct fz *f = ctx;

	if (!f->open)
		abort();
	f->stored += len;
	return 0;
}

static void
fz_abort(void *ctx)
{
	struct fz *f = ctx;

	f->open = false;
}

static void
fz_commit(void *ctx, const struct session_envelope *env)
{
	struct fz *f = ctx;

	if (!f->open || env->n_rcpts == 0)
		abort();
	if (!f->role_mx && env->auth_user == NULL)
		abort(); /* submission without AUTH */
	/* The Received header is at most ~1.2 KiB on top of the limit. */
	if (env->size > fz_cfg->max_message_size + 2048)
		abort();
	f->open = false;
	f->pending = true;
}

static void
fz_auth(void *ctx, const char *user, size_t ulen, const char *pass,
	size_t plen)
{
	struct fz *f = ctx;

	if (f->auth_pending)
		abort();
	f->auth_pending = true;
	f->auth_ok = plen == 4 && memcmp(pass, "pass", 4) == 0;
}

/* The fake guard's send-limit verdict, from the recipient's octets. */
static void
fz_send_check(void *ctx, const char *account, const char *rcpt)
{
	struct fz *f = ctx;
	unsigned h = 0;

	if (f->send_pending || account == NULL || account[0] == '\0')
		abort();
	for (const char *c = rcpt; *c != '\0'; c++)
		h = h * 31 + (unsigned char)*c;
	f->send_pending = true;
	f->send_r = (enum session_send_result)(h % 7);
}

static void
fz_send_undo(void *ctx, const char *account, unsigned n)
{
	struct fz *f = ctx;

	f->undone += n;
	if (f->undone > f->counted)
		abort(); /* gave back more than was counted */
}

static bool
fz_is_user(void *ctx, const char *address)
{
	return strcmp(address, "carol@local.test") == 0;
}

static const struct session_ops fz_ops = {
	.msg_begin = fz_begin,
	.msg_write = fz_write,
	.msg_abort = fz_abort,
	.msg_commit = fz_commit,
	.auth = fz_auth,
	.is_user = fz_is_user,
	.send_check = fz_send_check,
	.send_undo = fz_send_undo,
};

static void
fz_drain(struct fz *f, bool *closed)
{
	size_t len;
	const char *out = session_output(f->s, &len);

	if (*closed && len > 0)
		abort(); /* output after the close */
	for (const char *p = out; p != NULL && p < out + len;) {
		const char *q = memmem(p, (size_t)(out + len - p),
				       "queued as", 9);

		if (q == NULL)
			break;
		f->queued++;
		p = q + 9;
	}
	if (f->t_len + len > f->t_cap) {
		size_t cap = f->t_cap ? f->t_cap : 4096;

		while (cap < f->t_len + len)
			cap *= 2;
		f->transcript = realloc(f->transcript, cap);
		if (f->transcript == NULL)
			abort();
		f->t_cap = cap;
	}
	if (len > 0)
		memcpy(f->transcript + f->t_len, out, len);
	f->t_len += len;
	session_output_consume(f->s, len);
	if (session_is_closing(f->s))
		*closed = true;
}

/* Between two segments: commits complete, AUTH verdicts arrive, a
   STARTTLS handshake completes. */
static void
fz_settle(struct fz *f, bool *closed)
{
	for (int round = 0; round < 8; round++) {
		if (f->pending) {
			f->pending = false;
			f->commits++;
			session_commit_done(f->s, 0);
		} else if (f->auth_pending) {
			static const char *const a[] = {"alice@local.test"};

			f->auth_pending = false;
			session_auth_done(f->s,
					  f->auth_ok ? SESSION_AUTH_OK
						     : SESSION_AUTH_FAIL,
					  "alice@local.test", a, 1);
		} else if (f->send_pending) {
			f->send_pending = false;
			if (f->send_r == SESSION_SEND_OK ||
			    f->send_r == SESSION_SEND_HOLD)
				f->counted++;
			session_send_done(f->s, f->send_r);
		} else if (session_wants_tls(f->s)) {
			if (session_pending_input(f->s) > 0)
				abort(); /* CVE-2011-0411 */
			session_tls_started(f->s, "TLSv1.2", "ECDHE-RSA-AES");
		} else {
			break;
		}
		fz_drain(f, closed);
	}
}

/* Feed one segment, whole (seed 0) or cut at pseudo-random points. */
static void
fz_feed(struct fz *f, const uint8_t *p, size_t len, uint32_t *seed)
{
	size_t from = 0;

	if (*seed == 0) {
		session_input(f->s, p, len);
		return;
	}
	for (size_t i = 1; i < len; i++) {
		*seed = *seed * 1103515245u + 12345u;
		if ((*seed >> 16) % 5 == 0) {
			session_input(f->s, p + from, i - from);
			from = i;
		}
	}
	session_input(f->s, p + from, len - from);
}

static void
fz_run(struct fz *f, const uint8_t *data, size_t size, uint32_t seed)
{
	struct session_params p = {0};
	bool closed = false;
	size_t i = 1, start = 1;

	memset(f, 0, sizeof(*f));
	p.cfg = fz_cfg;
	p.role = data[0] % 3 == 0   ? ROLE_MX
		 : data[0] % 3 == 1 ? ROLE_SUBMISSION
				    : ROLE_SUBMISSIONS;
	p.id = "fuzz";
	p.client_addr = "192.0.2.1";
	p.tls_available = true;
	f->role_mx = p.role == ROLE_MX;
	f->s = session_new(&p, &fz_ops, f);
	if (p.role == ROLE_SUBMISSIONS)
		session_tls_started(f->s, "TLSv1.3", "TLS_AES_128_GCM_SHA256");
	session_greet(f->s);
	fz_drain(f, &closed);
	while (i <= size) {
		bool cut = i + 1 < size && data[i] == 0xff && data[i + 1] == 0xfe;

		if (cut || i == size) {
			fz_feed(f, data + start, i - start, &seed);
			fz_drain(f, &closed);
			fz_settle(f, &closed);
			start = i + (cut ? 2 : 0);
			i = start;
			if (i == size)
				break;
			continue;
		}
		i++;
	}
	if (f->queued != f->commits)
		abort();
	session_free(&f->s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz whole, cut;
	uint32_t seed = 2166136261u;

	if (fz_cfg == NULL) {
		FILE *err = fopen("/dev/null", "w");

		log_set_level(LOG_LEVEL_ERROR);
		/* Small limits so the limit paths are reachable. */
		if (config_load_string(
			    "fuzz",
			    "hostname mx.local.test\ndomains local.test\n"
			    "mailbox alice@local.test bob@local.test\n"
			    "spool /nonexistent\nmaildir /nonexistent/%d/%n\n"
			    "listen 127.0.0.1:2525 mx\nmax-message-size 64K\n"
			    "max-recipients 8\nheader-size-limit 4K\n"
			    "hop-limit 5\n",
			    &fz_cfg, err) < 0)
			abort();
		fclose(err);
	}
	if (size < 1)
		return 0;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	fz_run(&whole, data, size, 0);
	fz_run(&cut, data, size, seed | 1);
	/* Any cut of the same bytes, the same replies. */
	if (whole.t_len != cut.t_len ||
	    memcmp(whole.transcript, cut.transcript, whole.t_len) != 0)
		abort();
	free(whole.transcript);
	free(cut.transcript);
	return 0;
}
