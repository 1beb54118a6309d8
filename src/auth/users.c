/*
 * users.c - the users file in Dovecot's passwd-file format: reading,
 * parsing and checking every line, lookup by name. Verification and
 * hashing are in users_hash.c, edits in users_edit.c, the `postern user`
 * command in cli/user_cmd.c.
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
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/users_int.h"

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

/* --- small helpers ------------------------------------------------- */

void
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

void
users_buf_str(struct users_buf *b, const char *s)
{
	users_buf_add(b, s, strlen(s));
}

void
users_buf_free(struct users_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

char *
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
void
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
void
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
bool
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

static const char *const users_send_limit_keys[USERS_SEND_LIMITS] = {
    "userdb_postern_send_limit_hour=", "userdb_postern_send_limit_day=",
    "userdb_postern_new_recipients_day="};

/*
 * One of the send-limit fields at extra[0 .. len) ("key=value"), if it is
 * one: 1 (parsed), 0 (another field), -1 (reported: a bad value, or given
 * twice). The value is decimal, 0 .. USERS_SEND_LIMIT_MAX, no sign, no
 * leading zero.
 */
static int
users_parse_send_limit(struct users_parse *p, unsigned line, struct user *u,
		       const char *f, size_t len)
{
	for (int k = 0; k < USERS_SEND_LIMITS; k++) {
		const char *key = users_send_limit_keys[k];
		size_t klen = strlen(key), vlen = len - klen;
		long long v = 0;

		if (len < klen || memcmp(f, key, klen) != 0)
			continue;
		if (u->send_limit[k] >= 0) {
			users_error(p, line, "%.*s given twice",
				    (int)klen - 1, key);
			return -1;
		}
		for (size_t i = 0; i < vlen && vlen <= 8 && v >= 0; i++)
			v = f[klen + i] >= '0' && f[klen + i] <= '9'
				? v * 10 + (f[klen + i] - '0')
				: -1;
		if (vlen == 0 || vlen > 8 || v < 0 ||
		    v > USERS_SEND_LIMIT_MAX || (f[klen] == '0' && vlen > 1)) {
			users_error(p, line,
				    "invalid %.*s value '%.*s' (expected a "
				    "number 0..%lld, 0: no limit)",
				    (int)klen - 1, key,
				    (int)(vlen > 40 ? 40 : vlen), f + klen,
				    USERS_SEND_LIMIT_MAX);
			return -1;
		}
		u->send_limit[k] = v;
		return 1;
	}
	return 0;
}

/* Find userdb_postern_aliases and the send limits among the
   space-separated extra fields. */
static bool
users_parse_extra(struct users_parse *p, unsigned line, struct user *u,
		  const char *extra, size_t len)
{
	const size_t klen = strlen(USERS_ALIASES_KEY);
	bool seen = false;
	size_t i = 0;

	while (i < len) {
		size_t j = i;
		int r;

		while (j < len && extra[j] != ' ')
			j++;
		if ((r = users_parse_send_limit(p, line, u, extra + i, j - i)) <
		    0)
			return false;
		if (r == 0 && j - i >= klen &&
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
	for (int k = 0; k < USERS_SEND_LIMITS; k++)
		u.send_limit[k] = -1;
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
int
users_parse(const char *label, const char *buf, size_t len,
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
int
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
	ret = users_parse(path, buf, len, users_r, errors);
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
