/*
 * config.c - the configuration file, read by one table.
 *
 * Every directive is one row of config_directives[]: name, arity, parse
 * function, struct field (offsetof), default as text, bounds and a one-line
 * doc. The same rows fill in the defaults, check each line, and print the
 * reference table in docs/config.md (config_write_reference()), so the
 * code and the documentation cannot drift apart unnoticed.
 *
 * Errors never stop the parse: each one is written as "file:line: message"
 * and reading goes on, so `postern check` shows them all at once.
 */
#include "conf/config_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/mailpath.h"

/* Edit distance of two short names, for "did you mean". */
static size_t
config_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[CONFIG_NAME_MAX + 1];

	if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void
config_unknown(struct config_parser *p, const char *name)
{
	const char *hint = NULL;
	size_t best = 3; /* suggest only at distance 1 or 2 */

	for (size_t i = 0; i < config_n_directives; i++) {
		size_t dist = config_distance(name, config_directives[i].name);

		if (dist < best) {
			best = dist;
			hint = config_directives[i].name;
		}
	}
	if (hint != NULL)
		config_error(p,
			     "unknown directive \"%s\" (did you mean \"%s\"?)",
			     name, hint);
	else
		config_error(p, "unknown directive \"%s\"", name);
}

/* One line of the configuration file: look the directive up and run it. */
static void
config_directive_line(struct config_parser *p, char **argv, size_t argc)
{
	const struct config_directive *d = NULL;
	size_t i, nargs = argc - 1;
	unsigned before;

	for (i = 0; i < config_n_directives; i++) {
		if (strcmp(argv[0], config_directives[i].name) == 0) {
			d = &config_directives[i];
			break;
		}
	}
	if (d == NULL) {
		config_unknown(p, argv[0]);
		return;
	}
	if (p->seen[i] != 0 && !(d->flags & DIR_REPEAT)) {
		config_error(p, "%s: given twice (first on line %u)", d->name,
			     p->seen[i]);
		return;
	}
	if (p->seen[i] == 0)
		p->seen[i] = p->line;
	if (nargs < d->min_args || (d->max_args != 0 && nargs > d->max_args)) {
		config_error(
		    p, "%s: expected %s%u argument%s (%s %s), got %zu", d->name,
		    d->max_args == d->min_args ? "" : "at least ", d->min_args,
		    d->min_args == 1 ? "" : "s", d->name, d->args, nargs);
		return;
	}
	before = p->n_errors;
	d->parse(p, d, argv + 1, nargs);
	if (p->n_errors == before)
		p->set[i] = p->line;
}

/* Fill every field that has a default, through its own parse function. */
static void
config_apply_defaults(struct config_parser *p)
{
	for (size_t i = 0; i < config_n_directives; i++) {
		const struct config_directive *d = &config_directives[i];
		char *arg;

		if (d->def == NULL)
			continue;
		arg = config_xstrdup(d->def);
		d->parse(p, d, &arg, 1);
		free(arg);
	}
	if (p->n_errors != 0)
		abort(); /* a default that does not parse is a bug */
}

static int
config_mb_entry_cmp(const void *va, const void *vb)
{
	const struct config_mb_entry *a = va, *b = vb;
	int c = config_casecmp(a->mb.domain, strlen(a->mb.domain), b->mb.domain,
			       strlen(b->mb.domain));

	if (c == 0)
		c = config_casecmp(a->mb.local, strlen(a->mb.local),
				   b->mb.local, strlen(b->mb.local));
	if (c == 0)
		c = a->seq < b->seq ? -1 : (a->seq > b->seq);
	return c;
}

/*
 * Check each mailbox's domain, sort them (domain, local), refuse
 * duplicates, and move them into cfg->mailboxes.
 */
static void
config_finish_mailboxes(struct config_parser *p)
{
	struct config *cfg = p->cfg;
	struct config_mb_entry *e = p->mbs;

	for (size_t i = 0; i < p->n_mbs; i++) {
		if (config_is_local_domain(cfg, e[i].mb.domain))
			continue;
		p->file = e[i].file;
		p->line = e[i].line;
		config_error(p, "mailbox %s@%s: domain %s is not in domains",
			     e[i].mb.local, e[i].mb.domain, e[i].mb.domain);
	}
	if (p->n_mbs == 0)
		return;
	qsort(e, p->n_mbs, sizeof(*e), config_mb_entry_cmp);
	cfg->mailboxes =
	    config_xrealloc(NULL, p->n_mbs, sizeof(*cfg->mailboxes));
	for (size_t i = 0, kept = 0; i < p->n_mbs; i++) {
		if (i > 0 && strcmp(e[i].mb.domain, e[kept].mb.domain) == 0 &&
		    strcmp(e[i].mb.local, e[kept].mb.local) == 0) {
			p->file = e[i].file;
			p->line = e[i].line;
			config_error(p,
				     "mailbox %s@%s given twice (first at "
				     "%s:%u)",
				     e[i].mb.local, e[i].mb.domain,
				     e[kept].file, e[kept].line);
			free(e[i].mb.local);
			free(e[i].mb.domain);
			continue;
		}
		kept = i;
		cfg->mailboxes[cfg->n_mailboxes++] = e[i].mb;
	}
	p->n_mbs = 0;
}

