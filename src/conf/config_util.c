/*
 * config_util.c - what every part of the configuration reader uses:
 * allocation (fatal on failure: no server to run), "file:line: message"
 * reports, ASCII case helpers.
 */
#include "conf/config_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Allocation failure while configuring is fatal: no server to run. */
void *
config_xrealloc(void *ptr, size_t n, size_t size)
{
	void *p = reallocarray(ptr, n ? n : 1, size);

	if (p == NULL)
		abort();
	return p;
}

char *
config_xstrndup(const char *s, size_t len)
{
	char *p = strndup(s, len);

	if (p == NULL)
		abort();
	return p;
}

char *
config_xstrdup(const char *s)
{
	return config_xstrndup(s, strlen(s));
}

/* Report "file:line: message" at the current position. */
void
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

char *
config_lower_dup(const char *s, size_t len)
{
	char *d = config_xstrndup(s, len);

	for (size_t i = 0; i < len; i++)
		d[i] = config_ascii_lower(d[i]);
	return d;
}

/* ASCII case-insensitive order of two counted strings. */
int
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

/*
 * The path of FILE as written in the configuration file `base`: absolute,
 * or relative to the directory holding `base`.
 */
char *
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

/* The length of a domain argument without one trailing dot. */
size_t
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
