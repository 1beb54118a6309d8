/*
 * mtasts_fetch.c - MTA-STS lookups of the queue process: TXT, HTTPS
 * fetch (libevent's evhttp over bufferevent_openssl), the cache on disk.
 * See mtasts_fetch.h.
 *
 * One `mtasts_entry` per domain being looked up holds its waiters; it
 * lives from the first lookup until the answer (then it is freed: the
 * policy lives in its cache file, read again by the next lookup). A
 * refresh is such an entry that no mail waits for (lookups may join it).
 */
#include "outbound/mtasts_fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "outbound/mtasts_cache.h"

#define MTASTS_PATH "/.well-known/mta-sts.txt" /* RFC 8461 3.3 */

struct mtasts {
	struct event_base *base;
	struct dns *dns;
	SSL_CTX *verify;
	int dir_fd;
	unsigned port;
	struct mtasts_entry *entries;
	struct event *tick;	    /* the sweep and refresh pass */
	struct mtasts_sweep sweep;
	size_t removed, started;    /* by this pass */
	size_t refreshing;	    /* refresh entries under way */
	struct {		    /* refreshes begun lately */
		uint64_t hash;	    /* of the domain */
		time_t at;
	} tried[MTASTS_TRIED_MAX];
	size_t tried_next;
};

struct mtasts_wait {
	struct mtasts_entry *e;
	mtasts_cb *cb;
	void *arg;
	struct mtasts_wait *next, **pprev;
};

struct mtasts_entry {
	struct mtasts *m;
	struct mtasts_entry *next, **pprev;
	char domain[DNS_NAME_MAX + 1];
	char host[DNS_NAME_MAX + 1];	/* mta-sts.DOMAIN */
	struct mtasts_wait *waiters;
	bool refresh;			/* a proactive refresh */
	bool mailed;			/* a lookup for mail came */
	bool cached;			/* a policy from the cache file */
	struct mtasts_cached cache;
	char new_id[MTASTS_ID_MAX + 1]; /* of the TXT record */
	struct mtasts_policy fresh;
	bool has_fresh;			/* fetched and parsed */
	char error[300];		/* why the fetch failed */
	struct dns_addr addrs[2 * DNS_ADDRS_MAX]; /* of the policy host */
	size_t n_addrs, addr;		/* addrs[addr] is being asked */
	bool next_addr;			/* done_ev: ask the next one */
	char ip[INET6_ADDRSTRLEN];	/* addrs[addr] */
	struct dns_req *dns;
	struct evhttp_connection *evcon;
	struct event *timer;		/* the whole lookup's time */
	struct event *done_ev;		/* the answer, outside evhttp */
};

static void mtasts_finish(struct mtasts_entry *e);

/* --- the cache ------------------------------------------------------- */

/* The cached policy of e->domain, if any and not expired (an expired
   file is removed, RFC 8461 5.1). */
static void
mtasts_cache_load(struct mtasts_entry *e)
{
	const char *err = "cannot be read";

	switch (mtasts_cache_read(e->m->dir_fd, e->domain, time(NULL),
				  &e->cache, &err)) {
	case MTASTS_CACHE_OK:
		e->cached = true;
		break;
	case MTASTS_CACHE_EXPIRED:
		log_info("-", "mta-sts domain=%s cache=p.%s removed "
			      "reason=expired",
			 e->domain, e->domain);
		break;
	case MTASTS_CACHE_BAD:
		log_warning("-", "mta-sts domain=%s cache=p.%s error=\"%s\"",
			    e->domain, e->domain, err);
		break;
	case MTASTS_CACHE_NONE:
		break;
	}
}

/* The new policy on disk. `mailed`: now when mail waits for it, else
   (a refresh) the cached policy's. */
static void
mtasts_cache_store(struct mtasts_entry *e, const char *body, size_t len)
{
	time_t now = time(NULL);
	time_t mailed = e->mailed ? now : e->cached ? e->cache.mailed : 0;
	const char *err = NULL;

	if (mtasts_cache_write(e->m->dir_fd, e->domain, e->new_id,
			       now + (time_t)e->fresh.max_age, mailed, body,
			       len, &err) < 0)
		log_error("-", "mta-sts domain=%s cache error=\"%s\"",
			  e->domain, err);
}

