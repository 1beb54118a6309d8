/*
 * lockout_known.c - per account, the networks of its successful logins
 * (lockout_int.h, docs/lockout.md "The owner's networks"):
 *
 * - known networks (IPv4 /24, IPv6 /64), each with the time of its last
 *   success, at most LOCKOUT_KNOWN_NETS (the oldest is dropped), kept for
 *   LOCKOUT_KNOWN_TTL: an account lock does not apply there;
 * - the networks (IPv4 /24, IPv6 /48) of the last hour, at most
 *   LOCKOUT_RECENT_NETS, for the login-networks alarm.
 *
 * Accounts are chained in a table hashed with SipHash under the guard's
 * secret, and kept on an LRU list; at most `max_accounts` (the least
 * recently seen goes). Only a right password adds an account, so the
 * table holds real users. Calls nothing of lockout.c.
 */
#include "auth/lockout_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#define KN_REC_VERSION 1
#define KN_NET_BYTES 8
#define KN_REC_ENTRY (1 + KN_NET_BYTES + 8)
#define KN_SPAN ((int64_t)1 << 32) /* a stored time this far off: damage */

struct kn_net {
	unsigned char fam; /* 4 or 6 */
	unsigned char net[KN_NET_BYTES];
	time_t t;
};

struct kn_acct {
	struct kn_acct *hnext, *newer, *older, *dnext;
	uint64_t hash;
	time_t last;
	bool is_dirty, is_stored, has_alarm;
	time_t alarm_at;
	unsigned n_known, n_recent, cap_recent;
	struct kn_net known[LOCKOUT_KNOWN_NETS];
	struct kn_net *recent;
	size_t key_len;
	unsigned char key[];
};

struct kn_gone {
	struct kn_gone *next;
	size_t key_len;
	unsigned char key[];
};

struct lockout_known {
	unsigned char secret[crypto_shorthash_KEYBYTES];
	struct kn_acct **buckets;
	size_t n_buckets, count, max;
	struct kn_acct *newest, *oldest, *dirty;
	struct kn_gone *gone;
	struct kn_gone *gone_sent; /* as lockout's: until the next export */
};

struct lockout_known *
lockout_known_new(const unsigned char *secret, size_t max_accounts)
{
	struct lockout_known *kn = calloc(1, sizeof(*kn));
	size_t n = 64;

	if (kn == NULL)
		return NULL;
	kn->max = max_accounts < 16 ? 16 : max_accounts;
	while (n < kn->max && n < ((size_t)1 << 20))
		n <<= 1;
	kn->buckets = calloc(n, sizeof(*kn->buckets));
	if (kn->buckets == NULL) {
		free(kn);
		return NULL;
	}
	kn->n_buckets = n;
	memcpy(kn->secret, secret, sizeof(kn->secret));
	return kn;
}

static void
kn_lru_unlink(struct lockout_known *kn, struct kn_acct *a)
{
	if (a->newer != NULL)
		a->newer->older = a->older;
	else
		kn->newest = a->older;
	if (a->older != NULL)
		a->older->newer = a->newer;
	else
		kn->oldest = a->newer;
	a->newer = a->older = NULL;
}

static void
kn_lru_push(struct lockout_known *kn, struct kn_acct *a)
{
	a->older = kn->newest;
	a->newer = NULL;
	if (kn->newest != NULL)
		kn->newest->newer = a;
	kn->newest = a;
	if (kn->oldest == NULL)
		kn->oldest = a;
}

static void
kn_gone_free(struct kn_gone **list)
{
	while (*list != NULL) {
		struct kn_gone *g = *list;

		*list = g->next;
		free(g);
	}
}

static void
kn_remove(struct lockout_known *kn, struct kn_acct *a, bool is_final)
{
	struct kn_acct **pp = &kn->buckets[a->hash & (kn->n_buckets - 1)];
	struct kn_gone *g;

	while (*pp != a)
		pp = &(*pp)->hnext;
	*pp = a->hnext;
	kn_lru_unlink(kn, a);
	if (a->is_dirty) {
		for (pp = &kn->dirty; *pp != a; pp = &(*pp)->dnext)
			;
		*pp = a->dnext;
	}
	if (a->is_stored && !is_final &&
	    (g = malloc(sizeof(*g) + a->key_len)) != NULL) {
		g->key_len = a->key_len;
		memcpy(g->key, a->key, a->key_len);
		g->next = kn->gone;
		kn->gone = g;
	}
	kn->count--;
	free(a->recent);
	free(a);
}

