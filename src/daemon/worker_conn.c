/*
 * worker_conn.c - a worker's connection I/O (worker_int.h): the read
 * timeouts and the watchdog of a parked session, TLS (STARTTLS and its
 * handshake), pushing the session's replies and feeding it what the
 * client sent, the error-delay tarpit, closing (lingering for the last
 * bytes under TLS) and freeing a connection. The session's hooks and
 * accepting are worker.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "daemon/tls.h"
#include "daemon/worker_int.h"
#include "lib/log.h"
#include "metrics/metrics.h"

static void conn_close(struct conn *c, const char *reason);

void
worker_conn_maybe_exit(struct worker *w)
{
	if (w->stopping && w->n_conns == 0 &&
	    spool_commits_pending(w->spool) == 0)
		event_base_loopexit(w->base, NULL);
}

/* Take the connection off the list and the server-wide count. */
static void
conn_unlink(struct conn *c)
{
	struct worker *w = c->w;

	if (!c->in_list)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->in_list = false;
	w->n_conns--;
	atomic_fetch_sub(&w->env->shared->slot[w->env->slot], 1);
	atomic_fetch_sub(&w->env->shared->total, 1);
}

/*
 * Arm the read timeout: between reads inside message content, otherwise a
 * deadline for the whole command, renewed when no partial command is
 * waiting (RFC 5321 4.5.3.2; THREATS X-01).
 */
static void
conn_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	log_warning(c->id, "timeout reason=parked-too-long");
	worker_conn_free(c, "timeout");
}

