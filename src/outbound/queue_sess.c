/*
 * queue_sess.c - one outbound SMTP session of the queue process: the
 * route (DNS, or a transport/relay host), connecting to each server in
 * turn, TLS, and the client engine (client.h) driven over a bufferevent,
 * transaction after transaction for its destination.
 *
 * Servers are the addresses of the route's hosts in order (at most
 * QUEUE_SERVERS_MAX). A server that cannot be reached, or fails before a
 * transaction, gives way to the next; so do recipients that got a 4yz
 * while servers remain (RFC 5321 5.1: the next MX). Opportunistic TLS
 * whose handshake fails is retried once in plain text on the same server
 * (Postfix's `may`); TLS to a relay host is never given up.
 */
#include "outbound/queue_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "metrics/metrics.h"
#include "outbound/mtasts_fetch.h"

#define QSESS_CHUNK (64 * 1024)
#define QSESS_OUT_HIGH (256 * 1024) /* content queued before we wait */

struct qsess {
	struct queue *q;
	struct qdest *d;
	struct qsess *next, *prev;
	struct qjob *job;	/* to deliver next (or being delivered) */
	struct dns_req *dns;
	struct dns_route route;
	const struct config_route *cr; /* transport or relay, or NULL */
	bool is_relay;
	unsigned port;
	size_t host, addr;	/* the next server */
	unsigned tried;
	bool plain_next;	/* TLS failed here: once more in plain text */
	bool plain_now;
	bool any_tx;		/* a transaction delivered something */
	bool any_begun;		/* a transaction began on some server */
	bool move_on;		/* recipients kept for the next server */
	bool handshaking;
	bool stopping;
	bool is_literal;	/* an IP address given: no DNS, no DANE */
	enum tls_policy policy; /* tls-policy of the destination */
	/* DANE (RFC 7672): usable TLSA records of the current server. */
	bool dane;
	bool dane_unusable; /* a secure TLSA RRset, no record usable */
	size_t n_tlsa;
	struct dns_tlsa tlsa[DNS_TLSA_MAX];
	struct qsts sts;	/* MTA-STS (RFC 8461) of the destination */
	bool tls_noted;	/* this connection's TLS, or its lack, noted */
	struct dns_host cur_host; /* the server being tried */
	struct dns_addr cur_addr;
	struct bufferevent *bev;
	struct client *c;
	struct client_params params;
	char host_name[DNS_NAME_MAX + 1];
	char relay[DNS_NAME_MAX + 80]; /* "host[addr]:port" */
	struct qoutcome last;	/* why the last server failed */
	char last_text[CLIENT_TEXT_MAX + 400];
	char last_dsn[16];
	char last_relay[DNS_NAME_MAX + 80];
	struct client_tx tx;
	const char *rcpts[CLIENT_RCPT_MAX];
	int msg_fd;
	time_t started;
};

static void qsess_act(struct qsess *s);
static void qsess_next_server(struct qsess *s);
static void qsess_tlsa_cb(void *arg, const struct dns_tlsa_answer *a);
static void qsess_no_dane(struct qsess *s, const char *why);
static bool qsess_sts_skip(struct qsess *s);

/* MTA-STS in enforce mode, and no DANE for this server (RFC 8461 2:
   DANE, where present, wins). */
static bool
qsess_sts_enforce(const struct qsess *s)
{
	return qsts_is(&s->sts, MTASTS_MODE_ENFORCE) && !s->dane;
}

static bool
qsess_sts_testing(const struct qsess *s)
{
	return qsts_is(&s->sts, MTASTS_MODE_TESTING) && !s->dane;
}

static const char *
qsess_id(const struct qsess *s)
{
	return s->job != NULL ? s->job->msg->env.id : "-";
}

/* --- ending ---------------------------------------------------------- */

static void
qsess_drop_conn(struct qsess *s)
{
	if (s->bev != NULL)
		bufferevent_free(s->bev); /* frees the SSL and the socket */
	s->bev = NULL;
	client_free(&s->c);
	if (s->msg_fd >= 0)
		close(s->msg_fd);
	s->msg_fd = -1;
	s->handshaking = false;
}

