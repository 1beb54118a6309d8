/*
 * alarm.h - the guard's alarms (docs/lockout.md "Alarms"): one log line
 * each, and a count per kind since the guard started, for metrics.
 */
#ifndef POSTERN_ALARM_H
#define POSTERN_ALARM_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum alarm_kind {
	ALARM_LOGIN_NETWORKS = 0, /* one account, many networks an hour */
	ALARM_SEND_BURST,	  /* one account sends far above its baseline */
	ALARM_N_KINDS
};

/* "login-networks", "send-burst": the kind= of the log line. */
const char *alarm_kind_name(enum alarm_kind kind);

/* Count one alarm of `kind` (the caller logs its own line). */
void alarm_note(enum alarm_kind kind);
/* Alarms of `kind` raised in this process so far. */
uint64_t alarm_count(enum alarm_kind kind);

/* Log and count "alarm kind=login-networks account=... count=N", and
   keep it in the list of recent ones (alarm_login_recent). */
void alarm_login_networks(const char *account, unsigned count);

#define ALARM_RECENT_MAX 256	   /* login-networks alarms kept */
#define ALARM_RECENT_SECONDS 86400 /* and for how long */
#define ALARM_ACCOUNT_MAX 320

struct alarm_recent {
	time_t when; /* wall clock */
	unsigned count;
	char account[ALARM_ACCOUNT_MAX + 1];
};

/* The login-networks alarms raised in the day before `now` (wall clock),
   oldest first, at most `max` into out; returns how many. Bounded by
   ALARM_RECENT_MAX: past it the oldest are forgotten (their log lines and
   the alarm counter remain). */
size_t alarm_login_recent(time_t now, struct alarm_recent *out, size_t max);

#endif
