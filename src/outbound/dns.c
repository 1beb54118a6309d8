/*
 * dns.c - route lookups through libunbound on the event loop. See dns.h.
 *
 * Each lookup is a dns_req holding up to 1 + 2 * MX_HOSTS_MAX queries in
 * flight (the MX query, then AAAA and A for each host). `pending` counts
 * them plus one while queries are being started, because libunbound may
 * answer from its cache before ub_resolve_event() returns.
 */
#include "outbound/dns.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unbound-event.h>
#include <unbound.h>

#define DNS_QUERIES (1 + 2 * MX_HOSTS_MAX)

struct dns {
	struct ub_ctx *ub;
	char *self;
	struct dns_req *reqs; /* in flight, to cancel them all */
};

struct dns_query {
	struct dns_req *req;
	int async_id;
	bool in_flight;
	size_t host; /* address queries: which host */
	int family;  /* 0: the MX query */
};

struct dns_hostq {
	size_t n6, n4;
	struct dns_addr v6[DNS_ADDRS_MAX], v4[DNS_ADDRS_MAX];
	bool secure6, secure4;
};

struct dns_req {
	struct dns *dns;
	/* A one-question lookup (not a route): TLSA or TXT. */
	dns_tlsa_cb *tlsa_cb;
	struct dns_tlsa_answer *tlsa;
	dns_txt_cb *txt_cb;
	struct dns_txt_answer *txt;
	struct dns_req *next, **pprev;
	dns_route_cb *cb;
	void *arg;
	char domain[DNS_NAME_MAX + 1];
	struct dns_route route;
	struct mx_host hosts[MX_HOSTS_MAX];
	struct dns_hostq hq[MX_HOSTS_MAX];
	size_t n_hosts;
	int pending;
	bool temp_addr;	     /* an address lookup failed for now */
	char temp_why[300];
	struct dns_query q[DNS_QUERIES];
};

/* Texts for logs and DSNs: cut when too long (names are <= 255). */
static void dns_textf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
dns_textf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static uint32_t
dns_random(void *ctx)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint32_t)random();
	return v;
}

/* Set a host name-free loopback option when a forwarder is local: the
   resolver otherwise refuses to query 127.0.0.0/8 and ::1. */
static bool
dns_is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "::1", 3) == 0;
}

int
dns_new(struct event_base *base, const struct dns_params *p,
	struct dns **dns_r, const char **error_r)
{
	struct dns *d = calloc(1, sizeof(*d));
	int rc = 0;

	if (d == NULL || (d->ub = ub_ctx_create_event(base)) == NULL) {
		free(d);
		*error_r = "cannot create the resolver";
		return -1;
	}
	d->self = p->self != NULL ? strdup(p->self) : NULL;
	for (size_t i = 0; i < p->n_resolvers && rc == 0; i++) {
		rc = ub_ctx_set_fwd(d->ub, p->resolvers[i]);
		if (rc == 0 && dns_is_loopback(p->resolvers[i]))
			rc = ub_ctx_set_option(d->ub, "do-not-query-localhost:",
					       "no");
	}
	if (rc == 0 && p->n_resolvers == 0)
		rc = ub_ctx_resolvconf(d->ub, NULL);
	if (rc == 0 && p->trust_anchor != NULL)
		rc = ub_ctx_add_ta_file(d->ub, p->trust_anchor);
	if (rc != 0) {
		*error_r = ub_strerror(rc);
		dns_free(&d);
		return -1;
	}
	*dns_r = d;
	return 0;
}

static void
dns_req_unlink(struct dns_req *r)
{
	if (r->pprev == NULL)
		return;
	*r->pprev = r->next;
	if (r->next != NULL)
		r->next->pprev = r->pprev;
	r->pprev = NULL;
}

