/*
 * guard_util.c - what the guard's files share: its clock, the text of a
 * lock's end, the names of the kinds of lock. It calls none of them.
 */
#include "auth/guard_int.h"

#include <time.h>

const char *const guard_kind_names[] = {"account", "address", "network",
					"wide"};

time_t
guard_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* "2024-05-01T12:00:00Z" for a time of the monotonic clock. */
void
guard_until_text(char *buf, size_t size, time_t until)
{
	time_t wall = time(NULL) + (until - guard_now());
	struct tm tm;

	gmtime_r(&wall, &tm);
	if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
}
