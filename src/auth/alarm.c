/*
 * alarm.c - the guard's alarms (alarm.h).
 */
#include "auth/alarm.h"

#include <string.h>

#include "lib/log.h"

#define ALARM_ACCOUNT_MAX 320

static uint64_t alarm_counts[ALARM_N_KINDS];

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

	alarm_note(ALARM_LOGIN_NETWORKS);
	log_warning("guard", "alarm kind=%s account=%s count=%u",
		    alarm_kind_name(ALARM_LOGIN_NETWORKS),
		    log_escape(esc, sizeof(esc), account, strlen(account),
			       ALARM_ACCOUNT_MAX),
		    count);
}
