/*
 * mtasts.h - MTA-STS (RFC 8461), the parts without I/O: the
 * `_mta-sts.DOMAIN` TXT record (3.1), the policy file (3.2), MX host
 * matching (4.1), the cache file's text and the cache file's name.
 *
 * Everything here reads hostile input: the TXT record and the policy come
 * from the recipient domain's owner (or whoever answers for it), the
 * cache file from our own disk (still checked: it is parsed again with
 * the same rules). Fuzzed by tests/fuzz/outbound/fuzz_mtasts.c.
 */
#ifndef POSTERN_MTASTS_H
#define POSTERN_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "outbound/dns_wire.h"

#define MTASTS_ID_MAX 32	      /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
#define MTASTS_MX_MAX 32	      /* mx patterns kept; more: refused */
#define MTASTS_BODY_MAX (64 * 1024)   /* RFC 8461 3.3: a policy's size */
#define MTASTS_MAX_AGE_MAX 31557600UL /* RFC 8461 3.2: about a year */
#define MTASTS_CACHE_MAX (MTASTS_BODY_MAX + 1024) /* a cache file */

enum mtasts_mode {
	MTASTS_MODE_NONE = 0,
	MTASTS_MODE_TESTING,
	MTASTS_MODE_ENFORCE,
};

struct mtasts_policy {
	enum mtasts_mode mode;
	unsigned long max_age;	     /* seconds, <= MTASTS_MAX_AGE_MAX */
	size_t n_mx;
	char mx[MTASTS_MX_MAX][DNS_NAME_MAX + 1]; /* lower case, no final
						    dot; "*.x.y" wildcards */
};

/*
 * The TXT records at `_mta-sts.DOMAIN` (each `lens[i]` octets, joined
 * strings). RFC 8461 3.1: records not beginning with `v=STSv1` are
 * ignored; exactly one must, and it must be valid, else there is no
 * policy. Writes the id (NUL-terminated) into `id` and returns 0, or -1
 * (no policy) with *error_r saying why.
 */
int mtasts_txt_parse(const char *const *recs, const size_t *lens, size_t n,
		     char id[MTASTS_ID_MAX + 1], const char **error_r);

/*
 * The policy file (RFC 8461 3.2): `key: value` lines ended by CRLF or LF;
 * version STSv1, mode and max_age required, mx required (one or more)
 * unless mode is none; unknown keys ignored; a repeated key other than
 * mx: the first counts. Returns 0, or -1 with *error_r.
 */
int mtasts_policy_parse(const char *body, size_t len,
			struct mtasts_policy *p, const char **error_r);

/* RFC 8461 4.1: does the MX host `host` match one of the policy's
   patterns? Case-insensitive; a final dot is ignored; `*.` matches
   exactly one leftmost label. */
bool mtasts_mx_match(const struct mtasts_policy *p, const char *host);

/* The mode's name: "enforce", "testing", "none". */
const char *mtasts_mode_name(enum mtasts_mode mode);

/*
 * A cached policy: the header (`postern-mta-sts 1`, `id ID`,
 * `expires UNIXTIME`, `mailed UNIXTIME`, an empty line) then the policy
 * as fetched. `mailed` is when mail last went to the domain with this
 * policy (0: not known; a file without the line, as written before it
 * existed, reads so); it decides the proactive refresh below.
 * mtasts_cache_format() writes it into buf (size > len + 128 needed)
 * and returns its length, or -1. mtasts_cache_parse() reads one back
 * (the policy parsed again) and returns 0, or -1 with *error_r.
 */
struct mtasts_cached {
	char id[MTASTS_ID_MAX + 1];
	time_t expires;	  /* fetch time + max_age */
	time_t mailed;	  /* mail last went to the domain (0: unknown) */
	size_t body_off;  /* where the policy text starts in the file */
	struct mtasts_policy policy;
};

long mtasts_cache_format(char *buf, size_t size, const char *id,
			 time_t expires, time_t mailed, const char *body,
			 size_t len);
int mtasts_cache_parse(const char *buf, size_t len, struct mtasts_cached *c,
		       const char **error_r);

/*
 * RFC 8461 3.3: "MTAs SHOULD proactively refresh cached policies before
 * they expire; a suggested refresh frequency is once per day." Is the
 * cached policy `c` to be fetched again at `now`?
 *  - MTASTS_REFRESH_NO: it has expired, or no mail went to its domain
 *    within its max_age (a domain no longer mailed is left to expire);
 *  - MTASTS_REFRESH_DUE: it was fetched a day ago or more, or half its
 *    max_age ago or more (whichever comes first);
 *  - MTASTS_REFRESH_LATER: not yet.
 */
enum mtasts_refresh {
	MTASTS_REFRESH_NO = 0,
	MTASTS_REFRESH_LATER,
	MTASTS_REFRESH_DUE,
};
#define MTASTS_REFRESH_AGE 86400 /* once a day (RFC 8461 3.3) */
enum mtasts_refresh mtasts_refresh_check(const struct mtasts_cached *c,
					 time_t now);

/*
 * The file name of `domain`'s cache entry: "p." and the domain, which
 * must be a host name (labels of [a-z0-9-] and '_', 1 to 63 octets,
 * lower case, at most 253 in all), so that the name holds no '/', is
 * never "." or "..", and two domains never share one. With `tmp`, the
 * temporary name ("t." ...). Returns 0, or -1 (refused).
 */
int mtasts_cache_name(const char *domain, bool tmp, char *buf, size_t size);

#endif
