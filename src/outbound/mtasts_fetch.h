/*
 * mtasts_fetch.h - MTA-STS (RFC 8461) for the queue process: the TXT
 * lookup, the policy fetch over HTTPS and the policy cache on disk, all
 * on the queue process's event loop.
 *
 * mtasts_lookup() answers "what is the policy of DOMAIN now": a cached
 * policy (file `p.DOMAIN` in the cache directory, mtasts_cache.h) is used
 * while its max_age lasts and the `_mta-sts.DOMAIN` TXT id is the same; a
 * new id, or no cached policy, fetches `https://mta-sts.DOMAIN/.well-known/
 * mta-sts.txt` (certificate checked against the given context's CAs and
 * the host name; 200 only, no redirects; text/plain; at most 64 KiB;
 * MTASTS_FETCH_SECS in all) from each address of mta-sts.DOMAIN in turn
 * until one answers. A failed fetch keeps the cached policy (RFC 8461
 * 5.1). Lookups of one domain at the same time share one TXT query and
 * one fetch.
 *
 * Every MTASTS_TICK_SECS a bounded pass over the cache directory removes
 * what has expired and refreshes (TXT, then a fetch) cached policies that
 * mtasts_refresh_check() says are due, at most MTASTS_REFRESH_MAX at
 * once (RFC 8461 3.3); a failed refresh keeps the cached policy.
 */
#ifndef POSTERN_MTASTS_FETCH_H
#define POSTERN_MTASTS_FETCH_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "outbound/dns.h"
#include "outbound/mtasts.h"

#define MTASTS_FETCH_SECS 30 /* a lookup, TXT to the policy's last octet */
#define MTASTS_ADDR_SECS 10  /* one address of the policy host, but the last */
#define MTASTS_PORT 443
#define MTASTS_TICK_SECS 60	     /* the cache sweep and refresh pass */
#define MTASTS_SWEEP_FILES 64	     /* directory entries read per pass */
#define MTASTS_REFRESH_MAX 4	     /* refreshes under way at once */
#define MTASTS_REFRESH_RETRY 3600    /* a domain's next refresh, at least */
#define MTASTS_TRIED_MAX 64	     /* refreshes remembered for that */

struct event_base;
struct mtasts;
struct mtasts_wait;

struct mtasts_result {
	const struct mtasts_policy *policy; /* NULL: no policy */
	const char *id;			    /* the policy's */
};

/* Called once, from the event loop or before mtasts_lookup() returns;
   `r` lives until it returns. */
typedef void mtasts_cb(void *arg, const struct mtasts_result *r);

/* `verify` checks the policy host's certificate (SSL_VERIFY_PEER, CAs);
   `dir_fd` is the cache directory (kept open, closed by mtasts_free). */
int mtasts_new(struct event_base *base, struct dns *dns, SSL_CTX *verify,
	       int dir_fd, unsigned port, struct mtasts **m_r);
/* Stops every lookup (no callbacks). */
void mtasts_free(struct mtasts **m);

/* *w_r is set first and cleared by nobody but the caller: it clears its
   copy in the callback. */
void mtasts_lookup(struct mtasts *m, const char *domain, mtasts_cb *cb,
		   void *arg, struct mtasts_wait **w_r);
/* Forget a lookup: its callback will not be called. */
void mtasts_cancel(struct mtasts_wait **w);

#endif
