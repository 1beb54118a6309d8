/*
 * worker.c - a worker process: one libevent loop accepting on the shared
 * listeners, running TLS and SMTP sessions, asking the guard, writing the
 * spool.
 *
 * A connection's life: accepted; counted against max-sessions; the guard
 * says whether its address may connect (lockout, per-address limits);
 * then, on the submissions role, the TLS handshake (RFC 8314); then the
 * greeting and the session. STARTTLS swaps the socket bufferevent for an
 * OpenSSL filter over it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "auth/guard.h"
#include "lib/log.h"
#include "outbound/queue.h"
#include "smtp/reply.h"
#include "daemon/notice.h"
#include "daemon/proc.h"
#include "daemon/sandbox_test.h"
#include "lib/sandbox.h"
#include "daemon/worker.h"
#include "smtp/session.h"
#include "store/spool.h"
#include "daemon/tls.h"

#define WORKER_READ_CHUNK (16 * 1024)
#define WORKER_OUTPUT_HIGH (64 * 1024) /* stop reading above this */

struct worker;

struct conn {
	struct worker *w;
	int fd;			/* until a bufferevent owns it */
	struct bufferevent *bev;
	struct session *s;
	struct spool_msg *msg;
	struct event *greet_timer;
	struct event *linger;	/* TLS: waiting for the last bytes to go */
	struct event *tarpit;	/* holding error replies (error-delay) */
	struct event *watchdog;	/* parked on the guard or the spool */
	int linger_ticks;
	const struct worker_listener *l;
	enum listen_role role;
	uint32_t guard_req;	/* a pending guard request, or 0 */
	const char *account;	/* of the pending send check */
	bool in_list;		/* linked in w->conns and counted */
	bool guard_counted;	/* the guard counts this session */
	bool commit_pending;
	bool queued;		/* the message has remote recipients */
	char qid[SPOOL_ID_MAX];
	bool dead;		/* closed while a commit was in flight */
	bool timed_out;		/* the disconnect line is written */
	bool handshaking;	/* TLS handshake under way */
	struct timeval deadline; /* for the command being received */
	struct conn *prev, *next;
	char id[24];
	char addr[INET6_ADDRSTRLEN];
	int port;
};

struct worker {
	struct event_base *base;
	const struct worker_env *env;
	const struct config *cfg;
	struct spool *spool;
	struct guard_client *guard;
	struct evconnlistener *lev[64];
	size_t n_lev;
	struct event *commit_ev;
	struct event *term_ev;
	struct event *retire_ev;
	struct event *deadline_ev;
	struct conn *conns;
	unsigned n_conns;
	unsigned long next_id;
	bool stopping;
	time_t space_checked; /* when space_free was measured */
	unsigned long long space_free;
};

static void conn_free(struct conn *c, const char *reason);
static void conn_flush(struct conn *c);
static void conn_close(struct conn *c, const char *reason);

static void
worker_maybe_exit(struct worker *w)
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
	conn_free(c, "timeout");
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

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static void
conn_tls_timeout(struct conn *c)
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
		conn_free(c, "error");
		return;
	}
	ssl = tls_server_ssl(c->w->env->tls);
	if (ssl == NULL) {
		conn_free(c, "error");
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
		conn_free(c, "error");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->handshaking = true;
	bufferevent_setcb(tls, conn_read_cb, conn_write_cb, conn_event_cb, c);
	conn_tls_timeout(c);
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
		conn_read_cb(c->bev, c);
	else
		conn_flush(c);
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
			conn_free(c, reason);
			return;
		}
		c->linger_ticks++;
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		evtimer_add(c->linger, &tv);
		return;
	}
	conn_free(c, reason);
}

/* Push the session's replies to the socket; close when it is done. */
static void
conn_tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	event_free(c->tarpit);
	c->tarpit = NULL;
	conn_flush(c);
}

static void
conn_flush(struct conn *c)
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

static void
conn_read_cb(struct bufferevent *bev, void *arg)
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
	conn_flush(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
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
		conn_read_cb(bev, c);
		return;
	}
	conn_flush(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
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
	conn_free(c, reason);
}

/* Close the connection; `reason` goes into the disconnect line (NULL when
   it was logged already). */
static void
conn_free(struct conn *c, const char *reason)
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
	session_free(&c->s);
	conn_unlink(c);
	if (c->commit_pending) {
		/* The spool calls back later; free then. */
		c->dead = true;
		return;
	}
	free(c);
	worker_maybe_exit(w);
}

/* --- session_ops: the spool and the guard behind the engine ------------ */

static int
conn_msg_begin(void *ctx, char *id_r)
{
	struct conn *c = ctx;

	if (spool_msg_begin(c->w->spool, &c->msg) < 0)
		return -1;
	snprintf(id_r, SPOOL_ID_MAX, "%s", spool_msg_id(c->msg));
	return 0;
}

