/*
 * guard.c - the guard process (guard.h, docs/lockout.md): credentials,
 * lockouts and per-address limits for every worker.
 *
 * One libevent loop owns all state. This file starts the guard, serves
 * the master (worker sockets and reload requests, one octet a message),
 * reloads the configuration and the users file, and dispatches the
 * frames workers send (guard_proto.h) to the parts that answer them:
 * the AUTH path (guard_auth.c, which hashes in guard_pool.c's threads),
 * the connection limits (here, with the pure lockout.c), the send limits
 * (guard_send.c) and the postmaster notices (guard_notice.c). The
 * workers' connections themselves are guard_peer.c's; the control
 * socket is guard_control.c's.
 */
#include "auth/guard.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "auth/alarm.h"
#include "auth/guard_int.h"
#include "auth/guard_state.h"
#include "auth/users.h"
#include "lib/sandbox.h"
#include "lib/log.h"
#include "metrics/metrics.h"

#define SID GUARD_SID
#define GUARD_INPUT_MAX (256 * 1024)

static struct {
	bool owns_cfg;
	const char *cfg_path;
	unsigned char secret[crypto_generichash_KEYBYTES]; /* the lockout's */
	struct event *master_ev, *expire_ev, *term_ev;
} G;

/* CONN_RES carries the lockout verdict as the guard_conn_result. */
_Static_assert((int)LOCKOUT_OK == (int)GUARD_CONN_OK &&
		   (int)LOCKOUT_LOCKED == (int)GUARD_CONN_LOCKED &&
		   (int)LOCKOUT_TOO_MANY == (int)GUARD_CONN_TOO_MANY &&
		   (int)LOCKOUT_TOO_FAST == (int)GUARD_CONN_TOO_FAST,
	       "lockout verdicts and guard_conn_result differ");

static void
handle_conn_open(struct guard_peer *p, const struct guard_msg *m)
{
	static const char *const reasons[] = {"ok", "locked", "too-many",
					      "too-fast"};
	static struct guard_msg r;
	char client[GUARD_ADDR_MAX * 4 + 8];
	enum lockout_verdict v;

	v = lockout_conn_open(guard_g.lo, m->addr, guard_now(), NULL);
	if (v == LOCKOUT_OK)
		guard_peer_open_add(p, m->addr);
	else
		log_info(SID, "conn-refused client=%s reason=%s",
			 guard_addr_text(client, sizeof(client), m->addr),
			 reasons[v]);
	memset(&r, 0, offsetof(struct guard_msg, arena));
	r.type = GUARD_MSG_CONN_RES;
	r.id = m->id;
	/* The lockout verdicts and guard_conn_result share their order. */
	r.result = (uint8_t)v;
	guard_peer_send(p, &r);
}

/* Handle one decoded frame; false when the peer must be dropped. */
static bool
peer_handle(struct guard_peer *p, const struct guard_msg *m)
{
	switch (m->type) {
	case GUARD_MSG_AUTH_REQ:
		if (m->role > ROLE_SUBMISSIONS)
			return false;
		guard_auth_request(p, m);
		return true;
	case GUARD_MSG_CONN_OPEN:
		handle_conn_open(p, m);
		return true;
	case GUARD_MSG_CONN_CLOSE:
		if (guard_peer_open_del(p, m->addr))
			lockout_conn_close(guard_g.lo, m->addr, guard_now());
		return true;
	case GUARD_MSG_SEND_REQ: {
		static struct guard_msg r;

		guard_send_request(m, &r);
		guard_peer_send(p, &r);
		/* The notice is the guard's to keep until a worker confirms
		   it, whatever becomes of this request's session. */
		if (r.alarm)
			guard_notice_raise(p, m->user, r.count, r.baseline);
		return true;
	}
	case GUARD_MSG_SEND_UNDO:
		guard_send_undo(m);
		return true;
	case GUARD_MSG_NOTICE_DONE:
		return guard_notice_done(p, m);
	default:
		return false;
	}
}

/*
 * Read whole frames. A bad length, a bad frame or a type a worker may not
 * send drops the worker's connection (THREATS Q-05 #3), never the guard.
 * The frame is wiped inside the buffer before it is drained (passwords).
 */
