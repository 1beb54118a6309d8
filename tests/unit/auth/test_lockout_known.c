/*
 * test_lockout_known.c - the lockout's newer rules, with a fake clock
 * (docs/lockout.md): an account lock spares the owner's known networks
 * (IPv4 /24, IPv6 /64) for 30 days; IPv6 failures count by /64, /48 and
 * /32; the login-networks alarm; the records that carry it all across a
 * restart (export, import).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/lockout.h"

#define T0 1000000
#define WALL0 1800000000 /* 2027-01-15 */
#define DAY 86400

static const unsigned char secret[LOCKOUT_SECRET_LEN] =
    "0123456789abcdef0123456789abcde";
static const unsigned char secret2[LOCKOUT_SECRET_LEN] =
    "another process, another key...";

static void
config(struct lockout_config *lc)
{
	memset(lc, 0, sizeof(*lc));
	lc->account_failures = 5;
	lc->address_failures = 10;
	lc->network_failures = 30;
	lc->wide_failures = 100;
	lc->login_networks = 5;
	lc->window = 900;
	lc->lock_time = 300;
	lc->lock_max = 3600;
	lc->relapse_memory = 86400;
	lc->max_keys = 100000;
}

static struct lockout *
new_lockout_with(const unsigned char *key)
{
	struct lockout_config lc;
	struct lockout *lo;

	config(&lc);
	lo = lockout_new(&lc, key);
	assert_non_null(lo);
	return lo;
}

static struct lockout *
new_lockout(void)
{
	return new_lockout_with(secret);
}

static size_t
fail_once(struct lockout *lo, const char *addr, const char *account,
	  const char *pass, time_t now, struct lockout_event *ev)
{
	struct lockout_event tmp[LOCKOUT_MAX_EVENTS];

	assert_int_equal(lockout_auth_begin(lo, addr, account, now, NULL),
			 LOCKOUT_OK);
	return lockout_auth_failure(lo, addr, account, pass, strlen(pass), now,
				    ev != NULL ? ev : tmp);
}

static unsigned
succeed(struct lockout *lo, const char *addr, const char *account,
	time_t now)
{
	assert_int_equal(lockout_auth_begin(lo, addr, account, now, NULL),
			 LOCKOUT_OK);
	return lockout_auth_success(lo, addr, account, now);
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

/* Lock `account` from `addr` with five different wrong passwords. */
static void
lock_account(struct lockout *lo, const char *addr, const char *account,
	     time_t now)
{
	char pass[16];
	size_t n = 0;

	for (int i = 0; i < 5; i++) {
		snprintf(pass, sizeof(pass), "guess%d", i);
		n += fail_once(lo, addr, account, pass, now, NULL);
	}
	assert_int_equal(n, 1);
}

/* --- the owner's networks ------------------------------------------------ */

static void
test_known_network_spares_the_owner(void **state)
{
	struct lockout *lo = new_lockout();

	(void)state;
	assert_int_equal(succeed(lo, "198.51.100.7", "Alice@X", T0), 0);
	assert_true(lockout_is_known(lo, "198.51.100.200", "alice@x", T0));
	assert_false(lockout_is_known(lo, "198.51.101.7", "alice@x", T0));
	assert_false(lockout_is_known(lo, "198.51.100.7", "bob@x", T0));
	lock_account(lo, "203.0.113.9", "alice@x", T0 + 10);
	/* The account is locked for everyone else ... */
	assert_int_equal(probe(lo, "203.0.113.9", "alice@x", T0 + 11),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "198.51.101.7", "alice@x", T0 + 11),
			 LOCKOUT_LOCKED);
	assert_int_equal(lockout_auth_check(lo, "198.51.101.7", "ALICE@x",
					    T0 + 11, NULL),
			 LOCKOUT_LOCKED);
	/* ... not from the owner's /24, whatever the case of the name. */
	assert_int_equal(probe(lo, "198.51.100.7", "alice@x", T0 + 11),
			 LOCKOUT_OK);
	assert_int_equal(probe(lo, "198.51.100.99", "ALICE@X", T0 + 11),
			 LOCKOUT_OK);
	assert_int_equal(lockout_auth_check(lo, "198.51.100.99", "alice@x",
					    T0 + 11, NULL),
			 LOCKOUT_OK);
	/* The address lockout still applies in the owner's network. */
	for (int i = 0; i < 10; i++) {
		char pass[16], user[16];

		snprintf(pass, sizeof(pass), "p%d", i);
		snprintf(user, sizeof(user), "u%d@x", i);
		fail_once(lo, "198.51.100.7", user, pass, T0 + 20, NULL);
	}
	assert_int_equal(probe(lo, "198.51.100.7", "alice@x", T0 + 21),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "198.51.100.8", "alice@x", T0 + 21),
			 LOCKOUT_OK);
	lockout_free(&lo);
}

