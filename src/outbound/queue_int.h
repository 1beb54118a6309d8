/*
 * queue_int.h - what the files of the queue process share: queue.c (the
 * process, loading, scheduling, the journal), queue_core.c (what all the
 * others use), queue_sess.c (one SMTP client session), queue_result.c
 * (outcomes: journal records, log lines, bounces and delay notices),
 * queue_ctl.c (`postern queue`). Not for others.
 */
#ifndef POSTERN_QUEUE_INT_H
#define POSTERN_QUEUE_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/config.h"
#include "outbound/client.h"
#include "outbound/dns.h"
#include "outbound/dstate.h"
#include "outbound/mtasts.h"
#include "outbound/qenv.h"

#define QUEUE_HASH 32768	 /* buckets of the id table */
#define QUEUE_STR_HASH 1024	 /* buckets of the shared strings */
#define QUEUE_SCAN_SECS 60	 /* the directory is scanned again */
#define QUEUE_CONNECT_SECS 30	 /* to connect to one address */
#define QUEUE_SERVERS_MAX 10	 /* addresses tried per session */
#define QUEUE_COMPACT_SIZE (16u << 20) /* journal size to compact at */
#define QUEUE_INITIAL_SESSIONS 5 /* a destination's first window */

struct queue;
struct qsess;

enum qrcpt_state {
	QR_WAITING = 0, /* until next_try */
	QR_READY,	/* in a job of its destination */
	QR_BUSY,	/* in a session's transaction */
	QR_SENT,	/* final */
	QR_BOUNCED,	/* final */
};

/* domain, last_text and last_relay are shared strings (queue_str_get):
   100,000 recipients deferred for one dead destination hold one copy of
   its domain, reply and relay, not 100,000. */
struct qrcpt {
	const char *addr;   /* in the envelope */
	const char *domain; /* lower case; shared */
	enum qrcpt_state state;
	unsigned attempts;  /* failed attempts so far */
	time_t last_attempt;
	time_t next_try;
	char last_dsn[16];  /* of the last deferral */
	const char *last_text;	/* shared, or NULL */
	const char *last_relay; /* shared, or NULL */
};

struct qmsg {
	struct queue *q;
	struct qenv env;    /* id, time, size, sender, auth, recipients */
	struct qrcpt *rcpts;
	size_t n_rcpts;
	int eight_bit;	    /* -1: not scanned yet */
	bool warned;	    /* the delay notice went out */
	bool held;	    /* `postern queue hold`: no attempts */
	bool held_admin;    /* held by `hold ID` (journal `held`), not by
			       the send-burst alarm (envelope `hold`) */
	bool is_removed;    /* every recipient final: entry removed */
	struct event *retry_ev;
	struct qmsg *hnext; /* id table */
	struct qmsg *dead_next; /* removed, freed after the next sync */
	struct qmsg *next, *prev; /* all messages */
};

/* Recipients of one message for one destination: one transaction, of
   at most CLIENT_RCPT_MAX; allocated for the `cap` it will hold (one
   recipient: 40 octets, not 424). */
struct qjob {
	struct qmsg *msg;
	struct qjob *next;
	size_t n, cap;
	size_t idx[];
};

/* A string many recipients share (domain, reply, relay), counted. */
struct qstr {
	struct qstr *next;
	size_t refs;
	char s[];
};

struct qdest {
	char *domain;
	struct qjob *head, *tail; /* ready jobs */
	unsigned sessions;
	unsigned window;	  /* sessions allowed now (slow start) */
	struct qdest *next;
};

