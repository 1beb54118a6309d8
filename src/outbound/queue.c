/*
 * queue.c - the queue process: loading queue/, wake-ups from workers,
 * the retry timers, grouping recipients into jobs per destination,
 * starting sessions within the limits, and the delivery-state journal.
 * See queue.h and docs/outbound.md.
 *
 * Each message has one timer (libevent keeps them in a heap): when it
 * fires, every waiting recipient whose time has come becomes ready and
 * joins a job of its destination (the recipient's domain): up to
 * CLIENT_RCPT_MAX recipients of one message, one transaction. Sessions
 * take jobs from their destination, one after the other on the same
 * connection.
 */
#include "outbound/queue.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "outbound/queue_int.h"
#include "outbound/mtasts_fetch.h"
#include "outbound/route.h"

void
queue_wake(int wake_fd, const char *id)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%s\n", id);

	if (wake_fd < 0 || n <= 0 || (size_t)n >= sizeof(line))
		return;
	/* A full pipe: the minute's scan finds the entry. */
	if (write(wake_fd, line, (size_t)n) < 0 && errno != EAGAIN)
		log_warning("-", "queue wake error=\"%s\"", strerror(errno));
}

/* --- loading --------------------------------------------------------- */

static void queue_retry_cb(evutil_socket_t fd, short what, void *arg);

/* Move a corrupt entry to <spool>/quarantine/ (never guess). */
static void
queue_quarantine(struct queue *q, const char *id, const char *why)
{
	char from[48], to[4200];

	log_error(id, "queue entry corrupt error=\"%s\"; moved to quarantine",
		  why);
	for (int k = 0; k < 2; k++) {
		snprintf(from, sizeof(from), "%s.%s", id, k ? "msg" : "env");
		snprintf(to, sizeof(to), "%s/quarantine/queue.%s", q->cfg->spool,
			 from);
		{
			char dir[4200];

			snprintf(dir, sizeof(dir), "%s/quarantine",
				 q->cfg->spool);
			mkdir(dir, 0700);
		}
		if (renameat(q->qfd, from, AT_FDCWD, to) < 0 && errno != ENOENT)
			unlinkat(q->qfd, from, 0);
	}
}

/* Read queue/<id>.env; NULL (logged) when it is gone or corrupt. */
static char *
queue_read_env(struct queue *q, const char *id, size_t *len_r)
{
	char name[48];
	struct stat st;
	char *buf;
	int fd;

	snprintf(name, sizeof(name), "%s.env", id);
	fd = openat(q->qfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL; /* ENOENT: undone or finished; skip */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > QENV_MAX ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	*len_r = 0;
	while (*len_r < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + *len_r, (size_t)st.st_size - *len_r);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len_r += (size_t)n;
	}
	close(fd);
	return buf;
}

/* The recipient's domain, lower case: after the last '@'; shared. */
static const char *
queue_domain(struct queue *q, const char *addr)
{
	const char *at = strrchr(addr, '@');
	char *d = strdup(at != NULL ? at + 1 : "");
	const char *shared;

	for (char *p = d; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	shared = queue_str_get(q, d);
	free(d);
	return shared;
}

static int
queue_check_msg(struct queue *q, const struct qenv *env, const char **why)
{
	char name[48];
	struct stat st;

	snprintf(name, sizeof(name), "%s.msg", env->id);
	if (fstatat(q->qfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) || (uint64_t)st.st_size != env->size) {
		*why = "message file missing or of the wrong size";
		return -1;
	}
	return 0;
}

/* Load queue/<id>.env (already known: nothing). */
static struct qmsg *
queue_load(struct queue *q, const char *id)
{
	struct qmsg *m;
	const char *why = NULL;
	size_t len;
	char *buf;

	if ((m = queue_find(q, id)) != NULL)
		return m;
	if ((buf = queue_read_env(q, id, &len)) == NULL)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL || qenv_parse(buf, len, &m->env, &why) < 0 ||
	    strcmp(m->env.id, id) != 0 || queue_check_msg(q, &m->env, &why) < 0) {
		free(buf);
		if (m != NULL)
			qenv_free(&m->env);
		free(m);
		queue_quarantine(q, id, why != NULL ? why : "id mismatch");
		return NULL;
	}
	free(buf);
	m->q = q;
	m->eight_bit = -1;
	/* Held by the send-burst alarm (docs/sendlimit.md) until a
	   `released` record in the journal says otherwise. */
	m->held = m->env.hold;
	m->n_rcpts = m->env.n_remote;
	m->rcpts = calloc(m->n_rcpts, sizeof(*m->rcpts));
	m->retry_ev = evtimer_new(q->base, queue_retry_cb, m);
	for (size_t i = 0; m->rcpts != NULL && i < m->n_rcpts; i++) {
		m->rcpts[i].addr = m->env.remote[i];
		m->rcpts[i].domain = queue_domain(q, m->env.remote[i]);
	}
	queue_insert(q, m);
	return m;
}