/* --- the fetch (RFC 8461 3.3) ---------------------------------------- */

static void
mtasts_fail(struct mtasts_entry *e, const char *why)
{
	if (e->error[0] == '\0') { /* the first reason stands (cut) */
		size_t n = strnlen(why, sizeof(e->error) - 1);

		memcpy(e->error, why, n);
		e->error[n] = '\0';
	}
	event_active(e->done_ev, EV_TIMEOUT, 0);
}

/* No HTTP answer from this address (refused, unreachable, timeout, TLS
   handshake, closed): the next address is asked, while there is one and
   the lookup's time lasts (its timer ends it). */
static void
mtasts_addr_fail(struct mtasts_entry *e, const char *why)
{
	e->next_addr = e->addr + 1 < e->n_addrs;
	mtasts_fail(e, why);
}

/* Content-Type: text/plain, with or without parameters. */
static bool
mtasts_is_text_plain(const char *ct)
{
	if (ct == NULL || strncasecmp(ct, "text/plain", 10) != 0)
		return false;
	return ct[10] == '\0' || ct[10] == ';' || ct[10] == ' ' ||
	       ct[10] == '\t';
}

/* Why the connection failed: OpenSSL's reason (a certificate that does
   not verify, ...) when there is one. */
static const char *
mtasts_conn_error(struct mtasts_entry *e, const char *fallback, char *buf,
		  size_t size)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(e->evcon);
	unsigned long err = bev != NULL ? bufferevent_get_openssl_error(bev) : 0;
	int n;

	/* (library 0: libevent's own code, SSL_ERROR_SYSCALL for a refused
	   or reset connection; the fallback says it better) */
	if (err == 0 || ERR_GET_LIB(err) == 0)
		return fallback;
	n = snprintf(buf, size, "TLS: ");
	ERR_error_string_n(err, buf + n, size - (size_t)n);
	return buf;
}

