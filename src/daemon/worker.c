/*
 * worker.c - a worker process: one libevent loop accepting on the shared
 * listeners, running TLS and SMTP sessions, asking the guard, writing the
 * spool. This file: the session's hooks into the spool and the guard
 * (session_ops), accepting, and the worker's life; a connection's I/O
 * (TLS, reading, writing, closing) is worker_conn.c's.
 *
 * A connection's life: accepted; counted against max-sessions; the guard
 * says whether its address may connect (lockout, per-address limits);
 * then, on the submissions role, the TLS handshake (RFC 8314); then the
 * greeting and the session. STARTTLS swaps the socket bufferevent for an
 * OpenSSL filter over it.
 */
#include <errno.h>
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

#include "auth/guard.h"
#include "daemon/notice.h"
#include "daemon/proc.h"
#include "daemon/sandbox_test.h"
#include "daemon/tls.h"
#include "daemon/worker_int.h"
#include "lib/log.h"
#include "lib/sandbox.h"
#include "metrics/metrics.h"
#include "outbound/queue.h"
#include "smtp/reply.h"
#include "smtp/session.h"
#include "store/spool.h"

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
	metrics_message(c->role, result, spool_msg_rcpts(msg),
			spool_msg_size(msg));
	if (result == 0 && c->queued) /* the first attempt starts now */
		queue_wake(c->w->env->queue_wake_fd, c->qid);
	if (c->dead) {
		struct worker *w = c->w;

		free(c);
		worker_conn_maybe_exit(w);
		return;
	}
	session_commit_done(c->s, result);
	worker_conn_flush(c);
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
	metrics_login((int)r->result); /* guard.h's order */
	session_auth_done(c->s,
			  r->result <= GUARD_AUTH_TEMPFAIL
			      ? res[r->result]
			      : SESSION_AUTH_TEMPFAIL,
			  r->user, r->addresses, r->n_addresses);
	worker_conn_flush(c);
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

/* The guard's send-limit verdict. The postmaster's notice of an alarm
   it raised comes in a frame of its own (notice.c), not through here:
   the session may be gone before its answer arrives. */
static void
conn_send_cb(const struct guard_send_reply *r, void *arg)
{
	struct conn *c = arg;

	c->guard_req = 0;
	/* The two enums share their order (guard.h, session.h). */
	session_send_done(c->s, (enum session_send_result)r->result);
	worker_conn_flush(c);
}

static void
conn_send_check(void *ctx, const char *account, const char *rcpt)
{
	struct conn *c = ctx;

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
	.refused = metrics_refused,
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
	worker_conn_flush(c);
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
	worker_conn_free(c, NULL);
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
			worker_conn_free(c, NULL);
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
		worker_conn_free(c, NULL);
		return;
	}
	c->fd = -1;
	p.cfg = w->cfg;
	p.role = c->role;
	p.id = c->id;
	p.client_addr = c->addr;
	p.tls_available = w->env->tls != NULL;
	c->s = session_new(&p, &conn_ops, c);
	metrics_role_add(MG_SESSIONS_MX, c->role, 1);
	bufferevent_setcb(c->bev, worker_conn_read_cb, worker_conn_write_cb,
			  worker_conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, WORKER_READ_CHUNK * 4);
	if (c->role == ROLE_SUBMISSIONS) {
		c->handshaking = true;
		worker_conn_tls_timeout(c);
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
	worker_conn_flush(c);
}

static void
conn_guard_cb(enum guard_conn_result result, void *arg)
{
	struct conn *c = arg;

	c->guard_req = 0;
	metrics_conn(c->role, (int)result); /* guard.h's order */
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
	c->port = proc_addr_text(sa, c->addr, sizeof(c->addr));
	(void)salen;
	/* max-sessions is server-wide: count first, then check. */
	if (w->stopping || atomic_fetch_add(&w->env->shared->total, 1) >=
				   w->cfg->max_sessions) {
		if (!w->stopping)
			atomic_fetch_sub(&w->env->shared->total, 1);
		metrics_conn(c->role, w->stopping ? METRICS_CONN_SHUTDOWN
						  : METRICS_CONN_MAX_SESSIONS);
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
	worker_conn_maybe_exit(w);
}

static void
worker_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	log_notice("-", "shutdown-deadline sessions=%u", w->n_conns);
	/* Sessions still open lose only unacknowledged messages; a commit
	   in flight finishes (worker_conn_free leaves it to its callback). */
	while (w->conns != NULL)
		worker_conn_free(w->conns, "shutdown");
	worker_conn_maybe_exit(w);
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
		worker_conn_flush(c);
	}
	w->deadline_ev = evtimer_new(w->base, worker_deadline_cb, w);
	evtimer_add(w->deadline_ev, &tv);
	worker_conn_maybe_exit(w);
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
	worker_conn_maybe_exit(w);
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
	w.notices.spool = w.spool;
	w.notices.cfg = cfg;
	w.notices.guard = w.guard;
	guard_client_on_notice(w.guard, notice_handed, &w.notices);
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

