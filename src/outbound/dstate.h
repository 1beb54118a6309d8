/*
 * dstate.h - the queue's durable delivery state: one append-only journal,
 * <spool>/queue/state, of per-recipient outcomes (docs/queue-format.md,
 * "Delivery state").
 *
 * The queue envelope (<id>.env) never changes; what happened to each of
 * its recipients is told by records in this journal, one line each:
 *
 *   sent 06553f1c02a3b70012ab005 0 1700000100 2.0.0 mx.example.net[192.0.2.1]:25 250%202.0.0%20Ok 1c0ffee5
 *
 * kind, queue id, recipient index (its `remote` line, from 0), unix time,
 * enhanced status, relay, text, and the CRC-32C of everything before the
 * last space. Records are appended in memory (dstate_add) and written with
 * one write(2) and made durable with one fdatasync(2) per batch
 * (dstate_sync): the caller syncs before anything depends on a record.
 *
 * The reader keeps only intact lines: a line that is cut, changed (the
 * CRC), or over the length limit is skipped; junk after the last intact
 * line (a torn append) is cut off before anything is appended again.
 */
#ifndef POSTERN_DSTATE_H
#define POSTERN_DSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DSTATE_FILE "state"
#define DSTATE_MAGIC "postern-queue-state 1"
#define DSTATE_LINE_MAX 4096 /* octets of a record, LF included */
#define DSTATE_ID_MAX 24     /* queue id, NUL included */
#define DSTATE_RELAY_MAX 320 /* "host[ip]:port" and NUL */
#define DSTATE_TEXT_MAX 1024 /* the reply or reason, NUL included */
#define DSTATE_RCPT_MAX 100000 /* highest recipient index */

enum dstate_kind {
	DSTATE_SENT = 0,  /* final: the server took it (2yz to the dot) */
	DSTATE_BOUNCED,	  /* final: failed, the sender was told if any */
	DSTATE_DEFERRED,  /* an attempt failed for now */
	DSTATE_WARNED,	  /* the delay notice went out (rcpt -1) */
	DSTATE_HELD,	  /* `postern queue hold` (rcpt -1) */
	DSTATE_RELEASED,  /* `postern queue release` (rcpt -1) */
	DSTATE_KIND_COUNT
};

struct dstate_rec {
	enum dstate_kind kind;
	char id[DSTATE_ID_MAX];
	int rcpt;	 /* 0.., or -1 for the whole message */
	int64_t time;	 /* unix seconds */
	char dsn[16];	 /* "5.1.1", or "" */
	char relay[DSTATE_RELAY_MAX]; /* or "" */
	char text[DSTATE_TEXT_MAX];   /* never empty */
};

/*
 * Write one record line (LF-terminated) into buf. Values are escaped as in
 * the envelope (queue-format.md: %XX for space, '%', controls and 8-bit
 * octets); empty dsn and relay are written "-". Returns the length, or -1
 * when a field is out of range or the line would not fit.
 */
int dstate_format(const struct dstate_rec *r, char *buf, size_t size);

/* Parse one line (without its LF). 0, or -1: not an intact record. */
int dstate_parse(const char *line, size_t len, struct dstate_rec *r);

const char *dstate_kind_name(enum dstate_kind kind);
/* CRC-32C (Castagnoli) of a record's text, as in the last field. */
uint32_t dstate_crc(const char *buf, size_t len);

struct dstate;

/* Open (creating, mode 0600) the journal in the queue directory. */
int dstate_open(int queue_fd, struct dstate **ds_r, const char **error_r);
/* A journal that dstate_load() refused: rename it to state.damaged.<n>
   (kept for the administrator) so that a new one can be opened. */
int dstate_set_aside(int queue_fd, const char **error_r);
void dstate_close(struct dstate **ds);

/*
 * Read the journal from the start, calling `cb` for every intact record
 * in order. Junk after the last intact record is cut off. *skipped_r
 * counts the lines that were not intact (damage; logged by the caller).
 * A file whose first line is not the magic is refused (-1).
 */
int dstate_load(struct dstate *ds,
		void (*cb)(void *ctx, const struct dstate_rec *r), void *ctx,
		unsigned *skipped_r, const char **error_r);

/* Queue a record for the next dstate_sync(). -1: a bad record. */
int dstate_add(struct dstate *ds, const struct dstate_rec *r);
/* Are records waiting for dstate_sync()? */
bool dstate_pending(const struct dstate *ds);
/*
 * Append the waiting records with one write(2) and fdatasync(2). On
 * failure the file is cut back to where it was and the records stay
 * waiting for the next call.
 */
int dstate_sync(struct dstate *ds, const char **error_r);
/* Octets in the journal (to decide when to compact). */
uint64_t dstate_size(const struct dstate *ds);

/*
 * Rewrite the journal with only the records `keep` accepts: a new file
 * (state.new) written and fsync'd, renamed over the journal, the
 * directory fsync'd. Waiting records are synced first.
 */
int dstate_compact(struct dstate *ds,
		   bool (*keep)(void *ctx, const struct dstate_rec *r),
		   void *ctx, const char **error_r);

/*
 * Seam for fault-injection tests: the calls that change the journal or
 * make it durable. The defaults are the system calls; a test may replace
 * members and must restore them.
 */
struct dstate_fs_ops {
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*renameat)(int fromfd, const char *from, int tofd,
			const char *to);
};
extern struct dstate_fs_ops dstate_fs;

#endif
