/*
 * test_fdio.c - fdio_write_all(): every octet in order whatever the write
 * function does short of failing (short writes, EINTR), and the failures
 * it must report (an error with its errno, a write of 0 octets as EIO).
 * The seam it serves: store/storefs.c, outbound/dstate.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/fdio.h"

/* One scripted answer of the fake write: how many octets it takes at
   most (> 0), or 0 (returns 0), or -errno (fails with it). */
static const int *script;
static size_t script_len, calls;
static char sink[64];
static size_t sink_len;
static int seen_fd;

static ssize_t
fake_write(int fd, const void *buf, size_t len)
{
	int step = calls < script_len ? script[calls] : 64;

	calls++;
	seen_fd = fd;
	if (step < 0) {
		errno = -step;
		return -1;
	}
	if ((size_t)step < len)
		len = (size_t)step;
	assert_true(sink_len + len <= sizeof(sink));
	memcpy(sink + sink_len, buf, len);
	sink_len += len;
	return (ssize_t)len;
}

static void
run(const int *steps, size_t n)
{
	script = steps;
	script_len = n;
	calls = 0;
	sink_len = 0;
	seen_fd = -1;
	errno = 0;
}

static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static void
test_one_write(void **state)
{
	run(NULL, 0);
	assert_int_equal(fdio_write_all(fake_write, 7, text, 36), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(seen_fd, 7);
	assert_int_equal(sink_len, 36);
	assert_memory_equal(sink, text, 36);
}

/* Short writes and EINTR: the rest is written, in order, nothing twice. */
static void
test_short_and_interrupted(void **state)
{
	static const int steps[] = {1, -EINTR, 5, -EINTR, -EINTR, 3, 64};

	run(steps, sizeof(steps) / sizeof(steps[0]));
	assert_int_equal(fdio_write_all(fake_write, 3, text, 36), 0);
	assert_int_equal(calls, 7);
	assert_int_equal(sink_len, 36);
	assert_memory_equal(sink, text, 36);
}

static void
test_error_keeps_errno(void **state)
{
	static const int steps[] = {4, -ENOSPC, 64};

	run(steps, sizeof(steps) / sizeof(steps[0]));
	assert_int_equal(fdio_write_all(fake_write, 3, text, 36), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(calls, 2);
	assert_int_equal(sink_len, 4); /* what was written stays written */
	assert_memory_equal(sink, text, 4);
}

/* write(2) returning 0 for a non-empty buffer would loop for ever. */
static void
test_zero_is_eio(void **state)
{
	static const int steps[] = {2, 0, 64};

	run(steps, sizeof(steps) / sizeof(steps[0]));
	assert_int_equal(fdio_write_all(fake_write, 3, text, 36), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(calls, 2);
	assert_int_equal(sink_len, 2);
}

static void
test_nothing_to_write(void **state)
{
	run(NULL, 0);
	assert_int_equal(fdio_write_all(fake_write, 3, text, 0), 0);
	assert_int_equal(calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_write),
	    cmocka_unit_test(test_short_and_interrupted),
	    cmocka_unit_test(test_error_keeps_errno),
	    cmocka_unit_test(test_zero_is_eio),
	    cmocka_unit_test(test_nothing_to_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
