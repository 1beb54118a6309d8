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
#include "conf/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/config_values.h"
#include "conf/mailpath.h"

#define CONFIG_FILE_MAX (64u << 20) /* octets of one file */
#define CONFIG_NAME_MAX 32	    /* longest directive name, for hints */
#define CONFIG_KIB 1024ull

#define DIR_REPEAT 0x1u	  /* may appear more than once */
#define DIR_REQUIRED 0x2u /* must appear at least once */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The embedded development configuration (docs/config.md shows it too).
 * Its relative paths are relative to the current directory: there is no
 * file to be relative to. The server makes the certificate and the demo
 * user on first start.
 */
static const char config_builtin_text[] =
    "hostname localhost\n"
    "domains example.test\n"
    "mailbox demo@example.test\n"
    "users var/users\n"
    "spool var/spool\n"
    "maildir var/mail/%d/%n/Maildir\n"
    "control-socket var/run/postern.sock\n"
    "tls-certificate var/tls/cert.pem var/tls/key.pem\n"
    "tls-self-signed yes\n"
    "listen 127.0.0.1:2025 mx\n"
    "listen [::1]:2025 mx\n"
    "listen 127.0.0.1:2587 submission\n"
    "listen 127.0.0.1:2525 submission\n"
    "listen 127.0.0.1:2465 submissions\n";

struct config_parser;
struct config_directive;

typedef void config_line_fn(struct config_parser *p, char **argv, size_t argc);
typedef void config_parse_fn(struct config_parser *p,
			     const struct config_directive *d, char **argv,
			     size_t argc);

struct config_directive {
	const char *name;
	const char *args;	     /* usage, as in the reference */
	unsigned min_args, max_args; /* max_args 0: no upper limit */
	config_parse_fn *parse;
	size_t field;		  /* offsetof(struct config, ...) */
	const char *def;	  /* default as text, NULL: none */
	enum config_unit unit;	  /* numbers: how to read and show */
	uint64_t min, max;	  /* numbers: bounds, inclusive */
	const char *const *words; /* keywords, index = enum value */
	unsigned flags;		  /* DIR_* */
	const char *doc;
};

static config_parse_fn config_parse_hostname, config_parse_domains,
    config_parse_mailbox, config_parse_mailboxes, config_parse_template,
    config_parse_string, config_parse_path, config_parse_listen,
    config_parse_cert, config_parse_network, config_parse_number,
    config_parse_keyword, config_parse_bool;

static const char *const config_role_words[] = {"mx", "submission",
						"submissions", NULL};
static const char *const config_level_words[] = {"debug",   "info",  "notice",
						 "warning", "error", NULL};
static const char *const config_sync_words[] = {"syncfs", "fsync", NULL};

_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum sync_method) == sizeof(int), "enum size");

#define FIELD(f) offsetof(struct config, f)
#define ROW_NUM(n, a, f, u, d, lo, hi, doc_)                                   \
	{                                                                      \
		.name = n, .args = a, .min_args = 1, .max_args = 1,            \
		.parse = config_parse_number, .field = FIELD(f), .def = d,     \
		.unit = u, .min = lo, .max = hi, .doc = doc_                   \
	}
#define ROW_BOOL(n, f, d, doc_)                                                \
	{                                                                      \
		.name = n, .args = "BOOLEAN", .min_args = 1, .max_args = 1,    \
		.parse = config_parse_bool, .field = FIELD(f), .def = d,       \
		.doc = doc_                                                    \
	}

/*
 * The directives, in the order of the reference. Sizes are multiples of
 * 1024; durations are seconds.
 */
