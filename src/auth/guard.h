/*
 * guard.h - the guard: one process that holds every verdict depending on
 * history or secrets (DESIGN.md). It alone reads the users file; it
 * verifies passwords in a thread pool (no event loop ever waits for a
 * hash); it counts failed logins per client address (IPv4 /32 and /24,
 * IPv6 /64 and /48) and per account in sliding windows and locks them out;
 * it limits sessions per client address (concurrency and rate); it answers
 * `postern locks` and `postern unlock` over a control socket.
 *
 * Workers talk to it over a socketpair with length-prefixed frames
 * (guard_proto.h); the master hands each new worker's end to the guard
 * with SCM_RIGHTS. A worker never sees a password hash.
 */
#ifndef POSTERN_GUARD_H
#define POSTERN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/config.h"

struct event_base;

enum guard_auth_result {
	GUARD_AUTH_OK = 0,   /* 235 2.7.0 */
	GUARD_AUTH_FAIL,     /* 535 5.7.8: wrong password or unknown user,
				indistinguishable */
	GUARD_AUTH_LOCKED,   /* 454 4.7.0: address or account locked, even
				with the right password */
	GUARD_AUTH_TEMPFAIL, /* 454 4.7.0: guard unavailable or overloaded */
};

enum guard_conn_result {
	GUARD_CONN_OK = 0,
	GUARD_CONN_LOCKED,   /* address locked: 421 4.7.0 / close on 465 */
	GUARD_CONN_TOO_MANY, /* over conn-limit-per-address: 421 4.7.0 */
	GUARD_CONN_TOO_FAST, /* over conn-rate-per-address: 421 4.7.0 */
};

/* A recipient of an authenticated account (docs/sendlimit.md); the order
   of enum sendlimit_result, then TEMPFAIL. */
enum guard_send_result {
	GUARD_SEND_OK = 0,	  /* 250 */
	GUARD_SEND_HOLD,	  /* 250; the message is held in the queue */
	GUARD_SEND_OVER_HOUR,	  /* 451 4.7.1 send-limit-hour */
	GUARD_SEND_OVER_DAY,	  /* 451 4.7.1 send-limit-day */
	GUARD_SEND_OVER_NEW,	  /* 451 4.7.1 new-recipients-day */
	GUARD_SEND_ALARMED,	  /* 451 4.7.1 burst-action refuse */
	GUARD_SEND_TEMPFAIL,	  /* 451 4.3.0: guard unavailable */
};

/* --- the guard process ----------------------------------------------- */

/*
 * Run the guard. `master_fd` is its end of a socketpair with the master,
 * `control_fd` the control socket from guard_control_bind (-1: none),
 * over which worker sockets arrive (SCM_RIGHTS, one per message) and the
 * master's reload requests come. Loads cfg->users_file; on a reload request
 * re-reads `cfg_path` (NULL: keep cfg) and the users file, keeping the old
 * ones when the new ones are bad. Never returns.
 */
void guard_main(const struct config *cfg, const char *cfg_path,
		int master_fd, int control_fd) __attribute__((noreturn));

/*
 * Make the control socket cfg->control_socket (before the guard drops
 * root: the master made its directory, proc.h), mode 0660 with group
 * admin-group, or 0600. Returns the listening socket for guard_main's
 * `control_fd`, or -1 (logged; none, or it could not be made).
 */
int guard_control_bind(const struct config *cfg);

/* Master side: hand a worker's socket to the guard; ask it to reload. */
int guard_send_worker_fd(int master_fd, int worker_fd);
int guard_send_reload(int master_fd);

/* --- the worker side ------------------------------------------------- */

struct guard_client;

struct guard_auth_reply {
	enum guard_auth_result result;
	const char *user;		  /* canonical login on success */
	const char *const *addresses;	  /* the user's name and aliases */
	size_t n_addresses;
};

typedef void guard_auth_cb(const struct guard_auth_reply *reply, void *arg);
typedef void guard_conn_cb(enum guard_conn_result result, void *arg);

struct guard_client *guard_client_new(struct event_base *base, int fd);
void guard_client_free(struct guard_client **gc);

/*
 * Ask for an AUTH verdict. The password is copied into the frame and
 * wiped from the client's buffers once sent. The callback runs later from
 * the event loop, exactly once, unless cancelled. Returns a request id
 * (never 0).
 */
uint32_t guard_client_auth(struct guard_client *gc, const char *user,
			   size_t user_len, const char *pass, size_t pass_len,
			   const char *client_addr, enum listen_role role,
			   guard_auth_cb *cb, void *arg);

/* A new session from `client_addr`: may it proceed? Same rules. */
uint32_t guard_client_conn_open(struct guard_client *gc,
				const char *client_addr, guard_conn_cb *cb,
				void *arg);
/* The session opened with conn_open ended (no reply). */
void guard_client_conn_close(struct guard_client *gc,
			     const char *client_addr);

struct guard_send_reply {
	enum guard_send_result result;
	bool alarm_raised;	/* this recipient raised the send-burst alarm */
	uint32_t count;		/* the account's sliding hour */
	uint32_t baseline;	/* its baseline, hundredths an hour */
};

typedef void guard_send_cb(const struct guard_send_reply *reply, void *arg);

/*
 * May the authenticated `account` send to one more recipient `rcpt`? The
 * guard counts it when the answer is OK or HOLD. Same rules as AUTH: the
 * callback runs later, exactly once unless cancelled; TEMPFAIL when the
 * guard is unreachable or a field cannot be sent. Returns an id (never 0).
 */
uint32_t guard_client_send(struct guard_client *gc, const char *account,
			   const char *rcpt, guard_send_cb *cb, void *arg);
/* `n` recipients counted for `account` were not sent (no reply). */
void guard_client_send_undo(struct guard_client *gc, const char *account,
			    uint32_t n);

/*
 * The guard hands a postmaster notice of a send-burst alarm to write
 * (docs/sendlimit.md): `id` its number, `account` (a users-file address,
 * at most 320 octets), its sliding hour `count` and `baseline`
 * (hundredths of a recipient an hour). Whoever commits it confirms with
 * guard_client_notice_done(); an unconfirmed notice is handed again.
 */
typedef void guard_notice_cb(uint32_t id, const char *account,
			     uint32_t count, uint32_t baseline, void *arg);
/* Who writes handed notices (NULL: nobody; they are then not confirmed
   and the guard hands them to another worker later). */
void guard_client_on_notice(struct guard_client *gc, guard_notice_cb *cb,
			    void *arg);
/* Notice `id` of `account` is committed (no reply). */
void guard_client_notice_done(struct guard_client *gc, uint32_t id,
			      const char *account);

/* Give the client a new socket to a (restarted) guard; 0 or -1. */
int guard_client_set_fd(struct guard_client *gc, int fd);
bool guard_client_is_connected(const struct guard_client *gc);

/* Forget a request whose session is gone: its callback will not run. */
void guard_client_cancel(struct guard_client *gc, uint32_t id);

/*
 * Is `address` (canonical, lower-case) a user of the users file? The guard
 * pushes the list of user names (never hashes) to each worker at start and
 * after every reload.
 */
bool guard_client_is_user(const struct guard_client *gc,
			  const char *address);

/* --- the control socket (postern locks / unlock) --------------------- */

/* Connect to the control socket, send `command` ("LOCKS",
   "UNLOCK <address|account>", "LIMITS <account>", "RELEASE <account>",
   "TOP", "ALARMS"), copy the answer to `out`. Returns the exit
   status for the CLI (0 ok, 1 error). */
int guard_control(const char *socket_path, const char *command, FILE *out);

#endif
