/*
 * test_notices.c - the pending postmaster notices (src/auth/notices.c)
 * and their frames (src/auth/guard_proto.c, NOTICE and NOTICE_DONE):
 * numbering, confirmation by number and account, the hand/wait/give-up
 * steps with their bound, the store's record both ways and every way an
 * imported record is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/guard_proto.h"
#include "auth/notices.h"

static void
test_add_and_done(void **state)
{
	struct notices *n = notices_new();
	struct notice_pending *a, *b;
	uint32_t ida, idb;

	(void)state;
	assert_non_null(n);
	a = notices_add(n, "Alice@example.org", 51, 0, 1000);
	assert_non_null(a);
	ida = a->id;
	b = notices_add(n, "bob@example.org", 70, 150, 1001);
	assert_non_null(b);
	idb = b->id;
	assert_int_not_equal(ida, 0);
	assert_int_not_equal(ida, idb);
	assert_int_equal(notices_count(n), 2);
	assert_int_equal(notices_at(n, 0)->attempts, 0);
	assert_int_equal(notices_at(n, 0)->holder, 0);
	/* another account, an unknown number: nothing changes */
	assert_int_equal(notices_done(n, ida, "bob@example.org"),
			 NOTICES_DONE_MISMATCH);
	assert_int_equal(notices_done(n, 12345, "alice@example.org"),
			 NOTICES_DONE_UNKNOWN);
	assert_int_equal(notices_count(n), 2);
	/* the account in any case */
	assert_int_equal(notices_done(n, ida, "ALICE@example.org"),
			 NOTICES_DONE_OK);
	assert_int_equal(notices_count(n), 1);
	assert_int_equal(notices_at(n, 0)->id, idb);
	/* confirmed twice: the second is unknown (a duplicate) */
	assert_int_equal(notices_done(n, ida, "alice@example.org"),
			 NOTICES_DONE_UNKNOWN);
	/* bad accounts are refused */
	assert_null(notices_add(n, "", 1, 1, 1));
	assert_null(notices_add(n, "a\r\nb", 1, 1, 1));
	notices_free(&n);
	assert_null(n);
}

static void
test_bounded(void **state)
{
	struct notices *n = notices_new();
	char name[32];

	(void)state;
	for (int i = 0; i < NOTICES_MAX; i++) {
		snprintf(name, sizeof(name), "u%d@x", i);
		assert_non_null(notices_add(n, name, 1, 0, 0));
	}
	assert_null(notices_add(n, "one-more@x", 1, 0, 0));
	notices_remove(n, notices_at(n, 0)->id);
	assert_non_null(notices_add(n, "one-more@x", 1, 0, 0));
	notices_free(&n);
}

/* Hand, wait while the worker lives and the time is not up, hand again
   when it is gone or late, give up after NOTICES_ATTEMPTS. */
static void
test_steps(void **state)
{
	struct notices *n = notices_new();
	struct notice_pending *p = notices_add(n, "a@x", 51, 0, 0);
	int64_t now = 100;

	(void)state;
	/* never handed: hand it, whoever is there */
	assert_int_equal(notices_step(p, now, false), NOTICES_HAND);
	notices_handed(p, 7, now);
	assert_int_equal(p->attempts, 1);
	assert_int_equal(p->holder, 7);
	assert_int_equal(notices_step(p, now, true), NOTICES_WAIT);
	assert_int_equal(notices_step(p, now + NOTICES_RETRY - 1, true),
			 NOTICES_WAIT);
	/* late, or the worker is gone: hand again */
	assert_int_equal(notices_step(p, now + NOTICES_RETRY, true),
			 NOTICES_HAND);
	assert_int_equal(notices_step(p, now + 1, false), NOTICES_HAND);
	for (unsigned i = 2; i <= NOTICES_ATTEMPTS; i++) {
		now += NOTICES_RETRY;
		notices_handed(p, 7 + i, now);
		assert_int_equal(p->attempts, i);
	}
	assert_int_equal(notices_step(p, now + 1, true), NOTICES_WAIT);
	/* the last attempt is not confirmed: give up, never hand again */
	assert_int_equal(notices_step(p, now + NOTICES_RETRY, true),
			 NOTICES_GIVE_UP);
	assert_int_equal(notices_step(p, now + 1, false), NOTICES_GIVE_UP);
	notices_free(&n);
}