void
lockout_known_free(struct lockout_known **knp)
{
	struct lockout_known *kn = *knp;

	if (kn == NULL)
		return;
	while (kn->oldest != NULL)
		kn_remove(kn, kn->oldest, true);
	kn_gone_free(&kn->gone);
	kn_gone_free(&kn->gone_sent);
	free(kn->buckets);
	sodium_memzero(kn->secret, sizeof(kn->secret));
	free(kn);
	*knp = NULL;
}

size_t
lockout_known_count(const struct lockout_known *kn)
{
	return kn->count;
}

static uint64_t
kn_hash(const struct lockout_known *kn, const unsigned char *b, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h = 0;

	crypto_shorthash(out, b, len, kn->secret);
	for (size_t i = 0; i < sizeof(out); i++)
		h = h << 8 | out[i];
	return h;
}

static struct kn_acct *
kn_find(const struct lockout_known *kn, const unsigned char *key, size_t len)
{
	uint64_t h = kn_hash(kn, key, len);
	struct kn_acct *a = kn->buckets[h & (kn->n_buckets - 1)];

	for (; a != NULL; a = a->hnext)
		if (a->hash == h && a->key_len == len &&
		    memcmp(a->key, key, len) == 0)
			return a;
	return NULL;
}

static struct kn_acct *
kn_get(struct lockout_known *kn, const unsigned char *key, size_t len,
       time_t now)
{
	struct kn_acct *a = kn_find(kn, key, len);
	size_t b;

	if (a != NULL) {
		kn_lru_unlink(kn, a);
		kn_lru_push(kn, a);
		a->last = now;
		return a;
	}
	while (kn->count >= kn->max && kn->oldest != NULL)
		kn_remove(kn, kn->oldest, false);
	a = calloc(1, sizeof(*a) + len);
	if (a == NULL)
		return NULL;
	a->hash = kn_hash(kn, key, len);
	a->key_len = len;
	memcpy(a->key, key, len);
	a->last = now;
	b = a->hash & (kn->n_buckets - 1);
	a->hnext = kn->buckets[b];
	kn->buckets[b] = a;
	kn_lru_push(kn, a);
	kn->count++;
	return a;
}

static void
kn_dirty(struct lockout_known *kn, struct kn_acct *a)
{
	if (a->is_dirty)
		return;
	a->is_dirty = true;
	a->dnext = kn->dirty;
	kn->dirty = a;
}

/* The client's network for `bits` of IPv6 (IPv4: always /24). */
static void
kn_net_of(struct kn_net *n, int family, const unsigned char a[16],
	  unsigned v6_bits, time_t now)
{
	unsigned char m[16];

	memcpy(m, a, 16);
	lockout_mask_bits(m, family == AF_INET ? 24 : v6_bits);
	memset(n, 0, sizeof(*n));
	n->fam = family == AF_INET ? 4 : 6;
	memcpy(n->net, m, KN_NET_BYTES);
	n->t = now;
}

static struct kn_net *
kn_net_find(struct kn_net *v, unsigned n, const struct kn_net *want)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i].fam == want->fam &&
		    memcmp(v[i].net, want->net, KN_NET_BYTES) == 0)
			return &v[i];
	return NULL;
}

/* Drop the entries older than `ttl`; returns how many are left. */
static unsigned
kn_net_prune(struct kn_net *v, unsigned n, time_t now, time_t ttl)
{
	unsigned o = 0;

	for (unsigned i = 0; i < n; i++)
		if (now - v[i].t < ttl)
			v[o++] = v[i];
	return o;
}

