/*
 * guard_fair.c - per-network queues of hashing jobs, served in turn
 * (guard_fair.h).
 *
 * Each network with jobs queued has a struct guard_fair_net, found by a
 * hash of its masked address and linked in the ring of active networks.
 * A pop takes the first job of the ring's first network and moves that
 * network to the ring's end (or frees it when its queue is empty): with
 * N networks active, a network's next job is at most N pops away.
 */
#include "auth/guard_fair.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/guard_int.h"
#include "auth/lockout.h"

#define GUARD_FAIR_BUCKETS 1024
#define GUARD_FAIR_V4_BITS 24
#define GUARD_FAIR_V6_BITS 48

struct guard_fair_net {
	struct guard_fair_net *chain; /* same hash bucket */
	struct guard_fair_net *ring;  /* next active network */
	struct guard_job *head, *tail;
	size_t count;
	int family; /* AF_INET, AF_INET6, or 0: not an address */
	unsigned char key[16];
};

struct guard_fair {
	struct guard_fair_net *bucket[GUARD_FAIR_BUCKETS];
	struct guard_fair_net *ring_head, *ring_tail;
	size_t count, n_nets, total_max, net_max;
};

/* The network of `addr`: family and address masked to /24 or /48. */
static void
guard_fair_key(const char *addr, int *family_r, unsigned char key[16])
{
	unsigned bits;

	memset(key, 0, 16);
	if (lockout_parse_addr(addr, family_r, key) < 0) {
		*family_r = 0;
		memset(key, 0, 16);
		return;
	}
	bits = *family_r == AF_INET ? GUARD_FAIR_V4_BITS : GUARD_FAIR_V6_BITS;
	memset(key + bits / 8, 0, 16 - bits / 8);
}

static unsigned
guard_fair_hash(int family, const unsigned char key[16])
{
	uint32_t h = 2166136261u ^ (uint32_t)family;

	for (size_t i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % GUARD_FAIR_BUCKETS;
}

struct guard_fair *
guard_fair_new(size_t total_max, size_t net_max)
{
	struct guard_fair *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->total_max = total_max > 0 ? total_max : 1;
	f->net_max = net_max > 0 ? net_max : 1;
	return f;
}

void
guard_fair_free(struct guard_fair **fp)
{
	struct guard_fair *f = *fp;

	if (f == NULL)
		return;
	for (size_t b = 0; b < GUARD_FAIR_BUCKETS; b++)
		while (f->bucket[b] != NULL) {
			struct guard_fair_net *n = f->bucket[b];

			f->bucket[b] = n->chain;
			free(n);
		}
	free(f);
	*fp = NULL;
}

void
guard_fair_set_net_max(struct guard_fair *f, size_t net_max)
{
	f->net_max = net_max > 0 ? net_max : 1;
}

/* The network's entry, created (and put at the ring's end) if asked. */
static struct guard_fair_net *
guard_fair_find(struct guard_fair *f, int family, const unsigned char *key,
		bool create)
{
	unsigned b = guard_fair_hash(family, key);
	struct guard_fair_net *n;

	for (n = f->bucket[b]; n != NULL; n = n->chain)
		if (n->family == family && memcmp(n->key, key, 16) == 0)
			return n;
	if (!create || (n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->family = family;
	memcpy(n->key, key, 16);
	n->chain = f->bucket[b];
	f->bucket[b] = n;
	if (f->ring_tail != NULL)
		f->ring_tail->ring = n;
	else
		f->ring_head = n;
	f->ring_tail = n;
	f->n_nets++;
	return n;
}

enum guard_fair_result
guard_fair_push(struct guard_fair *f, struct guard_job *j)
{
	struct guard_fair_net *n;
	unsigned char key[16];
	int family;

	if (f->count >= f->total_max)
		return GUARD_FAIR_FULL;
	guard_fair_key(j->addr, &family, key);
	n = guard_fair_find(f, family, key, false);
	if (n != NULL && n->count >= f->net_max)
		return GUARD_FAIR_NET_FULL;
	if (n == NULL && (n = guard_fair_find(f, family, key, true)) == NULL)
		return GUARD_FAIR_FULL; /* out of memory */
	j->next = NULL;
	if (n->tail != NULL)
		n->tail->next = j;
	else
		n->head = j;
	n->tail = j;
	n->count++;
	f->count++;
	return GUARD_FAIR_OK;
}

/* Unlink a network whose queue is empty from its bucket and free it. */
static void
guard_fair_forget(struct guard_fair *f, struct guard_fair_net *n)
{
	struct guard_fair_net **pp = &f->bucket[guard_fair_hash(n->family,
								n->key)];

	while (*pp != n)
		pp = &(*pp)->chain;
	*pp = n->chain;
	f->n_nets--;
	free(n);
}

struct guard_job *
guard_fair_pop(struct guard_fair *f)
{
	struct guard_fair_net *n = f->ring_head;
	struct guard_job *j;

	if (n == NULL)
		return NULL;
	j = n->head;
	n->head = j->next;
	if (n->head == NULL)
		n->tail = NULL;
	j->next = NULL;
	n->count--;
	f->count--;
	/* Off the front of the ring; back at its end if it has more. */
	f->ring_head = n->ring;
	if (f->ring_head == NULL)
		f->ring_tail = NULL;
	n->ring = NULL;
	if (n->count == 0) {
		guard_fair_forget(f, n);
	} else {
		if (f->ring_tail != NULL)
			f->ring_tail->ring = n;
		else
			f->ring_head = n;
		f->ring_tail = n;
	}
	return j;
}

size_t
guard_fair_count(const struct guard_fair *f)
{
	return f->count;
}

size_t
guard_fair_networks(const struct guard_fair *f)
{
	return f->n_nets;
}

void
guard_fair_net_text(const char *addr, char *buf, size_t size)
{
	char text[INET6_ADDRSTRLEN];
	unsigned char key[16];
	int family;

	guard_fair_key(addr, &family, key);
	if (family == 0 || inet_ntop(family, key, text, sizeof(text)) == NULL)
		snprintf(buf, size, "other");
	else
		snprintf(buf, size, "%s/%u", text,
			 family == AF_INET ? GUARD_FAIR_V4_BITS
					   : GUARD_FAIR_V6_BITS);
}
