/*
 * server.c - the master and its workers. See server.h.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"
#include "maildir.h"
#include "session.h"
#include "spool.h"

#define SERVER_READ_CHUNK (16 * 1024)
#define SERVER_OUTPUT_HIGH (64 * 1024) /* stop reading above this */
#define SERVER_MAX_WORKERS 64

/*
 * Open sessions, counted across all workers in memory shared with the
 * master (max-sessions is a server-wide limit). Each worker counts in its
 * own slot as well, so that the master can take back the sessions of a
 * worker that died.
 */
#define SERVER_SLOTS (SERVER_MAX_WORKERS * 4)
struct server_shared {
	atomic_uint total;
	atomic_uint slot[SERVER_SLOTS];
};

static struct server_shared *server_shared;

/* --- listeners (master) ---------------------------------------------- */

struct server_listener {
	int fd;
	struct config_listener conf;
};

static int
server_bind(struct config_listener *l, const char **error_r)
{
	int fd, on = 1;

	fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
						 SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (l->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&l->addr, l->addr_len) < 0 ||
	    listen(fd, 1024) < 0) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

/* Bind the listeners of `cfg`, reusing sockets of `old` that listen on the
   same address (a reload must not drop connections waiting in the
   backlog). Returns 0, or -1 with every new socket closed. */
static int
server_bind_all(const struct config *cfg, struct server_listener *old,
		size_t n_old, struct server_listener **out_r)
{
	struct server_listener *out = calloc(cfg->n_listeners + 1,
					     sizeof(*out));

	if (out == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const char *err = NULL;

		out[i].conf = cfg->listeners[i];
		out[i].fd = -1;
		for (size_t j = 0; j < n_old; j++) {
			if (old[j].fd >= 0 &&
			    old[j].conf.addr_len == out[i].conf.addr_len &&
			    memcmp(&old[j].conf.addr, &out[i].conf.addr,
				   out[i].conf.addr_len) == 0) {
				out[i].fd = old[j].fd;
				old[j].fd = -1;
				break;
			}
		}
		if (out[i].fd < 0)
			out[i].fd = server_bind(&out[i].conf, &err);
		if (out[i].fd < 0) {
			log_error("-", "listen addr=%s error=\"%s\"",
				  out[i].conf.addr_text, err);
			for (size_t k = 0; k < i; k++)
				close(out[k].fd);
			free(out);
			return -1;
		}
	}
	*out_r = out;
	return 0;
}

/* --- connections (worker) -------------------------------------------- */

struct worker;

struct conn {
	struct worker *w;
	struct bufferevent *bev;
	struct session *s;
	struct spool_msg *msg;
	struct event *greet_timer;
	enum listen_role role;
	bool commit_pending;
	bool dead; /* closed while a commit was in flight */
	bool timed_out; /* the disconnect line is written */
	struct timeval deadline; /* for the command being received */
	struct conn *prev, *next;
	char id[24];
	char addr[INET6_ADDRSTRLEN];
};

struct worker {
	struct event_base *base;
	const struct config *cfg;
	struct spool *spool;
	struct evconnlistener *lev[64];
	size_t n_lev;
	struct server_listener *listeners;
	size_t n_listeners;
	struct event *commit_ev;
	struct event *term_ev;
	struct event *retire_ev;
	struct event *deadline_ev;
	struct conn *conns;
	unsigned n_conns;
	unsigned n_refused;
	unsigned long next_id;
	unsigned slot; /* in server_shared */
	bool stopping;
	bool retiring; /* reload: finish sessions, no 421 */
};

static void conn_free(struct conn *c, const char *reason);

static void
worker_maybe_exit(struct worker *w)
{
	if (w->stopping && w->n_conns == 0 &&
	    spool_commits_pending(w->spool) == 0)
		event_base_loopexit(w->base, NULL);
}

/*
 * Arm the read timeout: between reads inside message content, otherwise a
 * deadline for the whole command, renewed when no partial command is
 * waiting (RFC 5321 4.5.3.2; THREATS X-01).
 */