/* Why the last server failed, kept for a deferral. */
static void
qsess_set_last(struct qsess *s, enum client_status status, const char *dsn,
	       const char *text, bool is_remote, const char *stage)
{
	snprintf(s->last_dsn, sizeof(s->last_dsn), "%s", dsn);
	snprintf(s->last_text, sizeof(s->last_text), "%s", text);
	snprintf(s->last_relay, sizeof(s->last_relay), "%s", s->relay);
	s->last.status = status;
	s->last.dsn = s->last_dsn;
	s->last.text = s->last_text;
	s->last.is_remote = is_remote;
	s->last.stage = stage;
	s->last.relay = s->last_relay[0] != '\0' ? s->last_relay : NULL;
	s->last.remote_mta = s->host_name[0] != '\0' ? s->host_name : NULL;
}

/* The job fails with the last error (a deferral, or a bounce). */
static void
qsess_fail_job(struct qsess *s, struct qjob *job)
{
	if (job == NULL)
		return;
	qres_fail_job(s->q, job, &s->last, s->started);
	free(job);
}

/* Does another session of our destination have a server that took a
   transaction? */
static bool
qsess_dest_alive(const struct qsess *s)
{
	for (const struct qsess *o = s->q->sessions_list; o != NULL;
	     o = o->next)
		if (o != s && o->d == s->d && o->any_begun)
			return true;
	return false;
}

/* No server of the destination could be reached (every address refused,
   timed out or failed before a transaction), and no other session of it
   reaches one: every job waiting for it is deferred now with the same
   reason, as Postfix's qmgr does with a dead destination, instead of
   being tried one session after another (100,000 messages for a dead
   host would otherwise be 100,000 connections, or 100,000 timeouts in
   a row, docs/performance.md). Never a bounce for another's failure:
   only the lifetime can turn the deferral into one. */
static void
qsess_defer_dest(struct qsess *s)
{
	struct qjob *j;
	size_t n = 0;

	if (s->stopping || s->d->head == NULL || qsess_dest_alive(s))
		return;
	s->last.status = CLIENT_TEMP;
	if (s->last.dsn != NULL && s->last.dsn[0] == '5')
		s->last_dsn[0] = '4';
	while ((j = queue_take_job(s->d)) != NULL) {
		n += j->n;
		qsess_fail_job(s, j);
	}
	log_notice("-", "destination unreachable relay=%s recipients=%zu "
			"deferred",
		   s->last_relay[0] != '\0' ? s->last_relay : "none", n);
}

