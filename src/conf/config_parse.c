/*
 * config_parse.c - one parse function per kind of value: names, domains,
 * mailboxes, paths, listeners, certificates, networks, numbers, keywords.
 * Each reads the words of one line and either sets its field in struct
 * config or reports "file:line: message" through config_error().
 */
#include "conf/config_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/mailpath.h"

static void
config_set_string(struct config_parser *p, const struct config_directive *d,
		  const char *value)
{
	char **field = (char **)((char *)p->cfg + d->field);

	free(*field);
	*field = config_xstrdup(value);
}

/* hostname NAME: a valid domain name, kept as written. */
void
config_parse_hostname(struct config_parser *p, const struct config_directive *d,
		      char **argv, size_t argc)
{
	const char *why = config_values_domain(argv[0]);

	(void)argc;
	if (why != NULL) {
		config_error(p, "%s: \"%s\" is not a domain name: %s", d->name,
			     argv[0], why);
		return;
	}
	config_set_string(p, d, argv[0]);
}

/* domains D...: each a domain name, stored in lower case, once. */
void
config_parse_domains(struct config_parser *p, const struct config_directive *d,
		     char **argv, size_t argc)
{
	struct config *cfg = p->cfg;

	for (size_t i = 0; i < argc; i++) {
		const char *why = config_values_domain(argv[i]);
		size_t len = strlen(argv[i]), j;

		if (why != NULL) {
			config_error(p, "%s: \"%s\" is not a domain name: %s",
				     d->name, argv[i], why);
			continue;
		}
		for (j = 0; j < cfg->n_domains; j++)
			if (config_casecmp(cfg->domains[j],
					   strlen(cfg->domains[j]), argv[i],
					   len) == 0)
				break;
		if (j < cfg->n_domains) {
			config_error(p, "%s: %s given twice (first on line %u)",
				     d->name, argv[i], p->domain_lines[j]);
			continue;
		}
		cfg->domains = config_xrealloc(cfg->domains, cfg->n_domains + 1,
					       sizeof(*cfg->domains));
		p->domain_lines =
		    config_xrealloc(p->domain_lines, cfg->n_domains + 1,
				    sizeof(*p->domain_lines));
		cfg->domains[cfg->n_domains] = config_lower_dup(argv[i], len);
		p->domain_lines[cfg->n_domains++] = p->line;
	}
}

/*
 * Add one mailbox "local@domain" at the current position. Whether the
 * domain is ours, and duplicates, are checked at the end, when all
 * `domains` lines have been read.
 */
void
config_add_mailbox(struct config_parser *p, const char *addr)
{
	const char *at = strrchr(addr, '@'), *why;
	struct config_mb_entry *e;

	if (at == NULL) {
		config_error(p, "bad mailbox \"%s\": not user@domain", addr);
		return;
	}
	why = config_values_local(addr, (size_t)(at - addr));
	if (why != NULL) {
		config_error(p, "bad mailbox \"%s\": local part %s", addr, why);
		return;
	}
	why = config_values_domain(at + 1);
	if (why != NULL) {
		config_error(p, "bad mailbox \"%s\": domain %s", addr, why);
		return;
	}
	if (p->n_mbs == p->cap_mbs) {
		p->cap_mbs = p->cap_mbs ? 2 * p->cap_mbs : 16;
		p->mbs = config_xrealloc(p->mbs, p->cap_mbs, sizeof(*p->mbs));
	}
	e = &p->mbs[p->n_mbs];
	e->mb.local = config_lower_dup(addr, (size_t)(at - addr));
	e->mb.domain = config_lower_dup(at + 1, strlen(at + 1));
	e->file = p->file;
	e->line = p->line;
	e->seq = p->n_mbs++;
}

void
config_parse_mailbox(struct config_parser *p, const struct config_directive *d,
		     char **argv, size_t argc)
{
	(void)d;
	for (size_t i = 0; i < argc; i++)
		config_add_mailbox(p, argv[i]);
}

/* postmaster ADDRESS: a mailbox as for `mailbox`; its domain must be one
   of ours (checked once the whole file is read). */
void
config_parse_postmaster(struct config_parser *p,
			const struct config_directive *d, char **argv,
			size_t argc)
{
	struct config_mailbox *pm = &p->cfg->postmaster;
	const char *addr = argv[0], *at = strrchr(addr, '@'), *why = NULL;

	(void)argc;
	if (at == NULL)
		why = "is not user@domain";
	else if (config_values_local(addr, (size_t)(at - addr)) != NULL)
		why = "has a bad local part";
	else if (config_values_domain(at + 1) != NULL)
		why = "has a bad domain";
	if (why != NULL) {
		config_error(p, "%s: \"%s\" %s", d->name, addr, why);
		return;
	}
	pm->local = config_lower_dup(addr, (size_t)(at - addr));
	pm->domain = config_lower_dup(at + 1, strlen(at + 1));
}

