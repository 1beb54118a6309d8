/*
 * guard.c - the guard process (guard.h, docs/lockout.md): credentials,
 * lockouts and per-address limits for every worker.
 *
 * One libevent loop owns all state. AUTH requests that need a hash go to
 * a pool of threads (guard_pool.c; the loop never waits for a KDF); the
 * threads hand results back through an eventfd. A failed verification
 * (and a refusal for a lock) is answered after auth_failure_delay plus
 * 0-500 ms of jitter, from a timer. The lockout state is the pure module
 * lockout.c.
 *
 * Peers: the master (worker sockets and reload requests, one octet a
 * message), workers (guard_proto.h frames), and clients of the control
 * socket (guard_control.c).
 */
#include "auth/guard.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "auth/alarm.h"
#include "auth/guard_int.h"
#include "auth/guard_state.h"
#include "auth/users.h"
#include "lib/sandbox.h"
#include "lib/log.h"

#define SID GUARD_SID
#define GUARD_JITTER_MS 500
#define GUARD_CACHE_SLOTS 4096
#define GUARD_PEER_BUCKETS 256
#define GUARD_INPUT_MAX (256 * 1024)

/* An address a worker opened a session for (so that a dead worker's
   sessions can be closed). */
struct guard_open {
	struct guard_open *next;
	unsigned count;
	char addr[GUARD_ADDR_MAX + 1];
};

struct guard_peer {
	struct guard_peer *next, *prev;
	struct bufferevent *bev; /* NULL once gone */
	unsigned refs;		 /* jobs pointing here, + 1 while linked */
	unsigned serial;
	struct guard_open *open[GUARD_PEER_BUCKETS];
};

struct guard_cache_slot {
	unsigned char key[crypto_generichash_BYTES];
	time_t expires; /* 0: empty */
};

static struct {
	struct event_base *base;
	struct config *cfg;
	bool owns_cfg;
	const char *cfg_path;
	struct users *users;
	struct lockout *lo;
	unsigned char secret[crypto_generichash_KEYBYTES];
	struct guard_peer *peers;
	unsigned next_serial;
	struct guard_cache_slot *cache;
	struct event *master_ev, *expire_ev, *term_ev;
} G;

/* A client address for the log: bare when it is an IP address (what a
   fail2ban filter matches), escaped and quoted otherwise. */
static const char *
client_text(char *buf, size_t size, const char *addr)
{
	unsigned char a[16];
	int family;

	if (lockout_parse_addr(addr, &family, a) == 0 && strlen(addr) < size) {
		memcpy(buf, addr, strlen(addr) + 1);
		return buf;
	}
	return log_escape(buf, size, addr, strlen(addr), GUARD_ADDR_MAX);
}

static const char *
role_text(uint8_t role)
{
	return config_role_name((enum listen_role)role);
}

/* CONN_RES carries the lockout verdict as the guard_conn_result. */
_Static_assert((int)LOCKOUT_OK == (int)GUARD_CONN_OK &&
		   (int)LOCKOUT_LOCKED == (int)GUARD_CONN_LOCKED &&
		   (int)LOCKOUT_TOO_MANY == (int)GUARD_CONN_TOO_MANY &&
		   (int)LOCKOUT_TOO_FAST == (int)GUARD_CONN_TOO_FAST,
	       "lockout verdicts and guard_conn_result differ");

/* One line per lock set (docs/lockout.md "Log lines"). */
static void
log_lock(const struct lockout_event *ev)
{
	char key[LOCKOUT_KEY_TEXT_MAX * 4 + 8], until[32];

	if (ev->kind == LOCKOUT_ACCOUNT)
		log_escape(key, sizeof(key), ev->key, strlen(ev->key),
			   LOCKOUT_KEY_TEXT_MAX);
	else
		snprintf(key, sizeof(key), "%s", ev->key);
	guard_until_text(until, sizeof(until), ev->until);
	log_notice(SID, "lock kind=%s key=%s until=%s seconds=%u failures=%u",
		   guard_kind_names[ev->kind], key, until, ev->seconds,
		   ev->failures);
}

