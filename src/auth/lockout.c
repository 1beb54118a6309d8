/*
 * lockout.c - failure windows, locks and per-address limits (lockout.h).
 *
 * One table of entries keyed by a serialized key (kind, then the masked
 * address or the lower-cased account), hashed with SipHash under a secret
 * key, chained; and one LRU list through the same entries (head: touched
 * last) for eviction and expiry. Each entry keeps its recent failures,
 * oldest first, at most `threshold` of them: the count in the window
 * reaches the threshold exactly when the oldest kept one is still inside.
 * Keys (lockout_key.c), the owners' known networks (lockout_known.c) and
 * the persisted records (lockout_rec.c) have their own files.
 */
#include "auth/lockout_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#define EVICT_SCAN 64 /* entries looked at for an unlocked victim */
#define RATE_UNIT 60  /* a token is 60 units: rate per minute, per s */

/* --- keys ------------------------------------------------------------ */

unsigned
lockout_prefix_of(int family, enum lockout_kind kind)
{
	if (family == AF_INET)
		return kind == LOCKOUT_ADDRESS ? 32 : 24;
	if (kind == LOCKOUT_WIDE)
		return 32;
	return kind == LOCKOUT_ADDRESS ? 64 : 48;
}

static void
key_addr(struct lo_key *k, enum lockout_kind kind, int family,
	 const unsigned char addr[16])
{
	unsigned char a[16];
	unsigned n = family == AF_INET ? 4 : 16;

	memcpy(a, addr, 16);
	lockout_mask_bits(a, lockout_prefix_of(family, kind));
	k->b[0] = (unsigned char)kind;
	k->b[1] = family == AF_INET ? 4 : 6;
	memcpy(k->b + 2, a, n);
	k->len = 2 + n;
}

/* Accounts compare ASCII case-insensitively; longer names are cut. */
static void
key_account(struct lo_key *k, const char *account)
{
	k->b[0] = LOCKOUT_ACCOUNT;
	k->len = 1 + lockout_key_account(k->b + 1, account);
}

static uint64_t
key_hash(const struct lockout *lo, const unsigned char *b, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h = 0;

	crypto_shorthash(out, b, len, lo->secret);
	for (size_t i = 0; i < sizeof(out); i++)
		h = h << 8 | out[i];
	return h;
}

/* Render a stored key for logs and `postern locks`. */
static void
key_text(const struct lo_entry *e, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	unsigned char raw[16] = {0};
	int n;

	if (e->key[0] == LOCKOUT_ACCOUNT) {
		size_t len = e->key_len - 1;

		if (len >= size)
			len = size - 1;
		memcpy(buf, e->key + 1, len);
		buf[len] = '\0';
		return;
	}
	int family = e->key[1] == 4 ? AF_INET : AF_INET6;

	memcpy(raw, e->key + 2, e->key_len - 2);
	if (inet_ntop(family, raw, a, sizeof(a)) == NULL)
		a[0] = '\0';
	n = snprintf(buf, size, "%s/%u", a,
		     lockout_prefix_of(family, (enum lockout_kind)e->key[0]));
	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0';
}

/* --- the table ------------------------------------------------------- */

