/*
 * guard_int.h - what the parts of the guard process share: guard.c (start,
 * the master, reload, the dispatch of workers' frames), guard_peer.c (the
 * workers' connections), guard_auth.c (the AUTH path), guard_pool.c (the
 * hashing threads), guard_control.c (the control socket of `postern
 * locks` / `unlock`), guard_send.c (send limits) and guard_notice.c (the
 * pending postmaster notices).
 * Not for other modules: they use guard.h.
 */
#ifndef POSTERN_GUARD_INT_H
#define POSTERN_GUARD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth/guard.h"
#include "auth/guard_fair.h"
#include "auth/guard_proto.h"
#include "auth/lockout.h"

#define GUARD_SID "guard" /* the session id of the guard's log lines */

struct bufferevent;
struct event;
struct event_base;
struct users;

#define GUARD_PEER_BUCKETS 256

/* An address a worker opened a session for (so that a dead worker's
   sessions can be closed). */
struct guard_open {
	struct guard_open *next;
	unsigned count;
	char addr[GUARD_ADDR_MAX + 1];
};

/* A worker's connection (guard_peer.c). */
struct guard_peer {
	struct guard_peer *next, *prev;
	struct bufferevent *bev; /* NULL once gone */
	unsigned refs; /* jobs pointing here, + 1 while linked */
	unsigned serial;
	struct guard_open *open[GUARD_PEER_BUCKETS];
};

/* What the guard's files share (defined in guard_peer.c; guard.c sets
   it up at start and on reload). */
struct guard_shared {
	struct event_base *base;
	struct config *cfg;
	struct users *users;
	struct lockout *lo;
	struct guard_peer *peers; /* connected workers, newest first */
	unsigned next_serial;
};
extern struct guard_shared guard_g;

/* guard_peer.c: a client address for the log (bare when it is an IP
   address, escaped otherwise); the peers. */
const char *guard_addr_text(char *buf, size_t size, const char *addr);
void guard_peer_unref(struct guard_peer *p);
void guard_peer_open_add(struct guard_peer *p, const char *addr);
/* Forget one session of `addr`; false when the peer had none open. */
bool guard_peer_open_del(struct guard_peer *p, const char *addr);
/* Queue a frame to the worker (nothing when it is gone). */
void guard_peer_send(struct guard_peer *p, const struct guard_msg *m);
/* Push the list of user names: BEGIN, CHUNKs, END. */
void guard_peer_push_users(struct guard_peer *p);
/* The worker's connection is gone: close its sessions, unlink it. */
void guard_peer_drop(struct guard_peer *p, const char *why);
/* The connected peer of that serial, or NULL. */
struct guard_peer *guard_peer_by_serial(unsigned serial);

/* guard_auth.c: the AUTH path. 0, or -1 out of memory. */
int guard_auth_init(void);
void guard_auth_request(struct guard_peer *p, const struct guard_msg *m);
/* The pool's callback for a finished hash (guard_pool_start). */
void guard_auth_done(struct guard_job *j);
/* The users changed (reload): forget cached verifications. */
void guard_auth_cache_clear(void);
/* The gauge of locks in force by kind (a lock set, every minute). */
void guard_locks_gauge(void);

/*
 * One AUTH request that needs a hash. guard_auth.c fills it and hands it
 * to the pool; a thread sets `verdict`; guard_auth.c answers and frees it.
 */
struct guard_job {
	struct guard_job *next;
	struct guard_peer *peer;
	uint32_t id;
	uint8_t role;
	char user[GUARD_USER_MAX + 1];
	char addr[GUARD_ADDR_MAX + 1];
	char pass[GUARD_PASS_MAX + 1];
	size_t pass_len;
	char *hash;    /* copy of the user's hash, or a dummy's (is_dummy);
			  NULL: the default dummy (users_verify_dummy) */
	bool is_dummy; /* unknown user: the verdict is 0 whatever the
			  dummy's (users_dummy_hash) */
	int verdict; /* from the thread: 1, 0, -1 */
	enum guard_auth_result result;
	struct event *timer;
};

/* guard_util.c: seconds of the monotonic clock; a lock's end and key as text; the
   names of enum lockout_kind. */
time_t guard_now(void);
void guard_until_text(char *buf, size_t size, time_t until);
void guard_lock_key_text(char *buf, size_t size,
			 const struct lockout_event *ev);
extern const char *const guard_kind_names[];

/* guard_pool.c: `done` runs in the loop's thread for each finished job. */
typedef void guard_pool_done_fn(struct guard_job *j);
int guard_pool_start(struct event_base *base, long n_threads,
		     size_t net_max, guard_pool_done_fn *done);
/* Queue a job behind the others of its client network (guard_fair.h);
   anything but GUARD_FAIR_OK: not queued, the caller answers. */
enum guard_fair_result guard_pool_submit(struct guard_job *j);
/* auth-queue-per-network changed (reload). */
void guard_pool_set_net_max(size_t net_max);

/* guard_control.c: serve the socket of guard_control_bind (-1: none);
   unlink it at exit (when the guard may). */
void guard_control_open(struct event_base *base, struct lockout *lo,
			int fd);
void guard_control_unlink(void);

/* guard_send.c: send limits and the volume alarm (docs/sendlimit.md). */
struct evbuffer;
struct gstore;
/* Loads the counts from `st` (NULL: none; nothing is kept across a
   restart) and writes every change into it. */
int guard_send_init(const struct config *cfg, struct gstore *st);
void guard_send_set_config(const struct config *cfg);
void guard_send_set_users(const struct users *users);
/* A SEND_REQ: the SEND_RES into *r; a SEND_UNDO. */
void guard_send_request(const struct guard_msg *m, struct guard_msg *r);
void guard_send_undo(const struct guard_msg *m);
/* LIMITS, RELEASE, TOP, ALARMS; false: not one of them. */
bool guard_send_control(const char *line, struct evbuffer *out);

/* guard_notice.c: the postmaster notices of send-burst alarms, pending
   until a worker confirms their commit (docs/sendlimit.md). */
/* Load the pending ones from `st` (NULL: none) and start the timer that
   hands them again. 0, or -1 out of memory. */
int guard_notice_init(struct event_base *base, struct gstore *st);
/* The alarm `account` raised (with `count` and `baseline`, hundredths)
   on a request of worker `p`: keep a notice pending, hand it to `p`. */
void guard_notice_raise(struct guard_peer *p, const char *account,
			uint32_t count, uint32_t baseline);
/* A NOTICE_DONE from `p`; false when the peer must be dropped (it
   names another account than the notice it holds). */
bool guard_notice_done(struct guard_peer *p, const struct guard_msg *m);
/* A worker connected: hand it what waits for one. */
void guard_notice_peer_added(struct guard_peer *p);

#endif
