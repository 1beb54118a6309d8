/*
 * spool_journal.c - the area's journal (docs/durability.md, "The
 * journal"): its records (CRC-32C framing), the scan that reads them back
 * (torn tail, damage), and the committer's appends, repair and
 * truncation.
 */
#include "store/spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "store/storefs.h"

/* An idle journal (no message waiting for its "done" record) larger than
   this is truncated to 0 (same inode). A variable so tests can lower it. */
size_t spool_journal_max = 4u << 20;

/*
 * CRC-32C (Castagnoli, reflected, as in iSCSI and ext4), bit by bit: a
 * record is a few hundred octets, so a table would buy nothing. Chains:
 * spool_crc32c(spool_crc32c(0, a), b) is the CRC of a followed by b.
 */
uint32_t
spool_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

int
spool_buf_add(struct spool_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap != 0 ? b->cap : 4096;
		char *d;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				errno = ENOMEM;
				return -1;
			}
			cap *= 2;
		}
		d = realloc(b->data, cap);
		if (d == NULL)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void
spool_buf_free(struct spool_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/*
 * Append one journal record to `b`:
 *
 *   "@" kind SP id SP length LF  payload  "@crc " 8 lower-case hex LF
 *
 * kind is "commit" (payload: the envelope, docs/queue-format.md) or "done"
 * (no payload); the CRC-32C covers everything from the first "@" to the
 * end of the payload. The trailer is the end marker: a record cut anywhere,
 * or with any octet changed, does not parse. 0 or -1 (errno).
 */
int
spool_journal_add(struct spool_buf *b, const char *kind, const char *id,
		  const char *payload, size_t len)
{
	char head[SPOOL_REC_HEAD_MAX], tail[SPOOL_REC_TAIL_LEN + 1];
	uint32_t crc;
	int n;

	n = snprintf(head, sizeof(head), "@%s %s %zu\n", kind, id, len);
	if (n < 0 || (size_t)n >= sizeof(head) || len > SPOOL_ENV_MAX) {
		errno = EINVAL;
		return -1;
	}
	crc = spool_crc32c(spool_crc32c(0, head, (size_t)n), payload, len);
	snprintf(tail, sizeof(tail), "@crc %08" PRIx32 "\n", crc);
	if (spool_buf_add(b, head, (size_t)n) < 0 ||
	    spool_buf_add(b, payload, len) < 0 ||
	    spool_buf_add(b, tail, SPOOL_REC_TAIL_LEN) < 0)
		return -1;
	return 0;
}

/*
 * Parse the record at the start of buf[0..avail). Returns its length, or 0
 * when there is no complete, intact record there (a torn tail, or
 * garbage). Everything is checked: the head's syntax (known kind, an id,
 * a canonical length within SPOOL_ENV_MAX, none for "done"), the payload
 * fits, the trailer is exactly the CRC of head and payload.
 */
size_t
spool_journal_rec(const char *buf, size_t avail, struct spool_jrec *r)
{
	char tail[SPOOL_REC_TAIL_LEN + 1];
	const char *eol, *sp1, *sp2;
	size_t hlen, klen, ilen;
	uint64_t plen;
	uint32_t crc;

	if (avail == 0 || buf[0] != '@')
		return 0;
	eol = memchr(buf, '\n',
		     avail < SPOOL_REC_HEAD_MAX ? avail : SPOOL_REC_HEAD_MAX);
	if (eol == NULL)
		return 0;
	hlen = (size_t)(eol - buf) + 1;
	sp1 = memchr(buf, ' ', hlen);
	sp2 =
	    sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (sp2 == NULL)
		return 0;
	klen = (size_t)(sp1 - buf) - 1;
	ilen = (size_t)(sp2 - sp1) - 1;
	if (klen == 6 && memcmp(buf + 1, "commit", 6) == 0)
		r->kind = SPOOL_REC_COMMIT;
	else if (klen == 4 && memcmp(buf + 1, "done", 4) == 0)
		r->kind = SPOOL_REC_DONE;
	else
		return 0;
	if (!spool_id_ok(sp1 + 1, ilen) ||
	    spool_env_number(sp2 + 1, (size_t)(eol - sp2 - 1), SPOOL_ENV_MAX,
			     &plen) < 0 ||
	    (r->kind == SPOOL_REC_DONE && plen != 0) || avail - hlen < plen ||
	    avail - hlen - plen < SPOOL_REC_TAIL_LEN)
		return 0;
	crc = spool_crc32c(spool_crc32c(0, buf, hlen), buf + hlen, plen);
	snprintf(tail, sizeof(tail), "@crc %08" PRIx32 "\n", crc);
	if (memcmp(buf + hlen + plen, tail, SPOOL_REC_TAIL_LEN) != 0)
		return 0;
	memcpy(r->id, sp1 + 1, ilen);
	r->id[ilen] = '\0';
	r->payload = buf + hlen;
	r->len = plen;
	r->raw = buf;
	r->raw_len = hlen + plen + SPOOL_REC_TAIL_LEN;
	r->live = r->kind == SPOOL_REC_COMMIT;
	return r->raw_len;
}

void
spool_jscan_free(struct spool_jscan *js)
{
	free(js->recs);
	memset(js, 0, sizeof(*js));
}

/*
 * The next intact record after `from`, or `len`. Any "@" may start one:
 * damage can swallow the line end before a record, and "@commit " or
 * "@done " cannot occur inside an envelope (a space there is %20).
 */
static size_t
spool_journal_resync(const char *buf, size_t len, size_t from,
		     struct spool_jrec *r)
{
	while (++from < len) {
		const char *at = memchr(buf + from, '@', len - from);

		if (at == NULL)
			break;
		from = (size_t)(at - buf);
		if (spool_journal_rec(buf + from, len - from, r) > 0)
			return from;
	}
	return len;
}

/* Apply one intact record: a commit joins the list, a done ends one. */
static int
spool_journal_apply(struct spool_jscan *js, const struct spool_jrec *r)
{
	/* A done record follows its commit closely: search from the end. */
	for (size_t i = js->n_recs; i-- > 0;) {
		struct spool_jrec *c = &js->recs[i];

		if (!c->live || strcmp(c->id, r->id) != 0)
			continue;
		if (r->kind == SPOOL_REC_COMMIT) {
			js->corrupt = true; /* ids are unique: never twice */
			return 0;
		}
		c->live = false;
		js->n_live--;
		return 0;
	}
	if (r->kind == SPOOL_REC_DONE)
		return 0; /* its commit was cut off with a bad stretch */
	if (js->n_recs == js->cap) {
		size_t cap = js->cap != 0 ? js->cap * 2 : 64;
		struct spool_jrec *n = realloc(js->recs, cap * sizeof(*n));

		if (n == NULL)
			return -1;
		js->recs = n;
		js->cap = cap;
	}
	js->recs[js->n_recs++] = *r;
	js->n_live++;
	return 0;
}

/*
 * Read a journal: the magic line, then records. A stretch that is not an
 * intact record ends the journal when no intact record follows it (a torn
 * tail: the append of a batch whose sync never finished, so nothing in it
 * was acknowledged); otherwise it is corruption, skipped up to the next
 * intact record. A missing or cut magic line is such a stretch too; a
 * complete magic line of another version fails (-1, *error_r): the
 * journal is not ours to interpret. -1 also when out of memory. On success
 * js lists the commit records (pointers into buf), `live` ones first
 * waiting for recovery.
 */
int
spool_journal_scan(const char *buf, size_t len, struct spool_jscan *js,
		   const char **error_r)
{
	const size_t mlen = sizeof(SPOOL_JOURNAL_MAGIC) - 1;
	size_t off = 0;

	memset(js, 0, sizeof(*js));
	js->bad_off = len;
	if (len >= mlen && memcmp(buf, SPOOL_JOURNAL_MAGIC, mlen) == 0) {
		off = mlen;
	} else if (len > 0) {
		const char *nl = memchr(buf, '\n', len < 64 ? len : 64);

		if (nl != NULL && len > 16 &&
		    memcmp(buf, "postern-journal ", 16) == 0) {
			*error_r = "unknown journal version";
			return -1;
		}
	}
	while (off < len) {
		struct spool_jrec r;
		size_t n =
		    off == 0 ? 0 : spool_journal_rec(buf + off, len - off, &r);

		if (n == 0) {
			size_t next = spool_journal_resync(buf, len, off, &r);

			if (js->bad_off == len)
				js->bad_off = off;
			if (next == len) {
				js->torn = true;
				break;
			}
			js->corrupt = true;
			off = next;
			n = r.raw_len;
		}
		if (spool_journal_apply(js, &r) < 0) {
			*error_r = "out of memory";
			spool_jscan_free(js);
			return -1;
		}
		off += n;
	}
	return 0;
}

/*
 * Open (creating) the area's journal. A journal left with content is
 * taken over only when it is clean - intact to the end, every commit
 * record done (a clean shutdown that could not truncate) - and then
 * truncated; one with unfinished messages or damage is recovery's.
 */
int
spool_journal_open(struct spool *sp, const char **error_r)
{
	struct spool_jscan js;
	char *buf;
	size_t len = 0;
	int r;

	*error_r = "cannot open the journal";
	sp->journal_fd = storefs.openat(
	    sp->area_fd, SPOOL_JOURNAL,
	    O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sp->journal_fd < 0)
		return -1;
	buf = spool_read_fd(sp->journal_fd, SPOOL_JOURNAL_READ_MAX, &len);
	if (buf == NULL)
		return -1;
	r = len == 0 ? 0 : spool_journal_scan(buf, len, &js, error_r);
	free(buf);
	if (r < 0 || len == 0)
		return r;
	r = js.n_live == 0 && !js.torn && !js.corrupt ? 0 : -1;
	spool_jscan_free(&js);
	*error_r = "the spool area holds unrecovered messages";
	if (r < 0)
		return -1;
	*error_r = "cannot truncate the journal";
	return storefs.ftruncate(sp->journal_fd, 0);
}

/*
 * Bring the journal back to its last intact state after an append that
 * failed (it may have written part of its records): truncated to j_size,
 * or to 0 when no record is pending. 0, or -1 with j_bad still set.
 */
int
spool_journal_repair(struct spool *sp)
{
	uint64_t to = sp->j_pending == 0 ? 0 : sp->j_size;

	if (storefs.ftruncate(sp->journal_fd, (off_t)to) < 0) {
		log_error("spool", "spool journal-truncate error=%s",
			  spool_errname(errno));
		sp->j_bad = true;
		return -1;
	}
	sp->j_size = to;
	sp->j_bad = false;
	return 0;
}

/* Start the records of one append (the magic line first in an empty
   journal). */
int
spool_journal_start(struct spool *sp)
{
	sp->j_buf.len = 0;
	if (sp->j_size == 0)
		return spool_buf_add(&sp->j_buf, SPOOL_JOURNAL_MAGIC,
				     sizeof(SPOOL_JOURNAL_MAGIC) - 1);
	return 0;
}

/* Append sp->j_buf with one write(2) (O_APPEND); on failure the journal
   is repaired (or marked j_bad). 0 or -1 (errno). */
int
spool_journal_append(struct spool *sp)
{
	int saved;

	if (storefs_write_all(sp->journal_fd, sp->j_buf.data, sp->j_buf.len) ==
	    0) {
		sp->j_size += sp->j_buf.len;
		return 0;
	}
	saved = errno;
	log_error("spool", "spool journal-write error=%s",
		  spool_errname(saved));
	spool_journal_repair(sp);
	errno = saved;
	return -1;
}

/* Owe a done record for `id` (appended by step 8). */
void
spool_journal_owe_done(struct spool *sp, const char *id)
{
	if (spool_journal_add(&sp->j_owed, "done", id, "", 0) == 0)
		sp->j_owed_n++;
	/* else out of memory: the record stays pending, recovery redoes
	   idempotent work */
}

/*
 * Step 8, after the replies are on their way: append the done records
 * owed (one write; kept for the next try if it fails), remove (or keep
 * for reuse) the data files of the finished messages, and truncate the journal to 0 (same
 * inode) when no record is pending and it is larger than `max`. None of
 * this is synced: if it is lost in a crash, recovery finds the messages
 * delivered (the Maildir name is deterministic) and just finishes them.
 */
void
spool_journal_settle(struct spool *sp, uint64_t max)
{
	if (sp->j_owed_n > 0 && !(sp->j_bad && spool_journal_repair(sp) < 0) &&
	    spool_journal_start(sp) == 0 &&
	    spool_buf_add(&sp->j_buf, sp->j_owed.data, sp->j_owed.len) == 0 &&
	    spool_journal_append(sp) == 0) {
		sp->j_pending -= sp->j_owed_n;
		sp->j_owed_n = 0;
		sp->j_owed.len = 0;
	}
	for (size_t i = 0; i < sp->n_done_ids; i++)
		if (sp->done_reuse[i])
			spool_pool_put(sp, sp->done_ids[i]);
		else if (storefs.unlinkat(sp->tmp_fd, sp->done_ids[i], 0) < 0)
			log_warning(sp->done_ids[i],
				    "spool unlink-data error=%s",
				    spool_errname(errno));
	sp->n_done_ids = 0;
	if (sp->j_pending == 0 && (sp->j_size > max || sp->j_bad))
		spool_journal_repair(sp); /* to 0, as nothing is pending */
}

/* At close: what is owed, and an idle journal emptied. */
void
spool_journal_finish(struct spool *sp)
{
	spool_journal_settle(sp, 0);
}
