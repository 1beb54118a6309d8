/*
 * sendlimit.c - per-account send limits, baseline and volume alarm
 * (sendlimit.h, docs/sendlimit.md). Pure: state in memory, time passed in.
 */
#include "auth/sendlimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define SL_BUCKETS 1024
#define SL_SEEN_BUCKETS 65536
#define SL_MIN5 12 /* 5-minute buckets of the sliding hour */
#define SL_HOURS 24
#define SL_MICRO 1000000ull
#define SL_NAME_MAX 320

struct sl_acct {
	struct sl_acct *next;
	char *name; /* lower case */
	int64_t last;		/* the last time the buckets moved to */
	uint32_t min5[SL_MIN5]; /* index (t / 300) % 12 */
	uint32_t hour[SL_HOURS]; /* index (t / 3600) % 24 */
	uint32_t new_day;	/* first-time recipients of UTC day new_day_no */
	uint32_t new_day_no;
	int64_t hour_no;	/* the clock hour cur_hour counts */
	uint32_t cur_hour;
	uint64_t base_u; /* baseline, recipients an active hour x 1e6 */
	uint32_t active; /* active hours folded in, at most EWMA_HOURS */
	uint64_t peak_u; /* the largest hour, decaying, x 1e6 */
	uint32_t alarm_max; /* the largest sliding hour under the alarm */
	bool hour_alarmed;  /* cur_hour counted mail under an alarm */
	bool alarmed;
	int64_t since; /* 0: never alarmed */
	uint32_t alarm_count;
	uint64_t alarm_base_u;
	int64_t quiet_until; /* no new alarm before (a release) */
};

struct sl_seen {
	struct sl_seen *next;
	unsigned char key[SENDLIMIT_SEEN_LEN];
	uint32_t day;
};

struct sendlimit {
	struct sendlimit_config cfg;
	unsigned char key[SENDLIMIT_KEY_LEN];
	struct sl_acct *acct[SL_BUCKETS];
	struct sl_seen **seen; /* SL_SEEN_BUCKETS */
	uint64_t raised;
};

/* --- helpers ---------------------------------------------------------- */

static void
sl_lower(char *dst, const char *src, size_t max)
{
	size_t i = 0;

	for (; src[i] != '\0' && i < max; i++)
		dst[i] = src[i] >= 'A' && src[i] <= 'Z' ? (char)(src[i] + 32)
							: src[i];
	dst[i] = '\0';
}

static uint32_t
sl_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct sl_acct **
sl_slot(struct sendlimit *sl, const char *low)
{
	struct sl_acct **pp = &sl->acct[sl_hash(low) % SL_BUCKETS];

	while (*pp != NULL && strcmp((*pp)->name, low) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* The account, or NULL (create: a new one; NULL only out of memory). */
static struct sl_acct *
sl_find(struct sendlimit *sl, const char *account, bool create)
{
	char low[SL_NAME_MAX + 1];
	struct sl_acct **pp, *a;

	sl_lower(low, account, SL_NAME_MAX);
	pp = sl_slot(sl, low);
	if (*pp != NULL || !create)
		return *pp;
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->name = strdup(low)) == NULL) {
		free(a);
		return NULL;
	}
	*pp = a;
	return a;
}

