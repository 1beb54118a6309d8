/*
 * queue_result.c - what became of the recipients of an attempt: the
 * journal record (dstate.h), one log line per recipient and attempt, the
 * retry schedule, and the notices to the sender (bounces and the one delay
 * warning, RFC 3464) written straight into the sender's Maildir.
 *
 * Order (docs/queue-format.md, "Delivery state"): a notice is in the
 * Maildir and synced before the `bounced` or `warned` record that says it
 * went; the records are synced at the end of the loop turn (queue.c),
 * before any later step depends on them.
 */
#include "outbound/queue_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/log.h"
#include "metrics/metrics.h"
#include "outbound/dsn.h"
#include "store/maildir.h"

#define QRES_NOTICE_RCPTS CLIENT_RCPT_MAX

static double
qres_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* retry-min, doubling per failed attempt, up to retry-max. */
time_t
qres_backoff(const struct config *cfg, unsigned attempts)
{
	uint64_t d = cfg->retry_min;

	for (unsigned i = 1; i < attempts && d < cfg->retry_max; i++)
		d *= 2;
	return (time_t)(d < cfg->retry_max ? d : cfg->retry_max);
}

/* `to=<addr>`: the address as it is when it is plain, else escaped. */
static const char *
qres_to(const char *addr, char *buf, size_t size)
{
	for (const char *p = addr; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			log_escape(buf, size, addr, strlen(addr), 300);
			return buf;
		}
	}
	snprintf(buf, size, "<%s>", addr);
	return buf;
}

static void
qres_log(const struct qmsg *m, const struct qrcpt *r, const char *relay,
	 const char *dsn, const char *status, const char *text)
{
	char to[1300];

	metrics_delivery(status, qres_now() - (double)m->env.time);
	log_info(m->env.id, "to=%s relay=%s delay=%.1f dsn=%s status=%s (%s)",
		 qres_to(r->addr, to, sizeof(to)),
		 relay != NULL ? relay : "none",
		 qres_now() - (double)m->env.time, dsn, status, text);
}

static void
qres_journal(struct queue *q, const struct qmsg *m, enum dstate_kind kind,
	     int rcpt, const char *dsn, const char *relay, const char *text)
{
	struct dstate_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.kind = kind;
	snprintf(rec.id, sizeof(rec.id), "%s", m->env.id);
	rec.rcpt = rcpt;
	rec.time = time(NULL);
	snprintf(rec.dsn, sizeof(rec.dsn), "%s", dsn != NULL ? dsn : "");
	snprintf(rec.relay, sizeof(rec.relay), "%s",
		 relay != NULL ? relay : "");
	snprintf(rec.text, sizeof(rec.text), "%s",
		 text != NULL && *text != '\0' ? text : "-");
	if (dstate_add(q->ds, &rec) < 0)
		log_error(m->env.id, "journal error=\"record refused\"");
	queue_sync_soon(q);
}

/* The sender's Maildir: the sender's mailbox, else the login's. */
static int
qres_maildir(const struct queue *q, const struct qmsg *m, char *buf,
	     size_t size)
{
	const char *who[2] = {m->env.sender, m->env.auth};

	for (size_t i = 0; i < 2; i++) {
		const char *at = who[i] != NULL ? strrchr(who[i], '@') : NULL;
		const struct config_mailbox *mb;
		char local[256];
		size_t n;

		if (at == NULL || (n = (size_t)(at - who[i])) >= sizeof(local))
			continue;
		memcpy(local, who[i], n);
		local[n] = '\0';
		mb = config_find_mailbox(q->cfg, local, at + 1);
		if (mb != NULL && config_maildir_path(q->cfg, mb, buf, size) == 0)
			return 0;
	}
	return -1;
}

