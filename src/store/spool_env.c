/*
 * spool_env.c - the envelope: its text format, writer and exact reader
 * (docs/queue-format.md). No I/O.
 */
#include "store/spool_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Octets written as themselves; everything else is %XX. */
static bool
spool_env_plain(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '%';
}

static size_t
spool_env_esc_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += spool_env_plain((unsigned char)*s) ? 1 : 3;
	return n;
}

static char *
spool_env_esc(char *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (spool_env_plain(c)) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	return o;
}

/* RFC 5321 section 2.3.8: envelope values never hold CR or LF. */
static bool
spool_env_value_ok(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

bool
spool_id_ok(const char *s, size_t len)
{
	if (len == 0 || len >= SPOOL_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		      (c >= 'a' && c <= 'z')))
			return false;
	}
	return true;
}

char *
spool_env_put(char *o, const char *s)
{
	size_t n = strlen(s);

	memcpy(o, s, n);
	return o + n;
}

/* A user name for the `auth` record: see spool_msg_set_auth(). */
bool
spool_auth_ok(const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	return len > 0 && len <= SPOOL_AUTH_MAX && strpbrk(s, "\r\n ") == NULL;
}

/* A non-empty address, and a non-empty Maildir path or NULL (remote). */
static bool
spool_env_rcpt_ok(const struct spool_rcpt *r)
{
	return spool_env_value_ok(r->address) && r->address[0] != '\0' &&
	       (r->maildir == NULL ||
		(spool_env_value_ok(r->maildir) && r->maildir[0] != '\0'));
}

/*
 * Serialise `env` into a new buffer. The version is the lowest that can
 * say it all: 1 unless there is a remote recipient or an authenticated
 * user (docs/queue-format.md), so a local-only envelope reads as before.
 * Fails (EINVAL) when a value holds CR or LF, the id or user is malformed,
 * or there is no recipient.
 */
int
spool_env_format(const struct spool_env *env, char **buf_r, size_t *len_r)
{
	char num[64], *buf, *o;
	unsigned version = env->hold ? 3 : env->auth != NULL ? 2 : 1;
	size_t total;
	int n;

	if (!spool_id_ok(env->id, strlen(env->id)) || env->n_rcpts == 0 ||
	    !spool_env_value_ok(env->sender) || env->time < 0 ||
	    (env->auth != NULL && !spool_auth_ok(env->auth)))
		goto inval;
	n = snprintf(num, sizeof(num), "time %lld\nsize %" PRIu64 "\n",
		     env->time, env->size);
	if (n < 0 || (size_t)n >= sizeof(num))
		goto inval;
	total = sizeof(SPOOL_ENV_MAGIC "1\nid \n") + strlen(env->id) +
		(size_t)n + sizeof("sender \n") +
		spool_env_esc_len(env->sender) + sizeof("end\n");
	if (env->auth != NULL)
		total += sizeof("auth \n") + spool_env_esc_len(env->auth);
	if (env->hold)
		total += sizeof("hold send-burst\n");
	for (size_t i = 0; i < env->n_rcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		if (!spool_env_rcpt_ok(r))
			goto inval;
		total += sizeof("remote  \n") + spool_env_esc_len(r->address);
		if (r->maildir != NULL)
			total += spool_env_esc_len(r->maildir);
		else if (version < 2)
			version = 2;
	}
	buf = malloc(total);
	if (buf == NULL)
		return -1;
	o = spool_env_put(buf, SPOOL_ENV_MAGIC);
	*o++ = (char)('0' + version);
	o = spool_env_put(o, "\nid ");
	o = spool_env_put(o, env->id);
	*o++ = '\n';
	o = spool_env_put(o, num);
	o = spool_env_put(o, "sender ");
	o = spool_env_esc(o, env->sender);
	*o++ = '\n';
	if (env->auth != NULL) {
		o = spool_env_put(o, "auth ");
		o = spool_env_esc(o, env->auth);
		*o++ = '\n';
	}
	if (env->hold)
		o = spool_env_put(o, "hold send-burst\n");
	for (size_t i = 0; i < env->n_rcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		o = spool_env_put(o, r->maildir != NULL ? "rcpt " : "remote ");
		o = spool_env_esc(o, r->address);
		if (r->maildir != NULL) {
			*o++ = ' ';
			o = spool_env_esc(o, r->maildir);
		}
		*o++ = '\n';
	}
	o = spool_env_put(o, "end\n");
	*buf_r = buf;
	*len_r = (size_t)(o - buf);
	return 0;
inval:
	errno = EINVAL;
	return -1;
}