static void
qsess_end(struct qsess *s)
{
	struct queue *q = s->q;
	bool dead = s->job != NULL && !s->any_tx && s->tried > 0;

	qsess_drop_conn(s);
	dns_cancel(&s->dns);
	qsts_clear(&s->sts);
	if (dead)
		s->d->window = 1; /* no server took anything: throttle */
	qsess_fail_job(s, s->job);
	s->job = NULL;
	if (dead && !s->any_begun)
		qsess_defer_dest(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		q->sessions_list = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	q->sessions--;
	s->d->sessions--;
	free(s);
	queue_session_ended(q, NULL); /* (kicks later, not from here) */
}

/* --- the route ------------------------------------------------------- */

/* A route failure concerns every job of the destination, not only ours:
   they would meet the same answer. */
static void
qsess_route_failed(struct qsess *s, const struct dns_route *rt)
{
	struct qjob *j;

	qsess_set_last(s, rt->status == DNS_PERM ? CLIENT_PERM : CLIENT_TEMP,
		       rt->dsn, rt->text, false, NULL);
	while ((j = queue_take_job(s->d)) != NULL)
		qsess_fail_job(s, j);
	qsess_end(s);
}

/* The destination's MTA-STS policy is known: servers are tried. */
static void
qsess_sts_cb(void *arg, const struct mtasts_result *r)
{
	struct qsess *s = arg;

	qsts_set(&s->sts, r);
	qsess_next_server(s);
}

static void
qsess_route_cb(void *arg, const struct dns_route *rt)
{
	struct qsess *s = arg;

	s->dns = NULL;
	if (rt->status != DNS_OK) {
		qsess_route_failed(s, rt);
		return;
	}
	s->route = *rt;
	if (qsts_wanted(s->q, s->cr, s->d->domain)) { /* RFC 8461 */
		mtasts_lookup(s->q->sts, s->d->domain, qsess_sts_cb, s,
			      &s->sts.wait);
		return;
	}
	qsess_next_server(s);
}

/* A transport or relay given as an IP address: no DNS. */
static bool
qsess_literal_route(struct qsess *s, const char *host)
{
	struct dns_host *h = &s->route.hosts[0];
	struct dns_addr *a = &h->addrs[0];

	memset(&s->route, 0, sizeof(s->route));
	if (inet_pton(AF_INET, host, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, host, a->addr) == 1)
		a->family = AF_INET6;
	else
		return false;
	snprintf(h->name, sizeof(h->name), "%s", host);
	h->n_addrs = 1;
	s->route.n_hosts = 1;
	return true;
}

/* --- connecting ------------------------------------------------------ */

static void qsess_read_cb(struct bufferevent *bev, void *arg);
static void qsess_write_cb(struct bufferevent *bev, void *arg);
static void qsess_event_cb(struct bufferevent *bev, short what, void *arg);

static void
qsess_set_timeouts(struct qsess *s, unsigned read_secs, unsigned write_secs)
{
	struct timeval r = {read_secs, 0}, w = {write_secs, 0};

	bufferevent_set_timeouts(s->bev, read_secs ? &r : NULL,
				 write_secs ? &w : NULL);
}

/* The client engine for a new connection, per destination kind. */
static void
qsess_new_client(struct qsess *s)
{
	const struct config *cfg = s->q->cfg;

	s->params.helo = cfg->hostname;
	s->params.auth_user = NULL;
	s->params.auth_pass = NULL;
	if (s->is_relay) {
		s->params.tls = cfg->relay_tls == RELAY_TLS_IMPLICIT
				    ? CLIENT_TLS_IMPLICIT
				    : CLIENT_TLS_REQUIRE;
		if (cfg->relay_auth_user != NULL) {
			s->params.auth_user = cfg->relay_auth_user;
			/* No password readable: AUTH is impossible, and the
			   engine refuses to go on without it. */
			s->params.auth_pass =
			    s->q->relay_pass != NULL ? s->q->relay_pass : "";
		}
	} else if (s->dane || s->dane_unusable ||
		   s->policy == TLS_POLICY_ENCRYPT ||
		   s->policy == TLS_POLICY_VERIFY || qsess_sts_enforce(s)) {
		s->params.tls = CLIENT_TLS_REQUIRE; /* RFC 7672 2.2 */
	} else if (s->policy == TLS_POLICY_NONE || s->plain_now) {
		s->params.tls = CLIENT_TLS_NONE;
	} else {
		s->params.tls = CLIENT_TLS_MAY;
	}
	s->c = client_new(&s->params);
	if (s->c == NULL)
		abort(); /* out of memory */
}

/*
 * DANE (RFC 7672 3): the server's certificate must match one of its TLSA
 * records: DANE-EE(3) the certificate or its key, no name check; DANE-TA(2)
 * a trust anchor of the chain, the name being the MX host's.
 */
static int
qsess_dane(struct qsess *s, SSL *ssl)
{
	int added = 0;

	if (SSL_dane_enable(ssl, s->host_name) <= 0)
		return -1;
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 0; i < s->n_tlsa; i++) {
		const struct dns_tlsa *t = &s->tlsa[i];

		if (SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype,
				      t->data, t->len) > 0)
			added++;
	}
	if (added == 0) { /* RFC 7672 2.2: TLS still, unauthenticated */
		ERR_clear_error();
		s->dane = false;
		s->dane_unusable = true;
		return 0;
	}
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return 0;
}

/* An SSL for this server: SNI with its name; for the relay host, its
   certificate must name it (RFC 6125) and chain to a trusted CA. */
static SSL *
qsess_ssl_new(struct qsess *s)
{
	bool verify = s->is_relay || (s->policy == TLS_POLICY_VERIFY &&
				      !s->dane) || qsess_sts_enforce(s);
	/* MTA-STS testing: checked as for enforce, but only logged. */
	bool check = qsess_sts_testing(s);
	SSL *ssl = SSL_new(verify || check ? s->q->relay_tls : s->q->tls);
	unsigned char bin[16];
	bool is_ip = inet_pton(AF_INET, s->host_name, bin) == 1 ||
		     inet_pton(AF_INET6, s->host_name, bin) == 1;

	if (ssl == NULL)
		return NULL;
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, s->host_name);
	if (check)
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	if ((verify || check) &&
	    (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
						   s->host_name)
		   : SSL_set1_host(ssl, s->host_name)) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	if (s->dane && qsess_dane(s, ssl) < 0) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* Put TLS on the connection: over STARTTLS, or from the first octet. */
