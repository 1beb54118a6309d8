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
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

#define CONFIG_FILE_MAX (64u << 20) /* octets of one file */
#define CONFIG_LOCAL_MAX 64	    /* RFC 5321 4.5.3.1.1 */
#define CONFIG_DOMAIN_MAX 253	    /* RFC 1035 2.3.4, as text */
#define CONFIG_LABEL_MAX 63	    /* RFC 1035 2.3.4 */
#define CONFIG_NAME_MAX 32	    /* longest directive name, for hints */
#define CONFIG_KIB 1024ull

#define DIR_REPEAT 0x1u	  /* may appear more than once */
#define DIR_REQUIRED 0x2u /* must appear at least once */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The embedded development configuration (docs/config.md shows it too). */
static const char config_builtin_text[] = "hostname localhost\n"
					  "domains example.test\n"
					  "mailbox demo@example.test\n"
					  "spool var/spool\n"
					  "maildir var/mail/%d/%n/Maildir\n"
					  "listen 127.0.0.1:2025 mx\n"
					  "listen [::1]:2025 mx\n";

struct config_parser;
struct config_directive;

typedef void config_line_fn(struct config_parser *p, char **argv, size_t argc);
typedef void config_parse_fn(struct config_parser *p,
			     const struct config_directive *d, char **argv,
			     size_t argc);

/* How a number is written and shown: plain, K/M/G sizes, s/m/h times. */
enum config_unit {
	UNIT_NONE = 0,
	UNIT_COUNT,
	UNIT_SIZE,
	UNIT_DURATION,
};

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
    config_parse_string, config_parse_listen, config_parse_number,
    config_parse_keyword;

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
	struct config_mb_entry *mbs;
	size_t n_mbs, cap_mbs;
	unsigned *domain_lines; /* parallel to cfg->domains */
	char **names;		/* mailboxes files read, for messages */
	size_t n_names;
	char **argv; /* words of the current line */
	size_t cap_argv;
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

static bool
config_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/*
 * Check a domain name: dot-separated labels of letters, digits and inner
 * hyphens, 1..63 octets each, 253 in all, no trailing dot (RFC 1035 2.3.1,
 * RFC 5321 4.1.2), and a last label that is not all digits (RFC 3696 2),
 * so an IP address is not taken for a name. Returns NULL or the reason.
 */
static const char *
config_check_domain(const char *s)
{
	size_t len = strlen(s), label = 0;
	bool all_digits = true;

	if (len > CONFIG_DOMAIN_MAX)
		return "longer than 253 octets";
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (label == 0)
				return "has an empty label";
			if (s[i - 1] == '-')
				return "has a label ending in '-'";
			if (c == '.') {
				label = 0;
				all_digits = true;
			}
			continue;
		}
		if (!config_is_alnum(c) && c != '-')
			return "has a character other than letters, digits, "
			       "'-' and '.'";
		if (label == 0 && c == '-')
			return "has a label starting with '-'";
		if (++label > CONFIG_LABEL_MAX)
			return "has a label longer than 63 octets";
		if (c < '0' || c > '9')
			all_digits = false;
	}
	if (all_digits)
		return "ends in an all-numeric label";
	return NULL;
}

/*
 * Check a local part as a mailbox name: [A-Za-z0-9._+=-], 1..64 octets
 * (RFC 5321 4.5.3.1.1), a Dot-string without a leading or trailing dot or
 * ".." (RFC 5321 4.1.2). It becomes a path component (THREATS F-01).
 */
static const char *
config_check_local(const char *s, size_t len)
{
	if (len == 0)
		return "is empty";
	if (len > CONFIG_LOCAL_MAX)
		return "is longer than 64 octets";
	if (s[0] == '.')
		return "starts with '.'";
	if (s[len - 1] == '.')
		return "ends with '.'";
	for (size_t i = 0; i < len; i++) {
		if (!config_is_alnum(s[i]) && strchr("._+=-", s[i]) == NULL)
			return "has a character outside [A-Za-z0-9._+=-]";
		if (s[i] == '.' && s[i + 1] == '.')
			return "contains \"..\"";
	}
	return NULL;
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
	const char *why = config_check_domain(argv[0]);

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
		const char *why = config_check_domain(argv[i]);
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
	why = config_check_local(addr, (size_t)(at - addr));
	if (why != NULL) {
		config_error(p, "bad mailbox \"%s\": local part %s", addr, why);
		return;
	}
	why = config_check_domain(at + 1);
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

/* The index of `word` in a NULL-terminated list, or -1. */
static int
config_word_index(const char *const *words, const char *word)
{
	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(words[i], word) == 0)
			return i;
	return -1;
}

