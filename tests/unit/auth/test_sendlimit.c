/*
 * test_sendlimit.c - send limits, baseline and volume alarm
 * (src/auth/sendlimit.c, issue 10 items 1-2): each limit and the
 * per-user values, the EWMA baseline over simulated days, the burst
 * threshold at exactly the floor and the factor, first-time recipients,
 * undo, release, export and import.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/sendlimit.h"

#define T0 1764806400 /* 2025-12-04 00:00:00 UTC, a day and hour start */
#define HOUR 3600
#define DAY 86400

static const unsigned char key[SENDLIMIT_KEY_LEN] = {1, 2, 3};

static struct sendlimit_config
cfg_of(uint32_t hour, uint32_t day, uint32_t new_day, uint32_t floor,
       uint32_t factor, enum sendlimit_action action)
{
	struct sendlimit_config c = {{hour, day, new_day}, floor, factor,
				     action};

	return c;
}

/* Send to `n` recipients r<first>..; returns the last verdict. */
static enum sendlimit_result
send_n(struct sendlimit *sl, const char *acct,
       const struct sendlimit_limits *lim, unsigned first, unsigned n,
       time_t now, struct sendlimit_verdict *v)
{
	char rcpt[64];
	int r = SENDLIMIT_OK;

	for (unsigned i = 0; i < n; i++) {
		snprintf(rcpt, sizeof(rcpt), "r%u@example.net", first + i);
		r = sendlimit_rcpt(sl, acct, lim, rcpt, now, v);
		assert_true(r >= 0);
		if (r != SENDLIMIT_OK && r != SENDLIMIT_OK_HOLD)
			break;
	}
	return (enum sendlimit_result)r;
}

static void
test_hour_limit(void **state)
{
	struct sendlimit_config c = cfg_of(5, 0, 0, 1000, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;

	(void)state;
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 5, T0, &v), SENDLIMIT_OK);
	assert_int_equal(v.count, 5);
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 1, T0 + 60, &v),
			 SENDLIMIT_OVER_HOUR);
	/* Another account is not touched; names ignore case. */
	assert_int_equal(send_n(sl, "b@x", NULL, 0, 1, T0 + 60, &v),
			 SENDLIMIT_OK);
	assert_int_equal(send_n(sl, "A@X", NULL, 9, 1, T0 + 60, &v),
			 SENDLIMIT_OVER_HOUR);
	/* The hour slides: 60 minutes later (one 5-minute bucket more)
	   the first five are out. */
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 1, T0 + HOUR - 1, &v),
			 SENDLIMIT_OVER_HOUR);
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 1, T0 + HOUR, &v),
			 SENDLIMIT_OK);
	sendlimit_free(&sl);
	assert_null(sl);
}

/* The wall clock goes back ten days (or a stored record is from the
   future): the hour still slides from the new now, the limit does not
   stick until the clock catches up. */
static void
test_clock_back(void **state)
{
	struct sendlimit_config c = cfg_of(5, 0, 0, 1000, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key), *sl2;
	struct sendlimit_verdict v;
	unsigned char rec[SENDLIMIT_REC_LEN];

	(void)state;
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 5, T0 + 10 * DAY, &v),
			 SENDLIMIT_OK);
	assert_int_equal(sendlimit_export(sl, "a@x", rec), 0);
	/* In the same process, and after a restart from the record. */
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 1, T0, &v),
			 SENDLIMIT_OVER_HOUR);
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 1, T0 + HOUR + 1, &v),
			 SENDLIMIT_OK);
	sl2 = sendlimit_new(&c, key);
	assert_int_equal(sendlimit_import(sl2, "a@x", rec, sizeof(rec)), 0);
	assert_int_equal(send_n(sl2, "a@x", NULL, 0, 1, T0, &v),
			 SENDLIMIT_OVER_HOUR);
	assert_int_equal(send_n(sl2, "a@x", NULL, 0, 1, T0 + HOUR + 1, &v),
			 SENDLIMIT_OK);
	sendlimit_free(&sl);
	sendlimit_free(&sl2);
}