/* maildir TEMPLATE: only %d, %n and %% expand; %n must appear. */
void
config_parse_template(struct config_parser *p, const struct config_directive *d,
		      char **argv, size_t argc)
{
	const char *t = argv[0];
	bool has_local = false;

	(void)argc;
	for (const char *c = t; *c != '\0'; c++) {
		if (*c != '%')
			continue;
		c++;
		if (*c == 'n') {
			has_local = true;
		} else if (*c != 'd' && *c != '%') {
			config_error(p,
				     "%s: \"%s\": only %%d, %%n and %%%% may "
				     "follow %%",
				     d->name, t);
			return;
		}
	}
	if (!has_local) {
		config_error(p,
			     "%s: \"%s\" has no %%n: every mailbox would share "
			     "one Maildir",
			     d->name, t);
		return;
	}
	config_set_string(p, d, t);
}

void
config_parse_string(struct config_parser *p, const struct config_directive *d,
		    char **argv, size_t argc)
{
	(void)argc;
	config_set_string(p, d, argv[0]);
}

/* FILE, relative to the directory of the file being read. */
void
config_parse_path(struct config_parser *p, const struct config_directive *d,
		  char **argv, size_t argc)
{
	char **field = (char **)((char *)p->cfg + d->field);

	(void)argc;
	free(*field);
	*field = config_relative_path(p->file, argv[0]);
}

/*
 * tls-certificate CERT KEY: both relative to this file's directory. The
 * files are not opened here: tls.c reads them (and makes the first one
 * with tls-self-signed), so `postern check` needs no access to the key.
 */
void
config_parse_cert(struct config_parser *p, const struct config_directive *d,
		  char **argv, size_t argc)
{
	struct config *cfg = p->cfg;
	struct config_cert c = {.line = p->line};

	(void)argc;
	c.cert = config_relative_path(p->file, argv[0]);
	for (size_t i = 0; i < cfg->n_certs; i++) {
		if (strcmp(cfg->certs[i].cert, c.cert) == 0) {
			config_error(p, "%s: %s given twice (first on line %u)",
				     d->name, argv[0], cfg->certs[i].line);
			free(c.cert);
			return;
		}
	}
	c.key = config_relative_path(p->file, argv[1]);
	cfg->certs =
	    config_xrealloc(cfg->certs, cfg->n_certs + 1, sizeof(*cfg->certs));
	cfg->certs[cfg->n_certs++] = c;
}

/* NETWORK...: each one checked on its own, added to the list *v, *n. */
static void
config_add_networks(struct config_parser *p, const struct config_directive *d,
		    char **argv, size_t argc, struct config_network **v,
		    size_t *n)
{
	for (size_t i = 0; i < argc; i++) {
		struct config_network net;
		const char *why = config_values_network(argv[i], &net);

		if (why != NULL) {
			config_error(p, "%s: \"%s\" %s", d->name, argv[i], why);
			continue;
		}
		*v = config_xrealloc(*v, *n + 1, sizeof(**v));
		(*v)[(*n)++] = net;
	}
}

/* auth-allow NETWORK... */
void
config_parse_network(struct config_parser *p, const struct config_directive *d,
		     char **argv, size_t argc)
{
	config_add_networks(p, d, argv, argc, &p->cfg->auth_allow,
			    &p->cfg->n_auth_allow);
}

/* conn-limit-exempt NETWORK... */
void
config_parse_exempt(struct config_parser *p, const struct config_directive *d,
		    char **argv, size_t argc)
{
	config_add_networks(p, d, argv, argc, &p->cfg->conn_limit_exempt,
			    &p->cfg->n_conn_limit_exempt);
}

/* yes or no (on/off, true/false) into a bool field. */
void
config_parse_bool(struct config_parser *p, const struct config_directive *d,
		  char **argv, size_t argc)
{
	bool v;

	(void)argc;
	if (config_values_bool(argv[0], &v) < 0) {
		config_error(p,
			     "%s: \"%s\" is not yes or no (nor on, off, "
			     "true, false)",
			     d->name, argv[0]);
		return;
	}
	*(bool *)((char *)p->cfg + d->field) = v;
}

