/*
 * worker_int.h - what the two halves of a worker share: worker.c (the
 * session's hooks into the spool and the guard, accepting, the worker's
 * life) and worker_conn.c (a connection's I/O: TLS, reading, writing,
 * timeouts, closing). Not for other modules: they use worker.h.
 */
#ifndef POSTERN_WORKER_INT_H
#define POSTERN_WORKER_INT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "auth/guard.h"
#include "daemon/notice.h"
#include "daemon/worker.h"
#include "smtp/session.h"
#include "store/spool.h"

#define WORKER_READ_CHUNK (16 * 1024)
#define WORKER_OUTPUT_HIGH (64 * 1024) /* stop reading above this */

struct bufferevent;
struct evconnlistener;

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
	struct notice_writer notices; /* handed by the guard */
	bool stopping;
	time_t space_checked; /* when space_free was measured */
	unsigned long long space_free;
};

/* worker_conn.c */
/* Exit the loop when the worker stops and nothing is left to finish. */
void worker_conn_maybe_exit(struct worker *w);
/* Push the session's replies to the socket; close when it is done. */
void worker_conn_flush(struct conn *c);
/* Close the connection; `reason` goes into the disconnect line (NULL
   when it was logged already). */
void worker_conn_free(struct conn *c, const char *reason);
/* The TLS handshake's timeout (submissions, STARTTLS). */
void worker_conn_tls_timeout(struct conn *c);
/* The bufferevent callbacks of a session's connection (arg: the conn). */
void worker_conn_read_cb(struct bufferevent *bev, void *arg);
void worker_conn_write_cb(struct bufferevent *bev, void *arg);
void worker_conn_event_cb(struct bufferevent *bev, short what, void *arg);

#endif