/* "a, b, c" into buf, for messages and the reference. */
static const char *
config_join_words(const char *const *words, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; words[i] != NULL; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
				 words[i]);

		if (n < 0 || (size_t)n >= size - used)
			abort(); /* the buffers are sized for the tables */
		used += (size_t)n;
	}
	return buf;
}

/*
 * Parse decimal digits (and nothing else) into *v. Returns 0, -1 for a bad
 * syntax, or -2 when the value does not fit in 64 bits.
 */
static int
config_parse_digits(const char *s, size_t len, uint64_t *v)
{
	uint64_t n = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -2;
		n = n * 10 + d;
	}
	*v = n;
	return 0;
}

/* The multiplier of a size (K, M, G) or duration (s, m, h) suffix, or 0. */
static uint64_t
config_suffix(enum config_unit unit, char c)
{
	const char *sfx = unit == UNIT_SIZE ? "KkMmGg" : "smh";
	const char *at = strchr(sfx, c);

	if (c == '\0' || at == NULL)
		return 0;
	if (unit == UNIT_SIZE)
		return 1ull << (10 * ((at - sfx) / 2 + 1));
	return (const uint64_t[]){1, 60, 3600}[at - sfx];
}

/*
 * Read a number of unit `unit`: digits, then for sizes an optional K, M or G
 * (1024 multiples) and for durations an optional s, m or h. Returns 0, -1
 * (syntax) or -2 (overflow).
 */
static int
config_parse_value(enum config_unit unit, const char *s, uint64_t *v)
{
	size_t len = strlen(s);
	uint64_t mult = 1;
	int rc;

	if (unit != UNIT_COUNT && len > 1 &&
	    (s[len - 1] < '0' || s[len - 1] > '9')) {
		mult = config_suffix(unit, s[len - 1]);
		if (mult == 0)
			return -1;
		len--;
	}
	rc = config_parse_digits(s, len, v);
	if (rc < 0)
		return rc;
	if (*v > UINT64_MAX / mult)
		return -2;
	*v *= mult;
	return 0;
}

/* A number as the reference shows it: the largest exact unit. */
static const char *
config_format_value(enum config_unit unit, uint64_t v, char *buf, size_t size)
{
	static const char size_sfx[] = "GMK", time_sfx[] = "hms";
	static const uint64_t size_mult[] = {1ull << 30, 1ull << 20,
					     1ull << 10};
	static const uint64_t time_mult[] = {3600, 60, 1};
	int n = -1;

	for (size_t i = 0; i < 3 && v != 0 && unit != UNIT_COUNT; i++) {
		const uint64_t *mult =
		    unit == UNIT_SIZE ? size_mult : time_mult;
		const char *sfx = unit == UNIT_SIZE ? size_sfx : time_sfx;

		if (v % mult[i] == 0) {
			n = snprintf(buf, size, "%llu%c",
				     (unsigned long long)(v / mult[i]), sfx[i]);
			break;
		}
	}
	if (n < 0)
		n = snprintf(buf, size, "%llu", (unsigned long long)v);
	if (n < 0 || (size_t)n >= size)
		abort(); /* callers pass room for any uint64_t */
	return buf;
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
	int rc = config_parse_value(d->unit, argv[0], &v);

	(void)argc;
	if (rc == -1) {
		config_error(p, "%s: \"%s\" is not %s", d->name, argv[0],
			     what[d->unit]);
		return;
	}
	config_format_value(d->unit, d->min, lo, sizeof(lo));
	config_format_value(d->unit, d->max, hi, sizeof(hi));
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
	int i = config_word_index(d->words, argv[0]);
	char list[128];

	(void)argc;
	if (i < 0) {
		config_error(p, "%s: \"%s\" is not one of %s", d->name, argv[0],
			     config_join_words(d->words, list, sizeof(list)));
		return;
	}
	*(int *)((char *)p->cfg + d->field) = i;
}