static const struct config_directive config_directives[] = {
    {.name = "hostname",
     .args = "NAME",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_hostname,
     .field = FIELD(hostname),
     .flags = DIR_REQUIRED,
     .doc = "our domain name, in the greeting and Received headers"},
    {.name = "domains",
     .args = "DOMAIN...",
     .min_args = 1,
     .parse = config_parse_domains,
     .flags = DIR_REQUIRED | DIR_REPEAT,
     .doc = "domains we accept mail for; repeat to add more"},
    {.name = "mailbox",
     .args = "ADDRESS...",
     .min_args = 1,
     .parse = config_parse_mailbox,
     .flags = DIR_REPEAT,
     .doc = "local mailboxes, user@domain; repeat to add more"},
    {.name = "mailboxes",
     .args = "FILE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_mailboxes,
     .flags = DIR_REPEAT,
     .doc = "file of mailboxes, one address per line, relative to "
	    "this file's directory"},
    {.name = "users",
     .args = "FILE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_path,
     .field = FIELD(users_file),
     .doc = "users file (Dovecot passwd-file), relative to this file's "
	    "directory; its users are local mailboxes too"},
    {.name = "maildir",
     .args = "TEMPLATE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_template,
     .field = FIELD(maildir),
     .def = "var/mail/%d/%n/Maildir",
     .doc = "Maildir of a mailbox: %d domain, %n local part, %% percent"},
    {.name = "spool",
     .args = "DIR",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(spool),
     .def = "var/spool",
     .doc = "spool directory"},
    {.name = "control-socket",
     .args = "PATH",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(control_socket),
     .def = "var/run/postern.sock",
     .doc = "Unix socket of `postern locks` and `postern unlock`"},
    {.name = "user",
     .args = "NAME",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(user),
     .doc = "account the workers run as (none: the current one)"},
    {.name = "listen",
     .args = "ADDR:PORT ROLE",
     .min_args = 2,
     .max_args = 2,
     .parse = config_parse_listen,
     .words = config_role_words,
     .flags = DIR_REQUIRED | DIR_REPEAT,
     .doc = "a listening socket; ADDR is IPv4, [IPv6] or localhost"},
    {.name = "tls-certificate",
     .args = "CERT KEY",
     .min_args = 2,
     .max_args = 2,
     .parse = config_parse_cert,
     .flags = DIR_REPEAT,
     .doc = "PEM certificate chain and key, relative to this file's "
	    "directory; repeat for more names (SNI), the first is the "
	    "default"},
    ROW_BOOL("tls-self-signed", tls_self_signed, "no",
	     "create the first certificate, self-signed, when it is missing"),
    ROW_NUM("tls-handshake-timeout", "DURATION", tls_handshake_timeout,
	    UNIT_DURATION, "20s", 1, 300,
	    "time a client has to finish the TLS handshake"),
    ROW_NUM("workers", "N", workers, UNIT_COUNT, "0", 0, 64,
	    "worker processes (0: one per core)"),
    ROW_NUM("max-message-size", "SIZE", max_message_size, UNIT_SIZE, "50M",
	    CONFIG_KIB, 2 * CONFIG_KIB * CONFIG_KIB * CONFIG_KIB,
	    "largest message accepted (RFC 1870 SIZE)"),
    ROW_NUM("max-recipients", "N", max_recipients, UNIT_COUNT, "1000", 1,
	    100000, "recipients per message (RFC 5321 4.5.3.1.8)"),
    ROW_NUM("max-sessions", "N", max_sessions, UNIT_COUNT, "10000", 1, 1000000,
	    "open sessions, all workers together"),
    ROW_NUM("error-limit", "N", error_limit, UNIT_COUNT, "10", 1, 1000,
	    "protocol errors in a session before 421 and close"),
    ROW_NUM("reject-limit", "N", reject_limit, UNIT_COUNT, "20", 1, 1000,
	    "refused senders, recipients, messages before 421 and close"),
    ROW_NUM("error-delay", "DURATION", error_delay, UNIT_DURATION, "1s", 0,
	    10, "delay of each error reply past 10 errors and refusals"),
    ROW_NUM("hop-limit", "N", hop_limit, UNIT_COUNT, "50", 1, 500,
	    "Received headers before 554 5.4.6 (mail loop)"),
    ROW_NUM("header-size-limit", "SIZE", header_size_limit, UNIT_SIZE, "100K",
	    CONFIG_KIB, 16 * CONFIG_KIB * CONFIG_KIB, "largest header section"),
    ROW_NUM("timeout-command", "DURATION", timeout_command, UNIT_DURATION, "5m",
	    1, 86400, "wait for the next command (RFC 5321 4.5.3.2.7)"),
    ROW_NUM("timeout-data", "DURATION", timeout_data, UNIT_DURATION, "3m", 1,
	    86400, "wait for more data in DATA or BDAT (RFC 5321 4.5.3.2.6)"),
    ROW_NUM("timeout-shutdown", "DURATION", timeout_shutdown, UNIT_DURATION,
	    "30s", 1, 86400, "time SIGTERM gives open sessions to finish"),
    ROW_NUM("greet-delay", "DURATION", greet_delay, UNIT_DURATION, "0", 0, 60,
	    "wait before the 220; a client talking first gets 554 5.5.0"),
    {.name = "log-level",
     .args = "LEVEL",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_keyword,
     .field = FIELD(log_level),
     .def = "info",
     .words = config_level_words,
     .doc = "least important message logged"},
    {.name = "sync-method",
     .args = "METHOD",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_keyword,
     .field = FIELD(sync_method),
     .def = "syncfs",
     .words = config_sync_words,
     .doc = "how spool writes are made durable"},
    ROW_BOOL("from-header-check", from_header_check, "yes",
	     "an authenticated user's From: must be one of their addresses"),
    ROW_NUM("auth-account-failures", "N", auth_account_failures, UNIT_COUNT,
	    "5", 1, 1000,
	    "failed logins to one account in the window before it is locked"),
    ROW_NUM("auth-address-failures", "N", auth_address_failures, UNIT_COUNT,
	    "10", 1, 10000,
	    "failed logins from one client address in the window before it "
	    "is locked"),
    ROW_NUM("auth-failure-window", "DURATION", auth_failure_window,
	    UNIT_DURATION, "15m", 1, 86400, "how long a failed login counts"),
    ROW_NUM("auth-lock-time", "DURATION", auth_lock_time, UNIT_DURATION, "5m",
	    1, 86400, "first lock; doubles on each relapse"),
    ROW_NUM("auth-lock-max", "DURATION", auth_lock_max, UNIT_DURATION, "1h", 1,
	    7 * 86400, "longest lock; at least auth-lock-time"),
    {.name = "auth-allow",
     .args = "NETWORK...",
     .min_args = 1,
     .parse = config_parse_network,
     .flags = DIR_REPEAT,
     .doc = "client networks never locked out (a.b.c.d/n, x::y/n, or an "
	    "address)"},
    ROW_NUM("auth-failure-delay", "DURATION", auth_failure_delay, UNIT_DURATION,
	    "1s", 0, 10, "wait before answering a failed login (535)"),
    ROW_NUM("auth-cache-ttl", "DURATION", auth_cache_ttl, UNIT_DURATION, "5m",
	    0, 86400,
	    "how long a verified password is remembered, saving its hash "
	    "(0: no cache)"),
    ROW_NUM("auth-threads", "N", auth_threads, UNIT_COUNT, "0", 0, 64,
	    "password hashing threads in the guard (0: one per core)"),
    ROW_NUM("conn-limit-per-address", "N", conn_limit_per_address, UNIT_COUNT,
	    "20", 0, 1000000,
	    "open sessions from one client address (0: no limit)"),
    ROW_NUM("conn-rate-per-address", "N", conn_rate_per_address, UNIT_COUNT,
	    "60", 0, 1000000,
	    "new sessions a minute from one client address (0: no limit)"),
};

