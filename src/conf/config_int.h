/*
 * config_int.h - what the parts of the configuration reader share:
 * config.c (reading lines, checks, the public calls), config_parse.c (one
 * parse function per kind of value) and config_table.c (the directives).
 * Not for other modules.
 */
#ifndef POSTERN_CONFIG_INT_H
#define POSTERN_CONFIG_INT_H

#include <stdint.h>
#include <stdio.h>

#include "conf/config.h"
#include "conf/config_values.h"

#define CONFIG_FILE_MAX (64u << 20) /* octets of one file */
#define CONFIG_NAME_MAX 32	    /* longest directive name, for hints */
#define CONFIG_KIB 1024ull

#define DIR_REPEAT 0x1u	  /* may appear more than once */
#define DIR_REQUIRED 0x2u /* must appear at least once */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CONFIG_DIRECTIVES_MAX 96 /* rows of config_directives[] at most */

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

extern config_parse_fn config_parse_hostname, config_parse_domains,
    config_parse_mailbox, config_parse_mailboxes, config_parse_template,
    config_parse_string, config_parse_path, config_parse_listen,
    config_parse_cert, config_parse_network, config_parse_exempt,
    config_parse_number, config_parse_keyword, config_parse_bool,
    config_parse_postmaster, config_parse_metrics_listen;
/* config_outbound.c: the outbound directives. */
extern config_parse_fn config_parse_resolver, config_parse_trust_anchor,
    config_parse_transport, config_parse_relay_host, config_parse_relay_auth,
    config_parse_tls_policy;
void config_check_outbound(struct config_parser *p);
void config_free_outbound(struct config *cfg);

/* config_table.c */
extern const struct config_directive config_directives[];
extern const size_t config_n_directives;
extern const char config_builtin_text[];
extern const char *const config_role_words[];

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
	unsigned seen[CONFIG_DIRECTIVES_MAX]; /* first line, 0: not seen */
	unsigned set[CONFIG_DIRECTIVES_MAX];  /* line that set it, no error */
	struct config_mb_entry *mbs;
	size_t n_mbs, cap_mbs;
	unsigned *domain_lines; /* parallel to cfg->domains */
	char **names;		/* mailboxes files read, for messages */
	size_t n_names;
	char **argv; /* words of the current line */
	size_t cap_argv;
	bool cwd_failed; /* getcwd() failed, and that was reported */
};

/* config_util.c: allocation (fatal on failure), messages, strings. */
char *config_xstrndup(const char *s, size_t len);
/* The length of a domain argument without one trailing dot. */
size_t config_domain_len(const char *domain);
/* FILE as written in `base`: absolute, or relative to base's folder. */
char *config_relative_path(const char *base, const char *file);
void *config_xrealloc(void *ptr, size_t n, size_t size);
char *config_xstrdup(const char *s);
void config_error(struct config_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *config_lower_dup(const char *s, size_t len);
int config_casecmp(const char *a, size_t alen, const char *b, size_t blen);
/* config_parse.c: one more local mailbox, checked. */
void config_add_mailbox(struct config_parser *p, const char *addr);

/* config_file.c: a file, line by line. */
void config_read_lines(struct config_parser *p, char *text, size_t len,
		       config_line_fn *fn);
int config_read_file(const char *path, char **buf_r, size_t *len_r);

#endif