static void
test_known_network_ipv6_is_the_64(void **state)
{
	struct lockout *lo = new_lockout();

	(void)state;
	succeed(lo, "2001:db8:1:2:aaaa::1", "carol@x", T0);
	lock_account(lo, "2001:db8:9::1", "carol@x", T0 + 1);
	assert_int_equal(probe(lo, "2001:db8:1:2:ffff::9", "carol@x", T0 + 2),
			 LOCKOUT_OK);
	/* Same /48, another /64: not the owner's. */
	assert_int_equal(probe(lo, "2001:db8:1:3::1", "carol@x", T0 + 2),
			 LOCKOUT_LOCKED);
	/* An IPv4-mapped address is IPv4. */
	succeed(lo, "::ffff:192.0.2.5", "dave@x", T0);
	assert_true(lockout_is_known(lo, "192.0.2.77", "dave@x", T0));
	lockout_free(&lo);
}

static void
test_known_network_expires_after_30_days(void **state)
{
	struct lockout *lo = new_lockout();
	time_t late = T0 + LOCKOUT_KNOWN_TTL;

	(void)state;
	succeed(lo, "198.51.100.7", "alice@x", T0);
	assert_true(lockout_is_known(lo, "198.51.100.7", "alice@x",
				     late - 1));
	assert_false(lockout_is_known(lo, "198.51.100.7", "alice@x", late));
	lock_account(lo, "203.0.113.9", "alice@x", late);
	assert_int_equal(probe(lo, "198.51.100.7", "alice@x", late + 1),
			 LOCKOUT_LOCKED);
	/* A success renews it; expiry forgets the stale ones. */
	succeed(lo, "198.51.101.7", "bob@x", T0);
	succeed(lo, "198.51.101.7", "bob@x", T0 + 20 * DAY);
	lockout_expire(lo, T0 + 35 * DAY);
	assert_true(lockout_is_known(lo, "198.51.101.7", "bob@x",
				     T0 + 35 * DAY));
	assert_false(lockout_is_known(lo, "198.51.100.7", "alice@x",
				      T0 + 35 * DAY));
	lockout_free(&lo);
}

static void
test_known_networks_bounded_oldest_dropped(void **state)
{
	struct lockout *lo = new_lockout();
	char addr[32];

	(void)state;
	for (int i = 0; i < LOCKOUT_KNOWN_NETS + 1; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.1", i);
		succeed(lo, addr, "erin@x", T0 + i * 4000);
	}
	/* 10.0.0.0/24, the oldest, went; the 16 newest are kept. */
	assert_false(lockout_is_known(lo, "10.0.0.1", "erin@x", T0 + DAY));
	for (int i = 1; i < LOCKOUT_KNOWN_NETS + 1; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.9", i);
		assert_true(lockout_is_known(lo, addr, "erin@x", T0 + DAY));
	}
	lockout_free(&lo);
}

/* --- IPv6 by /64, /48 and /32 ------------------------------------------ */