static void
test_day_limit(void **state)
{
	struct sendlimit_config c = cfg_of(0, 10, 0, 1000, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;
	struct sendlimit_status st;

	(void)state;
	for (int h = 0; h < 10; h++)
		assert_int_equal(send_n(sl, "a@x", NULL, 0, 1, T0 + h * HOUR,
					&v),
				 SENDLIMIT_OK);
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 1, T0 + 10 * HOUR, &v),
			 SENDLIMIT_OVER_DAY);
	assert_int_equal(sendlimit_status(sl, "a@x", T0 + 10 * HOUR, &st), 0);
	assert_int_equal(st.count_day, 10);
	assert_int_equal(st.count_hour, 0);
	/* 24 hours after the first, it is out of the window. */
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 1, T0 + DAY, &v),
			 SENDLIMIT_OK);
	assert_int_equal(sendlimit_status(sl, "nobody@x", T0, &st), -1);
	sendlimit_free(&sl);
}

static void
test_new_recipients(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 3, 1000, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;
	struct sendlimit_status st;

	(void)state;
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 3, T0, &v), SENDLIMIT_OK);
	assert_true(v.seen_changed);
	assert_int_equal(v.seen_day, T0 / DAY);
	/* A fourth new one is refused; the known ones (any case) are not. */
	assert_int_equal(send_n(sl, "a@x", NULL, 3, 1, T0, &v),
			 SENDLIMIT_OVER_NEW);
	assert_int_equal(sendlimit_rcpt(sl, "a@x", NULL, "R1@Example.NET",
					T0 + 1, &v),
			 SENDLIMIT_OK);
	assert_false(v.seen_changed); /* same day: nothing to store */
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 3, T0 + 2, &v),
			 SENDLIMIT_OK);
	/* The same recipient is new for another account. */
	assert_int_equal(send_n(sl, "b@x", NULL, 0, 3, T0, &v), SENDLIMIT_OK);
	sendlimit_status(sl, "a@x", T0 + 2, &st);
	assert_int_equal(st.new_today, 3);
	/* The next UTC day has a fresh allowance; known stay known. */
	assert_int_equal(send_n(sl, "a@x", NULL, 3, 3, T0 + DAY, &v),
			 SENDLIMIT_OK);
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 6, T0 + DAY, &v),
			 SENDLIMIT_OK);
	assert_int_equal(send_n(sl, "a@x", NULL, 6, 1, T0 + DAY, &v),
			 SENDLIMIT_OVER_NEW);
	/* Not sent to for a year: new again, and expired from memory. */
	assert_int_equal(sendlimit_seen_expire(sl, T0 + 366 * DAY, NULL, NULL),
			 9);
	sendlimit_free(&sl);
}

static void
test_per_user_limits(void **state)
{
	struct sendlimit_config c = cfg_of(2, 2, 2, 1000, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_limits big = {50, 50, 50}, none = {0, 0, 0};
	struct sendlimit_verdict v;

	(void)state;
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 3, T0, &v),
			 SENDLIMIT_OVER_HOUR);
	assert_int_equal(send_n(sl, "b@x", &big, 0, 40, T0, &v),
			 SENDLIMIT_OK);
	assert_int_equal(send_n(sl, "c@x", &none, 0, 500, T0, &v),
			 SENDLIMIT_OK);
	sendlimit_free(&sl);
}

/* The burst check at exactly the floor: 50 is not over 50, 51 is. */
static void
test_burst_floor_exact(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;
	struct sendlimit_alarm al[4];

	(void)state;
	assert_int_equal(send_n(sl, "new@x", NULL, 0, 50, T0, &v),
			 SENDLIMIT_OK);
	assert_false(v.alarm_raised);
	assert_int_equal(sendlimit_rcpt(sl, "new@x", NULL, "z@y", T0, &v),
			 SENDLIMIT_OK_HOLD);
	assert_true(v.alarm_raised);
	assert_int_equal(v.count, 51);
	assert_int_equal(sendlimit_alarms_raised(sl), 1);
	/* Held from then on, no second alarm. */
	assert_int_equal(sendlimit_rcpt(sl, "new@x", NULL, "z2@y", T0 + 9, &v),
			 SENDLIMIT_OK_HOLD);
	assert_false(v.alarm_raised);
	assert_int_equal(sendlimit_alarms(sl, T0 + 10, al, 4), 1);
	assert_string_equal(al[0].account, "new@x");
	assert_int_equal(al[0].count, 51);
	assert_true(al[0].in_effect);
	/* Released: mail flows; quiet for an hour; listed for a day. */
	assert_int_equal(sendlimit_release(sl, "new@x", T0 + 20), 0);
	assert_int_equal(sendlimit_release(sl, "new@x", T0 + 20), -1);
	assert_int_equal(send_n(sl, "new@x", NULL, 100, 30, T0 + 30, &v),
			 SENDLIMIT_OK);
	assert_int_equal(sendlimit_alarms(sl, T0 + DAY - 1, al, 4), 1);
	assert_false(al[0].in_effect);
	assert_int_equal(sendlimit_alarms(sl, T0 + DAY + 20, al, 4), 0);
	sendlimit_free(&sl);
}

