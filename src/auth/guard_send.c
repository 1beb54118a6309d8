/*
 * guard_send.c - the guard's side of send limits and the volume alarm
 * (docs/sendlimit.md): answers SEND_REQ and SEND_UNDO from workers with
 * the pure module sendlimit.c, writes the log lines, and serves the
 * control commands LIMITS, RELEASE, DISCARD, TOP and ALARMS (guard_control.c
 * hands them over), and keeps it all in the guard's store (gstore.h):
 * GSTORE_SEND holds each account's record (sendlimit_export) under its
 * lower-cased name, and the recipients' hashing key under a name no
 * account has ("\0key"); GSTORE_RCPTS holds each remembered recipient,
 * its 16-octet hash -> a version octet (1) and the UTC day, big-endian
 * (4 octets). Every change goes into the store's open batch at once; the
 * guard commits it within a second (guard_state.c). Wall-clock time: the
 * buckets are clock hours and UTC days, and they are kept across
 * restarts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "auth/alarm.h"
#include "auth/gstore.h"
#include "auth/guard_int.h"
#include "auth/sendlimit.h"
#include "auth/users.h"
#include "lib/log.h"

#define SID GUARD_SID
#define GS_ALARMS_MAX 1000
#define GS_KEY_NAME "\0key" /* the hashing key's record */
#define GS_KEY_NAME_LEN 4
#define GS_SEEN_REC_LEN 5
#define GS_EXPIRE_EVERY 3600

_Static_assert((int)SENDLIMIT_OK == (int)GUARD_SEND_OK &&
		   (int)SENDLIMIT_OK_HOLD == (int)GUARD_SEND_HOLD &&
		   (int)SENDLIMIT_OVER_HOUR == (int)GUARD_SEND_OVER_HOUR &&
		   (int)SENDLIMIT_OVER_DAY == (int)GUARD_SEND_OVER_DAY &&
		   (int)SENDLIMIT_OVER_NEW == (int)GUARD_SEND_OVER_NEW &&
		   (int)SENDLIMIT_ALARMED == (int)GUARD_SEND_ALARMED,
	       "sendlimit results and guard_send_result differ");

static const char *const gs_action_names[] = {"hold", "refuse", "log"};
static const char *const gs_limit_names[] = {
    "ok", "hold", "send-limit-hour", "send-limit-day", "new-recipients-day",
    "send-burst"};

static struct {
	struct sendlimit *sl;
	const struct users *users;
	const struct config *cfg;
	enum sendlimit_action action;
	struct gstore *st;
	time_t expired; /* when recipients were last expired */
} S;

static void
gs_config_of(const struct config *cfg, struct sendlimit_config *c)
{
	memset(c, 0, sizeof(*c));
	c->defaults.hour = cfg->send_limit_hour;
	c->defaults.day = cfg->send_limit_day;
	c->defaults.new_day = cfg->new_recipients_day;
	c->burst_floor = cfg->burst_floor;
	c->burst_factor = cfg->burst_factor;
	c->action = cfg->burst_action == BURST_ACTION_REFUSE ? SENDLIMIT_REFUSE
		    : cfg->burst_action == BURST_ACTION_LOG  ? SENDLIMIT_LOG
							     : SENDLIMIT_HOLD;
}

/* --- the store --------------------------------------------------------- */

/* The account's record into the store's open batch. */
static void
gs_store(const char *account)
{
	unsigned char rec[SENDLIMIT_REC_LEN];
	char low[GUARD_USER_MAX + 1];
	size_t n = 0;

	if (S.st == NULL || sendlimit_export(S.sl, account, rec) < 0)
		return;
	for (; account[n] != '\0' && n < GUARD_USER_MAX; n++)
		low[n] = account[n] >= 'A' && account[n] <= 'Z'
			     ? (char)(account[n] + 32)
			     : account[n];
	if (gstore_put(S.st, GSTORE_SEND, low, n, rec, sizeof(rec)) < 0)
		log_error(SID, "send-state-write-failed");
}

static void
gs_store_seen(const struct sendlimit_verdict *v)
{
	unsigned char rec[GS_SEEN_REC_LEN] = {1, (unsigned char)(v->seen_day >> 24),
					      (unsigned char)(v->seen_day >> 16),
					      (unsigned char)(v->seen_day >> 8),
					      (unsigned char)v->seen_day};

	if (S.st != NULL && v->seen_changed &&
	    gstore_put(S.st, GSTORE_RCPTS, v->seen_key, SENDLIMIT_SEEN_LEN,
		       rec, sizeof(rec)) < 0)
		log_error(SID, "send-state-write-failed");
}

