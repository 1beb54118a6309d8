/*
 * guard_notice.c - the postmaster notices of send-burst alarms, kept by
 * the guard until a worker confirms each one's commit (guard_int.h,
 * docs/sendlimit.md "The postmaster's notice").
 *
 * When a recipient raises the alarm, the guard keeps a pending notice
 * (the pure notices.c), writes it into its store (table GSTORE_NOTICES)
 * and commits the store at once, then hands it to the worker that asked
 * (a NOTICE frame, right behind the SEND_RES): the notice no longer
 * depends on the client's session. The worker commits the notice to the
 * spool and answers NOTICE_DONE; the guard then forgets it. A notice
 * whose worker is gone, or that is not confirmed within NOTICES_RETRY
 * seconds, is handed again (to a worker that connects, or at the next
 * look, every GN_TICK seconds), at most NOTICES_ATTEMPTS times in all,
 * each logged; then it is given up with an error line.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "auth/gstore.h"
#include "auth/guard_int.h"
#include "auth/guard_state.h"
#include "auth/notices.h"
#include "lib/log.h"

#define SID GUARD_SID
#define GN_TICK 5 /* seconds between looks at the pending notices */

static struct {
	struct notices *n;
	struct gstore *st;
	struct event *timer;
} N;

/* --- the store --------------------------------------------------------- */

static void
gn_store(const struct notice_pending *p)
{
	unsigned char key[NOTICES_KEY_LEN], rec[NOTICES_REC_MAX];
	size_t len = notices_export(p, key, rec);

	if (N.st != NULL &&
	    gstore_put(N.st, GSTORE_NOTICES, key, sizeof(key), rec, len) < 0)
		log_error(SID, "notice-state-write-failed id=%u", p->id);
}

static void
gn_forget(uint32_t id)
{
	unsigned char key[NOTICES_KEY_LEN] = {
	    (unsigned char)(id >> 24), (unsigned char)(id >> 16),
	    (unsigned char)(id >> 8), (unsigned char)id};

	if (N.st != NULL)
		gstore_del(N.st, GSTORE_NOTICES, key, sizeof(key));
	notices_remove(N.n, id);
}

struct gn_load {
	size_t n, bad;
};

static int
gn_load_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct gn_load *l = arg;

	if (notices_import(N.n, k, kl, v, vl) == 0) {
		l->n++;
		return 0;
	}
	l->bad++;
	gstore_del(N.st, GSTORE_NOTICES, k, kl);
	return 0;
}

/* --- handing ----------------------------------------------------------- */

static const char *
gn_account(char *buf, size_t size, const char *account)
{
	return log_escape(buf, size, account, strlen(account), 128);
}

static void
gn_hand(struct notice_pending *p, struct guard_peer *q)
{
	static struct guard_msg m;
	char acct[GUARD_USER_MAX * 4 + 8];

	notices_handed(p, q->serial, (int64_t)guard_now());
	gn_store(p);
	log_notice(SID,
		   "notice-handed kind=send-burst id=%u account=%s attempt=%u "
		   "of=%u worker=%u",
		   p->id, gn_account(acct, sizeof(acct), p->account),
		   p->attempts, NOTICES_ATTEMPTS, q->serial);
	memset(&m, 0, offsetof(struct guard_msg, arena));
	m.type = GUARD_MSG_NOTICE;
	m.id = p->id;
	m.user = p->account;
	m.count = p->count;
	m.baseline = p->baseline;
	guard_peer_send(q, &m);
}

/* A connected worker for a notice last handed to `holder`: another one
   when there is one (the holder did not confirm in time). */
static struct guard_peer *
gn_pick(unsigned holder)
{
	struct guard_peer *same = NULL;

	for (struct guard_peer *q = guard_g.peers; q != NULL; q = q->next) {
		if (q->bev == NULL)
			continue;
		if (q->serial != holder)
			return q;
		same = q;
	}
	return same;
}

/* Hand what is due (to `fresh`, a worker that just connected, when not
   NULL), give up what has had its attempts. */
