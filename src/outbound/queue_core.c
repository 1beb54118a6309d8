/*
 * queue_core.c - what every part of the queue process uses (queue.c, the
 * sessions, the results, the control socket): finding a message, arming
 * its timer, removing it once done, handing out jobs, asking the loop for
 * a journal sync or a kick. Calls none of them: only libevent and the
 * file system.
 */
#include "outbound/queue_int.h"

#include <errno.h>
#include <stddef.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

/* --- the id table ---------------------------------------------------- */

static unsigned
queue_hash(const char *id)
{
	unsigned h = 5381;

	for (; *id != '\0'; id++)
		h = h * 33 + (unsigned char)*id;
	return h % QUEUE_HASH;
}

/* Messages held now (`postern queue hold`, the send-burst hold of
   docs/sendlimit.md), for the metrics. */
size_t
queue_held_count(const struct queue *q)
{
	size_t n = 0;

	for (const struct qmsg *m = q->msgs; m != NULL; m = m->next)
		n += m->held && !m->is_removed;
	return n;
}

struct qmsg *
queue_find(struct queue *q, const char *id)
{
	for (struct qmsg *m = q->hash[queue_hash(id)]; m != NULL; m = m->hnext)
		if (strcmp(m->env.id, id) == 0)
			return m;
	return NULL;
}

/* Into the id table and the list of all messages. */
void
queue_insert(struct queue *q, struct qmsg *m)
{
	unsigned h = queue_hash(m->env.id);

	m->hnext = q->hash[h];
	q->hash[h] = m;
	m->next = q->msgs;
	if (q->msgs != NULL)
		q->msgs->prev = m;
	q->msgs = m;
	q->n_msgs++;
}

/* Out of both, and freed. */
void
queue_msg_free(struct qmsg *m)
{
	struct queue *q = m->q;
	struct qmsg **pp = &q->hash[queue_hash(m->env.id)];

	while (*pp != NULL && *pp != m)
		pp = &(*pp)->hnext;
	if (*pp == m)
		*pp = m->hnext;
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		q->msgs = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	q->n_msgs--;
	for (size_t i = 0; i < m->n_rcpts; i++) {
		queue_str_put(q, m->rcpts[i].domain);
		queue_str_put(q, m->rcpts[i].last_text);
		queue_str_put(q, m->rcpts[i].last_relay);
	}
	if (m->retry_ev != NULL)
		event_free(m->retry_ev);
	free(m->rcpts);
	qenv_free(&m->env);
	free(m);
}

/* Every recipient final: remove the entry (.env first, then .msg:
   docs/queue-format.md); the struct goes after the next sync. */
void
queue_msg_check_done(struct qmsg *m)
{
	char name[48];

	if (m->is_removed)
		return;
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (m->rcpts[i].state != QR_SENT &&
		    m->rcpts[i].state != QR_BOUNCED)
			return;
	m->is_removed = true;
	evtimer_del(m->retry_ev);
	for (int k = 0; k < 2; k++) {
		snprintf(name, sizeof(name), "%s.%s", m->env.id,
			 k ? "msg" : "env");
		if (unlinkat(m->q->qfd, name, 0) < 0 && errno != ENOENT)
			log_error(m->env.id, "queue remove file=%s error=\"%s\"",
				  name, strerror(errno));
	}
	log_info(m->env.id, "removed");
	m->dead_next = m->q->dead;
	m->q->dead = m;
	queue_sync_soon(m->q);
}

/* Arm the message's timer for its next waiting recipient. */
void
queue_schedule(struct qmsg *m)
{
	time_t next = 0, now = time(NULL);
	bool any = false;
	struct timeval tv = {0, 0};

	if (m->is_removed || m->held || !m->q->cfg->outbound_delivery)
		return;
	for (size_t i = 0; i < m->n_rcpts; i++) {
		const struct qrcpt *r = &m->rcpts[i];

		if (r->state != QR_WAITING)
			continue;
		if (!any || r->next_try < next)
			next = r->next_try;
		any = true;
	}
	if (!any)
		return;
	if (next > now)
		tv.tv_sec = next - now;
	evtimer_add(m->retry_ev, &tv);
}

struct qjob *
queue_job_new(struct qmsg *m, size_t cap)
{
	struct qjob *j;

	if (cap == 0 || cap > CLIENT_RCPT_MAX)
		cap = CLIENT_RCPT_MAX;
	j = calloc(1, sizeof(*j) + cap * sizeof(j->idx[0]));
	if (j == NULL)
		return NULL;
	j->msg = m;
	j->cap = cap;
	return j;
}

/* --- shared strings -------------------------------------------------- */

static struct qstr **
queue_str_slot(struct queue *q, const char *s)
{
	unsigned h = 5381;

	for (const char *p = s; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return &q->strs[h % QUEUE_STR_HASH];
}

const char *
queue_str_get(struct queue *q, const char *s)
{
	struct qstr **slot, *e;
	size_t len;

	if (s == NULL)
		return NULL;
	slot = queue_str_slot(q, s);
	for (e = *slot; e != NULL; e = e->next)
		if (strcmp(e->s, s) == 0) {
			e->refs++;
			return e->s;
		}
	len = strlen(s);
	if ((e = malloc(sizeof(*e) + len + 1)) == NULL)
		return NULL;
	memcpy(e->s, s, len + 1);
	e->refs = 1;
	e->next = *slot;
	*slot = e;
	return e->s;
}

void
queue_str_put(struct queue *q, const char *s)
{
	struct qstr **pp, *e;

	if (s == NULL)
		return;
	e = (struct qstr *)(void *)((char *)(uintptr_t)s -
				    offsetof(struct qstr, s));
	if (--e->refs > 0)
		return;
	for (pp = queue_str_slot(q, s); *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	free(e);
}

struct qjob *
queue_take_job(struct qdest *d)
{
	struct qjob *j = d->head;

	if (j == NULL)
		return NULL;
	d->head = j->next;
	if (d->head == NULL)
		d->tail = NULL;
	j->next = NULL;
	return j;
}

/* Sessions end deep inside callbacks (even inside queue_kick(), when a
   route comes from the cache): the next kick runs from the loop. */
void
queue_session_ended(struct queue *q, struct qsess *s)
{
	(void)s;
	if (q->stopping && q->sessions == 0)
		event_base_loopexit(q->base, NULL);
	else
		event_active(q->kick_ev, EV_TIMEOUT, 0);
}

/* Does the message hold an octet over 127 (BODY=8BITMIME)? Read once. */
int
queue_msg_8bit(struct qmsg *m)
{
	char name[48], buf[65536];
	int fd;
	ssize_t n;

	if (m->eight_bit >= 0)
		return m->eight_bit;
	snprintf(name, sizeof(name), "%s.msg", m->env.id);
	fd = openat(m->q->qfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	m->eight_bit = 0;
	while (m->eight_bit == 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] > 0x7f) {
				m->eight_bit = 1;
				break;
			}
	close(fd);
	return m->eight_bit;
}

/* --- the journal, at the end of each loop turn ----------------------- */

void
queue_sync_soon(struct queue *q)
{
	event_active(q->sync_ev, EV_TIMEOUT, 0);
}