/* Stop every query of `r` still in flight and free it. */
static void
dns_req_free(struct dns_req *r)
{
	for (size_t i = 0; i < DNS_QUERIES; i++)
		if (r->q[i].in_flight && r->q[i].async_id != 0)
			ub_cancel(r->dns->ub, r->q[i].async_id);
	dns_req_unlink(r);
	free(r->tlsa);
	free(r->txt);
	free(r);
}

void
dns_free(struct dns **dp)
{
	struct dns *d = *dp;

	if (d == NULL)
		return;
	while (d->reqs != NULL)
		dns_req_free(d->reqs);
	if (d->ub != NULL)
		ub_ctx_delete(d->ub);
	free(d->self);
	free(d);
	*dp = NULL;
}

void
dns_cancel(struct dns_req **rp)
{
	if (*rp == NULL)
		return;
	dns_req_free(*rp);
	*rp = NULL;
}

static void
dns_fail(struct dns_req *r, enum dns_status status, const char *dsn,
	 const char *text)
{
	if (r->route.status != DNS_OK)
		return; /* the first reason stands */
	r->route.status = status;
	dns_textf(r->route.dsn, sizeof(r->route.dsn), "%s", dsn);
	dns_textf(r->route.text, sizeof(r->route.text), "%s", text);
}

/* Every host with an address, IPv6 first; or why there is none. */
static void
dns_assemble(struct dns_req *r)
{
	struct dns_route *rt = &r->route;
	char text[sizeof(rt->text)];

	for (size_t i = 0; i < r->n_hosts; i++) {
		struct dns_hostq *h = &r->hq[i];
		struct dns_host *o = &rt->hosts[rt->n_hosts];

		if (h->n6 + h->n4 == 0)
			continue;
		memcpy(o->name, r->hosts[i].name, sizeof(o->name));
		o->pref = r->hosts[i].pref;
		o->addr_sec = h->secure6 && h->secure4 ? DNS_SECURE
						       : DNS_INSECURE;
		memcpy(o->addrs, h->v6, h->n6 * sizeof(h->v6[0]));
		memcpy(o->addrs + h->n6, h->v4, h->n4 * sizeof(h->v4[0]));
		o->n_addrs = h->n6 + h->n4;
		rt->n_hosts++;
	}
	if (rt->n_hosts > 0 || rt->status != DNS_OK)
		return;
	if (r->temp_addr) {
		dns_textf(text, sizeof(text), "cannot find the address of %s "
			 "for %s: %s", r->hosts[0].name, r->domain,
			 r->temp_why);
		dns_fail(r, DNS_TEMP, "4.4.3", text);
		return;
	}
	if (r->route.is_implicit)
		dns_textf(text, sizeof(text), "%s has no IPv6 or IPv4 address",
			  r->domain);
	else
		dns_textf(text, sizeof(text), "the mail servers of %s have no "
			  "IPv6 or IPv4 address", r->domain);
	dns_fail(r, DNS_PERM, "5.4.4", text);
}

/* The last query answered: report and free. */
static void
dns_maybe_done(struct dns_req *r)
{
	if (--r->pending > 0)
		return;
	dns_assemble(r);
	dns_req_unlink(r);
	r->cb(r->arg, &r->route);
	free(r);
}

static void dns_answer(void *data, int rcode, void *packet, int len, int sec,
		       char *why_bogus, int ratelimited);

static void
dns_start(struct dns_req *r, size_t slot, const char *name, int type)
{
	struct dns_query *q = &r->q[slot];
	int rc;

	q->req = r;
	q->in_flight = true;
	r->pending++;
	rc = ub_resolve_event(r->dns->ub, name, type, DNS_CLASS_IN, q,
			      dns_answer, &q->async_id);
	if (rc != 0) {
		char text[200];

		dns_textf(text, sizeof(text), "resolver: %s", ub_strerror(rc));
		q->in_flight = false;
		r->temp_addr = true;
		dns_textf(r->temp_why, sizeof(r->temp_why), "%s", text);
		if (q->family == 0)
			dns_fail(r, DNS_TEMP, "4.4.3", text);
		r->pending--;
	}
}

