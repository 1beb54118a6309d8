/*
 * guard_auth.c - the guard's AUTH path (guard_int.h, docs/lockout.md):
 * the lockout checked first, the verification cache, the hashing jobs
 * handed to the pool (guard_pool.c) and their verdicts, the answers (a
 * failure after auth_failure_delay plus jitter), the log lines, and the
 * gauge of locks in force.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sodium.h>

#include "auth/alarm.h"
#include "auth/guard_int.h"
#include "auth/users.h"
#include "lib/log.h"
#include "metrics/metrics.h"

#define SID GUARD_SID
#define GUARD_JITTER_MS 500
#define GUARD_CACHE_SLOTS 4096

struct guard_cache_slot {
	unsigned char key[crypto_generichash_BYTES];
	time_t expires; /* 0: empty */
};

static struct {
	unsigned char secret[crypto_generichash_KEYBYTES];
	struct guard_cache_slot *cache;
} A;

static const char *
role_text(uint8_t role)
{
	return config_role_name((enum listen_role)role);
}

/* One line per lock set (docs/lockout.md "Log lines"). */
static void
log_lock(const struct lockout_event *ev)
{
	char key[LOCKOUT_KEY_TEXT_MAX * 4 + 8], until[32];

	guard_lock_key_text(key, sizeof(key), ev);
	guard_until_text(until, sizeof(until), ev->until);
	log_notice(SID, "lock kind=%s key=%s until=%s seconds=%u failures=%u",
		   guard_kind_names[ev->kind], key, until, ev->seconds,
		   ev->failures);
}


/* --- verification cache ---------------------------------------------- */

/* Keyed hash of (user lower-cased, NUL, password): the cache never holds
   a password, nor anything an outsider could test guesses against. */
static void
cache_key(const char *user, const char *pass, size_t pass_len,
	  unsigned char out[crypto_generichash_BYTES])
{
	crypto_generichash_state st;
	unsigned char low[GUARD_USER_MAX + 1];
	size_t n = 0;

	for (; user[n] != '\0' && n < GUARD_USER_MAX; n++) {
		unsigned char c = (unsigned char)user[n];

		low[n] = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
	}
	low[n++] = '\0';
	crypto_generichash_init(&st, A.secret, sizeof(A.secret),
				crypto_generichash_BYTES);
	crypto_generichash_update(&st, low, n);
	crypto_generichash_update(&st, (const unsigned char *)pass, pass_len);
	crypto_generichash_final(&st, out, crypto_generichash_BYTES);
	sodium_memzero(&st, sizeof(st));
}

static struct guard_cache_slot *
cache_slot(const unsigned char key[crypto_generichash_BYTES])
{
	uint32_t i = (uint32_t)key[0] << 8 | key[1];

	return &A.cache[i % GUARD_CACHE_SLOTS];
}

static bool
cache_hit(const char *user, const char *pass, size_t pass_len, time_t now)
{
	unsigned char key[crypto_generichash_BYTES];
	struct guard_cache_slot *s;

	if (A.cache == NULL || guard_g.cfg->auth_cache_ttl == 0)
		return false;
	cache_key(user, pass, pass_len, key);
	s = cache_slot(key);
	return s->expires > now && sodium_memcmp(s->key, key, sizeof(key)) == 0;
}

static void
cache_put(const char *user, const char *pass, size_t pass_len, time_t now)
{
	unsigned char key[crypto_generichash_BYTES];
	struct guard_cache_slot *s;

	if (A.cache == NULL || guard_g.cfg->auth_cache_ttl == 0)
		return;
	cache_key(user, pass, pass_len, key);
	s = cache_slot(key);
	memcpy(s->key, key, sizeof(key));
	s->expires = now + (time_t)guard_g.cfg->auth_cache_ttl;
}

void
guard_auth_cache_clear(void)
{
	if (A.cache != NULL)
		sodium_memzero(A.cache, GUARD_CACHE_SLOTS * sizeof(*A.cache));
}

/* --- replies --------------------------------------------------------- */

static void
job_free(struct guard_job *j)
{
	if (j->timer != NULL)
		event_free(j->timer);
	free(j->hash);
	guard_peer_unref(j->peer);
	sodium_memzero(j, sizeof(*j));
	free(j);
}