/* --- peers ----------------------------------------------------------- */

static void peer_drop(struct guard_peer *p, const char *why);

static void
peer_unref(struct guard_peer *p)
{
	if (--p->refs == 0)
		free(p);
}

static unsigned
open_bucket(const char *addr)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *s = (const unsigned char *)addr; *s; s++)
		h = (h ^ *s) * 16777619u;
	return h % GUARD_PEER_BUCKETS;
}

static void
peer_open_add(struct guard_peer *p, const char *addr)
{
	struct guard_open **pp = &p->open[open_bucket(addr)], *o;

	for (o = *pp; o != NULL; o = o->next)
		if (strcmp(o->addr, addr) == 0) {
			o->count++;
			return;
		}
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return;
	snprintf(o->addr, sizeof(o->addr), "%s", addr);
	o->count = 1;
	o->next = *pp;
	*pp = o;
}

/* Forget one session of `addr`; false when the peer had none open. */
static bool
peer_open_del(struct guard_peer *p, const char *addr)
{
	struct guard_open **pp = &p->open[open_bucket(addr)], *o;

	for (; (o = *pp) != NULL; pp = &o->next)
		if (strcmp(o->addr, addr) == 0) {
			if (--o->count == 0) {
				*pp = o->next;
				free(o);
			}
			return true;
		}
	return false;
}

static void
peer_send(struct guard_peer *p, const struct guard_msg *m)
{
	unsigned char buf[GUARD_HEADER_LEN + GUARD_FRAME_MAX];
	size_t n;

	if (p->bev == NULL)
		return;
	n = guard_proto_encode(m, buf, sizeof(buf));
	if (n == 0) {
		log_error(SID, "encode-error type=%d", (int)m->type);
		return;
	}
	if (bufferevent_write(p->bev, buf, n) < 0)
		peer_drop(p, "write failed");
}

/* Push the list of user names: BEGIN, as many CHUNKs as it takes, END. */
static void
peer_push_users(struct guard_peer *p)
{
	static struct guard_msg m;
	size_t n = G.users != NULL ? users_count(G.users) : 0, i = 0;

	memset(&m, 0, offsetof(struct guard_msg, arena));
	m.type = GUARD_MSG_USERS_BEGIN;
	peer_send(p, &m);
	while (i < n) {
		size_t bytes = 2;

		m.type = GUARD_MSG_USERS_CHUNK;
		m.n_list = 0;
		while (i < n && m.n_list < GUARD_LIST_MAX) {
			const char *name = users_get(G.users, i)->name;
			size_t len = strlen(name);

			if (len == 0 || len > GUARD_USER_MAX ||
			    !guard_proto_text_ok(name, len, GUARD_USER_MAX)) {
				i++;
				continue;
			}
			if (bytes + 2 + len > GUARD_FRAME_MAX - 64)
				break;
			bytes += 2 + len;
			m.list[m.n_list++] = name;
			i++;
		}
		peer_send(p, &m);
	}
	m.type = GUARD_MSG_USERS_END;
	m.n_list = 0;
	peer_send(p, &m);
}

/*
 * A worker's connection is gone (EOF, error or a bad frame): close the
 * sessions it had opened, free its buffer; jobs still running keep the
 * struct alive and find bev == NULL.
 */
