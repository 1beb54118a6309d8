/*
 * session_cmd.c - HELO/EHLO, MAIL and the small verbs: RSET, NOOP, QUIT,
 * HELP, VRFY, EXPN, and the refusals of unknown and unimplemented
 * commands. Called from the verb table in session.c; calls only the
 * shared helpers of session_state.c and session_sender.c.
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

/*
 * mx-local-senders (issue 7 item 3): a client without AUTH on mx giving a
 * sender in one of our domains is spoofing our users, who submit with
 * AUTH. The refusal (550 5.7.1) comes at each RCPT but those to
 * postmaster and abuse, which anyone must be able to reach (RFC 5321
 * 4.5.1), as Postfix's smtpd_delay_reject does for its sender checks.
 * The null sender is not ours.
 */
static bool
session_cmd_local_sender(const struct session *s, const struct smtp_path *p)
{
	return s->p.role == ROLE_MX && !s->has_auth &&
	       s->cfg->mx_local_senders == MX_LOCAL_SENDERS_REFUSE &&
	       !p->is_null && !p->is_literal &&
	       config_is_local_domain(s->cfg, p->domain);
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
	id = err == SMTP_PERR_OK ? R_SENDER_OK : session_perr_reply(err, true);
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
		session_log_addr(s, "mail", "from", addr, strlen(addr), id);
	else
		session_log_addr(s, "mail", "from", cmd->args, cmd->args_len,
				 id);
	if (id != R_SENDER_OK) {
		session_reply(s, id);
		return;
	}
	memcpy(s->tx.sender, addr, sizeof(addr));
	s->tx.smtputf8 = params.smtputf8;
	s->tx.local_sender = session_cmd_local_sender(s, &path);
	session_set_state(s, SESSION_MAIL);
	session_reply(s, R_SENDER_OK);
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
