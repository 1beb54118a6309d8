/*
 * notice.h - the notice of a send-burst alarm to the postmaster
 * (docs/sendlimit.md): a short text message committed by the worker that
 * got the alarm through the normal spool path (the guard writes no
 * Maildir), to the postmaster's mailbox.
 */
#ifndef POSTERN_NOTICE_H
#define POSTERN_NOTICE_H

#include <stdint.h>

#include "conf/config.h"
#include "store/spool.h"

/*
 * Commit the notice for `account` (its sliding hour `count`, its
 * `baseline` in hundredths of a recipient an hour). Asynchronous; the
 * outcome is logged. 0, or -1 (logged) when it could not be started.
 */
int notice_send_burst(struct spool *sp, const struct config *cfg,
		      const char *account, uint32_t count, uint32_t baseline);

#endif
