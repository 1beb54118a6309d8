/*
 * lockout_int.h - what the lockout's files share (lockout.h is the
 * interface): the entry table (lockout.c), the keys (lockout_key.c), the
 * owners' known networks (lockout_known.c) and the persisted records
 * (lockout_rec.c). docs/lockout.md has the rules, docs/guard-state.md the
 * records.
 */
#ifndef POSTERN_LOCKOUT_INT_H
#define POSTERN_LOCKOUT_INT_H

#include "auth/lockout.h"

#define LOCKOUT_KEY_BYTES (1 + LOCKOUT_ACCOUNT_MAX)

struct lo_fail {
	time_t t;
	uint32_t fp;   /* keyed hash of (account, password); 0: unknown */
	uint32_t from; /* keyed hash of the client's /32 or /64; 0: unknown */
};

struct lo_entry {
	struct lo_entry *hnext;
	struct lo_entry *newer, *older; /* LRU */
	struct lo_entry *dnext, *dprev; /* the dirty list */
	uint64_t hash;
	time_t last;
	bool has_locked;
	bool is_dirty;	/* changed since the last export */
	bool is_stored; /* exported as a record (a removal is exported) */
	time_t locked_until;
	unsigned level; /* doublings of the current or last lock */
	unsigned lock_failures;
	unsigned inflight;
	unsigned conn_active;
	uint64_t tokens; /* in 1/RATE_UNIT of a session */
	time_t token_time;
	struct lo_fail *fails;
	unsigned n_fails, cap_fails;
	size_t key_len;
	unsigned char key[];
};

/* A removed entry whose record must be deleted. */
struct lo_gone {
	struct lo_gone *next;
	size_t key_len;
	unsigned char key[];
};

struct lockout {
	struct lockout_config cfg;
	unsigned char secret[LOCKOUT_SECRET_LEN];
	struct lo_entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t count;
	struct lo_entry *newest, *oldest;
	struct lo_entry *dirty;
	struct lo_gone *gone;
	/* Deletions handed to the last export: freed by the next one (that
	   flush committed), or put back by lockout_mark_all (it failed). */
	struct lo_gone *gone_sent;
	struct lockout_known *known;
};

/* A key in serialized form, as stored, hashed and persisted: the kind,
   then the family (4 or 6) and the masked address, or the account. */
struct lo_key {
	unsigned char b[LOCKOUT_KEY_BYTES];
	size_t len;
};

/* lockout.c */
struct lo_entry *lockout_entry_get(struct lockout *lo, const struct lo_key *k,
				   time_t now);
void lockout_entry_dirty(struct lockout *lo, struct lo_entry *e);
void lockout_gone_free(struct lo_gone **list);
void lockout_entry_clean(struct lockout *lo, struct lo_entry *e);
unsigned lockout_prefix_of(int family, enum lockout_kind kind);

/* lockout_key.c */
void lockout_mask_bits(unsigned char a[16], unsigned bits);
/* The account lower-cased (ASCII), cut at LOCKOUT_ACCOUNT_MAX; returns
   its length. */
size_t lockout_key_account(unsigned char *out, const char *account);
bool lockout_in_list(const struct config_network *v, size_t n, int family,
		     const unsigned char a[16]);

/* lockout_known.c: per account, the networks of its recent successful
   logins (IPv4 /24, IPv6 /64) for LOCKOUT_KNOWN_TTL, and those of the
   last hour (IPv4 /24, IPv6 /48) for the login-networks alarm. */
struct lockout_known *lockout_known_new(const unsigned char *secret,
					size_t max_accounts);
void lockout_known_free(struct lockout_known **kn);
bool lockout_known_has(const struct lockout_known *kn, const char *account,
		       int family, const unsigned char a[16], time_t now);
unsigned lockout_known_success(struct lockout_known *kn, const char *account,
			       int family, const unsigned char a[16],
			       time_t now, unsigned alarm_limit);
void lockout_known_expire(struct lockout_known *kn, time_t now);
size_t lockout_known_count(const struct lockout_known *kn);
size_t lockout_known_export(struct lockout_known *kn, time_t now,
			    time_t wall_now, lockout_export_cb *cb, void *arg);
int lockout_known_import(struct lockout_known *kn, const void *key,
			 size_t klen, const void *rec, size_t rlen, time_t now,
			 time_t wall_now);
void lockout_known_mark_all(struct lockout_known *kn);

#endif