static int
spool_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not canonical */
}

/*
 * Decode an escaped value into *o (NUL-terminated). Only the canonical
 * form is accepted: plain octets raw, the others as %XX in upper case, so
 * every value has exactly one spelling. Returns 0 or -1.
 */
static int
spool_env_unesc(const char *s, size_t len, char **o, const char **value_r)
{
	char *d = *o;

	*value_r = d;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int hi, lo;

		if (spool_env_plain(c)) {
			*d++ = (char)c;
			continue;
		}
		if (c != '%' || len - i < 3)
			return -1;
		hi = spool_hex((unsigned char)s[i + 1]);
		lo = spool_hex((unsigned char)s[i + 2]);
		if (hi < 0 || lo < 0)
			return -1;
		c = (unsigned char)(hi << 4 | lo);
		if (spool_env_plain(c) || c == '\0' || c == '\r' || c == '\n')
			return -1;
		*d++ = (char)c;
		i += 2;
	}
	*d++ = '\0';
	*o = d;
	return 0;
}

/* A decimal number without sign or leading zero, at most `max`. */
int
spool_env_number(const char *s, size_t len, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

void
spool_env_free(struct spool_env *env)
{
	free(env->store);
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

enum {
	SPOOL_K_ID = 1,
	SPOOL_K_TIME = 2,
	SPOOL_K_SIZE = 4,
	SPOOL_K_SENDER = 8,
	SPOOL_K_AUTH = 16, /* version 2, optional */
	SPOOL_K_HOLD = 32, /* version 3, optional */
};

/* "remote <address>" (version 2): one non-empty value. */
static int
spool_env_remote(struct spool_env *env, const char *val, size_t vlen,
		 char **store)
{
	struct spool_rcpt *r = &env->rcpts[env->n_rcpts];

	if (vlen == 0 || spool_env_unesc(val, vlen, store, &r->address) < 0)
		return -1;
	r->maildir = NULL;
	env->n_rcpts++;
	return 0;
}

/* One "key value" line of the body (not the magic, not "end"). */
static int
spool_env_line(struct spool_env *env, const char *line, size_t len,
	       unsigned *seen, char **store, const char **error_r)
{
	const char *sp = memchr(line, ' ', len), *val, *sp2;
	size_t klen, vlen;
	uint64_t v;
	unsigned bit;

	if (sp == NULL) {
		*error_r = "line without value";
		return -1;
	}
	klen = (size_t)(sp - line);
	val = sp + 1;
	vlen = len - klen - 1;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
	if (KEY("rcpt")) {
		struct spool_rcpt *r = &env->rcpts[env->n_rcpts];

		sp2 = memchr(val, ' ', vlen);
		if (sp2 == NULL || sp2 == val || sp2 == val + vlen - 1 ||
		    spool_env_unesc(val, (size_t)(sp2 - val), store,
				    &r->address) < 0 ||
		    spool_env_unesc(sp2 + 1, vlen - (size_t)(sp2 - val) - 1,
				    store, &r->maildir) < 0) {
			*error_r = "bad rcpt";
			return -1;
		}
		env->n_rcpts++;
		return 0;
	}
	if (env->version >= 2 && KEY("remote")) {
		if (spool_env_remote(env, val, vlen, store) < 0) {
			*error_r = "bad remote";
			return -1;
		}
		return 0;
	}
	bit = KEY("id")				 ? SPOOL_K_ID
	      : KEY("time")			 ? SPOOL_K_TIME
	      : KEY("size")			 ? SPOOL_K_SIZE
	      : KEY("sender")			 ? SPOOL_K_SENDER
	      : env->version >= 2 && KEY("auth") ? SPOOL_K_AUTH
	      : env->version >= 3 && KEY("hold") ? SPOOL_K_HOLD
						 : 0;
#undef KEY
	if (bit == 0) {
		*error_r = "unknown key";
		return -1;
	}
	if (*seen & bit) {
		*error_r = "duplicate key";
		return -1;
	}
	*seen |= bit;
	switch (bit) {
	case SPOOL_K_ID:
		if (!spool_id_ok(val, vlen))
			break;
		memcpy(env->id, val, vlen);
		env->id[vlen] = '\0';
		return 0;
	case SPOOL_K_TIME:
		if (spool_env_number(val, vlen, LLONG_MAX, &v) < 0)
			break;
		env->time = (long long)v;
		return 0;
	case SPOOL_K_SIZE:
		if (spool_env_number(val, vlen, UINT64_MAX, &env->size) < 0)
			break;
		return 0;
	case SPOOL_K_AUTH:
		if (spool_env_unesc(val, vlen, store, &env->auth) < 0 ||
		    !spool_auth_ok(env->auth))
			break;
		return 0;
	case SPOOL_K_HOLD:
		/* The only reason so far; another is a new version. */
		if (vlen != 10 || memcmp(val, "send-burst", 10) != 0)
			break;
		env->hold = true;
		return 0;
	default:
		if (spool_env_unesc(val, vlen, store, &env->sender) < 0)
			break;
		return 0;
	}
	*error_r = "bad value";
	return -1;
}

/*
 * Parse an envelope file, version 1, 2 or 3. Everything must be right: the
 * magic first line, each single key exactly once (auth at most once, and
 * only from version 2; hold at most once, only in version 3), at least one rcpt or remote (remote only in version
 * 2), "end" as the last line and nothing after it. A file cut anywhere is
 * refused, never partially used (THREATS ). On success env owns its
 * strings.
 */
int
spool_env_parse(const char *buf, size_t len, struct spool_env *env,
		const char **error_r)
{
	const char *p = buf, *end = buf + len;
	unsigned seen = 0;
	size_t n_rcpt = 0;
	bool has_end = false;
	char *store;

	memset(env, 0, sizeof(*env));
	if (len == 0 || buf[len - 1] != '\n') {
		*error_r = "truncated";
		return -1;
	}
	if (memchr(buf, '\0', len) != NULL) {
		*error_r = "NUL octet";
		return -1;
	}
	for (const char *q = buf; q < end; q++)
		if (*q == '\n' &&
		    ((end - q > 5 && memcmp(q + 1, "rcpt ", 5) == 0) ||
		     (end - q > 7 && memcmp(q + 1, "remote ", 7) == 0)))
			n_rcpt++;
	env->store = malloc(len + 1);
	env->rcpts = calloc(n_rcpt + 1, sizeof(*env->rcpts));
	if (env->store == NULL || env->rcpts == NULL) {
		*error_r = "out of memory";
		goto fail;
	}
	store = env->store;
	for (unsigned line_no = 0; p < end; line_no++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t llen = (size_t)(eol - p);

		if (has_end) {
			*error_r = "data after end";
			goto fail;
		}
		if (line_no == 0) {
			/* "postern-envelope 1" or "... 2" */
			if (llen != sizeof(SPOOL_ENV_MAGIC) ||
			    memcmp(p, SPOOL_ENV_MAGIC, llen - 1) != 0 ||
			    p[llen - 1] < '1' || p[llen - 1] > '3') {
				*error_r = "bad magic";
				goto fail;
			}
			env->version = (unsigned)(p[llen - 1] - '0');
		} else if (llen == 3 && memcmp(p, "end", 3) == 0) {
			has_end = true;
		} else if (spool_env_line(env, p, llen, &seen, &store,
					  error_r) < 0) {
			goto fail;
		}
		p = eol + 1;
	}
	if (!has_end) {
		*error_r = "no end";
		goto fail;
	}
	if ((seen & ~(unsigned)(SPOOL_K_AUTH | SPOOL_K_HOLD)) !=
		(SPOOL_K_ID | SPOOL_K_TIME | SPOOL_K_SIZE | SPOOL_K_SENDER) ||
	    env->n_rcpts == 0) {
		*error_r = "missing key";
		goto fail;
	}
	return 0;
fail:
	spool_env_free(env);
	return -1;
}