/* Put `net` in `v` (refresh, add, or replace the oldest when full). */
static void
kn_net_put(struct kn_net *v, unsigned *n, unsigned cap,
	   const struct kn_net *net)
{
	struct kn_net *have = kn_net_find(v, *n, net);
	unsigned oldest = 0;

	if (have != NULL) {
		have->t = net->t;
		return;
	}
	if (*n < cap) {
		v[(*n)++] = *net;
		return;
	}
	for (unsigned i = 1; i < *n; i++)
		if (v[i].t < v[oldest].t)
			oldest = i;
	v[oldest] = *net;
}

bool
lockout_known_has(const struct lockout_known *kn, const char *account,
		  int family, const unsigned char a[16], time_t now)
{
	unsigned char key[LOCKOUT_ACCOUNT_MAX];
	size_t len = lockout_key_account(key, account);
	struct kn_acct *acct = kn_find(kn, key, len);
	struct kn_net want, *have;

	if (acct == NULL)
		return false;
	kn_net_of(&want, family, a, 64, now);
	have = kn_net_find(acct->known, acct->n_known, &want);
	return have != NULL && now - have->t < LOCKOUT_KNOWN_TTL;
}

/* The networks of the last hour: 0, or their number when they are more
   than `limit` and no alarm was raised for the account this hour. */
static unsigned
kn_recent(struct kn_acct *acct, const struct kn_net *net, time_t now,
	  unsigned limit)
{
	if (limit == 0)
		return 0;
	acct->n_recent = kn_net_prune(acct->recent, acct->n_recent, now,
				      LOCKOUT_ALARM_WINDOW);
	if (acct->n_recent == acct->cap_recent &&
	    acct->cap_recent < LOCKOUT_RECENT_NETS &&
	    kn_net_find(acct->recent, acct->n_recent, net) == NULL) {
		unsigned cap = acct->cap_recent == 0 ? 8 : acct->cap_recent * 2;
		struct kn_net *v = realloc(acct->recent, cap * sizeof(*v));

		if (v != NULL) {
			acct->recent = v;
			acct->cap_recent = cap;
		}
	}
	if (acct->cap_recent == 0)
		return 0;
	kn_net_put(acct->recent, &acct->n_recent, acct->cap_recent, net);
	if (acct->n_recent <= limit ||
	    (acct->has_alarm && now - acct->alarm_at < LOCKOUT_ALARM_WINDOW))
		return 0;
	acct->has_alarm = true;
	acct->alarm_at = now;
	return acct->n_recent;
}

unsigned
lockout_known_success(struct lockout_known *kn, const char *account,
		      int family, const unsigned char a[16], time_t now,
		      unsigned alarm_limit)
{
	unsigned char key[LOCKOUT_ACCOUNT_MAX];
	size_t len = lockout_key_account(key, account);
	struct kn_acct *acct;
	struct kn_net net;

	if (len == 0 || (acct = kn_get(kn, key, len, now)) == NULL)
		return 0;
	kn_net_of(&net, family, a, 64, now);
	kn_net_put(acct->known, &acct->n_known, LOCKOUT_KNOWN_NETS, &net);
	kn_dirty(kn, acct);
	kn_net_of(&net, family, a, 48, now);
	return kn_recent(acct, &net, now, alarm_limit);
}

void
lockout_known_expire(struct lockout_known *kn, time_t now)
{
	struct kn_acct *a = kn->oldest, *next;

	for (; a != NULL; a = next) {
		unsigned n;

		next = a->newer;
		n = kn_net_prune(a->known, a->n_known, now, LOCKOUT_KNOWN_TTL);
		if (n != a->n_known)
			kn_dirty(kn, a);
		a->n_known = n;
		a->n_recent = kn_net_prune(a->recent, a->n_recent, now,
					   LOCKOUT_ALARM_WINDOW);
		if (a->n_known == 0 && a->n_recent == 0 &&
		    !(a->has_alarm && now - a->alarm_at < LOCKOUT_ALARM_WINDOW))
			kn_remove(kn, a, false);
	}
}

/* --- records (docs/guard-state.md) ------------------------------------- */

static void
kn_put64(unsigned char *p, int64_t v)
{
	for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
		p[i] = (unsigned char)(v & 0xff);
}