static int
qsess_start_tls(struct qsess *s)
{
	SSL *ssl = qsess_ssl_new(s);
	struct bufferevent *tb;

	if (ssl == NULL)
		return -1;
	tb = bufferevent_openssl_filter_new(s->q->base, s->bev, ssl,
					    BUFFEREVENT_SSL_CONNECTING,
					    BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		return -1;
	}
	s->bev = tb;
	s->handshaking = true;
	bufferevent_setcb(tb, qsess_read_cb, qsess_write_cb, qsess_event_cb, s);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	qsess_set_timeouts(s, s->q->cfg->tls_handshake_timeout,
			   s->q->cfg->tls_handshake_timeout);
	return 0;
}

/* The connection failed before the engine ran: next server. */
static void
qsess_conn_failed(struct qsess *s, const char *why)
{
	char text[CLIENT_TEXT_MAX + 400];

	snprintf(text, sizeof(text), "connect to %s: %s", s->relay, why);
	qsess_set_last(s, CLIENT_TEMP, "4.4.1", text, false, NULL);
	log_info(s->job != NULL ? s->job->msg->env.id : "-",
		 "connect relay=%s error=\"%s\"", s->relay, why);
	qsess_drop_conn(s);
	qsess_next_server(s);
}

static int
qsess_connect(struct qsess *s, const struct dns_host *h,
	      const struct dns_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char text[INET6_ADDRSTRLEN];

	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)s->port);
		memcpy(&in->sin_addr, a->addr, 4);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)s->port);
		memcpy(&in6->sin6_addr, a->addr, 16);
		len = sizeof(*in6);
	}
	inet_ntop(a->family, a->addr, text, sizeof(text));
	s->tls_noted = false;
	snprintf(s->host_name, sizeof(s->host_name), "%s", h->name);
	snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", h->name, text,
		 s->port);
	s->bev = bufferevent_socket_new(s->q->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL)
		return -1;
	bufferevent_setcb(s->bev, qsess_read_cb, qsess_write_cb,
			  qsess_event_cb, s);
	qsess_set_timeouts(s, QUEUE_CONNECT_SECS, QUEUE_CONNECT_SECS);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss,
				       (int)len) < 0) {
		qsess_conn_failed(s, strerror(errno));
		return 0;
	}
	return 0;
}

/* The next address of the route, or the end (the job deferred). */
static void
qsess_next_server(struct qsess *s)
{
	const struct dns_host *h;
	const struct dns_addr *a;

	if (s->stopping && s->job != NULL) {
		free(s->job); /* not tried: the next start does it */
		s->job = NULL;
		qsess_end(s);
		return;
	}
	if (s->job == NULL) { /* nothing left to do here */
		struct qjob *j = s->stopping ? NULL : queue_take_job(s->d);

		if (j == NULL) {
			qsess_end(s);
			return;
		}
		s->job = j;
	}
	s->plain_now = s->plain_next;
	if (s->plain_next) {
		s->plain_next = false; /* the same server once more */
		if (s->addr > 0)
			s->addr--;
		else if (s->host > 0)
			s->addr = s->route.hosts[--s->host].n_addrs - 1;
	} else if (s->host >= s->route.n_hosts ||
		   s->tried >= QUEUE_SERVERS_MAX) {
		qsess_end(s); /* the job is deferred with the last error */
		return;
	}
	h = &s->route.hosts[s->host];
	a = &h->addrs[s->addr];
	s->cur_host = *h;
	s->cur_addr = *a;
	if (++s->addr >= h->n_addrs) {
		s->addr = 0;
		s->host++;
	}
	s->tried++;
	s->move_on = false;
	s->dane = false;
	s->dane_unusable = false;
	/* RFC 7672 2.2: DANE only when the MX (or the implicit MX's) and
	   the host's addresses are DNSSEC-secure. */
	if (!s->is_relay && !s->is_literal && s->policy != TLS_POLICY_NONE &&
	    s->route.mx_sec == DNS_SECURE && h->addr_sec == DNS_SECURE) {
		snprintf(s->host_name, sizeof(s->host_name), "%s", h->name);
		if (dns_tlsa(s->q->dns, h->name, s->port, qsess_tlsa_cb, s,
			     &s->dns) == 0)
			return;
	}
	if (s->policy == TLS_POLICY_DANE) {
		qsess_no_dane(s, "its MX or address records are not "
				 "DNSSEC-secure");
		return;
	}
	if (qsess_sts_skip(s))
		return;
	if (qsess_connect(s, &s->cur_host, &s->cur_addr) < 0)
		qsess_end(s);
}

