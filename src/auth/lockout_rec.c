/*
 * lockout_rec.c - the lockout's state as records for the guard's store
 * (lockout.h "Persistence", docs/guard-state.md). Pure: the caller moves
 * the records; times are written in wall-clock seconds and read back into
 * the caller's clock.
 *
 * A key's record (table LOCKOUT_TABLE_KEYS; the key is the serialized
 * lockout key: kind, then family and masked address, or the account):
 *
 *   0      version (1)
 *   1      flags: 1 has had a lock
 *   2      level: doublings of the current or last lock
 *   3      0
 *   4..11  end of the current or last lock (wall clock, signed, BE)
 *   12..15 failures counted when it was set
 *   16..17 failures in the window, n
 *   18..25 time of the oldest of them (wall clock)
 *   26..   n x 4 octets: each failure's time after the oldest
 */
#include "auth/lockout_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define REC_VERSION 1
#define REC_HEAD 26
#define REC_MAX (REC_HEAD + 4 * LOCKOUT_THRESHOLD_MAX)
#define REC_LEVEL_MAX 64
#define REC_TIME_SPAN ((int64_t)1 << 32) /* about 136 years */

static void
rec_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
rec_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void
rec_put64(unsigned char *p, int64_t v)
{
	rec_put32(p, (uint32_t)((uint64_t)v >> 32));
	rec_put32(p + 4, (uint32_t)v);
}

static int64_t
rec_get64(const unsigned char *p)
{
	return (int64_t)((uint64_t)rec_get32(p) << 32 | rec_get32(p + 4));
}

/* A stored wall-clock time, in the caller's clock; -1 when it is more
   than REC_TIME_SPAN away from now (damage: no arithmetic overflows). */
static int
rec_time(const unsigned char *p, time_t now, time_t wall_now, time_t *t_r)
{
	int64_t v = rec_get64(p);

	if (v < (int64_t)wall_now - REC_TIME_SPAN ||
	    v > (int64_t)wall_now + REC_TIME_SPAN)
		return -1;
	*t_r = (time_t)(v - (int64_t)wall_now) + now;
	return 0;
}

/* Worth a record: a lock (or its relapse memory), or failures. */
static bool
rec_worth(const struct lockout *lo, const struct lo_entry *e, time_t now)
{
	if (e->has_locked &&
	    now - e->locked_until < (time_t)lo->cfg.relapse_memory)
		return true;
	for (unsigned i = 0; i < e->n_fails; i++)
		if (now - e->fails[i].t < (time_t)lo->cfg.window)
			return true;
	return false;
}

static size_t
rec_encode(const struct lo_entry *e, unsigned char *r, time_t now,
	   time_t wall_now)
{
	time_t base = e->n_fails > 0 ? e->fails[0].t : now;

	memset(r, 0, REC_HEAD);
	r[0] = REC_VERSION;
	r[1] = e->has_locked ? 1 : 0;
	r[2] = (unsigned char)(e->level > REC_LEVEL_MAX ? REC_LEVEL_MAX
							: e->level);
	rec_put64(r + 4, (int64_t)(e->locked_until - now + wall_now));
	rec_put32(r + 12, e->lock_failures);
	r[16] = (unsigned char)(e->n_fails >> 8);
	r[17] = (unsigned char)e->n_fails;
	rec_put64(r + 18, (int64_t)(base - now + wall_now));
	for (unsigned i = 0; i < e->n_fails; i++)
		rec_put32(r + REC_HEAD + 4 * i, (uint32_t)(e->fails[i].t - base));
	return REC_HEAD + 4 * (size_t)e->n_fails;
}

size_t
lockout_export(struct lockout *lo, time_t now, time_t wall_now,
	       lockout_export_cb *cb, void *arg)
{
	static unsigned char rec[REC_MAX];
	size_t n = 0;

	lockout_gone_free(&lo->gone_sent); /* the last flush committed */
	while (lo->gone != NULL) {
		struct lo_gone *g = lo->gone;

		lo->gone = g->next;
		cb(LOCKOUT_TABLE_KEYS, g->key, g->key_len, NULL, 0, arg);
		g->next = lo->gone_sent;
		lo->gone_sent = g;
		n++;
	}
	while (lo->dirty != NULL) {
		struct lo_entry *e = lo->dirty;
		bool worth = rec_worth(lo, e, now);

		lockout_entry_clean(lo, e);
		if (!worth && !e->is_stored)
			continue;
		if (worth && e->n_fails <= LOCKOUT_THRESHOLD_MAX)
			cb(LOCKOUT_TABLE_KEYS, e->key, e->key_len, rec,
			   rec_encode(e, rec, now, wall_now), arg);
		else
			cb(LOCKOUT_TABLE_KEYS, e->key, e->key_len, NULL, 0, arg);
		e->is_stored = worth;
		n++;
	}
	return n + lockout_known_export(lo->known, now, wall_now, cb, arg);
}

