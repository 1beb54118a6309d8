/*
 * queue_ctl.c - the queue process's control socket, for `postern queue`
 * (docs/outbound.md): <spool>/queue/control.sock, mode 0600 in a 0700
 * directory, answering only root and the queue's own account
 * (SO_PEERCRED). One command line in, text out, then the connection
 * closes. The last line is "ok" or "error <why>".
 *
 *   summary            per destination: recipients waiting, oldest age
 *   list               one line per message
 *   show ID            the envelope and each recipient's state
 *   flush [ID|DOMAIN]  try the waiting recipients now
 *   hold ID            no more attempts until release (journal `held`)
 *   release ID         attempts again, now (journal `released`)
 *   release-account ADDRESS  release every message held by the
 *                      send-burst alarm whose `auth` is ADDRESS (any
 *                      case), docs/sendlimit.md; not those held by
 *                      `hold ID`
 *   delete ID          remove the entry, no notice (not while in flight)
 *   delete-account ADDRESS  delete every message held by the send-burst
 *                      alarm whose `auth` is ADDRESS (the spam of a
 *                      hijacked account); prints how many
 *
 * Why a message is held: the alarm held it at arrival (its envelope's
 * `hold send-burst`), or an admin held it (a journal `held` record,
 * written only by `hold ID`); `show` and `list` say which.
 */
#include "outbound/queue_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define QCTL_LINE_MAX 300
#define QCTL_SOCKET "control.sock"

/* Printable ASCII as it is, the rest \xNN (addresses may be UTF-8). */
static void
qctl_put(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '\\')
			evbuffer_add(out, s, 1);
		else
			evbuffer_add_printf(out, "\\x%02x", c);
	}
}

static bool
qctl_final(const struct qrcpt *r)
{
	return r->state == QR_SENT || r->state == QR_BOUNCED;
}

struct qctl_dest {
	const char *domain;
	size_t rcpts;
	time_t oldest;
};

static void
qctl_summary(struct queue *q, struct evbuffer *out)
{
	struct qctl_dest *d = NULL;
	size_t n = 0, cap = 0, total = 0;
	time_t now = time(NULL), oldest = now;

	for (struct qmsg *m = q->msgs; m != NULL; m = m->next) {
		for (size_t i = 0; i < m->n_rcpts; i++) {
			const struct qrcpt *r = &m->rcpts[i];
			size_t k = 0;

			if (qctl_final(r))
				continue;
			while (k < n && strcmp(d[k].domain, r->domain) != 0)
				k++;
			if (k == n) {
				if (n == cap) {
					cap = cap ? cap * 2 : 16;
					d = realloc(d, cap * sizeof(*d));
					if (d == NULL)
						abort();
				}
				d[n++] = (struct qctl_dest){r->domain, 0, now};
			}
			d[k].rcpts++;
			if ((time_t)m->env.time < d[k].oldest)
				d[k].oldest = (time_t)m->env.time;
			total++;
		}
		if ((time_t)m->env.time < oldest)
			oldest = (time_t)m->env.time;
	}
	evbuffer_add_printf(out, "messages=%zu recipients=%zu destinations=%zu "
				 "oldest=%llds\n",
			    q->n_msgs, total, n, (long long)(now - oldest));
	for (size_t k = 0; k < n; k++) {
		qctl_put(out, d[k].domain);
		evbuffer_add_printf(out, " recipients=%zu oldest=%llds\n",
				    d[k].rcpts,
				    (long long)(now - d[k].oldest));
	}
	free(d);
}

/* " held=alarm", " held=admin" or "". */
static const char *
qctl_held_mark(const struct qmsg *m)
{
	if (!m->held)
		return "";
	return m->held_admin ? " held=admin" : " held=alarm";
}

static void
qctl_list(struct queue *q, struct evbuffer *out)
{
	time_t now = time(NULL);

	for (struct qmsg *m = q->msgs; m != NULL; m = m->next) {
		size_t waiting = 0;

		for (size_t i = 0; i < m->n_rcpts; i++)
			waiting += !qctl_final(&m->rcpts[i]);
		evbuffer_add_printf(out, "%s age=%llds size=%llu sender=<",
				    m->env.id,
				    (long long)(now - (time_t)m->env.time),
				    (unsigned long long)m->env.size);
		qctl_put(out, m->env.sender);
		evbuffer_add_printf(out, "> recipients=%zu/%zu%s\n", waiting,
				    m->n_rcpts, qctl_held_mark(m));
	}
}

static const char *const qctl_states[] = {"waiting", "ready", "busy",
					  "sent", "bounced"};

