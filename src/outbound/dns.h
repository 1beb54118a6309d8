/*
 * dns.h - where mail for a domain goes: MX and address lookups through
 * libunbound on the caller's libevent loop (ub_ctx_create_event), with
 * DNSSEC validation when a trust anchor is given.
 *
 * A route lookup (RFC 5321 5.1): MX records of the domain, ordered and cut
 * to MX_HOSTS_MAX hosts (mx.h); no MX records, the domain itself (its
 * "implicit MX"); a null MX (RFC 7505), 5.1.10 at once; then every host's
 * AAAA and A records, all queries in parallel. The DNSSEC status of the
 * MX answer and of each host's addresses is kept (for DANE, RFC 7672).
 * A bogus answer (validation failed) is a temporary failure, never used.
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include "outbound/dns_wire.h"
#include "outbound/mx.h"

#define DNS_ADDRS_MAX 8 /* addresses kept per host (each family) */

struct event_base;
struct dns;
struct dns_req;

enum dns_status {
	DNS_OK = 0,
	DNS_TEMP, /* try again later: SERVFAIL, timeout, bogus */
	DNS_PERM, /* bounce: no such domain, null MX, no address */
};

enum dns_sec {
	DNS_INSECURE = 0, /* no trust anchor covers it, or unsigned */
	DNS_SECURE,	  /* validated */
};

struct dns_host {
	char name[DNS_NAME_MAX + 1];
	unsigned pref;
	enum dns_sec addr_sec; /* of its address answers (both secure) */
	size_t n_addrs;
	struct dns_addr addrs[2 * DNS_ADDRS_MAX]; /* IPv6 first, then IPv4 */
};

struct dns_route {
	enum dns_status status;
	char dsn[16];	  /* on failure: 4.4.3, 5.1.2, 5.1.10, 5.4.4, ... */
	char text[300];	  /* on failure, for logs and DSNs */
	bool is_implicit; /* no MX: the domain's own addresses */
	enum dns_sec mx_sec;
	size_t n_hosts;	  /* hosts with at least one address */
	struct dns_host hosts[MX_HOSTS_MAX];
};

/* Called once per lookup, from the event loop. `route` lives until the
   callback returns. */
typedef void dns_route_cb(void *arg, const struct dns_route *route);

struct dns_params {
	const char *const *resolvers; /* "ADDR" or "ADDR@PORT"; none: the
					 system's /etc/resolv.conf */
	size_t n_resolvers;
	const char *trust_anchor;     /* file of DS/DNSKEY records, or NULL:
					 no validation */
	const char *self;	      /* our host name: an MX loop check */
};

int dns_new(struct event_base *base, const struct dns_params *params,
	    struct dns **dns_r, const char **error_r);
/* Cancels every lookup in flight (their callbacks are not called). */
void dns_free(struct dns **dns);

/*
 * Look up the route to `domain` (MX, then addresses); with `no_mx` the
 * name is a host (a `[host]` transport or relay): its addresses only.
 * *req_r is set first; the callback may run before this returns (answers
 * from the cache). Once the callback has run the request is gone: the
 * caller clears its copy of *req_r there. Returns 0, or -1 when the
 * lookup cannot even start (no callback then).
 */
int dns_route(struct dns *dns, const char *domain, bool no_mx,
	      dns_route_cb *cb, void *arg, struct dns_req **req_r);
/* Forget a lookup in flight: its callback will not be called. */
void dns_cancel(struct dns_req **req);

/* TLSA records of a server (RFC 6698, RFC 7672 2.2). */
#define DNS_TLSA_MAX 8
struct dns_tlsa_answer {
	enum dns_status status; /* DNS_OK (records or none), DNS_TEMP */
	enum dns_sec sec;	/* the answer, or the proof there is none */
	char text[300];		/* on failure */
	size_t n;
	struct dns_tlsa recs[DNS_TLSA_MAX];
};
typedef void dns_tlsa_cb(void *arg, const struct dns_tlsa_answer *a);

/*
 * Look up _PORT._tcp.HOST TLSA. A bogus answer or a failure is DNS_TEMP
 * (RFC 7672 2.2: the server is then not used); no records (NXDOMAIN or
 * NODATA) is DNS_OK with n = 0. Same rules as dns_route() for *req_r
 * and the callback.
 */
int dns_tlsa(struct dns *dns, const char *host, unsigned port,
	     dns_tlsa_cb *cb, void *arg, struct dns_req **req_r);

/* TXT records of a name (MTA-STS, RFC 8461 3.1). */
#define DNS_TXT_RECS 8
struct dns_txt_answer {
	enum dns_status status; /* DNS_OK (records or none), DNS_TEMP */
	char text[300];		/* on failure */
	size_t n;
	struct dns_txt recs[DNS_TXT_RECS];
};
typedef void dns_txt_cb(void *arg, const struct dns_txt_answer *a);

/* Look up `name` TXT: a bogus answer or a failure is DNS_TEMP; no
   records (NXDOMAIN or NODATA) is DNS_OK with n = 0. Same rules as
   dns_route() for *req_r and the callback. */
int dns_txt(struct dns *dns, const char *name, dns_txt_cb *cb, void *arg,
	    struct dns_req **req_r);

#endif