static void
peer_drop(struct guard_peer *p, const char *why)
{
	time_t now = guard_now();

	if (p->bev == NULL)
		return;
	log_info(SID, "worker-gone serial=%u reason=\"%s\"", p->serial, why);
	bufferevent_free(p->bev);
	p->bev = NULL;
	for (unsigned b = 0; b < GUARD_PEER_BUCKETS; b++)
		while (p->open[b] != NULL) {
			struct guard_open *o = p->open[b];

			while (o->count-- > 0)
				lockout_conn_close(G.lo, o->addr, now);
			p->open[b] = o->next;
			free(o);
		}
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		G.peers = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	peer_unref(p);
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
	crypto_generichash_init(&st, G.secret, sizeof(G.secret),
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

	return &G.cache[i % GUARD_CACHE_SLOTS];
}

static bool
cache_hit(const char *user, const char *pass, size_t pass_len, time_t now)
{
	unsigned char key[crypto_generichash_BYTES];
	struct guard_cache_slot *s;

	if (G.cache == NULL || G.cfg->auth_cache_ttl == 0)
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

	if (G.cache == NULL || G.cfg->auth_cache_ttl == 0)
		return;
	cache_key(user, pass, pass_len, key);
	s = cache_slot(key);
	memcpy(s->key, key, sizeof(key));
	s->expires = now + (time_t)G.cfg->auth_cache_ttl;
}

static void
cache_clear(void)
{
	if (G.cache != NULL)
		sodium_memzero(G.cache, GUARD_CACHE_SLOTS * sizeof(*G.cache));
}

/* --- replies --------------------------------------------------------- */

static void
job_free(struct guard_job *j)
{
	if (j->timer != NULL)
		event_free(j->timer);
	free(j->hash);
	peer_unref(j->peer);
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
	if (j->result == GUARD_AUTH_OK && G.users != NULL &&
	    (u = users_find(G.users, j->user)) != NULL) {
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
	peer_send(j->peer, &m);
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

	if (G.cfg->auth_failure_delay == 0) {
		job_reply(j);
		return;
	}
	ms = randombytes_uniform(GUARD_JITTER_MS + 1);
	tv.tv_sec = (time_t)G.cfg->auth_failure_delay + (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	j->timer = evtimer_new(G.base, job_timer_cb, j);
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
	    client_text(client, sizeof(client), j->addr),
	    log_escape(account, sizeof(account), j->user, strlen(j->user), 128),
	    role_text(j->role), extra);
}

/* --- verdicts ------------------------------------------------------- */

static void
job_done(struct guard_job *j)
{
	struct lockout_event ev[LOCKOUT_MAX_EVENTS];
	time_t now = guard_now();
	unsigned alarm;
	size_t n;

	if (j->verdict == 1 &&
	    (G.users == NULL || users_find(G.users, j->user) == NULL))
		j->verdict = -1; /* removed by a reload meanwhile */
	if (j->verdict == 1) {
		if (lockout_auth_check(G.lo, j->addr, j->user, now, ev) ==
		    LOCKOUT_LOCKED) {
			/* Locked while it was hashing (parallel guesses). */
			lockout_auth_abort(G.lo, j->addr, j->user, now);
			log_auth("auth-locked", j, "");
			j->result = GUARD_AUTH_LOCKED;
			job_reply_later(j);
			return;
		}
		alarm = lockout_auth_success(G.lo, j->addr, j->user, now);
		cache_put(j->user, j->pass, j->pass_len, now);
		log_auth("auth-ok", j, "");
		if (alarm > 0)
			alarm_login_networks(j->user, alarm);
		j->result = GUARD_AUTH_OK;
		job_reply(j);
		return;
	}
	if (j->verdict < 0) {
		lockout_auth_abort(G.lo, j->addr, j->user, now);
		log_auth("auth-error", j, " error=\"verification failed\"");
		j->result = GUARD_AUTH_TEMPFAIL;
		job_reply(j);
		return;
	}
	n = lockout_auth_failure(G.lo, j->addr, j->user, j->pass, j->pass_len,
				 now, ev);
	log_auth("auth-failure", j, "");
	for (size_t i = 0; i < n; i++)
		log_lock(&ev[i]);
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
		peer_drop(p, "out of memory");
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
	if (u == NULL && users_dummy_hash(users_dummy_model(G.users, j->user),
					  &j->hash) == 0)
		j->is_dummy = true;
	if (u != NULL && (j->hash = strdup(u->hash)) == NULL) {
		lockout_auth_abort(G.lo, j->addr, j->user, now);
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
		lockout_auth_abort(G.lo, j->addr, j->user, now);
		j->result = GUARD_AUTH_TEMPFAIL;
		job_reply_later(j);
		return;
	}
	case GUARD_FAIR_FULL:
		log_auth("auth-busy", j, " reason=queue-full");
		break;
	}
	lockout_auth_abort(G.lo, j->addr, j->user, now);
	j->result = GUARD_AUTH_TEMPFAIL;
	job_reply(j);
}

static void
handle_auth(struct guard_peer *p, const struct guard_msg *m)
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
	if (users_count(G.users) == 0) {
		log_auth("auth-unavailable", j, " reason=no-users");
		j->result = GUARD_AUTH_TEMPFAIL;
		job_reply(j);
		return;
	}
	/* Lockout first, always: a lock answers LOCKED whatever the
	   password, without spending a hash on it. */
	if (lockout_auth_begin(G.lo, j->addr, j->user, now, &ev) !=
	    LOCKOUT_OK) {
		char extra[LOCKOUT_KEY_TEXT_MAX + 32];

		snprintf(extra, sizeof(extra), " kind=%s",
			 guard_kind_names[ev.kind]);
		log_auth("auth-locked", j, extra);
		j->result = GUARD_AUTH_LOCKED;
		job_reply_later(j);
		return;
	}
	u = users_find(G.users, j->user);
	if (u != NULL && cache_hit(j->user, j->pass, j->pass_len, now)) {
		unsigned alarm =
		    lockout_auth_success(G.lo, j->addr, j->user, now);

		log_auth("auth-ok", j, " cached=yes");
		if (alarm > 0)
			alarm_login_networks(j->user, alarm);
		j->result = GUARD_AUTH_OK;
		job_reply(j);
		return;
	}
	job_submit(j, u, now);
}

