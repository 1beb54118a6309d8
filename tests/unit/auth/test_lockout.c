/*
 * test_lockout.c - the pure lockout state (src/auth/lockout.c): thresholds,
 * sliding windows, /24 and /48 aggregation, doubling lock times, the
 * allow-list, "the same wrong password counts once", unlock, the bound on
 * tracked keys, per-address concurrency and rate (THREATS ).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/lockout.h"

#define T0 100000

static const unsigned char secret[LOCKOUT_SECRET_LEN] =
    "0123456789abcdef0123456789abcde";

static struct config_network allow[2];

static void
default_config(struct lockout_config *lc)
{
	memset(lc, 0, sizeof(*lc));
	lc->account_failures = 5;
	lc->address_failures = 10;
	lc->network_failures = 30;
	lc->window = 900;
	lc->lock_time = 300;
	lc->lock_max = 3600;
	lc->relapse_memory = 86400;
	lc->conn_limit = 20;
	lc->conn_rate = 60;
	memset(allow, 0, sizeof(allow));
	allow[0].family = AF_INET;
	inet_pton(AF_INET, "198.51.100.0", allow[0].addr);
	allow[0].prefix = 24;
	allow[1].family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:ffff::", allow[1].addr);
	allow[1].prefix = 48;
	lc->allow = allow;
	lc->n_allow = 2;
	lc->max_keys = 100000;
}

static struct lockout *
new_lockout(void)
{
	struct lockout_config lc;
	struct lockout *lo;

	default_config(&lc);
	lo = lockout_new(&lc, secret);
	assert_non_null(lo);
	return lo;
}

/* One whole failed attempt; returns the number of locks it set. */
static size_t
fail_once(struct lockout *lo, const char *addr, const char *account,
	  const char *pass, time_t now, struct lockout_event ev[LOCKOUT_MAX_EVENTS])
{
	struct lockout_event tmp[LOCKOUT_MAX_EVENTS];

	if (ev == NULL)
		ev = tmp;
	assert_int_equal(lockout_auth_begin(lo, addr, account, now, NULL),
			 LOCKOUT_OK);
	return lockout_auth_failure(lo, addr, account, pass, strlen(pass), now,
				    ev);
}

static void
succeed(struct lockout *lo, const char *addr, const char *account, time_t now)
{
	assert_int_equal(lockout_auth_begin(lo, addr, account, now, NULL),
			 LOCKOUT_OK);
	lockout_auth_success(lo, addr, account, now);
}

static enum lockout_verdict
probe(struct lockout *lo, const char *addr, const char *account, time_t now)
{
	enum lockout_verdict v =
	    lockout_auth_begin(lo, addr, account, now, NULL);

	if (v == LOCKOUT_OK)
		lockout_auth_abort(lo, addr, account, now);
	return v;
}

static void
test_account_threshold(void **state)
{
	struct lockout *lo = new_lockout();
	struct lockout_event ev[LOCKOUT_MAX_EVENTS];
	char addr[32], pass[32];

	(void)state;
	for (int i = 1; i <= 5; i++) {
		snprintf(addr, sizeof(addr), "203.0.%d.1", i);
		snprintf(pass, sizeof(pass), "guess%d", i);
		size_t n =
		    fail_once(lo, addr, "Alice@Local.Test", pass, T0 + i, ev);

		assert_int_equal(n, i == 5 ? 1 : 0);
	}
	assert_int_equal(ev[0].kind, LOCKOUT_ACCOUNT);
	assert_string_equal(ev[0].key, "alice@local.test");
	assert_int_equal(ev[0].seconds, 300);
	assert_int_equal(ev[0].failures, 5);
	assert_int_equal(ev[0].until, T0 + 5 + 300);
	/* Locked even from a new address; any case of the name. */
	assert_int_equal(probe(lo, "203.0.113.9", "alice@local.test", T0 + 6),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "203.0.113.9", "ALICE@LOCAL.TEST", T0 + 6),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "203.0.113.9", "bob@local.test", T0 + 6),
			 LOCKOUT_OK);
	/* The lock ends. */
	assert_int_equal(
	    probe(lo, "203.0.113.9", "alice@local.test", T0 + 5 + 300),
	    LOCKOUT_OK);
	lockout_free(&lo);
	assert_null(lo);
}