/* tls-policy dane, and this server cannot have DANE: unusable. */
static void
qsess_no_dane(struct qsess *s, const char *why)
{
	char text[CLIENT_TEXT_MAX];

	snprintf(s->relay, sizeof(s->relay), "%s[-]:%u", s->cur_host.name,
		 s->port);
	snprintf(text, sizeof(text), "DANE is required for %s, but %s",
		 s->cur_host.name, why);
	qsess_set_last(s, CLIENT_TEMP, "4.7.5", text, false, NULL);
	log_info(s->job != NULL ? s->job->msg->env.id : "-",
		 "dane host=%s error=\"%s\"", s->cur_host.name, text);
	qsess_next_server(s);
}

/* The server's TLSA records: usable ones make TLS mandatory and
   authenticated; a failed or bogus lookup makes the server unusable. */
static void
qsess_tlsa_cb(void *arg, const struct dns_tlsa_answer *a)
{
	struct qsess *s = arg;

	s->dns = NULL;
	if (a->status != DNS_OK) {
		snprintf(s->relay, sizeof(s->relay), "%s[-]:%u",
			 s->cur_host.name, s->port);
		qsess_set_last(s, CLIENT_TEMP, "4.7.5", a->text, false, NULL);
		log_info(s->job != NULL ? s->job->msg->env.id : "-",
			 "dane host=%s error=\"%s\"", s->cur_host.name,
			 a->text);
		qsess_next_server(s);
		return;
	}
	s->n_tlsa = 0;
	for (size_t i = 0; a->sec == DNS_SECURE && i < a->n; i++) {
		/* RFC 7672 3.1: PKIX usages 0 and 1 are not for SMTP. */
		if ((a->recs[i].usage != 2 && a->recs[i].usage != 3) ||
		    a->recs[i].selector > 1 || a->recs[i].mtype > 2)
			continue;
		s->tlsa[s->n_tlsa++] = a->recs[i];
	}
	s->dane = s->n_tlsa > 0;
	/* RFC 7672 2.2: secure records, none usable: TLS is still
	   mandatory (unauthenticated), never plain text. */
	s->dane_unusable = !s->dane && a->sec == DNS_SECURE && a->n > 0;
	if (!s->dane && s->policy == TLS_POLICY_DANE) {
		qsess_no_dane(s, "it has no usable secure TLSA record");
		return;
	}
	if (qsess_sts_skip(s))
		return;
	if (qsess_connect(s, &s->cur_host, &s->cur_addr) < 0)
		qsess_end(s);
}

/* MTA-STS: an MX host that the policy does not list is skipped. */
static bool
qsess_sts_skip(struct qsess *s)
{
	char text[CLIENT_TEXT_MAX];

	if (s->dane || qsts_host_ok(&s->sts, s->d->domain, s->cur_host.name,
				    qsess_id(s), text, sizeof(text)))
		return false;
	snprintf(s->relay, sizeof(s->relay), "%s[-]:%u", s->cur_host.name,
		 s->port);
	qsess_set_last(s, CLIENT_TEMP, "4.7.5", text, false, NULL);
	qsess_next_server(s);
	return true;
}

/* Are there servers left to try after this one? */
static bool
qsess_servers_left(const struct qsess *s)
{
	return s->host < s->route.n_hosts && s->tried < QUEUE_SERVERS_MAX;
}

/* --- transactions ---------------------------------------------------- */