/* AAAA and A for every host. */
static void
dns_start_addrs(struct dns_req *r)
{
	for (size_t i = 0; i < r->n_hosts; i++) {
		struct dns_query *q6 = &r->q[1 + 2 * i], *q4 = q6 + 1;

		q6->host = q4->host = i;
		q6->family = AF_INET6;
		q4->family = AF_INET;
		r->hq[i].secure6 = r->hq[i].secure4 = false;
		dns_start(r, 1 + 2 * i, r->hosts[i].name, DNS_TYPE_AAAA);
		dns_start(r, 2 + 2 * i, r->hosts[i].name, DNS_TYPE_A);
	}
}

/* The MX answer: choose the hosts (RFC 5321 5.1, RFC 7505). */
static void
dns_mx_answer(struct dns_req *r, const uint8_t *pkt, size_t len, int sec)
{
	struct dns_mx mx[DNS_WIRE_RR_MAX];
	size_t n;
	char text[300];

	if (dns_wire_mx(pkt, len, mx, DNS_WIRE_RR_MAX, &n) < 0) {
		dns_textf(text, sizeof(text), "malformed MX answer for %s",
			 r->domain);
		dns_fail(r, DNS_TEMP, "4.4.3", text);
		return;
	}
	r->route.mx_sec = sec == 2 ? DNS_SECURE : DNS_INSECURE;
	if (n == 0) { /* RFC 5321 5.1: the domain is its own MX */
		r->route.is_implicit = true;
		memcpy(r->hosts[0].name, r->domain, sizeof(r->domain));
		r->hosts[0].pref = 0;
		r->n_hosts = 1;
		dns_start_addrs(r);
		return;
	}
	switch (mx_select(mx, n, r->dns->self, dns_random, NULL, r->hosts,
			  &r->n_hosts)) {
	case MX_NULL:
		dns_textf(text, sizeof(text), "domain %s does not accept mail "
			 "(null MX)", r->domain);
		dns_fail(r, DNS_PERM, "5.1.10", text);
		return;
	case MX_LOOP:
		dns_textf(text, sizeof(text), "mail for %s loops back to "
			 "myself", r->domain);
		dns_fail(r, DNS_PERM, "5.4.6", text);
		return;
	case MX_OK:
		break;
	}
	dns_start_addrs(r);
}

static void
dns_addr_answer(struct dns_req *r, const struct dns_query *q,
		const uint8_t *pkt, size_t len, int sec)
{
	struct dns_hostq *h = &r->hq[q->host];
	size_t n;
	int rc = q->family == AF_INET6
		     ? dns_wire_addrs(pkt, len, AF_INET6, h->v6, DNS_ADDRS_MAX,
				      &n)
		     : dns_wire_addrs(pkt, len, AF_INET, h->v4, DNS_ADDRS_MAX,
				      &n);

	if (rc < 0) {
		r->temp_addr = true;
		dns_textf(r->temp_why, sizeof(r->temp_why), "malformed answer");
		return;
	}
	if (n > DNS_ADDRS_MAX)
		n = DNS_ADDRS_MAX;
	if (q->family == AF_INET6) {
		h->n6 = n;
		h->secure6 = sec == 2;
	} else {
		h->n4 = n;
		h->secure4 = sec == 2;
	}
}