static void
test_address_threshold(void **state)
{
	struct lockout *lo = new_lockout();
	struct lockout_event ev[LOCKOUT_MAX_EVENTS];
	char account[32];

	(void)state;
	for (int i = 1; i <= 10; i++) {
		snprintf(account, sizeof(account), "user%d@local.test", i);
		assert_int_equal(
		    fail_once(lo, "192.0.2.1", account, "x", T0, ev),
		    i == 10 ? 1 : 0);
	}
	assert_int_equal(ev[0].kind, LOCKOUT_ADDRESS);
	assert_string_equal(ev[0].key, "192.0.2.1/32");
	/* The right password does not help: the check comes first. */
	assert_int_equal(probe(lo, "192.0.2.1", "new@local.test", T0 + 1),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "192.0.2.2", "new@local.test", T0 + 1),
			 LOCKOUT_OK);
	assert_int_equal(lockout_conn_open(lo, "192.0.2.1", T0 + 1, NULL),
			 LOCKOUT_LOCKED);
	assert_int_equal(lockout_conn_open(lo, "192.0.2.2", T0 + 1, NULL),
			 LOCKOUT_OK);
	lockout_free(&lo);
}

struct agg_case {
	bool is_v6;	     /* 192.0.2.N or 2001:db8:1:N::1 */
	unsigned per_addr;   /* failures from each address */
	const char *inside;  /* another address in the same network */
	const char *outside; /* an address in the next network */
	const char *key;     /* the network lock's key */
};

static void
test_network_aggregation(void **state)
{
	static const struct agg_case cases[] = {
	    {false, 3, "192.0.2.250", "192.0.3.1", "192.0.2.0/24"},
	    {true, 3, "2001:db8:1:ffff::9", "2001:db8:2::1", "2001:db8:1::/48"},
	};
	char addr[64], account[32];

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct lockout *lo = new_lockout();
		struct lockout_event ev[LOCKOUT_MAX_EVENTS];
		size_t locks = 0;
		int n = 0;

		for (int a = 1; a <= 10 && locks == 0; a++)
			for (unsigned j = 0; j < cases[c].per_addr; j++) {
				if (cases[c].is_v6)
					snprintf(addr, sizeof(addr),
						 "2001:db8:1:%x::1", a);
				else
					snprintf(addr, sizeof(addr),
						 "192.0.2.%d", a);
				snprintf(account, sizeof(account), "u%d@x", n);
				n++;
				locks =
				    fail_once(lo, addr, account, "pw", T0, ev);
			}
		/* 30 failures (3x the address threshold) lock the net. */
		assert_int_equal(n, 30);
		assert_int_equal(locks, 1);
		assert_int_equal(ev[0].kind, LOCKOUT_NETWORK);
		assert_string_equal(ev[0].key, cases[c].key);
		assert_int_equal(probe(lo, cases[c].inside, "z@x", T0),
				 LOCKOUT_LOCKED);
		assert_int_equal(
		    lockout_conn_open(lo, cases[c].inside, T0, NULL),
		    LOCKOUT_LOCKED);
		assert_int_equal(probe(lo, cases[c].outside, "z@x", T0),
				 LOCKOUT_OK);
		lockout_free(&lo);
	}
}

/* Two addresses of one IPv6 /64 are one address key. */
static void
test_ipv6_slash64(void **state)
{
	struct lockout *lo = new_lockout();
	char account[32];

	(void)state;
	for (int i = 0; i < 10; i++) {
		snprintf(account, sizeof(account), "u%d@x", i);
		fail_once(lo,
			  i % 2 ? "2001:db8:5:6::1" : "2001:db8:5:6:ffff::2",
			  account, "pw", T0, NULL);
	}
	assert_int_equal(probe(lo, "2001:db8:5:6:1:2:3:4", "z@x", T0),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "2001:db8:5:7::1", "z@x", T0), LOCKOUT_OK);
	lockout_free(&lo);
}