static void
qctl_show(struct queue *q, struct qmsg *m, struct evbuffer *out)
{
	time_t now = time(NULL), at = (time_t)m->env.time;
	char when[32];
	struct tm tm;

	/* ISO 8601, UTC. */
	if (gmtime_r(&at, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)at);
	evbuffer_add_printf(out, "id %s\narrival %s\nsize %llu\nsender <",
			    m->env.id, when, (unsigned long long)m->env.size);
	qctl_put(out, m->env.sender);
	evbuffer_add_printf(out, ">\n");
	if (m->env.auth != NULL) {
		evbuffer_add_printf(out, "auth ");
		qctl_put(out, m->env.auth);
		evbuffer_add_printf(out, "\n");
	}
	evbuffer_add_printf(out, "held %s\nwarned %s\n",
			    !m->held ? "no" : m->held_admin ? "admin" : "alarm",
			    m->warned ? "yes" : "no");
	for (size_t i = 0; i < m->n_rcpts; i++) {
		const struct qrcpt *r = &m->rcpts[i];

		evbuffer_add_printf(out, "rcpt <");
		qctl_put(out, r->addr);
		evbuffer_add_printf(out, "> state=%s attempts=%u",
				    qctl_states[r->state], r->attempts);
		if (r->state == QR_WAITING && r->next_try > now)
			evbuffer_add_printf(out, " next=%llds",
					    (long long)(r->next_try - now));
		if (r->last_text != NULL) {
			evbuffer_add_printf(out, " last=%llds dsn=%s relay=",
					    (long long)(now - r->last_attempt),
					    r->last_dsn);
			qctl_put(out, r->last_relay ? r->last_relay : "none");
			evbuffer_add_printf(out, " (");
			qctl_put(out, r->last_text);
			evbuffer_add_printf(out, ")");
		}
		evbuffer_add_printf(out, "\n");
	}
}

/* Waiting recipients of `m` (of `domain` only, if given): now. */
static size_t
qctl_flush_msg(struct qmsg *m, const char *domain)
{
	size_t n = 0;

	if (m->held || m->is_removed)
		return 0;
	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct qrcpt *r = &m->rcpts[i];

		if (r->state != QR_WAITING ||
		    (domain != NULL && strcmp(r->domain, domain) != 0))
			continue;
		r->next_try = 0;
		n++;
	}
	if (n > 0)
		queue_schedule(m);
	return n;
}

static void
qctl_record(struct queue *q, struct qmsg *m, enum dstate_kind kind)
{
	struct dstate_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.kind = kind;
	snprintf(rec.id, sizeof(rec.id), "%s", m->env.id);
	rec.rcpt = -1;
	rec.time = time(NULL);
	snprintf(rec.text, sizeof(rec.text), "%s", dstate_kind_name(kind));
	if (dstate_add(q->ds, &rec) < 0)
		log_error(m->env.id, "journal error=\"record refused\"");
	queue_sync_soon(q);
}

/* delete: not while a session holds a recipient (its result would
   come back to a freed message). */
static const char *
qctl_delete(struct queue *q, struct qmsg *m)
{
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (m->rcpts[i].state == QR_READY ||
		    m->rcpts[i].state == QR_BUSY)
			return "in flight, try again";
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (!qctl_final(&m->rcpts[i]))
			m->rcpts[i].state = QR_BOUNCED; /* (not logged as one) */
	log_notice(m->env.id, "deleted by administrator");
	queue_msg_check_done(m);
	return NULL;
}

/* Held by the send-burst alarm, and of `account` (any case)? */
static bool
qctl_alarm_held(const struct qmsg *m, const char *account)
{
	return m->held && !m->held_admin && !m->is_removed &&
	       m->env.auth != NULL && strcasecmp(m->env.auth, account) == 0;
}

/* release-account: the account's messages held by the alarm. */
static void
qctl_release_account(struct queue *q, const char *account,
		     struct evbuffer *out)
{
	size_t n = 0;

	for (struct qmsg *m = q->msgs; m != NULL; m = m->next) {
		if (!qctl_alarm_held(m, account))
			continue;
		m->held = false;
		qctl_record(q, m, DSTATE_RELEASED);
		qctl_flush_msg(m, NULL);
		n++;
	}
	evbuffer_add_printf(out, "released messages=%zu\n", n);
}

/* delete-account: the account's messages held by the alarm, removed
   (a held message is never in flight; qctl_delete checks anyway). */
static void
qctl_delete_account(struct queue *q, const char *account,
		    struct evbuffer *out)
{
	char esc[QCTL_LINE_MAX * 4 + 8];
	size_t n = 0;