static uint32_t
sl_sum(const uint32_t *v, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += v[i];
	return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* The peak decays like an EWMA of weight 1/336 an hour: e^-1 in 14
   days; after 20 x 14 days it is as good as 0. */
static void
sl_decay_peak(struct sl_acct *a, int64_t hours)
{
	if (hours > 20 * SENDLIMIT_EWMA_HOURS)
		a->peak_u = 0;
	else
		for (int64_t i = 0; i < hours; i++)
			a->peak_u -= a->peak_u / SENDLIMIT_EWMA_HOURS;
}

/*
 * Fold the clock hour that ended before `h` into the baseline when it was
 * active (at least one recipient) and ended with no alarm in effect (a
 * hijacker's hour teaches nothing; a release does, sendlimit_release).
 * Idle hours leave the average alone, so a regular pattern (a daily
 * batch, working hours) is learned as it is: b += (c - b) / w, in
 * millionths, w = the active hours so far up to SENDLIMIT_EWMA_HOURS
 * (the plain mean of the first ones, then an EWMA). The peak is the
 * largest such hour, decaying.
 */
static void
sl_fold(struct sl_acct *a, int64_t h)
{
	uint64_t c;

	if (a->hour_no == 0 || h <= a->hour_no) {
		if (a->hour_no == 0)
			a->hour_no = h;
		return;
	}
	if (a->cur_hour > 0 && !a->alarmed && !a->hour_alarmed) {
		if (a->active < SENDLIMIT_EWMA_HOURS)
			a->active++;
		c = (uint64_t)a->cur_hour * SL_MICRO;
		if (c >= a->base_u)
			a->base_u += (c - a->base_u) / a->active;
		else
			a->base_u -= (a->base_u - c) / a->active;
		if (c > a->peak_u)
			a->peak_u = c;
	}
	sl_decay_peak(a, h - a->hour_no);
	a->hour_no = h;
	a->cur_hour = 0;
	a->hour_alarmed = false;
}

/* The alarm ends (a release, or `log` calming down): the largest hour
   under it was legitimate after all, the peak learns it. */
static void
sl_alarm_end(struct sl_acct *a)
{
	uint64_t m = (uint64_t)a->alarm_max * SL_MICRO;

	if (m > a->peak_u)
		a->peak_u = m;
	a->alarmed = false;
	a->alarm_max = 0;
}

/* Move the account's windows to `now`: empty the buckets that slid out,
   fold ended hours, start a new day. A clock that went back moves
   nothing. */
static void
sl_advance(struct sendlimit *sl, struct sl_acct *a, int64_t now)
{
	int64_t m = now / 300, lm = a->last / 300;
	int64_t h = now / 3600, lh = a->last / 3600;

	if (a->last != 0 && now < a->last) {
		/* The wall clock went back, or a stored record is from the
		   future (guard-state.md): go on from now, so that the
		   buckets turn again instead of filling until the clock
		   catches up. */
		a->last = now;
		if (a->hour_no > h)
			a->hour_no = h;
		if (a->quiet_until > now + SENDLIMIT_RELEASE_QUIET)
			a->quiet_until = now + SENDLIMIT_RELEASE_QUIET;
		return;
	}
	if (now == a->last && a->last != 0)
		return;
	if (a->last == 0)
		lm = m - SL_MIN5, lh = h - SL_HOURS;
	for (int64_t i = lm + 1; i <= m && i <= lm + SL_MIN5; i++)
		a->min5[i % SL_MIN5] = 0;
	for (int64_t i = lh + 1; i <= h && i <= lh + SL_HOURS; i++)
		a->hour[i % SL_HOURS] = 0;
	sl_fold(a, h);
	if ((uint32_t)(now / 86400) != a->new_day_no) {
		a->new_day_no = (uint32_t)(now / 86400);
		a->new_day = 0;
	}
	a->last = now;
	/* log: the alarm only says so; it ends when the hour calms down. */
	if (a->alarmed && sl->cfg.action == SENDLIMIT_LOG &&
	    sl_sum(a->min5, SL_MIN5) <= sl->cfg.burst_floor)
		sl_alarm_end(a);
}

/* --- recipients seen -------------------------------------------------- */

static void
sl_seen_key(const struct sendlimit *sl, const char *account,
	    const char *rcpt, unsigned char out[SENDLIMIT_SEEN_LEN])
{
	crypto_generichash_state st;
	char low[SL_NAME_MAX + 1];

	crypto_generichash_init(&st, sl->key, sizeof(sl->key),
				SENDLIMIT_SEEN_LEN);
	sl_lower(low, account, SL_NAME_MAX);
	crypto_generichash_update(&st, (const unsigned char *)low,
				  strlen(low) + 1);
	sl_lower(low, rcpt, SL_NAME_MAX);
	crypto_generichash_update(&st, (const unsigned char *)low,
				  strlen(low));
	crypto_generichash_final(&st, out, SENDLIMIT_SEEN_LEN);
}

static struct sl_seen **
sl_seen_slot(struct sendlimit *sl, const unsigned char *key)
{
	struct sl_seen **pp =
	    &sl->seen[((uint32_t)key[0] << 8 | key[1]) % SL_SEEN_BUCKETS];

	while (*pp != NULL &&
	       memcmp((*pp)->key, key, SENDLIMIT_SEEN_LEN) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct sl_seen *
sl_seen_put(struct sendlimit *sl, const unsigned char *key, uint32_t day)
{
	struct sl_seen **pp = sl_seen_slot(sl, key), *e = *pp;

	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return NULL;
		memcpy(e->key, key, SENDLIMIT_SEEN_LEN);
		*pp = e;
	}
	if (day > e->day)
		e->day = day;
	return e;
}

int
sendlimit_seen_import(struct sendlimit *sl,
		      const unsigned char key[SENDLIMIT_SEEN_LEN],
		      uint32_t day)
{
	return sl_seen_put(sl, key, day) != NULL ? 0 : -1;
}

size_t
sendlimit_seen_expire(struct sendlimit *sl, time_t now,
		      void (*gone)(const unsigned char *key, void *arg),
		      void *arg)
{
	uint32_t today = (uint32_t)(now / 86400);
	size_t n = 0;

	for (size_t b = 0; b < SL_SEEN_BUCKETS; b++)
		for (struct sl_seen **pp = &sl->seen[b], *e; (e = *pp);) {
			if (e->day + SENDLIMIT_SEEN_DAYS > today) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			if (gone != NULL)
				gone(e->key, arg);
			free(e);
			n++;
		}
	return n;
}

/* --- the verdict ------------------------------------------------------ */

/* Would one more recipient break a limit? (0: none.) */
static enum sendlimit_result
sl_check_limits(const struct sl_acct *a, const struct sendlimit_limits *lim,
		bool is_new)
{
	if (lim->hour != 0 && sl_sum(a->min5, SL_MIN5) >= lim->hour)
		return SENDLIMIT_OVER_HOUR;
	if (lim->day != 0 && sl_sum(a->hour, SL_HOURS) >= lim->day)
		return SENDLIMIT_OVER_DAY;
	if (is_new && lim->new_day != 0 && a->new_day >= lim->new_day)
		return SENDLIMIT_OVER_NEW;
	return SENDLIMIT_OK;
}

/* Does a sliding hour of `count` exceed the floor, the factor times the
   baseline and twice the peak? All strictly. */
static bool
sl_is_burst(const struct sendlimit *sl, const struct sl_acct *a,
	    uint32_t count)
{
	uint64_t c = (uint64_t)count * SL_MICRO;

	return count > sl->cfg.burst_floor &&
	       c > (uint64_t)sl->cfg.burst_factor * a->base_u &&
	       c > SENDLIMIT_PEAK_FACTOR * a->peak_u;
}

static void
sl_count(struct sl_acct *a, int64_t now)
{
	a->min5[(now / 300) % SL_MIN5]++;
	a->hour[(now / 3600) % SL_HOURS]++;
	a->cur_hour++;
}

int
sendlimit_rcpt(struct sendlimit *sl, const char *account,
	       const struct sendlimit_limits *lim, const char *rcpt,
	       time_t now, struct sendlimit_verdict *v)
{
	struct sl_acct *a = sl_find(sl, account, true);
	uint32_t today = (uint32_t)(now / 86400);
	struct sl_seen *e;
	bool is_new;

	memset(v, 0, sizeof(*v));
	if (a == NULL)
		return -1;
	if (lim == NULL)
		lim = &sl->cfg.defaults;
	sl_advance(sl, a, (int64_t)now);
	sl_seen_key(sl, account, rcpt, v->seen_key);
	e = *sl_seen_slot(sl, v->seen_key);
	is_new = e == NULL || e->day + SENDLIMIT_SEEN_DAYS <= today;
	v->count = sl_sum(a->min5, SL_MIN5);
	v->baseline_micro = a->base_u;
	v->result = sl_check_limits(a, lim, is_new);
	if (v->result != SENDLIMIT_OK)
		return (int)v->result;
	if (!a->alarmed && (int64_t)now >= a->quiet_until &&
	    sl_is_burst(sl, a, v->count + 1)) {
		a->alarmed = true;
		a->since = (int64_t)now;
		a->alarm_count = v->count + 1;
		a->alarm_max = a->alarm_count; /* refuse counts no more */
		a->alarm_base_u = a->base_u;
		v->alarm_raised = true;
		sl->raised++;
	}
	if (a->alarmed && sl->cfg.action == SENDLIMIT_REFUSE) {
		v->result = SENDLIMIT_ALARMED;
		return (int)v->result;
	}
	if (sl_seen_put(sl, v->seen_key, today) == NULL)
		return -1;
	sl_count(a, (int64_t)now);
	if (is_new)
		a->new_day++;
	v->count++;
	if (a->alarmed && v->count > a->alarm_max)
		a->alarm_max = v->count;
	a->hour_alarmed = a->hour_alarmed || a->alarmed;
	v->seen_changed = e == NULL || e->day != today;
	v->seen_day = today;
	if (a->alarmed && sl->cfg.action == SENDLIMIT_HOLD)
		v->result = SENDLIMIT_OK_HOLD;
	return (int)v->result;
}

/* Take up to n from the buckets, the newest first. */
static uint32_t
sl_take(uint32_t *v, size_t size, int64_t newest, uint32_t n)
{
	uint32_t taken = 0;

	for (size_t k = 0; k < size && taken < n; k++) {
		uint32_t *b = &v[(size_t)((newest - (int64_t)k) % (int64_t)size)];
		uint32_t t = *b < n - taken ? *b : n - taken;

		*b -= t;
		taken += t;
	}
	return taken;
}

void
sendlimit_undo(struct sendlimit *sl, const char *account, uint32_t n,
	       time_t now)
{
	struct sl_acct *a = sl_find(sl, account, false);
	uint32_t t;

	if (a == NULL || n == 0)
		return;
	sl_advance(sl, a, (int64_t)now);
	sl_take(a->min5, SL_MIN5, (int64_t)now / 300, n);
	sl_take(a->hour, SL_HOURS, (int64_t)now / 3600, n);
	t = a->cur_hour < n ? a->cur_hour : n;
	a->cur_hour -= t;
}

int
sendlimit_release(struct sendlimit *sl, const char *account, time_t now)
{
	struct sl_acct *a = sl_find(sl, account, false);

	if (a == NULL || !a->alarmed)
		return -1;
	sl_advance(sl, a, (int64_t)now);
	sl_alarm_end(a);
	a->quiet_until = (int64_t)now + SENDLIMIT_RELEASE_QUIET;
	return 0;
}

int
sendlimit_discard(struct sendlimit *sl, const char *account, time_t now)
{
	struct sl_acct *a = sl_find(sl, account, false);

	if (a == NULL || !a->alarmed)
		return -1;
	sl_advance(sl, a, (int64_t)now);
	a->alarm_max = 0;
	return 0;
}

int
sendlimit_status(struct sendlimit *sl, const char *account, time_t now,
		 struct sendlimit_status *st)
{
	struct sl_acct *a = sl_find(sl, account, false);

	memset(st, 0, sizeof(*st));
	if (a == NULL)
		return -1;
	sl_advance(sl, a, (int64_t)now);
	st->count_hour = sl_sum(a->min5, SL_MIN5);
	st->count_day = sl_sum(a->hour, SL_HOURS);
	st->new_today = a->new_day;
	st->baseline_micro = a->base_u;
	st->alarmed = a->alarmed;
	st->alarm_since = (time_t)a->since;
	st->alarm_count = a->alarm_count;
	st->alarm_baseline_micro = a->alarm_base_u;
	return 0;
}

/* --- listings --------------------------------------------------------- */

static int
sl_top_cmp(const void *x, const void *y)
{
	const struct sendlimit_top *a = x, *b = y;

	if (a->count_hour != b->count_hour)
		return a->count_hour > b->count_hour ? -1 : 1;
	return strcmp(a->account, b->account);
}

size_t
sendlimit_top(struct sendlimit *sl, time_t now, struct sendlimit_top *out,
	      size_t max)
{
	struct sendlimit_top all[SENDLIMIT_TOP_MAX + 1];
	size_t n = 0;

	if (max > SENDLIMIT_TOP_MAX)
		max = SENDLIMIT_TOP_MAX;
	for (size_t b = 0; b < SL_BUCKETS; b++)
		for (struct sl_acct *a = sl->acct[b]; a != NULL; a = a->next) {
			uint32_t c;

			sl_advance(sl, a, (int64_t)now);
			if ((c = sl_sum(a->min5, SL_MIN5)) == 0)
				continue;
			/* Keep the best max + 1, sorted: insert, cut. */
			all[n++] = (struct sendlimit_top){a->name, c, a->base_u,
							  a->alarmed};
			qsort(all, n, sizeof(all[0]), sl_top_cmp);
			if (n > max)
				n = max;
		}
	memcpy(out, all, n * sizeof(all[0]));
	return n;
}

static int
sl_alarm_cmp(const void *x, const void *y)
{
	const struct sendlimit_alarm *a = x, *b = y;

	if (a->since != b->since)
		return a->since < b->since ? -1 : 1;
	return strcmp(a->account, b->account);
}

size_t
sendlimit_alarms(struct sendlimit *sl, time_t now,
		 struct sendlimit_alarm *out, size_t max)
{
	size_t n = 0;

	for (size_t b = 0; b < SL_BUCKETS && n < max; b++)
		for (struct sl_acct *a = sl->acct[b]; a != NULL && n < max;
		     a = a->next) {
			if (a->since == 0 ||
			    (!a->alarmed &&
			     (int64_t)now - a->since >= SENDLIMIT_ALARM_KEEP))
				continue;
			out[n++] = (struct sendlimit_alarm){
			    a->name, (time_t)a->since, a->alarm_count,
			    a->alarm_base_u, a->alarmed};
		}
	qsort(out, n, sizeof(*out), sl_alarm_cmp);
	return n;
}

uint64_t
sendlimit_alarms_raised(const struct sendlimit *sl)
{
	return sl->raised;
}

void
sendlimit_baseline_text(char *buf, size_t size, uint64_t micro)
{
	uint64_t hundredths = (micro + 5000) / 10000;
	int n = snprintf(buf, size, "%llu.%02llu",
			 (unsigned long long)(hundredths / 100),
			 (unsigned long long)(hundredths % 100));

	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0';
}

void
sendlimit_each(struct sendlimit *sl,
	       void (*fn)(const char *account, void *arg), void *arg)
{
	for (size_t b = 0; b < SL_BUCKETS; b++)
		for (struct sl_acct *a = sl->acct[b]; a != NULL; a = a->next)
			fn(a->name, arg);
}

/* --- records ---------------------------------------------------------- */

static unsigned char *
put_u(unsigned char *p, uint64_t v, size_t width)
{
	for (size_t i = 0; i < width; i++)
		p[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
	return p + width;
}

static const unsigned char *
get_u(const unsigned char *p, uint64_t *v, size_t width)
{
	*v = 0;
	for (size_t i = 0; i < width; i++)
		*v = *v << 8 | p[i];
	return p + width;
}

int
sendlimit_export(struct sendlimit *sl, const char *account,
		 unsigned char rec[SENDLIMIT_REC_LEN])
{
	const struct sl_acct *a = sl_find(sl, account, false);
	unsigned char *p = rec;

	if (a == NULL)
		return -1;
	*p++ = SENDLIMIT_REC_VERSION;
	*p++ = (unsigned char)((a->alarmed ? 1 : 0) |
			       (a->hour_alarmed ? 2 : 0));
	p = put_u(p, (uint64_t)a->last, 8);
	for (size_t i = 0; i < SL_MIN5; i++)
		p = put_u(p, a->min5[i], 4);
	for (size_t i = 0; i < SL_HOURS; i++)
		p = put_u(p, a->hour[i], 4);
	p = put_u(p, a->new_day, 4);
	p = put_u(p, a->new_day_no, 4);
	p = put_u(p, (uint64_t)a->hour_no, 8);
	p = put_u(p, a->cur_hour, 4);
	p = put_u(p, a->base_u, 8);
	p = put_u(p, (uint64_t)a->since, 8);
	p = put_u(p, a->alarm_count, 4);
	p = put_u(p, a->alarm_base_u, 8);
	p = put_u(p, (uint64_t)a->quiet_until, 8);
	p = put_u(p, a->active, 4);
	p = put_u(p, a->peak_u, 8);
	p = put_u(p, a->alarm_max, 4);
	return p - rec == SENDLIMIT_REC_LEN ? 0 : -1;
}

int
sendlimit_import(struct sendlimit *sl, const char *account,
		 const unsigned char *rec, size_t len)
{
	const unsigned char *p = rec + 2;
	struct sl_acct tmp = {0}, *a;
	uint64_t v[13];

	/* Version 1 (SENDLIMIT_REC_V1_LEN octets) ends before the active-hour
	   count, the peak and the alarm maximum (0 then). */
	if (!(len == SENDLIMIT_REC_LEN && rec[0] == SENDLIMIT_REC_VERSION) &&
	    !(len == SENDLIMIT_REC_V1_LEN && rec[0] == 1))
		return -1;
	if (rec[1] > (rec[0] == 1 ? 1 : 3) || account[0] == '\0')
		return -1;
	p = get_u(p, &v[0], 8);
	for (size_t i = 0; i < SL_MIN5; i++) {
		p = get_u(p, &v[1], 4);
		tmp.min5[i] = (uint32_t)v[1];
	}
	for (size_t i = 0; i < SL_HOURS; i++) {
		p = get_u(p, &v[1], 4);
		tmp.hour[i] = (uint32_t)v[1];
	}
	p = get_u(p, &v[2], 4);
	p = get_u(p, &v[3], 4);
	p = get_u(p, &v[4], 8);
	p = get_u(p, &v[5], 4);
	p = get_u(p, &v[6], 8);
	p = get_u(p, &v[7], 8);
	p = get_u(p, &v[8], 4);
	p = get_u(p, &v[9], 8);
	p = get_u(p, &v[10], 8);
	v[11] = v[12] = v[1] = 0;
	if (len == SENDLIMIT_REC_LEN) {
		p = get_u(p, &v[11], 4);
		p = get_u(p, &v[12], 8);
		get_u(p, &v[1], 4);
	} else if (v[6] > 0) {
		v[11] = 1; /* an old average counts as one active hour */
	}
	/* Times are unix seconds of this era: refuse what is not. */
	if (v[0] > INT32_MAX * 4ull || v[4] > INT32_MAX * 4ull / 3600 ||
	    v[7] > INT32_MAX * 4ull || v[10] > INT32_MAX * 4ull ||
	    v[11] > SENDLIMIT_EWMA_HOURS)
		return -1;
	if ((a = sl_find(sl, account, true)) == NULL)
		return -1;
	memcpy(a->min5, tmp.min5, sizeof(a->min5));
	memcpy(a->hour, tmp.hour, sizeof(a->hour));
	a->alarmed = (rec[1] & 1) != 0;
	a->hour_alarmed = (rec[1] & 2) != 0;
	a->last = (int64_t)v[0];
	a->new_day = (uint32_t)v[2];
	a->new_day_no = (uint32_t)v[3];
	a->hour_no = (int64_t)v[4];
	a->cur_hour = (uint32_t)v[5];
	a->base_u = v[6];
	a->since = (int64_t)v[7];
	a->alarm_count = (uint32_t)v[8];
	a->alarm_base_u = v[9];
	a->quiet_until = (int64_t)v[10];
	a->active = (uint32_t)v[11];
	a->peak_u = v[12];
	a->alarm_max = (uint32_t)v[1];
	return 0;
}

/* --- life ------------------------------------------------------------- */

struct sendlimit *
sendlimit_new(const struct sendlimit_config *cfg,
	      const unsigned char key[SENDLIMIT_KEY_LEN])
{
	struct sendlimit *sl = calloc(1, sizeof(*sl));

	if (sl == NULL)
		return NULL;
	sl->seen = calloc(SL_SEEN_BUCKETS, sizeof(*sl->seen));
	if (sl->seen == NULL) {
		free(sl);
		return NULL;
	}
	sl->cfg = *cfg;
	memcpy(sl->key, key, SENDLIMIT_KEY_LEN);
	return sl;
}

void
sendlimit_set_config(struct sendlimit *sl, const struct sendlimit_config *cfg)
{
	sl->cfg = *cfg;
}

void
sendlimit_free(struct sendlimit **slp)
{
	struct sendlimit *sl = *slp;

	if (sl == NULL)
		return;
	*slp = NULL;
	for (size_t b = 0; b < SL_BUCKETS; b++)
		while (sl->acct[b] != NULL) {
			struct sl_acct *a = sl->acct[b];

			sl->acct[b] = a->next;
			free(a->name);
			free(a);
		}
	sendlimit_seen_expire(sl, (time_t)INT32_MAX * 4, NULL, NULL);
	free(sl->seen);
	sodium_memzero(sl->key, sizeof(sl->key));
	free(sl);
}