static void
test_window_slides(void **state)
{
	struct lockout *lo = new_lockout();
	char pass[32];

	(void)state;
	/* 4 failures, then 900 s later the window holds none of them. */
	for (int i = 0; i < 4; i++) {
		snprintf(pass, sizeof(pass), "a%d", i);
		assert_int_equal(
		    fail_once(lo, "203.0.113.1", "alice@x", pass, T0 + i, NULL),
		    0);
	}
	/* At T0+900 the failure of T0 has just left the window: 4. */
	assert_int_equal(
	    fail_once(lo, "203.0.113.1", "alice@x", "b0", T0 + 900, NULL), 0);
	/* At T0+901 that of T0+1 leaves too: still 4 ... */
	assert_int_equal(
	    fail_once(lo, "203.0.113.1", "alice@x", "b1", T0 + 901, NULL), 0);
	/* ... and a fifth inside the window locks. */
	assert_int_equal(
	    fail_once(lo, "203.0.113.1", "alice@x", "b2", T0 + 901, NULL), 1);
	lockout_free(&lo);
}

/* Lock N for `account` at `now`: five distinct failures. */
static struct lockout_event
lock_account(struct lockout *lo, const char *account, time_t now, int round)
{
	struct lockout_event ev[LOCKOUT_MAX_EVENTS];
	char pass[32], addr[32];
	size_t n = 0;

	/* From a fresh /24 each round, so that only the account locks. */
	snprintf(addr, sizeof(addr), "10.0.%d.7", round);
	for (int i = 0; i < 5; i++) {
		snprintf(pass, sizeof(pass), "r%d-%d", round, i);
		n = fail_once(lo, addr, account, pass, now, ev);
	}
	assert_int_equal(n, 1);
	return ev[0];
}

static void
test_doubling(void **state)
{
	static const unsigned expect[] = {300, 600, 1200, 2400, 3600, 3600};
	struct lockout *lo = new_lockout();
	struct lockout_event ev;
	time_t now = T0;

	(void)state;
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		ev = lock_account(lo, "alice@x", now, (int)i);
		assert_int_equal(ev.seconds, expect[i]);
		assert_int_equal(
		    probe(lo, "203.0.113.8", "alice@x", ev.until - 1),
		    LOCKOUT_LOCKED);
		now = ev.until + 60; /* relapse a minute after */
	}
	/* A day of calm after the last lock: back to the first length. */
	ev = lock_account(lo, "alice@x", now + 86400, 99);
	assert_int_equal(ev.seconds, 300);
	lockout_free(&lo);
}

static void
test_allow_list(void **state)
{
	static const char *const addrs[] = {
	    "198.51.100.7", "2001:db8:ffff:1::5", "::ffff:198.51.100.8"};
	struct lockout *lo = new_lockout();
	char pass[32];

	(void)state;
	for (size_t a = 0; a < 3; a++) {
		assert_true(lockout_is_allowed(lo, addrs[a]));
		for (int i = 0; i < 50; i++) {
			snprintf(pass, sizeof(pass), "p%d", i);
			assert_int_equal(
			    fail_once(lo, addrs[a], "alice@x", pass, T0, NULL),
			    0);
		}
		assert_int_equal(probe(lo, addrs[a], "alice@x", T0),
				 LOCKOUT_OK);
		for (int i = 0; i < 100; i++)
			assert_int_equal(
			    lockout_conn_open(lo, addrs[a], T0, NULL),
			    LOCKOUT_OK);
	}
	assert_false(lockout_is_allowed(lo, "198.51.101.7"));
	/* Failures from the allow-list did not count against alice. */
	assert_int_equal(probe(lo, "203.0.113.1", "alice@x", T0), LOCKOUT_OK);
	/* An allowed client is not stopped by a locked account either. */
	lock_account(lo, "alice@x", T0, 1);
	assert_int_equal(probe(lo, "203.0.113.1", "alice@x", T0),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "198.51.100.7", "alice@x", T0), LOCKOUT_OK);
	lockout_free(&lo);
}

