/*
 * notices.h - the postmaster notices of send-burst alarms that the guard
 * keeps pending until a worker says the notice is committed to the spool
 * (docs/sendlimit.md "The postmaster's notice"). Pure: no I/O, no clock
 * of its own; guard_notice.c hands the notices to workers and keeps the
 * records in the guard's store.
 *
 * A notice is handed to one worker at a time. It is handed again when
 * that worker is gone, or when it has not confirmed within NOTICES_RETRY
 * seconds; after NOTICES_ATTEMPTS handings without a confirmation it is
 * given up (the caller logs it). So a notice is never handed in a loop,
 * and it is sent twice only when a worker committed it and died (or lost
 * the guard) before its confirmation arrived.
 */
#ifndef POSTERN_NOTICES_H
#define POSTERN_NOTICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOTICES_MAX 1024	   /* pending at once */
#define NOTICES_ATTEMPTS 5	   /* handings before giving up */
#define NOTICES_RETRY 60	   /* seconds a handed notice waits */
#define NOTICES_ACCOUNT_MAX 320	   /* as GUARD_USER_MAX */
#define NOTICES_KEY_LEN 4	   /* the record's key: its number */
#define NOTICES_REC_FIXED 18	   /* the record before the account */
#define NOTICES_REC_MAX (NOTICES_REC_FIXED + NOTICES_ACCOUNT_MAX)

struct notices;

struct notice_pending {
	uint32_t id;		/* its number, never 0 */
	char account[NOTICES_ACCOUNT_MAX + 1];
	uint32_t count;		/* the sliding hour of the alarm */
	uint32_t baseline;	/* hundredths of a recipient an hour */
	int64_t raised;		/* wall-clock time of the alarm */
	unsigned attempts;	/* handings so far */
	/* in memory only */
	int64_t due;		/* (caller's clock) when to hand it again */
	unsigned holder;	/* the worker it was last handed to, 0: none */
};

enum notices_step {
	NOTICES_WAIT,	 /* handed, the worker is there, not yet due */
	NOTICES_HAND,	 /* hand it (again) */
	NOTICES_GIVE_UP, /* handed NOTICES_ATTEMPTS times: forget it */
};

enum notices_done {
	NOTICES_DONE_OK,	/* confirmed: removed */
	NOTICES_DONE_UNKNOWN,	/* no notice of that number is pending */
	NOTICES_DONE_MISMATCH,	/* pending, for another account: kept */
};

struct notices *notices_new(void);
void notices_free(struct notices **n);

/* A new pending notice (its number the next unused one), never handed.
   NULL when NOTICES_MAX are pending or the account is not acceptable. */
struct notice_pending *notices_add(struct notices *n, const char *account,
				   uint32_t count, uint32_t baseline,
				   int64_t raised);
/* A worker's confirmation of notice `id` for `account` (any case). */
enum notices_done notices_done(struct notices *n, uint32_t id,
			       const char *account);
/* Forget notice `id` (given up). */
void notices_remove(struct notices *n, uint32_t id);

size_t notices_count(const struct notices *n);
/* The i-th pending notice (0 .. count - 1), oldest first; removing one
   moves those after it down. */
struct notice_pending *notices_at(struct notices *n, size_t i);

/* What to do with `p` at `now`; `holder_alive`: the worker it was last
   handed to is still connected. */
enum notices_step notices_step(const struct notice_pending *p, int64_t now,
			       bool holder_alive);
/* `p` was handed to worker `serial` at `now`. */
void notices_handed(struct notice_pending *p, unsigned serial, int64_t now);

/*
 * The store's record of `p`: key = its number (4 octets, big-endian);
 * value = version (1), count (4), baseline (4), raised (8, signed),
 * attempts (1), then the account (1 .. NOTICES_ACCOUNT_MAX octets, no
 * NUL, CR or LF); numbers big-endian. Returns the value's length.
 */
size_t notices_export(const struct notice_pending *p,
		      unsigned char key[NOTICES_KEY_LEN],
		      unsigned char rec[NOTICES_REC_MAX]);
/* A record back (at start): 0, or -1 when it is not one (bad key,
   version, length, account, attempts over the bound, a number already
   pending): the caller deletes it. Due at once, handed to nobody. */
int notices_import(struct notices *n, const void *key, size_t klen,
		   const void *rec, size_t rlen);

#endif