static void
peer_read_cb(struct bufferevent *bev, void *arg)
{
	static struct guard_msg m;
	struct guard_peer *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *error;

	p->refs++; /* guard_peer_drop() below must not free it under us */
	while (p->bev != NULL) {
		int rc = guard_proto_read(in, &m, &error);

		if (rc == 0)
			break;
		if (rc < 0) {
			log_warning(SID, "bad-frame serial=%u error=\"%s\"",
				    p->serial, error);
			guard_peer_drop(p, error);
			break;
		}
		if (!peer_handle(p, &m)) {
			log_warning(SID, "bad-frame serial=%u type=%d",
				    p->serial, (int)m.type);
			guard_peer_drop(p, "unexpected frame");
		}
		sodium_memzero(m.arena, sizeof(m.arena));
	}
	guard_peer_unref(p);
}

static void
peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	guard_peer_drop(arg, (what & BEV_EVENT_EOF) ? "eof" : "error");
}

static void
peer_add(int fd)
{
	struct guard_peer *p = calloc(1, sizeof(*p));

	if (p == NULL || evutil_make_socket_nonblocking(fd) < 0) {
		free(p);
		close(fd);
		return;
	}
	p->bev =
	    bufferevent_socket_new(guard_g.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (p->bev == NULL) {
		free(p);
		close(fd);
		return;
	}
	p->refs = 1;
	p->serial = ++guard_g.next_serial;
	p->next = guard_g.peers;
	if (guard_g.peers != NULL)
		guard_g.peers->prev = p;
	guard_g.peers = p;
	bufferevent_setcb(p->bev, peer_read_cb, NULL, peer_event_cb, p);
	bufferevent_setwatermark(p->bev, EV_READ, 0, GUARD_INPUT_MAX);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	log_info(SID, "worker-connected serial=%u", p->serial);
	guard_peer_push_users(p);
	guard_notice_peer_added(p);
}

/* --- users file and reload ------------------------------------------- */

/* Log what a loader wrote to its error stream, line by line. */
static void
log_errors(const char *event, char *text)
{
	char *line = text, *nl, esc[600];

	for (; line != NULL && *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		log_error(
		    SID, "%s error=%s", event,
		    log_escape_text(esc, sizeof(esc), line, strlen(line), 120));
	}
}

/* Load cfg->users_file; keep the old list when the new one is bad. */
static bool
load_users(void)
{
	struct users *u = NULL;
	char *text = NULL;
	size_t size = 0;
	FILE *err;
	int rc;

	if (guard_g.cfg->users_file == NULL) {
		users_free(&guard_g.users);
		guard_send_set_users(NULL);
		return true;
	}
	err = open_memstream(&text, &size);
	if (err == NULL)
		return false;
	rc = users_load(guard_g.cfg->users_file, &u, err);
	fclose(err);
	if (rc < 0) {
		log_errors("users-error", text);
		log_error(SID, "users-kept reason=\"bad users file\"");
		free(text);
		return false;
	}
	free(text);
	users_free(&guard_g.users);
	guard_g.users = u;
	guard_send_set_users(u);
	log_info(SID, "users-loaded count=%zu", users_count(u));
	if (users_count(u) == 0)
		log_warning(SID, "users-none reason=\"the users file has no "
				 "users: AUTH answers 454 4.7.0\"");
	return true;
}

static void
apply_config(void)
{
	struct lockout_config lc;

	lockout_config_from(&lc, guard_g.cfg);
	lockout_set_config(guard_g.lo, &lc);
	guard_send_set_config(guard_g.cfg);
}

static void
reload(void)
{
	if (G.cfg_path != NULL) {
		struct config *cfg = NULL;
		char *text = NULL;
		size_t size = 0;
		FILE *err = open_memstream(&text, &size);
		int rc = err != NULL ? config_load(G.cfg_path, &cfg, err) : -1;

		if (err != NULL)
			fclose(err);
		if (rc < 0) {
			log_errors("config-error", text);
			log_error(SID, "config-kept reason=\"bad file\"");
		} else {
			if (G.owns_cfg)
				config_free(&guard_g.cfg);
			guard_g.cfg = cfg;
			G.owns_cfg = true;
			apply_config();
			guard_pool_set_net_max(
			    guard_g.cfg->auth_queue_per_network);
		}
		free(text);
	}
	if (load_users()) {
		guard_auth_cache_clear();
		for (struct guard_peer *p = guard_g.peers; p != NULL;
		     p = p->next)
			guard_peer_push_users(p);
	}
}

/* --- the master ------------------------------------------------------ */

static void
master_cb(evutil_socket_t fd, short what, void *arg)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {0};
	struct cmsghdr *c;
	struct iovec iov;
	int passed = -1;
	ssize_t n;
	char op;

	(void)what;
	(void)arg;
	iov.iov_base = &op;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* The master is gone: so are we. */
		log_info(SID, "exit reason=\"master gone\"");
		guard_state_stop();
		guard_control_unlink();
		_exit(0);
	}
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&passed, CMSG_DATA(c), sizeof(int));
	if (op == GUARD_MASTER_WORKER && passed >= 0) {
		peer_add(passed);
		return;
	}
	if (passed >= 0)
		close(passed);
	if (op == GUARD_MASTER_RELOAD)
		reload();
	else
		log_warning(SID, "master-message error=\"unknown\"");
}

