/*
 * mtasts_fetch.c - MTA-STS lookups of the queue process: TXT, HTTPS
 * fetch (libevent's evhttp over bufferevent_openssl), the cache on disk.
 * See mtasts_fetch.h.
 *
 * One `mtasts_entry` per domain being looked up holds its waiters; it
 * lives from the first lookup until the answer (then it is freed: the
 * policy lives in its cache file, read again by the next lookup).
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

#define MTASTS_PATH "/.well-known/mta-sts.txt" /* RFC 8461 3.3 */

struct mtasts {
	struct event_base *base;
	struct dns *dns;
	SSL_CTX *verify;
	int dir_fd;
	unsigned port;
	struct mtasts_entry *entries;
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
	bool cached;			/* a policy from the cache file */
	char cached_id[MTASTS_ID_MAX + 1];
	struct mtasts_policy cache;
	char new_id[MTASTS_ID_MAX + 1]; /* of the TXT record */
	struct mtasts_policy fresh;
	bool has_fresh;			/* fetched and parsed */
	char error[300];		/* why the fetch failed */
	struct dns_req *dns;
	struct evhttp_connection *evcon;
	struct event *timer;		/* the whole lookup's time */
	struct event *done_ev;		/* the answer, outside evhttp */
};

static void mtasts_finish(struct mtasts_entry *e);

/* --- the cache ------------------------------------------------------- */

/* The cached policy of e->domain, if any and not expired. */
static void
mtasts_cache_load(struct mtasts_entry *e)
{
	char name[DNS_NAME_MAX + 8];
	char *buf = NULL;
	struct stat st;
	ssize_t n = -1;
	time_t expires = 0;
	const char *err = "cannot be read";
	int fd;

	if (mtasts_cache_name(e->domain, false, name, sizeof(name)) < 0)
		return;
	fd = openat(e->m->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return; /* (none yet) */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size <= MTASTS_CACHE_MAX &&
	    (buf = malloc((size_t)st.st_size + 1)) != NULL)
		n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n >= 0 && n == st.st_size &&
	    mtasts_cache_parse(buf, (size_t)n, e->cached_id, &expires,
			       &e->cache, &err) == 0) {
		e->cached = expires > time(NULL); /* RFC 8461 5.1 */
	} else {
		log_warning("-", "mta-sts domain=%s cache=%s error=\"%s\"",
			    e->domain, name, err);
	}
	free(buf);
}

/* Write the new policy: temporary file, fsync, rename, fsync of the
   directory; a reader sees the old file or the new one. */
