/*
 * sendlimit.h - send limits and the volume alarm of authenticated accounts
 * (docs/sendlimit.md). Pure: no I/O, no clock (the caller passes `now`,
 * wall-clock unix seconds), no log; the guard (guard_send.c) glues it to
 * its frames, its store and its log.
 *
 * Per account, counted in recipients (local and remote alike):
 *   - a sliding hour (12 buckets of 5 minutes) for send-limit-hour and the
 *     burst check, a sliding day (24 buckets of an hour) for
 *     send-limit-day, the first-time recipients of the UTC day for
 *     new-recipients-day;
 *   - a baseline: the average recipients of the account's active clock
 *     hours (at least one recipient; idle hours do not count), the plain
 *     mean of the first 336, then an exponentially weighted one with
 *     weight 1/336; a new account starts at 0;
 *   - a peak: the largest active hour, decaying by 1/336 an hour; hours
 *     that end under an alarm teach neither, a release teaches the peak
 *     the largest sliding hour of the alarm;
 *   - the alarm: raised when the sliding hour exceeds burst-floor,
 *     burst-factor times the baseline and twice the peak.
 * Recipients already sent to are remembered as a keyed hash (BLAKE2b, key
 * from the caller) of "account NUL recipient", lower-cased, with the UTC day
 * of the last send; never the address itself.
 */
#ifndef POSTERN_SENDLIMIT_H
#define POSTERN_SENDLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SENDLIMIT_KEY_LEN 32	  /* the hashing key */
#define SENDLIMIT_SEEN_LEN 16	  /* a remembered recipient's hash */
#define SENDLIMIT_SEEN_DAYS 365	  /* a recipient is "new" again after */
#define SENDLIMIT_REC_LEN 226	  /* an account's exported record */
#define SENDLIMIT_REC_VERSION 2	  /* its first octet */
#define SENDLIMIT_REC_V1_LEN 210  /* version 1, still read */
#define SENDLIMIT_ALARM_KEEP 86400 /* ALARMS lists a cleared one this long */
#define SENDLIMIT_RELEASE_QUIET 3600 /* no new alarm after a release */
#define SENDLIMIT_EWMA_HOURS 336  /* active hours in the average */
#define SENDLIMIT_PEAK_FACTOR 2	  /* an alarm is over twice the peak */
#define SENDLIMIT_TOP_MAX 10

enum sendlimit_action {
	SENDLIMIT_HOLD = 0, /* accept, hold in the queue until released */
	SENDLIMIT_REFUSE,   /* 451 4.7.1 until released */
	SENDLIMIT_LOG,	    /* only the log line and the notice */
};

enum sendlimit_result {
	SENDLIMIT_OK = 0,
	SENDLIMIT_OK_HOLD,   /* accepted; the message must be held */
	SENDLIMIT_OVER_HOUR, /* 451 4.7.1, send-limit-hour */
	SENDLIMIT_OVER_DAY,  /* 451 4.7.1, send-limit-day */
	SENDLIMIT_OVER_NEW,  /* 451 4.7.1, new-recipients-day */
	SENDLIMIT_ALARMED,   /* 451 4.7.1, burst-action refuse */
};

/* Limits: 0 means none. */
struct sendlimit_limits {
	uint32_t hour, day, new_day;
};

struct sendlimit_config {
	struct sendlimit_limits defaults;
	uint32_t burst_floor;
	uint32_t burst_factor;
	enum sendlimit_action action;
};

/* What one recipient did. */
struct sendlimit_verdict {
	enum sendlimit_result result;
	bool alarm_raised;	 /* this recipient raised the alarm */
	uint32_t count;		 /* the sliding hour, this one included */
	uint64_t baseline_micro; /* recipients an hour, x 1e6 */
	bool seen_changed;	 /* seen_key now has the day seen_day */
	unsigned char seen_key[SENDLIMIT_SEEN_LEN];
	uint32_t seen_day;
};

struct sendlimit_status {
	uint32_t count_hour, count_day, new_today;
	uint64_t baseline_micro;
	bool alarmed;
	time_t alarm_since; /* 0: never */
	uint32_t alarm_count;
	uint64_t alarm_baseline_micro;
};