static void
test_ipv6_spraying_from_a_32(void **state)
{
	struct lockout *lo = new_lockout();
	struct lockout_event ev[LOCKOUT_MAX_EVENTS];
	char addr[64], user[32];
	size_t locks = 0;
	int i;

	(void)state;
	/* One failure from each of 99 /48s of 2001:db8::/32, each against
	   another account: no /64, /48 or account threshold is reached. */
	for (i = 0; i < 99; i++) {
		snprintf(addr, sizeof(addr), "2001:db8:%x::1", i);
		snprintf(user, sizeof(user), "user%d@x", i);
		locks += fail_once(lo, addr, user, "pw", T0 + i, ev);
	}
	assert_int_equal(locks, 0);
	/* The 100th locks the /32. */
	assert_int_equal(fail_once(lo, "2001:db8:ffff::1", "last@x", "pw",
				   T0 + 100, ev),
			 1);
	assert_int_equal(ev[0].kind, LOCKOUT_WIDE);
	assert_string_equal(ev[0].key, "2001:db8::/32");
	assert_int_equal(ev[0].failures, 100);
	/* Anyone in the /32 is refused AUTH, elsewhere not; the wide lock
	   does not turn anyone away at connect (AUTH only). */
	assert_int_equal(probe(lo, "2001:db8:1234:5678::9", "new@x", T0 + 101),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo, "2001:db9::1", "new@x", T0 + 101),
			 LOCKOUT_OK);
	assert_int_equal(
	    lockout_conn_open(lo, "2001:db8:1234:5678::9", T0 + 101, NULL),
	    LOCKOUT_OK);
	/* unlock of the /32, or of an address in it. */
	assert_int_equal(lockout_unlock(lo, "2001:db8::/32", T0 + 102), 1);
	assert_int_equal(probe(lo, "2001:db8:1234:5678::9", "new@x", T0 + 102),
			 LOCKOUT_OK);
	/* IPv4 has no wide key: 100 /24s of 10/8 lock nothing. */
	locks = 0;
	for (i = 0; i < 120; i++) {
		snprintf(addr, sizeof(addr), "10.%d.%d.1", i / 100, i % 100);
		snprintf(user, sizeof(user), "v4user%d@x", i);
		locks += fail_once(lo, addr, user, "pw", T0 + 200, ev);
	}
	assert_int_equal(locks, 0);
	lockout_free(&lo);
}

static void
test_ipv6_48_threshold(void **state)
{
	struct lockout *lo = new_lockout();
	struct lockout_event ev[LOCKOUT_MAX_EVENTS];
	char addr[64], user[32];
	size_t locks = 0;

	(void)state;
	/* 30 /64s of one /48: the /48 locks at 30. */
	for (int i = 0; i < 30; i++) {
		snprintf(addr, sizeof(addr), "2001:db8:7:%x::1", i);
		snprintf(user, sizeof(user), "u%d@x", i);
		locks += fail_once(lo, addr, user, "pw", T0, ev);
	}
	assert_int_equal(locks, 1);
	assert_int_equal(ev[0].kind, LOCKOUT_NETWORK);
	assert_string_equal(ev[0].key, "2001:db8:7::/48");
	lockout_free(&lo);
}

/* --- the login-networks alarm ----------------------------------------- */

static void
test_login_networks_alarm(void **state)
{
	struct lockout *lo = new_lockout();
	char addr[32];

	(void)state;
	/* Five networks in an hour: no alarm; the sixth: 6. */
	for (int i = 0; i < 5; i++) {
		snprintf(addr, sizeof(addr), "10.1.%d.1", i);
		assert_int_equal(succeed(lo, addr, "frank@x", T0 + i * 60), 0);
	}
	/* Another address of a network already counted does not add. */
	assert_int_equal(succeed(lo, "10.1.0.200", "frank@x", T0 + 400), 0);
	assert_int_equal(succeed(lo, "10.1.5.1", "frank@x", T0 + 500), 6);
	/* Once an hour per account. */
	assert_int_equal(succeed(lo, "10.1.6.1", "frank@x", T0 + 600), 0);
	/* An hour later the first ones have left the window. */
	assert_int_equal(succeed(lo, "10.1.7.1", "frank@x", T0 + 3700), 0);
	lockout_free(&lo);

	/* IPv6 counts by /48: two /64s of one /48 are one network. */
	lo = new_lockout();
	for (int i = 0; i < 6; i++) {
		snprintf(addr, sizeof(addr), "2001:db8:%x:1::1", i);
		assert_int_equal(succeed(lo, addr, "gina@x", T0), i == 5 ? 6 : 0);
	}
	assert_int_equal(succeed(lo, "2001:db8:99:1::1", "hank@x", T0), 0);
	assert_int_equal(succeed(lo, "2001:db8:99:2::1", "hank@x", T0), 0);
	lockout_free(&lo);
}