static void
handle_conn_open(struct guard_peer *p, const struct guard_msg *m)
{
	static const char *const reasons[] = {"ok", "locked", "too-many",
					      "too-fast"};
	static struct guard_msg r;
	char client[GUARD_ADDR_MAX * 4 + 8];
	enum lockout_verdict v;

	v = lockout_conn_open(G.lo, m->addr, guard_now(), NULL);
	if (v == LOCKOUT_OK)
		peer_open_add(p, m->addr);
	else
		log_info(SID, "conn-refused client=%s reason=%s",
			 client_text(client, sizeof(client), m->addr),
			 reasons[v]);
	memset(&r, 0, offsetof(struct guard_msg, arena));
	r.type = GUARD_MSG_CONN_RES;
	r.id = m->id;
	/* The lockout verdicts and guard_conn_result share their order. */
	r.result = (uint8_t)v;
	peer_send(p, &r);
}

/* Handle one decoded frame; false when the peer must be dropped. */
static bool
peer_handle(struct guard_peer *p, const struct guard_msg *m)
{
	switch (m->type) {
	case GUARD_MSG_AUTH_REQ:
		if (m->role > ROLE_SUBMISSIONS)
			return false;
		handle_auth(p, m);
		return true;
	case GUARD_MSG_CONN_OPEN:
		handle_conn_open(p, m);
		return true;
	case GUARD_MSG_CONN_CLOSE:
		if (peer_open_del(p, m->addr))
			lockout_conn_close(G.lo, m->addr, guard_now());
		return true;
	case GUARD_MSG_SEND_REQ: {
		static struct guard_msg r;

		guard_send_request(m, &r);
		peer_send(p, &r);
		return true;
	}
	case GUARD_MSG_SEND_UNDO:
		guard_send_undo(m);
		return true;
	default:
		return false;
	}
}

/*
 * Read whole frames. A bad length, a bad frame or a type a worker may not
 * send drops the worker's connection (THREATS Q-05 #3), never the guard.
 * The frame is wiped inside the buffer before it is drained (passwords).
 */
static void
peer_read_cb(struct bufferevent *bev, void *arg)
{
	static struct guard_msg m;
	struct guard_peer *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *error;

	p->refs++; /* peer_drop() below must not free it under us */
	while (p->bev != NULL) {
		int rc = guard_proto_read(in, &m, &error);

		if (rc == 0)
			break;
		if (rc < 0) {
			log_warning(SID, "bad-frame serial=%u error=\"%s\"",
				    p->serial, error);
			peer_drop(p, error);
			break;
		}
		if (!peer_handle(p, &m)) {
			log_warning(SID, "bad-frame serial=%u type=%d",
				    p->serial, (int)m.type);
			peer_drop(p, "unexpected frame");
		}
		sodium_memzero(m.arena, sizeof(m.arena));
	}
	peer_unref(p);
}