static void
conn_set_timeout(struct conn *c)
{
	struct timeval now, tv;

	if (session_is_parked(c->s)) {
		/* Waiting for the guard or the spool: a watchdog only, in
		   case one of them hangs without breaking its socket. */
		struct timeval wd = {c->w->cfg->timeout_command, 0};

		bufferevent_set_timeouts(c->bev, NULL, NULL);
		if (c->watchdog == NULL)
			c->watchdog = evtimer_new(c->w->base, conn_watchdog_cb,
						  c);
		if (c->watchdog != NULL && !evtimer_pending(c->watchdog, NULL))
			evtimer_add(c->watchdog, &wd);
		return;
	}
	if (c->watchdog != NULL)
		evtimer_del(c->watchdog);
	tv.tv_sec = session_timeout_secs(c->s);
	tv.tv_usec = 0;
	if (!session_in_content(c->s)) {
		event_base_gettimeofday_cached(c->w->base, &now);
		if (session_pending_input(c->s) == 0 ||
		    !evutil_timerisset(&c->deadline))
			evutil_timeradd(&now, &tv, &c->deadline);
		evutil_timersub(&c->deadline, &now, &tv);
		if (tv.tv_sec < 0 || (tv.tv_sec == 0 && tv.tv_usec < 1000)) {
			tv.tv_sec = 0;
			tv.tv_usec = 1000;
		}
	} else {
		evutil_timerclear(&c->deadline);
	}
	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/* --- TLS ------------------------------------------------------------- */

void
worker_conn_tls_timeout(struct conn *c)
{
	struct timeval tv = {c->w->cfg->tls_handshake_timeout, 0};

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/*
 * STARTTLS was answered: swap in an OpenSSL filter. Plain text the client
 * sent behind STARTTLS must never be read as coming through TLS
 * (CVE-2011-0411): if any is waiting, the session ends.
 */
static void
conn_starttls(struct conn *c)
{
	struct bufferevent *tls;
	SSL *ssl;

	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 ||
	    session_pending_input(c->s) > 0) {
		log_notice(c->id, "rejected reason=starttls-injection");
		worker_conn_free(c, "error");
		return;
	}
	ssl = tls_server_ssl(c->w->env->tls);
	if (ssl == NULL) {
		worker_conn_free(c, "error");
		return;
	}
	tls = bufferevent_openssl_filter_new(c->w->base, c->bev, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		/* libevent's failed constructor may already have freed the
		   SSL and the socket bufferevent (CLOSE_ON_FREE): leak rather
		   than free twice; this is an out-of-memory path. */
		c->bev = NULL;
		worker_conn_free(c, "error");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->handshaking = true;
	bufferevent_setcb(tls, worker_conn_read_cb, worker_conn_write_cb,
			  worker_conn_event_cb, c);
	worker_conn_tls_timeout(c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* The handshake finished (STARTTLS or implicit TLS). */
static void
conn_tls_done(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char version[32], cipher[64];

	c->handshaking = false;
	tls_describe(ssl, version, sizeof(version), cipher, sizeof(cipher));
	session_tls_started(c->s, version, cipher);
	if (c->role == ROLE_SUBMISSIONS)
		session_greet(c->s);
	/* What the client sent right behind its handshake came through TLS
	   and may already be waiting: read it now. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		worker_conn_read_cb(c->bev, c);
	else
		worker_conn_flush(c);
}

/*
 * Log why a handshake failed. libevent keeps the OpenSSL error codes of the
 * connection, mixed with SSL_get_error() values (small numbers of no
 * library): the first real one names the reason ("unsupported protocol",
 * "no shared cipher", ...). The alert OpenSSL wrote for the client is
 * still sent (conn_close lingers for it).
 */
static void
conn_tls_failed(struct conn *c, const char *why)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char reason[256] = "", sni[256 * 4 + 8] = "-";
	const char *note = tls_failure_note(ssl);
	const char *name = ssl != NULL ? SSL_get_servername(
					     ssl, TLSEXT_NAMETYPE_host_name)
				       : NULL;
	unsigned long e;

	if (note != NULL)
		snprintf(reason, sizeof(reason), "%s", note);
	while ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
		const char *r = ERR_reason_error_string(e);

		if (reason[0] == '\0' && ERR_GET_LIB(e) != 0 && r != NULL)
			snprintf(reason, sizeof(reason), "%s", r);
	}
	if (reason[0] == '\0')
		tls_error_reason(reason, sizeof(reason));
	/* The name the client asked for, as sent (an invalid one ends the
	   handshake): escaped, it is the client's text. */
	if (name != NULL)
		log_escape(sni, sizeof(sni), name, strlen(name), 255);
	metrics_add(MC_TLS_FAIL_IN, 1);
	log_notice(c->id, "tls-failed reason=\"%s\" error=\"%s\" sni=%s", why,
		   reason[0] ? reason : "-", sni);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	conn_close(c, c->timed_out ? NULL : "tls");
}

/* --- reading and writing ---------------------------------------------- */

static void
conn_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_close(c, "closed");
}

/*
 * The session is over and its output is written to the bufferevent. Under
 * TLS, say close_notify (so the session stays resumable); over a STARTTLS
 * filter, the bytes still sit in the socket bufferevent below it: linger
 * until they are gone (bounded: 5 s) rather than cut the last reply off.
 */
static void
conn_close(struct conn *c, const char *reason)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	struct timeval tv = {0, 20 * 1000};

	if (ssl != NULL && c->linger_ticks == 0 && !c->handshaking)
		SSL_shutdown(ssl);
	if (under != NULL &&
	    evbuffer_get_length(bufferevent_get_output(under)) > 0 &&
	    c->linger_ticks < 250) {
		if (c->linger == NULL)
			c->linger = evtimer_new(c->w->base, conn_linger_cb, c);
		if (c->linger == NULL) {
			worker_conn_free(c, reason);
			return;
		}
		c->linger_ticks++;
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		evtimer_add(c->linger, &tv);
		return;
	}
	worker_conn_free(c, reason);
}

/* Push the session's replies to the socket; close when it is done. */
static void
conn_tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	event_free(c->tarpit);
	c->tarpit = NULL;
	worker_conn_flush(c);
}