static int
conn_msg_write(void *ctx, const void *buf, size_t len)
{
	struct conn *c = ctx;

	return c->msg != NULL ? spool_msg_write(c->msg, buf, len) : -1;
}

static void
conn_msg_abort(void *ctx)
{
	struct conn *c = ctx;

	if (c->msg != NULL)
		spool_msg_abort(&c->msg);
}

static void
conn_commit_cb(struct spool_msg *msg, int result, void *arg)
{
	struct conn *c = arg;

	c->commit_pending = false;
	if (result == 0 && c->queued) /* the first attempt starts now */
		queue_wake(c->w->env->queue_wake_fd, c->qid);
	if (c->dead) {
		struct worker *w = c->w;

		free(c);
		worker_maybe_exit(w);
		return;
	}
	session_commit_done(c->s, result);
	conn_flush(c);
}

static void
conn_msg_commit(void *ctx, const struct session_envelope *env)
{
	struct conn *c = ctx;
	struct spool_msg *msg = c->msg;

	c->msg = NULL;
	c->commit_pending = true;
	c->queued = false;
	for (size_t i = 0; i < env->n_rcpts; i++)
		c->queued |= env->rcpts[i].maildir == NULL;
	snprintf(c->qid, sizeof(c->qid), "%s", spool_msg_id(msg));
	if (env->auth_user != NULL)
		spool_msg_set_auth(msg, env->auth_user);
	spool_msg_set_hold(msg, env->hold);
	spool_msg_commit(msg, env->sender, env->rcpts, env->n_rcpts,
			 conn_commit_cb, c);
}

static void
conn_auth_cb(const struct guard_auth_reply *r, void *arg)
{
	static const enum session_auth_result res[] = { /* guard.h order */
	    SESSION_AUTH_OK, SESSION_AUTH_FAIL, SESSION_AUTH_LOCKED,
	    SESSION_AUTH_TEMPFAIL};
	struct conn *c = arg;

	c->guard_req = 0;
	session_auth_done(c->s,
			  r->result <= GUARD_AUTH_TEMPFAIL
			      ? res[r->result]
			      : SESSION_AUTH_TEMPFAIL,
			  r->user, r->addresses, r->n_addresses);
	conn_flush(c);
}

static void
conn_auth(void *ctx, const char *user, size_t user_len, const char *pass,
	  size_t pass_len)
{
	struct conn *c = ctx;

	c->guard_req = guard_client_auth(c->w->guard, user, user_len, pass,
					 pass_len, c->addr, c->role,
					 conn_auth_cb, c);
}

/* The guard's send-limit verdict; an alarm it raised gets its notice. */
static void
conn_send_cb(const struct guard_send_reply *r, void *arg)
{
	struct conn *c = arg;

	c->guard_req = 0;
	if (r->alarm_raised)
		notice_send_burst(c->w->spool, c->w->cfg, c->account, r->count,
				  r->baseline);
	/* The two enums share their order (guard.h, session.h). */
	session_send_done(c->s, (enum session_send_result)r->result);
	conn_flush(c);
}

static void
conn_send_check(void *ctx, const char *account, const char *rcpt)
{
	struct conn *c = ctx;

	c->account = account; /* the session's: outlives the request */
	c->guard_req = guard_client_send(c->w->guard, account, rcpt,
					 conn_send_cb, c);
}

static void
conn_send_undo(void *ctx, const char *account, unsigned n)
{
	guard_client_send_undo(((struct conn *)ctx)->w->guard, account, n);
}

static bool
conn_is_user(void *ctx, const char *address)
{
	struct conn *c = ctx;

	return guard_client_is_user(c->w->guard, address);
}

/*
 * Free space in the spool, as Postfix's queue_minfree: a new message needs
 * room for 1.5 times the larger of its declared size and the size limit.
 * statvfs is asked at most once a second.
 */
static bool
conn_has_space(void *ctx, unsigned long long size)
{
	struct conn *c = ctx;
	struct worker *w = c->w;
	unsigned long long need = c->w->cfg->max_message_size;
	time_t now = time(NULL);

	if (size > need)
		need = size;
	if (now != w->space_checked) {
		struct statvfs st;

		w->space_checked = now;
		if (statvfs(w->cfg->spool, &st) == 0)
			w->space_free = (unsigned long long)st.f_bavail *
					st.f_frsize;
		else
			w->space_free = ~0ULL; /* no answer: do not block */
	}
	if (w->space_free >= need + need / 2)
		return true;
	log_warning(c->id, "rejected reason=spool-space free=%llu",
		    w->space_free);
	return false;
}