static void
mtasts_http_cb(struct evhttp_request *req, void *arg)
{
	struct mtasts_entry *e = arg;
	struct evbuffer *in;
	const char *err = NULL;
	char why[300];
	size_t len;
	char *body;
	int code;

	code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (code == 0) { /* no response: the error callback said why */
		mtasts_addr_fail(e, mtasts_conn_error(e, "connection failed",
						      why, sizeof(why)));
		return;
	}
	if (code != HTTP_OK) { /* RFC 8461 3.3: no redirects either */
		snprintf(why, sizeof(why), "HTTP status %d", code);
		mtasts_fail(e, why);
		return;
	}
	if (!mtasts_is_text_plain(evhttp_find_header(
		evhttp_request_get_input_headers(req), "Content-Type"))) {
		mtasts_fail(e, "media type is not text/plain");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	if (len > MTASTS_BODY_MAX) {
		mtasts_fail(e, "policy over 64 KiB");
		return;
	}
	body = (char *)evbuffer_pullup(in, -1);
	if (mtasts_policy_parse(body, len, &e->fresh, &err) < 0) {
		mtasts_fail(e, err);
		return;
	}
	e->has_fresh = true;
	mtasts_cache_store(e, body, len);
	event_active(e->done_ev, EV_TIMEOUT, 0);
}

static void
mtasts_http_error_cb(enum evhttp_request_error error, void *arg)
{
	struct mtasts_entry *e = arg;
	char why[300];

	if (e->error[0] != '\0')
		return;
	if (error == EVREQ_HTTP_TIMEOUT)
		snprintf(e->error, sizeof(e->error), "timeout");
	else if (error == EVREQ_HTTP_DATA_TOO_LONG)
		snprintf(e->error, sizeof(e->error), "policy over 64 KiB");
	else if (error == EVREQ_HTTP_INVALID_HEADER)
		snprintf(e->error, sizeof(e->error), "malformed response");
	else
		snprintf(e->error, sizeof(e->error), "%s",
			 mtasts_conn_error(e, error == EVREQ_HTTP_EOF
						  ? "connection closed"
						  : "connection failed",
					   why, sizeof(why)));
}

/* Connect to e->addrs[e->addr] and ask for the policy. */
static int
mtasts_http_start(struct mtasts_entry *e)
{
	const struct dns_addr *addr = &e->addrs[e->addr];
	struct evhttp_request *req;
	struct evkeyvalq *h;
	struct bufferevent *bev;
	SSL *ssl = SSL_new(e->m->verify);

	if (ssl == NULL || inet_ntop(addr->family, addr->addr, e->ip,
				     sizeof(e->ip)) == NULL ||
	    SSL_set_tlsext_host_name(ssl, e->host) != 1 ||
	    SSL_set1_host(ssl, e->host) != 1) { /* RFC 8461 3.3, RFC 6125 */
		SSL_free(ssl);
		return -1;
	}
	bev = bufferevent_openssl_socket_new(
	    e->m->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	/* An address, not a name: evhttp does no lookup of its own. */
	e->evcon = evhttp_connection_base_bufferevent_new(
	    e->m->base, NULL, bev, e->ip, (uint16_t)e->m->port);
	if (e->evcon == NULL) {
		bufferevent_free(bev);
		return -1;
	}
	/* (an address that does not answer leaves time for the next; the
	   lookup's own timer bounds the whole) */
	evhttp_connection_set_timeout(e->evcon, e->addr + 1 < e->n_addrs
						    ? MTASTS_ADDR_SECS
						    : MTASTS_FETCH_SECS);
	evhttp_connection_set_max_body_size(e->evcon, MTASTS_BODY_MAX);
	evhttp_connection_set_max_headers_size(e->evcon, 16 * 1024);
	req = evhttp_request_new(mtasts_http_cb, e);
	if (req == NULL)
		return -1;
	evhttp_request_set_error_cb(req, mtasts_http_error_cb);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", e->host);
	evhttp_add_header(h, "Connection", "close");
	evhttp_add_header(h, "User-Agent", "postern");
	/* (on failure evhttp has freed the request) */
	return evhttp_make_request(e->evcon, req, EVHTTP_REQ_GET, MTASTS_PATH);
}

/* Ask e->addrs[e->addr], or, when the request cannot even start, go on
   to the next address (through done_ev). */
static void
mtasts_addr_ask(struct mtasts_entry *e)
{
	if (mtasts_http_start(e) < 0)
		mtasts_addr_fail(e, "cannot start the HTTPS request");
}

/* The policy host's addresses (IPv6 first, then IPv4, as dns_route gives
   them): each is asked in turn until one answers. */
static void
mtasts_addr_cb(void *arg, const struct dns_route *rt)
{
	struct mtasts_entry *e = arg;
	const struct dns_host *h = &rt->hosts[0];

	e->dns = NULL;
	if (rt->status != DNS_OK || rt->n_hosts == 0 || h->n_addrs == 0) {
		mtasts_fail(e, rt->text[0] != '\0' ? rt->text : "no address");
		return;
	}
	e->n_addrs = h->n_addrs < sizeof(e->addrs) / sizeof(e->addrs[0])
			 ? h->n_addrs
			 : sizeof(e->addrs) / sizeof(e->addrs[0]);
	memcpy(e->addrs, h->addrs, e->n_addrs * sizeof(e->addrs[0]));
	e->addr = 0;
	mtasts_addr_ask(e);
}

/* The address asked gave no answer: logged, and the next one asked. */
static void
mtasts_addr_next(struct mtasts_entry *e)
{
	log_info("-", "mta-sts domain=%s fetch=%s addr=%s error=\"%s\" "
		      "next=yes",
		 e->domain, e->host, e->ip, e->error);
	if (e->evcon != NULL)
		evhttp_connection_free(e->evcon);
	e->evcon = NULL;
	e->error[0] = '\0';
	e->addr++;
	mtasts_addr_ask(e);
}

/* The TXT record: same id as the cache's, nothing to fetch. */
static void
mtasts_txt_cb(void *arg, const struct dns_txt_answer *a)
{
	struct mtasts_entry *e = arg;
	const char *recs[DNS_TXT_RECS];
	size_t lens[DNS_TXT_RECS];
	const char *err = NULL;

	e->dns = NULL;
	for (size_t i = 0; i < a->n; i++) {
		recs[i] = a->recs[i].data;
		/* A record cut short cannot be read whole: only its first
		   8 octets are given, so that an STSv1 one still counts
		   (and, with no field, is invalid: no policy). */
		lens[i] = a->recs[i].truncated ? 8 : a->recs[i].len;
	}
	if (a->status != DNS_OK ||
	    mtasts_txt_parse(recs, lens, a->n, e->new_id, &err) < 0) {
		/* RFC 8461 5.1: a cached policy stays until it expires */
		if (a->n > 0 && err != NULL && !e->refresh)
			log_info("-", "mta-sts domain=%s txt error=\"%s\"",
				 e->domain, err);
		if (e->refresh) /* (said by mtasts_finish) */
			snprintf(e->error, sizeof(e->error), "TXT: %.280s",
				 a->status != DNS_OK ? a->text
				 : err != NULL	     ? err
						     : "none");
		mtasts_finish(e);
		return;
	}
	/* The same id: the cached policy stands; but a refresh fetches it
	   anew, as max_age counts from the fetch (RFC 8461 3.2). */
	if (e->cached && strcmp(e->cache.id, e->new_id) == 0 && !e->refresh) {
		mtasts_finish(e);
		return;
	}
	if (dns_route(e->m->dns, e->host, true, mtasts_addr_cb, e, &e->dns) <
	    0)
		mtasts_fail(e, "cannot look up the policy host");
}

/* --- entries --------------------------------------------------------- */

static void
mtasts_entry_unlink(struct mtasts_entry *e)
{
	if (e->pprev == NULL)
		return;
	*e->pprev = e->next;
	if (e->next != NULL)
		e->next->pprev = e->pprev;
	e->pprev = NULL;
}

static void
mtasts_entry_free(struct mtasts_entry *e)
{
	dns_cancel(&e->dns);
	if (e->evcon != NULL)
		evhttp_connection_free(e->evcon);
	if (e->timer != NULL)
		event_free(e->timer);
	if (e->done_ev != NULL)
		event_free(e->done_ev);
	mtasts_entry_unlink(e);
	if (e->refresh)
		e->m->refreshing--;
	while (e->waiters != NULL) {
		struct mtasts_wait *w = e->waiters;

		e->waiters = w->next;
		free(w);
	}
	free(e);
}

/* What the lookup found, logged. RFC 8461 3.3: a failed refresh is said
   as a warning (unless the cached policy's mode is none). */
static void
mtasts_log(const struct mtasts_entry *e)
{
	if (e->has_fresh)
		log_info("-", "mta-sts domain=%s id=%s mode=%s max_age=%lu "
			      "policy=%s",
			 e->domain, e->new_id, mtasts_mode_name(e->fresh.mode),
			 e->fresh.max_age, e->refresh ? "refreshed" : "fetched");
	else if (e->refresh && e->cache.policy.mode != MTASTS_MODE_NONE)
		log_warning("-", "mta-sts domain=%s refresh=%s error=\"%s\" "
				 "policy=cached id=%s",
			    e->domain, e->host, e->error, e->cache.id);
	else if (e->refresh)
		log_info("-", "mta-sts domain=%s refresh=%s error=\"%s\" "
			      "policy=cached id=%s",
			 e->domain, e->host, e->error, e->cache.id);
	else if (e->error[0] != '\0')
		log_info("-", "mta-sts domain=%s fetch=%s error=\"%s\"%s",
			 e->domain, e->host, e->error,
			 e->cached ? " policy=cached" : " policy=none");
}

/* The answer to every waiter: fetched, else cached, else none. */
static void
mtasts_finish(struct mtasts_entry *e)
{
	struct mtasts_result r = {NULL, NULL};
	const char *err = NULL;

	mtasts_log(e);
	if (e->has_fresh) {
		r.policy = &e->fresh;
		r.id = e->new_id;
	} else if (e->cached) {
		r.policy = &e->cache.policy;
		r.id = e->cache.id;
		/* Mail goes with it: that keeps it refreshed (mailed). */
		if (e->mailed &&
		    mtasts_cache_mailed(e->m->dir_fd, e->domain, time(NULL),
					&err) < 0)
			log_error("-", "mta-sts domain=%s cache error=\"%s\"",
				  e->domain, err);
	}
	/* Out of the domain's list first: a callback may look it up anew. */
	mtasts_entry_unlink(e);
	while (e->waiters != NULL) {
		struct mtasts_wait *w = e->waiters;

		e->waiters = w->next;
		if (e->waiters != NULL)
			e->waiters->pprev = &e->waiters;
		w->cb(w->arg, &r);
		free(w);
	}
	mtasts_entry_free(e);
}

static void
mtasts_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mtasts_entry *e = arg;

	(void)fd;
	(void)what;
	if (e->next_addr) {
		e->next_addr = false;
		mtasts_addr_next(e);
		return;
	}
	mtasts_finish(e);
}

static void
mtasts_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mtasts_entry *e = arg;

	(void)fd;
	(void)what;
	dns_cancel(&e->dns);
	e->next_addr = false;
	mtasts_fail(e, "timeout");
}