/* The original header section, from <id>.msg. */
static char *
qres_headers(const struct queue *q, const struct qmsg *m, size_t *len_r)
{
	char name[40];
	size_t cap = DSN_HEADERS_MAX + 4, got = 0;
	char *buf = malloc(cap);
	int fd;

	*len_r = 0;
	snprintf(name, sizeof(name), "%s.msg", m->env.id);
	fd = openat(q->qfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (buf == NULL || fd < 0) {
		if (fd >= 0)
			close(fd);
		return buf;
	}
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len_r = got;
	return buf;
}

/* "<dir>/<sub>[/<name>]", checked: -1 (ENAMETOOLONG) when cut. */
static int
qres_path(char *buf, size_t size, const char *dir, const char *sub,
	  const char *name)
{
	int n = name != NULL ? snprintf(buf, size, "%s/%s/%s", dir, sub, name)
			     : snprintf(buf, size, "%s/%s", dir, sub);

	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Write `text` as a new message in Maildir `dir`: tmp/, fsync, new/,
   fsync of new/. */
static int
qres_deliver(struct queue *q, const struct qmsg *m, const char *dir,
	     const char *text, size_t len)
{
	char id[64], name[512], tmp[4600], dst[4600], newdir[4600];
	bool renamed = false;
	int fd, dfd, rc = -1;

	snprintf(id, sizeof(id), "%sN%u", m->env.id, ++q->bounce_seq);
	if (maildir_create(dir) < 0 ||
	    maildir_name((long)time(NULL), id, q->cfg->hostname, name,
			 sizeof(name)) < 0 ||
	    qres_path(tmp, sizeof(tmp), dir, "tmp", name) < 0 ||
	    qres_path(dst, sizeof(dst), dir, "new", name) < 0 ||
	    qres_path(newdir, sizeof(newdir), dir, "new", NULL) < 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -1;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || rename(tmp, dst) < 0)
		goto out;
	renamed = true;
	dfd = open(newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = dfd >= 0 && fsync(dfd) == 0 ? 0 : -1;
	if (dfd >= 0)
		close(dfd);
out:
	close(fd);
	if (!renamed)
		unlink(tmp);
	return rc;
}

/*
 * A notice to the sender about the recipients in `d` (never for the null
 * sender: the caller checks). Returns 0 when it is in the Maildir.
 */
static int
qres_notify(struct queue *q, const struct qmsg *m, const struct dsn_rcpt *d,
	    size_t n)
{
	struct dsn_report rep;
	char dir[4096], boundary[40], *text = NULL;
	size_t hlen, len;
	const char *err = "no Maildir for the sender";
	char *headers = qres_headers(q, m, &hlen);
	int rc = -1;

	if (headers == NULL || qres_maildir(q, m, dir, sizeof(dir)) < 0)
		goto out;
	memset(&rep, 0, sizeof(rep));
	rep.reporting_mta = q->cfg->hostname;
	rep.queue_id = m->env.id;
	rep.sender = m->env.sender;
	rep.arrival = (time_t)m->env.time;
	rep.now = time(NULL);
	rep.rcpts = d;
	rep.n_rcpts = n;
	rep.headers = headers;
	rep.headers_len = hlen;
	for (int tries = 0; tries < 4 && text == NULL; tries++) {
		uint64_t r = 0;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint64_t)random() ^ (uint64_t)time(NULL) << 20;
		snprintf(boundary, sizeof(boundary), "=_postern_%016llx",
			 (unsigned long long)r);
		rep.boundary = boundary;
		if (dsn_write(&rep, &text, &len, &err) < 0)
			text = NULL;
	}
	if (text != NULL) {
		rc = qres_deliver(q, m, dir, text, len);
		if (rc < 0)
			err = strerror(errno);
	}
out:
	if (rc < 0)
		log_error(m->env.id, "notice lost sender=%s error=\"%s\"",
			  m->env.sender, err);
	free(text);
	free(headers);
	return rc;
}

static void
qres_dsn_rcpt(struct dsn_rcpt *d, const struct qrcpt *r,
	      const struct qoutcome *o, enum dsn_action action,
	      const struct config *cfg, const struct qmsg *m)
{
	memset(d, 0, sizeof(*d));
	d->address = r->addr;
	d->action = action;
	d->status = o->dsn;
	d->remote_mta = o->remote_mta;
	d->diagnostic = o->text;
	d->is_remote = o->is_remote;
	d->in_reply_to = o->stage;
	d->last_attempt = r->last_attempt;
	d->retry_until = (time_t)m->env.time + (time_t)cfg->queue_lifetime;
}

/* Final failures: one notice for all of them, then their records. */
static void
qres_bounce(struct queue *q, struct qmsg *m, const size_t *idx,
	    const struct qoutcome *const *o, size_t n)
{
	struct dsn_rcpt d[QRES_NOTICE_RCPTS];

	for (size_t k = 0; k < n; k++)
		qres_dsn_rcpt(&d[k], &m->rcpts[idx[k]], o[k], DSN_FAILED,
			      q->cfg, m);
	if (n > 0 && m->env.sender[0] != '\0')
		qres_notify(q, m, d, n);
	for (size_t k = 0; k < n; k++) {
		struct qrcpt *r = &m->rcpts[idx[k]];

		r->state = QR_BOUNCED;
		qres_journal(q, m, DSTATE_BOUNCED, (int)idx[k], o[k]->dsn,
			     o[k]->relay, o[k]->text);
		qres_log(m, r, o[k]->relay, o[k]->dsn, "bounced", o[k]->text);
	}
}

/* The one delay notice (delay-warning), for the recipients deferred now. */
static void
qres_warn(struct queue *q, struct qmsg *m, const size_t *idx,
	  const struct qoutcome *const *o, size_t n)
{
	struct dsn_rcpt d[QRES_NOTICE_RCPTS];
	time_t age = time(NULL) - (time_t)m->env.time;

	if (n == 0 || m->warned || q->cfg->delay_warning == 0 ||
	    age < (time_t)q->cfg->delay_warning || m->env.sender[0] == '\0')
		return;
	for (size_t k = 0; k < n; k++)
		qres_dsn_rcpt(&d[k], &m->rcpts[idx[k]], o[k], DSN_DELAYED,
			      q->cfg, m);
	if (qres_notify(q, m, d, n) < 0)
		return;
	m->warned = true;
	qres_journal(q, m, DSTATE_WARNED, -1, NULL, NULL, "delay-warning");
	log_info(m->env.id, "delay-warning sent to=<%s> recipients=%zu",
		 m->env.sender, n);
}

/* A temporary failure: retry later, or bounce when too old. */
static bool
qres_defer(struct queue *q, struct qmsg *m, size_t i,
	   const struct qoutcome *o, time_t now)
{
	struct qrcpt *r = &m->rcpts[i];

	r->attempts++;
	snprintf(r->last_dsn, sizeof(r->last_dsn), "%s", o->dsn);
	queue_str_put(q, r->last_text);
	r->last_text = queue_str_get(q, o->text);
	queue_str_put(q, r->last_relay);
	r->last_relay = queue_str_get(q, o->relay);
	if (now - (time_t)m->env.time >= (time_t)q->cfg->queue_lifetime)
		return false; /* expired: the caller bounces it */
	r->state = QR_WAITING;
	r->next_try = now + qres_backoff(q->cfg, r->attempts);
	qres_journal(q, m, DSTATE_DEFERRED, (int)i, o->dsn, o->relay,
		     o->text);
	qres_log(m, r, o->relay, o->dsn, "deferred", o->text);
	return true;
}

void
qres_record(struct queue *q, struct qmsg *m, const size_t *idx,
	    const struct qoutcome *o, size_t n, time_t started)
{
	size_t nb = 0, nd = 0, bidx[QRES_NOTICE_RCPTS], didx[QRES_NOTICE_RCPTS];
	const struct qoutcome *bo[QRES_NOTICE_RCPTS], *dout[QRES_NOTICE_RCPTS];
	struct qoutcome expired[QRES_NOTICE_RCPTS];
	char etext[QRES_NOTICE_RCPTS][DSTATE_TEXT_MAX];
	time_t now = time(NULL);

	(void)started;
	for (size_t k = 0; k < n && k < QRES_NOTICE_RCPTS; k++) {
		struct qrcpt *r = &m->rcpts[idx[k]];

		/* RFC 3464 2.3.7: this attempt's date, whatever its outcome
		   (a bounce's Last-Attempt-Date). */
		r->last_attempt = now;
		if (o[k].status == CLIENT_OK) {
			r->state = QR_SENT;
			qres_journal(q, m, DSTATE_SENT, (int)idx[k], o[k].dsn,
				     o[k].relay, o[k].text);
			qres_log(m, r, o[k].relay, o[k].dsn, "sent", o[k].text);
		} else if (o[k].status == CLIENT_TEMP &&
			   qres_defer(q, m, idx[k], &o[k], now)) {
			didx[nd] = idx[k];
			dout[nd++] = &o[k];
		} else {
			if (o[k].status == CLIENT_TEMP) {
				/* RFC 3463 5.4.7: delivery time expired. */
				expired[nb] = o[k];
				expired[nb].dsn = "5.4.7";
				snprintf(etext[nb], sizeof(etext[nb]),
					 "delivery time expired, last error: "
					 "%s",
					 o[k].text);
				expired[nb].text = etext[nb];
				bo[nb] = &expired[nb];
			} else {
				bo[nb] = &o[k];
			}
			bidx[nb++] = idx[k];
		}
	}
	qres_bounce(q, m, bidx, bo, nb);
	qres_warn(q, m, didx, dout, nd);
	queue_msg_check_done(m);
	queue_schedule(m);
}

void
qres_fail_job(struct queue *q, struct qjob *job, const struct qoutcome *o,
	      time_t started)
{
	struct qoutcome all[CLIENT_RCPT_MAX];

	for (size_t k = 0; k < job->n; k++)
		all[k] = *o;
	qres_record(q, job->msg, job->idx, all, job->n, started);
}