static void
gn_walk(struct guard_peer *fresh)
{
	int64_t now = (int64_t)guard_now();
	bool changed = false;
	size_t i = 0;

	while (i < notices_count(N.n)) {
		struct notice_pending *p = notices_at(N.n, i);
		bool alive = p->holder != 0 &&
			     guard_peer_by_serial(p->holder) != NULL;
		struct guard_peer *q;
		char acct[GUARD_USER_MAX * 4 + 8];

		switch (notices_step(p, now, alive)) {
		case NOTICES_WAIT:
			break;
		case NOTICES_GIVE_UP:
			log_error(SID,
				  "notice-given-up kind=send-burst id=%u "
				  "account=%s attempts=%u",
				  p->id,
				  gn_account(acct, sizeof(acct), p->account),
				  p->attempts);
			gn_forget(p->id);
			changed = true;
			continue; /* the next one moved to i */
		case NOTICES_HAND:
			q = fresh != NULL ? fresh : gn_pick(p->holder);
			if (q != NULL) {
				gn_hand(p, q);
				changed = true;
			}
			break;
		}
		i++;
	}
	if (changed)
		guard_state_flush();
}

static void
gn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	gn_walk(NULL);
}

/* --- the guard's calls ------------------------------------------------- */

int
guard_notice_init(struct event_base *base, struct gstore *st)
{
	struct timeval tick = {GN_TICK, 0};
	struct gn_load l = {0, 0};

	N.st = st;
	N.n = notices_new();
	N.timer = event_new(base, -1, EV_PERSIST, gn_timer_cb, NULL);
	if (N.n == NULL || N.timer == NULL || event_add(N.timer, &tick) < 0)
		return -1;
	if (st == NULL)
		return 0;
	if (gstore_each(st, GSTORE_NOTICES, gn_load_cb, &l) < 0)
		log_error(SID, "notice-state-read-failed");
	if (l.n > 0 || l.bad > 0) /* a line only when there were some */
		log_info(SID, "notice-state-loaded pending=%zu bad=%zu", l.n,
			 l.bad);
	return 0;
}

void
guard_notice_raise(struct guard_peer *p, const char *account,
		   uint32_t count, uint32_t baseline)
{
	struct notice_pending *n =
	    notices_add(N.n, account, count, baseline, (int64_t)time(NULL));
	char acct[GUARD_USER_MAX * 4 + 8];

	if (n == NULL) {
		log_error(SID,
			  "notice-dropped kind=send-burst account=%s "
			  "reason=\"%u notices pending\"",
			  gn_account(acct, sizeof(acct), account),
			  (unsigned)notices_count(N.n));
		return;
	}
	gn_hand(n, p);
	/* In the store before the worker can act on it. */
	guard_state_flush();
}

bool
guard_notice_done(struct guard_peer *p, const struct guard_msg *m)
{
	char acct[GUARD_USER_MAX * 4 + 8];
	struct notice_pending *n = NULL;

	for (size_t i = 0; i < notices_count(N.n) && n == NULL; i++)
		if (notices_at(N.n, i)->id == m->id)
			n = notices_at(N.n, i);
	gn_account(acct, sizeof(acct), m->user);
	/* Only the worker that holds it now confirms it: a late answer of
	   an earlier holder (or a lie) changes nothing. */
	if (n == NULL || n->holder != p->serial) {
		log_info(SID,
			 "notice-done-ignored id=%u account=%s worker=%u "
			 "reason=%s",
			 m->id, acct, p->serial,
			 n == NULL ? "not-pending" : "not-its-holder");
		return true;
	}
	if (notices_done(N.n, m->id, m->user) != NOTICES_DONE_OK) {
		log_warning(SID,
			    "notice-done-refused id=%u account=%s worker=%u "
			    "reason=\"another account\"",
			    m->id, acct, p->serial);
		return false;
	}
	gn_forget(m->id); /* already out of the list: the store's record */
	guard_state_flush();
	log_notice(SID, "notice-confirmed kind=send-burst id=%u account=%s "
			"worker=%u",
		   m->id, acct, p->serial);
	return true;
}

void
guard_notice_peer_added(struct guard_peer *p)
{
	gn_walk(p);
}
