/*
 * session_cmd.c - the verbs of the envelope and the small ones: HELO/EHLO,
 * MAIL, RCPT (the recipient decision), RSET, NOOP, QUIT, HELP, VRFY, EXPN
 * and the refusals of unknown and unimplemented commands. Called from the
 * verb table in session.c; calls only the shared helpers of
 * session_state.c and session_sender.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "smtp/session_int.h"

/*
 * The EHLO keywords, minimal per role and state (THREATS N-02): before TLS
 * a submission port offers only what is needed to start TLS; AUTH only
 * under TLS on submission roles, never on mx.
 */
static void
session_cmd_ehlo_reply(struct session *s)
{
	const char *kw[8];
	size_t n = 0;

	kw[n++] = "PIPELINING";
	kw[n++] = NULL; /* SIZE, formatted below */
	if (!session_needs_tls(s)) {
		kw[n++] = "8BITMIME";
		kw[n++] = "SMTPUTF8";
		kw[n++] = "CHUNKING";
	}
	if (s->p.tls_available && !s->is_tls)
		kw[n++] = "STARTTLS";
	if (s->p.role != ROLE_MX && s->is_tls && !s->has_auth)
		kw[n++] = "AUTH " SASL_MECHANISMS;
	kw[n++] = "ENHANCEDSTATUSCODES";
	session_outf(s, "250-%s\r\n", s->cfg->hostname);
	for (size_t i = 0; i < n; i++) {
		char sep = i + 1 == n ? ' ' : '-';

		if (kw[i] == NULL)
			session_outf(s, "250%cSIZE %llu\r\n", sep,
				     (unsigned long long)
					     s->cfg->max_message_size);
		else
			session_outf(s, "250%c%s\r\n", sep, kw[i]);
	}
}

void
session_cmd_helo(struct session *s, const struct smtp_command *cmd)
{
	bool ehlo = cmd->verb == SMTP_VERB_EHLO;
	int n;

	if (cmd->args_len == 0) {
		session_reply(s, R_SYNTAX_HELO);
		return;
	}
	if (!smtp_helo_valid(cmd->args, cmd->args_len)) {
		session_reply(s, R_BAD_HELO);
		return;
	}
	/* RFC 5321 4.1.4: EHLO/HELO imply RSET. */
	session_tx_reset(s);
	n = (int)cmd->args_len;
	while (n > 0 && cmd->args[n - 1] == ' ')
		n--;
	if (n > SMTP_DOMAIN_MAX)
		n = SMTP_DOMAIN_MAX;
	memcpy(s->helo, cmd->args, (size_t)n);
	s->helo[n] = '\0';
	s->is_esmtp = ehlo;
	session_set_state(s, SESSION_READY);
	{
		char esc[300];

		log_info(s->p.id, "helo name=%s esmtp=%s",
			 log_escape(esc, sizeof(esc), s->helo, strlen(s->helo),
				    255),
			 ehlo ? "yes" : "no");
	}
	if (!ehlo) {
		session_outf(s, "250 %s\r\n", s->cfg->hostname);
		return;
	}
	session_cmd_ehlo_reply(s);
}

static enum reply_id
session_cmd_perr_reply(enum smtp_perr err, bool is_mail)
{
	switch (err) {
	case SMTP_PERR_OK:
		return R_SUCCESS;
	case SMTP_PERR_SYNTAX:
	case SMTP_PERR_NO_DOMAIN:
	case SMTP_PERR_TOO_LONG:
		return is_mail ? R_BAD_SENDER : R_BAD_RCPT;
	case SMTP_PERR_UTF8_UNDECLARED:
		return R_UTF8_UNDECLARED;
	case SMTP_PERR_BAD_UTF8:
		return R_BAD_UTF8;
	case SMTP_PERR_PARAM_SYNTAX:
		return R_BAD_PARAM;
	case SMTP_PERR_PARAM_UNKNOWN:
		return R_PARAM_UNKNOWN;
	case SMTP_PERR_SIZE_TOO_BIG:
		return R_TOO_BIG;
	}
	return R_SYNTAX;
}

static void
session_cmd_log_addr(struct session *s, const char *event, const char *key,
		 const char *addr, size_t len, enum reply_id id)
{
	char esc[600];
	const struct reply *r = reply_get(id);

	log_info(s->p.id, "%s %s=%s code=%u status=%s", event, key,
		 log_escape(esc, sizeof(esc), addr, len, 300),
		 r->code, r->status ? r->status : "-");
}