static struct mtasts_entry *
mtasts_entry_new(struct mtasts *m, const char *domain)
{
	struct mtasts_entry *e = calloc(1, sizeof(*e));
	struct timeval tv = {MTASTS_FETCH_SECS, 0};
	int n;

	if (e == NULL)
		return NULL;
	e->m = m;
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	n = snprintf(e->host, sizeof(e->host), "mta-sts.%s", domain);
	e->timer = evtimer_new(m->base, mtasts_timer_cb, e);
	e->done_ev = event_new(m->base, -1, 0, mtasts_done_cb, e);
	if (n < 0 || (size_t)n >= sizeof(e->host) || e->timer == NULL ||
	    e->done_ev == NULL) {
		mtasts_entry_free(e);
		return NULL;
	}
	evtimer_add(e->timer, &tv);
	e->next = m->entries;
	if (m->entries != NULL)
		m->entries->pprev = &e->next;
	m->entries = e;
	e->pprev = &m->entries;
	return e;
}

static struct mtasts_entry *
mtasts_entry_find(struct mtasts *m, const char *domain)
{
	struct mtasts_entry *e;

	for (e = m->entries; e != NULL; e = e->next)
		if (strcmp(e->domain, domain) == 0)
			break;
	return e;
}

/* Ask for the TXT record, the first step of a lookup or a refresh. */
static void
mtasts_entry_start(struct mtasts_entry *e)
{
	char txt[DNS_NAME_MAX + 16];
	int n = snprintf(txt, sizeof(txt), "_mta-sts.%s", e->domain);

	if (n < 0 || (size_t)n > DNS_NAME_MAX ||
	    dns_txt(e->m->dns, txt, mtasts_txt_cb, e, &e->dns) < 0) {
		snprintf(e->error, sizeof(e->error), "cannot look up %s", txt);
		mtasts_finish(e);
	}
}