static void
test_same_password_once(void **state)
{
	struct lockout *lo = new_lockout();
	char pass[32];

	(void)state;
	/* A phone with a stale password, 40 times: one failure. */
	for (int i = 0; i < 40; i++)
		assert_int_equal(fail_once(lo, "203.0.113.1", "alice@x",
					   "stale", T0 + i, NULL),
				 0);
	assert_int_equal(probe(lo, "203.0.113.1", "alice@x", T0 + 40),
			 LOCKOUT_OK);
	/* The same password for other accounts does count. */
	for (int i = 0; i < 9; i++) {
		snprintf(pass, sizeof(pass), "u%d@x", i);
		assert_int_equal(
		    fail_once(lo, "203.0.113.1", pass, "stale", T0 + 41, NULL),
		    i == 8 ? 1 : 0); /* 10th for the /32 */
	}
	/* Four new passwords for alice + the stale one make 5. */
	lockout_unlock(lo, "203.0.113.1", T0 + 42);
	for (int i = 0; i < 4; i++) {
		snprintf(pass, sizeof(pass), "new%d", i);
		assert_int_equal(fail_once(lo, "203.0.113.2", "alice@x", pass,
					   T0 + 42, NULL),
				 i == 3 ? 1 : 0);
	}
	lockout_free(&lo);
}

static void
test_success(void **state)
{
	struct lockout *lo = new_lockout();
	char pass[32];

	(void)state;
	/* The owner's typos from A are forgiven by a success from A. */
	for (int i = 0; i < 4; i++) {
		snprintf(pass, sizeof(pass), "t%d", i);
		fail_once(lo, "203.0.113.1", "alice@x", pass, T0, NULL);
	}
	succeed(lo, "203.0.113.1", "alice@x", T0 + 1);
	for (int i = 0; i < 4; i++) {
		snprintf(pass, sizeof(pass), "s%d", i);
		assert_int_equal(
		    fail_once(lo, "203.0.113.1", "alice@x", pass, T0 + 2, NULL),
		    0);
	}
	/* ... but the address keeps its 8 failures: two more lock it. */
	fail_once(lo, "203.0.113.1", "bob@x", "b", T0 + 3, NULL);
	assert_int_equal(
	    fail_once(lo, "203.0.113.1", "carol@x", "c", T0 + 3, NULL),
	    1); /* the /32 only: alice is at 4 */
	lockout_free(&lo);

	/* Failures from B are not forgiven by a success from A. */
	lo = new_lockout();
	for (int i = 0; i < 4; i++) {
		snprintf(pass, sizeof(pass), "t%d", i);
		fail_once(lo, "203.0.113.66", "dave@x", pass, T0, NULL);
	}
	succeed(lo, "192.0.2.1", "dave@x", T0 + 1);
	assert_int_equal(
	    fail_once(lo, "192.0.2.1", "dave@x", "z", T0 + 2, NULL), 1);
	/* Locked, except from 192.0.2.0/24, where dave logged in. */
	assert_int_equal(probe(lo, "198.18.0.1", "dave@x", T0 + 2),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "192.0.2.1", "dave@x", T0 + 2), LOCKOUT_OK);
	lockout_free(&lo);
}

static void
test_inflight(void **state)
{
	struct lockout *lo = new_lockout();
	char account[32];

	(void)state;
	/* Ten parallel guesses from one address fill its budget. */
	for (int i = 0; i < 10; i++) {
		snprintf(account, sizeof(account), "u%d@x", i);
		assert_int_equal(
		    lockout_auth_begin(lo, "192.0.2.9", account, T0, NULL),
		    LOCKOUT_OK);
	}
	assert_int_equal(probe(lo, "192.0.2.9", "v@x", T0), LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "192.0.2.10", "v@x", T0), LOCKOUT_OK);
	for (int i = 0; i < 10; i++) {
		snprintf(account, sizeof(account), "u%d@x", i);
		lockout_auth_abort(lo, "192.0.2.9", account, T0);
	}
	assert_int_equal(probe(lo, "192.0.2.9", "v@x", T0), LOCKOUT_OK);
	lockout_free(&lo);
}

static size_t n_listed;
static char listed[8][LOCKOUT_KEY_TEXT_MAX + 16];

static void
list_cb(const struct lockout_event *ev, void *arg)
{
	(void)arg;
	if (n_listed < 8)
		snprintf(listed[n_listed], sizeof(listed[0]), "%d %s",
			 (int)ev->kind, ev->key);
	n_listed++;
}

