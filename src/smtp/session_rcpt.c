/*
 * session_rcpt.c - RCPT and the recipient decision (RFC 5321 3.3, 4.5.1):
 * our domains only on mx, existing mailboxes only, and postmaster and
 * abuse (RFC 2142) always. Called from the verb table in session.c; calls
 * only the shared helpers of session_state.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "smtp/session_int.h"

/* Does this session ask the guard about each recipient (send limits,
   docs/sendlimit.md)? Only an authenticated one: mail arriving on mx
   never pays the round trip. */
static bool
session_rcpt_limited(const struct session *s)
{
	return s->has_auth && s->auth_user != NULL &&
	       s->ops->send_check != NULL;
}

/* Is this recipient already in the transaction: the same Maildir, or
   the same remote address in any case? */
static bool
session_rcpt_known(const struct session_tx *tx, const char *addr,
		   const char *dir)
{
	for (size_t i = 0; i < tx->n_rcpts; i++) {
		if (dir != NULL && tx->rcpt_dirs[i] != NULL &&
		    strcmp(tx->rcpt_dirs[i], dir) == 0)
			return true;
		if (dir == NULL && tx->rcpt_dirs[i] == NULL &&
		    strcasecmp(tx->rcpt_addrs[i], addr) == 0)
			return true;
	}
	return false;
}

/* Add a recipient, local (its Maildir) or remote (dir NULL); a mailbox or
   remote address named twice is kept once. */
static void
session_rcpt_add_now(struct session *s, const char *addr, const char *dir)
{
	struct session_tx *tx = &s->tx;
	size_t n = tx->n_rcpts;

	tx->rcpt_count++;
	if (session_rcpt_known(tx, addr, dir))
		return;
	tx->rcpts = realloc(tx->rcpts, (n + 1) * sizeof(*tx->rcpts));
	tx->rcpt_addrs = realloc(tx->rcpt_addrs, (n + 1) * sizeof(char *));
	tx->rcpt_dirs = realloc(tx->rcpt_dirs, (n + 1) * sizeof(char *));
	if (tx->rcpts == NULL || tx->rcpt_addrs == NULL ||
	    tx->rcpt_dirs == NULL)
		abort();
	tx->rcpt_addrs[n] = strdup(addr);
	tx->rcpt_dirs[n] = dir != NULL ? strdup(dir) : NULL;
	if (tx->rcpt_addrs[n] == NULL ||
	    (dir != NULL && tx->rcpt_dirs[n] == NULL))
		abort();
	tx->n_rcpts = n + 1;
	for (size_t i = 0; i <= n; i++) {
		tx->rcpts[i].address = tx->rcpt_addrs[i];
		tx->rcpts[i].maildir = tx->rcpt_dirs[i];
	}
}

/* The recipient is ours to accept: add it now, or keep it until the
   guard's verdict when the session is limited. One already in the
   transaction is added now: it adds no copy, so it is not counted
   against the send limits again (docs/sendlimit.md). */
static void
session_rcpt_add(struct session *s, const char *addr, const char *dir)
{
	struct session_tx *tx = &s->tx;

	tx->pend_known = session_rcpt_limited(s) &&
			 session_rcpt_known(tx, addr, dir);
	if (!session_rcpt_limited(s) || tx->pend_known) {
		session_rcpt_add_now(s, addr, dir);
		return;
	}
	snprintf(tx->pend_addr, sizeof(tx->pend_addr), "%s", addr);
	free(tx->pend_dir);
	tx->pend_dir = NULL;
	if (dir != NULL && (tx->pend_dir = strdup(dir)) == NULL)
		abort();
}

/*
 * Is this recipient one of the role addresses every domain of ours must
 * accept: postmaster (RFC 5321 4.5.1), abuse (RFC 2142 2)? Returns the
 * role in lower case, or NULL. The local part is matched in any case.
 */
static const char *
session_rcpt_role(const struct session *s, const struct smtp_path *path)
{
	static const char *const roles[] = {"postmaster", "abuse"};

	if (path->is_literal || path->is_utf8 ||
	    !config_is_local_domain(s->cfg, path->domain))
		return NULL;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcasecmp(path->local, roles[i]) == 0)
			return roles[i];
	return NULL;
}

/* A mailbox of ours: configured, or a user of the users file. Writes its
   Maildir to dir; false when there is none. */