static void
gs_seen_gone(const unsigned char *key, void *arg)
{
	(void)arg;
	if (S.st != NULL)
		gstore_del(S.st, GSTORE_RCPTS, key, SENDLIMIT_SEEN_LEN);
}

/* Recipients not sent to for a year are forgotten, once an hour. */
static void
gs_expire(time_t now)
{
	if (now - S.expired < GS_EXPIRE_EVERY)
		return;
	S.expired = now;
	sendlimit_seen_expire(S.sl, now, gs_seen_gone, NULL);
}

struct gs_load {
	size_t accounts, rcpts, bad;
};

/* One record of GSTORE_SEND; a bad one is deleted (and counted). */
static int
gs_load_account(const void *k, size_t kl, const void *v, size_t vl,
		void *arg)
{
	struct gs_load *l = arg;
	char name[GUARD_USER_MAX + 1];

	if (kl >= 1 && ((const char *)k)[0] == '\0')
		return 0; /* the key's record */
	if (kl == 0 || kl > GUARD_USER_MAX || memchr(k, '\0', kl) != NULL) {
		l->bad++;
		gstore_del(S.st, GSTORE_SEND, k, kl);
		return 0;
	}
	memcpy(name, k, kl);
	name[kl] = '\0';
	if (sendlimit_import(S.sl, name, v, vl) == 0) {
		l->accounts++;
		return 0;
	}
	l->bad++;
	gstore_del(S.st, GSTORE_SEND, k, kl);
	return 0;
}

static int
gs_load_seen(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct gs_load *l = arg;
	const unsigned char *r = v;

	if (kl != SENDLIMIT_SEEN_LEN || vl != GS_SEEN_REC_LEN || r[0] != 1 ||
	    sendlimit_seen_import(S.sl, k,
				  (uint32_t)r[1] << 24 | (uint32_t)r[2] << 16 |
				      (uint32_t)r[3] << 8 | r[4]) < 0) {
		l->bad++;
		gstore_del(S.st, GSTORE_RCPTS, k, kl);
		return 0;
	}
	l->rcpts++;
	return 0;
}

/* The recipients' hashing key: the stored one, or a new one stored. */
static void
gs_key(unsigned char key[SENDLIMIT_KEY_LEN])
{
	size_t len = SENDLIMIT_KEY_LEN;

	if (S.st != NULL && gstore_get(S.st, GSTORE_SEND, GS_KEY_NAME,
				       GS_KEY_NAME_LEN, key, &len) == 1 &&
	    len == SENDLIMIT_KEY_LEN)
		return;
	randombytes_buf(key, SENDLIMIT_KEY_LEN);
	if (S.st != NULL)
		gstore_put(S.st, GSTORE_SEND, GS_KEY_NAME, GS_KEY_NAME_LEN, key,
			   SENDLIMIT_KEY_LEN);
}

int
guard_send_init(const struct config *cfg, struct gstore *st)
{
	struct sendlimit_config c;
	unsigned char key[SENDLIMIT_KEY_LEN];
	struct gs_load l = {0, 0, 0};

	gs_config_of(cfg, &c);
	S.cfg = cfg;
	S.st = st;
	gs_key(key);
	S.sl = sendlimit_new(&c, key);
	S.action = c.action;
	sodium_memzero(key, sizeof(key));
	if (S.sl == NULL)
		return -1;
	if (st == NULL)
		return 0;
	if (gstore_each(st, GSTORE_SEND, gs_load_account, &l) < 0 ||
	    gstore_each(st, GSTORE_RCPTS, gs_load_seen, &l) < 0)
		log_error(SID, "send-state-read-failed");
	log_info(SID, "send-state-loaded accounts=%zu recipients=%zu bad=%zu",
		 l.accounts, l.rcpts, l.bad);
	gs_expire(time(NULL));
	return 0;
}

void
guard_send_set_config(const struct config *cfg)
{
	struct sendlimit_config c;

	gs_config_of(cfg, &c);
	S.cfg = cfg;
	S.action = c.action;
	if (S.sl != NULL)
		sendlimit_set_config(S.sl, &c);
}

void
guard_send_set_users(const struct users *users)
{
	S.users = users;
}

/* The account's limits: its users-file values, else the configuration's. */
static struct sendlimit_limits *
gs_limits(const char *account, const struct config *cfg,
	  struct sendlimit_limits *lim)
{
	const struct user *u = S.users != NULL ? users_find(S.users, account)
					       : NULL;
	long long v[USERS_SEND_LIMITS] = {cfg->send_limit_hour,
					  cfg->send_limit_day,
					  cfg->new_recipients_day};

