/*
 * maildir.h - Maildir paths and delivery (https://cr.yp.to/proto/maildir.html).
 *
 * Paths are built only from validated parts (THREATS F-01): a part that
 * could leave the Maildir root is refused, never rewritten. Each delivered
 * copy is a file of its own: its trace fields, then the message.
 */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Room for the trace header of maildir_trace_header(): two fields around
   addresses of at most about 1,000 octets. */
#define MAILDIR_HEADER_MAX 2048

/*
 * The lines that head each delivered copy: "Return-Path: <sender>" (RFC
 * 5321 section 4.4; "<>" for the null sender) and "Delivered-To: rcpt",
 * each ending in CRLF, into buf; *len_r their length. -1 with EINVAL when
 * a value holds CR or LF (or the recipient is empty), EOVERFLOW when buf
 * is too small.
 */
int maildir_trace_header(const char *sender, const char *rcpt, char *buf,
			 size_t size, size_t *len_r);

/*
 * Write <dir>/tmp/<name>: `head`, then octets [0, src_len) of `src_fd`
 * (copy_file_range(2), or read/write where it cannot), fsync'd when
 * `do_fsync`. A stale tmp/<name> is replaced; a symbolic link there, or
 * as tmp/, is never followed. Nothing is left on failure. The caller makes
 * it durable and publishes it. 0 or -1 (errno).
 */
int maildir_write_tmp(const char *dir, const char *name, const char *head,
		      size_t head_len, int src_fd, uint64_t src_len,
		      bool do_fsync);

/*
 * Rename tmp/<name> to new/<name>, never replacing anything there. The
 * caller syncs new/ (spool_commit.c). Returns 0, 1 when new/<name> existed
 * already (tmp/<name> is then removed), or -1.
 */
int maildir_publish(const char *dir, const char *name);

/*
 * Has the Maildir the message `name`: new/<name>, or cur/<name>:<info>
 * (seen by a reader)? 1 yes, 0 no, -1 error.
 */
int maildir_has(const char *dir, const char *name);

/* Remove <dir>/<sub>/<name>, sub "tmp" or "new" (the undo of a failed
   commit). 0 when it is gone, -1 when it may still be there. */
int maildir_remove(const char *dir, const char *sub, const char *name);

/*
 * Recovery's delivery: unless maildir_has() finds it, write tmp/<name>
 * (fsync'd: nothing else makes the copy durable before the rename) and
 * publish it. Nothing is made durable after the rename: the caller syncs.
 * Returns 0, 1 when the Maildir had it already, or -1 (errno).
 */
int maildir_deliver(const char *dir, const char *name, const char *head,
		    size_t head_len, int src_fd, uint64_t src_len);

#endif