/* Send the verdict now; for OK, with the user's name and aliases. */
static void
job_reply(struct guard_job *j)
{
	static struct guard_msg m;
	const struct user *u = NULL;

	memset(&m, 0, offsetof(struct guard_msg, arena));
	m.type = GUARD_MSG_AUTH_RES;
	m.id = j->id;
	m.result = (uint8_t)j->result;
	m.user = "";
	if (j->result == GUARD_AUTH_OK && guard_g.users != NULL &&
	    (u = users_find(guard_g.users, j->user)) != NULL) {
		m.user = u->name;
		m.list[m.n_list++] = u->name;
		for (size_t i = 0;
		     i < u->n_aliases && m.n_list < GUARD_LIST_MAX; i++)
			m.list[m.n_list++] = u->aliases[i];
		/* Too many aliases for one frame: keep what fits. */
		while (m.n_list > 1 &&
		       guard_proto_encode(&m, (unsigned char *)m.arena,
					  sizeof(m.arena)) == 0)
			m.n_list--;
	}
	guard_peer_send(j->peer, &m);
	job_free(j);
}

static void
job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_reply(arg);
}

/*
 * FAIL and LOCKED go out after auth_failure_delay seconds plus 0-500 ms,
 * the same for an unknown user, a wrong password and a lock (THREATS
 * A-03); a delay of 0 (tests) answers at once.
 */
static void
job_reply_later(struct guard_job *j)
{
	struct timeval tv;
	uint32_t ms;

	if (guard_g.cfg->auth_failure_delay == 0) {
		job_reply(j);
		return;
	}
	ms = randombytes_uniform(GUARD_JITTER_MS + 1);
	tv.tv_sec =
	    (time_t)guard_g.cfg->auth_failure_delay + (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	j->timer = evtimer_new(guard_g.base, job_timer_cb, j);
	if (j->timer == NULL || evtimer_add(j->timer, &tv) < 0) {
		job_reply(j);
		return;
	}
	sodium_memzero(j->pass, sizeof(j->pass));
}

static void
log_auth(const char *event, const struct guard_job *j, const char *extra)
{
	char client[GUARD_ADDR_MAX * 4 + 8], account[GUARD_USER_MAX * 4 + 8];

	log_notice(
	    SID, "%s client=%s account=%s role=%s%s", event,
	    guard_addr_text(client, sizeof(client), j->addr),
	    log_escape(account, sizeof(account), j->user, strlen(j->user), 128),
	    role_text(j->role), extra);
}

/* --- verdicts ------------------------------------------------------- */

void
guard_auth_done(struct guard_job *j)
{
	struct lockout_event ev[LOCKOUT_MAX_EVENTS];
	time_t now = guard_now();
	unsigned alarm;
	size_t n;

	if (j->verdict == 1 && (guard_g.users == NULL ||
				users_find(guard_g.users, j->user) == NULL))
		j->verdict = -1; /* removed by a reload meanwhile */
	if (j->verdict == 1) {
		if (lockout_auth_check(guard_g.lo, j->addr, j->user, now, ev) ==
		    LOCKOUT_LOCKED) {
			/* Locked while it was hashing (parallel guesses). */
			lockout_auth_abort(guard_g.lo, j->addr, j->user, now);
			log_auth("auth-locked", j, "");
			j->result = GUARD_AUTH_LOCKED;
			job_reply_later(j);
			return;
		}
		alarm = lockout_auth_success(guard_g.lo, j->addr, j->user, now);
		cache_put(j->user, j->pass, j->pass_len, now);
		log_auth("auth-ok", j, "");
		if (alarm > 0)
			alarm_login_networks(j->user, alarm);
		j->result = GUARD_AUTH_OK;
		job_reply(j);
		return;
	}
	if (j->verdict < 0) {
		lockout_auth_abort(guard_g.lo, j->addr, j->user, now);
		log_auth("auth-error", j, " error=\"verification failed\"");
		j->result = GUARD_AUTH_TEMPFAIL;
		job_reply(j);
		return;
	}
	n = lockout_auth_failure(guard_g.lo, j->addr, j->user, j->pass,
				 j->pass_len, now, ev);
	log_auth("auth-failure", j, "");
	for (size_t i = 0; i < n; i++)
		log_lock(&ev[i]);
	if (n > 0)
		guard_locks_gauge();
	j->result = GUARD_AUTH_FAIL;
	job_reply_later(j);
}

/* --- requests from workers ------------------------------------------- */

/* A job for an AUTH request; NULL (and the peer dropped) out of memory. */
static struct guard_job *
job_new(struct guard_peer *p, const struct guard_msg *m)
{
	struct guard_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		guard_peer_drop(p, "out of memory");
		return NULL;
	}
	j->peer = p;
	p->refs++;
	j->id = m->id;
	j->role = m->role;
	snprintf(j->user, sizeof(j->user), "%s", m->user);
	snprintf(j->addr, sizeof(j->addr), "%s", m->addr);
	memcpy(j->pass, m->pass, m->pass_len);
	j->pass_len = m->pass_len;
	return j;
}

