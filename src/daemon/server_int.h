/*
 * server_int.h - what the master (server.c) and the workers (worker.c)
 * share. Not for other modules.
 */
#ifndef POSTERN_SERVER_INT_H
#define POSTERN_SERVER_INT_H

#include <stdatomic.h>
#include <stddef.h>

#include "conf/config.h"

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

extern struct server_shared *server_shared;

/* A bound listening socket and what it is for. */
struct server_listener {
	int fd;
	struct config_listener conf;
};

/* Put signal dispositions and the mask back to the defaults (children). */
void server_reset_signals(void);
/* Drop to the configured account (after binding); 0 or -1 (logged). */
int server_drop_privileges(const struct config *cfg);

struct tls_server;

/* What a worker is given by the master at fork. */
struct worker_env {
	const struct config *cfg;
	const struct server_listener *listeners;
	size_t n_listeners;
	unsigned slot;		/* in server_shared */
	struct tls_server *tls; /* NULL: no certificate configured */
	int guard_fd;		/* the worker's end of its guard socket */
	int queue_wake_fd;	/* wakes the queue process (queue_wake()) */
};

/* The worker process (worker.c): never returns. */
void worker_main(const struct worker_env *env) __attribute__((noreturn));

#endif