static bool
qsess_is_utf8(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s > 0x7f)
			return true;
	return false;
}

static void
qsess_begin_tx(struct qsess *s)
{
	struct qjob *j = s->job;
	struct qmsg *m = j->msg;
	char name[48];
	int eight = queue_msg_8bit(m);

	snprintf(name, sizeof(name), "%s.msg", m->env.id);
	s->msg_fd = openat(s->q->qfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (s->msg_fd < 0 || eight < 0) {
		log_error(m->env.id, "queue open file=%s error=\"%s\"", name,
			  strerror(errno));
		qsess_set_last(s, CLIENT_TEMP, "4.3.0",
			       "cannot read the queued message", false, NULL);
		qsess_fail_job(s, s->job);
		s->job = NULL;
		client_quit(s->c);
		return;
	}
	s->tx.sender = m->env.sender;
	s->tx.size = m->env.size;
	s->tx.is_8bit = eight > 0;
	s->tx.is_utf8 = qsess_is_utf8(m->env.sender);
	for (size_t k = 0; k < j->n; k++) {
		s->rcpts[k] = m->rcpts[j->idx[k]].addr;
		s->tx.is_utf8 |= qsess_is_utf8(s->rcpts[k]);
		m->rcpts[j->idx[k]].state = QR_BUSY;
	}
	s->tx.rcpts = s->rcpts;
	s->tx.n_rcpts = j->n;
	s->started = time(NULL);
	s->any_begun = true;
	if (client_tx_begin(s->c, &s->tx) < 0)
		abort(); /* READY was checked: a broken invariant */
}

/* Content: as much as the output may hold, the rest on the write
   callback. */
static void
qsess_body(struct qsess *s)
{
	char buf[QSESS_CHUNK];

	while (evbuffer_get_length(bufferevent_get_output(s->bev)) <
	       QSESS_OUT_HIGH) {
		ssize_t n = read(s->msg_fd, buf, sizeof(buf));
		size_t len;
		const char *out;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) { /* EOF (or a read error: the dot ends it;
				 the size check below the server catches it) */
			client_body_end(s->c);
			close(s->msg_fd);
			s->msg_fd = -1;
			return;
		}
		client_body(s->c, buf, (size_t)n);
		out = client_output(s->c, &len);
		bufferevent_write(s->bev, out, len);
		client_output_consume(s->c, len);
	}
}

/* The outcome of recipient k of the transaction, from the engine. */
static void
qsess_outcome(struct qsess *s, const struct client_result *r,
	      struct qoutcome *o)
{
	o->status = r->status;
	o->dsn = r->dsn;
	o->text = r->text;
	o->is_remote = r->is_remote;
	o->stage = r->is_remote ? client_stage_name(r->stage) : NULL;
	o->relay = s->relay;
	o->remote_mta = s->host_name;
}

/* Results: final ones recorded; 4yz kept for the next server if any. */
static void
qsess_tx_done(struct qsess *s)
{
	struct qjob *j = s->job, *keep = NULL;
	struct qoutcome o[CLIENT_RCPT_MAX];
	size_t idx[CLIENT_RCPT_MAX], n = 0;

	for (size_t k = 0; k < j->n; k++) {
		const struct client_result *r = client_rcpt_result(s->c, k);

		if (r->status == CLIENT_TEMP && qsess_servers_left(s)) {
			if (keep == NULL &&
			    (keep = queue_job_new(j->msg, j->n)) == NULL)
				abort();
			keep->idx[keep->n++] = j->idx[k];
			qsess_set_last(s, r->status, r->dsn, r->text,
				       r->is_remote,
				       client_stage_name(r->stage));
			continue;
		}
		qsess_outcome(s, r, &o[n]);
		idx[n++] = j->idx[k];
	}
	for (size_t k = 0; k < n; k++) {
		if (o[k].status == CLIENT_OK && !s->any_tx) {
			s->any_tx = true; /* the window grows once a session */
			if (s->d->window <
			    s->q->cfg->outbound_sessions_per_dest)
				s->d->window++;
		}
	}
	if (n > 0)
		qres_record(s->q, j->msg, idx, o, n, s->started);
	free(j);
	s->job = keep;
	s->move_on = keep != NULL;
	client_tx_end(s->c);
}