static void
conn_set_timeout(struct conn *c)
{
	struct timeval now, tv;

	if (session_is_parked(c->s)) {
		bufferevent_set_timeouts(c->bev, NULL, NULL);
		return;
	}
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

/* Push the session's replies to the socket; close when it is done. */
static void
conn_flush(struct conn *c)
{
	size_t len;
	const char *out = session_output(c->s, &len);

	if (len > 0) {
		bufferevent_write(c->bev, out, len);
		session_output_consume(c->s, len);
	}
	if (session_is_closing(c->s)) {
		bufferevent_disable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			conn_free(c, "closed");
		return;
	}
	/* Parked: a submission client may pipeline past the end of data;
	   hold its input until the reply (the mx engine watches for it). */
	if (session_is_parked(c->s) && c->role != ROLE_MX) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
	    SERVER_OUTPUT_HIGH) {
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
	char buf[SERVER_READ_CHUNK];

	while (evbuffer_get_length(in) > 0 && !session_is_closing(c->s)) {
		int n = evbuffer_remove(in, buf, sizeof(buf));

		if (n <= 0)
			break;
		session_input(c->s, buf, (size_t)n);
		if (session_is_parked(c->s) && c->role != ROLE_MX)
			break;
	}
	conn_flush(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	/* Output drained (low watermark 0). */
	if (session_is_closing(c->s)) {
		conn_free(c, c->timed_out ? NULL : "closed");
		return;
	}
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

	if (what & BEV_EVENT_TIMEOUT) {
		session_timeout(c->s);
		bufferevent_set_timeouts(bev, NULL, NULL);
		size_t len;
		const char *out = session_output(c->s, &len);

		/* Best effort: the peer may not be reading at all. */
		if (len > 0 && (what & BEV_EVENT_READING)) {
			bufferevent_write(bev, out, len);
			session_output_consume(c->s, len);
			bufferevent_disable(bev, EV_READ);
			struct timeval tv = {5, 0};

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
	}
	if (c->greet_timer != NULL) {
		event_free(c->greet_timer);
		c->greet_timer = NULL;
	}
	if (c->msg != NULL)
		spool_msg_abort(&c->msg);
	session_free(&c->s);
	if (c->commit_pending) {
		/* The spool calls back later; free then. */
		c->dead = true;
		return;
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	w->n_conns--;
	atomic_fetch_sub(&server_shared->slot[w->slot], 1);
	atomic_fetch_sub(&server_shared->total, 1);
	free(c);
	worker_maybe_exit(w);
}

/* session_ops: the spool behind the engine. */
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
	if (c->dead) {
		c->dead = false;
		conn_free(c, NULL);
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
	spool_msg_commit(msg, env->sender, env->rcpts, env->n_rcpts,
			 conn_commit_cb, c);
}

static const struct session_ops conn_ops = {
	.msg_begin = conn_msg_begin,
	.msg_write = conn_msg_write,
	.msg_abort = conn_msg_abort,
	.msg_commit = conn_msg_commit,
};

static void
conn_greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	session_greet(c->s);
	conn_flush(c);
}

/* The accept callback needs both the worker and the listener. */
struct worker_lev_arg {
	struct worker *w;
	struct server_listener *l;
};

static void
worker_accept(struct evconnlistener *lev, evutil_socket_t fd,
	      struct sockaddr *sa, int salen, void *arg)
{
	struct worker_lev_arg *a = arg;
	struct worker *w = a->w;
	struct conn *c;
	struct session_params p;
	int port = 0, on = 1;

	if (!w->stopping && atomic_fetch_add(&server_shared->total, 1) >=
				    w->cfg->max_sessions) {
		atomic_fetch_sub(&server_shared->total, 1);
		w->n_refused++;
	} else if (!w->stopping) {
		atomic_fetch_add(&server_shared->slot[w->slot], 1);
	}
	if (w->stopping || w->n_refused > 0) {
		w->n_refused = 0;
		static const char busy[] =
			"421 4.7.0 Too many connections, try later\r\n";

		if (write(fd, busy, sizeof(busy) - 1) < 0) {
			/* nothing to do */
		}
		log_notice("-", "refused reason=max-sessions");
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->w = w;
	c->role = a->l->conf.role;
	snprintf(c->id, sizeof(c->id), "%05lx%06lx",
		 (unsigned long)getpid() & 0xfffff, w->next_id++ & 0xffffff);
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, c->addr, sizeof(c->addr));
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, c->addr,
			  sizeof(c->addr));
		port = ntohs(sin6->sin6_port);
	} else {
		snprintf(c->addr, sizeof(c->addr), "unknown");
	}
	(void)salen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	p.cfg = w->cfg;
	p.role = c->role;
	p.id = c->id;
	p.client_addr = c->addr;
	c->s = session_new(&p, &conn_ops, c);
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	log_info(c->id, "connect client=%s port=%d listener=%s role=%s",
		 c->addr, port, a->l->conf.addr_text,
		 config_role_name(c->role));
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
			  c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SERVER_READ_CHUNK * 4);
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
	/* Sessions still open lose only unacknowledged messages. */
	while (w->conns != NULL) {
		struct conn *c = w->conns;

		if (c->commit_pending) {
			if (c->s != NULL)
				session_log_disconnect(c->s, "shutdown");
			/* Let the commit finish; unlink it from the list. */
			if (c->bev != NULL) {
				bufferevent_free(c->bev);
				c->bev = NULL;
			}
			w->conns = c->next;
			if (w->conns != NULL)
				w->conns->prev = NULL;
			c->prev = c->next = NULL;
			c->dead = true;
			session_free(&c->s);
			w->n_conns--;
			atomic_fetch_sub(&server_shared->slot[w->slot], 1);
			atomic_fetch_sub(&server_shared->total, 1);
			/* conn_commit_cb frees it; list links are NULL. */
			continue;
		}
		conn_free(c, "shutdown");
	}
	worker_maybe_exit(w);
}