	for (int k = 0; u != NULL && k < USERS_SEND_LIMITS; k++)
		if (u->send_limit[k] >= 0)
			v[k] = u->send_limit[k];
	lim->hour = (uint32_t)v[USERS_SEND_HOUR];
	lim->day = (uint32_t)v[USERS_SEND_DAY];
	lim->new_day = (uint32_t)v[USERS_SEND_NEW_DAY];
	return lim;
}

static uint32_t
gs_hundredths(uint64_t micro)
{
	uint64_t h = (micro + 5000) / 10000;

	return h > UINT32_MAX ? UINT32_MAX : (uint32_t)h;
}

/* One line per alarm raised (docs/sendlimit.md "Log lines"). */
static void
gs_log_alarm(const char *account, const struct sendlimit_verdict *v)
{
	char acct[GUARD_USER_MAX * 4 + 8], base[32];

	log_escape(acct, sizeof(acct), account, strlen(account), 128);
	sendlimit_baseline_text(base, sizeof(base), v->baseline_micro);
	log_warning(SID,
		    "alarm kind=send-burst account=%s count=%u baseline=%s "
		    "action=%s",
		    acct, v->count, base, gs_action_names[S.action]);
}

void
guard_send_request(const struct guard_msg *m, struct guard_msg *r)
{
	struct sendlimit_limits lim;
	struct sendlimit_verdict v;
	char acct[GUARD_USER_MAX * 4 + 8];
	int rc;

	memset(r, 0, offsetof(struct guard_msg, arena));
	r->type = GUARD_MSG_SEND_RES;
	r->id = m->id;
	rc = S.sl == NULL ? -1
			  : sendlimit_rcpt(S.sl, m->user,
					   gs_limits(m->user, S.cfg, &lim),
					   m->rcpt, time(NULL), &v);
	if (rc < 0) {
		r->result = GUARD_SEND_TEMPFAIL;
		return;
	}
	r->result = (uint8_t)v.result;
	r->alarm = v.alarm_raised ? 1 : 0;
	r->count = v.count;
	r->baseline = gs_hundredths(v.baseline_micro);
	if (v.alarm_raised) {
		alarm_note(ALARM_SEND_BURST); /* the count, for metrics */
		gs_log_alarm(m->user, &v);
	}
	if (v.result != SENDLIMIT_OK && v.result != SENDLIMIT_OK_HOLD)
		log_notice(SID, "send-refused account=%s limit=%s count=%u",
			   log_escape(acct, sizeof(acct), m->user,
				      strlen(m->user), 128),
			   gs_limit_names[v.result], v.count);
	/* Refused recipients change nothing but the windows' position. */
	if (v.result == SENDLIMIT_OK || v.result == SENDLIMIT_OK_HOLD ||
	    v.alarm_raised) {
		gs_store(m->user);
		gs_store_seen(&v);
	}
	gs_expire(time(NULL));
}

void
guard_send_undo(const struct guard_msg *m)
{
	if (S.sl == NULL)
		return;
	sendlimit_undo(S.sl, m->user, m->count, time(NULL));
	gs_store(m->user);
}

/* --- control commands ------------------------------------------------- */

static void
gs_limit_line(struct evbuffer *out, const char *what, uint32_t count,
	      uint32_t limit)
{
	if (limit == 0)
		evbuffer_add_printf(out, "%-20s %u (no limit)\n", what, count);
	else
		evbuffer_add_printf(out, "%-20s %u of %u\n", what, count,
				    limit);
}

static void
gs_time_text(char *buf, size_t size, time_t t)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%lld", (long long)t);
}

/* LIMITS <account>: the counts and the limits (`postern user limits`). */
static void
gs_limits_cmd(const char *account, const struct config *cfg,
	      struct evbuffer *out)
{
	struct sendlimit_status st;
	struct sendlimit_limits lim;
	char esc[GUARD_USER_MAX * 4 + 8], base[32], since[40];

	log_escape(esc, sizeof(esc), account, strlen(account), 128);
	if (sendlimit_status(S.sl, account, time(NULL), &st) < 0 &&
	    (S.users == NULL || users_find(S.users, account) == NULL)) {
		evbuffer_add_printf(out, "ERR no such account %s\n", esc);
		return;
	}
	gs_limits(account, cfg, &lim);
	evbuffer_add_printf(out, "OK limits of %s\n", esc);
	gs_limit_line(out, "recipients-hour", st.count_hour, lim.hour);
	gs_limit_line(out, "recipients-day", st.count_day, lim.day);
	gs_limit_line(out, "new-recipients-today", st.new_today, lim.new_day);
	sendlimit_baseline_text(base, sizeof(base), st.baseline_micro);
	evbuffer_add_printf(out, "%-20s %s recipients an hour\n", "baseline",
			    base);
	if (!st.alarmed) {
		evbuffer_add_printf(out, "%-20s none\n", "alarm");
		return;
	}
	sendlimit_baseline_text(base, sizeof(base), st.alarm_baseline_micro);
	gs_time_text(since, sizeof(since), st.alarm_since);
	evbuffer_add_printf(out,
			    "%-20s send-burst since %s count=%u baseline=%s "
			    "action=%s\n",
			    "alarm", since, st.alarm_count, base,
			    gs_action_names[S.action]);
}