static bool
is_listed(const char *s)
{
	for (size_t i = 0; i < n_listed && i < 8; i++)
		if (strcmp(listed[i], s) == 0)
			return true;
	return false;
}

static void
test_unlock_and_list(void **state)
{
	struct lockout *lo = new_lockout();
	char account[32];

	(void)state;
	for (int i = 0; i < 30; i++) {
		snprintf(account, sizeof(account), "u%d@x", i);
		fail_once(lo,
			  i < 10   ? "192.0.2.1"
			  : i < 20 ? "192.0.2.2"
				   : "192.0.2.3",
			  account, "pw", T0, NULL);
	}
	lock_account(lo, "alice@x", T0, 0);
	n_listed = 0;
	assert_int_equal(lockout_list(lo, T0, list_cb, NULL), 5);
	assert_true(is_listed("1 192.0.2.1/32"));
	assert_true(is_listed("1 192.0.2.2/32"));
	assert_true(is_listed("1 192.0.2.3/32"));
	assert_true(is_listed("2 192.0.2.0/24"));
	assert_true(is_listed("0 alice@x"));

	/* A bare address lifts its /32 and its /24. */
	assert_int_equal(lockout_unlock(lo, "192.0.2.1", T0), 2);
	assert_int_equal(probe(lo, "192.0.2.1", "z@x", T0), LOCKOUT_OK);
	assert_int_equal(probe(lo, "192.0.2.2", "z@x", T0), LOCKOUT_LOCKED);
	/* A CIDR key lifts that entry only. */
	assert_int_equal(lockout_unlock(lo, "192.0.2.2/32", T0), 1);
	assert_int_equal(probe(lo, "192.0.2.2", "z@x", T0), LOCKOUT_OK);
	assert_int_equal(lockout_unlock(lo, "192.0.2.3/25", T0), 0);
	assert_int_equal(lockout_unlock(lo, "192.0.2.3/x", T0), 0);
	assert_int_equal(lockout_unlock(lo, "ALICE@X", T0), 1);
	assert_int_equal(probe(lo, "203.0.113.1", "alice@x", T0), LOCKOUT_OK);
	assert_int_equal(lockout_unlock(lo, "nobody@x", T0), 0);
	n_listed = 0;
	assert_int_equal(lockout_list(lo, T0, list_cb, NULL), 1);
	assert_true(is_listed("1 192.0.2.3/32"));
	/* After an unlock the next lock is a first lock again. */
	struct lockout_event ev = lock_account(lo, "alice@x", T0 + 1, 5);

	assert_int_equal(ev.seconds, 300);
	lockout_free(&lo);
}

static void
test_eviction_bound(void **state)
{
	struct lockout_config lc;
	struct lockout *lo;
	char addr[64], account[32];

	(void)state;
	default_config(&lc);
	lc.max_keys = 1000;
	lo = lockout_new(&lc, secret);
	assert_non_null(lo);
	lock_account(lo, "alice@x", T0, 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(addr, sizeof(addr), "2001:db8:%x::1", i);
		snprintf(account, sizeof(account), "u%d@x", i);
		fail_once(lo, addr, account, "pw", T0 + 1, NULL);
		assert_true(lockout_count(lo) <= 1000);
	}
	/* A flood of fresh keys did not flush the lock. */
	assert_int_equal(probe(lo, "203.0.113.1", "alice@x", T0 + 2),
			 LOCKOUT_LOCKED);
	/* Idle entries go: a day and a lock later, nothing is left. */
	lockout_expire(lo, T0 + 300 + 86400 + 1000);
	assert_int_equal(lockout_count(lo), 0);
	lockout_free(&lo);
}