static int64_t
kn_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

/* version, count, then per network: family, 8 octets, last success in
   wall-clock seconds (64 bits, big endian). */
static size_t
kn_encode(const struct kn_acct *a, unsigned char *out, time_t now,
	  time_t wall_now)
{
	size_t n = 2;

	out[0] = KN_REC_VERSION;
	out[1] = (unsigned char)a->n_known;
	for (unsigned i = 0; i < a->n_known; i++, n += KN_REC_ENTRY) {
		out[n] = a->known[i].fam;
		memcpy(out + n + 1, a->known[i].net, KN_NET_BYTES);
		kn_put64(out + n + 1 + KN_NET_BYTES,
			 (int64_t)(a->known[i].t - now + wall_now));
	}
	return n;
}

size_t
lockout_known_export(struct lockout_known *kn, time_t now, time_t wall_now,
		     lockout_export_cb *cb, void *arg)
{
	unsigned char rec[2 + LOCKOUT_KNOWN_NETS * KN_REC_ENTRY];
	size_t n = 0;

	kn_gone_free(&kn->gone_sent); /* the last flush committed */
	while (kn->gone != NULL) {
		struct kn_gone *g = kn->gone;

		kn->gone = g->next;
		cb(LOCKOUT_TABLE_KNOWN, g->key, g->key_len, NULL, 0, arg);
		g->next = kn->gone_sent;
		kn->gone_sent = g;
		n++;
	}
	while (kn->dirty != NULL) {
		struct kn_acct *a = kn->dirty;

		kn->dirty = a->dnext;
		a->is_dirty = false;
		if (a->n_known == 0 && !a->is_stored)
			continue;
		if (a->n_known == 0)
			cb(LOCKOUT_TABLE_KNOWN, a->key, a->key_len, NULL, 0, arg);
		else
			cb(LOCKOUT_TABLE_KNOWN, a->key, a->key_len, rec,
			   kn_encode(a, rec, now, wall_now), arg);
		a->is_stored = a->n_known > 0;
		n++;
	}
	return n;
}

void
lockout_known_mark_all(struct lockout_known *kn)
{
	for (struct kn_acct *a = kn->newest; a != NULL; a = a->older) {
		a->is_stored = true; /* not known: a deletion is harmless */
		kn_dirty(kn, a);
	}
	while (kn->gone_sent != NULL) {
		struct kn_gone *g = kn->gone_sent;

		kn->gone_sent = g->next;
		g->next = kn->gone;
		kn->gone = g;
	}
}

int
lockout_known_import(struct lockout_known *kn, const void *key, size_t klen,
		     const void *rec, size_t rlen, time_t now, time_t wall_now)
{
	const unsigned char *r = rec;
	struct kn_acct *a;
	unsigned n;

	if (klen == 0 || klen > LOCKOUT_ACCOUNT_MAX || rlen < 2 ||
	    r[0] != KN_REC_VERSION || (n = r[1]) > LOCKOUT_KNOWN_NETS ||
	    rlen != 2 + n * KN_REC_ENTRY)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		const unsigned char *p = r + 2 + i * KN_REC_ENTRY;
		int64_t t = kn_get64(p + 1 + KN_NET_BYTES);

		if ((p[0] != 4 && p[0] != 6) || t < (int64_t)wall_now - KN_SPAN ||
		    t > (int64_t)wall_now + KN_SPAN)
			return -1;
	}
	if ((a = kn_get(kn, key, klen, now)) == NULL)
		return -1;
	a->n_known = 0;
	for (unsigned i = 0; i < n; i++) {
		const unsigned char *p = r + 2 + i * KN_REC_ENTRY;
		struct kn_net net = {.fam = p[0]};

		memcpy(net.net, p + 1, KN_NET_BYTES);
		net.t = (time_t)(kn_get64(p + 1 + KN_NET_BYTES) - wall_now) + now;
		if (net.t > now)
			net.t = now; /* from the future: a clock set back */
		kn_net_put(a->known, &a->n_known, LOCKOUT_KNOWN_NETS, &net);
	}
	a->is_stored = true;
	return 0;
}
