/*
 * guard_peer.c - the guard's connections to workers (guard_int.h): the
 * list of peers, sending a frame, the sessions each worker opened (closed
 * when it goes), the pushed list of user names, and dropping a peer. The
 * frames a worker sends are dispatched by guard.c; the AUTH path
 * (guard_auth.c) and the notices (guard_notice.c) answer through here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>

#include "auth/guard_int.h"
#include "auth/users.h"
#include "lib/log.h"

#define SID GUARD_SID

struct guard_shared guard_g;

/* A client address for the log: bare when it is an IP address (what a
   fail2ban filter matches), escaped and quoted otherwise. */
const char *
guard_addr_text(char *buf, size_t size, const char *addr)
{
	unsigned char a[16];
	int family;

	if (lockout_parse_addr(addr, &family, a) == 0 && strlen(addr) < size) {
		memcpy(buf, addr, strlen(addr) + 1);
		return buf;
	}
	return log_escape(buf, size, addr, strlen(addr), GUARD_ADDR_MAX);
}


void
guard_peer_unref(struct guard_peer *p)
{
	if (--p->refs == 0)
		free(p);
}

static unsigned
open_bucket(const char *addr)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *s = (const unsigned char *)addr; *s; s++)
		h = (h ^ *s) * 16777619u;
	return h % GUARD_PEER_BUCKETS;
}

void
guard_peer_open_add(struct guard_peer *p, const char *addr)
{
	struct guard_open **pp = &p->open[open_bucket(addr)], *o;

	for (o = *pp; o != NULL; o = o->next)
		if (strcmp(o->addr, addr) == 0) {
			o->count++;
			return;
		}
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return;
	snprintf(o->addr, sizeof(o->addr), "%s", addr);
	o->count = 1;
	o->next = *pp;
	*pp = o;
}

/* Forget one session of `addr`; false when the peer had none open. */
bool
guard_peer_open_del(struct guard_peer *p, const char *addr)
{
	struct guard_open **pp = &p->open[open_bucket(addr)], *o;

	for (; (o = *pp) != NULL; pp = &o->next)
		if (strcmp(o->addr, addr) == 0) {
			if (--o->count == 0) {
				*pp = o->next;
				free(o);
			}
			return true;
		}
	return false;
}

void
guard_peer_send(struct guard_peer *p, const struct guard_msg *m)
{
	unsigned char buf[GUARD_HEADER_LEN + GUARD_FRAME_MAX];
	size_t n;

	if (p->bev == NULL)
		return;
	n = guard_proto_encode(m, buf, sizeof(buf));
	if (n == 0) {
		log_error(SID, "encode-error type=%d", (int)m->type);
		return;
	}
	if (bufferevent_write(p->bev, buf, n) < 0)
		guard_peer_drop(p, "write failed");
}

/* Push the list of user names: BEGIN, as many CHUNKs as it takes, END. */
void
guard_peer_push_users(struct guard_peer *p)
{
	static struct guard_msg m;
	size_t n = guard_g.users != NULL ? users_count(guard_g.users) : 0,
	       i = 0;

	memset(&m, 0, offsetof(struct guard_msg, arena));
	m.type = GUARD_MSG_USERS_BEGIN;
	guard_peer_send(p, &m);
	while (i < n) {
		size_t bytes = 2;

		m.type = GUARD_MSG_USERS_CHUNK;
		m.n_list = 0;
		while (i < n && m.n_list < GUARD_LIST_MAX) {
			const char *name = users_get(guard_g.users, i)->name;
			size_t len = strlen(name);

			if (len == 0 || len > GUARD_USER_MAX ||
			    !guard_proto_text_ok(name, len, GUARD_USER_MAX)) {
				i++;
				continue;
			}
			if (bytes + 2 + len > GUARD_FRAME_MAX - 64)
				break;
			bytes += 2 + len;
			m.list[m.n_list++] = name;
			i++;
		}
		guard_peer_send(p, &m);
	}
	m.type = GUARD_MSG_USERS_END;
	m.n_list = 0;
	guard_peer_send(p, &m);
}

/*
 * A worker's connection is gone (EOF, error or a bad frame): close the
 * sessions it had opened, free its buffer; jobs still running keep the
 * struct alive and find bev == NULL.
 */
void
guard_peer_drop(struct guard_peer *p, const char *why)
{
	time_t now = guard_now();

	if (p->bev == NULL)
		return;
	log_info(SID, "worker-gone serial=%u reason=\"%s\"", p->serial, why);
	bufferevent_free(p->bev);
	p->bev = NULL;
	for (unsigned b = 0; b < GUARD_PEER_BUCKETS; b++)
		while (p->open[b] != NULL) {
			struct guard_open *o = p->open[b];

			while (o->count-- > 0)
				lockout_conn_close(guard_g.lo, o->addr, now);
			p->open[b] = o->next;
			free(o);
		}
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		guard_g.peers = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	guard_peer_unref(p);
}

struct guard_peer *
guard_peer_by_serial(unsigned serial)
{
	for (struct guard_peer *p = guard_g.peers; p != NULL; p = p->next)
		if (p->serial == serial && p->bev != NULL)
			return p;
	return NULL;
}
