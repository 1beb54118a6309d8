/*
 * guard_state.h - the guard's persistent state (docs/guard-state.md):
 * the store (gstore.h) opened at start, the lockout loaded from it, and
 * every change written back at most a second later and at shutdown.
 */
#ifndef POSTERN_GUARD_STATE_H
#define POSTERN_GUARD_STATE_H

#include <time.h>

#include "auth/gstore.h"
#include "auth/lockout.h"
#include "conf/config.h"

struct event_base;

/* Open the store in cfg->guard_state, load `lo` from it and start the
   flush timer (every second). A store that cannot be opened at all is
   logged and the guard runs without persistence: -1. */
int guard_state_start(struct event_base *base, const struct config *cfg,
		      struct lockout *lo);
/* guard_state_start() with another bound on the store (gstore_open_size;
   tests). */
int guard_state_start_size(struct event_base *base, const struct config *cfg,
			   struct lockout *lo, size_t map_size);
/* Write what changed and commit (the timer; also at shutdown). Every
   writer's batch goes in the same commit. */
void guard_state_flush(void);
/* Flush, stop the timer, close the store. */
void guard_state_stop(void);
/* The open store (NULL when none), for the guard's other state (send
   counts): write with gstore_put/gstore_del; the timer commits. */
struct gstore *guard_state_store(void);

#endif