/* The longest MAIL line (with CRLF) these parameters allow: 512, and
   for each extension parameter present what its RFC adds. */
static size_t
session_cmd_mail_max(const struct smtp_mail_params *params)
{
	return SESSION_CMD_MAX + (params->has_size ? SESSION_ALLOW_SIZE : 0) +
	       (params->body != SMTP_BODY_NONE ? SESSION_ALLOW_BODY : 0) +
	       (params->smtputf8 ? SESSION_ALLOW_SMTPUTF8 : 0) +
	       (params->has_auth ? SESSION_ALLOW_AUTH : 0);
}

void
session_cmd_mail(struct session *s, const struct smtp_command *cmd)
{
	struct smtp_path path;
	struct smtp_mail_params params;
	enum smtp_perr err;
	enum reply_id id;
	char addr[SMTP_PATH_MAX + 1] = "";

	if (s->state == SESSION_GREETED) {
		session_reply(s, R_NEED_HELO);
		return;
	}
	if (s->state != SESSION_READY) {
		session_reply(s, R_NESTED_MAIL);
		return;
	}
	if (s->shutting_down) {
		session_reply(s, R_SHUTDOWN);
		return;
	}
	if (cmd->line_len + 2 > SESSION_MAIL_MAX) {
		session_reply(s, R_LINE_TOO_LONG);
		return;
	}
	err = smtp_parse_mail(cmd->args, cmd->args_len, &path, &params);
	if (err == SMTP_PERR_OK &&
	    cmd->line_len + 2 > session_cmd_mail_max(&params)) {
		session_reply(s, R_LINE_TOO_LONG);
		return;
	}
	if (err == SMTP_PERR_OK &&
	    params.has_size && params.size > s->cfg->max_message_size)
		err = SMTP_PERR_SIZE_TOO_BIG;
	id = err == SMTP_PERR_OK ? R_SENDER_OK : session_cmd_perr_reply(err, true);
	if (err == SMTP_PERR_OK &&
	    smtp_path_format(&path, addr, sizeof(addr)) < 0)
		id = R_BAD_SENDER;
	if (id == R_SENDER_OK && s->p.role != ROLE_MX && !s->has_auth)
		id = R_NEED_AUTH;
	/* THREATS X-05: refuse early, not half way through DATA. */
	if (id == R_SENDER_OK && s->ops->has_space != NULL &&
	    !s->ops->has_space(s->ctx, params.has_size ? params.size : 0))
		id = R_NO_STORAGE;
	if (id == R_SENDER_OK && s->has_auth)
		id = session_sender_check(s, addr);
	if (id == R_SENDER_OK)
		session_cmd_log_addr(s, "mail", "from", addr, strlen(addr), id);
	else
		session_cmd_log_addr(s, "mail", "from", cmd->args, cmd->args_len,
				 id);
	if (id != R_SENDER_OK) {
		session_reply(s, id);
		return;
	}
	memcpy(s->tx.sender, addr, sizeof(addr));
	s->tx.smtputf8 = params.smtputf8;
	session_set_state(s, SESSION_MAIL);
	session_reply(s, R_SENDER_OK);
}

/* Add a recipient, local (its Maildir) or remote (dir NULL); a mailbox or
   remote address named twice is kept once. */
static int
session_cmd_add_rcpt(struct session *s, const char *addr, const char *dir)
{
	struct session_tx *tx = &s->tx;
	size_t n = tx->n_rcpts;

	for (size_t i = 0; i < n; i++) {
		if (dir != NULL && tx->rcpt_dirs[i] != NULL &&
		    strcmp(tx->rcpt_dirs[i], dir) == 0)
			return 0;
		if (dir == NULL && tx->rcpt_dirs[i] == NULL &&
		    strcasecmp(tx->rcpt_addrs[i], addr) == 0)
			return 0;
	}
	tx->rcpts = realloc(tx->rcpts, (n + 1) * sizeof(*tx->rcpts));
	tx->rcpt_addrs = realloc(tx->rcpt_addrs, (n + 1) * sizeof(char *));
	tx->rcpt_dirs = realloc(tx->rcpt_dirs, (n + 1) * sizeof(char *));
	if (tx->rcpts == NULL || tx->rcpt_addrs == NULL ||
	    tx->rcpt_dirs == NULL)
		abort();
	tx->rcpt_addrs[n] = strdup(addr);
	tx->rcpt_dirs[n] = dir != NULL ? strdup(dir) : NULL;
	if (tx->rcpt_addrs[n] == NULL || (dir != NULL && tx->rcpt_dirs[n] == NULL))
		abort();
	tx->n_rcpts = n + 1;
	for (size_t i = 0; i <= n; i++) {
		tx->rcpts[i].address = tx->rcpt_addrs[i];
		tx->rcpts[i].maildir = tx->rcpt_dirs[i];
	}
	return 0;
}