void
worker_conn_flush(struct conn *c)
{
	size_t len;
	const char *out;

	if (c->tarpit != NULL)
		return; /* output held; conn_tarpit_cb flushes */
	if (session_take_delay(c->s)) {
		struct timeval tv = {c->w->cfg->error_delay, 0};

		c->tarpit = evtimer_new(c->w->base, conn_tarpit_cb, c);
		if (c->tarpit != NULL) {
			bufferevent_disable(c->bev, EV_READ);
			bufferevent_set_timeouts(c->bev, NULL, NULL);
			evtimer_add(c->tarpit, &tv);
			return;
		}
	}
	out = session_output(c->s, &len);
	if (len > 0) {
		bufferevent_write(c->bev, out, len);
		session_output_consume(c->s, len);
	}
	if (session_is_closing(c->s)) {
		bufferevent_disable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			conn_close(c, "closed");
		return;
	}
	if (c->handshaking)
		return; /* conn_tls_done() goes on */
	if (session_wants_tls(c->s)) {
		conn_starttls(c);
		return;
	}
	/* Parked: a submission client may pipeline past the end of data;
	   hold its input until the reply (the mx engine watches for it). */
	if (session_is_parked(c->s) && c->role != ROLE_MX) {
		bufferevent_disable(c->bev, EV_READ);
		conn_set_timeout(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
	    WORKER_OUTPUT_HIGH) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	conn_set_timeout(c);
	bufferevent_enable(c->bev, EV_READ);
}

void
worker_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[WORKER_READ_CHUNK];
	size_t used = 0;

	if (c->handshaking)
		return; /* the session starts after the handshake */
	while (evbuffer_get_length(in) > 0 && !session_is_closing(c->s)) {
		int n;

		if (session_wants_tls(c->s))
			break; /* conn_starttls() looks at what is left */
		if (session_is_parked(c->s) && c->role != ROLE_MX)
			break;
		n = evbuffer_remove(in, buf, sizeof(buf));
		if (n <= 0)
			break;
		if ((size_t)n > used)
			used = (size_t)n;
		session_input(c->s, buf, (size_t)n);
	}
	explicit_bzero(buf, used); /* may hold AUTH data */
	worker_conn_flush(c);
}

void
worker_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	/* Output drained (low watermark 0). */
	if (session_is_closing(c->s)) {
		if (c->linger == NULL)
			conn_close(c, c->timed_out ? NULL : "closed");
		return;
	}
	if (c->handshaking)
		return;
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0 &&
	    !session_is_parked(c->s)) {
		worker_conn_read_cb(bev, c);
		return;
	}
	worker_conn_flush(c);
}

void
worker_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	const char *reason;

	if (what & BEV_EVENT_CONNECTED) {
		conn_tls_done(c);
		return;
	}
	if (c->handshaking) {
		conn_tls_failed(c, what & BEV_EVENT_TIMEOUT ? "timeout"
				   : what & BEV_EVENT_EOF   ? "eof"
							    : "handshake");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		size_t len;
		const char *out;

		session_timeout(c->s);
		bufferevent_set_timeouts(bev, NULL, NULL);
		out = session_output(c->s, &len);
		/* Best effort: the peer may not be reading at all. */
		if (len > 0 && (what & BEV_EVENT_READING)) {
			struct timeval tv = {5, 0};

			bufferevent_write(bev, out, len);
			session_output_consume(c->s, len);
			bufferevent_disable(bev, EV_READ);
			bufferevent_set_timeouts(bev, NULL, &tv);
			session_log_disconnect(c->s, "timeout");
			c->timed_out = true;
			return;
		}
		reason = c->timed_out ? NULL : "timeout";
	} else if (what & BEV_EVENT_EOF) {
		reason = c->timed_out ? NULL : "eof";
	} else {
		reason = c->timed_out ? NULL : "error";
	}
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	worker_conn_free(c, reason);
}

void
worker_conn_free(struct conn *c, const char *reason)
{
	struct worker *w = c->w;

	if (c->s != NULL && reason != NULL)
		session_log_disconnect(c->s, reason);
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	} else if (c->fd >= 0) {
		close(c->fd);
	}
	c->fd = -1;
	if (c->greet_timer != NULL) {
		event_free(c->greet_timer);
		c->greet_timer = NULL;
	}
	if (c->linger != NULL) {
		event_free(c->linger);
		c->linger = NULL;
	}
	if (c->tarpit != NULL) {
		event_free(c->tarpit);
		c->tarpit = NULL;
	}
	if (c->watchdog != NULL) {
		event_free(c->watchdog);
		c->watchdog = NULL;
	}
	if (c->guard_req != 0) {
		guard_client_cancel(w->guard, c->guard_req);
		c->guard_req = 0;
	}
	if (c->guard_counted) {
		guard_client_conn_close(w->guard, c->addr);
		c->guard_counted = false;
	}
	if (c->msg != NULL)
		spool_msg_abort(&c->msg);
	if (c->s != NULL)
		metrics_role_add(MG_SESSIONS_MX, c->role, -1);
	session_free(&c->s);
	conn_unlink(c);
	if (c->commit_pending) {
		/* The spool calls back later; free then. */
		c->dead = true;
		return;
	}
	free(c);
	worker_conn_maybe_exit(w);
}