/*
 * Make a relative path absolute against the current directory. With
 * `escape`, a '%' in the directory is doubled (the path is a template).
 */
static void
config_absolute(struct config_parser *p, char **path, bool escape)
{
	char *cwd, *abs;
	size_t clen, plen, o = 0;

	if (*path == NULL || (*path)[0] == '/')
		return;
	cwd = getcwd(NULL, 0);
	if (cwd == NULL) {
		if (!p->cwd_failed)
			config_error(p, "cannot find the current directory: %s",
				     strerror(errno));
		p->cwd_failed = true; /* said once for all the paths */
		return;
	}
	clen = strlen(cwd);
	plen = strlen(*path);
	abs = config_xrealloc(NULL, 2 * clen + plen + 2, 1);
	for (size_t i = 0; i < clen; i++) {
		if (escape && cwd[i] == '%')
			abs[o++] = '%';
		abs[o++] = cwd[i];
	}
	if (o == 0 || abs[o - 1] != '/')
		abs[o++] = '/';
	memcpy(abs + o, *path, plen + 1);
	free(cwd);
	free(*path);
	*path = abs;
}

/* The index of the row named `name`; a name not in the table is a bug. */
static size_t
config_directive_index(const char *name)
{
	for (size_t i = 0; i < config_n_directives; i++)
		if (strcmp(config_directives[i].name, name) == 0)
			return i;
	abort();
}

/* Was the directive given, but its line refused? Then say nothing more. */
static bool
config_line_failed(const struct config_parser *p, size_t i)
{
	return p->seen[i] != 0 && p->set[i] == 0;
}

/* The postmaster mailbox must be in one of our domains. */
static void
config_check_postmaster(struct config_parser *p)
{
	const struct config_mailbox *pm = &p->cfg->postmaster;

	if (pm->domain == NULL || config_is_local_domain(p->cfg, pm->domain))
		return;
	p->line = p->set[config_directive_index("postmaster")];
	config_error(p, "postmaster: %s@%s: domain %s is not in domains",
		     pm->local, pm->domain, pm->domain);
}

/*
 * The control socket's path, once absolute, must fit in sun_path with its
 * NUL (unix(7)). Reported on its line, or line 0 for the default.
 */
static void
config_check_socket(struct config_parser *p)
{
	const char *path = p->cfg->control_socket;
	size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;

	if (path == NULL || strlen(path) <= max)
		return;
	p->line = p->set[config_directive_index("control-socket")];
	config_error(p,
		     "control-socket: %s is longer than %zu octets, the limit "
		     "of a socket path",
		     path, max);
}

/*
 * auth-lock-max must be at least auth-lock-time, since the lock doubles up
 * to it. The error goes on the line of the one that was given (auth-lock-
 * max when both were); nothing is added when either line had its own error.
 */
static void
config_check_lock_times(struct config_parser *p)
{
	const struct config *cfg = p->cfg;
	size_t t = config_directive_index("auth-lock-time");
	size_t m = config_directive_index("auth-lock-max");
	char lock[32], max[32];

	if (cfg->auth_lock_max >= cfg->auth_lock_time ||
	    config_line_failed(p, t) || config_line_failed(p, m))
		return;
	config_values_format(UNIT_DURATION, cfg->auth_lock_time, lock,
			     sizeof(lock));
	config_values_format(UNIT_DURATION, cfg->auth_lock_max, max,
			     sizeof(max));
	if (p->set[m] != 0) {
		p->line = p->set[m];
		config_error(p,
			     "auth-lock-max: %s is shorter than auth-lock-time "
			     "(%s)",
			     max, lock);
	} else {
		p->line = p->set[t];
		config_error(p,
			     "auth-lock-time: %s is longer than auth-lock-max "
			     "(%s)",
			     lock, max);
	}
}

