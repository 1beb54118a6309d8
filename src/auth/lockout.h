/*
 * lockout.h - failed-login lockout and per-address connection limits, as
 * pure state: no I/O, no clock (every call takes `now`, seconds of any
 * monotonic clock). The guard owns one instance; docs/lockout.md has the
 * rules.
 *
 * Keys: an account (lower-cased), a client address (IPv4 /32, IPv6 /64),
 * its network (IPv4 /24, IPv6 /48) and, for IPv6, its wide prefix (/32).
 * An IPv4-mapped IPv6 address counts as IPv4. An account lock spares the
 * networks (IPv4 /24, IPv6 /64) its owner logged in from successfully in
 * the last LOCKOUT_KNOWN_TTL. Keys are hashed with a secret SipHash key (THREATS Q-05: no
 * attacker-chosen collisions), and the table is bounded.
 */
#ifndef POSTERN_LOCKOUT_H
#define POSTERN_LOCKOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/config.h"

#define LOCKOUT_SECRET_LEN 32
#define LOCKOUT_ACCOUNT_MAX 320	 /* longer account names are cut */
#define LOCKOUT_KEY_TEXT_MAX 336 /* "2001:db8::/48", or an account */
#define LOCKOUT_THRESHOLD_MAX 1000
#define LOCKOUT_RELAPSE_MEMORY 86400 /* a lock within a day doubles */
#define LOCKOUT_MAX_KEYS 100000
#define LOCKOUT_NET_FACTOR 3 /* /24 and /48 threshold: 3x the address */
#define LOCKOUT_WIDE_FACTOR 10 /* IPv6 /32 threshold: 10x the address */
#define LOCKOUT_KNOWN_TTL (30 * 86400) /* a known network is spared */
#define LOCKOUT_KNOWN_NETS 16	       /* per account, oldest dropped */
#define LOCKOUT_RECENT_NETS 64	       /* per account, in the last hour */
#define LOCKOUT_ALARM_WINDOW 3600

enum lockout_kind {
	LOCKOUT_ACCOUNT = 0,
	LOCKOUT_ADDRESS, /* IPv4 /32, IPv6 /64 */
	LOCKOUT_NETWORK, /* IPv4 /24, IPv6 /48 */
	LOCKOUT_WIDE,	 /* IPv6 /32 only: AUTH only, never at connect */
};
#define LOCKOUT_N_KINDS 4
#define LOCKOUT_MAX_EVENTS LOCKOUT_N_KINDS

enum lockout_verdict {
	LOCKOUT_OK = 0,
	LOCKOUT_LOCKED,
	LOCKOUT_TOO_MANY, /* concurrent sessions */
	LOCKOUT_TOO_FAST, /* new sessions a minute */
};

struct lockout_config {
	unsigned account_failures; /* failures in window, then locked; 0 off */
	unsigned address_failures; /* per /32 or /64; 0 off */
	unsigned network_failures; /* per /24 or /48; 0 off */
	unsigned wide_failures;	   /* per IPv6 /32; 0 off */
	unsigned login_networks;   /* alarm past this many /24, /48 an hour;
				      0 off */
	unsigned window;	   /* seconds */
	unsigned lock_time;	   /* first lock, seconds */
	unsigned lock_max;	   /* longest lock, seconds */
	unsigned relapse_memory;   /* seconds after a lock ends */
	unsigned conn_limit;	   /* concurrent per /32 or /64; 0 off */
	unsigned conn_rate;	   /* new per minute per /32 or /64; 0 off */
	const struct config_network *allow;
	size_t n_allow;
	const struct config_network *exempt; /* from conn_limit, conn_rate */
	size_t n_exempt;
	size_t max_keys;
};

/* A lock, as reported when it is set and by lockout_list(). */
struct lockout_event {
	enum lockout_kind kind;
	char key[LOCKOUT_KEY_TEXT_MAX]; /* "192.0.2.0/24", or the account */
	time_t until;			/* in the caller's clock */
	unsigned seconds;		/* length of this lock */
	unsigned failures;		/* counted when it was set */
};

struct lockout;

/* The guard's settings from the configuration (docs/lockout.md). The
   allow-list and the exempt list are referenced, not copied: keep `cfg`
   alive. */
void lockout_config_from(struct lockout_config *lc, const struct config *cfg);

/* `secret` keys the table hash and the password fingerprints; the guard
   draws it at random. Returns NULL when out of memory. */
struct lockout *lockout_new(const struct lockout_config *lc,
			    const unsigned char secret[LOCKOUT_SECRET_LEN]);
void lockout_free(struct lockout **lo);
/* New settings (reload); entries and locks are kept. */
void lockout_set_config(struct lockout *lo, const struct lockout_config *lc);

