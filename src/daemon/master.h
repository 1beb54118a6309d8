/*
 * master.h - the master's children (master.c), shared with the master's
 * life cycle in server.c: start-up, the signal loop, reload.
 *
 * Calls run one way: server.c calls these; nothing here calls server.c.
 * The master owns one `struct master`; master_self points at it so that
 * the signal handler (server.c) can reach it, and each child clears it.
 */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "conf/config.h"
#include "daemon/worker.h"

/* The restart bookkeeping of one child (a worker's place or the guard). */
struct master_backoff {
	int64_t started; /* ms on the monotonic clock */
	unsigned streak; /* young deaths in a row */
	bool waiting;	 /* dead, to be restarted at `due` */
	int64_t due;	 /* ms on the monotonic clock */
};

struct master {
	struct config *cfg;
	const char *path;
	struct worker_listener *listeners;
	size_t n_listeners;
	pid_t workers[WORKER_MAX]; /* 0: dead (see wb) */
	struct master_backoff wb[WORKER_MAX];
	pid_t slot_pid[WORKER_SLOTS]; /* who counts in each shared slot */
	unsigned n_workers;
	pid_t retired[WORKER_MAX * 4]; /* asked to stop */
	unsigned n_retired;
	volatile sig_atomic_t got_chld, got_hup, got_term;
	struct master_backoff gb;     /* the guard's */
	struct worker_shared *shared; /* session counts (MAP_SHARED) */
	struct tls_server *tls;	    /* NULL when no certificate */
	unsigned char ticket_secret[32];
	pid_t guard;		    /* the guard process */
	int guard_fd;		    /* master's end of the guard channel */
	pid_t queue;		    /* the queue process (outbound) */
	struct master_backoff qb;   /* the queue process's */
	int wake_rd, wake_wr;	    /* workers wake the queue process */
	struct worker_env env[WORKER_SLOTS]; /* what each worker got */
	struct metrics_map *metrics; /* the shared counters (or NULL) */
	int metrics_fd;		     /* the endpoint's socket, or -1 */
	pid_t metrics_pid;	     /* the endpoint process */
	struct master_backoff mb;    /* its restarts */
};

/* The master of this process (NULL in a child). */
extern struct master *master_self;

/* ms on the monotonic clock */
int64_t master_now_ms(void);
/* The child of `b` was started at `now`. */
void master_backoff_started(struct master_backoff *b, int64_t now);

/* Recover spool area `area` (NULL: all) in a child running as the worker
   account, and wait for it. */
void master_recover(const struct config *cfg, const char *area);

/* Start the guard process; 0 or -1 (logged). */
int master_spawn_guard(struct master *m);
/* The wake-up pipe, then the queue process; 0 or -1 (logged). */
int master_start_queue(struct master *m);
/* Start the metrics endpoint process; 0 or -1 (logged). */
int master_spawn_metrics(struct master *m);

/* Start every worker afresh; the young deaths counted so far are
   forgotten. */
void master_start_workers(struct master *m);
/* Ask every worker to finish its sessions and exit (SIGUSR1). */
void master_retire_workers(struct master *m);

/* Collect every child that ended and schedule its restart (SIGCHLD). */
void master_reap(struct master *m);
/* Start the children whose back-off is over. */
void master_restart(struct master *m);
/* How long the master may sleep: `ts` filled, or NULL (until a signal). */
struct timespec *master_next_wake(const struct master *m, struct timespec *ts);

/* Close the listeners, stop every child (SIGTERM, then SIGKILL after
   timeout-shutdown), recover what they left, remove the control socket. */
void master_stop(struct master *m);

#endif