/*
 * No listener may relay mail without authentication. mx never relays
 * (the session code enforces it); submission and submissions relay only for
 * authenticated users, and accept AUTH only under TLS (RFC 8314 3.3,
 * RFC 4954 4: no plaintext passwords). So each needs a certificate and a
 * users file, else `postern check` refuses the file rather than open a
 * port that cannot work. Errors name the listener's line. tls-self-signed
 * needs a tls-certificate line too: it names the files to create.
 */
static void
config_check_listeners(struct config_parser *p)
{
	const struct config *cfg = p->cfg;
	size_t c = config_directive_index("tls-certificate");
	size_t s = config_directive_index("tls-self-signed");
	bool certs_failed = config_line_failed(p, c) && cfg->n_certs == 0;

	if (cfg->tls_self_signed && cfg->n_certs == 0 && !certs_failed) {
		p->line = p->set[s];
		config_error(p,
			     "tls-self-signed: no tls-certificate line names "
			     "the files to create");
	}
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		const char *role = config_role_name(l->role);

		if (l->role == ROLE_MX)
			continue;
		p->line = l->line;
		if (cfg->n_certs == 0 && !certs_failed)
			config_error(p,
				     "listen: %s %s needs a certificate "
				     "(tls-certificate): %s",
				     l->addr_text, role,
				     l->role == ROLE_SUBMISSIONS
					 ? "it speaks TLS from the first octet"
					 : "AUTH is accepted only under TLS");
		if (cfg->users_file == NULL)
			config_error(
			    p,
			    "listen: %s %s needs a users file (users): it "
			    "relays mail only for authenticated users",
			    l->addr_text, role);
	}
}

/*
 * Checks that need the whole file: required directives, mailboxes, paths
 * made absolute, and the rules between directives. Errors from here on
 * belong to the main file.
 */
static void
config_finish(struct config_parser *p, const char *name)
{
	struct config *cfg = p->cfg;

	for (size_t i = 0; i < config_n_directives; i++) {
		if ((config_directives[i].flags & DIR_REQUIRED) &&
		    p->seen[i] == 0) {
			p->line = 0;
			config_error(p, "missing required directive \"%s\"",
				     config_directives[i].name);
		}
	}
	config_finish_mailboxes(p);
	p->file = name;
	p->line = 0;
	config_absolute(p, &cfg->spool, false);
	config_absolute(p, &cfg->maildir, true);
	config_absolute(p, &cfg->users_file, false);
	config_absolute(p, &cfg->control_socket, false);
	config_absolute(p, &cfg->guard_state, false);
	for (size_t i = 0; i < cfg->n_certs; i++) {
		config_absolute(p, &cfg->certs[i].cert, false);
		config_absolute(p, &cfg->certs[i].key, false);
	}
	config_check_postmaster(p);
	config_check_socket(p);
	config_check_lock_times(p);
	config_check_listeners(p);
	config_check_outbound(p);
}

static void
config_parser_free(struct config_parser *p)
{
	for (size_t i = 0; i < p->n_mbs; i++) {
		free(p->mbs[i].mb.local);
		free(p->mbs[i].mb.domain);
	}
	free(p->mbs);
	for (size_t i = 0; i < p->n_names; i++)
		free(p->names[i]);
	free(p->names);
	free(p->domain_lines);
	free(p->argv);
}

/* Parse `len` octets of `text` (a copy is made) read from `name`. */
static int
config_parse(const char *name, const char *text, size_t len,
	     struct config **cfg_r, FILE *errors)
{
	struct config_parser p = {.errors = errors, .file = name};
	char *copy = config_xrealloc(NULL, len + 1, 1);

	memcpy(copy, text, len);
	copy[len] = '\0';
	p.cfg = config_xrealloc(NULL, 1, sizeof(*p.cfg));
	memset(p.cfg, 0, sizeof(*p.cfg));
	p.cfg->file = config_xstrdup(name);
	config_apply_defaults(&p);
	config_read_lines(&p, copy, len, config_directive_line);
	free(copy);
	config_finish(&p, name);
	config_parser_free(&p);
	if (p.n_errors != 0) {
		config_free(&p.cfg);
		*cfg_r = NULL;
		return -1;
	}
	*cfg_r = p.cfg;
	return 0;
}

int
config_load(const char *path, struct config **cfg_r, FILE *errors)
{
	char *buf;
	size_t len;
	int rc;

	if (config_read_file(path, &buf, &len) < 0) {
		if (errors != NULL)
			fprintf(errors, "%s: cannot read: %s\n", path,
				strerror(errno));
		*cfg_r = NULL;
		return -1;
	}
	rc = config_parse(path, buf, len, cfg_r, errors);
	free(buf);
	return rc;
}

int
config_load_builtin(struct config **cfg_r, FILE *errors)
{
	return config_load_string("(built-in)", config_builtin_text, cfg_r,
				  errors);
}