/* A count, size or duration with the row's bounds. */
void
config_parse_number(struct config_parser *p, const struct config_directive *d,
		    char **argv, size_t argc)
{
	static const char *const what[] = {
	    [UNIT_COUNT] = "a whole number",
	    [UNIT_SIZE] = "a size (a whole number, then K, M or G)",
	    [UNIT_DURATION] = "a duration (a whole number, then s, m or h)",
	};
	char lo[32], hi[32];
	void *field = (char *)p->cfg + d->field;
	uint64_t v;
	int rc = config_values_number(d->unit, argv[0], &v);

	(void)argc;
	if (rc == -1) {
		config_error(p, "%s: \"%s\" is not %s", d->name, argv[0],
			     what[d->unit]);
		return;
	}
	config_values_format(d->unit, d->min, lo, sizeof(lo));
	config_values_format(d->unit, d->max, hi, sizeof(hi));
	if (rc == -2 || v < d->min || v > d->max) {
		config_error(p, "%s: %s is out of range %s..%s", d->name,
			     argv[0], lo, hi);
		return;
	}
	if (d->unit == UNIT_SIZE)
		*(uint64_t *)field = v;
	else
		*(unsigned *)field = (unsigned)v; /* max fits, see table */
}

/* One keyword of the row's list; the field gets its index. */
void
config_parse_keyword(struct config_parser *p, const struct config_directive *d,
		     char **argv, size_t argc)
{
	int i = config_values_word_index(d->words, argv[0]);
	char list[128];

	(void)argc;
	if (i < 0) {
		config_error(
		    p, "%s: \"%s\" is not one of %s", d->name, argv[0],
		    config_values_join_words(d->words, list, sizeof(list)));
		return;
	}
	*(int *)((char *)p->cfg + d->field) = i;
}

/* listen ADDR:PORT ROLE; one listener per address and port. */
void
config_parse_listen(struct config_parser *p, const struct config_directive *d,
		    char **argv, size_t argc)
{
	struct config *cfg = p->cfg;
	struct config_listener l = {.line = p->line};
	const char *why = NULL;
	char list[128];
	int role = config_values_word_index(d->words, argv[1]);
	int n = snprintf(l.addr_text, sizeof(l.addr_text), "%s", argv[0]);
	bool ok = true;

	(void)argc;
	if (n < 0 || (size_t)n >= sizeof(l.addr_text))
		why = "is too long";
	else
		why = config_values_sockaddr(argv[0], &l);
	if (why != NULL) {
		config_error(p, "%s: \"%s\" %s", d->name, argv[0], why);
		ok = false;
	}
	if (role < 0) {
		config_error(
		    p, "%s: role \"%s\" is not one of %s", d->name, argv[1],
		    config_values_join_words(d->words, list, sizeof(list)));
		ok = false;
	}
	if (!ok)
		return;
	l.role = (enum listen_role)role;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		if (config_values_same_sockaddr(&cfg->listeners[i], &l)) {
			config_error(p, "%s: %s duplicates line %u (%s)",
				     d->name, argv[0], cfg->listeners[i].line,
				     cfg->listeners[i].addr_text);
			return;
		}
	}
	cfg->listeners = config_xrealloc(cfg->listeners, cfg->n_listeners + 1,
					 sizeof(*cfg->listeners));
	cfg->listeners[cfg->n_listeners++] = l;
}

/* metrics-listen ADDR:PORT (docs/metrics.md): one address, no role. */
void
config_parse_metrics_listen(struct config_parser *p,
			    const struct config_directive *d, char **argv,
			    size_t argc)
{
	struct config_listener l = {.line = p->line};
	int n = snprintf(l.addr_text, sizeof(l.addr_text), "%s", argv[0]);
	const char *why = n < 0 || (size_t)n >= sizeof(l.addr_text)
			      ? "is too long"
			      : config_values_sockaddr(argv[0], &l);

	(void)argc;
	if (why != NULL) {
		config_error(p, "%s: \"%s\" %s", d->name, argv[0], why);
		return;
	}
	p->cfg->metrics_listen = l;
}

/* One line of a mailboxes file: exactly one address. */
static void
config_mailboxes_line(struct config_parser *p, char **argv, size_t argc)
{
	if (argc != 1) {
		config_error(p, "expected one address per line, got %zu words",
			     argc);
		return;
	}
	config_add_mailbox(p, argv[0]);
}

/* mailboxes FILE: read more mailboxes; errors name FILE and its line. */
void
config_parse_mailboxes(struct config_parser *p,
		       const struct config_directive *d, char **argv,
		       size_t argc)
{
	char *path = config_relative_path(p->file, argv[0]), *buf;
	const char *saved_file = p->file;
	unsigned saved_line = p->line;
	size_t len;

	(void)argc;
	if (config_read_file(path, &buf, &len) < 0) {
		config_error(p, "%s: %s: cannot read: %s", d->name, path,
			     strerror(errno));
		free(path);
		return;
	}
	p->names = config_xrealloc(p->names, p->n_names + 1, sizeof(*p->names));
	p->names[p->n_names++] = path;
	p->file = path;
	config_read_lines(p, buf, len, config_mailboxes_line);
	p->file = saved_file;
	p->line = saved_line;
	free(buf);
}