static const struct session_ops conn_ops = {
	.has_space = conn_has_space,
	.msg_begin = conn_msg_begin,
	.msg_write = conn_msg_write,
	.msg_abort = conn_msg_abort,
	.msg_commit = conn_msg_commit,
	.auth = conn_auth,
	.is_user = conn_is_user,
	.send_check = conn_send_check,
	.send_undo = conn_send_undo,
};

/* --- accepting --------------------------------------------------------- */

static void
conn_greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	session_greet(c->s);
	conn_flush(c);
}

/* Refuse a connection before any session: a fixed 421 on plain-text
   ports, a plain close on implicit TLS (no cleartext there, RFC 8314). */
static void
conn_refuse(struct conn *c, enum reply_id id, const char *why)
{
	char line[REPLY_LINE_MAX];
	size_t n = reply_format(id, line, sizeof(line));

	log_notice(c->id, "refused client=%s reason=%s", c->addr, why);
	if (c->role != ROLE_SUBMISSIONS && c->fd >= 0 &&
	    write(c->fd, line, n) < 0) {
		/* the client is gone; nothing to do */
	}
	conn_free(c, NULL);
}

/* The guard allowed the session: TLS first on submissions, then greet. */
static void
conn_start(struct conn *c)
{
	struct worker *w = c->w;
	struct session_params p;

	if (c->role == ROLE_SUBMISSIONS) {
		SSL *ssl = w->env->tls != NULL ? tls_server_ssl(w->env->tls)
					       : NULL;

		if (ssl == NULL) {
			conn_free(c, NULL);
			return;
		}
		c->bev = bufferevent_openssl_socket_new(
			w->base, c->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
			BEV_OPT_CLOSE_ON_FREE);
		if (c->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev,
								     1);
		else
			c->fd = -1; /* see conn_starttls: may be closed */
	} else {
		c->bev = bufferevent_socket_new(w->base, c->fd,
						BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL) {
		conn_free(c, NULL);
		return;
	}
	c->fd = -1;
	p.cfg = w->cfg;
	p.role = c->role;
	p.id = c->id;
	p.client_addr = c->addr;
	p.tls_available = w->env->tls != NULL;
	c->s = session_new(&p, &conn_ops, c);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
			  c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, WORKER_READ_CHUNK * 4);
	if (c->role == ROLE_SUBMISSIONS) {
		c->handshaking = true;
		conn_tls_timeout(c);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	if (w->cfg->greet_delay > 0) {
		struct timeval tv = {w->cfg->greet_delay, 0};

		c->greet_timer = evtimer_new(w->base, conn_greet_cb, c);
		evtimer_add(c->greet_timer, &tv);
		bufferevent_enable(c->bev, EV_READ);
		tv.tv_sec += w->cfg->timeout_command;
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		return;
	}
	session_greet(c->s);
	conn_flush(c);
}

static void
conn_guard_cb(enum guard_conn_result result, void *arg)
{
	struct conn *c = arg;

	c->guard_req = 0;
	switch (result) {
	case GUARD_CONN_OK:
		c->guard_counted = true;
		if (c->w->stopping && c->w->deadline_ev != NULL) {
			conn_refuse(c, R_SHUTDOWN, "shutdown");
			break;
		}
		conn_start(c);
		break;
	case GUARD_CONN_LOCKED:
		conn_refuse(c, R_CONN_LOCKED, "locked");
		break;
	case GUARD_CONN_TOO_MANY:
		conn_refuse(c, R_CONN_TOO_MANY, "conn-limit");
		break;
	case GUARD_CONN_TOO_FAST:
		conn_refuse(c, R_CONN_TOO_FAST, "conn-rate");
		break;
	}
}

/* The accept callback needs both the worker and the listener. */
struct worker_lev_arg {
	struct worker *w;
	const struct worker_listener *l;
};

static void
conn_set_addr(struct conn *c, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, c->addr, sizeof(c->addr));
		c->port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, c->addr,
			  sizeof(c->addr));
		c->port = ntohs(sin6->sin6_port);
	} else {
		snprintf(c->addr, sizeof(c->addr), "unknown");
	}
}

static void
worker_accept(struct evconnlistener *lev, evutil_socket_t fd,
	      struct sockaddr *sa, int salen, void *arg)
{
	struct worker_lev_arg *a = arg;
	struct worker *w = a->w;
	struct conn *c;
	int on = 1;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->l = a->l;
	c->role = a->l->conf.role;
	snprintf(c->id, sizeof(c->id), "%05lx%06lx",
		 (unsigned long)getpid() & 0xfffff, w->next_id++ & 0xffffff);
	conn_set_addr(c, sa);
	(void)salen;
	/* max-sessions is server-wide: count first, then check. */
	if (w->stopping || atomic_fetch_add(&w->env->shared->total, 1) >=
				   w->cfg->max_sessions) {
		if (!w->stopping)
			atomic_fetch_sub(&w->env->shared->total, 1);
		conn_refuse(c, R_TOO_MANY_SESSIONS, "max-sessions");
		return;
	}
	atomic_fetch_add(&w->env->shared->slot[w->env->slot], 1);
	c->in_list = true;
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	log_info(c->id, "connect client=%s port=%d listener=%s role=%s",
		 c->addr, c->port, a->l->conf.addr_text,
		 config_role_name(c->role));
	c->guard_req = guard_client_conn_open(w->guard, c->addr, conn_guard_cb,
					      c);
}

