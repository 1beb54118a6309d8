/*
 * queue_sts.c - MTA-STS (RFC 8461) applied to one SMTP client session of
 * the queue process (queue_sess.c): whether a destination asks for a
 * policy, which MX hosts the policy lets it use, and what `testing` mode
 * logs instead of refusing. The lookup itself is mtasts_fetch.c.
 */
#include "outbound/queue_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "outbound/mtasts_fetch.h"

bool
qsts_wanted(const struct queue *q, const struct config_route *cr,
	    const char *domain)
{
	/* Not for a transport or the relay host (no MX), nor a domain with
	   a tls-policy line: that decides instead. */
	return q->sts != NULL && cr == NULL &&
	       !config_has_tls_policy(q->cfg, domain);
}

void
qsts_set(struct qsts *t, const struct mtasts_result *r)
{
	t->wait = NULL;
	if (r->policy == NULL || r->policy->mode == MTASTS_MODE_NONE)
		return;
	if ((t->policy = malloc(sizeof(*t->policy))) == NULL)
		abort(); /* out of memory */
	*t->policy = *r->policy;
	snprintf(t->id, sizeof(t->id), "%s", r->id);
}

void
qsts_clear(struct qsts *t)
{
	mtasts_cancel(&t->wait);
	free(t->policy);
	t->policy = NULL;
}

bool
qsts_is(const struct qsts *t, enum mtasts_mode mode)
{
	return t->policy != NULL && t->policy->mode == mode;
}

/*
 * RFC 8461 4.1: with a policy in enforce mode, an MX host that matches
 * none of its patterns is not used (false, `text` says why); in testing
 * mode it is used, and logged.
 */
bool
qsts_host_ok(const struct qsts *t, const char *domain, const char *host,
	     const char *log_id, char *text, size_t size)
{
	if (t->policy == NULL || mtasts_mx_match(t->policy, host))
		return true;
	snprintf(text, size, "MTA-STS policy of %s (%s, id %s) does not list "
		 "MX host %s", domain, mtasts_mode_name(t->policy->mode), t->id,
		 host);
	if (t->policy->mode == MTASTS_MODE_TESTING) {
		log_info(log_id, "mta-sts testing host=%s would fail=\"%s\"",
			 host, text);
		return true;
	}
	log_info(log_id, "mta-sts host=%s skipped reason=\"%s\"", host, text);
	return false;
}

/* Testing mode: what enforce would have said of this connection's TLS
   (`ssl` NULL: none), checked as for enforce but only logged. */
void
qsts_tls_note(const struct qsts *t, const char *log_id, const char *relay,
	      SSL *ssl)
{
	long v;

	if (!qsts_is(t, MTASTS_MODE_TESTING))
		return;
	if (ssl == NULL)
		log_info(log_id, "mta-sts testing relay=%s would fail=\"no TLS\"",
			 relay);
	else if ((v = SSL_get_verify_result(ssl)) != X509_V_OK)
		log_info(log_id, "mta-sts testing relay=%s would "
				 "fail=\"certificate: %s\"",
			 relay, X509_verify_cert_error_string(v));
}
