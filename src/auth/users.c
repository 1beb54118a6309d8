/*
 * users.c - the users file in Dovecot's passwd-file format, password
 * verification (libsodium Argon2id, libxcrypt bcrypt/sha512crypt/yescrypt)
 * and the `postern user` command that edits the file atomically.
 *
 * A line is
 *
 *     user@domain:{SCHEME}hash[:uid:gid:gecos:home:shell:extra fields]
 *
 * as Dovecot's passdb/userdb passwd-file reads it: fields split on ':', the
 * eighth and later fields joined again with ':' are the extra fields, a
 * space-separated list of key=value. Aliases live in the extra field
 * `userdb_postern_aliases=a@x,b@y` (see docs/users.md for why Dovecot
 * ignores it harmlessly).
 */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "auth/users.h"

#define USERS_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* RFC 5321 section 4.5.3.1: local part 64 octets, domain 255, path 256
   (with the angle brackets, so an address is at most 254). */
#define USERS_LOCAL_MAX 64
#define USERS_DOMAIN_MAX 253
#define USERS_ADDRESS_MAX 254
#define USERS_LABEL_MAX 63

/* Longest password we hash or verify; longer ones never match. This bounds
   the work an attacker can ask for (sha512crypt is linear in it). */
#define USERS_PASSWORD_MAX 1024
#define USERS_PASSWORD_MIN 8
#define USERS_LINE_MAX 65536
#define USERS_FILE_MAX (64u * 1024 * 1024)

#define USERS_ALIASES_KEY "userdb_postern_aliases="
#define USERS_N_FIELDS 8 /* user pass uid gid gecos home shell extra */

/* New hashes and the dummy: Argon2id, libsodium's "interactive" costs. */
#define USERS_OPSLIMIT crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE
#define USERS_MEMLIMIT crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE

enum users_scheme {
	USERS_SCHEME_NONE = 0,
	USERS_SCHEME_ARGON2ID,
	USERS_SCHEME_BLF_CRYPT,
	USERS_SCHEME_SHA512_CRYPT,
	USERS_SCHEME_CRYPT, /* Dovecot's name for "whatever crypt(3) does" */
};

struct users {
	struct user *v; /* file order */
	size_t n;
	struct user **by_name; /* sorted by name, for users_find */
};

/* One parse error, kept so that all are printed in line order. */
struct users_err {
	unsigned line;
	char *msg;
};

/* An address claimed by a line: a user name or one of its aliases. */
struct users_claim {
	const char *addr;
	size_t owner; /* index into users->v */
	unsigned line;
	bool is_alias;
};

struct users_parse {
	struct users *users;
	size_t cap;
	struct users_err *errs;
	size_t n_errs, cap_errs;
	bool oom;
};

/* A line cut into its passwd-file fields (pointers into the line). */
struct users_fields {
	const char *f[USERS_N_FIELDS];
	size_t len[USERS_N_FIELDS];
	int n;
};

/* A growable byte buffer for rewriting the file. */
struct users_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* --- small helpers ------------------------------------------------- */