/* Feed `per_hour` recipients in each of `hours` clock hours. */
static void
feed_hours(struct sendlimit *sl, const char *acct, unsigned per_hour,
	   unsigned hours, time_t start)
{
	struct sendlimit_verdict v;

	for (unsigned h = 0; h < hours; h++)
		send_n(sl, acct, NULL, 0, per_hour, start + (time_t)h * HOUR,
		       &v);
}

/* The baseline: the mean of the active hours. 10 an hour for 14 days is
   10.00; idle hours (a quiet month) leave it alone; the factor check at
   exactly 10 times it. */
static void
test_baseline_active_hours(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_LOG);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_status st;
	struct sendlimit_verdict v;

	(void)state;
	feed_hours(sl, "busy@x", 10, 14 * 24, T0);
	assert_int_equal(sendlimit_status(sl, "busy@x", T0 + 14 * DAY, &st),
			 0);
	assert_int_equal(st.baseline_micro, 10000000);
	/* Half the hours at 20: the mean of 336 hours then weight 1/336. */
	feed_hours(sl, "busy@x", 20, 1, T0 + 14 * DAY);
	sendlimit_status(sl, "busy@x", T0 + 60 * DAY, &st);
	assert_true(st.baseline_micro > 10020000 &&
		    st.baseline_micro < 10040000);
	/* A month idle changes nothing. */
	sendlimit_status(sl, "busy@x", T0 + 90 * DAY, &st);
	assert_true(st.baseline_micro > 10020000 &&
		    st.baseline_micro < 10040000);
	/* The factor, exactly: count * 1e6 > 10 * baseline (100.29). */
	assert_int_equal(send_n(sl, "busy@x", NULL, 0, 100, T0 + 90 * DAY,
				&v),
			 SENDLIMIT_OK);
	assert_false(v.alarm_raised);
	sendlimit_rcpt(sl, "busy@x", NULL, "one-more@y", T0 + 90 * DAY, &v);
	assert_true(v.alarm_raised);
	sendlimit_free(&sl);
}

/* Days of `batch` recipients in one minute at 09:00 from `start`; the
   postmaster releases each alarm at 10:00. Returns the alarms raised. */
static uint64_t
daily_batches(struct sendlimit *sl, const char *acct, unsigned batch,
	      unsigned days, time_t start)
{
	struct sendlimit_verdict v;
	uint64_t before = sendlimit_alarms_raised(sl);

	for (unsigned d = 0; d < days; d++) {
		time_t t = start + (time_t)d * DAY + 9 * HOUR;

		send_n(sl, acct, NULL, d * batch, batch, t, &v);
		(void)sendlimit_release(sl, acct, t + HOUR);
	}
	return sendlimit_alarms_raised(sl) - before;
}

/* Issue 10 review: a daily batch of 60 in one hour is learned. A brand
   new account alarms once, the first day (held until released); one
   with a quiet history (2 an hour in working hours for 30 days) once
   too; an old all-hours EWMA alarmed all 120 days. */
static void
test_daily_batch_learned(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_status st;

	(void)state;
	assert_int_equal(daily_batches(sl, "news@x", 60, 120, T0), 1);
	for (unsigned d = 0; d < 30; d++)
		feed_hours(sl, "quiet@x", 2, 8, T0 + (time_t)d * DAY + 9 * HOUR);
	assert_int_equal(daily_batches(sl, "quiet@x", 60, 120, T0 + 30 * DAY),
			 1);
	sendlimit_status(sl, "quiet@x", T0 + 150 * DAY, &st);
	assert_false(st.alarmed);
	/* Under `refuse` the 51st is refused and raises the alarm; the
	   release teaches the peak that 51. */
	c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_REFUSE);
	sendlimit_set_config(sl, &c);
	assert_int_equal(daily_batches(sl, "refuse@x", 60, 120, T0), 1);
	/* Under `log` the alarm ends by itself and the peak learns too. */
	c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_LOG);
	sendlimit_set_config(sl, &c);
	assert_int_equal(daily_batches(sl, "log@x", 60, 120, T0), 1);
	sendlimit_free(&sl);
}