#define CONFIG_N_DIRECTIVES ARRAY_SIZE(config_directives)

/* A mailbox while reading: where it came from, for messages. */
struct config_mb_entry {
	struct config_mailbox mb;
	const char *file; /* owned by the parser, lives until the end */
	unsigned line;
	size_t seq; /* order of appearance */
};

struct config_parser {
	struct config *cfg;
	FILE *errors;
	unsigned n_errors;
	const char *file; /* current position, for messages */
	unsigned line;
	unsigned seen[CONFIG_N_DIRECTIVES]; /* first line, 0: not seen */
	unsigned set[CONFIG_N_DIRECTIVES];  /* line that set it, no error */
	struct config_mb_entry *mbs;
	size_t n_mbs, cap_mbs;
	unsigned *domain_lines; /* parallel to cfg->domains */
	char **names;		/* mailboxes files read, for messages */
	size_t n_names;
	char **argv; /* words of the current line */
	size_t cap_argv;
	bool cwd_failed; /* getcwd() failed, and that was reported */
};

/* Allocation failure while configuring is fatal: no server to run. */
static void *
config_xrealloc(void *ptr, size_t n, size_t size)
{
	void *p = reallocarray(ptr, n ? n : 1, size);

	if (p == NULL)
		abort();
	return p;
}

static char *
config_xstrndup(const char *s, size_t len)
{
	char *p = strndup(s, len);

	if (p == NULL)
		abort();
	return p;
}

