/*
 * guard_fair.h - the order in which the guard verifies password hashes
 * (docs/performance.md "Login under attack"): one FIFO queue per client
 * network (IPv4 /24, IPv6 /48), the networks served in turn (round
 * robin). A legitimate login from a quiet network waits for about one
 * hash per active network, however many guesses one network has queued.
 *
 * Pure data structure, no locking: guard_pool.c holds its mutex around
 * every call. Jobs are linked through guard_job.next; the queue does not
 * own them.
 */
#ifndef POSTERN_GUARD_FAIR_H
#define POSTERN_GUARD_FAIR_H

#include <stddef.h>

struct guard_job;
struct guard_fair;

enum guard_fair_result {
	GUARD_FAIR_OK = 0,
	GUARD_FAIR_FULL,     /* all queues together hold total_max jobs */
	GUARD_FAIR_NET_FULL, /* this client network holds net_max jobs */
};

/* NULL out of memory. Both bounds are at least 1. */
struct guard_fair *guard_fair_new(size_t total_max, size_t net_max);
void guard_fair_free(struct guard_fair **f);

/* Change the per-network bound (a reload); queued jobs stay. */
void guard_fair_set_net_max(struct guard_fair *f, size_t net_max);

/* Queue `j` behind the jobs of its network (from j->addr; an address
   that does not parse shares one network with all such). */
enum guard_fair_result guard_fair_push(struct guard_fair *f,
				       struct guard_job *j);

/* The next job in round-robin order, NULL when none is queued. */
struct guard_job *guard_fair_pop(struct guard_fair *f);

size_t guard_fair_count(const struct guard_fair *f);
/* How many networks have jobs queued. */
size_t guard_fair_networks(const struct guard_fair *f);

/* "192.0.2.0/24", "2001:db8:1::/48" or "other": the network of `addr`,
   as queued and logged. */
void guard_fair_net_text(const char *addr, char *buf, size_t size);

#endif
