/*
 * test_reply.c - the reply table: every row well formed (RFC 5321 4.2,
 * RFC 3463 class matching the code), printable, no CR or LF in texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/reply.h"

static void
test_table(void **state)
{
	for (int id = 0; id < REPLY_COUNT; id++) {
		const struct reply *r = reply_get((enum reply_id)id);
		char line[REPLY_LINE_MAX];
		size_t n;

		assert_non_null(r->text);
		assert_true(r->code >= 200 && r->code < 600);
		if (r->status != NULL) {
			/* RFC 3463: class digit matches the reply class. */
			assert_int_equal(r->status[0] - '0', r->code / 100);
			assert_true(strlen(r->status) >= 5);
		} else {
			assert_true(r->code == 354);
		}
		n = reply_format((enum reply_id)id, line, sizeof(line));
		assert_true(n > 6);
		assert_memory_equal(line + n - 2, "\r\n", 2);
		for (size_t i = 0; i + 2 < n; i++)
			assert_true(line[i] >= 0x20 && line[i] < 0x7f);
		/* 421 and 221 close; nothing else may. */
		if (r->closes)
			assert_true(r->code == 421 || r->code == 221 ||
				    r->code == 554 || r->code == 521);
	}
}

static void
test_format_small_buffer(void **state)
{
	char line[8];

	assert_int_equal(reply_format(R_SUCCESS, line, sizeof(line)), 0);
	assert_int_equal(reply_format(R_SUCCESS, line, 0), 0);
	assert_ptr_equal(reply_get((enum reply_id)9999),
			 reply_get(R_TEMP_FAIL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_format_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