/* A hijacked account: 5 an hour in 8 working hours for 120 days, then
   300 in an hour: the alarm at the 51st. After a daily batch of 60 (an
   average of 60 an active hour), a hijacker's 1000 alarm at the 601st;
   the spam hour, discarded, teaches nothing. */
static void
test_hijack_alarms(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;
	struct sendlimit_status st;
	time_t t = T0 + 120 * DAY + 9 * HOUR;

	(void)state;
	for (unsigned d = 0; d < 120; d++)
		feed_hours(sl, "work@x", 5, 8, T0 + (time_t)d * DAY + 9 * HOUR);
	assert_int_equal(sendlimit_alarms_raised(sl), 0);
	assert_int_equal(send_n(sl, "work@x", NULL, 1000, 300, t, &v),
			 SENDLIMIT_OK_HOLD);
	sendlimit_status(sl, "work@x", t, &st);
	assert_true(st.alarmed);
	assert_int_equal(st.alarm_count, 51);
	assert_int_equal(st.alarm_baseline_micro, 5000000);

	assert_int_equal(daily_batches(sl, "news@x", 60, 120, T0), 1);
	assert_int_equal(send_n(sl, "news@x", NULL, 9000, 1000, t, &v),
			 SENDLIMIT_OK_HOLD);
	sendlimit_status(sl, "news@x", t, &st);
	assert_true(st.alarmed);
	assert_int_equal(st.alarm_count, 601);
	assert_int_equal(st.alarm_baseline_micro, 60000000);
	assert_int_equal(sendlimit_alarms_raised(sl), 3);
	/* The postmaster deletes the spam (sendlimit_discard) and releases
	   the account: the spam hour taught nothing, the next day's 700
	   alarm again. */
	assert_int_equal(sendlimit_discard(sl, "news@x", t + 60), 0);
	assert_int_equal(sendlimit_release(sl, "news@x", t + 120), 0);
	assert_int_equal(sendlimit_discard(sl, "news@x", t + 180), -1);
	assert_int_equal(send_n(sl, "news@x", NULL, 20000, 700, t + DAY, &v),
			 SENDLIMIT_OK_HOLD);
	assert_int_equal(sendlimit_alarms_raised(sl), 4);
	/* Released without a discard: the alarm's largest hour (700) was
	   legitimate; the next day's 700 pass. */
	assert_int_equal(sendlimit_release(sl, "news@x", t + DAY + 120), 0);
	assert_int_equal(send_n(sl, "news@x", NULL, 30000, 700, t + 2 * DAY,
				&v),
			 SENDLIMIT_OK);
	assert_int_equal(sendlimit_alarms_raised(sl), 4);
	sendlimit_free(&sl);
}

/* A brand-new account (no history) sending 60 at once: the alarm at the
   51st (the issue's own case). */
static void
test_new_account_alarms(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;
	struct sendlimit_status st;

	(void)state;
	assert_int_equal(send_n(sl, "fresh@x", NULL, 0, 60, T0 + 30, &v),
			 SENDLIMIT_OK_HOLD);
	sendlimit_status(sl, "fresh@x", T0 + 60, &st);
	assert_true(st.alarmed);
	assert_int_equal(st.alarm_count, 51);
	assert_int_equal(st.alarm_baseline_micro, 0);
	sendlimit_free(&sl);
}

/* A quiet baseline and a floor that dominates: 60 in a minute alarms;
   a busy account's 60 do not. */
static void
test_burst_vs_baseline(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_REFUSE);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;

	(void)state;
	feed_hours(sl, "quiet@x", 1, 14 * 24, T0);
	feed_hours(sl, "busy@x", 40, 60 * 24, T0 - 46 * DAY);
	assert_int_equal(send_n(sl, "busy@x", NULL, 0, 60, T0 + 14 * DAY, &v),
			 SENDLIMIT_OK);
	assert_int_equal(send_n(sl, "quiet@x", NULL, 0, 60, T0 + 14 * DAY,
				&v),
			 SENDLIMIT_ALARMED);
	assert_true(v.alarm_raised);
	/* refuse: the refused ones are not counted. */
	assert_int_equal(v.count, 50);
	sendlimit_free(&sl);
}

/* log: only says so; the alarm ends when the hour calms down, and the
   peak learns its largest hour. */
