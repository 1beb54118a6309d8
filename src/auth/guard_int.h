/*
 * guard_int.h - what the parts of the guard process share: guard.c (state,
 * workers, verdicts, reload), guard_pool.c (the hashing threads) and
 * guard_control.c (the control socket of `postern locks` / `unlock`).
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

struct event;
struct event_base;
struct guard_peer;

/*
 * One AUTH request that needs a hash. guard.c fills it and hands it to the
 * pool; a thread sets `verdict`; guard.c answers and frees it.
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

/* guard.c: seconds of the monotonic clock; a lock's end as UTC text; the
   names of enum lockout_kind. */
time_t guard_now(void);
void guard_until_text(char *buf, size_t size, time_t until);
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
struct users;
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

#endif