/*
 * The recipient decision, on the one canonical parse (THREATS R-01): on the
 * mx role only our own domains, and there only existing mailboxes.
 */
static enum reply_id
session_cmd_route_rcpt(struct session *s, const struct smtp_path *path,
		   const char *addr)
{
	const struct config_mailbox *mb;
	struct config_mailbox user;
	char dir[4096], lower[SMTP_PATH_MAX + 1];

	if (path->is_literal || !config_is_local_domain(s->cfg, path->domain)) {
		/* Only an authenticated submission relays (RFC 6409), and
		   never to an address literal: mail routed by IP address
		   could reach internal hosts (THREATS R-04). */
		if (!s->has_auth || path->is_literal)
			return R_RELAY_DENIED;
		session_cmd_add_rcpt(s, addr, NULL);
		s->tx.rcpt_count++;
		return R_RCPT_OK;
	}
	mb = config_find_mailbox(s->cfg, path->local, path->domain);
	if (mb == NULL) {
		/* A user of the users file is a mailbox too. */
		size_t i;

		for (i = 0; addr[i] != '\0' && i < sizeof(lower) - 1; i++)
			lower[i] = (char)((addr[i] >= 'A' && addr[i] <= 'Z')
						  ? addr[i] + 32
						  : addr[i]);
		lower[i] = '\0';
		if (path->is_utf8 || s->ops->is_user == NULL ||
		    !s->ops->is_user(s->ctx, lower))
			return R_NO_MAILBOX;
		user.local = lower;
		user.domain = strchr(lower, '@') + 1;
		lower[user.domain - lower - 1] = '\0';
		mb = &user;
	}
	if (config_maildir_path(s->cfg, mb, dir, sizeof(dir)) < 0)
		return R_NO_MAILBOX;
	session_cmd_add_rcpt(s, addr, dir);
	s->tx.rcpt_count++;
	return R_RCPT_OK;
}

void
session_cmd_rcpt(struct session *s, const struct smtp_command *cmd)
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
	if (err != SMTP_PERR_OK) {
		id = session_cmd_perr_reply(err, false);
	} else if (smtp_path_format(&path, addr, sizeof(addr)) < 0) {
		id = R_BAD_RCPT;
	} else {
		id = session_cmd_route_rcpt(s, &path, addr);
	}
	session_cmd_log_addr(s, "rcpt", "to", addr[0] ? addr : cmd->args,
			 addr[0] ? strlen(addr) : cmd->args_len, id);
	if (id == R_RCPT_OK)
		session_set_state(s, SESSION_RCPT);
	session_reply(s, id);
}

void
session_cmd_rset(struct session *s, const struct smtp_command *cmd)
{
	session_tx_reset(s);
	session_reply(s, R_RSET_OK);
}

void
session_cmd_noop(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_NOOP_OK);
}

void
session_cmd_quit(struct session *s, const struct smtp_command *cmd)
{
	session_tx_reset(s);
	session_reply(s, R_QUIT);
}

void
session_cmd_help(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_HELP);
}

/* RFC 5321 3.5.3 and 7.3: disclose nothing, the same for every name. */
void
session_cmd_vrfy(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, cmd->args_len == 0 ? R_SYNTAX : R_VRFY);
}

void
session_cmd_expn(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_EXPN);
}

void
session_cmd_unimplemented(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_NOT_IMPLEMENTED);
}

void
session_cmd_unknown(struct session *s, const struct smtp_command *cmd)
{
	session_reply(s, R_UNRECOGNIZED);
}

/* HTTP and header lines sent as commands: not an SMTP client (P-05). */
void
session_cmd_non_smtp(struct session *s, const struct smtp_command *cmd)
{
	log_notice(s->p.id, "rejected reason=non-smtp-command");
	session_tx_reset(s);
	session_reply(s, R_NON_SMTP);
}
