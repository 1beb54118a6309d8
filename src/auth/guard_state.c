/*
 * guard_state.c - the guard's persistent state (guard_state.h,
 * docs/guard-state.md): loads the lockout from the store at start, and
 * every second hands the records that changed to the store and commits
 * them. The lockout stays pure: it exports and imports records, this file
 * does the store calls and the clocks (the guard's monotonic one inside,
 * wall-clock time in the store).
 *
 * Test seam: guard_state_start_size() takes the store's map size (the
 * guard uses GSTORE_MAP_SIZE through guard_state_start()), so that a
 * unit test can make a flush fail with "store full" without writing
 * 256 MiB (tests/unit/auth/test_guard_state.c).
 */
#include "auth/guard_state.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "auth/guard_int.h"
#include "lib/log.h"

#define SID GUARD_SID

static struct {
	struct gstore *st;
	struct lockout *lo;
	struct event *timer;
	size_t bad;
	bool put_failed; /* a write was refused: the batch may be lost */
} GS;

static const enum gstore_table gs_tables[] = {GSTORE_LOCKOUT,
					      GSTORE_KNOWN_NETS};

static int
gs_put(enum lockout_table table, const void *key, size_t klen,
       const void *rec, size_t rlen, void *arg)
{
	int rc;

	(void)arg;
	if (rec == NULL)
		rc = gstore_del(GS.st, gs_tables[table], key, klen);
	else
		rc = gstore_put(GS.st, gs_tables[table], key, klen, rec, rlen);
	GS.put_failed |= rc < 0;
	return rc;
}

void
guard_state_flush(void)
{
	const char *error;

	if (GS.st == NULL)
		return;
	GS.put_failed = false;
	lockout_export(GS.lo, guard_now(), time(NULL), gs_put, NULL);
	/* A refused write (a full batch that failed to commit drops what it
	   held, records already marked clean among them) or a failed
	   commit: everything is written again next time. */
	if (gstore_flush(GS.st, &error) < 0 || GS.put_failed)
		lockout_mark_all(GS.lo); /* logged */
}

static void
gs_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	guard_state_flush();
}

struct gs_load {
	enum lockout_table table;
	time_t now, wall;
	size_t n;
};

/* One record back into the lockout; a bad one is dropped (the store
   deletes it with the next commit). */
static int
gs_load_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct gs_load *l = arg;

	if (lockout_import(GS.lo, l->table, k, kl, v, vl, l->now, l->wall) ==
	    0)
		l->n++;
	else if (gstore_del(GS.st, gs_tables[l->table], k, kl) == 0)
		GS.bad++;
	return 0;
}

static void
gs_load(const char *dir)
{
	struct gs_load keys = {LOCKOUT_TABLE_KEYS, guard_now(), time(NULL), 0};
	struct gs_load known = {LOCKOUT_TABLE_KNOWN, keys.now, keys.wall, 0};
	char esc[4096 * 4 + 8];
	const char *error;

	if (gstore_each(GS.st, GSTORE_LOCKOUT, gs_load_cb, &keys) < 0 ||
	    gstore_each(GS.st, GSTORE_KNOWN_NETS, gs_load_cb, &known) < 0)
		log_error(SID, "guard-state-read-failed dir=%s",
			  log_escape(esc, sizeof(esc), dir, strlen(dir),
				     1000));
	if (gstore_flush(GS.st, &error) < 0)
		lockout_mark_all(GS.lo);
	log_info(SID, "guard-state-loaded dir=%s keys=%zu accounts=%zu "
		      "bad=%zu",
		 log_escape(esc, sizeof(esc), dir, strlen(dir), 1000), keys.n,
		 known.n, GS.bad);
}

int
guard_state_start(struct event_base *base, const struct config *cfg,
		  struct lockout *lo)
{
	return guard_state_start_size(base, cfg, lo, GSTORE_MAP_SIZE);
}

int
guard_state_start_size(struct event_base *base, const struct config *cfg,
		       struct lockout *lo, size_t map_size)
{
	struct timeval second = {1, 0};
	const char *error = NULL;
	char esc[4096 * 4 + 8];

	memset(&GS, 0, sizeof(GS));
	GS.lo = lo;
	if (cfg->guard_state == NULL)
		return -1;
	if (gstore_open_size(cfg->guard_state, map_size, &GS.st, &error) <
	    0) {
		log_error(SID, "guard-state-unavailable dir=%s error=\"%s\" "
			       "effect=\"locks and failures are not kept "
			       "across a restart\"",
			  log_escape(esc, sizeof(esc), cfg->guard_state,
				     strlen(cfg->guard_state), 1000),
			  error);
		return -1;
	}
	gs_load(cfg->guard_state);
	GS.timer = event_new(base, -1, EV_PERSIST, gs_timer_cb, NULL);
	if (GS.timer == NULL || event_add(GS.timer, &second) < 0) {
		log_error(SID, "guard-state-unavailable error=\"timer\"");
		guard_state_stop();
		return -1;
	}
	return 0;
}

void
guard_state_stop(void)
{
	guard_state_flush();
	if (GS.timer != NULL)
		event_free(GS.timer);
	GS.timer = NULL;
	gstore_close(&GS.st);
}

struct gstore *
guard_state_store(void)
{
	return GS.st;
}