/* Is `name` "<id>.env" with a valid id? Writes the id. */
static bool
queue_env_name(const char *name, char *id, size_t size)
{
	size_t n = strlen(name);

	if (n < 5 || n - 4 >= size || strcmp(name + n - 4, ".env") != 0)
		return false;
	if (strspn(name, "0123456789abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n - 4 ||
	    n - 4 > 23)
		return false;
	memcpy(id, name, n - 4);
	id[n - 4] = '\0';
	return true;
}

/* Every entry in queue/ not known yet; new ones are scheduled now. */
static void
queue_scan(struct queue *q, bool schedule)
{
	int fd = openat(q->qfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char id[32];

	if (dir == NULL) {
		if (fd >= 0)
			close(fd);
		log_error("-", "queue scan error=\"%s\"", strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		struct qmsg *m;

		if (!queue_env_name(de->d_name, id, sizeof(id)) ||
		    queue_find(q, id) != NULL)
			continue;
		m = queue_load(q, id);
		if (m != NULL && schedule)
			queue_schedule(m);
	}
	closedir(dir);
}

/* A journal record at start-up: what happened before. */
static void
queue_apply(void *ctx, const struct dstate_rec *rec)
{
	struct queue *q = ctx;
	struct qmsg *m = queue_find(q, rec->id);
	struct qrcpt *r;

	if (m == NULL)
		return; /* finished and removed: forget it */
	if (rec->kind == DSTATE_WARNED) {
		m->warned = true;
		return;
	}
	if (rec->kind == DSTATE_HELD || rec->kind == DSTATE_RELEASED) {
		m->held = rec->kind == DSTATE_HELD;
		m->held_admin = m->held; /* only `hold ID` writes `held` */
		return;
	}
	if ((size_t)rec->rcpt >= m->n_rcpts)
		return;
	r = &m->rcpts[rec->rcpt];
	if (rec->kind == DSTATE_SENT)
		r->state = QR_SENT;
	else if (rec->kind == DSTATE_BOUNCED)
		r->state = QR_BOUNCED;
	if (rec->kind != DSTATE_DEFERRED || r->state != QR_WAITING)
		return;
	r->attempts++;
	r->last_attempt = (time_t)rec->time;
	r->next_try = r->last_attempt + qres_backoff(q->cfg, r->attempts);
	snprintf(r->last_dsn, sizeof(r->last_dsn), "%s", rec->dsn);
	queue_str_put(q, r->last_text);
	r->last_text = queue_str_get(q, rec->text);
	queue_str_put(q, r->last_relay);
	r->last_relay = queue_str_get(q, rec->relay[0] != '\0' ? rec->relay
							      : NULL);
}

static bool
queue_keep_rec(void *ctx, const struct dstate_rec *rec)
{
	struct qmsg *m = queue_find(ctx, rec->id);

	return m != NULL && !m->is_removed;
}

/* Start-up: every entry, then what the journal says about them. */
static int
queue_load_all(struct queue *q)
{
	const char *err = NULL;
	unsigned skipped = 0;

	queue_scan(q, false);
	if (dstate_load(q->ds, queue_apply, q, &skipped, &err) < 0) {
		log_error("-", "queue journal error=\"%s\"; set aside", err);
		dstate_close(&q->ds);
		if (dstate_set_aside(q->qfd, &err) < 0 ||
		    dstate_open(q->qfd, &q->ds, &err) < 0) {
			log_error("-", "queue journal error=\"%s\"", err);
			return -1;
		}
	}
	if (skipped > 0)
		log_warning("-", "queue journal damaged records=%u skipped",
			    skipped);
	for (struct qmsg *m = q->msgs, *next; m != NULL; m = next) {
		next = m->next;
		queue_msg_check_done(m);
	}
	if (dstate_compact(q->ds, queue_keep_rec, q, &err) < 0)
		log_warning("-", "queue journal compact error=\"%s\"", err);
	for (struct qmsg *m = q->msgs; m != NULL; m = m->next)
		queue_schedule(m);
	log_notice("-", "queue loaded messages=%zu%s", q->n_msgs,
		   q->cfg->outbound_delivery ? "" : " delivery=off");
	return 0;
}

/* --- scheduling ------------------------------------------------------ */

static struct qdest *
queue_dest(struct queue *q, const char *domain)
{
	struct qdest *d;

	for (d = q->dests; d != NULL; d = d->next)
		if (strcmp(d->domain, domain) == 0)
			return d;
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->domain = strdup(domain)) == NULL) {
		free(d);
		return NULL;
	}
	d->window = QUEUE_INITIAL_SESSIONS < q->cfg->outbound_sessions_per_dest
			? QUEUE_INITIAL_SESSIONS
			: q->cfg->outbound_sessions_per_dest;
	d->next = q->dests;
	q->dests = d;
	return d;
}

/* Is recipient `k` of `m` due now? */
static bool
queue_due(const struct qmsg *m, size_t k, time_t now)
{
	return m->rcpts[k].state == QR_WAITING && m->rcpts[k].next_try <= now;
}

/* Recipients from `i` on that join a job of i's destination now: the
   size of the job to make (at most CLIENT_RCPT_MAX). Domains are shared
   strings: one pointer per recipient to compare. */
static size_t
queue_job_size(const struct qmsg *m, size_t i, time_t now)
{
	size_t n = 0;

	for (size_t k = i; k < m->n_rcpts && n < CLIENT_RCPT_MAX; k++)
		if (m->rcpts[k].domain == m->rcpts[i].domain &&
		    queue_due(m, k, now))
			n++;
	return n;
}

/* Recipient `i` (due at `now`) joins a job of its destination. */
static void
queue_ready(struct queue *q, struct qmsg *m, size_t i, time_t now)
{
	struct qdest *d = queue_dest(q, m->rcpts[i].domain);
	struct qjob *j;

	if (d == NULL)
		return; /* out of memory: the timer tries again */
	j = d->tail;
	if (j == NULL || j->msg != m || j->n == j->cap) {
		j = queue_job_new(m, queue_job_size(m, i, now));
		if (j == NULL)
			return;
		if (d->tail != NULL)
			d->tail->next = j;
		else
			d->head = j;
		d->tail = j;
	}
	j->idx[j->n++] = i;
	m->rcpts[i].state = QR_READY;
}

static void
queue_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qmsg *m = arg;
	time_t now = time(NULL);

	if (m->held)
		return;
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (queue_due(m, i, now))
			queue_ready(m->q, m, i, now);
	queue_schedule(m);
	queue_kick(m->q);
}

