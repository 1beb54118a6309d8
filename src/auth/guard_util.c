/*
 * guard_util.c - what the guard's files share: its clock, the text of a
 * lock's end and of its key, the names of the kinds of lock. It calls
 * none of them.
 */
#include "auth/guard_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"

const char *const guard_kind_names[] = {"account", "address", "network",
					"wide"};

time_t
guard_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* A lock's key as the log and LIST show it: an account escaped (it came
   from a client), an address or network as it is. */
void
guard_lock_key_text(char *buf, size_t size, const struct lockout_event *ev)
{
	if (ev->kind == LOCKOUT_ACCOUNT)
		log_escape(buf, size, ev->key, strlen(ev->key),
			   LOCKOUT_KEY_TEXT_MAX);
	else
		snprintf(buf, size, "%s", ev->key);
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
