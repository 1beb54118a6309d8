/*
 * mailpath.c - safe path parts and the maildir template (THREATS F-01):
 * the only way an address becomes part of a path.
 */
#include "conf/mailpath.h"

#include <string.h>

#define MAILPATH_PART_MAX 255

static bool
mailpath_part_char(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c == '.' || c == '_' || c == '+' || c == '-' || c == '=';
}

/*
 * THREATS F-01: a part that could leave the Maildir root (or name a hidden
 * Maildir++ folder) is refused, never rewritten.
 */
bool
mailpath_check_part(const char *part, size_t len)
{
	if (part == NULL || len == 0 || len > MAILPATH_PART_MAX)
		return false;
	if (part[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!mailpath_part_char((unsigned char)part[i]))
			return false;
		if (part[i] == '.' && i + 1 < len && part[i + 1] == '.')
			return false;
	}
	return true;
}

/* Append `len` bytes to buf at *o, keeping room for the NUL. */
static int
mailpath_append(char *buf, size_t size, size_t *o, const char *s, size_t len)
{
	if (len >= size - *o)
		return -1;
	memcpy(buf + *o, s, len);
	*o += len;
	return 0;
}

/*
 * Expand %d, %n and %% in `tmpl`. Both parts are checked first, whether or
 * not the template uses them, so a bad address never gets further.
 */
int
mailpath_expand(const char *tmpl, const char *local, const char *domain,
	       char *buf, size_t size)
{
	size_t o = 0;

	if (tmpl == NULL || local == NULL || domain == NULL || buf == NULL ||
	    size == 0)
		return -1;
	buf[0] = '\0';
	if (!mailpath_check_part(local, strlen(local)) ||
	    !mailpath_check_part(domain, strlen(domain)))
		return -1;
	for (const char *p = tmpl; *p != '\0'; p++) {
		const char *s = p;
		size_t len = 1;

		if (*p == '%') {
			p++;
			if (*p == 'd')
				s = domain;
			else if (*p == 'n')
				s = local;
			else if (*p == '%')
				s = "%";
			else
				goto fail; /* unknown sequence or lone '%' */
			len = strlen(s);
		}
		if (mailpath_append(buf, size, &o, s, len) < 0)
			goto fail;
	}
	buf[o] = '\0';
	return 0;
fail:
	buf[0] = '\0';
	return -1;
}