/* Start sessions for ready jobs, within outbound-sessions and the
   destination's window: QUEUE_INITIAL_SESSIONS at first, one more per
   session that delivered, up to outbound-sessions-per-destination,
   back to one when a session reached no server (Postfix's slow start,
   qmgr): a dead destination holds one session, not twenty. */
void
queue_kick(struct queue *q)
{
	struct qdest **pp = &q->dests;

	while (*pp != NULL) {
		struct qdest *d = *pp;

		while (!q->stopping && d->head != NULL &&
		       d->sessions < d->window &&
		       q->sessions < q->cfg->outbound_sessions) {
			struct qjob *j = queue_take_job(d);

			if (qsess_start(q, d, j) < 0) {
				j->next = d->head;
				d->head = j;
				if (d->tail == NULL)
					d->tail = j;
				break;
			}
		}
		if (d->head == NULL && d->sessions == 0) {
			*pp = d->next;
			free(d->domain);
			free(d);
			continue;
		}
		pp = &d->next;
	}
}

static void
queue_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	queue_kick(arg);
}

static void
queue_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	const char *err = NULL;

	if (dstate_sync(q->ds, &err) < 0) {
		struct timeval tv = {1, 0};

		log_error("-", "queue journal sync error=\"%s\"", err);
		event_add(q->sync_ev, &tv); /* records kept: try again */
	}
	while (q->dead != NULL) {
		struct qmsg *m = q->dead;

		q->dead = m->dead_next;
		queue_msg_free(m);
	}
	if (dstate_size(q->ds) > QUEUE_COMPACT_SIZE ||
	    (q->n_msgs == 0 && dstate_size(q->ds) > (1u << 20))) {
		if (dstate_compact(q->ds, queue_keep_rec, q, &err) < 0)
			log_warning("-", "queue journal compact error=\"%s\"",
				    err);
	}
}

/* --- wake-ups, scans, signals ---------------------------------------- */