/* --- the sweep and the refresh (RFC 8461 3.3, 5.1) -------------------- */

static uint64_t
mtasts_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Was a refresh of `domain` begun less than MTASTS_REFRESH_RETRY ago?
   (Else it is noted as begun now.) A failing policy host is asked once
   in that time, not at every pass. */
static bool
mtasts_tried(struct mtasts *m, const char *domain, time_t now)
{
	uint64_t h = mtasts_hash(domain);

	for (size_t i = 0; i < MTASTS_TRIED_MAX; i++)
		if (m->tried[i].hash == h &&
		    now - m->tried[i].at < MTASTS_REFRESH_RETRY)
			return true;
	m->tried[m->tried_next].hash = h;
	m->tried[m->tried_next].at = now;
	m->tried_next = (m->tried_next + 1) % MTASTS_TRIED_MAX;
	return false;
}

/* The sweep's news: a removed file, or a live policy, refreshed when it
   is due and nothing else looks it up now. */
static void
mtasts_swept(void *arg, const char *name, const struct mtasts_cached *c)
{
	struct mtasts *m = arg;
	const char *domain = name + 2;
	struct mtasts_entry *e;
	time_t now = time(NULL);

	if (c == NULL) {
		log_info("-", "mta-sts cache=%s removed reason=%s", name,
			 name[0] == 't' ? "unfinished" : "expired");
		m->removed++;
		return;
	}
	if (mtasts_refresh_check(c, now) != MTASTS_REFRESH_DUE ||
	    m->refreshing >= MTASTS_REFRESH_MAX ||
	    mtasts_entry_find(m, domain) != NULL ||
	    mtasts_tried(m, domain, now) ||
	    (e = mtasts_entry_new(m, domain)) == NULL)
		return;
	e->refresh = true;
	m->refreshing++;
	m->started++;
	e->cached = true;
	e->cache = *c;
	mtasts_entry_start(e);
}