struct sendlimit_top {
	const char *account; /* valid until the next change */
	uint32_t count_hour;
	uint64_t baseline_micro;
	bool alarmed;
};

struct sendlimit_alarm {
	const char *account;
	time_t since;
	uint32_t count;
	uint64_t baseline_micro;
	bool in_effect;
};

struct sendlimit;

/* NULL out of memory. */
struct sendlimit *sendlimit_new(const struct sendlimit_config *cfg,
				const unsigned char key[SENDLIMIT_KEY_LEN]);
void sendlimit_free(struct sendlimit **sl);
void sendlimit_set_config(struct sendlimit *sl,
			  const struct sendlimit_config *cfg);

/*
 * One recipient of `account` (any case) to `rcpt` under `lim` (NULL: the
 * defaults). Limits are checked before counting: a refused recipient is
 * not counted. Returns v->result; -1 only out of memory (nothing
 * counted; the caller tempfails).
 */
int sendlimit_rcpt(struct sendlimit *sl, const char *account,
		   const struct sendlimit_limits *lim, const char *rcpt,
		   time_t now, struct sendlimit_verdict *v);

/* `n` recipients counted for `account` were not sent after all (RSET, a
   refused or failed message): the hour and day counts give them back
   (the newest buckets first); first-time recipients stay counted. */
void sendlimit_undo(struct sendlimit *sl, const char *account, uint32_t n,
		    time_t now);

/* Clear the account's alarm; 0, or -1 when none was in effect. The
   largest sliding hour under the alarm becomes the peak (it was
   legitimate), unless discarded since. */
int sendlimit_release(struct sendlimit *sl, const char *account, time_t now);

/* The mail under the account's alarm was spam (deleted from the queue):
   a later release teaches the peak nothing of it. 0, or -1 when no
   alarm is in effect. */
int sendlimit_discard(struct sendlimit *sl, const char *account, time_t now);

/* 0, or -1 when the account never sent. */
int sendlimit_status(struct sendlimit *sl, const char *account, time_t now,
		     struct sendlimit_status *st);

/* The busiest accounts of the sliding hour, most first (ties by name);
   at most `max` (<= SENDLIMIT_TOP_MAX), only those with a count. */
size_t sendlimit_top(struct sendlimit *sl, time_t now,
		     struct sendlimit_top *out, size_t max);

/* Alarms in effect or raised in the last SENDLIMIT_ALARM_KEEP seconds,
   oldest first; at most `max`. */
size_t sendlimit_alarms(struct sendlimit *sl, time_t now,
			struct sendlimit_alarm *out, size_t max);

/* Alarms raised since start (for the metrics). */
uint64_t sendlimit_alarms_raised(const struct sendlimit *sl);

/* Baseline as text, "12.34", for logs and screens. */
void sendlimit_baseline_text(char *buf, size_t size, uint64_t micro);

/* --- persistence ------------------------------------------------------ */

/* The account's record (SENDLIMIT_REC_LEN octets, version first, all
   numbers big-endian); -1 when unknown. */
int sendlimit_export(struct sendlimit *sl, const char *account,
		     unsigned char rec[SENDLIMIT_REC_LEN]);
/* Load a record (this version, or version 1 of SENDLIMIT_REC_V1_LEN
   octets: its baseline then counts as one active hour); -1 (ignored by
   the caller, logged) when its length or version is wrong or a value is
   out of range. */
int sendlimit_import(struct sendlimit *sl, const char *account,
		     const unsigned char *rec, size_t len);
/* A remembered recipient, as the verdict gave it. */
int sendlimit_seen_import(struct sendlimit *sl,
			  const unsigned char key[SENDLIMIT_SEEN_LEN],
			  uint32_t day);
/* Forget recipients not sent to for SENDLIMIT_SEEN_DAYS; `gone` is called
   for each (to delete it from the store). Returns how many. */
size_t sendlimit_seen_expire(struct sendlimit *sl, time_t now,
			     void (*gone)(const unsigned char *key,
					  void *arg),
			     void *arg);
/* Each account name, for a caller that exports them all. */
void sendlimit_each(struct sendlimit *sl,
		    void (*fn)(const char *account, void *arg), void *arg);

#endif