static void
test_log_action(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 5, 10, SENDLIMIT_LOG);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;
	struct sendlimit_status st;

	(void)state;
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 10, T0, &v), SENDLIMIT_OK);
	assert_int_equal(sendlimit_alarms_raised(sl), 1);
	sendlimit_status(sl, "a@x", T0 + 1, &st);
	assert_true(st.alarmed);
	sendlimit_status(sl, "a@x", T0 + HOUR + 1, &st);
	assert_false(st.alarmed);
	/* It ended by itself: the peak learned its 10; 20 are not over
	   twice that, 21 are. */
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 20, T0 + HOUR + 2, &v),
			 SENDLIMIT_OK);
	assert_int_equal(sendlimit_alarms_raised(sl), 1);
	assert_int_equal(send_n(sl, "a@x", NULL, 20, 1, T0 + HOUR + 2, &v),
			 SENDLIMIT_OK);
	assert_int_equal(sendlimit_alarms_raised(sl), 2);
	sendlimit_free(&sl);
}

static void
test_undo(void **state)
{
	struct sendlimit_config c = cfg_of(5, 0, 5, 1000, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_verdict v;
	struct sendlimit_status st;

	(void)state;
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 5, T0, &v), SENDLIMIT_OK);
	sendlimit_undo(sl, "a@x", 3, T0 + 1);
	sendlimit_status(sl, "a@x", T0 + 1, &st);
	assert_int_equal(st.count_hour, 2);
	assert_int_equal(st.count_day, 2);
	/* First-time recipients stay counted: 5 of 5 used. */
	assert_int_equal(st.new_today, 5);
	assert_int_equal(send_n(sl, "a@x", NULL, 5, 1, T0 + 2, &v),
			 SENDLIMIT_OVER_NEW);
	assert_int_equal(send_n(sl, "a@x", NULL, 0, 3, T0 + 2, &v),
			 SENDLIMIT_OK);
	sendlimit_undo(sl, "a@x", 100, T0 + 3); /* never below 0 */
	sendlimit_status(sl, "a@x", T0 + 3, &st);
	assert_int_equal(st.count_hour, 0);
	sendlimit_undo(sl, "unknown@x", 1, T0 + 3);
	sendlimit_free(&sl);
}

struct collect {
	char names[8][64];
	size_t n;
};

static void
collect_cb(const char *account, void *arg)
{
	struct collect *c = arg;

	snprintf(c->names[c->n++], sizeof(c->names[0]), "%s", account);
}

static void
test_export_import(void **state)
{
	struct sendlimit_config c = cfg_of(100, 0, 0, 50, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key), *sl2;
	unsigned char rec[SENDLIMIT_REC_LEN], rec2[SENDLIMIT_REC_LEN];
	struct sendlimit_verdict v;
	struct sendlimit_status a, b;
	struct collect col = {0};

	(void)state;
	feed_hours(sl, "a@x", 3, 48, T0);
	send_n(sl, "a@x", NULL, 0, 60, T0 + 2 * DAY, &v); /* alarm */
	assert_int_equal(sendlimit_export(sl, "a@x", rec), 0);
	assert_int_equal(rec[0], SENDLIMIT_REC_VERSION);
	assert_int_equal(sendlimit_export(sl, "b@x", rec2), -1);
	sendlimit_each(sl, collect_cb, &col);
	assert_int_equal(col.n, 1);
	assert_string_equal(col.names[0], "a@x");

	sl2 = sendlimit_new(&c, key);
	assert_int_equal(sendlimit_import(sl2, "a@x", rec, sizeof(rec)), 0);
	assert_int_equal(sendlimit_seen_import(sl2, v.seen_key, v.seen_day), 0);
	assert_int_equal(sendlimit_export(sl2, "a@x", rec2), 0);
	assert_memory_equal(rec, rec2, sizeof(rec));
	sendlimit_status(sl, "a@x", T0 + 2 * DAY + 60, &a);
	sendlimit_status(sl2, "a@x", T0 + 2 * DAY + 60, &b);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_true(b.alarmed);
	/* The last recipient is known to the new instance. */
	assert_int_equal(sendlimit_rcpt(sl2, "a@x", NULL, "r59@example.net",
					T0 + 2 * DAY + 61, &v),
			 SENDLIMIT_OK_HOLD);
	assert_false(v.seen_changed);
	/* Bad records: length, version, alarm octet, a time out of range. */
	assert_int_equal(sendlimit_import(sl2, "c@x", rec, sizeof(rec) - 1),
			 -1);
	rec[0] = 3;
	assert_int_equal(sendlimit_import(sl2, "c@x", rec, sizeof(rec)), -1);
	rec[0] = 1; /* version 1 is 210 octets */
	assert_int_equal(sendlimit_import(sl2, "c@x", rec, sizeof(rec)), -1);
	rec[0] = SENDLIMIT_REC_VERSION;
	rec[1] = 7;
	assert_int_equal(sendlimit_import(sl2, "c@x", rec, sizeof(rec)), -1);
	rec[1] = 0;
	memset(rec + 2, 0xff, 8);
	assert_int_equal(sendlimit_import(sl2, "c@x", rec, sizeof(rec)), -1);
	assert_int_equal(sendlimit_status(sl2, "c@x", T0, &a), -1);
	sendlimit_free(&sl);
	sendlimit_free(&sl2);
}