static void
queue_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	ssize_t n = read(fd, q->wake_buf + q->wake_len,
			 sizeof(q->wake_buf) - q->wake_len);
	size_t start = 0;

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			event_del(q->wake_ev); /* the master is gone */
		return;
	}
	q->wake_len += (size_t)n;
	for (size_t i = 0; i < q->wake_len; i++) {
		char id[32];
		size_t len = i - start;
		struct qmsg *m;

		if (q->wake_buf[i] != '\n')
			continue;
		if (len > 0 && len < sizeof(id)) {
			memcpy(id, q->wake_buf + start, len);
			id[len] = '\0';
			m = queue_find(q, id) == NULL ? queue_load(q, id)
						      : NULL;
			if (m != NULL)
				queue_schedule(m);
		}
		start = i + 1;
	}
	memmove(q->wake_buf, q->wake_buf + start, q->wake_len - start);
	q->wake_len -= start;
	if (q->wake_len == sizeof(q->wake_buf))
		q->wake_len = 0; /* no line fits: garbage */
}

static void
queue_scan_cb(evutil_socket_t fd, short what, void *arg)
{
	queue_scan(arg, true);
}

static void
queue_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	log_notice("-", "queue stopping sessions=%u (deadline)", q->sessions);
	event_base_loopexit(q->base, NULL);
}

static void
queue_term_cb(evutil_socket_t sig, short what, void *arg)
{
	struct queue *q = arg;
	struct timeval tv = {q->cfg->timeout_shutdown, 0};

	if (q->stopping)
		return;
	q->stopping = true;
	log_notice("-", "queue stopping sessions=%u", q->sessions);
	qsess_stop_all(q); /* idle ones quit; busy ones finish first */
	if (q->sessions == 0) {
		event_base_loopexit(q->base, NULL);
		return;
	}
	q->deadline_ev = evtimer_new(q->base, queue_deadline_cb, q);
	evtimer_add(q->deadline_ev, &tv);
}

static void
queue_hup_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)arg; /* the master restarts us with the new configuration */
}

/* --- start-up -------------------------------------------------------- */

/* Opportunistic TLS (RFC 3207; Postfix's `may`): encrypted when offered,
   the certificate not checked. The relay host's is checked (system CAs
   and its name), since the credentials go there. */
