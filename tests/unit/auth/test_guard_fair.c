/*
 * test_guard_fair.c - the order of the guard's hashing queue
 * (src/auth/guard_fair.c, issue 12 item 4): one queue per client network
 * (IPv4 /24, IPv6 /48), served in turn; FIFO inside a network; a bound
 * on each network's queue and on the total.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/guard_fair.h"
#include "auth/guard_int.h"

#define N_JOBS 300

static struct guard_job jobs[N_JOBS];
static size_t n_used;

static struct guard_job *
job(const char *addr)
{
	struct guard_job *j;

	assert_true(n_used < N_JOBS);
	j = &jobs[n_used];
	memset(j, 0, sizeof(*j));
	j->id = (uint32_t)++n_used;
	snprintf(j->addr, sizeof(j->addr), "%s", addr);
	return j;
}

static int
setup(void **state)
{
	(void)state;
	n_used = 0;
	return 0;
}

/* The case: one network has 100 queued, another network's one
   login comes next but one (the job of the first network already at the
   front of the ring), not 101st. */
static void
test_quiet_network_served_soon(void **state)
{
	struct guard_fair *f = guard_fair_new(4096, 200);
	struct guard_job *legit, *j;
	char addr[64];
	size_t pick = 0, legit_pick = 0;

	(void)state;
	assert_non_null(f);
	for (int i = 0; i < 100; i++) {
		snprintf(addr, sizeof(addr), "192.0.2.%d", i + 1);
		assert_int_equal(guard_fair_push(f, job(addr)), GUARD_FAIR_OK);
	}
	legit = job("198.51.100.7");
	assert_int_equal(guard_fair_push(f, legit), GUARD_FAIR_OK);
	assert_int_equal(guard_fair_count(f), 101);
	assert_int_equal(guard_fair_networks(f), 2);
	while ((j = guard_fair_pop(f)) != NULL) {
		pick++;
		if (j == legit)
			legit_pick = pick;
	}
	assert_int_equal(pick, 101);
	assert_true(legit_pick >= 1 && legit_pick <= 2);
	assert_int_equal(guard_fair_count(f), 0);
	assert_int_equal(guard_fair_networks(f), 0);
	guard_fair_free(&f);
	assert_null(f);
}

/* Three networks take turns; each one's jobs come out in their order. */
static void
test_round_robin_and_fifo(void **state)
{
	static const char *const want[] = {
	    "10.0.0.1", "10.0.1.1", "2001:db8:1::1", "10.0.0.2",
	    "10.0.1.2", "2001:db8:1:ffff::2", "10.0.0.3", "10.0.0.4"};
	struct guard_fair *f = guard_fair_new(4096, 200);
	static const char *const in[] = {
	    "10.0.0.1",	     "10.0.0.2", "10.0.0.3", "10.0.0.4",
	    "10.0.1.1",	     "10.0.1.2", "2001:db8:1::1",
	    "2001:db8:1:ffff::2"};

	(void)state;
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(guard_fair_push(f, job(in[i])), GUARD_FAIR_OK);
	assert_int_equal(guard_fair_networks(f), 3);
	for (size_t i = 0; i < 8; i++) {
		struct guard_job *j = guard_fair_pop(f);

		assert_non_null(j);
		assert_string_equal(j->addr, want[i]);
	}
	assert_null(guard_fair_pop(f));
	guard_fair_free(&f);
}

/* A network that empties leaves the ring and comes back at its end. */
static void
test_network_rejoins_at_end(void **state)
{
	struct guard_fair *f = guard_fair_new(4096, 200);

	(void)state;
	assert_int_equal(guard_fair_push(f, job("10.0.0.1")), GUARD_FAIR_OK);
	assert_int_equal(guard_fair_push(f, job("10.0.0.2")), GUARD_FAIR_OK);
	assert_int_equal(guard_fair_push(f, job("10.9.0.1")), GUARD_FAIR_OK);
	assert_string_equal(guard_fair_pop(f)->addr, "10.0.0.1");
	assert_string_equal(guard_fair_pop(f)->addr, "10.9.0.1");
	assert_int_equal(guard_fair_networks(f), 1);
	assert_int_equal(guard_fair_push(f, job("10.9.0.2")), GUARD_FAIR_OK);
	assert_string_equal(guard_fair_pop(f)->addr, "10.0.0.2");
	assert_string_equal(guard_fair_pop(f)->addr, "10.9.0.2");
	assert_null(guard_fair_pop(f));
	guard_fair_free(&f);
}

/* A full network is refused alone; the total bound refuses everyone. */
static void
test_bounds(void **state)
{
	struct guard_fair *f = guard_fair_new(6, 3);

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(guard_fair_push(f, job("192.0.2.9")),
				 GUARD_FAIR_OK);
	assert_int_equal(guard_fair_push(f, job("192.0.2.200")),
			 GUARD_FAIR_NET_FULL);
	assert_int_equal(guard_fair_push(f, job("192.0.3.1")), GUARD_FAIR_OK);
	assert_int_equal(guard_fair_push(f, job("::1")), GUARD_FAIR_OK);
	assert_int_equal(guard_fair_push(f, job("not an address")),
			 GUARD_FAIR_OK);
	assert_int_equal(guard_fair_count(f), 6);
	assert_int_equal(guard_fair_push(f, job("203.0.113.1")),
			 GUARD_FAIR_FULL);
	/* One job of the full network out: room for one more there. */
	assert_string_equal(guard_fair_pop(f)->addr, "192.0.2.9");
	assert_int_equal(guard_fair_push(f, job("192.0.2.10")), GUARD_FAIR_OK);
	guard_fair_set_net_max(f, 1);
	assert_int_equal(guard_fair_count(f), 6);
	guard_fair_free(&f);
}

static void
test_net_text(void **state)
{
	char buf[64];

	(void)state;
	guard_fair_net_text("192.0.2.77", buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.0/24");
	guard_fair_net_text("::ffff:192.0.2.77", buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.0/24");
	guard_fair_net_text("2001:db8:1:2:3::4", buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:1::/48");
	guard_fair_net_text("unix:", buf, sizeof(buf));
	assert_string_equal(buf, "other");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_quiet_network_served_soon, setup),
	    cmocka_unit_test_setup(test_round_robin_and_fifo, setup),
	    cmocka_unit_test_setup(test_network_rejoins_at_end, setup),
	    cmocka_unit_test_setup(test_bounds, setup),
	    cmocka_unit_test(test_net_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