static void
worker_term_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = {w->cfg->timeout_shutdown, 0};

	if (w->stopping)
		return;
	w->stopping = true;
	log_info("-", "worker stopping sessions=%u", w->n_conns);
	for (size_t i = 0; i < w->n_lev; i++)
		evconnlistener_disable(w->lev[i]);
	for (struct conn *c = w->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->s == NULL)
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
	w->stopping = true;
	w->retiring = true;
	log_info("-", "worker retiring sessions=%u", w->n_conns);
	for (size_t i = 0; i < w->n_lev; i++)
		evconnlistener_disable(w->lev[i]);
	worker_maybe_exit(w);
}

static void
server_reset_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
}

/* Drop to the configured account (after binding). */
static int
server_drop_privileges(const struct config *cfg)
{
	struct passwd *pw;

	if (cfg->user == NULL || geteuid() != 0)
		return 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		log_error("-", "user name=%s error=\"no such user\"",
			  cfg->user);
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_error("-", "setuid user=%s error=\"%s\"", cfg->user,
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* The worker process: never returns. */
static void __attribute__((noreturn))
worker_main(const struct config *cfg, struct server_listener *ls, size_t n,
	    unsigned slot)
{
	struct worker w;
	struct worker_lev_arg args[64];
	char area[32];
	const char *err = NULL;

	server_reset_signals();
	if (server_drop_privileges(cfg) < 0)
		_exit(2);
	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.listeners = ls;
	w.n_listeners = n;
	w.slot = slot;
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
	w.commit_ev = event_new(w.base, spool_commit_fd(w.spool),
				EV_READ | EV_PERSIST, worker_commit_cb, &w);
	event_add(w.commit_ev, NULL);
	w.term_ev = evsignal_new(w.base, SIGTERM, worker_term_cb, &w);
	event_add(w.term_ev, NULL);
	for (size_t i = 0; i < n && i < 64; i++) {
		args[i].w = &w;
		args[i].l = &ls[i];
		w.lev[i] = evconnlistener_new(w.base, worker_accept, &args[i],
					      LEV_OPT_CLOSE_ON_EXEC, -1,
					      ls[i].fd);
		if (w.lev[i] == NULL)
			_exit(2);
		w.n_lev++;
	}
	w.retire_ev = evsignal_new(w.base, SIGUSR1, worker_retire_cb, &w);
	event_add(w.retire_ev, NULL);
	log_debug("-", "worker started slot=%u", slot);
	event_base_dispatch(w.base);
	for (size_t i = 0; i < w.n_lev; i++)
		evconnlistener_free(w.lev[i]);
	spool_close(&w.spool);
	event_free(w.commit_ev);
	event_free(w.term_ev);
	event_free(w.retire_ev);
	if (w.deadline_ev != NULL)
		event_free(w.deadline_ev);
	event_base_free(w.base);
	log_info("-", "worker exited");
	_exit(0);
}

/* --- master ---------------------------------------------------------- */

struct master {
	struct config *cfg;
	const char *path;
	struct server_listener *listeners;
	size_t n_listeners;
	pid_t workers[SERVER_MAX_WORKERS];
	pid_t slot_pid[SERVER_SLOTS]; /* who counts in each shared slot */
	unsigned n_workers;
	pid_t retired[SERVER_MAX_WORKERS * 4]; /* asked to stop */
	unsigned n_retired;
	volatile sig_atomic_t got_chld, got_hup, got_term;
	time_t last_restart;
};

static struct master *master_self;

static void
master_signal(int sig)
{
	if (master_self == NULL)
		return;
	if (sig == SIGCHLD)
		master_self->got_chld = 1;
	else if (sig == SIGHUP)
		master_self->got_hup = 1;
	else
		master_self->got_term = 1;
}

/* Recover spool areas in a child running as the worker account. */
static void
master_recover(const struct config *cfg, const char *area)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		log_error("-", "recover error=\"%s\"", strerror(errno));
		return;
	}
	if (pid == 0) {
		const char *areas[2] = {area, NULL};
		int n;

		server_reset_signals();
		if (server_drop_privileges(cfg) < 0)
			_exit(2);
		n = spool_recover(cfg->spool, area ? areas : NULL,
				  cfg->hostname);
		if (n > 0)
			log_notice("-", "recovered messages=%d area=%s", n,
				   area ? area : "all");
		_exit(n < 0 ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* A dead worker's sessions are gone: take them off the shared count. */
static void
master_free_slot(struct master *m, pid_t pid)
{
	for (unsigned i = 0; i < SERVER_SLOTS; i++) {
		if (m->slot_pid[i] != pid)
			continue;
		atomic_fetch_sub(&server_shared->total,
				 atomic_exchange(&server_shared->slot[i], 0));
		m->slot_pid[i] = 0;
	}
}

static pid_t
master_spawn(struct master *m)
{
	unsigned slot = 0;
	pid_t pid;

	while (slot < SERVER_SLOTS && m->slot_pid[slot] != 0)
		slot++;
	if (slot == SERVER_SLOTS) {
		log_error("-", "fork error=\"no free worker slot\"");
		return -1;
	}
	pid = fork();

	if (pid < 0) {
		log_error("-", "fork error=\"%s\"", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		master_self = NULL;
		worker_main(m->cfg, m->listeners, m->n_listeners, slot);
	}
	if (pid > 0)
		m->slot_pid[slot] = pid;
	return pid;
}

static unsigned
master_worker_count(const struct config *cfg)
{
	long n = cfg->workers ? (long)cfg->workers
			      : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > SERVER_MAX_WORKERS)
		n = SERVER_MAX_WORKERS;
	return (unsigned)n;
}

static void
master_start_workers(struct master *m)
{
	m->n_workers = master_worker_count(m->cfg);
	for (unsigned i = 0; i < m->n_workers; i++)
		m->workers[i] = master_spawn(m);
}

/* Create the spool and each mailbox's Maildir, owned by the worker
   account, so that workers never need to create directories they may not
   own (and delivery to a new mailbox does not depend on the umask). */
static int
master_prepare_dirs(const struct config *cfg)
{
	struct passwd *pw = NULL;
	char dir[4096];

	if (cfg->user != NULL && geteuid() == 0) {
		pw = getpwnam(cfg->user);
		if (pw == NULL) {
			log_error("-", "user name=%s error=\"no such user\"",
				  cfg->user);
			return -1;
		}
	}
	if (mkdir(cfg->spool, 0700) < 0 && errno != EEXIST) {
		if (errno == ENOENT) {
			/* Make parents: state under ./var by default. */
			char tmp[4096];

			snprintf(tmp, sizeof(tmp), "%s", cfg->spool);
			for (char *p = tmp + 1; *p != '\0'; p++) {
				if (*p != '/')
					continue;
				*p = '\0';
				mkdir(tmp, 0755);
				*p = '/';
			}
			if (mkdir(cfg->spool, 0700) < 0 && errno != EEXIST)
				goto fail;
		} else {
			goto fail;
		}
	}
	if (pw != NULL && chown(cfg->spool, pw->pw_uid, pw->pw_gid) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->n_mailboxes; i++) {
		if (config_maildir_path(cfg, &cfg->mailboxes[i], dir,
					sizeof(dir)) < 0)
			continue;
		if (maildir_create(dir) < 0) {
			log_error("-", "maildir dir=%s error=\"%s\"", dir,
				  strerror(errno));
			return -1;
		}
		if (pw != NULL) {
			static const char *const sub[] = {"", "/tmp", "/new",
							  "/cur"};
			char p[4200];

			for (size_t k = 0; k < 4; k++) {
				snprintf(p, sizeof(p), "%s%s", dir, sub[k]);
				if (chown(p, pw->pw_uid, pw->pw_gid) < 0)
					log_warning("-",
						    "chown path=%s error=\"%s\"",
						    p, strerror(errno));
			}
		}
	}
	return 0;
fail:
	log_error("-", "spool dir=%s error=\"%s\"", cfg->spool,
		  strerror(errno));
	return -1;
}

static void
master_announce(const struct master *m)
{
	for (size_t i = 0; i < m->n_listeners; i++) {
		printf("postern: listening on %s (%s)\n",
		       m->listeners[i].conf.addr_text,
		       config_role_name(m->listeners[i].conf.role));
		log_info("-", "listening addr=%s role=%s",
			 m->listeners[i].conf.addr_text,
			 config_role_name(m->listeners[i].conf.role));
	}
	fflush(stdout);
}

/* SIGHUP: a bad file is refused and the old configuration kept. */
static void
master_reload(struct master *m)
{
	struct config *cfg = NULL;
	struct server_listener *ls = NULL;
	char *errs = NULL;
	size_t errs_len = 0;
	FILE *ef;
	int rc;

	if (m->path == NULL) {
		log_notice("-", "reload skipped reason=built-in-configuration");
		return;
	}
	ef = open_memstream(&errs, &errs_len);
	rc = config_load(m->path, &cfg, ef);
	fclose(ef);
	if (rc < 0) {
		for (char *line = errs, *nl; line != NULL && *line != '\0';
		     line = nl) {
			nl = strchr(line, '\n');
			if (nl != NULL)
				*nl++ = '\0';
			log_error("-", "reload refused error=\"%s\"", line);
		}
		free(errs);
		return;
	}
	free(errs);
	if (master_prepare_dirs(cfg) < 0 ||
	    server_bind_all(cfg, m->listeners, m->n_listeners, &ls) < 0) {
		log_error("-", "reload refused error=\"cannot apply\"");
		/* Give back the sockets moved into ls: none on failure. */
		config_free(&cfg);
		return;
	}
	for (size_t i = 0; i < m->n_listeners; i++)
		if (m->listeners[i].fd >= 0)
			close(m->listeners[i].fd);
	free(m->listeners);
	m->listeners = ls;
	m->n_listeners = cfg->n_listeners;
	/* Old workers drain with the old configuration (their copy). */
	for (unsigned i = 0; i < m->n_workers; i++) {
		if (m->workers[i] <= 0)
			continue;
		kill(m->workers[i], SIGUSR1);
		if (m->n_retired < sizeof(m->retired) / sizeof(m->retired[0]))
			m->retired[m->n_retired++] = m->workers[i];
	}
	config_free(&m->cfg);
	m->cfg = cfg;
	log_set_level(cfg->log_level);
	master_start_workers(m);
	log_notice("-", "reloaded file=%s workers=%u", m->path, m->n_workers);
	master_announce(m);
}

static bool
master_forget_retired(struct master *m, pid_t pid)
{
	for (unsigned i = 0; i < m->n_retired; i++) {
		if (m->retired[i] == pid) {
			m->retired[i] = m->retired[--m->n_retired];
			return true;
		}
	}
	return false;
}

static void
master_reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char area[32];
		bool retired = master_forget_retired(m, pid);

		snprintf(area, sizeof(area), "%ld", (long)pid);
		master_free_slot(m, pid);
		if (retired || m->got_term) {
			master_recover(m->cfg, area);
			continue;
		}
		for (unsigned i = 0; i < m->n_workers; i++) {
			if (m->workers[i] != pid)
				continue;
			if (WIFSIGNALED(status))
				log_error("-", "worker died pid=%ld signal=%d",
					  (long)pid, WTERMSIG(status));
			else
				log_error("-", "worker exited pid=%ld status=%d",
					  (long)pid, WEXITSTATUS(status));
			/* Finish what it committed, then replace it. */
			master_recover(m->cfg, area);
			if (time(NULL) == m->last_restart)
				sleep(1); /* no crash loop at full speed */
			m->last_restart = time(NULL);
			m->workers[i] = master_spawn(m);
		}
	}
}

static void
master_stop(struct master *m)
{
	time_t deadline = time(NULL) + m->cfg->timeout_shutdown + 5;
	unsigned alive;

	log_notice("-", "stopping");
	for (size_t i = 0; i < m->n_listeners; i++) {
		close(m->listeners[i].fd);
		m->listeners[i].fd = -1;
	}
	for (unsigned i = 0; i < m->n_workers; i++)
		if (m->workers[i] > 0)
			kill(m->workers[i], SIGTERM);
	for (unsigned i = 0; i < m->n_retired; i++)
		kill(m->retired[i], SIGTERM);
	do {
		pid_t pid;
		int status;

		alive = 0;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			char area[32];

			snprintf(area, sizeof(area), "%ld", (long)pid);
			master_recover(m->cfg, area);
			for (unsigned i = 0; i < m->n_workers; i++)
				if (m->workers[i] == pid)
					m->workers[i] = 0;
			master_forget_retired(m, pid);
		}
		for (unsigned i = 0; i < m->n_workers; i++)
			if (m->workers[i] > 0)
				alive++;
		alive += m->n_retired;
		if (alive > 0) {
			struct timespec ts = {0, 50 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	} while (alive > 0 && time(NULL) < deadline);
	if (alive > 0) {
		for (unsigned i = 0; i < m->n_workers; i++)
			if (m->workers[i] > 0)
				kill(m->workers[i], SIGKILL);
		for (unsigned i = 0; i < m->n_retired; i++)
			kill(m->retired[i], SIGKILL);
		while (waitpid(-1, NULL, 0) > 0)
			;
		master_recover(m->cfg, NULL);
	}
	log_notice("-", "stopped");
}

static void
server_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
server_run(struct config *cfg, const char *path, bool foreground)
{
	struct master m;
	struct sigaction sa;
	sigset_t mask, old;

	memset(&m, 0, sizeof(m));
	server_shared = mmap(NULL, sizeof(*server_shared),
			     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			     -1, 0);
	if (server_shared == MAP_FAILED) {
		perror("postern: mmap");
		return 1;
	}
	m.cfg = cfg;
	m.path = path;
	master_self = &m;
	log_init("postern", foreground, cfg->log_level);
	server_raise_nofile();
	if (geteuid() == 0 && cfg->user == NULL)
		log_warning("-", "running as root: set `user` to the account "
				 "that owns the spool and the Maildirs");
	if (master_prepare_dirs(cfg) < 0)
		return 1;
	if (server_bind_all(cfg, NULL, 0, &m.listeners) < 0)
		return 1;
	m.n_listeners = cfg->n_listeners;
	if (!foreground && daemon(1, 0) < 0) {
		log_error("-", "daemon error=\"%s\"", strerror(errno));
		return 1;
	}
	/* Committed but undelivered messages from a previous run. */
	master_recover(cfg, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, &old);

	master_start_workers(&m);
	master_announce(&m);
	log_notice("-", "started workers=%u config=%s", m.n_workers,
		   path ? path : "(built-in)");
	while (!m.got_term) {
		sigsuspend(&old);
		if (m.got_chld) {
			m.got_chld = 0;
			master_reap(&m);
		}
		if (m.got_hup) {
			m.got_hup = 0;
			master_reload(&m);
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	master_stop(&m);
	free(m.listeners);
	config_free(&m.cfg);
	master_self = NULL;
	return 0;
}