/* A failed query: NXDOMAIN of the domain is final, the rest temporary. */
static void
dns_query_failed(struct dns_req *r, const struct dns_query *q, int rcode,
		 int sec, const char *why_bogus)
{
	char text[300];

	if (sec == 1)
		dns_textf(text, sizeof(text), "DNSSEC validation failed for %s: "
			 "%s", q->family == 0 ? r->domain
					      : r->hosts[q->host].name,
			 why_bogus != NULL ? why_bogus : "bogus");
	else
		dns_textf(text, sizeof(text), "lookup of %s failed: rcode %d",
			 q->family == 0 ? r->domain : r->hosts[q->host].name,
			 rcode);
	if (q->family == 0 && rcode == DNS_RCODE_NXDOMAIN && sec != 1) {
		dns_textf(text, sizeof(text), "domain %s not found", r->domain);
		dns_fail(r, DNS_PERM, "5.1.2", text);
	} else if (q->family == 0) {
		dns_fail(r, DNS_TEMP, sec == 1 ? "4.7.5" : "4.4.3", text);
	} else if (rcode != DNS_RCODE_NXDOMAIN || sec == 1) {
		r->temp_addr = true;
		dns_textf(r->temp_why, sizeof(r->temp_why), "%s", text);
	}
}

/* The answer to the caller; then the request is gone. */
static void
dns_one_deliver(struct dns_req *r, enum dns_status status, enum dns_sec sec,
		size_t n, const char *text)
{
	dns_req_unlink(r);
	if (r->tlsa != NULL) {
		r->tlsa->status = status;
		r->tlsa->sec = sec;
		r->tlsa->n = n;
		dns_textf(r->tlsa->text, sizeof(r->tlsa->text), "%s", text);
		r->tlsa_cb(r->arg, r->tlsa);
	} else {
		r->txt->status = status;
		r->txt->n = n;
		dns_textf(r->txt->text, sizeof(r->txt->text), "%s", text);
		r->txt_cb(r->arg, r->txt);
	}
	dns_req_free(r);
}

/* A one-question lookup's answer (TLSA, TXT): final, whatever it says.
   A bogus answer or a failure is DNS_TEMP; NXDOMAIN or NODATA is DNS_OK
   with no records. */
static void
dns_one_answer(struct dns_req *r, int rcode, const uint8_t *pkt, int len,
	       int sec, const char *why_bogus)
{
	const char *what = r->tlsa != NULL ? "TLSA" : "TXT";
	enum dns_status status = DNS_OK;
	char text[300] = "";
	size_t n = 0;
	int rc = 0;

	if (sec == 1) {
		status = DNS_TEMP;
		dns_textf(text, sizeof(text), "%s of %s is bogus: %s", what,
			  r->domain, why_bogus != NULL ? why_bogus : "?");
	} else if (rcode == 0 && pkt != NULL && len > 0) {
		rcode = dns_wire_rcode(pkt, (size_t)len);
		if (rcode == 0)
			rc = r->tlsa != NULL
				 ? dns_wire_tlsa(pkt, (size_t)len, r->tlsa->recs,
						 DNS_TLSA_MAX, &n)
				 : dns_wire_txt(pkt, (size_t)len, r->txt->recs,
						DNS_TXT_RECS, &n);
		if (rc < 0)
			rcode = DNS_RCODE_SERVFAIL;
	}
	if (sec != 1 && rcode != 0 && rcode != DNS_RCODE_NXDOMAIN) {
		status = DNS_TEMP;
		dns_textf(text, sizeof(text), "%s lookup of %s failed: rcode %d",
			  what, r->domain, rcode);
	}
	dns_one_deliver(r, status, sec == 2 ? DNS_SECURE : DNS_INSECURE,
			status == DNS_OK ? n : 0, text);
}

static void
dns_answer(void *data, int rcode, void *packet, int len, int sec,
	   char *why_bogus, int ratelimited)
{
	struct dns_query *q = data;
	struct dns_req *r = q->req;
	const uint8_t *pkt = packet;

	q->in_flight = false;
	if (r->tlsa != NULL || r->txt != NULL) {
		dns_one_answer(r, rcode, packet, len, sec, why_bogus);
		return;
	}
	if (rcode == 0 && packet != NULL && len > 0 && sec != 1)
		rcode = dns_wire_rcode(pkt, (size_t)len);
	if (rcode != 0 || packet == NULL || len <= 0 || sec == 1)
		dns_query_failed(r, q, rcode != 0 ? rcode : DNS_RCODE_SERVFAIL,
				 sec, why_bogus);
	else if (q->family == 0)
		dns_mx_answer(r, pkt, (size_t)len, sec);
	else
		dns_addr_answer(r, q, pkt, (size_t)len, sec);
	dns_maybe_done(r);
}