static void
test_conn_limits(void **state)
{
	struct lockout_config lc;
	struct lockout *lo = new_lockout();

	(void)state;
	for (int i = 0; i < 20; i++)
		assert_int_equal(lockout_conn_open(lo, "192.0.2.1", T0, NULL),
				 LOCKOUT_OK);
	assert_int_equal(lockout_conn_open(lo, "192.0.2.1", T0, NULL),
			 LOCKOUT_TOO_MANY);
	/* Another address of the same /24 is not affected. */
	assert_int_equal(lockout_conn_open(lo, "192.0.2.2", T0, NULL),
			 LOCKOUT_OK);
	lockout_conn_close(lo, "192.0.2.1", T0);
	assert_int_equal(lockout_conn_open(lo, "192.0.2.1", T0, NULL),
			 LOCKOUT_OK);
	lockout_free(&lo);

	/* Rate: 60 a minute, refilled one a second. */
	default_config(&lc);
	lc.conn_limit = 0;
	lo = lockout_new(&lc, secret);
	for (int i = 0; i < 60; i++) {
		assert_int_equal(lockout_conn_open(lo, "2001:db8::1", T0, NULL),
				 LOCKOUT_OK);
		lockout_conn_close(lo, "2001:db8::1", T0);
	}
	assert_int_equal(lockout_conn_open(lo, "2001:db8::2", T0, NULL),
			 LOCKOUT_TOO_FAST); /* same /64 */
	assert_int_equal(lockout_conn_open(lo, "2001:db8::1", T0 + 1, NULL),
			 LOCKOUT_OK);
	assert_int_equal(lockout_conn_open(lo, "2001:db8::1", T0 + 1, NULL),
			 LOCKOUT_TOO_FAST);
	assert_int_equal(lockout_conn_open(lo, "2001:db8::1", T0 + 61, NULL),
			 LOCKOUT_OK);
	lockout_free(&lo);

	/* 0: no limits. */
	default_config(&lc);
	lc.conn_limit = 0;
	lc.conn_rate = 0;
	lo = lockout_new(&lc, secret);
	for (int i = 0; i < 500; i++)
		assert_int_equal(lockout_conn_open(lo, "192.0.2.1", T0, NULL),
				 LOCKOUT_OK);
	assert_int_equal(lockout_count(lo), 0);
	lockout_free(&lo);
}

/*
 * conn-limit-exempt (issue 7 item 4): addresses in those networks are
 * never refused by the two limits, nor counted; a lock still turns them
 * away. Others are limited as before.
 */
static void
test_conn_exempt(void **state)
{
	struct config_network exempt[2];
	struct lockout_config lc;
	struct lockout *lo;
	char pass[32];

	(void)state;
	memset(exempt, 0, sizeof(exempt));
	exempt[0].family = AF_INET;
	inet_pton(AF_INET, "127.0.0.0", exempt[0].addr);
	exempt[0].prefix = 8;
	exempt[1].family = AF_INET6;
	inet_pton(AF_INET6, "::1", exempt[1].addr);
	exempt[1].prefix = 128;
	default_config(&lc);
	lc.conn_limit = 2;
	lc.conn_rate = 3;
	lc.exempt = exempt;
	lc.n_exempt = 2;
	lo = lockout_new(&lc, secret);
	assert_non_null(lo);
	for (int i = 0; i < 500; i++) {
		assert_int_equal(lockout_conn_open(lo, "127.0.0.5", T0, NULL),
				 LOCKOUT_OK);
		assert_int_equal(lockout_conn_open(lo, "::1", T0, NULL),
				 LOCKOUT_OK);
		assert_int_equal(
		    lockout_conn_open(lo, "::ffff:127.0.0.4", T0, NULL),
		    LOCKOUT_OK);
	}
	for (int i = 0; i < 500; i++)
		lockout_conn_close(lo, "127.0.0.5", T0);
	assert_int_equal(lockout_count(lo), 0); /* nothing counted */

	/* Outside the exempt networks: the limits as before. */
	assert_int_equal(lockout_conn_open(lo, "192.0.2.9", T0, NULL),
			 LOCKOUT_OK);
	assert_int_equal(lockout_conn_open(lo, "192.0.2.9", T0, NULL),
			 LOCKOUT_OK);
	assert_int_equal(lockout_conn_open(lo, "192.0.2.9", T0, NULL),
			 LOCKOUT_TOO_MANY);
	assert_int_equal(lockout_conn_open(lo, "::2", T0, NULL), LOCKOUT_OK);
	assert_int_equal(lockout_conn_open(lo, "::2", T0, NULL), LOCKOUT_OK);
	assert_int_equal(lockout_conn_open(lo, "::2", T0, NULL),
			 LOCKOUT_TOO_MANY);

	/* The lockout still applies to an exempt address. */
	for (int i = 0; i < 10; i++) {
		snprintf(pass, sizeof(pass), "user%d@x", i);
		fail_once(lo, "127.0.0.5", pass, "guess", T0 + 1, NULL);
	}
	assert_int_equal(lockout_conn_open(lo, "127.0.0.5", T0 + 2, NULL),
			 LOCKOUT_LOCKED);
	assert_int_equal(lockout_conn_open(lo, "127.0.0.6", T0 + 2, NULL),
			 LOCKOUT_OK);
	lockout_free(&lo);
}