/*
 * Hand an AUTH attempt that passed the lockout to the hashing threads:
 * with the user's hash, or for an unknown user a dummy with the scheme
 * and cost of a real entry chosen by the name (users_dummy.c; the default
 * dummy when that fails), so both cost the same (THREATS A-03).
 */
static void
job_submit(struct guard_job *j, const struct user *u, time_t now)
{
	if (u == NULL &&
	    users_dummy_hash(users_dummy_model(guard_g.users, j->user),
			     &j->hash) == 0)
		j->is_dummy = true;
	if (u != NULL && (j->hash = strdup(u->hash)) == NULL) {
		lockout_auth_abort(guard_g.lo, j->addr, j->user, now);
		j->result = GUARD_AUTH_TEMPFAIL;
		job_reply(j);
		return;
	}
	switch (guard_pool_submit(j)) {
	case GUARD_FAIR_OK:
		return;
	case GUARD_FAIR_NET_FULL: {
		char net[64], extra[128];

		/* One network has auth-queue-per-network hashes waiting:
		   it alone gets 454 4.7.0, without a hash; others still
		   queue. After auth-failure-delay like a 535, so that the
		   guesser's retry loop does not turn into a flood of TLS
		   handshakes. */
		guard_fair_net_text(j->addr, net, sizeof(net));
		snprintf(extra, sizeof(extra),
			 " reason=network-queue-full network=%s", net);
		log_auth("auth-busy", j, extra);
		lockout_auth_abort(guard_g.lo, j->addr, j->user, now);
		j->result = GUARD_AUTH_TEMPFAIL;
		job_reply_later(j);
		return;
	}
	case GUARD_FAIR_FULL:
		log_auth("auth-busy", j, " reason=queue-full");
		break;
	}
	lockout_auth_abort(guard_g.lo, j->addr, j->user, now);
	j->result = GUARD_AUTH_TEMPFAIL;
	job_reply(j);
}

void
guard_auth_request(struct guard_peer *p, const struct guard_msg *m)
{
	struct lockout_event ev;
	const struct user *u;
	struct guard_job *j;
	time_t now = guard_now();

	if ((j = job_new(p, m)) == NULL)
		return;
	/* No users at all (no file, an empty one, or none could ever be
	   loaded): no login can succeed, and a failure would lock real
	   users out. A temporary failure, counted nowhere. */
	if (users_count(guard_g.users) == 0) {
		log_auth("auth-unavailable", j, " reason=no-users");
		j->result = GUARD_AUTH_TEMPFAIL;
		job_reply(j);
		return;
	}
	/* Lockout first, always: a lock answers LOCKED whatever the
	   password, without spending a hash on it. */
	if (lockout_auth_begin(guard_g.lo, j->addr, j->user, now, &ev) !=
	    LOCKOUT_OK) {
		char extra[LOCKOUT_KEY_TEXT_MAX + 32];

		snprintf(extra, sizeof(extra), " kind=%s",
			 guard_kind_names[ev.kind]);
		log_auth("auth-locked", j, extra);
		j->result = GUARD_AUTH_LOCKED;
		job_reply_later(j);
		return;
	}
	u = users_find(guard_g.users, j->user);
	if (u != NULL && cache_hit(j->user, j->pass, j->pass_len, now)) {
		unsigned alarm =
		    lockout_auth_success(guard_g.lo, j->addr, j->user, now);

		log_auth("auth-ok", j, " cached=yes");
		if (alarm > 0)
			alarm_login_networks(j->user, alarm);
		j->result = GUARD_AUTH_OK;
		job_reply(j);
		return;
	}
	job_submit(j, u, now);
}


/* --- the gauge of locks ---------------------------------------------- */

static void
locks_count_cb(const struct lockout_event *ev, void *arg)
{
	int64_t *n = arg;

	if (ev->kind <= LOCKOUT_NETWORK)
		n[ev->kind]++;
}

/* The gauge of locks in force by kind (metrics.h has lockout.h's
   order): when a lock is set and every minute. */
void
guard_locks_gauge(void)
{
	int64_t n[3] = {0, 0, 0};

	lockout_list(guard_g.lo, guard_now(), locks_count_cb, n);
	for (int k = 0; k < 3; k++)
		metrics_gauge_set((enum metrics_cell)(MG_LOCKS_ACCOUNT + k),
				  n[k]);
}


int
guard_auth_init(void)
{
	randombytes_buf(A.secret, sizeof(A.secret));
	A.cache = calloc(GUARD_CACHE_SLOTS, sizeof(*A.cache));
	return A.cache != NULL ? 0 : -1;
}