static void
users_buf_add(struct users_buf *b, const void *data, size_t len)
{
	if (b->oom)
		return;
	if (b->cap - b->len < len + 1) {
		size_t cap = b->cap == 0 ? 256 : b->cap;
		char *p;

		while (cap - b->len < len + 1) {
			if (cap > SIZE_MAX / 2) {
				b->oom = true;
				return;
			}
			cap *= 2;
		}
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void
users_buf_str(struct users_buf *b, const char *s)
{
	users_buf_add(b, s, strlen(s));
}

static void
users_buf_free(struct users_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static char *
users_strndup_lower(const char *s, size_t len)
{
	char *r = malloc(len + 1);

	if (r == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		r[i] = (char)tolower((unsigned char)s[i]);
	r[len] = '\0';
	return r;
}

/*
 * Cut a line (without its terminator) into the passwd-file fields: the
 * first seven are split on ':', the rest of the line is the extra fields,
 * which may themselves contain ':' (Dovecot joins them back with ':').
 */
static void
users_split_fields(const char *line, size_t len, struct users_fields *fl)
{
	size_t start = 0;

	memset(fl, 0, sizeof(*fl));
	for (;;) {
		const char *colon = NULL;

		if (fl->n < USERS_N_FIELDS - 1)
			colon = memchr(line + start, ':', len - start);
		fl->f[fl->n] = line + start;
		if (colon == NULL) {
			fl->len[fl->n++] = len - start;
			return;
		}
		fl->len[fl->n++] = (size_t)(colon - (line + start));
		start = (size_t)(colon - line) + 1;
	}
}

/* Join fields with ':', dropping empty trailing fields after the hash. */
static void
users_join_fields(struct users_buf *b, const struct users_fields *fl)
{
	int n = fl->n;

	while (n > 2 && fl->len[n - 1] == 0)
		n--;
	for (int i = 0; i < n; i++) {
		if (i > 0)
			users_buf_add(b, ":", 1);
		users_buf_add(b, fl->f[i], fl->len[i]);
	}
}

/* --- addresses ----------------------------------------------------- */

static bool
users_local_char(unsigned char c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '+' || c == '=' ||
	       c == '-';
}

/*
 * Is s[0..len) a mailbox we accept: a dot-atom local part restricted to
 * [A-Za-z0-9._+=-] (RFC 5321 section 4.1.2, narrowed so that a name is
 * safe in a Maildir path and in Dovecot's variable expansion), no leading
 * or trailing dot and no "..", at most 64 octets; an LDH domain
 * (RFC 1035 section 2.3.1, RFC 5321 section 4.1.2) of at most 253 octets.
 */
static bool
users_valid_address(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	size_t local, i, label = 0;

	if (at == NULL || len > USERS_ADDRESS_MAX)
		return false;
	local = (size_t)(at - s);
	if (local == 0 || local > USERS_LOCAL_MAX || s[0] == '.' ||
	    s[local - 1] == '.')
		return false;
	for (i = 0; i < local; i++) {
		if (!users_local_char((unsigned char)s[i]))
			return false;
		if (s[i] == '.' && s[i + 1] == '.')
			return false;
	}
	s += local + 1;
	len -= local + 1;
	if (len == 0 || len > USERS_DOMAIN_MAX)
		return false;
	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';

		if (c == '.') {
			if (label == 0 || label > USERS_LABEL_MAX ||
			    s[i - 1] == '-')
				return false;
			label = 0;
		} else if (isalnum(c) || c == '-') {
			if (label == 0 && c == '-')
				return false;
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* --- hashes -------------------------------------------------------- */

static const struct {
	const char *name;
	enum users_scheme scheme;
} users_schemes[] = {
    {"ARGON2ID", USERS_SCHEME_ARGON2ID},
    {"BLF-CRYPT", USERS_SCHEME_BLF_CRYPT},
    {"SHA512-CRYPT", USERS_SCHEME_SHA512_CRYPT},
    {"CRYPT", USERS_SCHEME_CRYPT},
};

/*
 * Split "{SCHEME}rest". Scheme names compare case-insensitively, as in
 * Dovecot. Returns USERS_SCHEME_NONE when there is no "{...}" prefix or
 * the name is unknown; *name_r and *name_len_r show what was there.
 */
static enum users_scheme
users_scheme_of(const char *hash, const char **rest_r, const char **name_r,
		size_t *name_len_r)
{
	const char *end;

	*name_r = "";
	*name_len_r = 0;
	*rest_r = hash;
	if (hash[0] != '{' || (end = strchr(hash, '}')) == NULL)
		return USERS_SCHEME_NONE;
	*name_r = hash + 1;
	*name_len_r = (size_t)(end - hash - 1);
	*rest_r = end + 1;
	for (size_t i = 0; i < sizeof(users_schemes) / sizeof(users_schemes[0]);
	     i++) {
		const char *n = users_schemes[i].name;

		if (strlen(n) == *name_len_r &&
		    strncasecmp(n, *name_r, *name_len_r) == 0)
			return users_schemes[i].scheme;
	}
	return USERS_SCHEME_NONE;
}

static bool
users_b64_char(unsigned char c)
{
	return isalnum(c) || c == '.' || c == '/';
}

/* Length of the run of crypt base64 characters at s. */
static size_t
users_b64_run(const char *s)
{
	size_t n = 0;

	while (users_b64_char((unsigned char)s[n]))
		n++;
	return n;
}

/* bcrypt: "$2b$NN$" then 22 salt and 31 hash characters (60 in all). */
static bool
users_valid_bcrypt(const char *h)
{
	if (strncmp(h, "$2", 2) != 0 ||
	    (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' ||
	    !isdigit((unsigned char)h[4]) || !isdigit((unsigned char)h[5]) ||
	    h[6] != '$')
		return false;
	return strlen(h) == 60 && users_b64_run(h + 7) == 53;
}

/* sha512crypt: "$6$[rounds=N$]salt$" then 86 hash characters. */
static bool
users_valid_sha512(const char *h)
{
	const char *p = h + 3, *dollar;

	if (strncmp(h, "$6$", 3) != 0)
		return false;
	if (strncmp(p, "rounds=", 7) == 0) {
		p += 7;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p++ != '$')
			return false;
	}
	dollar = strchr(p, '$');
	if (dollar == NULL || dollar - p > 16 ||
	    users_b64_run(p) != (size_t)(dollar - p))
		return false;
	return strlen(dollar + 1) == 86 && users_b64_run(dollar + 1) == 86;
}

/* yescrypt: "$y$params$salt$" then 43 hash characters. */
static bool
users_valid_yescrypt(const char *h)
{
	const char *p = h + 3;

	if (strncmp(h, "$y$", 3) != 0)
		return false;
	for (int part = 0; part < 2; part++) {
		size_t n = users_b64_run(p);

		if (n == 0 || p[n] != '$')
			return false;
		p += n + 1;
	}
	return strlen(p) == 43 && users_b64_run(p) == 43;
}

/*
 * Check a "{SCHEME}..." password field. Returns true when it is usable,
 * else false with a message in msg.
 */
static bool
users_check_hash(const char *hash, char *msg, size_t size)
{
	const char *rest, *name;
	size_t name_len;
	bool ok = false;

	switch (users_scheme_of(hash, &rest, &name, &name_len)) {
	case USERS_SCHEME_NONE:
		if (hash[0] != '{' || strchr(hash, '}') == NULL)
			snprintf(msg, size, "password has no {SCHEME} prefix");
		else if (name_len == 8 && strncasecmp(name, "YESCRYPT", 8) == 0)
			snprintf(msg, size,
				 "unknown password scheme {YESCRYPT} (Dovecot "
				 "stores yescrypt as {CRYPT}$y$...)");
		else
			snprintf(msg, size, "unknown password scheme {%.*s}",
				 (int)(name_len > 32 ? 32 : name_len), name);
		return false;
	case USERS_SCHEME_ARGON2ID:
		/* needs_rehash decodes the whole string; -1 means malformed */
		if (strncmp(rest, "$argon2id$", 10) != 0 ||
		    crypto_pwhash_argon2id_str_needs_rehash(
			rest, USERS_OPSLIMIT, USERS_MEMLIMIT) == -1) {
			snprintf(msg, size, "malformed ARGON2ID hash");
			return false;
		}
		return true;
	case USERS_SCHEME_BLF_CRYPT:
		ok = users_valid_bcrypt(rest);
		if (!ok)
			snprintf(msg, size,
				 "malformed BLF-CRYPT hash (expected $2b$, "
				 "$2y$ or $2a$ bcrypt)");
		break;
	case USERS_SCHEME_SHA512_CRYPT:
		ok = users_valid_sha512(rest);
		if (!ok)
			snprintf(msg, size,
				 "malformed SHA512-CRYPT hash (expected $6$)");
		break;
	case USERS_SCHEME_CRYPT:
		ok = users_valid_yescrypt(rest) || users_valid_bcrypt(rest) ||
		     users_valid_sha512(rest);
		if (!ok)
			snprintf(msg, size,
				 "unsupported CRYPT hash (only yescrypt $y$, "
				 "bcrypt $2b$ and sha512crypt $6$)");
		break;
	}
	if (!ok)
		return false;
	/* libxcrypt's own opinion of the setting (method enabled, sane) */
	if (crypt_checksalt(rest) != CRYPT_SALT_OK) {
		snprintf(msg, size, "hash rejected by libcrypt");
		return false;
	}
	return true;
}

/* --- loading ------------------------------------------------------- */

static void USERS_PRINTF(3, 4)
    users_error(struct users_parse *p, unsigned line, const char *fmt, ...)
{
	struct users_err *e;
	va_list ap;
	char *msg;
	int n;

	if (p->n_errs == p->cap_errs) {
		size_t cap = p->cap_errs == 0 ? 8 : p->cap_errs * 2;

		e = reallocarray(p->errs, cap, sizeof(*e));
		if (e == NULL) {
			p->oom = true;
			return;
		}
		p->errs = e;
		p->cap_errs = cap;
	}
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0) {
		p->oom = true;
		return;
	}
	p->errs[p->n_errs].line = line;
	p->errs[p->n_errs].msg = msg;
	p->n_errs++;
}

static void
users_user_free(struct user *u)
{
	free(u->name);
	if (u->hash != NULL) {
		sodium_memzero(u->hash, strlen(u->hash));
		free(u->hash);
	}
	for (size_t i = 0; i < u->n_aliases; i++)
		free(u->aliases[i]);
	free(u->aliases);
	memset(u, 0, sizeof(*u));
}

void
users_free(struct users **users)
{
	struct users *us = *users;

	if (us == NULL)
		return;
	for (size_t i = 0; i < us->n; i++)
		users_user_free(&us->v[i]);
	free(us->v);
	free(us->by_name);
	free(us);
	*users = NULL;
}

/*
 * Parse the value of userdb_postern_aliases: a comma-separated list of
 * addresses, stored lower-case in u. Returns false after reporting.
 */
static bool
users_parse_aliases(struct users_parse *p, unsigned line, struct user *u,
		    const char *v, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return true;
	for (size_t i = 0; i <= len; i++) {
		char **a;

		if (i < len && v[i] != ',')
			continue;
		if (i == start) {
			users_error(p, line, "empty alias in %.*s",
				    (int)strlen(USERS_ALIASES_KEY) - 1,
				    USERS_ALIASES_KEY);
			return false;
		}
		if (!users_valid_address(v + start, i - start)) {
			users_error(p, line, "invalid alias '%.*s'",
				    (int)(i - start > 80 ? 80 : i - start),
				    v + start);
			return false;
		}
		a = reallocarray(u->aliases, u->n_aliases + 1, sizeof(*a));
		if (a == NULL) {
			p->oom = true;
			return false;
		}
		u->aliases = a;
		a[u->n_aliases] = users_strndup_lower(v + start, i - start);
		if (a[u->n_aliases] == NULL) {
			p->oom = true;
			return false;
		}
		u->n_aliases++;
		start = i + 1;
	}
	return true;
}

/* Find userdb_postern_aliases among the space-separated extra fields. */
static bool
users_parse_extra(struct users_parse *p, unsigned line, struct user *u,
		  const char *extra, size_t len)
{
	const size_t klen = strlen(USERS_ALIASES_KEY);
	bool seen = false;
	size_t i = 0;

	while (i < len) {
		size_t j = i;

		while (j < len && extra[j] != ' ')
			j++;
		if (j - i >= klen &&
		    memcmp(extra + i, USERS_ALIASES_KEY, klen) == 0) {
			if (seen) {
				users_error(p, line, "%.*s given twice",
					    (int)klen - 1, USERS_ALIASES_KEY);
				return false;
			}
			seen = true;
			if (!users_parse_aliases(p, line, u, extra + i + klen,
						 j - i - klen))
				return false;
		}
		i = j + 1;
	}
	return true;
}

/*
 * Parse one line (terminator already removed). Comments and blank lines
 * are skipped as Dovecot does; anything else must be a valid user line.
 */
static void
users_parse_line(struct users_parse *p, const char *line, size_t len,
		 unsigned lineno)
{
	struct users_fields fl;
	struct user u = {0};
	char msg[128];
	size_t i;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	for (i = 0; i < len && line[i] == ' '; i++)
		;
	if (i == len || line[0] == '#')
		return;
	if (len > USERS_LINE_MAX) {
		users_error(p, lineno, "line too long");
		return;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f) {
			users_error(p, lineno, "control character 0x%02x", c);
			return;
		}
	}
	users_split_fields(line, len, &fl);
	if (!users_valid_address(fl.f[0], fl.len[0])) {
		users_error(p, lineno, "invalid user address '%.*s'",
			    (int)(fl.len[0] > 80 ? 80 : fl.len[0]), fl.f[0]);
		return;
	}
	if (fl.n < 2 || fl.len[1] == 0) {
		users_error(p, lineno,
			    "missing password (expected user:{SCHEME}hash)");
		return;
	}
	u.name = users_strndup_lower(fl.f[0], fl.len[0]);
	u.hash = strndup(fl.f[1], fl.len[1]);
	u.line = lineno;
	if (u.name == NULL || u.hash == NULL) {
		p->oom = true;
		goto fail;
	}
	if (!users_check_hash(u.hash, msg, sizeof(msg))) {
		users_error(p, lineno, "%s", msg);
		goto fail;
	}
	if (fl.n == USERS_N_FIELDS &&
	    !users_parse_extra(p, lineno, &u, fl.f[7], fl.len[7]))
		goto fail;
	if (p->users->n == p->cap) {
		size_t cap = p->cap == 0 ? 16 : p->cap * 2;
		struct user *v = reallocarray(p->users->v, cap, sizeof(*v));

		if (v == NULL) {
			p->oom = true;
			goto fail;
		}
		p->users->v = v;
		p->cap = cap;
	}
	p->users->v[p->users->n++] = u;
	return;
fail:
	users_user_free(&u);
}

static int
users_claim_cmp(const void *a, const void *b)
{
	const struct users_claim *x = a, *y = b;
	int r = strcmp(x->addr, y->addr);

	if (r != 0)
		return r;
	if (x->is_alias != y->is_alias)
		return x->is_alias ? 1 : -1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/*
 * Every address may be claimed once: as one user's name, or as one
 * alias of one user. Sort all claims and report the later duplicates;
 * an alias colliding with a user name is blamed on the alias.
 */
static void
users_check_claims(struct users_parse *p)
{
	struct users *us = p->users;
	struct users_claim *c;
	size_t n = 0, total = us->n;

	for (size_t i = 0; i < us->n; i++)
		total += us->v[i].n_aliases;
	if (total == 0)
		return;
	c = calloc(total, sizeof(*c));
	if (c == NULL) {
		p->oom = true;
		return;
	}
	for (size_t i = 0; i < us->n; i++) {
		const struct user *u = &us->v[i];

		c[n++] = (struct users_claim){u->name, i, u->line, false};
		for (size_t j = 0; j < u->n_aliases; j++)
			c[n++] = (struct users_claim){u->aliases[j], i, u->line,
						      true};
	}
	qsort(c, n, sizeof(*c), users_claim_cmp);
	for (size_t i = 0; i < n;) {
		size_t end = i + 1;
		const struct users_claim *first = &c[i];

		while (end < n && strcmp(c[end].addr, first->addr) == 0)
			end++;
		for (size_t k = i + 1; k < end; k++) {
			const struct users_claim *e = &c[k];
			const char *owner = us->v[first->owner].name;

			if (!e->is_alias)
				users_error(p, e->line,
					    "duplicate user %s (first at line "
					    "%u)",
					    e->addr, first->line);
			else if (!first->is_alias && first->owner == e->owner)
				users_error(p, e->line,
					    "alias %s is the user's own name",
					    e->addr);
			else if (!first->is_alias)
				users_error(p, e->line,
					    "alias %s is already a user "
					    "(line %u)",
					    e->addr, first->line);
			else if (first->owner == e->owner)
				users_error(p, e->line, "duplicate alias %s",
					    e->addr);
			else
				users_error(p, e->line,
					    "alias %s is already an alias of "
					    "%s (line %u)",
					    e->addr, owner, first->line);
		}
		i = end;
	}
	free(c);
}

static int
users_name_cmp(const void *a, const void *b)
{
	const struct user *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int
users_err_cmp(const void *a, const void *b)
{
	const struct users_err *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	/* same line: keep the order of discovery */
	return x < y ? -1 : x > y;
}

/*
 * Parse a whole file image. Errors go to `errors` as "label:line: msg",
 * sorted by line; then -1. On success *users_r owns everything.
 */
static int
users_parse_buf(const char *label, const char *buf, size_t len,
		struct users **users_r, FILE *errors)
{
	struct users_parse p = {0};
	unsigned lineno = 0;
	size_t pos = 0;
	int ret = 0;

	*users_r = NULL;
	if (sodium_init() < 0) {
		fprintf(errors, "%s: libsodium initialisation failed\n", label);
		return -1;
	}
	p.users = calloc(1, sizeof(*p.users));
	if (p.users == NULL)
		goto oom;
	while (pos < len && !p.oom) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl == NULL ? len : (size_t)(nl - buf);

		lineno++;
		if (memchr(buf + pos, '\0', end - pos) != NULL)
			users_error(&p, lineno, "NUL byte in line");
		else
			users_parse_line(&p, buf + pos, end - pos, lineno);
		pos = end + 1;
	}
	if (!p.oom)
		users_check_claims(&p);
	if (!p.oom && p.users->n > 0) {
		p.users->by_name =
		    reallocarray(NULL, p.users->n, sizeof(struct user *));
		if (p.users->by_name == NULL)
			goto oom;
		for (size_t i = 0; i < p.users->n; i++)
			p.users->by_name[i] = &p.users->v[i];
		qsort(p.users->by_name, p.users->n, sizeof(struct user *),
		      users_name_cmp);
	}
	if (p.oom)
		goto oom;
	if (p.n_errs > 0)
		qsort(p.errs, p.n_errs, sizeof(*p.errs), users_err_cmp);
	for (size_t i = 0; i < p.n_errs; i++)
		fprintf(errors, "%s:%u: %s\n", label, p.errs[i].line,
			p.errs[i].msg);
	ret = p.n_errs > 0 ? -1 : 0;
	goto out;
oom:
	fprintf(errors, "%s: out of memory\n", label);
	ret = -1;
out:
	for (size_t i = 0; i < p.n_errs; i++)
		free(p.errs[i].msg);
	free(p.errs);
	if (ret == 0)
		*users_r = p.users;
	else
		users_free(&p.users);
	return ret;
}

/* Read a whole regular file into memory. Sets errno and returns -1. */
static int
users_read_file(const char *path, char **buf_r, size_t *len_r)
{
	struct users_buf b = {0};
	struct stat st;
	char chunk[8192];
	int fd, saved;

	*buf_r = NULL;
	*len_r = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		users_buf_add(&b, chunk, (size_t)n);
		if (b.oom || b.len > USERS_FILE_MAX) {
			errno = b.oom ? ENOMEM : EFBIG;
			goto fail;
		}
	}
	close(fd);
	if (b.p == NULL)
		users_buf_add(&b, "", 0);
	if (b.oom) {
		errno = ENOMEM;
		return -1;
	}
	*buf_r = b.p;
	*len_r = b.len;
	return 0;
fail:
	saved = errno;
	close(fd);
	users_buf_free(&b);
	errno = saved;
	return -1;
}

int
users_load(const char *path, struct users **users_r, FILE *errors)
{
	char *buf;
	size_t len;
	int ret;

	*users_r = NULL;
	if (users_read_file(path, &buf, &len) < 0) {
		fprintf(errors, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	ret = users_parse_buf(path, buf, len, users_r, errors);
	sodium_memzero(buf, len);
	free(buf);
	return ret;
}

size_t
users_count(const struct users *users)
{
	return users == NULL ? 0 : users->n;
}

const struct user *
users_get(const struct users *users, size_t i)
{
	return users != NULL && i < users->n ? &users->v[i] : NULL;
}

static int
users_find_cmp(const void *key, const void *elem)
{
	const struct user *const *u = elem;

	return strcmp(key, (*u)->name);
}

const struct user *
users_find(const struct users *users, const char *name)
{
	char key[USERS_ADDRESS_MAX + 1];
	size_t len;
	struct user **u;

	if (users == NULL || users->n == 0 || name == NULL)
		return NULL;
	len = strlen(name);
	if (len > USERS_ADDRESS_MAX)
		return NULL;
	for (size_t i = 0; i <= len; i++)
		key[i] = (char)tolower((unsigned char)name[i]);
	u = bsearch(key, users->by_name, users->n, sizeof(*u), users_find_cmp);
	return u == NULL ? NULL : *u;
}

bool
users_may_send_as(const struct user *user, const char *address)
{
	if (user == NULL || address == NULL)
		return false;
	if (strcasecmp(user->name, address) == 0)
		return true;
	for (size_t i = 0; i < user->n_aliases; i++)
		if (strcasecmp(user->aliases[i], address) == 0)
			return true;
	return false;
}

/* --- verification -------------------------------------------------- */

/*
 * crypt(3) a NUL-terminated copy of the password with the stored hash as
 * setting and compare the result in constant time.
 */
static int
users_verify_crypt(const char *stored, const char *password, size_t len)
{
	struct crypt_data *data;
	char *pw;
	const char *out;
	size_t n = strlen(stored);
	int ret;

	data = calloc(1, sizeof(*data));
	pw = malloc(len + 1);
	if (data == NULL || pw == NULL) {
		free(data);
		free(pw);
		return -1;
	}
	memcpy(pw, password, len);
	pw[len] = '\0';
	out = crypt_rn(pw, stored, data, (int)sizeof(*data));
	if (out == NULL || out[0] == '*')
		ret = -1;
	else if (strlen(out) != n)
		ret = 0;
	else
		ret = sodium_memcmp(out, stored, n) == 0 ? 1 : 0;
	sodium_memzero(pw, len + 1);
	sodium_memzero(data, sizeof(*data));
	free(pw);
	free(data);
	return ret;
}

int
users_verify(const char *hash, const char *password, size_t len)
{
	enum users_scheme scheme;
	const char *rest, *name;
	size_t name_len;
	char msg[128];

	if (hash == NULL || password == NULL || sodium_init() < 0)
		return -1;
	/* the same checks as at load time: a {SHA512-CRYPT} field can never
	   reach crypt(3) as, say, a DES setting */
	if (!users_check_hash(hash, msg, sizeof(msg)))
		return -1;
	scheme = users_scheme_of(hash, &rest, &name, &name_len);
	/* A NUL cannot be in a crypt(3) phrase, and Dovecot cuts the
	   password at the first NUL: such a password never matches. */
	if (len > USERS_PASSWORD_MAX || memchr(password, '\0', len) != NULL)
		return 0;
	if (scheme == USERS_SCHEME_ARGON2ID)
		return crypto_pwhash_str_verify(rest, password, len) == 0 ? 1
									  : 0;
	return users_verify_crypt(rest, password, len);
}

static pthread_once_t users_dummy_once = PTHREAD_ONCE_INIT;
static char users_dummy_hash[crypto_pwhash_STRBYTES];
static bool users_dummy_ok;

/* Hash a random password once, with the costs users_hash uses. */
static void
users_dummy_init(void)
{
	unsigned char raw[24];
	char pw[2 * sizeof(raw) + 1];

	if (sodium_init() < 0)
		return;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(pw, sizeof(pw), raw, sizeof(raw));
	users_dummy_ok = crypto_pwhash_str_alg(
			     users_dummy_hash, pw, strlen(pw), USERS_OPSLIMIT,
			     USERS_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13) == 0;
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(pw, sizeof(pw));
}

void
users_verify_dummy(const char *password, size_t len)
{
	unsigned char key[32], salt[crypto_pwhash_SALTBYTES] = {0};
	int r;

	pthread_once(&users_dummy_once, users_dummy_init);
	if (password == NULL)
		password = "";
	if (len > USERS_PASSWORD_MAX)
		len = USERS_PASSWORD_MAX;
	if (users_dummy_ok) {
		r = crypto_pwhash_str_verify(users_dummy_hash, password, len);
		(void)r; /* always a mismatch; only the time matters */
		return;
	}
	/* XXX: the dummy hash could not be made (out of memory?); spend the
	   same work on a throwaway key so the timing still matches. */
	r = crypto_pwhash(key, sizeof(key), password, len, salt, USERS_OPSLIMIT,
			  USERS_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13);
	(void)r;
	sodium_memzero(key, sizeof(key));
}

int
users_hash(const char *password, size_t len, char **hash_r)
{
	char out[crypto_pwhash_STRBYTES];
	static const char prefix[] = "{ARGON2ID}";
	char *r;

	*hash_r = NULL;
	if (password == NULL || len > USERS_PASSWORD_MAX ||
	    memchr(password, '\0', len) != NULL || sodium_init() < 0)
		return -1;
	if (crypto_pwhash_str_alg(out, password, len, USERS_OPSLIMIT,
				  USERS_MEMLIMIT,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -1;
	if (asprintf(&r, "%s%s", prefix, out) < 0)
		return -1;
	*hash_r = r;
	return 0;
}

/* --- the `postern user` command ------------------------------------ */

enum users_op {
	USERS_OP_ADD,
	USERS_OP_PASSWD,
	USERS_OP_DEL,
	USERS_OP_ALIAS_ADD,
	USERS_OP_ALIAS_DEL,
	USERS_OP_LIST,
};

struct users_edit {
	enum users_op op;
	const char *path;
	char *address;	/* lower-case */
	char **aliases; /* lower-case; --alias for add, the one for alias */
	size_t n_aliases;
	bool from_stdin;
	char *hash; /* new hash for add/passwd */
};

static void USERS_PRINTF(1, 2) users_say(const char *fmt, ...)
{
	va_list ap;

	fputs("postern user: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
users_usage(const char *why)
{
	if (why != NULL)
		users_say("%s", why);
	fputs("usage: postern user add ADDRESS [--stdin] [--alias ADDRESS]...\n"
	      "       postern user passwd ADDRESS [--stdin]\n"
	      "       postern user del ADDRESS\n"
	      "       postern user alias ADDRESS --add ALIAS | --del ALIAS\n"
	      "       postern user list\n",
	      stderr);
	return 1;
}

/*
 * Read one line (without its terminator) from fd, byte by byte so that
 * nothing after it is consumed. Returns its length, or -1 on EOF before
 * any byte, an error, or a line longer than the buffer.
 */
static ssize_t
users_read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	bool got = false, too_long = false;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got = true;
		if (c == '\n')
			break;
		if (n + 1 < size)
			buf[n++] = c;
		else
			too_long = true;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (!got || too_long)
		return -1;
	return (ssize_t)n;
}

/*
 * Prompt on the terminal with echo (and signals) off, like getpass(3).
 * Echo goes off before the prompt is shown, so nothing typed after the
 * prompt appears can be echoed or flushed away.
 */
static ssize_t
users_ask(int tty, const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	ssize_t n = -1;

	if (tcgetattr(tty, &old) < 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ISIG);
	if (tcsetattr(tty, TCSAFLUSH, &quiet) < 0)
		return -1;
	if (write(tty, prompt, strlen(prompt)) >= 0)
		n = users_read_line(tty, buf, size);
	(void)tcsetattr(tty, TCSAFLUSH, &old);
	(void)!write(tty, "\n", 1);
	return n;
}

/*
 * Get the new password: one line of standard input with --stdin, else
 * twice from the terminal (they must match). Never from argv.
 */
static int
users_get_password(const struct users_edit *ed, char *pw, size_t size,
		   size_t *len_r)
{
	char again[USERS_PASSWORD_MAX + 2];
	ssize_t n, m;
	int tty, ret = -1;

	if (ed->from_stdin) {
		n = users_read_line(STDIN_FILENO, pw, size);
		if (n < 0) {
			users_say("no password line on standard input (or "
				  "longer than %d bytes)",
				  USERS_PASSWORD_MAX);
			return -1;
		}
	} else {
		tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (tty < 0) {
			users_say("no terminal to ask for the password; use "
				  "--stdin");
			return -1;
		}
		n = users_ask(tty, "New password: ", pw, size);
		m = n < 0 ? -1
			  : users_ask(tty, "Retype new password: ", again,
				      sizeof(again));
		close(tty);
		if (n < 0 || m < 0) {
			users_say("could not read the password (or longer "
				  "than %d bytes)",
				  USERS_PASSWORD_MAX);
			goto out;
		}
		if (n != m || sodium_memcmp(pw, again, (size_t)n) != 0) {
			users_say("passwords do not match");
			goto out;
		}
	}
	if ((size_t)n > USERS_PASSWORD_MAX) {
		users_say("password longer than %d bytes", USERS_PASSWORD_MAX);
		goto out;
	}
	if (n < USERS_PASSWORD_MIN) {
		users_say("password too short (at least %d characters)",
			  USERS_PASSWORD_MIN);
		goto out;
	}
	if (memchr(pw, '\0', (size_t)n) != NULL) {
		users_say("password contains a NUL byte");
		goto out;
	}
	*len_r = (size_t)n;
	ret = 0;
out:
	sodium_memzero(again, sizeof(again));
	return ret;
}

/* Who claims `addr` already (as a name or alias)? NULL when free. */
static const struct user *
users_claimed_by(const struct users *us, const char *addr)
{
	for (size_t i = 0; i < us->n; i++)
		if (users_may_send_as(&us->v[i], addr))
			return &us->v[i];
	return NULL;
}

/* Is the edit possible on this file? Explains on stderr when not. */
static int
users_check_edit(const struct users *us, const struct users_edit *ed)
{
	const struct user *u = users_find(us, ed->address), *o;

	if (ed->op == USERS_OP_ADD) {
		if ((o = users_claimed_by(us, ed->address)) != NULL) {
			if (o == u)
				users_say("%s exists already", ed->address);
			else
				users_say("%s is an alias of %s", ed->address,
					  o->name);
			return -1;
		}
		for (size_t i = 0; i < ed->n_aliases; i++) {
			o = users_claimed_by(us, ed->aliases[i]);
			if (o != NULL) {
				users_say("alias %s is taken by %s",
					  ed->aliases[i], o->name);
				return -1;
			}
			if (strcmp(ed->aliases[i], ed->address) == 0) {
				users_say("alias %s is the user's own name",
					  ed->aliases[i]);
				return -1;
			}
			for (size_t j = 0; j < i; j++)
				if (strcmp(ed->aliases[i], ed->aliases[j]) ==
				    0) {
					users_say("alias %s given twice",
						  ed->aliases[i]);
					return -1;
				}
		}
		return 0;
	}
	if (u == NULL) {
		users_say("no such user %s", ed->address);
		return -1;
	}
	if (ed->op == USERS_OP_ALIAS_ADD) {
		o = users_claimed_by(us, ed->aliases[0]);
		if (o != NULL) {
			users_say("alias %s is taken by %s", ed->aliases[0],
				  o->name);
			return -1;
		}
	} else if (ed->op == USERS_OP_ALIAS_DEL) {
		for (size_t i = 0; i < u->n_aliases; i++)
			if (strcmp(u->aliases[i], ed->aliases[0]) == 0)
				return 0;
		users_say("%s has no alias %s", u->name, ed->aliases[0]);
		return -1;
	}
	return 0;
}

/* Append " userdb_postern_aliases=a,b" (no space first) when n > 0. */
static void
users_put_aliases(struct users_buf *b, size_t *n_out, const char *const *a,
		  size_t n)
{
	if (n == 0)
		return;
	if ((*n_out)++ > 0)
		users_buf_add(b, " ", 1);
	users_buf_str(b, USERS_ALIASES_KEY);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			users_buf_add(b, ",", 1);
		users_buf_str(b, a[i]);
	}
}

/*
 * Write the extra field of `u` with its alias list changed by `ed`: the
 * other extra fields first, in order, single-space separated, then the
 * alias field, or none when no alias is left.
 */
static void
users_rebuild_extra(struct users_buf *b, const struct users_fields *fl,
		    const struct user *u, const struct users_edit *ed)
{
	const size_t klen = strlen(USERS_ALIASES_KEY);
	const char *extra = fl->n == USERS_N_FIELDS ? fl->f[7] : "";
	size_t len = fl->n == USERS_N_FIELDS ? fl->len[7] : 0, i = 0;
	size_t n_out = 0, n = 0;
	const char **list;

	while (i < len) {
		size_t j = i;

		while (j < len && extra[j] != ' ')
			j++;
		if (j > i &&
		    !(j - i >= klen &&
		      memcmp(extra + i, USERS_ALIASES_KEY, klen) == 0)) {
			if (n_out++ > 0)
				users_buf_add(b, " ", 1);
			users_buf_add(b, extra + i, j - i);
		}
		i = j + 1;
	}
	list = calloc(u->n_aliases + 1, sizeof(*list));
	if (list == NULL) {
		b->oom = true;
		return;
	}
	for (i = 0; i < u->n_aliases; i++)
		if (ed->op != USERS_OP_ALIAS_DEL ||
		    strcmp(u->aliases[i], ed->aliases[0]) != 0)
			list[n++] = u->aliases[i];
	if (ed->op == USERS_OP_ALIAS_ADD)
		list[n++] = ed->aliases[0];
	users_put_aliases(b, &n_out, list, n);
	free(list);
}

/* Pad fl to all eight fields and make `extra` the last one. */
static void
users_set_extra(struct users_fields *fl, const struct users_buf *extra)
{
	while (fl->n < USERS_N_FIELDS) {
		fl->f[fl->n] = "";
		fl->len[fl->n++] = 0;
	}
	fl->f[7] = extra->p == NULL ? "" : extra->p;
	fl->len[7] = extra->len;
}

/*
 * Rewrite the line of user `u` (without terminator) into b. A new
 * password replaces the second field only; everything else on the line
 * stays byte for byte.
 */
static void
users_rewrite_line(struct users_buf *b, const char *line, size_t len,
		   const struct user *u, const struct users_edit *ed)
{
	struct users_fields fl;
	struct users_buf extra = {0};
	const char *after;

	users_split_fields(line, len, &fl);
	if (ed->op == USERS_OP_PASSWD) {
		after = fl.f[1] + fl.len[1];
		users_buf_add(b, line, (size_t)(fl.f[1] - line));
		users_buf_str(b, ed->hash);
		users_buf_add(b, after, (size_t)(line + len - after));
		return;
	}
	users_rebuild_extra(&extra, &fl, u, ed);
	if (extra.oom)
		b->oom = true;
	users_set_extra(&fl, &extra);
	users_join_fields(b, &fl);
	users_buf_free(&extra);
}

/*
 * Produce the new file image: every line but the edited user's is copied
 * byte for byte; a new user is appended at the end.
 */
static int
users_apply(const char *buf, size_t len, const struct users *us,
	    const struct users_edit *ed, struct users_buf *out)
{
	const struct user *u = users_find(us, ed->address);
	unsigned lineno = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl == NULL ? len : (size_t)(nl - buf) + 1;
		size_t keep = (nl == NULL ? len : (size_t)(nl - buf)) - pos;

		lineno++;
		if (u == NULL || lineno != u->line) {
			users_buf_add(out, buf + pos, end - pos);
		} else if (ed->op != USERS_OP_DEL) {
			if (keep > 0 && buf[pos + keep - 1] == '\r')
				keep--;
			users_rewrite_line(out, buf + pos, keep, u, ed);
			users_buf_add(out, buf + pos + keep, end - pos - keep);
		}
		pos = end;
	}
	if (ed->op == USERS_OP_ADD) {
		struct users_fields fl = {
		    {ed->address, ed->hash},
		    {strlen(ed->address), strlen(ed->hash)},
		    2};
		struct users_buf extra = {0};
		size_t n_out = 0;

		if (out->len > 0 && out->p[out->len - 1] != '\n')
			users_buf_add(out, "\n", 1);
		if (ed->n_aliases > 0) {
			users_put_aliases(&extra, &n_out,
					  (const char *const *)ed->aliases,
					  ed->n_aliases);
			users_set_extra(&fl, &extra);
		}
		users_join_fields(out, &fl);
		users_buf_add(out, "\n", 1);
		if (extra.oom)
			out->oom = true;
		users_buf_free(&extra);
	}
	if (out->p == NULL)
		users_buf_add(out, "", 0);
	return out->oom ? -1 : 0;
}

static int
users_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Split path into its directory (malloc'd) and base name. */
static char *
users_dir_of(const char *path, const char **base_r)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		*base_r = path;
		return strdup(".");
	}
	*base_r = slash + 1;
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/*
 * Replace the file with `data` atomically: temporary file in the same
 * directory (mode 0600 at creation, then the original's mode and owner),
 * written, fsync'd, re-loaded as a check, renamed over, directory fsync'd.
 * The temporary file never survives a failure.
 */
static int
users_replace(const char *path, int dirfd, const char *dir, const char *base,
	      const struct stat *orig, const char *data, size_t len)
{
	char *tmp = NULL;
	struct users *check = NULL;
	int fd = -1;
	bool placed = false;

	if (asprintf(&tmp, "%s/.%s.tmpXXXXXX", dir, base) < 0) {
		tmp = NULL;
		users_say("out of memory");
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		users_say("cannot create a file in %s: %s", dir,
			  strerror(errno));
		goto fail;
	}
	placed = true;
	if (orig != NULL) {
		if (fchmod(fd, orig->st_mode & 07777) < 0) {
			users_say("cannot set the mode of %s: %s", tmp,
				  strerror(errno));
			goto fail;
		}
		if ((orig->st_uid != geteuid() || orig->st_gid != getegid()) &&
		    fchown(fd, orig->st_uid, orig->st_gid) < 0) {
			users_say("cannot keep the owner of %s (%s); run as "
				  "root or as its owner",
				  path, strerror(errno));
			goto fail;
		}
	}
	if (users_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		users_say("cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		users_say("cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (users_load(tmp, &check, stderr) < 0) {
		users_say("the new file does not load; %s left unchanged",
			  path);
		goto fail;
	}
	users_free(&check);
	if (rename(tmp, path) < 0) {
		users_say("cannot rename over %s: %s", path, strerror(errno));
		goto fail;
	}
	placed = false;
	if (fsync(dirfd) < 0) {
		users_say("cannot fsync %s: %s", dir, strerror(errno));
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (placed)
		(void)unlink(tmp);
	free(tmp);
	return -1;
}

/*
 * Load the file for an edit. A missing file is an empty one for `add`
 * only. Symbolic links are refused: rename would replace the link.
 */
static int
users_cli_load(const struct users_edit *ed, char **buf_r, size_t *len_r,
	       struct users **us_r, struct stat *st_r, bool *exists_r)
{
	*exists_r = false;
	*buf_r = NULL;
	*us_r = NULL;
	if (lstat(ed->path, st_r) < 0) {
		if (errno != ENOENT || ed->op != USERS_OP_ADD) {
			users_say("%s: %s", ed->path, strerror(errno));
			return -1;
		}
		*buf_r = strdup("");
		*len_r = 0;
		if (*buf_r == NULL)
			return -1;
	} else {
		if (S_ISLNK(st_r->st_mode)) {
			users_say("%s is a symbolic link; give the real path",
				  ed->path);
			return -1;
		}
		*exists_r = true;
		if (users_read_file(ed->path, buf_r, len_r) < 0) {
			users_say("%s: %s", ed->path, strerror(errno));
			return -1;
		}
	}
	if (users_parse_buf(ed->path, *buf_r, *len_r, us_r, stderr) < 0) {
		users_say("fix %s first", ed->path);
		free(*buf_r);
		*buf_r = NULL;
		return -1;
	}
	return 0;
}

/* Under the directory lock: re-load, re-check, apply, replace. */
static int
users_cli_commit(const struct users_edit *ed)
{
	const char *base;
	char *dir = users_dir_of(ed->path, &base), *buf = NULL;
	struct users *us = NULL;
	struct users_buf out = {0};
	struct stat st;
	size_t len = 0;
	bool exists;
	int dirfd = -1, ret = -1;

	if (dir == NULL)
		return -1;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || flock(dirfd, LOCK_EX) < 0) {
		users_say("%s: %s", dir, strerror(errno));
		goto out;
	}
	if (users_cli_load(ed, &buf, &len, &us, &st, &exists) < 0 ||
	    users_check_edit(us, ed) < 0)
		goto out;
	if (users_apply(buf, len, us, ed, &out) < 0) {
		users_say("out of memory");
		goto out;
	}
	ret = users_replace(ed->path, dirfd, dir, base, exists ? &st : NULL,
			    out.p, out.len);
out:
	if (dirfd >= 0)
		close(dirfd); /* drops the lock */
	if (buf != NULL) {
		sodium_memzero(buf, len);
		free(buf);
	}
	if (out.p != NULL)
		sodium_memzero(out.p, out.len);
	users_buf_free(&out);
	users_free(&us);
	free(dir);
	return ret;
}

static int
users_cli_list(const char *path)
{
	struct users *us;

	if (users_load(path, &us, stderr) < 0)
		return 1;
	for (size_t i = 0; i < users_count(us); i++) {
		const struct user *u = users_get(us, i);

		fputs(u->name, stdout);
		for (size_t j = 0; j < u->n_aliases; j++) {
			fputc(j == 0 ? '\t' : ',', stdout);
			fputs(u->aliases[j], stdout);
		}
		fputc('\n', stdout);
	}
	users_free(&us);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* Validate and lower-case an address from the command line. */
static char *
users_cli_address(const char *s, const char *what)
{
	char *r;

	if (!users_valid_address(s, strlen(s))) {
		users_say("invalid %s '%.80s'", what, s);
		return NULL;
	}
	r = users_strndup_lower(s, strlen(s));
	if (r == NULL)
		users_say("out of memory");
	return r;
}

static int
users_cli_add_alias(struct users_edit *ed, const char *s)
{
	char **a = reallocarray(ed->aliases, ed->n_aliases + 1, sizeof(*a));

	if (a == NULL)
		return -1;
	ed->aliases = a;
	a[ed->n_aliases] = users_cli_address(s, "alias");
	if (a[ed->n_aliases] == NULL)
		return -1;
	ed->n_aliases++;
	return 0;
}

/*
 * Parse "user SUBCOMMAND ..." into ed. Returns 0, or the exit status of a
 * usage error. Options are recognised anywhere after the subcommand;
 * exactly one positional ADDRESS (none for list), so a password given on
 * the command line is a usage error.
 */
static int
users_cli_parse(int argc, char **argv, struct users_edit *ed)
{
	static const struct {
		const char *name;
		enum users_op op;
	} cmds[] = {
	    {"add", USERS_OP_ADD},   {"passwd", USERS_OP_PASSWD},
	    {"del", USERS_OP_DEL},   {"alias", USERS_OP_ALIAS_ADD},
	    {"list", USERS_OP_LIST},
	};
	const char *address = NULL;
	int n_alias_ops = 0, i;
	bool alias_cmd;
	size_t c;

	if (argc < 2)
		return users_usage(NULL);
	for (c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
		if (strcmp(argv[1], cmds[c].name) == 0)
			break;
	if (c == sizeof(cmds) / sizeof(cmds[0]))
		return users_usage("unknown subcommand");
	ed->op = cmds[c].op;
	alias_cmd = ed->op == USERS_OP_ALIAS_ADD;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool takes = strcmp(a, "--alias") == 0 ||
			     strcmp(a, "--add") == 0 || strcmp(a, "--del") == 0;

		if (takes && i + 1 >= argc)
			return users_usage("option needs an address");
		if (strcmp(a, "--stdin") == 0 &&
		    (ed->op == USERS_OP_ADD || ed->op == USERS_OP_PASSWD)) {
			ed->from_stdin = true;
		} else if (strcmp(a, "--alias") == 0 &&
			   ed->op == USERS_OP_ADD) {
			if (users_cli_add_alias(ed, argv[++i]) < 0)
				return 1;
		} else if ((strcmp(a, "--add") == 0 ||
			    strcmp(a, "--del") == 0) &&
			   alias_cmd) {
			if (strcmp(a, "--del") == 0)
				ed->op = USERS_OP_ALIAS_DEL;
			n_alias_ops++;
			if (users_cli_add_alias(ed, argv[++i]) < 0)
				return 1;
		} else if (a[0] == '-') {
			return users_usage("unknown option for this "
					   "subcommand");
		} else if (address == NULL && ed->op != USERS_OP_LIST) {
			address = a;
		} else {
			return users_usage("too many arguments (passwords "
					   "are never taken from the command "
					   "line: use the prompt or --stdin)");
		}
	}
	if (ed->op == USERS_OP_LIST)
		return 0;
	if (address == NULL)
		return users_usage("missing ADDRESS");
	if (alias_cmd && n_alias_ops != 1)
		return users_usage("alias needs exactly one --add or --del");
	ed->address = users_cli_address(address, "address");
	return ed->address == NULL ? 1 : 0;
}

static void
users_edit_free(struct users_edit *ed)
{
	free(ed->address);
	for (size_t i = 0; i < ed->n_aliases; i++)
		free(ed->aliases[i]);
	free(ed->aliases);
	free(ed->hash);
	memset(ed, 0, sizeof(*ed));
}

static const char *
users_done_msg(enum users_op op)
{
	switch (op) {
	case USERS_OP_ADD:
		return "added";
	case USERS_OP_PASSWD:
		return "password changed for";
	case USERS_OP_DEL:
		return "deleted";
	case USERS_OP_ALIAS_ADD:
		return "alias added to";
	case USERS_OP_ALIAS_DEL:
		return "alias removed from";
	case USERS_OP_LIST:
		break;
	}
	return "";
}

int
users_cli(const char *path, int argc, char **argv)
{
	struct users_edit ed = {.path = path};
	char pw[USERS_PASSWORD_MAX + 2];
	size_t pwlen = 0;
	int ret = 1;

	if (path == NULL || *path == '\0') {
		users_say("no users file configured");
		return 1;
	}
	if (users_cli_parse(argc, argv, &ed) != 0)
		goto out;
	if (ed.op == USERS_OP_LIST) {
		ret = users_cli_list(path);
		goto out;
	}
	if (ed.op == USERS_OP_ADD || ed.op == USERS_OP_PASSWD) {
		struct users *us = NULL;
		char *buf = NULL;
		size_t len;
		struct stat st;
		bool exists;
		int ok;

		/* refuse early, before asking for a password */
		ok = users_cli_load(&ed, &buf, &len, &us, &st, &exists) == 0 &&
		     users_check_edit(us, &ed) == 0;
		users_free(&us);
		free(buf);
		if (!ok)
			goto out;
		if (users_get_password(&ed, pw, sizeof(pw), &pwlen) < 0)
			goto out;
		if (users_hash(pw, pwlen, &ed.hash) < 0) {
			users_say("hashing the password failed");
			goto out;
		}
	}
	if (users_cli_commit(&ed) < 0)
		goto out;
	users_say("%s %s", users_done_msg(ed.op), ed.address);
	ret = 0;
out:
	sodium_memzero(pw, sizeof(pw));
	users_edit_free(&ed);
	return ret;
}