static void
lru_unlink(struct lockout *lo, struct lo_entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		lo->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		lo->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
lru_push(struct lockout *lo, struct lo_entry *e)
{
	e->older = lo->newest;
	e->newer = NULL;
	if (lo->newest != NULL)
		lo->newest->newer = e;
	lo->newest = e;
	if (lo->oldest == NULL)
		lo->oldest = e;
}

static void
touch(struct lockout *lo, struct lo_entry *e, time_t now)
{
	e->last = now;
	if (lo->newest != e) {
		lru_unlink(lo, e);
		lru_push(lo, e);
	}
}

static struct lo_entry *
find(const struct lockout *lo, const struct lo_key *k)
{
	uint64_t h = key_hash(lo, k->b, k->len);
	struct lo_entry *e = lo->buckets[h & (lo->n_buckets - 1)];

	for (; e != NULL; e = e->hnext)
		if (e->hash == h && e->key_len == k->len &&
		    memcmp(e->key, k->b, k->len) == 0)
			return e;
	return NULL;
}

void
lockout_gone_free(struct lo_gone **list)
{
	while (*list != NULL) {
		struct lo_gone *g = *list;

		*list = g->next;
		free(g);
	}
}

/* Remove `e`; its record is deleted at the next export when it had one
   (unless the whole table goes: `is_final`). */
static void
remove_entry(struct lockout *lo, struct lo_entry *e, bool is_final)
{
	struct lo_entry **pp = &lo->buckets[e->hash & (lo->n_buckets - 1)];
	struct lo_gone *g;

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(lo, e);
	if (e->is_dirty)
		lockout_entry_clean(lo, e);
	if (e->is_stored && !is_final &&
	    (g = malloc(sizeof(*g) + e->key_len)) != NULL) {
		g->key_len = e->key_len;
		memcpy(g->key, e->key, e->key_len);
		g->next = lo->gone;
		lo->gone = g;
	}
	lo->count--;
	free(e->fails);
	free(e);
}

static bool
entry_busy(const struct lo_entry *e, time_t now)
{
	return (e->has_locked && e->locked_until > now) || e->inflight > 0 ||
	       e->conn_active > 0;
}

/* Make room for one more: the oldest entry that holds no lock and no
   session, among the EVICT_SCAN oldest; else simply the oldest. */
static void
evict_one(struct lockout *lo, time_t now)
{
	struct lo_entry *e = lo->oldest, *victim = lo->oldest;

	for (unsigned i = 0; e != NULL && i < EVICT_SCAN; i++, e = e->newer)
		if (!entry_busy(e, now)) {
			victim = e;
			break;
		}
	if (victim != NULL)
		remove_entry(lo, victim, false);
}

void
lockout_entry_dirty(struct lockout *lo, struct lo_entry *e)
{
	if (e->is_dirty)
		return;
	e->is_dirty = true;
	e->dprev = NULL;
	e->dnext = lo->dirty;
	if (lo->dirty != NULL)
		lo->dirty->dprev = e;
	lo->dirty = e;
}

void
lockout_entry_clean(struct lockout *lo, struct lo_entry *e)
{
	if (!e->is_dirty)
		return;
	if (e->dprev != NULL)
		e->dprev->dnext = e->dnext;
	else
		lo->dirty = e->dnext;
	if (e->dnext != NULL)
		e->dnext->dprev = e->dprev;
	e->dnext = e->dprev = NULL;
	e->is_dirty = false;
}

struct lo_entry *
lockout_entry_get(struct lockout *lo, const struct lo_key *k, time_t now)
{
	struct lo_entry *e = find(lo, k);
	size_t b;

	if (e != NULL) {
		touch(lo, e, now);
		return e;
	}
	while (lo->count >= lo->cfg.max_keys && lo->count > 0)
		evict_one(lo, now);
	e = calloc(1, sizeof(*e) + k->len);
	if (e == NULL)
		return NULL;
	e->hash = key_hash(lo, k->b, k->len);
	e->key_len = k->len;
	memcpy(e->key, k->b, k->len);
	e->last = now;
	b = e->hash & (lo->n_buckets - 1);
	e->hnext = lo->buckets[b];
	lo->buckets[b] = e;
	lru_push(lo, e);
	lo->count++;
	return e;
}

/* --- configuration --------------------------------------------------- */

static unsigned
clamp_threshold(unsigned n)
{
	return n > LOCKOUT_THRESHOLD_MAX ? LOCKOUT_THRESHOLD_MAX : n;
}

void
lockout_config_from(struct lockout_config *lc, const struct config *cfg)
{
	memset(lc, 0, sizeof(*lc));
	lc->account_failures = clamp_threshold(cfg->auth_account_failures);
	lc->address_failures = clamp_threshold(cfg->auth_address_failures);
	lc->network_failures =
	    clamp_threshold(LOCKOUT_NET_FACTOR * cfg->auth_address_failures);
	lc->wide_failures =
	    clamp_threshold(LOCKOUT_WIDE_FACTOR * cfg->auth_address_failures);
	lc->login_networks = cfg->login_networks_hour;
	lc->window = cfg->auth_failure_window;
	lc->lock_time = cfg->auth_lock_time;
	lc->lock_max = cfg->auth_lock_max;
	lc->relapse_memory = LOCKOUT_RELAPSE_MEMORY;
	lc->conn_limit = cfg->conn_limit_per_address;
	lc->conn_rate = cfg->conn_rate_per_address;
	lc->allow = cfg->auth_allow;
	lc->n_allow = cfg->n_auth_allow;
	lc->exempt = cfg->conn_limit_exempt;
	lc->n_exempt = cfg->n_conn_limit_exempt;
	lc->max_keys = LOCKOUT_MAX_KEYS;
}

void
lockout_set_config(struct lockout *lo, const struct lockout_config *lc)
{
	lo->cfg = *lc;
	lo->cfg.account_failures = clamp_threshold(lc->account_failures);
	lo->cfg.address_failures = clamp_threshold(lc->address_failures);
	lo->cfg.network_failures = clamp_threshold(lc->network_failures);
	lo->cfg.wide_failures = clamp_threshold(lc->wide_failures);
	if (lo->cfg.max_keys < 16)
		lo->cfg.max_keys = 16;
	if (lo->cfg.lock_max < lo->cfg.lock_time)
		lo->cfg.lock_max = lo->cfg.lock_time;
}

struct lockout *
lockout_new(const struct lockout_config *lc,
	    const unsigned char secret[LOCKOUT_SECRET_LEN])
{
	struct lockout *lo;
	size_t n = 64;

	if (sodium_init() < 0)
		return NULL;
	lo = calloc(1, sizeof(*lo));
	if (lo == NULL)
		return NULL;
	lockout_set_config(lo, lc);
	while (n < lo->cfg.max_keys && n < ((size_t)1 << 20))
		n <<= 1;
	lo->buckets = calloc(n, sizeof(*lo->buckets));
	if (lo->buckets == NULL) {
		free(lo);
		return NULL;
	}
	lo->n_buckets = n;
	memcpy(lo->secret, secret, LOCKOUT_SECRET_LEN);
	lo->known = lockout_known_new(secret, lo->cfg.max_keys);
	if (lo->known == NULL) {
		free(lo->buckets);
		free(lo);
		return NULL;
	}
	return lo;
}

void
lockout_free(struct lockout **lop)
{
	struct lockout *lo = *lop;

	if (lo == NULL)
		return;
	while (lo->oldest != NULL)
		remove_entry(lo, lo->oldest, true);
	lockout_gone_free(&lo->gone);
	lockout_gone_free(&lo->gone_sent);
	lockout_known_free(&lo->known);
	free(lo->buckets);
	sodium_memzero(lo->secret, sizeof(lo->secret));
	free(lo);
	*lop = NULL;
}

size_t
lockout_count(const struct lockout *lo)
{
	return lo->count;
}

/* --- allow-list ------------------------------------------------------ */

static bool
allowed(const struct lockout *lo, int family, const unsigned char a[16])
{
	return lockout_in_list(lo->cfg.allow, lo->cfg.n_allow, family, a);
}

bool
lockout_is_allowed(const struct lockout *lo, const char *addr)
{
	unsigned char a[16];
	int family;

	return lockout_parse_addr(addr, &family, a) == 0 &&
	       allowed(lo, family, a);
}

/* --- failures and locks ---------------------------------------------- */

static unsigned
threshold_of(const struct lockout *lo, enum lockout_kind kind)
{
	switch (kind) {
	case LOCKOUT_ACCOUNT:
		return lo->cfg.account_failures;
	case LOCKOUT_ADDRESS:
		return lo->cfg.address_failures;
	case LOCKOUT_NETWORK:
		return lo->cfg.network_failures;
	case LOCKOUT_WIDE:
		return lo->cfg.wide_failures;
	}
	return 0;
}

static bool
is_locked(const struct lo_entry *e, time_t now)
{
	return e->has_locked && e->locked_until > now;
}

/* Drop the failures that slid out of the window. */
static void
prune(const struct lockout *lo, struct lo_entry *e, time_t now)
{
	unsigned i = 0;

	while (i < e->n_fails && now - e->fails[i].t >= (time_t)lo->cfg.window)
		i++;
	if (i > 0) {
		memmove(e->fails, e->fails + i,
			(e->n_fails - i) * sizeof(*e->fails));
		e->n_fails -= i;
	}
}

static void
fill_event(const struct lo_entry *e, struct lockout_event *ev)
{
	if (ev == NULL)
		return;
	ev->kind = (enum lockout_kind)e->key[0];
	key_text(e, ev->key, sizeof(ev->key));
	ev->until = e->locked_until;
	ev->seconds = 0;
	ev->failures = e->lock_failures;
}

/* Lock `e`: lock_time, doubled for each relapse (a new lock less than
   relapse_memory after the last one ended), at most lock_max. */
static void
set_lock(struct lockout *lo, struct lo_entry *e, time_t now,
	 struct lockout_event *ev)
{
	uint64_t secs = lo->cfg.lock_time;

	if (e->has_locked &&
	    now - e->locked_until < (time_t)lo->cfg.relapse_memory)
		e->level++;
	else
		e->level = 0;
	for (unsigned i = 0; i < e->level && secs < lo->cfg.lock_max; i++)
		secs *= 2;
	if (secs > lo->cfg.lock_max)
		secs = lo->cfg.lock_max;
	e->has_locked = true;
	e->locked_until = now + (time_t)secs;
	e->lock_failures = e->n_fails;
	/* The failures are spent: after the lock, counting starts over. */
	e->n_fails = 0;
	lockout_entry_dirty(lo, e);
	fill_event(e, ev);
	if (ev != NULL)
		ev->seconds = (unsigned)secs;
}

/* Record one failure on `e`; 1 when it set a lock. */
static int
add_failure(struct lockout *lo, struct lo_entry *e, unsigned threshold,
	    uint32_t fp, uint32_t from, time_t now, struct lockout_event *ev)
{
	if (is_locked(e, now))
		return 0;
	prune(lo, e, now);
	for (unsigned i = 0; i < e->n_fails; i++)
		if (e->fails[i].fp == fp)
			return 0; /* the same wrong password: counted once */
	if (e->cap_fails < threshold) {
		struct lo_fail *f = realloc(e->fails, threshold * sizeof(*f));

		if (f == NULL)
			return 0;
		e->fails = f;
		e->cap_fails = threshold;
	}
	if (e->n_fails >= threshold) { /* threshold lowered by a reload */
		memmove(e->fails, e->fails + 1,
			(e->n_fails - 1) * sizeof(*e->fails));
		e->n_fails--;
	}
	e->fails[e->n_fails].t = now;
	e->fails[e->n_fails].fp = fp;
	e->fails[e->n_fails].from = from;
	e->n_fails++;
	lockout_entry_dirty(lo, e);
	if (e->n_fails < threshold)
		return 0;
	set_lock(lo, e, now, ev);
	return 1;
}

/* The keys an attempt touches: account, address, network, and for IPv6
   the wide prefix (when given and parseable, and when their threshold is
   not 0). `is_known`: the client is in one of the account's known
   networks, so the account's lock and count do not stop it. */
struct lo_keys {
	struct lo_key k[LOCKOUT_MAX_EVENTS];
	enum lockout_kind kind[LOCKOUT_MAX_EVENTS];
	size_t n;
	bool is_allowed, has_addr, is_known;
	int family;
	unsigned char a[16];
	uint32_t from;
};

static void
keys_of(const struct lockout *lo, const char *addr, const char *account,
	time_t now, struct lo_keys *ks)
{
	unsigned char *a = ks->a;
	int family;
	bool has_addr = lockout_parse_addr(addr, &family, a) == 0;
	int last = has_addr && family == AF_INET6 ? LOCKOUT_WIDE
						  : LOCKOUT_NETWORK;

	ks->n = 0;
	ks->from = 0;
	ks->family = family;
	ks->has_addr = has_addr;
	ks->is_allowed = has_addr && allowed(lo, family, a);
	ks->is_known = has_addr && account != NULL &&
		       lockout_known_has(lo->known, account, family, a, now);
	if (account != NULL && lo->cfg.account_failures > 0) {
		key_account(&ks->k[ks->n], account);
		ks->kind[ks->n++] = LOCKOUT_ACCOUNT;
	}
	if (!has_addr)
		return;
	for (int kind = LOCKOUT_ADDRESS; kind <= last; kind++) {
		struct lo_key k;

		key_addr(&k, (enum lockout_kind)kind, family, a);
		if (kind == LOCKOUT_ADDRESS)
			ks->from = (uint32_t)key_hash(lo, k.b, k.len);
		if (threshold_of(lo, (enum lockout_kind)kind) == 0)
			continue;
		ks->k[ks->n] = k;
		ks->kind[ks->n++] = (enum lockout_kind)kind;
	}
}

enum lockout_verdict
lockout_auth_check(const struct lockout *lo, const char *addr,
		   const char *account, time_t now, struct lockout_event *ev_r)
{
	struct lo_keys ks;
	struct lo_entry *e;

	keys_of(lo, addr, account, now, &ks);
	if (ks.is_allowed)
		return LOCKOUT_OK;
	for (size_t i = 0; i < ks.n; i++) {
		if (ks.is_known && ks.kind[i] == LOCKOUT_ACCOUNT)
			continue; /* the owner's own network */
		if ((e = find(lo, &ks.k[i])) != NULL && is_locked(e, now)) {
			fill_event(e, ev_r);
			return LOCKOUT_LOCKED;
		}
	}
	return LOCKOUT_OK;
}

enum lockout_verdict
lockout_auth_begin(struct lockout *lo, const char *addr, const char *account,
		   time_t now, struct lockout_event *ev_r)
{
	struct lo_keys ks;
	struct lo_entry *e;

	/* Locks first, then failures plus attempts in flight. */
	if (lockout_auth_check(lo, addr, account, now, ev_r) != LOCKOUT_OK)
		return LOCKOUT_LOCKED;
	keys_of(lo, addr, account, now, &ks);
	if (ks.is_allowed)
		return LOCKOUT_OK;
	for (size_t i = 0; i < ks.n; i++) {
		if ((ks.is_known && ks.kind[i] == LOCKOUT_ACCOUNT) ||
		    (e = find(lo, &ks.k[i])) == NULL)
			continue;
		prune(lo, e, now);
		if (e->n_fails + e->inflight >= threshold_of(lo, ks.kind[i])) {
			fill_event(e, ev_r);
			return LOCKOUT_LOCKED;
		}
	}
	for (size_t i = 0; i < ks.n; i++)
		if ((e = lockout_entry_get(lo, &ks.k[i], now)) != NULL)
			e->inflight++;
	return LOCKOUT_OK;
}

/* End an attempt on every key; returns the entries through `es`. */
static void
end_attempt(struct lockout *lo, const struct lo_keys *ks, bool create,
	    time_t now, struct lo_entry *es[LOCKOUT_MAX_EVENTS])
{
	for (size_t i = 0; i < ks->n; i++) {
		struct lo_entry *e = create ? lockout_entry_get(lo, &ks->k[i], now)
					    : find(lo, &ks->k[i]);

		if (e != NULL && e->inflight > 0)
			e->inflight--;
		es[i] = e;
	}
}

/* Keyed hash of (account lower-cased, NUL, password). */
static uint32_t
fingerprint(const struct lockout *lo, const char *account, const char *pass,
	    size_t pass_len)
{
	crypto_generichash_state st;
	unsigned char out[crypto_generichash_BYTES_MIN];
	struct lo_key k;
	uint32_t fp;

	key_account(&k, account != NULL ? account : "");
	crypto_generichash_init(&st, lo->secret, LOCKOUT_SECRET_LEN,
				sizeof(out));
	crypto_generichash_update(&st, k.b, k.len);
	crypto_generichash_update(&st, (const unsigned char *)"", 1);
	crypto_generichash_update(&st, (const unsigned char *)pass, pass_len);
	crypto_generichash_final(&st, out, sizeof(out));
	sodium_memzero(&st, sizeof(st));
	fp = (uint32_t)out[0] << 24 | (uint32_t)out[1] << 16 |
	     (uint32_t)out[2] << 8 | out[3];
	return fp != 0 ? fp : 1; /* 0: a failure restored from the store */
}

size_t
lockout_auth_failure(struct lockout *lo, const char *addr, const char *account,
		     const char *pass, size_t pass_len, time_t now,
		     struct lockout_event ev_r[LOCKOUT_MAX_EVENTS])
{
	struct lo_entry *es[LOCKOUT_MAX_EVENTS];
	struct lo_keys ks;
	uint32_t fp;
	size_t n = 0;

	keys_of(lo, addr, account, now, &ks);
	if (ks.is_allowed)
		return 0;
	fp = fingerprint(lo, account, pass, pass_len);
	end_attempt(lo, &ks, true, now, es);
	for (size_t i = 0; i < ks.n; i++)
		if (es[i] != NULL)
			n += (size_t)add_failure(lo, es[i],
						 threshold_of(lo, ks.kind[i]),
						 fp, ks.from, now, &ev_r[n]);
	return n;
}

unsigned
lockout_auth_success(struct lockout *lo, const char *addr, const char *account,
		     time_t now)
{
	struct lo_entry *es[LOCKOUT_MAX_EVENTS];
	struct lo_keys ks;
	unsigned alarm = 0;

	keys_of(lo, addr, account, now, &ks);
	if (ks.has_addr && account != NULL)
		alarm = lockout_known_success(lo->known, account, ks.family,
					      ks.a, now,
					      lo->cfg.login_networks);
	if (ks.is_allowed)
		return alarm;
	end_attempt(lo, &ks, false, now, es);
	/* Forgive the account the failures that came from this client
	   (its owner's typos); the address keeps its own count, or an
	   attacker could interleave logins to a throw-away account. */
	for (size_t i = 0; i < ks.n; i++) {
		struct lo_entry *e = es[i];
		unsigned o = 0;

		if (e == NULL || ks.kind[i] != LOCKOUT_ACCOUNT)
			continue;
		for (unsigned j = 0; j < e->n_fails; j++)
			if (e->fails[j].from != ks.from)
				e->fails[o++] = e->fails[j];
		if (o != e->n_fails)
			lockout_entry_dirty(lo, e);
		e->n_fails = o;
	}
	return alarm;
}

bool
lockout_is_known(const struct lockout *lo, const char *addr,
		 const char *account, time_t now)
{
	struct lo_keys ks;

	keys_of(lo, addr, account, now, &ks);
	return ks.is_known;
}

void
lockout_auth_abort(struct lockout *lo, const char *addr, const char *account,
		   time_t now)
{
	struct lo_entry *es[LOCKOUT_MAX_EVENTS];
	struct lo_keys ks;

	keys_of(lo, addr, account, now, &ks);
	if (!ks.is_allowed)
		end_attempt(lo, &ks, false, now, es);
}

/* --- connections ----------------------------------------------------- */

enum lockout_verdict
lockout_conn_open(struct lockout *lo, const char *addr, time_t now,
		  struct lockout_event *ev_r)
{
	struct lo_entry *e;
	unsigned char a[16];
	struct lo_key k;
	int family;
	uint64_t full = (uint64_t)lo->cfg.conn_rate * RATE_UNIT;

	if (lockout_parse_addr(addr, &family, a) < 0 || allowed(lo, family, a))
		return LOCKOUT_OK;
	key_addr(&k, LOCKOUT_NETWORK, family, a);
	if ((e = find(lo, &k)) != NULL && is_locked(e, now)) {
		fill_event(e, ev_r);
		return LOCKOUT_LOCKED;
	}
	key_addr(&k, LOCKOUT_ADDRESS, family, a);
	e = find(lo, &k);
	if (e != NULL && is_locked(e, now)) {
		fill_event(e, ev_r);
		return LOCKOUT_LOCKED;
	}
	/* conn-limit-exempt: past the lock checks, never counted. */
	if ((lo->cfg.conn_limit == 0 && lo->cfg.conn_rate == 0) ||
	    lockout_in_list(lo->cfg.exempt, lo->cfg.n_exempt, family, a))
		return LOCKOUT_OK;
	if (e == NULL) {
		if ((e = lockout_entry_get(lo, &k, now)) == NULL)
			return LOCKOUT_OK; /* out of memory: fail open */
		e->tokens = full;
		e->token_time = now;
	}
	touch(lo, e, now);
	if (lo->cfg.conn_limit > 0 && e->conn_active >= lo->cfg.conn_limit)
		return LOCKOUT_TOO_MANY;
	if (lo->cfg.conn_rate > 0) {
		/* Token bucket: conn_rate sessions a minute, bursts up to
		   conn_rate; refilled by conn_rate units a second. */
		if (now > e->token_time)
			e->tokens +=
			    (uint64_t)(now - e->token_time) * lo->cfg.conn_rate;
		e->token_time = now;
		if (e->tokens > full)
			e->tokens = full;
		if (e->tokens < RATE_UNIT)
			return LOCKOUT_TOO_FAST;
		e->tokens -= RATE_UNIT;
	}
	e->conn_active++;
	return LOCKOUT_OK;
}

void
lockout_conn_close(struct lockout *lo, const char *addr, time_t now)
{
	struct lo_entry *e;
	unsigned char a[16];
	struct lo_key k;
	int family;

	if (lockout_parse_addr(addr, &family, a) < 0)
		return;
	key_addr(&k, LOCKOUT_ADDRESS, family, a);
	if ((e = find(lo, &k)) != NULL && e->conn_active > 0) {
		e->conn_active--;
		touch(lo, e, now);
	}
}

/* --- maintenance ----------------------------------------------------- */

/* Nothing left worth keeping: no lock, no relapse memory, no failure in
   the window, no session, a full token bucket. */
static bool
entry_idle(const struct lockout *lo, struct lo_entry *e, time_t now)
{
	if (entry_busy(e, now))
		return false;
	if (e->has_locked &&
	    now - e->locked_until < (time_t)lo->cfg.relapse_memory)
		return false;
	prune(lo, e, now);
	if (e->n_fails > 0)
		return false;
	return lo->cfg.conn_rate == 0 || now - e->token_time >= 60;
}

void
lockout_expire(struct lockout *lo, time_t now)
{
	struct lo_entry *e = lo->oldest, *next;

	for (; e != NULL; e = next) {
		next = e->newer;
		if (entry_idle(lo, e, now))
			remove_entry(lo, e, false);
	}
	lockout_known_expire(lo->known, now);
}

size_t
lockout_list(const struct lockout *lo, time_t now, lockout_list_cb *cb,
	     void *arg)
{
	struct lockout_event ev;
	size_t n = 0;

	for (const struct lo_entry *e = lo->newest; e != NULL; e = e->older) {
		if (!is_locked(e, now))
			continue;
		fill_event(e, &ev);
		cb(&ev, arg);
		n++;
	}
	return n;
}

static size_t
reset_key(struct lockout *lo, const struct lo_key *k)
{
	struct lo_entry *e = find(lo, k);

	if (e == NULL)
		return 0;
	e->has_locked = false;
	e->locked_until = 0;
	e->level = 0;
	e->n_fails = 0;
	lockout_entry_dirty(lo, e);
	return 1;
}

/* "addr" or "addr/prefix": 0 with the address and which kinds to reset
   (mask of 1 << kind); -1 when `key` is not an address. */
static int
unlock_parse(const char *key, int *family, unsigned char a[16],
	     unsigned *kinds_r)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(key, '/');
	size_t len = slash != NULL ? (size_t)(slash - key) : strlen(key);
	unsigned long p;
	char *end;

	if (len >= sizeof(text))
		return -1;
	memcpy(text, key, len);
	text[len] = '\0';
	if (lockout_parse_addr(text, family, a) < 0)
		return -1;
	*kinds_r = 1u << LOCKOUT_ADDRESS | 1u << LOCKOUT_NETWORK;
	if (*family == AF_INET6)
		*kinds_r |= 1u << LOCKOUT_WIDE;
	if (slash == NULL)
		return 0;
	p = strtoul(slash + 1, &end, 10);
	if (slash[1] < '0' || slash[1] > '9' || *end != '\0')
		*kinds_r = 0;
	else if (p == lockout_prefix_of(*family, LOCKOUT_ADDRESS))
		*kinds_r = 1u << LOCKOUT_ADDRESS;
	else if (p == lockout_prefix_of(*family, LOCKOUT_NETWORK))
		*kinds_r = 1u << LOCKOUT_NETWORK;
	else if (*family == AF_INET6 && p == 32)
		*kinds_r = 1u << LOCKOUT_WIDE;
	else
		*kinds_r = 0;
	return 0;
}

size_t
lockout_unlock(struct lockout *lo, const char *key, time_t now)
{
	unsigned char a[16];
	unsigned kinds;
	struct lo_key k;
	size_t n = 0;
	int family;

	(void)now;
	if (unlock_parse(key, &family, a, &kinds) == 0) {
		for (int kind = LOCKOUT_ADDRESS; kind <= LOCKOUT_WIDE;
		     kind++) {
			if ((kinds & 1u << kind) == 0)
				continue;
			key_addr(&k, (enum lockout_kind)kind, family, a);
			n += reset_key(lo, &k);
		}
		return n;
	}
	key_account(&k, key);
	return reset_key(lo, &k);
}
