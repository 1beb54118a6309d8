/*
 * gstore.h - the guard's persistent state store (docs/guard-state.md).
 *
 * A few tables of opaque key -> value records, owned by the guard process
 * (single thread). Values are the caller's own fixed-layout records with a
 * version octet first; the store never interprets them. Writes are
 * batched in memory and committed by gstore_flush() in one transaction
 * (the guard flushes at most once a second and at shutdown), so a kill -9
 * loses at most the writes since the last flush.
 *
 * One implementation today (gstore.c, LMDB); the interface is small
 * so that a shared store (Redis, ...) can be added later without touching
 * the callers.
 */
#ifndef POSTERN_GSTORE_H
#define POSTERN_GSTORE_H

#include <stddef.h>

struct gstore;

enum gstore_table {
	GSTORE_LOCKOUT = 0,
	GSTORE_KNOWN_NETS,
	GSTORE_SEND,
	GSTORE_RCPTS,
	GSTORE_NOTICES, /* pending postmaster notices (guard_notice.c) */
	GSTORE_N_TABLES
};

#define GSTORE_KEY_MAX 480    /* LMDB's default key limit is 511 */
#define GSTORE_VALUE_MAX 4096 /* one record */
#define GSTORE_BATCH_MAX 65536

/* Open (creating) the store in directory `dir` (owned by the guard's
   account, mode 0700). A store that fails to open or whose contents fail a
   check is reported on the log (one line naming the file and the reason),
   moved aside (renamed with a .corrupt-<time> suffix) and rebuilt empty:
   never a crash. Returns 0, or -1 with *error_r only when even an empty
   store cannot be made. */
int gstore_open(const char *dir, struct gstore **st_r, const char **error_r);
/* Flushes the open batch (logging a failure) and closes. */
void gstore_close(struct gstore **st);

/* 1 found (value copied, *vlen_io set), 0 absent, -1 error (including a
   value longer than *vlen_io). Sees the open batch: a put or del not yet
   flushed is already visible. */
int gstore_get(struct gstore *st, enum gstore_table t, const void *key,
	       size_t klen, void *val, size_t *vlen_io);

/* Writes are batched: put/del go into the open batch; gstore_flush()
   commits it in one transaction. 0, or -1 (key or value too long, out of
   memory). */
int gstore_put(struct gstore *st, enum gstore_table t, const void *key,
	       size_t klen, const void *val, size_t vlen);
int gstore_del(struct gstore *st, enum gstore_table t, const void *key,
	       size_t klen);
/* Commit the open batch. -1 with *error_r (for example "store full")
   when the transaction fails: the batch is then dropped and nothing of it
   is written (the caller's in-memory state stays authoritative; it writes
   a record again when it next changes). A batch that reaches
   GSTORE_BATCH_MAX writes is committed by the put that fills it. */
int gstore_flush(struct gstore *st, const char **error_r);

/* Visit every record of a table (for loading at start and for expiry);
   fn returns 0 to go on, 1 to stop. Commits the open batch first (as
   gstore_flush), so it sees every put and del made before it. Returns 0,
   or -1 (that commit or a read failed). The callback may call gstore_put
   and gstore_del: they go into a new batch, not into this walk. */
int gstore_each(struct gstore *st, enum gstore_table t,
		int (*fn)(const void *k, size_t kl, const void *v, size_t vl,
			  void *arg),
		void *arg);

/* Additions to the shared contract. */
/* The bound on the file (LMDB's map): a full store makes gstore_flush()
   fail with "store full", logged, never a crash. */
#define GSTORE_MAP_SIZE ((size_t)256 * 1024 * 1024)
/* gstore_open() with another bound (tests). */
int gstore_open_size(const char *dir, size_t map_size, struct gstore **st_r,
		     const char **error_r);
/* Records committed in table t (for tests and `postern status`). */
size_t gstore_count(struct gstore *st, enum gstore_table t);
/* Writes waiting in the open batch. */
size_t gstore_pending(const struct gstore *st);

#endif