static bool
session_rcpt_mailbox(struct session *s, const struct smtp_path *path,
		     const char *addr, char *dir, size_t size)
{
	const struct config_mailbox *mb;
	struct config_mailbox user;
	char lower[SMTP_PATH_MAX + 1];
	size_t i;

	mb = config_find_mailbox(s->cfg, path->local, path->domain);
	if (mb == NULL) {
		for (i = 0; addr[i] != '\0' && i < sizeof(lower) - 1; i++)
			lower[i] = (char)((addr[i] >= 'A' && addr[i] <= 'Z')
						  ? addr[i] + 32
						  : addr[i]);
		lower[i] = '\0';
		if (path->is_utf8 || s->ops->is_user == NULL ||
		    strchr(lower, '@') == NULL ||
		    !s->ops->is_user(s->ctx, lower))
			return false;
		user.local = lower;
		user.domain = strchr(lower, '@') + 1;
		lower[user.domain - lower - 1] = '\0';
		mb = &user;
	}
	return config_maildir_path(s->cfg, mb, dir, size) == 0;
}

/*
 * A role address: its own mailbox if one is configured under that name,
 * else the `postmaster` mailbox, else a Maildir of its own under the
 * template. The envelope says "role@domain", written to addr.
 */
static enum reply_id
session_rcpt_route_role(struct session *s, const char *role,
			const char *domain, char *addr, size_t size)
{
	struct config_mailbox mb = {(char *)role, (char *)domain};
	struct smtp_path p = {0};
	size_t rlen = strlen(role), dlen = strlen(domain);
	char dir[4096];

	if (rlen + 1 + dlen >= size || dlen > SMTP_DOMAIN_MAX)
		return R_BAD_RCPT;
	memcpy(addr, role, rlen);
	addr[rlen] = '@';
	memcpy(addr + rlen + 1, domain, dlen + 1);
	memcpy(p.local, role, rlen + 1);
	memcpy(p.domain, domain, dlen + 1);
	if (!session_rcpt_mailbox(s, &p, addr, dir, sizeof(dir))) {
		if (s->cfg->postmaster.local != NULL)
			mb = s->cfg->postmaster;
		if (config_maildir_path(s->cfg, &mb, dir, sizeof(dir)) < 0)
			return R_TEMP_FAIL;
	}
	session_rcpt_add(s, addr, dir);
	return R_RCPT_OK;
}

/*
 * The recipient decision, on the one canonical parse (THREATS R-01): on
 * the mx role only our own domains, and there only existing mailboxes.
 */
static enum reply_id
session_rcpt_route(struct session *s, const struct smtp_path *path,
		   const char *addr)
{
	char dir[4096];

	if (path->is_literal || !config_is_local_domain(s->cfg, path->domain)) {
		/* Only an authenticated submission relays (RFC 6409), and
		   never to an address literal: mail routed by IP address
		   could reach internal hosts (THREATS R-04). */
		if (!s->has_auth || path->is_literal)
			return R_RELAY_DENIED;
		session_rcpt_add(s, addr, NULL);
		return R_RCPT_OK;
	}
	if (!session_rcpt_mailbox(s, path, addr, dir, sizeof(dir)))
		return R_NO_MAILBOX;
	session_rcpt_add(s, addr, dir);
	return R_RCPT_OK;
}

/*
 * Route one parsed recipient; addr gets its envelope form (empty when it
 * did not parse). Role addresses are exempt from the sender refusal of
 * mx-local-senders (anyone must be able to reach them, also with a
 * sender that claims to be ours), and from the From: check when a
 * message goes to them alone (session_data.c).
 */
static enum reply_id
session_rcpt_decide(struct session *s, struct smtp_path *path,
		    enum smtp_perr err, char *addr, size_t size)
{
	const char *role;
	enum reply_id id;

	/* RFC 5321 4.5.1: "RCPT TO:<Postmaster>", no domain, any case; it
	   goes to the first of our domains. */
	if (err == SMTP_PERR_NO_DOMAIN &&
	    strcasecmp(path->local, "postmaster") == 0)
		return session_rcpt_route_role(s, "postmaster",
					       s->cfg->domains[0], addr, size);
	if (err != SMTP_PERR_OK)
		return session_perr_reply(err, false);
	if (smtp_path_format(path, addr, size) < 0) {
		addr[0] = '\0';
		return R_BAD_RCPT;
	}
	role = session_rcpt_role(s, path);
	if (role != NULL)
		return session_rcpt_route_role(s, role, path->domain, addr,
					       size);
	/* A recipient elsewhere gets the relay refusal (554 5.7.1) first:
	   the client may not relay whatever its sender. */
	if (s->tx.local_sender && !path->is_literal &&
	    config_is_local_domain(s->cfg, path->domain)) {
		char esc[600];

		log_notice(s->p.id, "rejected reason=mx-local-sender from=%s",
			   log_escape(esc, sizeof(esc), s->tx.sender,
				      strlen(s->tx.sender), 300));
		return R_LOCAL_SENDER;
	}
	id = session_rcpt_route(s, path, addr);
	if (id == R_RCPT_OK)
		s->tx.pend_nonrole = true;
	return id;
}

