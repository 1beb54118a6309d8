/*
 * spool.h - durable acceptance of messages.
 *
 * The contract (docs/durability.md): a message is streamed into a spool file
 * while DATA arrives; at end of data it is committed (its envelope made
 * durable), delivered to every local recipient's Maildir (a copy each,
 * headed by Return-Path and Delivered-To, tmp/ then new/), and only when all of that is on disk does the caller get the
 * completion that lets it answer 250. A crash at any instant loses only
 * messages whose client never heard 250; recovery finishes committed
 * messages and removes uncommitted ones.
 *
 * Each worker process owns one spool area, <spool>/<pid>/, so that recovery
 * of a dead worker never races with a live one. The commit point of a
 * message is its record in the area's append-only journal, made durable
 * together with the data by one sync per batch (docs/durability.md). A message
 * with remote recipients is also put, in the same commit, into the outbound
 * queue <spool>/queue/ (shared: ids are unique), as <id>.msg and <id>.env
 * (docs/queue-format.md); the 250 waits for that too.
 *
 * Threads: spool_msg_* run in the event-loop thread. Commits run in the
 * spool's committer thread, in batches: one sync (syncfs or fsyncs, per
 * config) serves every message that ended together (group commit). The
 * loop learns of finished commits through spool_commit_fd() becoming
 * readable and then calls spool_commit_reap(), which runs the callbacks.
 */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/config.h"

#define SPOOL_ID_MAX 24 /* queue id length bound, NUL included */

struct spool;
struct spool_msg;

/* One recipient. A local one has its Maildir (a directory that holds, or
   will hold, tmp/ new/ cur/); a remote one (maildir NULL) goes to the
   outbound queue (docs/queue-format.md). */
struct spool_rcpt {
	const char *address; /* canonical address, for the envelope and logs */
	const char *maildir; /* absolute path of the Maildir, or NULL */
};

/* Completion of a commit: result 0 (durable, delivered to every local
   recipient and queued for the remote ones) or -1 (nothing acknowledged;
   the caller answers 451 4.3.0). */
typedef void spool_commit_cb(struct spool_msg *msg, int result, void *arg);

/*
 * Open the spool area of this process under `dir`, creating <dir>/<area>/,
 * its tmp/ and journal, and <dir>/queue (mode 0700) as needed (the area may
 * not be named "queue" or "quarantine"), and start the committer thread.
 * An area whose journal still holds unfinished messages is refused: run
 * spool_recover() on it first. `hostname` goes into Maildir file names
 * (maildir_name(): escaped, and cut to 128 octets plus a digest when
 * longer, so a name never reaches NAME_MAX).
 */
int spool_open(const char *dir, const char *area, const char *hostname,
	       enum sync_method sync, struct spool **spool_r,
	       const char **error_r);
void spool_close(struct spool **spool);

/* Begin a message: creates tmp/<id> with O_EXCL|O_NOFOLLOW, mode 0600. */
int spool_msg_begin(struct spool *sp, struct spool_msg **msg_r);
const char *spool_msg_id(const struct spool_msg *msg);
/* Append bytes. A failure is remembered: later writes are ignored and the
   commit fails (451). */
int spool_msg_write(struct spool_msg *msg, const void *buf, size_t len);
/* Bytes written so far. */
uint64_t spool_msg_size(const struct spool_msg *msg);
/*
 * Record the authenticated user (the SASL login) of the session that sent
 * the message, for the envelope (`auth` record); NULL means none. A user
 * that is empty, longer than 1024 octets, or holds CR, LF or a space makes
 * the commit fail (451), like a write error. Call before the commit.
 */
void spool_msg_set_auth(struct spool_msg *msg, const char *user);
/*
 * The send-burst alarm holds the message (docs/sendlimit.md): its queue
 * envelope says `hold send-burst` (version 3), and the queue keeps it
 * until `postern queue release`. Local recipients get it at once all the
 * same. Call before the commit.
 */
void spool_msg_set_hold(struct spool_msg *msg, bool hold);
/* Give up on a message: the file is removed, nothing is delivered. */
void spool_msg_abort(struct spool_msg **msg);

/*
 * Hand the message to the committer. The envelope is copied. `cb` runs
 * later in the loop thread from spool_commit_reap(); after it returns the
 * message is freed (its spool files are already removed or left for
 * recovery as the outcome requires).
 */
void spool_msg_commit(struct spool_msg *msg, const char *sender,
		      const struct spool_rcpt *rcpts, size_t n_rcpts,
		      spool_commit_cb *cb, void *arg);

/* A descriptor that becomes readable when completions are waiting. */
int spool_commit_fd(const struct spool *sp);
/* Run the callbacks of finished commits. */
void spool_commit_reap(struct spool *sp);
/* Commits still in flight (for a graceful shutdown). */
size_t spool_commits_pending(const struct spool *sp);

/*
 * Recover every spool area under `dir` whose name is in `areas` (or all of
 * them when areas is NULL): committed messages are delivered to every
 * recipient that does not have them yet (the Maildir name is derived from
 * the queue id, so a finished delivery is recognised and not repeated),
 * a missing or partial outbound-queue entry is (re)built - an existing
 * queue/<id>.env is never touched -, uncommitted files (theirs in queue/
 * included) are removed, a corrupt envelope is moved to
 * <dir>/quarantine/ and logged. Empty areas are removed. Returns the number
 * of messages delivered, or -1 on an operational error.
 */
int spool_recover(const char *dir, const char *const *areas,
		  const char *hostname);

#endif