/*
 * Parse "ADDR:PORT" where ADDR is an IPv4 literal, "[IPv6 literal]" or
 * "localhost" (127.0.0.1) into l->addr. Returns NULL or the reason.
 */
static const char *
config_parse_sockaddr(const char *s, struct config_listener *l)
{
	char host[64];
	const char *port, *end;
	bool is_v6 = s[0] == '[';
	size_t hlen;
	uint64_t n;

	if (is_v6) {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return "is not ADDR:PORT";
		s++;
		port = end + 2;
	} else {
		end = strrchr(s, ':');
		if (end == NULL)
			return "is not ADDR:PORT";
		port = end + 1;
	}
	hlen = (size_t)(end - s);
	if (hlen >= sizeof(host))
		return "has an address that is too long";
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (config_parse_digits(port, strlen(port), &n) < 0 || n < 1 ||
	    n > 65535)
		return "has a port outside 1..65535";
	memset(&l->addr, 0, sizeof(l->addr));
	if (is_v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return "has a bad IPv6 address";
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)n);
		l->addr_len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;

		if (strcmp(host, "localhost") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return "needs an IPv4 address, [IPv6 address] or "
			       "localhost";
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)n);
		l->addr_len = sizeof(*sin);
	}
	return NULL;
}

/* Same address family, address and port? */
static bool
config_same_sockaddr(const struct config_listener *a,
		     const struct config_listener *b)
{
	const struct sockaddr_in *a4 = (const void *)&a->addr;
	const struct sockaddr_in *b4 = (const void *)&b->addr;
	const struct sockaddr_in6 *a6 = (const void *)&a->addr;
	const struct sockaddr_in6 *b6 = (const void *)&b->addr;

	if (a->addr.ss_family != b->addr.ss_family)
		return false;
	if (a->addr.ss_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) ==
		   0;
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
	int role = config_word_index(d->words, argv[1]);
	int n = snprintf(l.addr_text, sizeof(l.addr_text), "%s", argv[0]);
	bool ok = true;

	(void)argc;
	if (n < 0 || (size_t)n >= sizeof(l.addr_text))
		why = "is too long";
	else
		why = config_parse_sockaddr(argv[0], &l);
	if (why != NULL) {
		config_error(p, "%s: \"%s\" %s", d->name, argv[0], why);
		ok = false;
	}
	if (role < 0) {
		config_error(p, "%s: role \"%s\" is not one of %s", d->name,
			     argv[1],
			     config_join_words(d->words, list, sizeof(list)));
		ok = false;
	}
	if (!ok)
		return;
	l.role = (enum listen_role)role;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		if (config_same_sockaddr(&cfg->listeners[i], &l)) {
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
	d->parse(p, d, argv + 1, nargs);
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
		config_error(p, "cannot find the current directory: %s",
			     strerror(errno));
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

/* Checks that need the whole file: required directives, mailboxes, paths. */
static void
config_finish(struct config_parser *p, const char *name)
{
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
	config_absolute(p, &p->cfg->spool, false);
	config_absolute(p, &p->cfg->maildir, true);
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
	return maildir_expand(cfg->maildir, mb->local, mb->domain, buf, size);
}

/* The "Range" cell of a row: numeric bounds or the list of keywords. */
static const char *
config_range_text(const struct config_directive *d, char *buf, size_t size)
{
	char lo[32], hi[32];
	int n;

	if (d->words != NULL)
		return config_join_words(d->words, buf, size);
	if (d->unit == UNIT_NONE)
		return "";
	n = snprintf(buf, size, "%s..%s",
		     config_format_value(d->unit, d->min, lo, sizeof(lo)),
		     config_format_value(d->unit, d->max, hi, sizeof(hi)));
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