/* The session with this server is over. */
static void
qsess_closed(struct qsess *s)
{
	const struct client_result *e = client_error(s->c);

	if (e != NULL) {
		qsess_set_last(s, CLIENT_TEMP, e->dsn, e->text, e->is_remote,
			       e->is_remote ? client_stage_name(e->stage)
					    : NULL);
		/* Postfix's `may`: a failed handshake, once in plain text. */
		if (e->stage == CLIENT_STAGE_TLS && !s->is_relay &&
		    !s->dane && !s->dane_unusable &&
		    s->policy == TLS_POLICY_MAY && !s->plain_now &&
		    !qsess_sts_enforce(s))
			s->plain_next = true; /* only for `may` */
		log_info(s->job != NULL ? s->job->msg->env.id : "-",
			 "session relay=%s error=\"%s\"", s->relay, e->text);
	}
	qsess_drop_conn(s);
	if (s->job != NULL)
		qsess_next_server(s);
	else
		qsess_end(s);
}

/* Send what the engine wrote, then do what it asks. */
static void
qsess_act(struct qsess *s)
{
	for (int guard = 0; guard < 64 && s->c != NULL; guard++) {
		size_t len;
		const char *out = client_output(s->c, &len);

		if (len > 0) {
			bufferevent_write(s->bev, out, len);
			client_output_consume(s->c, len);
		}
		switch (client_event(s->c)) {
		case CLIENT_EV_WAIT:
			qsess_set_timeouts(s, client_timeout_secs(s->c), 300);
			return;
		case CLIENT_EV_TLS:
			if (qsess_start_tls(s) < 0)
				client_tls_done(s->c, false, "cannot start");
			else
				return;
			break;
		case CLIENT_EV_READY:
			if (!s->tls_noted) { /* in clear: said so, once */
				s->tls_noted = true;
				log_info(qsess_id(s), "tls relay=%s tls=none",
					 s->relay);
				if (!s->dane)
					qsts_tls_note(&s->sts, qsess_id(s),
						      s->relay, NULL);
			}
			if (s->job == NULL && !s->stopping)
				s->job = queue_take_job(s->d);
			if (s->job == NULL || s->move_on || s->stopping)
				client_quit(s->c);
			else
				qsess_begin_tx(s);
			break;
		case CLIENT_EV_BODY:
			qsess_set_timeouts(s, 0, client_timeout_secs(s->c));
			bufferevent_setwatermark(s->bev, EV_WRITE,
						 QSESS_OUT_HIGH / 4, 0);
			qsess_body(s);
			if (client_event(s->c) == CLIENT_EV_BODY)
				return; /* the write callback goes on */
			break;
		case CLIENT_EV_TX_DONE:
			qsess_tx_done(s);
			break;
		case CLIENT_EV_CLOSED:
			qsess_closed(s);
			return;
		}
	}
}

/* --- bufferevent callbacks ------------------------------------------- */

static void
qsess_read_cb(struct bufferevent *bev, void *arg)
{
	struct qsess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[16384];
	int n;

	while (s->c != NULL && (n = evbuffer_remove(in, buf, sizeof(buf))) > 0)
		client_input(s->c, buf, (size_t)n);
	qsess_act(s);
}

static void
qsess_write_cb(struct bufferevent *bev, void *arg)
{
	struct qsess *s = arg;

	if (s->c != NULL && client_event(s->c) == CLIENT_EV_BODY)
		qsess_act(s);
}