/* A new lookup of `name` (the name its texts give), in d->reqs. */
static struct dns_req *
dns_req_new(struct dns *d, const char *name, void *arg)
{
	size_t n = strnlen(name, DNS_NAME_MAX + 1);
	struct dns_req *r;

	if (n == 0 || n > DNS_NAME_MAX || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->dns = d;
	r->arg = arg;
	memcpy(r->domain, name, n + 1);
	r->next = d->reqs;
	if (d->reqs != NULL)
		d->reqs->pprev = &r->next;
	d->reqs = r;
	r->pprev = &d->reqs;
	return r;
}

int
dns_route(struct dns *d, const char *domain, bool no_mx, dns_route_cb *cb,
	  void *arg, struct dns_req **req_r)
{
	struct dns_req *r = dns_req_new(d, domain, arg);

	*req_r = r;
	if (r == NULL)
		return -1;
	r->cb = cb;
	r->pending = 1; /* held while starting */
	if (no_mx) {
		r->route.is_implicit = true;
		memcpy(r->hosts[0].name, r->domain, sizeof(r->domain));
		r->n_hosts = 1;
		dns_start_addrs(r);
	} else {
		dns_start(r, 0, domain, DNS_TYPE_MX);
	}
	dns_maybe_done(r); /* (answers from the cache may finish it now) */
	return 0;
}

/* Start a one-question lookup: `qname` TLSA (answer to tlsa_cb) or TXT
   (to txt_cb); `label` names it in texts. */
static int
dns_one(struct dns *d, const char *qname, const char *label,
	dns_tlsa_cb *tlsa_cb, dns_txt_cb *txt_cb, void *arg,
	struct dns_req **req_r)
{
	struct dns_req *r = dns_req_new(d, label, arg);

	*req_r = NULL;
	if (r == NULL)
		return -1;
	if (tlsa_cb != NULL)
		r->tlsa = calloc(1, sizeof(*r->tlsa));
	else
		r->txt = calloc(1, sizeof(*r->txt));
	if (r->tlsa == NULL && r->txt == NULL) {
		dns_req_free(r);
		return -1;
	}
	r->tlsa_cb = tlsa_cb;
	r->txt_cb = txt_cb;
	*req_r = r;
	r->q[0].req = r;
	r->q[0].in_flight = true;
	if (ub_resolve_event(d->ub, qname,
			     tlsa_cb != NULL ? DNS_TYPE_TLSA : DNS_TYPE_TXT,
			     DNS_CLASS_IN, &r->q[0], dns_answer,
			     &r->q[0].async_id) != 0) {
		/* (the callback was not called) */
		r->q[0].in_flight = false;
		dns_one_answer(r, DNS_RCODE_SERVFAIL, NULL, 0, 0, NULL);
	}
	return 0;
}

int
dns_tlsa(struct dns *d, const char *host, unsigned port, dns_tlsa_cb *cb,
	 void *arg, struct dns_req **req_r)
{
	char name[DNS_NAME_MAX + 20];
	int n = snprintf(name, sizeof(name), "_%u._tcp.%s", port, host);

	*req_r = NULL;
	if (n <= 0 || (size_t)n > DNS_NAME_MAX)
		return -1;
	return dns_one(d, name, host, cb, NULL, arg, req_r);
}

int
dns_txt(struct dns *d, const char *name, dns_txt_cb *cb, void *arg,
	struct dns_req **req_r)
{
	return dns_one(d, name, name, NULL, cb, arg, req_r);
}
