/*
 * qenv.c - reading a queue envelope. See qenv.h.
 */
#include "outbound/qenv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool
qenv_plain(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '%';
}

static int
qenv_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A canonical escaped value into *o (advanced); NUL-terminated. */
static int
qenv_unesc(const char *s, size_t len, char **o, char **value_r)
{
	char *out = *o;

	*value_r = out;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		unsigned char c;

		if (s[i] != '%') {
			if (!qenv_plain((unsigned char)s[i]))
				return -1;
			*out++ = s[i];
			continue;
		}
		if (len - i < 3 || (hi = qenv_hex(s[i + 1])) < 0 ||
		    (lo = qenv_hex(s[i + 2])) < 0)
			return -1;
		c = (unsigned char)(hi << 4 | lo);
		if (qenv_plain(c) || c == '\0' || c == '\r' || c == '\n')
			return -1;
		*out++ = (char)c;
		i += 2;
	}
	*out++ = '\0';
	*o = out;
	return 0;
}

static int
qenv_number(const char *s, size_t len, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return 0;
}

struct qenv_seen {
	unsigned id, time, size, sender, auth, hold;
	int version;
};

/* One line "key value" (without LF). */
static int
qenv_line(struct qenv *env, struct qenv_seen *seen, const char *l,
	  size_t len, char **o)
{
	const char *sp = memchr(l, ' ', len), *v;
	size_t klen, vlen;
	uint64_t n;
	char *val;

	if (sp == NULL)
		return -1;
	klen = (size_t)(sp - l);
	v = sp + 1;
	vlen = len - klen - 1;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(l, k, klen) == 0)
	if (KEY("id")) {
		if (seen->id++ || vlen == 0 || vlen >= sizeof(env->id) ||
		    strspn(v, "0123456789abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ") < vlen)
			return -1;
		memcpy(env->id, v, vlen);
		env->id[vlen] = '\0';
	} else if (KEY("time")) {
		if (seen->time++ || qenv_number(v, vlen, INT64_MAX, &n) < 0)
			return -1;
		env->time = (int64_t)n;
	} else if (KEY("size")) {
		if (seen->size++ ||
		    qenv_number(v, vlen, UINT64_MAX, &env->size) < 0)
			return -1;
	} else if (KEY("sender")) {
		if (seen->sender++ || qenv_unesc(v, vlen, o, &env->sender) < 0)
			return -1;
	} else if (KEY("auth")) {
		if (seen->version < 2 || seen->auth++ || vlen == 0 ||
		    qenv_unesc(v, vlen, o, &env->auth) < 0)
			return -1;
	} else if (KEY("hold")) {
		if (seen->version < 3 || seen->hold++ || vlen != 10 ||
		    memcmp(v, "send-burst", 10) != 0)
			return -1;
		env->hold = true;
	} else if (KEY("remote")) {
		if (seen->version < 2 || vlen == 0 ||
		    qenv_unesc(v, vlen, o, &val) < 0)
			return -1;
		env->remote[env->n_remote++] = val;
	} else if (KEY("rcpt")) {
		const char *sp2 = memchr(v, ' ', vlen);

		if (sp2 == NULL || sp2 == v || sp2 == v + vlen - 1)
			return -1; /* local: delivered at commit */
	} else {
		return -1;
	}
#undef KEY
	return 0;
}

static int
qenv_magic(const char *l, size_t len)
{
	if (len == 18 && memcmp(l, "postern-envelope 1", 18) == 0)
		return 1;
	if (len == 18 && memcmp(l, "postern-envelope 2", 18) == 0)
		return 2;
	if (len == 18 && memcmp(l, "postern-envelope 3", 18) == 0)
		return 3;
	return -1;
}

int
qenv_parse(const char *buf, size_t len, struct qenv *env,
	   const char **error_r)
{
	struct qenv_seen seen = {0};
	size_t lines = 0, off = 0;
	bool ended = false;
	char *o;

	memset(env, 0, sizeof(*env));
	*error_r = "malformed envelope";
	if (len == 0 || len > QENV_MAX || buf[len - 1] != '\n' ||
	    memchr(buf, '\0', len) != NULL)
		return -1;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	env->store = malloc(len + 1);
	env->remote = calloc(lines, sizeof(*env->remote));
	if (env->store == NULL || env->remote == NULL) {
		*error_r = "out of memory";
		goto fail;
	}
	o = env->store;
	while (off < len) {
		const char *l = buf + off, *nl = memchr(l, '\n', len - off);
		size_t llen = (size_t)(nl - l);

		off += llen + 1;
		if (ended)
			goto fail; /* nothing after `end` */
		if (seen.version == 0) {
			if ((seen.version = qenv_magic(l, llen)) < 0)
				goto fail;
		} else if (llen == 3 && memcmp(l, "end", 3) == 0) {
			ended = true;
		} else if (qenv_line(env, &seen, l, llen, &o) < 0) {
			goto fail;
		}
	}
	if (!ended || seen.id != 1 || seen.time != 1 || seen.size != 1 ||
	    seen.sender != 1 || env->n_remote == 0) {
		*error_r = env->n_remote == 0 && ended
			       ? "no remote recipient"
			       : "malformed envelope";
		goto fail;
	}
	return 0;
fail:
	qenv_free(env);
	return -1;
}

void
qenv_free(struct qenv *env)
{
	free(env->store);
	free(env->remote);
	memset(env, 0, sizeof(*env));
}