struct addr_case {
	const char *text;
	int ok;
	int family;
	const char *same_as; /* parses to the same address as this */
};

static void
test_parse_addr(void **state)
{
	static const struct addr_case cases[] = {
	    {"192.0.2.1", 0, AF_INET, NULL},
	    {"::ffff:192.0.2.1", 0, AF_INET, "192.0.2.1"},
	    {"2001:DB8::1", 0, AF_INET6, "2001:db8::1"},
	    {"2001:db8:0:0:0:0:0:1", 0, AF_INET6, "2001:db8::1"},
	    {"::", 0, AF_INET6, NULL},
	    {"::1", 0, AF_INET6, NULL},
	    {"fe80::1%eth0", -1, 0, NULL},
	    {"1.2.3", -1, 0, NULL},
	    {"192.0.2.256", -1, 0, NULL},
	    {" 192.0.2.1", -1, 0, NULL},
	    {"[::1]", -1, 0, NULL},
	    {"", -1, 0, NULL},
	    {"alice@x", -1, 0, NULL},
	};
	unsigned char a[16], b[16];
	int family, f2;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = lockout_parse_addr(cases[i].text, &family, a);

		assert_int_equal(r, cases[i].ok);
		if (r < 0)
			continue;
		assert_int_equal(family, cases[i].family);
		if (cases[i].same_as != NULL) {
			assert_int_equal(
			    lockout_parse_addr(cases[i].same_as, &f2, b), 0);
			assert_int_equal(f2, family);
			assert_memory_equal(a, b, 16);
		}
	}
	assert_int_equal(lockout_parse_addr(NULL, &family, a), -1);

	/* A mapped address shares the IPv4 keys. */
	struct lockout *lo = new_lockout();
	char account[32];

	for (int i = 0; i < 10; i++) {
		snprintf(account, sizeof(account), "u%d@x", i);
		fail_once(lo, "::ffff:192.0.2.77", account, "pw", T0, NULL);
	}
	assert_int_equal(lockout_conn_open(lo, "192.0.2.77", T0, NULL),
			 LOCKOUT_LOCKED);
	/* An address that does not parse: the account still counts. */
	for (int i = 0; i < 5; i++) {
		snprintf(account, sizeof(account), "p%d", i);
		fail_once(lo, "unix", "erin@x", account, T0, NULL);
	}
	assert_int_equal(probe(lo, "192.0.2.1", "erin@x", T0), LOCKOUT_LOCKED);
	assert_int_equal(lockout_conn_open(lo, "unix", T0, NULL), LOCKOUT_OK);
	lockout_free(&lo);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_account_threshold),
	    cmocka_unit_test(test_address_threshold),
	    cmocka_unit_test(test_network_aggregation),
	    cmocka_unit_test(test_ipv6_slash64),
	    cmocka_unit_test(test_window_slides),
	    cmocka_unit_test(test_doubling),
	    cmocka_unit_test(test_allow_list),
	    cmocka_unit_test(test_same_password_once),
	    cmocka_unit_test(test_success),
	    cmocka_unit_test(test_inflight),
	    cmocka_unit_test(test_unlock_and_list),
	    cmocka_unit_test(test_eviction_bound),
	    cmocka_unit_test(test_conn_limits),
	    cmocka_unit_test(test_conn_exempt),
	    cmocka_unit_test(test_parse_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