/* The recipient is accepted (or refused): the log line and the reply. */
static void
session_rcpt_reply(struct session *s, const char *addr, size_t len,
		   enum reply_id id)
{
	session_log_addr(s, "rcpt", "to", addr, len, id);
	if (id == R_RCPT_OK) {
		if (s->tx.pend_nonrole)
			s->tx.nonrole_rcpts++;
		session_set_state(s, SESSION_RCPT);
	}
	s->tx.pend_nonrole = false;
	session_reply(s, id);
}

/*
 * The guard's verdict on the waiting recipient: accepted (and counted),
 * or 451 4.7.1 naming the limit (docs/sendlimit.md). Returns true when
 * the session should go on with the input it holds.
 */
bool
session_rcpt_verdict(struct session *s, enum session_send_result r)
{
	static const enum reply_id ids[] = {
	    R_RCPT_OK,	       R_RCPT_OK,	 R_SEND_LIMIT_HOUR,
	    R_SEND_LIMIT_DAY, R_SEND_LIMIT_NEW, R_SEND_HELD,
	    R_TEMP_FAIL};
	/* the refused hook's reasons (metrics), in the order of ids */
	static const char *const why[] = {
	    NULL,	      NULL,		"send_limit_hour",
	    "send_limit_day", "new_recipients_day", "send_burst",
	    NULL};
	struct session_tx *tx = &s->tx;
	enum reply_id id;

	if (s->state != SESSION_RCPT_WAIT)
		return false;
	id = (unsigned)r < sizeof(ids) / sizeof(ids[0]) ? ids[r] : R_TEMP_FAIL;
	if ((unsigned)r < sizeof(why) / sizeof(why[0]) && why[r] != NULL &&
	    s->ops->refused != NULL)
		s->ops->refused(s->ctx, why[r]);
	session_set_state(s, tx->n_rcpts > 0 ? SESSION_RCPT : SESSION_MAIL);
	if (id == R_RCPT_OK) {
		session_rcpt_add_now(s, tx->pend_addr, tx->pend_dir);
		tx->counted++;
		if (r == SESSION_SEND_HOLD && !tx->is_held) {
			tx->is_held = true;
			log_notice(s->p.id, "hold reason=send-burst");
		}
	}
	free(tx->pend_dir);
	tx->pend_dir = NULL;
	session_rcpt_reply(s, tx->pend_addr, strlen(tx->pend_addr), id);
	return s->state != SESSION_CLOSED;
}

void
session_rcpt_cmd(struct session *s, const struct smtp_command *cmd)
{
	struct smtp_path path;
	enum smtp_perr err;
	enum reply_id id;
	char addr[SMTP_PATH_MAX + 1] = "";

	if (s->state == SESSION_GREETED) {
		session_reply(s, R_NEED_HELO);
		return;
	}
	if (s->state != SESSION_MAIL && s->state != SESSION_RCPT) {
		session_reply(s, R_NEED_MAIL);
		return;
	}
	if (s->tx.rcpt_count >= s->cfg->max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, not counted as an error. */
		char line[REPLY_LINE_MAX];

		session_out(s, line,
			    reply_format(R_TOO_MANY_RCPTS, line, sizeof(line)));
		return;
	}
	err = smtp_parse_rcpt(cmd->args, cmd->args_len, s->tx.smtputf8, &path);
	id = session_rcpt_decide(s, &path, err, addr, sizeof(addr));
	if (id == R_RCPT_OK && session_rcpt_limited(s) && !s->tx.pend_known) {
		/* Parked until the guard counted it: a pipelined group
		   waits here, so no client gets past a limit. */
		session_set_state(s, SESSION_RCPT_WAIT);
		s->ops->send_check(s->ctx, s->auth_user, s->tx.pend_addr);
		return;
	}
	session_rcpt_reply(s, addr[0] ? addr : cmd->args,
			   addr[0] ? strlen(addr) : cmd->args_len, id);
}
