/*
 * mtasts_cache.h - the MTA-STS policy cache on disk (RFC 8461 3.3, 5.1):
 * one file per domain, `p.DOMAIN` (mtasts_cache_name, the text of
 * mtasts_cache_format), in a directory the queue process keeps open.
 * Plain file I/O on that directory's descriptor, no event loop: the
 * queue process's lookups (mtasts_fetch.c) read and write it, and its
 * periodic sweep removes what has expired.
 *
 * A file is never followed through a symbolic link (O_NOFOLLOW, and the
 * sweep looks only at regular files), and the sweep touches only names
 * this code writes: `p.` or `t.` and a host name.
 */
#ifndef POSTERN_MTASTS_CACHE_H
#define POSTERN_MTASTS_CACHE_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "outbound/mtasts.h"

enum mtasts_cache_state {
	MTASTS_CACHE_NONE = 0, /* no file, or the domain is no host name */
	MTASTS_CACHE_OK,       /* a policy whose max_age lasts */
	MTASTS_CACHE_EXPIRED,  /* its max_age is over: the file is removed */
	MTASTS_CACHE_BAD,      /* cannot be read or parsed: *error_r */
};

/*
 * Read `domain`'s cache file at time `now`. RFC 8461 5.1: a policy is
 * valid until its max_age is over; an expired one is removed then and
 * there (MTASTS_CACHE_EXPIRED). `c` is filled for MTASTS_CACHE_OK.
 */
enum mtasts_cache_state mtasts_cache_read(int dir_fd, const char *domain,
					  time_t now, struct mtasts_cached *c,
					  const char **error_r);

/* Write `domain`'s policy: temporary file `t.DOMAIN`, fsync, rename over
   `p.DOMAIN`, fsync of the directory; a reader sees the old file or the
   new one. Returns 0, or -1 with *error_r (strerror). */
int mtasts_cache_write(int dir_fd, const char *domain, const char *id,
		       time_t expires, time_t mailed, const char *body,
		       size_t len, const char **error_r);

/* Mail goes to `domain` now: its file's `mailed` becomes `now` (the file
   written again as above), when it is MTASTS_MAILED_GRAIN or more
   behind; so a busy domain's file is written at most once an hour. */
#define MTASTS_MAILED_GRAIN 3600
int mtasts_cache_mailed(int dir_fd, const char *domain, time_t now,
			const char **error_r);

/*
 * The sweep: each call reads at most `max` directory entries, going on
 * where the previous call stopped; at the end of the directory it
 * starts over at the next call. An entry is removed when it is
 *  - `p.DOMAIN`, a regular file whose policy has expired at `now`, or
 *    that does not parse and is older (mtime) than MTASTS_MAX_AGE_MAX,
 *    so that it cannot hold a live policy;
 *  - `t.DOMAIN`, a regular file: a write cut short (a write is whole
 *    within one call, so none is under way).
 * Anything else (other names, links, directories) is left alone. `cb`
 * hears of each removal (`c` NULL) and of each live policy (for the
 * refresh); `name` is the file's. Returns true when this call reached
 * the end of the directory.
 */
struct mtasts_sweep {
	DIR *dir; /* NULL: the next call starts over */
};
typedef void mtasts_sweep_cb(void *arg, const char *name,
			     const struct mtasts_cached *c);
bool mtasts_cache_sweep(int dir_fd, struct mtasts_sweep *s, time_t now,
			size_t max, mtasts_sweep_cb *cb, void *arg);
/* Close a sweep under way. */
void mtasts_sweep_end(struct mtasts_sweep *s);

#endif
