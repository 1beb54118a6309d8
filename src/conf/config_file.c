/*
 * config_file.c - a configuration file into lines and words: read it
 * whole (bounded), refuse control octets, split each line into words and
 * hand them to a line function with the position set for messages.
 */
#include "conf/config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
void
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
int
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