static void
test_login_networks_alarm_off(void **state)
{
	struct lockout_config lc;
	struct lockout *lo;
	char addr[32];

	(void)state;
	config(&lc);
	lc.login_networks = 0;
	lo = lockout_new(&lc, secret);
	for (int i = 0; i < 40; i++) {
		snprintf(addr, sizeof(addr), "10.2.%d.1", i);
		assert_int_equal(succeed(lo, addr, "ivan@x", T0), 0);
	}
	lockout_free(&lo);
}

/* --- export and import ----------------------------------------------------- */

#define REC_N 64

struct saved {
	enum lockout_table table[REC_N];
	unsigned char key[REC_N][400];
	size_t klen[REC_N];
	unsigned char rec[REC_N][4200];
	size_t rlen[REC_N];
	bool is_del[REC_N];
	size_t n;
};

static int
save_cb(enum lockout_table table, const void *key, size_t klen,
	const void *rec, size_t rlen, void *arg)
{
	struct saved *s = arg;
	size_t i;

	/* Keep the last write of a key, as the store does. */
	for (i = 0; i < s->n; i++)
		if (s->table[i] == table && s->klen[i] == klen &&
		    memcmp(s->key[i], key, klen) == 0)
			break;
	assert_true(i < REC_N && klen <= 400 && rlen <= 4200);
	if (i == s->n)
		s->n++;
	s->table[i] = table;
	memcpy(s->key[i], key, klen);
	s->klen[i] = klen;
	s->is_del[i] = rec == NULL;
	if (rec != NULL)
		memcpy(s->rec[i], rec, rlen);
	s->rlen[i] = rlen;
	return 0;
}

static size_t
import_all(struct lockout *lo, const struct saved *s, time_t now,
	   time_t wall)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (s->is_del[i])
			continue;
		assert_int_equal(lockout_import(lo, s->table[i], s->key[i],
						s->klen[i], s->rec[i],
						s->rlen[i], now, wall),
				 0);
		n++;
	}
	return n;
}

static void
test_export_import_round_trip(void **state)
{
	static struct saved s;
	struct lockout *lo = new_lockout(), *lo2;
	/* The new process's clock: another origin (monotonic). */
	time_t now2 = 50, wall2 = WALL0 + 120;

	(void)state;
	memset(&s, 0, sizeof(s));
	succeed(lo, "198.51.100.7", "alice@x", T0);
	lock_account(lo, "203.0.113.9", "alice@x", T0 + 10);
	fail_once(lo, "192.0.2.1", "bob@x", "b1", T0 + 20, NULL);
	fail_once(lo, "192.0.2.1", "bob@x", "b2", T0 + 21, NULL);
	fail_once(lo, "192.0.2.1", "bob@x", "b3", T0 + 22, NULL);
	assert_true(lockout_export(lo, T0 + 60, WALL0 + 60, save_cb, &s) > 0);
	/* Nothing more until something changes. */
	{
		static struct saved again;

		memset(&again, 0, sizeof(again));
		assert_int_equal(
		    lockout_export(lo, T0 + 61, WALL0 + 61, save_cb, &again),
		    0);
	}
	/* A new process (another secret, another clock), two minutes of
	   wall time later: 60 s after the export. */
	lo2 = new_lockout_with(secret2);
	assert_true(import_all(lo2, &s, now2, wall2) >= 4);
	/* alice: locked until wall WALL0 + 310, so now2 + 190 ... */
	assert_int_equal(probe(lo2, "203.0.113.50", "alice@x", now2 + 189),
			 LOCKOUT_LOCKED);
	assert_int_equal(probe(lo2, "203.0.113.50", "alice@x", now2 + 190),
			 LOCKOUT_OK);
	/* ... but not from her known network. */
	assert_int_equal(probe(lo2, "198.51.100.1", "alice@x", now2 + 1),
			 LOCKOUT_OK);
	/* bob's three failures are kept: two more lock him. */
	assert_int_equal(fail_once(lo2, "192.0.2.200", "bob@x", "b4",
				   now2 + 2, NULL),
			 0);
	assert_int_equal(fail_once(lo2, "192.0.2.200", "bob@x", "b5",
				   now2 + 2, NULL),
			 1);
	/* A relapse after the restart doubles: level was kept. */
	lockout_free(&lo2);
	lockout_free(&lo);
}

