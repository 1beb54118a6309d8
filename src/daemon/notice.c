/*
 * notice.c - the postmaster's notice of a send-burst alarm (notice.h,
 * docs/sendlimit.md). The message is ours (no client byte but the
 * account name, a users-file address, reduced to printable ASCII), from
 * the null sender so that nothing ever answers it, marked
 * Auto-Submitted (RFC 3834).
 */
#include "daemon/notice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/log.h"

#define NOTICE_MAX 4096

static const char *const notice_actions[] = {
    "hold: its mail is accepted and held in the queue, not delivered to "
    "remote\r\nrecipients (local recipients still get it), until "
    "released.",
    "refuse: its recipients get 451 4.7.1 until released.",
    "log: nothing else; its mail flows as before."};

struct notice {
	const struct notice_writer *w;
	uint32_t id;		/* the guard's number of the notice */
	char account[400];	/* as the guard sent it: 320 at most */
	char rcpt[400];
	char dir[4096];
	struct spool_rcpt r;
};

static void
notice_done(struct spool_msg *msg, int result, void *arg)
{
	struct notice *n = arg;

	if (result == 0) {
		log_notice(spool_msg_id(msg),
			   "notice kind=send-burst to=%s id=%u", n->rcpt,
			   n->id);
		guard_client_notice_done(n->w->guard, n->id, n->account);
	} else {
		log_error(spool_msg_id(msg),
			  "notice kind=send-burst to=%s id=%u error=\"commit "
			  "failed\"",
			  n->rcpt, n->id);
	}
	free(n);
}

/* The postmaster's address and Maildir, as RCPT TO:<postmaster> gets. */
static int
notice_rcpt(const struct config *cfg, struct notice *n)
{
	struct config_mailbox mb = {(char *)"postmaster", cfg->domains[0]};

	if (cfg->postmaster.local != NULL)
		mb = cfg->postmaster;
	if (config_maildir_path(cfg, &mb, n->dir, sizeof(n->dir)) < 0)
		return -1;
	snprintf(n->rcpt, sizeof(n->rcpt), "postmaster@%s", cfg->domains[0]);
	n->r.address = n->rcpt;
	n->r.maildir = n->dir;
	return 0;
}

static int
notice_text(char *buf, size_t size, const struct config *cfg,
	    const char *acct, const char *rcpt, const char *id,
	    uint32_t count, uint32_t baseline)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int len;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	len = snprintf(
	    buf, size,
	    "From: postern <MAILER-DAEMON@%s>\r\nTo: <%s>\r\n"
	    "Subject: send-burst alarm: %s\r\nDate: %s\r\n"
	    "Message-ID: <%s.alarm@%s>\r\nAuto-Submitted: auto-generated\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "The account %s sent to %u recipients in the last hour;\r\n"
	    "its baseline is %u.%02u recipients an hour (burst-floor %u, "
	    "burst-factor %u).\r\n\r\nAction: %s\r\n\r\n"
	    "If the account is in the right hands again (change its "
	    "password if it\r\nwas stolen), release it and its held "
	    "mail:\r\n\r\n    postern queue release --account %s\r\n\r\n"
	    "To see its counts: postern user limits %s\r\n",
	    cfg->hostname, rcpt, acct, date, id, cfg->hostname, acct, count,
	    baseline / 100, baseline % 100, cfg->burst_floor,
	    cfg->burst_factor, notice_actions[cfg->burst_action], acct, acct);
	return len > 0 && (size_t)len < size ? len : -1;
}

#ifdef POSTERN_TEST_HOOKS
static bool
notice_test_stall(uint32_t id)
{
	const char *path = getenv("POSTERN_TEST_NOTICE_STALL");
	struct stat st;

	if (path == NULL || stat(path, &st) < 0)
		return false;
	log_notice("-", "test-hook notice-stalled id=%u", id);
	return true;
}
#endif

void
notice_handed(uint32_t id, const char *account, uint32_t count,
	      uint32_t baseline, void *arg)
{
	const struct notice_writer *w = arg;
	const struct config *cfg = w->cfg;
	struct notice *n;
	struct spool_msg *msg = NULL;
	char acct[400], text[NOTICE_MAX];
	size_t i = 0;
	int len;

#ifdef POSTERN_TEST_HOOKS
	if (notice_test_stall(id))
		return;
#endif
	for (; account[i] != '\0' && i < sizeof(acct) - 1; i++)
		acct[i] = account[i] > 0x20 && account[i] < 0x7f ? account[i]
								 : '?';
	acct[i] = '\0';
	n = calloc(1, sizeof(*n));
	if (n != NULL) {
		n->w = w;
		n->id = id;
		snprintf(n->account, sizeof(n->account), "%s", account);
	}
	if (n == NULL || notice_rcpt(cfg, n) < 0 ||
	    spool_msg_begin(w->spool, &msg) < 0 ||
	    (len = notice_text(text, sizeof(text), cfg, acct, n->rcpt,
			       spool_msg_id(msg), count, baseline)) < 0 ||
	    spool_msg_write(msg, text, (size_t)len) < 0) {
		log_error("-", "notice kind=send-burst id=%u error=\"cannot "
			       "write it\"",
			  id);
		if (msg != NULL)
			spool_msg_abort(&msg);
		free(n);
		return;
	}
	spool_msg_commit(msg, "", &n->r, 1, notice_done, n);
}