static void
test_record(void **state)
{
	struct notices *n = notices_new(), *m = notices_new();
	struct notice_pending *p = notices_add(n, "alice@example.org",
					       51, 12345, 1764806400);
	unsigned char key[NOTICES_KEY_LEN], rec[NOTICES_REC_MAX];
	size_t len;
	struct notice_pending *q;

	(void)state;
	notices_handed(p, 3, 10);
	len = notices_export(p, key, rec);
	assert_int_equal(len, NOTICES_REC_FIXED + strlen("alice@example.org"));
	assert_int_equal(notices_import(m, key, sizeof(key), rec, len), 0);
	q = notices_at(m, 0);
	assert_int_equal(q->id, p->id);
	assert_string_equal(q->account, "alice@example.org");
	assert_int_equal(q->count, 51);
	assert_int_equal(q->baseline, 12345);
	assert_int_equal(q->raised, 1764806400);
	assert_int_equal(q->attempts, 1);
	/* loaded: handed to nobody, due at once */
	assert_int_equal(q->holder, 0);
	assert_int_equal(notices_step(q, 0, false), NOTICES_HAND);
	/* the same number twice */
	assert_int_equal(notices_import(m, key, sizeof(key), rec, len), -1);
	/* new numbers go on after the loaded ones */
	assert_true(notices_add(m, "b@x", 1, 0, 0)->id > p->id);
	notices_free(&m);
	m = notices_new();
	/* bad key, version, lengths, account, attempts */
	assert_int_equal(notices_import(m, key, 3, rec, len), -1);
	rec[0] = 2;
	assert_int_equal(notices_import(m, key, sizeof(key), rec, len), -1);
	rec[0] = 1;
	assert_int_equal(notices_import(m, key, sizeof(key), rec,
					NOTICES_REC_FIXED), -1);
	assert_int_equal(notices_import(m, key, sizeof(key), rec,
					NOTICES_REC_MAX + 1), -1);
	rec[17] = NOTICES_ATTEMPTS + 1;
	assert_int_equal(notices_import(m, key, sizeof(key), rec, len), -1);
	rec[17] = 1;
	rec[NOTICES_REC_FIXED + 2] = '\n';
	assert_int_equal(notices_import(m, key, sizeof(key), rec, len), -1);
	rec[NOTICES_REC_FIXED + 2] = 'i';
	memset(key, 0, sizeof(key));
	assert_int_equal(notices_import(m, key, sizeof(key), rec, len), -1);
	assert_int_equal(notices_count(m), 0);
	notices_free(&m);
	notices_free(&n);
}

/* NOTICE and NOTICE_DONE: both ways, and what the decoder refuses. */
static void
test_frames(void **state)
{
	static struct guard_msg m, d;
	unsigned char buf[GUARD_HEADER_LEN + GUARD_FRAME_MAX];
	const char *error;
	size_t len;

	(void)state;
	memset(&m, 0, offsetof(struct guard_msg, arena));
	m.type = GUARD_MSG_NOTICE;
	m.id = 9;
	m.user = "alice@example.org";
	m.count = 51;
	m.baseline = 7;
	len = guard_proto_encode(&m, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(guard_proto_decode(buf, len, &d, &error), 0);
	assert_int_equal(d.type, GUARD_MSG_NOTICE);
	assert_int_equal(d.id, 9);
	assert_string_equal(d.user, "alice@example.org");
	assert_int_equal(d.count, 51);
	assert_int_equal(d.baseline, 7);
	/* a trailing octet */
	buf[3]++;
	buf[len] = 0;
	assert_int_equal(guard_proto_decode(buf, len + 1, &d, &error), -1);
	m.type = GUARD_MSG_NOTICE_DONE;
	len = guard_proto_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, GUARD_HEADER_LEN + 2 + strlen(m.user));
	assert_int_equal(guard_proto_decode(buf, len, &d, &error), 0);
	assert_int_equal(d.type, GUARD_MSG_NOTICE_DONE);
	assert_int_equal(d.id, 9);
	assert_string_equal(d.user, "alice@example.org");
	assert_int_equal(d.count, 0);
	/* id 0 */
	buf[8] = 0;
	assert_int_equal(guard_proto_decode(buf, len, &d, &error), -1);
	assert_string_equal(error, "bad request id");
	/* no account, or an empty one */
	m.user = "";
	assert_int_equal(guard_proto_encode(&m, buf, sizeof(buf)), 0);
	m.user = "x";
	len = guard_proto_encode(&m, buf, sizeof(buf));
	buf[3]--; /* the field's length says 0, the frame one octet less */
	buf[GUARD_HEADER_LEN + 1] = 0;
	assert_int_equal(guard_proto_decode(buf, len - 1, &d, &error), -1);
	assert_string_equal(error, "empty account");
	/* a CR in the account */
	m.user = "a\rb";
	assert_int_equal(guard_proto_encode(&m, buf, sizeof(buf)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_and_done),
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_steps),
	    cmocka_unit_test(test_record),
	    cmocka_unit_test(test_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