static void
test_export_deletes_what_is_gone(void **state)
{
	static struct saved s;
	struct lockout *lo = new_lockout();
	size_t dels = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	fail_once(lo, "192.0.2.1", "bob@x", "b1", T0, NULL);
	lockout_export(lo, T0, WALL0, save_cb, &s);
	assert_int_equal(lockout_unlock(lo, "bob@x", T0 + 1), 1);
	memset(&s, 0, sizeof(s));
	lockout_export(lo, T0 + 1, WALL0 + 1, save_cb, &s);
	for (size_t i = 0; i < s.n; i++)
		dels += s.is_del[i];
	assert_int_equal(dels, 1); /* bob's record: nothing left in it */
	/* Expiry removes the rest: their records go too. */
	lockout_expire(lo, T0 + 2 * DAY);
	memset(&s, 0, sizeof(s));
	lockout_export(lo, T0 + 2 * DAY, WALL0 + 2 * DAY, save_cb, &s);
	assert_true(s.n >= 2);
	for (size_t i = 0; i < s.n; i++)
		assert_true(s.is_del[i]);
	lockout_free(&lo);
}

static void
test_import_refuses_bad_records(void **state)
{
	static struct saved s;
	struct lockout *lo = new_lockout(), *lo2 = new_lockout();
	unsigned char rec[4200], key[400];

	(void)state;
	memset(&s, 0, sizeof(s));
	fail_once(lo, "192.0.2.1", "bob@x", "b1", T0, NULL);
	succeed(lo, "192.0.2.1", "carl@x", T0);
	lockout_export(lo, T0, WALL0, save_cb, &s);
	for (size_t i = 0; i < s.n; i++) {
		memcpy(rec, s.rec[i], s.rlen[i]);
		memcpy(key, s.key[i], s.klen[i]);
		/* wrong version */
		rec[0] = 9;
		assert_int_equal(lockout_import(lo2, s.table[i], key,
						s.klen[i], rec, s.rlen[i], 0,
						WALL0),
				 -1);
		rec[0] = s.rec[i][0];
		/* cut short, or one octet too long */
		assert_int_equal(lockout_import(lo2, s.table[i], key,
						s.klen[i], rec, s.rlen[i] - 1,
						0, WALL0),
				 -1);
		assert_int_equal(lockout_import(lo2, s.table[i], key,
						s.klen[i], rec, s.rlen[i] + 1,
						0, WALL0),
				 -1);
		/* an empty key */
		assert_int_equal(lockout_import(lo2, s.table[i], key, 0, rec,
						s.rlen[i], 0, WALL0),
				 -1);
	}
	/* An address key not masked to its prefix, a kind out of range. */
	{
		unsigned char k[6] = {LOCKOUT_NETWORK, 4, 192, 0, 2, 1};

		for (size_t i = 0; i < s.n; i++)
			if (s.table[i] == LOCKOUT_TABLE_KEYS)
				assert_int_equal(
				    lockout_import(lo2, LOCKOUT_TABLE_KEYS, k,
						   sizeof(k), s.rec[i],
						   s.rlen[i], 0, WALL0),
				    -1);
		k[0] = 7;
		k[5] = 0;
		assert_int_equal(lockout_import(lo2, LOCKOUT_TABLE_KEYS, k,
						sizeof(k), s.rec[0], s.rlen[0],
						0, WALL0),
				 -1);
	}
	assert_int_equal(lockout_count(lo2), 0);
	lockout_free(&lo2);
	lockout_free(&lo);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_network_spares_the_owner),
	    cmocka_unit_test(test_known_network_ipv6_is_the_64),
	    cmocka_unit_test(test_known_network_expires_after_30_days),
	    cmocka_unit_test(test_known_networks_bounded_oldest_dropped),
	    cmocka_unit_test(test_ipv6_spraying_from_a_32),
	    cmocka_unit_test(test_ipv6_48_threshold),
	    cmocka_unit_test(test_login_networks_alarm),
	    cmocka_unit_test(test_login_networks_alarm_off),
	    cmocka_unit_test(test_export_import_round_trip),
	    cmocka_unit_test(test_export_deletes_what_is_gone),
	    cmocka_unit_test(test_import_refuses_bad_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
