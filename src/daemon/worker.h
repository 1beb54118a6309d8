/*
 * worker.h - a worker process: what the master gives it at fork, and the
 * counters it shares with the master and the other workers.
 */
#ifndef POSTERN_WORKER_H
#define POSTERN_WORKER_H

#include <stdatomic.h>
#include <stddef.h>

#include "conf/config.h"

#define WORKER_MAX 64

/*
 * Open sessions, counted across all workers in memory shared with the
 * master (max-sessions is a server-wide limit). Each worker counts in its
 * own slot as well, so that the master can take back the sessions of a
 * worker that died.
 */
#define WORKER_SLOTS (WORKER_MAX * 4)
struct worker_shared {
	atomic_uint total;
	atomic_uint slot[WORKER_SLOTS];
};

/* A bound listening socket and what it is for. */
struct worker_listener {
	int fd;
	struct config_listener conf;
};

struct tls_server;
struct metrics_map;

/* What a worker is given by the master at fork. */
struct worker_env {
	const struct config *cfg;
	const struct worker_listener *listeners;
	size_t n_listeners;
	struct worker_shared *shared; /* MAP_SHARED, made by the master */
	unsigned slot;		      /* this worker's slot in shared */
	struct tls_server *tls;	      /* NULL: no certificate configured */
	int guard_fd;		      /* the worker's end of its guard socket */
	int queue_wake_fd;	      /* wakes the queue process (queue_wake()) */
	struct metrics_map *metrics;  /* shared counters (docs/metrics.md) */
};

/*
 * The worker process, right after fork: resets signals, drops to the
 * configured account, opens its spool area, accepts until SIGTERM (stop,
 * sessions get until timeout-shutdown) or SIGUSR1 (retire: stop
 * accepting, let sessions end). Never returns; exit status 2 when it
 * could not start (logged).
 */
void worker_main(const struct worker_env *env) __attribute__((noreturn));

#endif
