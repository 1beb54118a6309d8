/*
 * alarm.h - the guard's alarms (docs/lockout.md "Alarms"): one log line
 * each, and a count per kind since the guard started, for metrics.
 */
#ifndef POSTERN_ALARM_H
#define POSTERN_ALARM_H

#include <stdint.h>

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

/* Log and count "alarm kind=login-networks account=... count=N". */
void alarm_login_networks(const char *account, unsigned count);

#endif