int
config_load_string(const char *name, const char *text, struct config **cfg_r,
		   FILE *errors)
{
	return config_parse(name, text, strlen(text), cfg_r, errors);
}

void
config_free(struct config **cfgp)
{
	struct config *cfg = cfgp ? *cfgp : NULL;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_domains; i++)
		free(cfg->domains[i]);
	free(cfg->domains);
	for (size_t i = 0; i < cfg->n_mailboxes; i++) {
		free(cfg->mailboxes[i].local);
		free(cfg->mailboxes[i].domain);
	}
	free(cfg->mailboxes);
	free(cfg->postmaster.local);
	free(cfg->postmaster.domain);
	free(cfg->listeners);
	for (size_t i = 0; i < cfg->n_certs; i++) {
		free(cfg->certs[i].cert);
		free(cfg->certs[i].key);
	}
	free(cfg->certs);
	free(cfg->auth_allow);
	free(cfg->conn_limit_exempt);
	free(cfg->users_file);
	free(cfg->control_socket);
	free(cfg->guard_state);
	free(cfg->file);
	free(cfg->hostname);
	free(cfg->maildir);
	free(cfg->spool);
	free(cfg->user);
	free(cfg->guard_user);
	free(cfg->admin_group);
	config_free_outbound(cfg);
	free(cfg);
	*cfgp = NULL;
}

struct config_mb_key {
	const char *local, *domain;
	size_t local_len, domain_len;
};

static int
config_mb_key_cmp(const void *vk, const void *ve)
{
	const struct config_mb_key *k = vk;
	const struct config_mailbox *e = ve;
	int c = config_casecmp(k->domain, k->domain_len, e->domain,
			       strlen(e->domain));

	if (c == 0)
		c = config_casecmp(k->local, k->local_len, e->local,
				   strlen(e->local));
	return c;
}

/*
 * Binary search of the sorted mailboxes; the domain may end in one dot.
 * The stored names are lower case, so the case-insensitive order used
 * here is the order they were sorted in.
 */
const struct config_mailbox *
config_find_mailbox(const struct config *cfg, const char *local,
		    const char *domain)
{
	struct config_mb_key k;

	if (local == NULL || domain == NULL || cfg->n_mailboxes == 0)
		return NULL;
	k.local = local;
	k.local_len = strlen(local);
	k.domain = domain;
	k.domain_len = config_domain_len(domain);
	return bsearch(&k, cfg->mailboxes, cfg->n_mailboxes,
		       sizeof(*cfg->mailboxes), config_mb_key_cmp);
}

int
config_maildir_path(const struct config *cfg, const struct config_mailbox *mb,
		    char *buf, size_t size)
{
	return mailpath_expand(cfg->maildir, mb->local, mb->domain, buf, size);
}

/* The "Range" cell of a row: numeric bounds or the list of keywords. */
static const char *
config_range_text(const struct config_directive *d, char *buf, size_t size)
{
	char lo[32], hi[32];
	int n;

	if (d->words != NULL)
		return config_values_join_words(d->words, buf, size);
	if (d->parse == config_parse_bool)
		return "yes, no";
	if (d->unit == UNIT_NONE)
		return "";
	n = snprintf(buf, size, "%s..%s",
		     config_values_format(d->unit, d->min, lo, sizeof(lo)),
		     config_values_format(d->unit, d->max, hi, sizeof(hi)));
	if (n < 0 || (size_t)n >= size)
		abort();
	return buf;
}

/*
 * The directive table as markdown, exactly as docs/config.md holds it
 * between its <!-- directives --> markers (a unit test compares them).
 */
void
config_write_reference(FILE *out)
{
	fputs("| Directive | Arguments | Default | Range | Meaning |\n"
	      "|---|---|---|---|---|\n",
	      out);
	for (size_t i = 0; i < config_n_directives; i++) {
		const struct config_directive *d = &config_directives[i];
		char range[128], def[64];
		const char *dtext = "none";

		if (d->flags & DIR_REQUIRED)
			dtext = "required";
		if (d->def != NULL) {
			int n = snprintf(def, sizeof(def), "`%s`", d->def);

			if (n < 0 || (size_t)n >= sizeof(def))
				abort();
			dtext = def;
		}
		fprintf(out, "| `%s` | %s | %s | %s | %s |\n", d->name, d->args,
			dtext, config_range_text(d, range, sizeof(range)),
			d->doc);
	}
}

const char *
config_role_name(enum listen_role role)
{
	if (role >= ROLE_MX && role <= ROLE_SUBMISSIONS)
		return config_role_words[role];
	return "unknown";
}