/* Is `addr` (text) in the allow-list? */
bool lockout_is_allowed(const struct lockout *lo, const char *addr);

/*
 * An AUTH attempt may be verified? LOCKOUT_LOCKED when the account, the
 * address or its network is locked, or when the failures in the window
 * plus the attempts still being verified already reach a threshold (so
 * parallel guesses cannot overrun it); `ev_r` (may be NULL) then names the
 * key. On LOCKOUT_OK the attempt is "in flight" and the caller must end it
 * with exactly one of the three calls below, with the same addr/account.
 */
enum lockout_verdict lockout_auth_begin(struct lockout *lo, const char *addr,
					const char *account, time_t now,
					struct lockout_event *ev_r);
/* Is the account, the address or its network locked now? (A check only:
   nothing starts, nothing to end.) */
enum lockout_verdict lockout_auth_check(const struct lockout *lo,
					const char *addr, const char *account,
					time_t now, struct lockout_event *ev_r);
/*
 * The password was wrong (or the user unknown). Counts one failure per
 * key, unless the same (account, password) already failed for that key in
 * the window. Fills ev_r[0..3] with the locks this failure set and returns
 * their number.
 */
size_t lockout_auth_failure(struct lockout *lo, const char *addr,
			    const char *account, const char *pass,
			    size_t pass_len, time_t now,
			    struct lockout_event ev_r[LOCKOUT_MAX_EVENTS]);
/* The password was right: forget the account's failures from this client
   address (not the address's own failures), and remember its network as
   one the owner uses. Returns 0, or, when this login makes the account's
   distinct networks (/24, /48) of the last hour more than login_networks
   for the first time in an hour, their number (raise the alarm). */
unsigned lockout_auth_success(struct lockout *lo, const char *addr,
			      const char *account, time_t now);
/* No verdict (internal error): only end the attempt. */
void lockout_auth_abort(struct lockout *lo, const char *addr,
			const char *account, time_t now);

/* A new session: OK (then counted until lockout_conn_close), LOCKED,
   TOO_MANY or TOO_FAST. An address in the allow-list is always OK; one
   in the exempt list is OK unless locked, and is not counted. */
enum lockout_verdict lockout_conn_open(struct lockout *lo, const char *addr,
				       time_t now, struct lockout_event *ev_r);
void lockout_conn_close(struct lockout *lo, const char *addr, time_t now);

/* Forget idle entries (call every minute or so). */
void lockout_expire(struct lockout *lo, time_t now);
size_t lockout_count(const struct lockout *lo);

/* Call `cb` for every lock in force; returns how many. */
typedef void lockout_list_cb(const struct lockout_event *ev, void *arg);
size_t lockout_list(const struct lockout *lo, time_t now, lockout_list_cb *cb,
		    void *arg);

/*
 * Lift locks and forget failures: "192.0.2.7" (its /32 and its /24),
 * "192.0.2.0/24" or "192.0.2.7/32" (that entry only), the same for IPv6
 * with /64 and /48, or an account. Returns the number of entries reset,
 * 0 when none was known.
 */
size_t lockout_unlock(struct lockout *lo, const char *key, time_t now);

/*
 * Persistence (docs/guard-state.md). Records are the lockout's own: a
 * version octet, then fixed fields, times in wall-clock seconds (`now` is
 * the caller's clock, `wall_now` the same instant in time(NULL) seconds).
 * Export hands every key changed since the last export to `cb`, with
 * rec == NULL for a key to delete; import takes one record back, -1 when
 * it is not valid (then nothing changes). Failures imported have no
 * password fingerprint: a repeat of a password tried before a restart
 * counts again.
 */
enum lockout_table { LOCKOUT_TABLE_KEYS = 0, LOCKOUT_TABLE_KNOWN };
typedef int lockout_export_cb(enum lockout_table table, const void *key,
			      size_t klen, const void *rec, size_t rlen,
			      void *arg);
size_t lockout_export(struct lockout *lo, time_t now, time_t wall_now,
		      lockout_export_cb *cb, void *arg);
int lockout_import(struct lockout *lo, enum lockout_table table,
		   const void *key, size_t klen, const void *rec, size_t rlen,
		   time_t now, time_t wall_now);
/* Mark every key for the next export (after a failed write). */
void lockout_mark_all(struct lockout *lo);

/* Is `addr`'s /24 or /64 a known network of `account` now? */
bool lockout_is_known(const struct lockout *lo, const char *addr,
		      const char *account, time_t now);

/* Parse a client address: 0 with family and 16 octets (IPv4 in the first
   4), -1 when it is not an address. IPv4-mapped IPv6 becomes IPv4. */
int lockout_parse_addr(const char *text, int *family_r,
		       unsigned char addr_r[16]);

#endif