/* The handshake's failure reason, from OpenSSL's queue. */
static const char *
qsess_tls_error(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "connection closed";
	ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* How the server's certificate was checked, for the log line. */
static const char *
qsess_verified(const struct qsess *s, SSL *ssl)
{
	uint8_t usage = 0;

	if (s->dane)
		return SSL_get0_dane_tlsa(ssl, &usage, NULL, NULL, NULL,
					  NULL) >= 0 && usage == 2
			   ? "dane-ta"
			   : "dane-ee";
	if (qsess_sts_enforce(s))
		return "mta-sts";
	return s->is_relay || s->policy == TLS_POLICY_VERIFY ? "ca" : "no";
}

static void
qsess_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct qsess *s = arg;
	char why[256];

	if (what & BEV_EVENT_CONNECTED) {
		if (s->handshaking) {
			SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

			s->handshaking = false;
			log_info(s->job != NULL ? s->job->msg->env.id : "-",
				 "tls relay=%s tls=%s cipher=%s verified=%s%s",
				 s->relay, SSL_get_version(ssl),
				 SSL_get_cipher_name(ssl), qsess_verified(s, ssl),
				 s->dane_unusable ? " dane=unusable" : "");
			s->tls_noted = true;
			if (!s->dane)
				qsts_tls_note(&s->sts, qsess_id(s), s->relay,
					      ssl);
			client_tls_done(s->c, true, NULL);
		} else {
			qsess_new_client(s);
			bufferevent_enable(s->bev, EV_READ | EV_WRITE);
			if (s->params.tls == CLIENT_TLS_IMPLICIT &&
			    qsess_start_tls(s) < 0) {
				qsess_conn_failed(s, "cannot start TLS");
				return;
			}
		}
		qsess_act(s);
		return;
	}
	if (s->c == NULL) { /* never connected */
		qsess_conn_failed(s, what & BEV_EVENT_TIMEOUT
					 ? "timeout"
					 : strerror(EVUTIL_SOCKET_ERROR()));
		return;
	}
	if (s->handshaking && client_event(s->c) == CLIENT_EV_TLS) {
		s->handshaking = false;
		metrics_add(MC_TLS_FAIL_OUT, 1);
		client_tls_done(s->c, false, what & BEV_EVENT_TIMEOUT
						 ? "timeout"
						 : qsess_tls_error(why,
								   sizeof(why)));
	} else if (what & BEV_EVENT_TIMEOUT) {
		client_timeout(s->c);
	} else {
		client_eof(s->c);
	}
	qsess_act(s);
}

/* --- starting and stopping ------------------------------------------- */

int
qsess_start(struct queue *q, struct qdest *d, struct qjob *job)
{
	struct qsess *s = calloc(1, sizeof(*s));
	const char *host;
	int rc;

	if (s == NULL)
		return -1;
	s->q = q;
	s->d = d;
	s->job = job;
	s->msg_fd = -1;
	s->next = q->sessions_list;
	if (q->sessions_list != NULL)
		q->sessions_list->prev = s;
	q->sessions_list = s;
	q->sessions++;
	d->sessions++;
	for (size_t k = 0; k < job->n; k++)
		job->msg->rcpts[job->idx[k]].state = QR_BUSY;
	s->cr = config_find_route(q->cfg, d->domain);
	s->is_relay = s->cr != NULL && s->cr == q->cfg->relay_host;
	s->port = s->cr != NULL ? s->cr->port : 25;
	s->policy = config_find_tls_policy(q->cfg, d->domain);
	host = s->cr != NULL ? s->cr->host : d->domain;
	qsess_set_last(s, CLIENT_TEMP, "4.4.1", "no server could be reached",
		       false, NULL);
	if (qsess_literal_route(s, host)) {
		s->is_literal = true;
		qsess_next_server(s);
		return 0;
	}
	/* The callback may run before this returns, and end the session. */
	rc = dns_route(q->dns, host, s->cr != NULL && s->cr->no_mx,
		       qsess_route_cb, s, &s->dns);
	if (rc < 0) {
		struct dns_route rt = {.status = DNS_TEMP};

		snprintf(rt.dsn, sizeof(rt.dsn), "4.4.3");
		snprintf(rt.text, sizeof(rt.text), "cannot look up %s", host);
		qsess_route_failed(s, &rt);
	}
	return 0;
}

void
qsess_stop_all(struct queue *q)
{
	for (struct qsess *s = q->sessions_list, *next; s != NULL; s = next) {
		next = s->next;
		s->stopping = true;
		if (s->c != NULL && client_event(s->c) == CLIENT_EV_READY)
			qsess_act(s);
	}
}

void
qsess_free_all(struct queue *q)
{
	while (q->sessions_list != NULL) {
		struct qsess *s = q->sessions_list;

		q->sessions_list = s->next;
		qsess_drop_conn(s);
		dns_cancel(&s->dns);
		qsts_clear(&s->sts);
		free(s->job); /* its recipients were not tried: next start */
		free(s);
	}
	q->sessions = 0;
}