struct queue {
	const struct config *cfg;
	struct event_base *base;
	int qfd;		/* <spool>/queue */
	int wake_fd;
	struct dns *dns;
	struct mtasts *sts;	/* MTA-STS lookups; NULL: mta-sts no */
	struct dstate *ds;
	SSL_CTX *tls;		/* opportunistic, unverified */
	SSL_CTX *relay_tls;	/* the relay host: verified */
	char *relay_pass;	/* relay-auth's password */
	struct qmsg *hash[QUEUE_HASH];
	struct qstr *strs[QUEUE_STR_HASH];
	struct qmsg *msgs;
	size_t n_msgs;
	struct qdest *dests;
	struct qsess *sessions_list;
	unsigned sessions;
	bool stopping;
	struct event *wake_ev, *sync_ev, *scan_ev, *term_ev, *hup_ev,
	    *deadline_ev, *kick_ev;
	char wake_buf[128];
	size_t wake_len;
	unsigned bounce_seq;	/* makes notice file names unique */
	struct qmsg *dead;	/* removed messages to free */
	struct evconnlistener *ctl; /* `postern queue` (queue_ctl.c) */
	struct event *metrics_ev;   /* the gauges, every second */
};

/* queue_core.c (calls no other file of the queue process) */
struct qmsg *queue_find(struct queue *q, const char *id);
size_t queue_held_count(const struct queue *q);
void queue_insert(struct queue *q, struct qmsg *m);
void queue_msg_free(struct qmsg *m);
void queue_sync_soon(struct queue *q);
struct qjob *queue_take_job(struct qdest *d);
struct qjob *queue_job_new(struct qmsg *m, size_t cap); /* NULL: no memory */
/* The shared copy of `s` (NULL for NULL, or out of memory), and its
   release. */
const char *queue_str_get(struct queue *q, const char *s);
void queue_str_put(struct queue *q, const char *s);
void queue_msg_check_done(struct qmsg *m);
void queue_schedule(struct qmsg *m);
int queue_msg_8bit(struct qmsg *m);
void queue_session_ended(struct queue *q, struct qsess *s);
/* Size, oldest message and held count into the metrics gauges. */
void queue_gauges(const struct queue *q);

/* queue.c */
void queue_kick(struct queue *q);

/* queue_sandbox.c: confine the process (docs/security.md); 0 or -1. */
int queue_sandbox(struct queue *q);

/* queue_ctl.c */
int queue_ctl_open(struct queue *q);
void queue_ctl_close(struct queue *q);

/* queue_sess.c */
int qsess_start(struct queue *q, struct qdest *d, struct qjob *job);
void qsess_stop_all(struct queue *q); /* stopping: QUIT when idle */
void qsess_free_all(struct queue *q);

/* queue_sts.c: MTA-STS (RFC 8461) for one session. */
struct mtasts_wait;
struct mtasts_result;
struct qsts {
	struct mtasts_wait *wait;     /* the lookup under way */
	struct mtasts_policy *policy; /* enforce or testing; NULL: none */
	char id[MTASTS_ID_MAX + 1];
};
/* Does a session to `domain` (by `cr`, NULL: its MX) ask for a policy? */
bool qsts_wanted(const struct queue *q, const struct config_route *cr,
		 const char *domain);
/* The lookup's answer (the wait is over). */
void qsts_set(struct qsts *t, const struct mtasts_result *r);
void qsts_clear(struct qsts *t); /* cancels, frees */
bool qsts_is(const struct qsts *t, enum mtasts_mode mode);
bool qsts_host_ok(const struct qsts *t, const char *domain, const char *host,
		  const char *log_id, char *text, size_t size);
void qsts_tls_note(const struct qsts *t, const char *log_id,
		   const char *relay, SSL *ssl);

/* queue_result.c: what became of recipient `i` of `m`. `relay` is
   "host[addr]:port" or NULL; `started` when the attempt began. */
struct qoutcome {
	enum client_status status;
	const char *dsn;
	const char *text;
	bool is_remote;	      /* text is the server's reply */
	const char *stage;    /* "RCPT TO", or NULL */
	const char *relay;
	const char *remote_mta; /* host name, for DSNs */
};
void qres_record(struct queue *q, struct qmsg *m, const size_t *idx,
		 const struct qoutcome *o, size_t n, time_t started);
/* The wait after `attempts` failed attempts. */
time_t qres_backoff(const struct config *cfg, unsigned attempts);
/* Bounce everything of `m` still waiting, with one reason (route
   failures, expired lifetime). */
void qres_fail_job(struct queue *q, struct qjob *job,
		   const struct qoutcome *o, time_t started);

#endif