static void
peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	peer_drop(arg, (what & BEV_EVENT_EOF) ? "eof" : "error");
}

static void
peer_add(int fd)
{
	struct guard_peer *p = calloc(1, sizeof(*p));

	if (p == NULL || evutil_make_socket_nonblocking(fd) < 0) {
		free(p);
		close(fd);
		return;
	}
	p->bev = bufferevent_socket_new(G.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (p->bev == NULL) {
		free(p);
		close(fd);
		return;
	}
	p->refs = 1;
	p->serial = ++G.next_serial;
	p->next = G.peers;
	if (G.peers != NULL)
		G.peers->prev = p;
	G.peers = p;
	bufferevent_setcb(p->bev, peer_read_cb, NULL, peer_event_cb, p);
	bufferevent_setwatermark(p->bev, EV_READ, 0, GUARD_INPUT_MAX);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	log_info(SID, "worker-connected serial=%u", p->serial);
	peer_push_users(p);
}

/* --- users file and reload ------------------------------------------- */

/* Log what a loader wrote to its error stream, line by line. */
static void
log_errors(const char *event, char *text)
{
	char *line = text, *nl, esc[600];

	for (; line != NULL && *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		log_error(
		    SID, "%s error=%s", event,
		    log_escape_text(esc, sizeof(esc), line, strlen(line), 120));
	}
}

/* Load cfg->users_file; keep the old list when the new one is bad. */
static bool
load_users(void)
{
	struct users *u = NULL;
	char *text = NULL;
	size_t size = 0;
	FILE *err;
	int rc;

	if (G.cfg->users_file == NULL) {
		users_free(&G.users);
		guard_send_set_users(NULL);
		return true;
	}
	err = open_memstream(&text, &size);
	if (err == NULL)
		return false;
	rc = users_load(G.cfg->users_file, &u, err);
	fclose(err);
	if (rc < 0) {
		log_errors("users-error", text);
		log_error(SID, "users-kept reason=\"bad users file\"");
		free(text);
		return false;
	}
	free(text);
	users_free(&G.users);
	G.users = u;
	guard_send_set_users(u);
	log_info(SID, "users-loaded count=%zu", users_count(u));
	if (users_count(u) == 0)
		log_warning(SID, "users-none reason=\"the users file has no "
				 "users: AUTH answers 454 4.7.0\"");
	return true;
}

static void
apply_config(void)
{
	struct lockout_config lc;

	lockout_config_from(&lc, G.cfg);
	lockout_set_config(G.lo, &lc);
	guard_send_set_config(G.cfg);
}

static void
reload(void)
{
	if (G.cfg_path != NULL) {
		struct config *cfg = NULL;
		char *text = NULL;
		size_t size = 0;
		FILE *err = open_memstream(&text, &size);
		int rc = err != NULL ? config_load(G.cfg_path, &cfg, err) : -1;

		if (err != NULL)
			fclose(err);
		if (rc < 0) {
			log_errors("config-error", text);
			log_error(SID, "config-kept reason=\"bad file\"");
		} else {
			if (G.owns_cfg)
				config_free(&G.cfg);
			G.cfg = cfg;
			G.owns_cfg = true;
			apply_config();
			guard_pool_set_net_max(G.cfg->auth_queue_per_network);
		}
		free(text);
	}
	if (load_users()) {
		cache_clear();
		for (struct guard_peer *p = G.peers; p != NULL; p = p->next)
			peer_push_users(p);
	}
}

/* --- the master ------------------------------------------------------ */

static void
master_cb(evutil_socket_t fd, short what, void *arg)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {0};
	struct cmsghdr *c;
	struct iovec iov;
	int passed = -1;
	ssize_t n;
	char op;

	(void)what;
	(void)arg;
	iov.iov_base = &op;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* The master is gone: so are we. */
		log_info(SID, "exit reason=\"master gone\"");
		guard_state_stop();
		guard_control_unlink();
		_exit(0);
	}
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&passed, CMSG_DATA(c), sizeof(int));
	if (op == GUARD_MASTER_WORKER && passed >= 0) {
		peer_add(passed);
		return;
	}
	if (passed >= 0)
		close(passed);
	if (op == GUARD_MASTER_RELOAD)
		reload();
	else
		log_warning(SID, "master-message error=\"unknown\"");
}