/* The last flush failed: what it held may be lost. Every entry is
   written again, and one whose record may still be in the store (a
   deletion the failed batch dropped: an unlocked key) is deleted again;
   the deletions of removed keys are handed again too. */
void
lockout_mark_all(struct lockout *lo)
{
	for (struct lo_entry *e = lo->newest; e != NULL; e = e->older) {
		e->is_stored = true; /* not known: a deletion is harmless */
		lockout_entry_dirty(lo, e);
	}
	while (lo->gone_sent != NULL) {
		struct lo_gone *g = lo->gone_sent;

		lo->gone_sent = g->next;
		g->next = lo->gone;
		lo->gone = g;
	}
	lockout_known_mark_all(lo->known);
}

/* A serialized key as lockout.c makes them: kind, then 4 or 6 and the
   address masked to the kind's prefix, or a non-empty account. */
static bool
rec_key_ok(const unsigned char *k, size_t len)
{
	unsigned char a[16] = {0};
	int family;

	if (len < 2)
		return false;
	if (k[0] == LOCKOUT_ACCOUNT)
		return len <= 1 + LOCKOUT_ACCOUNT_MAX;
	if (k[0] > LOCKOUT_WIDE || (k[1] != 4 && k[1] != 6))
		return false;
	family = k[1] == 4 ? AF_INET : AF_INET6;
	if (len != (family == AF_INET ? 6u : 18u) ||
	    (family == AF_INET && k[0] == LOCKOUT_WIDE))
		return false;
	memcpy(a, k + 2, len - 2);
	lockout_mask_bits(a, lockout_prefix_of(family,
					       (enum lockout_kind)k[0]));
	return memcmp(a, k + 2, len - 2) == 0;
}

/* `base` and `until` in the caller's clock (rec_time). */
static int
rec_decode(struct lo_entry *e, const unsigned char *r, unsigned n,
	   time_t now, time_t base, time_t until)
{
	if (n > e->cap_fails) {
		struct lo_fail *f = realloc(e->fails, n * sizeof(*f));

		if (f == NULL)
			return -1;
		e->fails = f;
		e->cap_fails = n;
	}
	e->has_locked = (r[1] & 1) != 0;
	e->level = r[2];
	e->locked_until = until;
	e->lock_failures = rec_get32(r + 12);
	e->n_fails = n;
	for (unsigned i = 0; i < n; i++) {
		time_t t = base + (time_t)rec_get32(r + REC_HEAD + 4 * i);

		/* fp and from 0: unknown (the keys of the last process). */
		e->fails[i] = (struct lo_fail){.t = t > now ? now : t};
	}
	return 0;
}

static int
rec_import_key(struct lockout *lo, const unsigned char *k, size_t klen,
	       const unsigned char *r, size_t rlen, time_t now,
	       time_t wall_now)
{
	struct lo_entry *e;
	struct lo_key key;
	time_t base, until;
	unsigned n;

	if (!rec_key_ok(k, klen) || rlen < REC_HEAD || r[0] != REC_VERSION ||
	    (r[1] & ~1u) != 0 || r[2] > REC_LEVEL_MAX || r[3] != 0)
		return -1;
	n = (unsigned)r[16] << 8 | r[17];
	if (n > LOCKOUT_THRESHOLD_MAX || rlen != REC_HEAD + 4 * (size_t)n ||
	    rec_get32(r + 12) > LOCKOUT_THRESHOLD_MAX ||
	    rec_time(r + 18, now, wall_now, &base) < 0 ||
	    rec_time(r + 4, now, wall_now, &until) < 0)
		return -1;
	memcpy(key.b, k, klen);
	key.len = klen;
	if ((e = lockout_entry_get(lo, &key, now)) == NULL ||
	    rec_decode(e, r, n, now, base, until) < 0)
		return -1;
	e->is_stored = true;
	return 0;
}

int
lockout_import(struct lockout *lo, enum lockout_table table, const void *key,
	       size_t klen, const void *rec, size_t rlen, time_t now,
	       time_t wall_now)
{
	if (table == LOCKOUT_TABLE_KNOWN)
		return lockout_known_import(lo->known, key, klen, rec, rlen,
					    now, wall_now);
	return rec_import_key(lo, key, klen, rec, rlen, now, wall_now);
}