/* --- the worker's life ------------------------------------------------- */

static void
worker_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	spool_commit_reap(w->spool);
	worker_maybe_exit(w);
}

static void
worker_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	log_notice("-", "shutdown-deadline sessions=%u", w->n_conns);
	/* Sessions still open lose only unacknowledged messages; a commit
	   in flight finishes (conn_free leaves it to its callback). */
	while (w->conns != NULL)
		conn_free(w->conns, "shutdown");
	worker_maybe_exit(w);
}

static void
worker_stop_accepting(struct worker *w)
{
	w->stopping = true;
	for (size_t i = 0; i < w->n_lev; i++)
		evconnlistener_disable(w->lev[i]);
}

static void
worker_term_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = {w->cfg->timeout_shutdown, 0};

	if (w->deadline_ev != NULL)
		return;
	worker_stop_accepting(w);
	log_info("-", "worker stopping sessions=%u", w->n_conns);
	for (struct conn *c = w->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->s == NULL || c->handshaking)
			continue;
		session_shutdown(c->s);
		conn_flush(c);
	}
	w->deadline_ev = evtimer_new(w->base, worker_deadline_cb, w);
	evtimer_add(w->deadline_ev, &tv);
	worker_maybe_exit(w);
}

/* SIGUSR1 (reload): stop accepting, let every session end by itself. */
static void
worker_retire_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;

	if (w->stopping)
		return;
	worker_stop_accepting(w);
	log_info("-", "worker retiring sessions=%u", w->n_conns);
	worker_maybe_exit(w);
}

void
worker_main(const struct worker_env *env)
{
	const struct config *cfg = env->cfg;
	struct worker w;
	struct worker_lev_arg args[64];
	char area[32];
	const char *err = NULL;

	proc_reset_signals();
	if (proc_drop_privileges(cfg->user) < 0)
		_exit(2);
	memset(&w, 0, sizeof(w));
	w.env = env;
	w.cfg = cfg;
	w.base = event_base_new();
	if (w.base == NULL)
		_exit(2);
	snprintf(area, sizeof(area), "%ld", (long)getpid());
	if (spool_open(cfg->spool, area, cfg->hostname, cfg->sync_method,
		       &w.spool, &err) < 0) {
		log_error("-", "spool dir=%s error=\"%s\"", cfg->spool,
			  err ? err : "?");
		_exit(2);
	}
	w.guard = guard_client_new(w.base, env->guard_fd);
	if (w.guard == NULL)
		_exit(2);
	w.commit_ev = event_new(w.base, spool_commit_fd(w.spool),
				EV_READ | EV_PERSIST, worker_commit_cb, &w);
	event_add(w.commit_ev, NULL);
	w.term_ev = evsignal_new(w.base, SIGTERM, worker_term_cb, &w);
	event_add(w.term_ev, NULL);
	w.retire_ev = evsignal_new(w.base, SIGUSR1, worker_retire_cb, &w);
	event_add(w.retire_ev, NULL);
	for (size_t i = 0; i < env->n_listeners && i < 64; i++) {
		args[i].w = &w;
		args[i].l = &env->listeners[i];
		w.lev[i] = evconnlistener_new(w.base, worker_accept, &args[i],
					      LEV_OPT_CLOSE_ON_EXEC, -1,
					      env->listeners[i].fd);
		if (w.lev[i] == NULL)
			_exit(2);
		w.n_lev++;
	}
#ifdef POSTERN_TEST_HOOKS
	sandbox_test_attack(cfg);
#endif
	if (sandbox_worker(cfg->sandbox, cfg->spool, cfg->maildir) < 0)
		_exit(2);
#ifdef POSTERN_TEST_HOOKS
	sandbox_test_violate();
#endif
	log_debug("-", "worker started slot=%u", env->slot);
	event_base_dispatch(w.base);
	for (size_t i = 0; i < w.n_lev; i++)
		evconnlistener_free(w.lev[i]);
	spool_close(&w.spool);
	guard_client_free(&w.guard);
	event_free(w.commit_ev);
	event_free(w.term_ev);
	event_free(w.retire_ev);
	if (w.deadline_ev != NULL)
		event_free(w.deadline_ev);
	event_base_free(w.base);
	log_info("-", "worker exited");
	_exit(0);
}