static int
queue_tls(struct queue *q)
{
	q->tls = SSL_CTX_new(TLS_client_method());
	q->relay_tls = SSL_CTX_new(TLS_client_method());
	if (q->tls == NULL || q->relay_tls == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(q->tls, TLS1_2_VERSION);
	SSL_CTX_set_verify(q->tls, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_dane_enable(q->tls) <= 0) /* per connection: qsess_dane */
		return -1;
	SSL_CTX_set_min_proto_version(q->relay_tls, TLS1_2_VERSION);
	SSL_CTX_set_verify(q->relay_tls, SSL_VERIFY_PEER, NULL);
	if (q->cfg->outbound_tls_ca != NULL) {
		if (SSL_CTX_load_verify_locations(q->relay_tls,
						  q->cfg->outbound_tls_ca,
						  NULL) != 1)
			log_error("-", "outbound-tls-ca file=%s error=\"cannot "
				       "be read\"",
				  q->cfg->outbound_tls_ca);
	} else if (SSL_CTX_set_default_verify_paths(q->relay_tls) != 1) {
		log_warning("-", "queue tls error=\"no system CA store\"");
	}
	return 0;
}

/* relay-auth's password: the first line of a file only its owner may
   read (refused otherwise: the relay sessions then fail, logged). */
static void
queue_relay_password(struct queue *q)
{
	const char *path = q->cfg->relay_auth_file;
	char buf[512];
	struct stat st;
	ssize_t n;
	int fd;

	if (path == NULL)
		return;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0) {
		log_error("-", "relay-auth file=%s error=\"%s\"", path,
			  fd >= 0 && (st.st_mode & 077) != 0
			      ? "readable by others than its owner"
			      : "cannot be read");
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	q->relay_pass = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
}

/* MTA-STS (RFC 8461): its policy cache is <spool>/queue/mta-sts/. */
static void
queue_mtasts(struct queue *q)
{
	int fd;

	if (!q->cfg->mta_sts)
		return;
	if (mkdirat(q->qfd, "mta-sts", 0700) < 0 && errno != EEXIST)
		log_error("-", "mta-sts dir=queue/mta-sts error=\"%s\"",
			  strerror(errno));
	fd = openat(q->qfd, "mta-sts",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || mtasts_new(q->base, q->dns, q->relay_tls, fd,
				 MTASTS_PORT, &q->sts) < 0) {
		log_error("-", "mta-sts error=\"cannot start: MTA-STS is off\"");
		if (fd >= 0)
			close(fd);
	}
}

static int
queue_open(struct queue *q)
{
	char path[4200];
	const char *err = NULL;
	struct dns_params dp;
	bool ta_missing;

	snprintf(path, sizeof(path), "%s/queue", q->cfg->spool);
	mkdir(path, 0700);
	q->qfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (q->qfd < 0) {
		log_error("-", "queue dir=%s error=\"%s\"", path,
			  strerror(errno));
		return -1;
	}
	if (dstate_open(q->qfd, &q->ds, &err) < 0) {
		log_error("-", "queue journal error=\"%s\"", err);
		return -1;
	}
	route_dns_params(q->cfg, &dp, &ta_missing);
	if (dp.trust_anchor == NULL)
		log_warning("-", "dns validation=off reason=\"%s\"",
			    ta_missing ? "trust anchor file cannot be read"
				       : "dns-trust-anchor none");
	if (dns_new(q->base, &dp, &q->dns, &err) < 0) {
		log_error("-", "queue resolver error=\"%s\"", err);
		return -1;
	}
	q->sync_ev = event_new(q->base, -1, 0, queue_sync_cb, q);
	q->kick_ev = event_new(q->base, -1, 0, queue_kick_cb, q);
	if (q->sync_ev == NULL || q->kick_ev == NULL)
		return -1;
	event_priority_set(q->sync_ev, 2); /* after the turn's I/O (default 1) */
	if (queue_tls(q) < 0) {
		log_error("-", "queue tls error=\"no context\"");
		return -1;
	}
	queue_relay_password(q);
	queue_mtasts(q);
	return 0;
}

static void
queue_metrics_cb(evutil_socket_t fd, short what, void *arg)
{
	queue_gauges(arg);
}

static void
queue_events(struct queue *q)
{
	struct timeval scan = {QUEUE_SCAN_SECS, 0}, second = {1, 0};

	if (q->wake_fd >= 0) {
		evutil_make_socket_nonblocking(q->wake_fd);
		q->wake_ev = event_new(q->base, q->wake_fd, EV_READ | EV_PERSIST,
				       queue_wake_cb, q);
		event_add(q->wake_ev, NULL);
	}
	q->scan_ev = event_new(q->base, -1, EV_PERSIST, queue_scan_cb, q);
	event_add(q->scan_ev, &scan);
	q->metrics_ev = event_new(q->base, -1, EV_PERSIST, queue_metrics_cb, q);
	event_add(q->metrics_ev, &second);
	queue_gauges(q);
	q->term_ev = evsignal_new(q->base, SIGTERM, queue_term_cb, q);
	event_add(q->term_ev, NULL);
	q->hup_ev = evsignal_new(q->base, SIGHUP, queue_hup_cb, q);
	event_add(q->hup_ev, NULL);
	queue_ctl_open(q); /* (logged; delivery goes on without it) */
}

static void
queue_close(struct queue *q)
{
	const char *err = NULL;

	qsess_free_all(q);
	queue_ctl_close(q);
	if (q->ds != NULL && dstate_sync(q->ds, &err) < 0)
		log_error("-", "queue journal sync error=\"%s\"", err);
	while (q->msgs != NULL)
		queue_msg_free(q->msgs);
	while (q->dests != NULL) {
		struct qdest *d = q->dests;

		q->dests = d->next;
		while (d->head != NULL)
			free(queue_take_job(d));
		free(d->domain);
		free(d);
	}
	mtasts_free(&q->sts);
	dns_free(&q->dns);
	dstate_close(&q->ds);
	{
		struct event *evs[] = {q->wake_ev, q->sync_ev,	q->scan_ev,
				       q->term_ev, q->hup_ev, q->deadline_ev,
				       q->kick_ev, q->metrics_ev};

		for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
			if (evs[i] != NULL)
				event_free(evs[i]);
	}
	SSL_CTX_free(q->tls);
	SSL_CTX_free(q->relay_tls);
	if (q->relay_pass != NULL)
		explicit_bzero(q->relay_pass, strlen(q->relay_pass));
	free(q->relay_pass);
	if (q->qfd >= 0)
		close(q->qfd);
	event_base_free(q->base);
}

void
queue_main(const struct config *cfg, int wake_fd)
{
	struct queue q;

	memset(&q, 0, sizeof(q));
	q.cfg = cfg;
	q.wake_fd = wake_fd;
	q.qfd = -1;
	q.base = event_base_new();
	if (q.base == NULL || event_base_priority_init(q.base, 3) < 0)
		_exit(2);
	if (queue_open(&q) < 0 || queue_load_all(&q) < 0) {
		queue_close(&q);
		_exit(2);
	}
	queue_events(&q);
	if (queue_sandbox(&q) < 0) {
		queue_close(&q);
		_exit(2); /* never deliver unconfined */
	}
	log_info("-", "queue started");
	event_base_dispatch(q.base);
	queue_close(&q);
	log_info("-", "queue exited");
	_exit(0);
}