	for (struct qmsg *m = q->msgs; m != NULL; m = m->next)
		if (qctl_alarm_held(m, account) && qctl_delete(q, m) == NULL)
			n++;
	log_escape(esc, sizeof(esc), account, strlen(account), 320);
	log_notice("-", "queue delete-account account=%s messages=%zu", esc,
		   n);
	evbuffer_add_printf(out, "deleted messages=%zu\n", n);
}

/* One command; returns NULL (ok) or why not. */
static const char *
qctl_run(struct queue *q, char *line, struct evbuffer *out)
{
	char *arg = strchr(line, ' ');
	struct qmsg *m = NULL;

	if (arg != NULL)
		*arg++ = '\0';
	if (arg != NULL && strcmp(line, "release-account") == 0) {
		qctl_release_account(q, arg, out);
		return NULL;
	}
	if (arg != NULL && strcmp(line, "delete-account") == 0) {
		qctl_delete_account(q, arg, out);
		return NULL;
	}
	if (arg != NULL && strcmp(line, "flush") != 0 &&
	    (m = queue_find(q, arg)) == NULL)
		return "no such message";
	if (strcmp(line, "summary") == 0 && arg == NULL) {
		qctl_summary(q, out);
	} else if (strcmp(line, "list") == 0 && arg == NULL) {
		qctl_list(q, out);
	} else if (strcmp(line, "show") == 0 && m != NULL) {
		qctl_show(q, m, out);
	} else if (strcmp(line, "flush") == 0) {
		size_t n = 0;

		m = arg != NULL ? queue_find(q, arg) : NULL;
		for (struct qmsg *x = q->msgs; x != NULL; x = x->next)
			if (m == NULL || x == m)
				n += qctl_flush_msg(x, m == NULL ? arg : NULL);
		evbuffer_add_printf(out, "flushed recipients=%zu\n", n);
	} else if ((strcmp(line, "hold") == 0 ||
		    strcmp(line, "release") == 0) && m != NULL) {
		m->held = line[0] == 'h';
		m->held_admin = m->held;
		qctl_record(q, m, m->held ? DSTATE_HELD : DSTATE_RELEASED);
		if (m->held)
			evtimer_del(m->retry_ev);
		else
			qctl_flush_msg(m, NULL);
	} else if (strcmp(line, "delete") == 0 && m != NULL) {
		return qctl_delete(q, m);
	} else {
		return "unknown command";
	}
	return NULL;
}

static void
qctl_written(struct bufferevent *bev, void *arg)
{
	bufferevent_free(bev);
}

static void
qctl_event(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

static void
qctl_read(struct bufferevent *bev, void *arg)
{
	struct queue *q = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	struct evbuffer *out = bufferevent_get_output(bev);
	const char *why;

	if (line == NULL) {
		if (evbuffer_get_length(in) > QCTL_LINE_MAX)
			bufferevent_free(bev);
		return;
	}
	why = len > QCTL_LINE_MAX ? "line too long" : qctl_run(q, line, out);
	free(line);
	if (why != NULL)
		evbuffer_add_printf(out, "error %s\n", why);
	else
		evbuffer_add_printf(out, "ok\n");
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, qctl_written, qctl_event, q);
}

static void
qctl_accept(struct evconnlistener *l, evutil_socket_t fd,
	    struct sockaddr *sa, int len, void *arg)
{
	struct queue *q = arg;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct bufferevent *bev;
	struct timeval tv = {5, 0};

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		close(fd);
		return;
	}
	bev = bufferevent_socket_new(q->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, qctl_read, NULL, qctl_event, q);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

int
queue_ctl_open(struct queue *q)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, n = snprintf(sun.sun_path, sizeof(sun.sun_path),
			     "%s/queue/" QCTL_SOCKET, q->cfg->spool);

	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		log_error("-", "queue control error=\"path too long\"");
		return -1;
	}
	unlinkat(q->qfd, QCTL_SOCKET, 0); /* a previous run's */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    fchmodat(q->qfd, QCTL_SOCKET, 0600, 0) < 0) {
		log_error("-", "queue control path=%s error=\"%s\"",
			  sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	q->ctl = evconnlistener_new(q->base, qctl_accept, q,
				    LEV_OPT_CLOSE_ON_FREE, 16, fd);
	return q->ctl != NULL ? 0 : -1;
}

void
queue_ctl_close(struct queue *q)
{
	if (q->ctl == NULL)
		return;
	evconnlistener_free(q->ctl);
	q->ctl = NULL;
	unlinkat(q->qfd, QCTL_SOCKET, 0);
}