static void
mtasts_cache_store(struct mtasts_entry *e, const char *body, size_t len)
{
	char name[DNS_NAME_MAX + 8], tmp[DNS_NAME_MAX + 8];
	char *buf = malloc(MTASTS_CACHE_MAX);
	long n = -1;
	int fd = -1, rc = -1;

	if (buf != NULL &&
	    mtasts_cache_name(e->domain, false, name, sizeof(name)) == 0 &&
	    mtasts_cache_name(e->domain, true, tmp, sizeof(tmp)) == 0)
		n = mtasts_cache_format(buf, MTASTS_CACHE_MAX, e->new_id,
					time(NULL) + (time_t)e->fresh.max_age,
					body, len);
	if (n >= 0)
		fd = openat(e->m->dir_fd, tmp,
			    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
				O_CLOEXEC,
			    0600);
	if (fd >= 0 && write(fd, buf, (size_t)n) == n && fsync(fd) == 0)
		rc = 0;
	if (fd >= 0 && close(fd) < 0)
		rc = -1;
	if (rc == 0 && renameat(e->m->dir_fd, tmp, e->m->dir_fd, name) == 0)
		fsync(e->m->dir_fd);
	else if (n >= 0)
		log_error("-", "mta-sts domain=%s cache error=\"%s\"",
			  e->domain, strerror(errno));
	if (rc < 0 && fd >= 0)
		unlinkat(e->m->dir_fd, tmp, 0);
	free(buf);
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

	if (err == 0)
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
		mtasts_fail(e, mtasts_conn_error(e, "connection failed", why,
						 sizeof(why)));
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

/* Connect to `addr` and ask for the policy. */
static int
mtasts_http_start(struct mtasts_entry *e, const struct dns_addr *addr)
{
	char ip[INET6_ADDRSTRLEN];
	struct evhttp_request *req;
	struct evkeyvalq *h;
	struct bufferevent *bev;
	SSL *ssl = SSL_new(e->m->verify);

	if (ssl == NULL || inet_ntop(addr->family, addr->addr, ip,
				     sizeof(ip)) == NULL ||
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
	e->evcon = evhttp_connection_base_bufferevent_new(e->m->base, NULL, bev,
							  ip, (uint16_t)e->m->port);
	if (e->evcon == NULL) {
		bufferevent_free(bev);
		return -1;
	}
	evhttp_connection_set_timeout(e->evcon, MTASTS_FETCH_SECS);
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

/* The policy host's addresses: the first one is asked. */
static void
mtasts_addr_cb(void *arg, const struct dns_route *rt)
{
	struct mtasts_entry *e = arg;

	e->dns = NULL;
	if (rt->status != DNS_OK || rt->n_hosts == 0 ||
	    rt->hosts[0].n_addrs == 0) {
		mtasts_fail(e, rt->text[0] != '\0' ? rt->text : "no address");
		return;
	}
	if (mtasts_http_start(e, &rt->hosts[0].addrs[0]) < 0)
		mtasts_fail(e, "cannot start the HTTPS request");
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
		if (a->n > 0 && err != NULL)
			log_info("-", "mta-sts domain=%s txt error=\"%s\"",
				 e->domain, err);
		mtasts_finish(e);
		return;
	}
	if (e->cached && strcmp(e->cached_id, e->new_id) == 0) {
		mtasts_finish(e);
		return;
	}
	if (dns_route(e->m->dns, e->host, true, mtasts_addr_cb, e, &e->dns) <
	    0)
		mtasts_fail(e, "cannot look up the policy host");
}

/* --- entries --------------------------------------------------------- */

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
	if (e->pprev != NULL) {
		*e->pprev = e->next;
		if (e->next != NULL)
			e->next->pprev = e->pprev;
	}
	while (e->waiters != NULL) {
		struct mtasts_wait *w = e->waiters;

		e->waiters = w->next;
		free(w);
	}
	free(e);
}

/* The answer to every waiter: fetched, else cached, else none. */
static void
mtasts_finish(struct mtasts_entry *e)
{
	struct mtasts_result r = {NULL, NULL};

	if (e->has_fresh) {
		log_info("-", "mta-sts domain=%s id=%s mode=%s max_age=%lu "
			      "policy=fetched",
			 e->domain, e->new_id, mtasts_mode_name(e->fresh.mode),
			 e->fresh.max_age);
		r.policy = &e->fresh;
		r.id = e->new_id;
	} else {
		if (e->error[0] != '\0')
			log_info("-", "mta-sts domain=%s fetch=%s error=\"%s\"%s",
				 e->domain, e->host, e->error,
				 e->cached ? " policy=cached" : " policy=none");
		if (e->cached) {
			r.policy = &e->cache;
			r.id = e->cached_id;
		}
	}
	/* Out of the domain's list first: a callback may look it up anew. */
	if (e->pprev != NULL) {
		*e->pprev = e->next;
		if (e->next != NULL)
			e->next->pprev = e->pprev;
		e->pprev = NULL;
	}
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
	(void)fd;
	(void)what;
	mtasts_finish(arg);
}

static void
mtasts_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mtasts_entry *e = arg;

	(void)fd;
	(void)what;
	dns_cancel(&e->dns);
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

int
mtasts_new(struct event_base *base, struct dns *dns, SSL_CTX *verify,
	   int dir_fd, unsigned port, struct mtasts **m_r)
{
	struct mtasts *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return -1;
	m->base = base;
	m->dns = dns;
	m->verify = verify;
	m->dir_fd = dir_fd;
	m->port = port;
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
}

void
mtasts_lookup(struct mtasts *m, const char *domain, mtasts_cb *cb, void *arg,
	      struct mtasts_wait **w_r)
{
	struct mtasts_entry *e;
	struct mtasts_wait *w = calloc(1, sizeof(*w));
	char name[DNS_NAME_MAX + 8], txt[DNS_NAME_MAX + 16];
	int n;

	*w_r = w;
	if (w == NULL)
		abort(); /* out of memory */
	w->cb = cb;
	w->arg = arg;
	for (e = m->entries; e != NULL; e = e->next)
		if (strcmp(e->domain, domain) == 0)
			break;
	if (e != NULL) { /* under way: one TXT query, one fetch */
		mtasts_wait_link(e, w);
		log_info("-", "mta-sts domain=%s lookup=shared", domain);
		return;
	}
	n = snprintf(txt, sizeof(txt), "_mta-sts.%s", domain);
	if (mtasts_cache_name(domain, false, name, sizeof(name)) < 0 ||
	    n < 0 || (size_t)n > DNS_NAME_MAX ||
	    (e = mtasts_entry_new(m, domain)) == NULL) {
		struct mtasts_result none = {NULL, NULL};

		*w_r = NULL; /* not a host name: no MTA-STS */
		free(w);
		cb(arg, &none);
		return;
	}
	mtasts_wait_link(e, w);
	mtasts_cache_load(e);
	if (dns_txt(m->dns, txt, mtasts_txt_cb, e, &e->dns) < 0)
		mtasts_finish(e);
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