static void
mtasts_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mtasts *m = arg;

	(void)fd;
	(void)what;
	m->removed = m->started = 0;
	(void)mtasts_cache_sweep(m->dir_fd, &m->sweep, time(NULL),
				 MTASTS_SWEEP_FILES, mtasts_swept, m);
	if (m->removed > 0 || m->started > 0)
		log_info("-", "mta-sts cache pass removed=%zu refreshing=%zu",
			 m->removed, m->started);
}

/* The pass's period: MTASTS_TICK_SECS; test builds only may set it
   (seconds, 0: no pass) with $POSTERN_TEST_MTASTS_TICK. */
static long
mtasts_tick_secs(void)
{
#ifdef POSTERN_TEST_HOOKS
	const char *v = getenv("POSTERN_TEST_MTASTS_TICK");

	if (v != NULL && *v >= '0' && *v <= '9') {
		long secs = strtol(v, NULL, 10);

		log_notice("-", "mta-sts test-hook tick=%ld", secs);
		return secs;
	}
#endif
	return MTASTS_TICK_SECS;
}

/* --- the interface ---------------------------------------------------- */

int
mtasts_new(struct event_base *base, struct dns *dns, SSL_CTX *verify,
	   int dir_fd, unsigned port, struct mtasts **m_r)
{
	struct mtasts *m = calloc(1, sizeof(*m));
	struct timeval tv = {mtasts_tick_secs(), 0};

	if (m == NULL)
		return -1;
	m->base = base;
	m->dns = dns;
	m->verify = verify;
	m->dir_fd = dir_fd;
	m->port = port;
	if (tv.tv_sec > 0) {
		m->tick = event_new(base, -1, EV_PERSIST, mtasts_tick_cb, m);
		if (m->tick == NULL) {
			free(m);
			return -1;
		}
		event_add(m->tick, &tv);
	}
	*m_r = m;
	return 0;
}

void
mtasts_free(struct mtasts **mp)
{
	struct mtasts *m = *mp;

	if (m == NULL)
		return;
	while (m->entries != NULL)
		mtasts_entry_free(m->entries);
	if (m->tick != NULL)
		event_free(m->tick);
	mtasts_sweep_end(&m->sweep);
	if (m->dir_fd >= 0)
		close(m->dir_fd);
	free(m);
	*mp = NULL;
}

static void
mtasts_wait_link(struct mtasts_entry *e, struct mtasts_wait *w)
{
	w->e = e;
	w->next = e->waiters;
	if (e->waiters != NULL)
		e->waiters->pprev = &w->next;
	e->waiters = w;
	w->pprev = &e->waiters;
	e->mailed = true;
}

void
mtasts_lookup(struct mtasts *m, const char *domain, mtasts_cb *cb, void *arg,
	      struct mtasts_wait **w_r)
{
	struct mtasts_entry *e;
	struct mtasts_wait *w = calloc(1, sizeof(*w));
	char name[DNS_NAME_MAX + 8];

	*w_r = w;
	if (w == NULL)
		abort(); /* out of memory */
	w->cb = cb;
	w->arg = arg;
	if ((e = mtasts_entry_find(m, domain)) != NULL) {
		/* under way: one TXT query, one fetch */
		mtasts_wait_link(e, w);
		log_info("-", "mta-sts domain=%s lookup=shared", domain);
		return;
	}
	if (mtasts_cache_name(domain, false, name, sizeof(name)) < 0 ||
	    strlen(domain) + 9 > DNS_NAME_MAX ||
	    (e = mtasts_entry_new(m, domain)) == NULL) {
		struct mtasts_result none = {NULL, NULL};

		*w_r = NULL; /* not a host name: no MTA-STS */
		free(w);
		cb(arg, &none);
		return;
	}
	mtasts_wait_link(e, w);
	mtasts_cache_load(e);
	mtasts_entry_start(e);
}

void
mtasts_cancel(struct mtasts_wait **wp)
{
	struct mtasts_wait *w = *wp;

	if (w == NULL)
		return;
	*w->pprev = w->next;
	if (w->next != NULL)
		w->next->pprev = w->pprev;
	free(w);
	*wp = NULL;
}