static int
send_op(int master_fd, char op, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {0};
	struct iovec iov;
	ssize_t n;

	iov.iov_base = &op;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(master_fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

int
guard_send_worker_fd(int master_fd, int worker_fd)
{
	return worker_fd < 0
		   ? -1
		   : send_op(master_fd, GUARD_MASTER_WORKER, worker_fd);
}

int
guard_send_reload(int master_fd)
{
	return send_op(master_fd, GUARD_MASTER_RELOAD, -1);
}

/* --- main ------------------------------------------------------------ */

static void
expire_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	lockout_expire(G.lo, guard_now());
}

/* SIGTERM (the master stopping): write the state, then go. */
static void
term_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	guard_state_stop();
	log_info(SID, "exit reason=\"stopped\"");
	_exit(0);
}

static __attribute__((noreturn)) void
guard_die(const char *why)
{
	log_error(SID, "fatal error=\"%s\"", why);
	_exit(1);
}

void
guard_main(const struct config *cfg, const char *cfg_path, int master_fd,
	   int control_fd)
{
	struct timeval minute = {60, 0};
	struct lockout_config lc;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (sodium_init() < 0)
		guard_die("libsodium");
	memset(&G, 0, sizeof(G));
	/* The guard never frees the master's copy; it is ours after fork. */
	G.cfg = (struct config *)cfg;
	G.cfg_path = cfg_path;
	randombytes_buf(G.secret, sizeof(G.secret));
	G.base = event_base_new();
	if (G.base == NULL)
		guard_die("event_base_new");
	lockout_config_from(&lc, G.cfg);
	G.lo = lockout_new(&lc, G.secret);
	G.cache = calloc(GUARD_CACHE_SLOTS, sizeof(*G.cache));
	if (G.lo == NULL || G.cache == NULL)
		guard_die("out of memory");
	(void)guard_state_start(G.base, G.cfg, G.lo); /* logs a failure */
	if (guard_send_init(G.cfg, guard_state_store()) < 0)
		guard_die("out of memory");
	if (!load_users())
		log_error(SID, "users-none reason=\"AUTH answers 454 4.7.0 "
			       "until a good users file is loaded\"");
	evutil_make_socket_nonblocking(master_fd);
	G.master_ev =
	    event_new(G.base, master_fd, EV_READ | EV_PERSIST, master_cb, NULL);
	G.expire_ev = event_new(G.base, -1, EV_PERSIST, expire_cb, NULL);
	G.term_ev = evsignal_new(G.base, SIGTERM, term_cb, NULL);
	if (G.master_ev == NULL || G.expire_ev == NULL || G.term_ev == NULL ||
	    event_add(G.master_ev, NULL) < 0 || event_add(G.term_ev, NULL) < 0 ||
	    event_add(G.expire_ev, &minute) < 0)
		guard_die("event setup");
	guard_control_open(G.base, G.lo, control_fd);
	/* The dummy hash is made on first use: make it now, so that the
	   first unknown user costs no more than any other. */
	users_verify_dummy("", 0);
	/* The sandbox before the threads: they inherit it (Landlock binds
	   the calling thread only). */
	if (sandbox_guard(G.cfg->sandbox, G.cfg->users_file, G.cfg_path,
			  G.cfg->control_socket) < 0)
		guard_die("sandbox");
	if (guard_pool_start(G.base, (long)G.cfg->auth_threads,
			     G.cfg->auth_queue_per_network, job_done) < 0)
		guard_die("cannot start the hashing threads");
	log_info(SID, "started pid=%ld", (long)getpid());
	event_base_dispatch(G.base);
	guard_die("event loop ended");
}