/* A version 1 record (210 octets, before the active-hour count) is
   still read: its baseline counts as one active hour, no peak. */
static void
test_import_v1(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 50, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key), *sl2;
	unsigned char rec[SENDLIMIT_REC_LEN];
	struct sendlimit_status st;
	struct sendlimit_verdict v;

	(void)state;
	feed_hours(sl, "a@x", 4, 3, T0);
	sendlimit_status(sl, "a@x", T0 + 3 * HOUR, &st); /* fold the third */
	assert_int_equal(sendlimit_export(sl, "a@x", rec), 0);
	rec[0] = 1;
	sl2 = sendlimit_new(&c, key);
	assert_int_equal(sendlimit_import(sl2, "a@x", rec, SENDLIMIT_REC_V1_LEN),
			 0);
	sendlimit_status(sl2, "a@x", T0 + 3 * HOUR, &st);
	assert_int_equal(st.baseline_micro, 4000000);
	assert_int_equal(st.count_day, 12);
	/* One active hour of 8 more: the mean of 4 and 8. */
	send_n(sl2, "a@x", NULL, 0, 8, T0 + 4 * HOUR, &v);
	sendlimit_status(sl2, "a@x", T0 + 5 * HOUR, &st);
	assert_int_equal(st.baseline_micro, 6000000);
	sendlimit_free(&sl);
	sendlimit_free(&sl2);
}

static void
test_top(void **state)
{
	struct sendlimit_config c = cfg_of(0, 0, 0, 1000, 10, SENDLIMIT_HOLD);
	struct sendlimit *sl = sendlimit_new(&c, key);
	struct sendlimit_top top[SENDLIMIT_TOP_MAX];
	struct sendlimit_verdict v;
	char acct[32], text[32];

	(void)state;
	for (unsigned i = 0; i < 15; i++) {
		snprintf(acct, sizeof(acct), "u%02u@x", i);
		send_n(sl, acct, NULL, 0, i + 1, T0, &v);
	}
	send_n(sl, "old@x", NULL, 0, 99, T0 - DAY, &v);
	assert_int_equal(sendlimit_top(sl, T0 + 1, top, 20), 10);
	assert_string_equal(top[0].account, "u14@x");
	assert_int_equal(top[0].count_hour, 15);
	assert_string_equal(top[9].account, "u05@x");
	sendlimit_baseline_text(text, sizeof(text), 1234567);
	assert_string_equal(text, "1.23");
	sendlimit_baseline_text(text, sizeof(text), 0);
	assert_string_equal(text, "0.00");
	sendlimit_free(&sl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hour_limit),
	    cmocka_unit_test(test_clock_back),
	    cmocka_unit_test(test_day_limit),
	    cmocka_unit_test(test_new_recipients),
	    cmocka_unit_test(test_per_user_limits),
	    cmocka_unit_test(test_burst_floor_exact),
	    cmocka_unit_test(test_baseline_active_hours),
	    cmocka_unit_test(test_daily_batch_learned),
	    cmocka_unit_test(test_hijack_alarms),
	    cmocka_unit_test(test_new_account_alarms),
	    cmocka_unit_test(test_import_v1),
	    cmocka_unit_test(test_burst_vs_baseline),
	    cmocka_unit_test(test_log_action),
	    cmocka_unit_test(test_undo),
	    cmocka_unit_test(test_export_import),
	    cmocka_unit_test(test_top),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
