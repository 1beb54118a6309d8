/*
 * notice.h - the notice of a send-burst alarm to the postmaster
 * (docs/sendlimit.md): a short text message committed through the normal
 * spool path (the guard writes no Maildir), to the postmaster's mailbox,
 * by the worker the guard hands it to (a NOTICE frame); the worker
 * confirms the commit (NOTICE_DONE) and the guard forgets the notice.
 */
#ifndef POSTERN_NOTICE_H
#define POSTERN_NOTICE_H

#include <stdint.h>

#include "auth/guard.h"
#include "conf/config.h"
#include "store/spool.h"

/* What a worker writes notices with (it outlives every commit: the
   worker waits for its commits before it exits). */
struct notice_writer {
	struct spool *spool;
	const struct config *cfg;
	struct guard_client *guard;
};

/*
 * The guard_notice_cb of a worker (`arg`: its struct notice_writer):
 * commit notice `id` for `account` (its sliding hour `count`, its
 * `baseline` in hundredths of a recipient an hour), then confirm it to
 * the guard. Asynchronous; the outcome is logged. Nothing is confirmed
 * when it fails: the guard hands the notice again later.
 *
 * Test builds (meson -Dtest_hooks=true) only: while the file named by
 * $POSTERN_TEST_NOTICE_STALL exists, a handed notice is logged
 * (`test-hook notice-stalled id=N`) and left alone, as by a worker that
 * died before its commit.
 */
void notice_handed(uint32_t id, const char *account, uint32_t count,
		   uint32_t baseline, void *arg);

#endif