static int
send_op(int master_fd, char op, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {0};
	struct iovec iov;
	ssize_t n;

	iov.iov_base = &op;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(master_fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

int
guard_send_worker_fd(int master_fd, int worker_fd)
{
	return worker_fd < 0
		   ? -1
		   : send_op(master_fd, GUARD_MASTER_WORKER, worker_fd);
}

int
guard_send_reload(int master_fd)
{
	return send_op(master_fd, GUARD_MASTER_RELOAD, -1);
}

/* --- main ------------------------------------------------------------ */

static void
expire_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	lockout_expire(guard_g.lo, guard_now());
	guard_locks_gauge();
}

/* SIGTERM (the master stopping): write the state, then go. */
static void
term_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	guard_state_stop();
	log_info(SID, "exit reason=\"stopped\"");
	_exit(0);
}

static __attribute__((noreturn)) void
guard_die(const char *why)
{
	log_error(SID, "fatal error=\"%s\"", why);
	_exit(1);
}

void
guard_main(const struct config *cfg, const char *cfg_path, int master_fd,
	   int control_fd)
{
	struct timeval minute = {60, 0};
	struct lockout_config lc;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (sodium_init() < 0)
		guard_die("libsodium");
	memset(&G, 0, sizeof(G));
	memset(&guard_g, 0, sizeof(guard_g));
	/* The guard never frees the master's copy; it is ours after fork. */
	guard_g.cfg = (struct config *)cfg;
	G.cfg_path = cfg_path;
	randombytes_buf(G.secret, sizeof(G.secret));
	guard_g.base = event_base_new();
	if (guard_g.base == NULL)
		guard_die("event_base_new");
	lockout_config_from(&lc, guard_g.cfg);
	guard_g.lo = lockout_new(&lc, G.secret);
	if (guard_g.lo == NULL || guard_auth_init() < 0)
		guard_die("out of memory");
	/* logs a failure */
	(void)guard_state_start(guard_g.base, guard_g.cfg, guard_g.lo);
	if (guard_send_init(guard_g.cfg, guard_state_store()) < 0 ||
	    guard_notice_init(guard_g.base, guard_state_store()) < 0)
		guard_die("out of memory");
	if (!load_users())
		log_error(SID, "users-none reason=\"AUTH answers 454 4.7.0 "
			       "until a good users file is loaded\"");
	evutil_make_socket_nonblocking(master_fd);
	G.master_ev = event_new(guard_g.base, master_fd, EV_READ | EV_PERSIST,
				master_cb, NULL);
	G.expire_ev = event_new(guard_g.base, -1, EV_PERSIST, expire_cb, NULL);
	G.term_ev = evsignal_new(guard_g.base, SIGTERM, term_cb, NULL);
	if (G.master_ev == NULL || G.expire_ev == NULL || G.term_ev == NULL ||
	    event_add(G.master_ev, NULL) < 0 ||
	    event_add(G.term_ev, NULL) < 0 ||
	    event_add(G.expire_ev, &minute) < 0)
		guard_die("event setup");
	guard_control_open(guard_g.base, guard_g.lo, control_fd);
	/* The dummy hash is made on first use: make it now, so that the
	   first unknown user costs no more than any other. */
	users_verify_dummy("", 0);
	/* The sandbox before the threads: they inherit it (Landlock binds
	   the calling thread only). */
	if (sandbox_guard(guard_g.cfg->sandbox, guard_g.cfg->users_file,
			  G.cfg_path, guard_g.cfg->control_socket) < 0)
		guard_die("sandbox");
	if (guard_pool_start(guard_g.base, (long)guard_g.cfg->auth_threads,
			     guard_g.cfg->auth_queue_per_network,
			     guard_auth_done) < 0)
		guard_die("cannot start the hashing threads");
	log_info(SID, "started pid=%ld", (long)getpid());
	guard_locks_gauge(); /* locks kept from before a restart */
	event_base_dispatch(guard_g.base);
	guard_die("event loop ended");
}

