/*
 * maildir.h - Maildir paths and delivery (https://cr.yp.to/proto/maildir.html).
 *
 * Paths are built only from validated parts (THREATS F-01): a part that
 * could leave the Maildir root is refused, never rewritten.
 */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>

/* Room for a name from maildir_name() with a queue id of up to 23
   octets, NUL included: 20 + 1 + 23 + 1 + 128 + 1. */
#define MAILDIR_NAME_MAX 192

/*
 * The unique file name for message `queue_id` received at `when`:
 * "<when>.<queue_id>.<host>", with '/' in the host written as "\057" and ':'
 * as "\072" (any octet outside 0x21-0x7e likewise). A host part longer
 * than 128 octets so written is cut and ends in "-" and 16 hex digits of
 * a digest of the whole host name, so every name fits NAME_MAX with room
 * for a reader's ":2,<flags>". Deterministic, so recovery can tell
 * whether a delivery happened. Returns 0 or -1 (no room).
 */
int maildir_name(long when, const char *queue_id, const char *hostname,
		 char *buf, size_t size);

/*
 * Create <dir>, <dir>/tmp, <dir>/new and <dir>/cur (mode 0700) when missing,
 * refusing any component that is a symbolic link. Returns 0 or -1 (errno).
 */
int maildir_create(const char *dir);

/*
 * Put the file `src_path` into the Maildir `dir` under `name`: hard-link it
 * as tmp/<name> (falling back to a copy when the spool is on another file
 * system), then rename it to new/<name>. Nothing is made durable here: the
 * caller syncs (spool_commit.c). Never follows a symbolic link in tmp/ or new/.
 * Returns 0, 1 when new/<name> or cur/<name>:* exists already (delivered
 * before a crash), or -1 (errno set).
 */
int maildir_deliver(const char *dir, const char *name, const char *src_path);

/*
 * maildir_deliver() for a queue id that has never been delivered (a live
 * commit, not recovery): it skips the scan of cur/, which costs
 * milliseconds in a large Maildir.
 */
int maildir_deliver_fresh(const char *dir, const char *name,
			  const char *src_path);

#endif
