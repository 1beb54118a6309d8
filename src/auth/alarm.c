/*
 * alarm.c - the guard's alarms (alarm.h).
 */
#include "auth/alarm.h"

#include <string.h>

#include "lib/log.h"
#include "metrics/metrics.h"

static uint64_t alarm_counts[ALARM_N_KINDS];

/* A ring of the last login-networks alarms, for the control socket's
   ALARMS (the status screen); the send-burst ones live in sendlimit.c. */
static struct alarm_recent alarm_ring[ALARM_RECENT_MAX];
static size_t alarm_ring_next, alarm_ring_used;

static const char *const alarm_names[ALARM_N_KINDS] = {"login-networks",
						       "send-burst"};

const char *
alarm_kind_name(enum alarm_kind kind)
{
	return (unsigned)kind < ALARM_N_KINDS ? alarm_names[kind] : "unknown";
}

void
alarm_note(enum alarm_kind kind)
{
	if ((unsigned)kind < ALARM_N_KINDS)
		alarm_counts[kind]++;
	metrics_add(kind == ALARM_SEND_BURST ? MC_ALARM_BURST
					     : MC_ALARM_NETWORKS,
		    1);
}

uint64_t
alarm_count(enum alarm_kind kind)
{
	return (unsigned)kind < ALARM_N_KINDS ? alarm_counts[kind] : 0;
}

void
alarm_login_networks(const char *account, unsigned count)
{
	char esc[ALARM_ACCOUNT_MAX * 4 + 8];

	struct alarm_recent *a = &alarm_ring[alarm_ring_next];
	size_t len = strlen(account);

	if (len > ALARM_ACCOUNT_MAX)
		len = ALARM_ACCOUNT_MAX;
	a->when = time(NULL);
	a->count = count;
	memcpy(a->account, account, len);
	a->account[len] = '\0';
	alarm_ring_next = (alarm_ring_next + 1) % ALARM_RECENT_MAX;
	if (alarm_ring_used < ALARM_RECENT_MAX)
		alarm_ring_used++;
	alarm_note(ALARM_LOGIN_NETWORKS);
	log_warning("guard", "alarm kind=%s account=%s count=%u",
		    alarm_kind_name(ALARM_LOGIN_NETWORKS),
		    log_escape(esc, sizeof(esc), account, strlen(account),
			       ALARM_ACCOUNT_MAX),
		    count);
}

size_t
alarm_login_recent(time_t now, struct alarm_recent *out, size_t max)
{
	size_t first = (alarm_ring_next + ALARM_RECENT_MAX - alarm_ring_used) %
		       ALARM_RECENT_MAX;
	size_t n = 0;

	for (size_t i = 0; i < alarm_ring_used && n < max; i++) {
		const struct alarm_recent *a =
		    &alarm_ring[(first + i) % ALARM_RECENT_MAX];

		if (a->when + ALARM_RECENT_SECONDS >= now)
			out[n++] = *a;
	}
	return n;
}