static char *
config_xstrdup(const char *s)
{
	return config_xstrndup(s, strlen(s));
}

static void config_error(struct config_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Report "file:line: message" at the current position. */
static void
config_error(struct config_parser *p, const char *fmt, ...)
{
	va_list ap;

	p->n_errors++;
	if (p->errors == NULL)
		return;
	fprintf(p->errors, "%s:%u: ", p->file, p->line);
	va_start(ap, fmt);
	vfprintf(p->errors, fmt, ap);
	va_end(ap);
	fputc('\n', p->errors);
}

static char
config_ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static char *
config_lower_dup(const char *s, size_t len)
{
	char *d = config_xstrndup(s, len);

	for (size_t i = 0; i < len; i++)
		d[i] = config_ascii_lower(d[i]);
	return d;
}

/* ASCII case-insensitive order of two counted strings. */
static int
config_casecmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;

	for (size_t i = 0; i < n; i++) {
		unsigned char ca = (unsigned char)config_ascii_lower(a[i]);
		unsigned char cb = (unsigned char)config_ascii_lower(b[i]);

		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

static void
config_set_string(struct config_parser *p, const struct config_directive *d,
		  const char *value)
{
	char **field = (char **)((char *)p->cfg + d->field);

	free(*field);
	*field = config_xstrdup(value);
}

/* hostname NAME: a valid domain name, kept as written. */
static void
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
static void
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
static void
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

static void
config_parse_mailbox(struct config_parser *p, const struct config_directive *d,
		     char **argv, size_t argc)
{
	(void)d;
	for (size_t i = 0; i < argc; i++)
		config_add_mailbox(p, argv[i]);
}

static int config_read_file(const char *path, char **buf_r, size_t *len_r);
static void config_read_lines(struct config_parser *p, char *text, size_t len,
			      config_line_fn *fn);

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

/*
 * The path of FILE as written in the configuration file `base`: absolute,
 * or relative to the directory holding `base`.
 */
static char *
config_relative_path(const char *base, const char *file)
{
	const char *slash = strrchr(base, '/');
	size_t dlen, flen = strlen(file);
	char *path;

	if (file[0] == '/' || slash == NULL)
		return config_xstrdup(file);
	dlen = (size_t)(slash - base) + 1;
	path = config_xrealloc(NULL, dlen + flen + 1, 1);
	memcpy(path, base, dlen);
	memcpy(path + dlen, file, flen + 1);
	return path;
}

/* mailboxes FILE: read more mailboxes; errors name FILE and its line. */
static void
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

/* maildir TEMPLATE: only %d, %n and %% expand; %n must appear. */
static void
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

static void
config_parse_string(struct config_parser *p, const struct config_directive *d,
		    char **argv, size_t argc)
{
	(void)argc;
	config_set_string(p, d, argv[0]);
}

/* FILE, relative to the directory of the file being read. */
static void
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
static void
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

/* auth-allow NETWORK...: each one checked on its own. */
static void
config_parse_network(struct config_parser *p, const struct config_directive *d,
		     char **argv, size_t argc)
{
	struct config *cfg = p->cfg;

	for (size_t i = 0; i < argc; i++) {
		struct config_network net;
		const char *why = config_values_network(argv[i], &net);

		if (why != NULL) {
			config_error(p, "%s: \"%s\" %s", d->name, argv[i], why);
			continue;
		}
		cfg->auth_allow =
		    config_xrealloc(cfg->auth_allow, cfg->n_auth_allow + 1,
				    sizeof(*cfg->auth_allow));
		cfg->auth_allow[cfg->n_auth_allow++] = net;
	}
}

/* yes or no (on/off, true/false) into a bool field. */
static void
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
static void
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
static void
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
static void
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

	for (size_t i = 0; i < CONFIG_N_DIRECTIVES; i++) {
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

	for (i = 0; i < CONFIG_N_DIRECTIVES; i++) {
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

/*
 * Split one line (modified in place) into words at spaces and tabs, after
 * cutting a '#' comment. Returns the number of words in p->argv.
 */
static size_t
config_split(struct config_parser *p, char *line)
{
	size_t argc = 0;
	char *c = line;

	line[strcspn(line, "#")] = '\0';
	for (;;) {
		c += strspn(c, " \t");
		if (*c == '\0')
			return argc;
		if (argc == p->cap_argv) {
			p->cap_argv = p->cap_argv ? 2 * p->cap_argv : 8;
			p->argv = config_xrealloc(p->argv, p->cap_argv,
						  sizeof(*p->argv));
		}
		p->argv[argc++] = c;
		c += strcspn(c, " \t");
		if (*c != '\0')
			*c++ = '\0';
	}
}

/* Is the line (before any comment) free of control octets but tab? */
static bool
config_line_is_clean(struct config_parser *p, const char *line, size_t n)
{
	for (size_t i = 0; i < n && line[i] != '#'; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			config_error(p, "control character 0x%02x", c);
			return false;
		}
	}
	return true;
}

/*
 * Feed each line of `text` (len octets, modified in place, with one more
 * octet of room after it) to fn as words. A CRLF line end is accepted; any
 * other control octet (NUL included) outside a comment is an error and the
 * line is skipped.
 */
static void
config_read_lines(struct config_parser *p, char *text, size_t len,
		  config_line_fn *fn)
{
	size_t pos = 0;

	p->line = 0;
	while (pos < len) {
		char *line = text + pos;
		char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos, argc;

		pos += n + 1;
		p->line++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		line[n] = '\0'; /* the '\n' or '\r', or text[len] */
		if (!config_line_is_clean(p, line, n))
			continue;
		argc = config_split(p, line);
		if (argc > 0)
			fn(p, p->argv, argc);
	}
}

/*
 * Read a whole file into a new buffer (with room for one more octet).
 * Returns 0, or -1 with errno set.
 */
static int
config_read_file(const char *path, char **buf_r, size_t *len_r)
{
	FILE *f = fopen(path, "re");
	size_t len = 0, cap = 4096;
	char *buf;
	int saved;

	if (f == NULL)
		return -1;
	buf = config_xrealloc(NULL, cap, 1);
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);

		len += n;
		if (len < cap - 1)
			break;
		if (cap > CONFIG_FILE_MAX) {
			errno = EFBIG;
			goto fail;
		}
		cap *= 2;
		buf = config_xrealloc(buf, cap, 1);
	}
	if (ferror(f))
		goto fail;
	fclose(f);
	*buf_r = buf;
	*len_r = len;
	return 0;
fail:
	saved = errno;
	fclose(f);
	free(buf);
	errno = saved;
	return -1;
}

/* Fill every field that has a default, through its own parse function. */
static void
config_apply_defaults(struct config_parser *p)
{
	for (size_t i = 0; i < CONFIG_N_DIRECTIVES; i++) {
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
	for (size_t i = 0; i < CONFIG_N_DIRECTIVES; i++)
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

	for (size_t i = 0; i < CONFIG_N_DIRECTIVES; i++) {
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
	for (size_t i = 0; i < cfg->n_certs; i++) {
		config_absolute(p, &cfg->certs[i].cert, false);
		config_absolute(p, &cfg->certs[i].key, false);
	}
	config_check_socket(p);
	config_check_lock_times(p);
	config_check_listeners(p);
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
	free(cfg->listeners);
	for (size_t i = 0; i < cfg->n_certs; i++) {
		free(cfg->certs[i].cert);
		free(cfg->certs[i].key);
	}
	free(cfg->certs);
	free(cfg->auth_allow);
	free(cfg->users_file);
	free(cfg->control_socket);
	free(cfg->file);
	free(cfg->hostname);
	free(cfg->maildir);
	free(cfg->spool);
	free(cfg->user);
	free(cfg);
	*cfgp = NULL;
}

/* The length of a domain argument without one trailing dot. */
static size_t
config_domain_len(const char *domain)
{
	size_t len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	return len;
}

bool
config_is_local_domain(const struct config *cfg, const char *domain)
{
	size_t len;

	if (domain == NULL)
		return false;
	len = config_domain_len(domain);
	if (len == 0)
		return false;
	for (size_t i = 0; i < cfg->n_domains; i++)
		if (config_casecmp(cfg->domains[i], strlen(cfg->domains[i]),
				   domain, len) == 0)
			return true;
	return false;
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
	for (size_t i = 0; i < CONFIG_N_DIRECTIVES; i++) {
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
	if ((size_t)role < ARRAY_SIZE(config_role_words) - 1)
		return config_role_words[role];
	return "unknown";
}