/* RELEASE and DISCARD: the end of an account's alarm, by the
   postmaster's release (the mail goes), or with its mail deleted as spam
   (`postern queue delete --account`: a later release teaches the
   baseline nothing of it, docs/sendlimit.md). */
static void
gs_alarm_end_cmd(const char *account, bool discard, struct evbuffer *out)
{
	char esc[GUARD_USER_MAX * 4 + 8];
	int rc;

	log_escape(esc, sizeof(esc), account, strlen(account), 128);
	rc = discard ? sendlimit_discard(S.sl, account, time(NULL))
		     : sendlimit_release(S.sl, account, time(NULL));
	if (rc < 0) {
		evbuffer_add_printf(out, "ERR no alarm in effect for %s\n",
				    esc);
		return;
	}
	gs_store(account);
	log_notice(SID, "alarm-%s kind=send-burst account=%s",
		   discard ? "discarded" : "released", esc);
	evbuffer_add_printf(out, "OK %s %s\n",
			    discard ? "discarded" : "released", esc);
}

static void
gs_top_cmd(struct evbuffer *out)
{
	struct sendlimit_top top[SENDLIMIT_TOP_MAX];
	size_t n = sendlimit_top(S.sl, time(NULL), top, SENDLIMIT_TOP_MAX);
	char base[32];

	evbuffer_add_printf(out, "OK %zu sender%s\n", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		sendlimit_baseline_text(base, sizeof(base),
					top[i].baseline_micro);
		evbuffer_add_printf(out, "%s %u %s %d\n", top[i].account,
				    top[i].count_hour, base,
				    top[i].alarmed ? 1 : 0);
	}
}

static void
gs_burst_line(struct evbuffer *out, const struct sendlimit_alarm *al)
{
	char base[32];

	sendlimit_baseline_text(base, sizeof(base), al->baseline_micro);
	evbuffer_add_printf(out,
			    "%lld send-burst %s count=%u,baseline=%s,action=%s,"
			    "in-effect=%s\n",
			    (long long)al->since, al->account, al->count, base,
			    gs_action_names[S.action],
			    al->in_effect ? "yes" : "no");
}

/* Both kinds, oldest first: the send-burst alarms from sendlimit.c, the
   login-networks ones (never in effect: they hold nothing) from alarm.c. */
static void
gs_alarms_cmd(struct evbuffer *out)
{
	struct sendlimit_alarm *al = calloc(GS_ALARMS_MAX, sizeof(*al));
	struct alarm_recent *ln = calloc(ALARM_RECENT_MAX, sizeof(*ln));
	time_t now = time(NULL);
	size_t n, m, i = 0, j = 0;

	if (al == NULL || ln == NULL) {
		evbuffer_add_printf(out, "ERR out of memory\n");
		goto out;
	}
	n = sendlimit_alarms(S.sl, now, al, GS_ALARMS_MAX);
	m = alarm_login_recent(now, ln, ALARM_RECENT_MAX);
	evbuffer_add_printf(out, "OK %zu alarm%s\n", n + m,
			    n + m == 1 ? "" : "s");
	while (i < n || j < m) {
		if (j == m || (i < n && al[i].since <= ln[j].when)) {
			gs_burst_line(out, &al[i++]);
			continue;
		}
		evbuffer_add_printf(out,
				    "%lld login-networks %s count=%u,"
				    "in-effect=no\n",
				    (long long)ln[j].when, ln[j].account,
				    ln[j].count);
		j++;
	}
out:
	free(al);
	free(ln);
}

bool
guard_send_control(const char *line, struct evbuffer *out)
{
	if (S.sl == NULL)
		return false;
	if (strncmp(line, "LIMITS ", 7) == 0 && line[7] != '\0')
		gs_limits_cmd(line + 7, S.cfg, out);
	else if (strncmp(line, "RELEASE ", 8) == 0 && line[8] != '\0')
		gs_alarm_end_cmd(line + 8, false, out);
	else if (strncmp(line, "DISCARD ", 8) == 0 && line[8] != '\0')
		gs_alarm_end_cmd(line + 8, true, out);
	else if (strcmp(line, "TOP") == 0)
		gs_top_cmd(out);
	else if (strcmp(line, "ALARMS") == 0)
		gs_alarms_cmd(out);
	else
		return false;
	return true;
}
