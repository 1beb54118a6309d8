/*
 * probe_reply.c - the resumable SMTP reply reader of `postern probe`
 * (RFC 5321 section 4.2). A reply is one or more lines "ddd-text" ended by
 * "ddd text" or "ddd", each ending in CRLF (a lone LF is accepted and
 * noted: the probe reads broken servers too). The reader keeps the partial
 * line and the partial reply, so input may be split anywhere.
 */
#include "probe/probe_reply.h"

#include <string.h>

void
probe_reply_reader_init(struct probe_reply_reader *r)
{
	memset(r, 0, sizeof(*r));
}

static bool
probe_reply_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * RFC 3463 section 2: class "." subject "." detail, class 2, 4 or 5,
 * subject and detail 1 to 3 digits, followed by a space or the end.
 * Writes it to out (16 octets) or leaves out empty.
 */
static void
probe_reply_enhanced(const char *s, size_t len, char *out)
{
	size_t i = 0, part = 0, digits = 0;

	out[0] = '\0';
	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
		return;
	for (i = 0; i < len && s[i] != ' '; i++) {
		if (probe_reply_digit(s[i])) {
			if (++digits > 3 || (part == 0 && digits > 1))
				return;
		} else if (s[i] == '.' && digits > 0 && part < 2) {
			part++;
			digits = 0;
		} else {
			return;
		}
	}
	if (part != 2 || digits == 0 || i >= 16)
		return;
	memcpy(out, s, i);
	out[i] = '\0';
}

static enum probe_reply_status
probe_reply_fail(struct probe_reply_reader *r, const char *why,
		 const char **error_r)
{
	r->dead = true;
	r->error = why;
	*error_r = why;
	return PROBE_REPLY_ERROR;
}

/*
 * One whole line (CR or LF removed) into the reply. Returns 1 when it was
 * the last line, 0 when more lines follow, -1 on an error (r->error).
 */
static int
probe_reply_line_done(struct probe_reply_reader *r, bool bare_lf)
{
	struct probe_reply *rep = &r->reply;
	const char *l = r->line;
	size_t len = r->line_len, tlen;
	int code;
	bool last;

	if (len < 3 || !probe_reply_digit(l[0]) || !probe_reply_digit(l[1]) ||
	    !probe_reply_digit(l[2]) || l[0] < '2' || l[0] > '5') {
		r->error = "reply line does not start with a reply code";
		return -1;
	}
	if (len > 3 && l[3] != ' ' && l[3] != '-') {
		r->error = "reply code not followed by a space or '-'";
		return -1;
	}
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (rep->n_lines > 0 && code != rep->code) {
		r->error = "reply lines with different codes";
		return -1;
	}
	if (rep->n_lines >= PROBE_REPLY_LINES_MAX) {
		r->error = "reply of too many lines";
		return -1;
	}
	last = len == 3 || l[3] == ' ';
	tlen = len > 4 ? len - 4 : 0;
	if (rep->text_len + tlen + 2 > sizeof(rep->text)) {
		r->error = "reply text too long";
		return -1;
	}
	if (rep->n_lines > 0)
		rep->text[rep->text_len++] = '\n';
	else {
		rep->code = code;
		probe_reply_enhanced(l + 4, tlen, rep->enhanced);
	}
	if (tlen > 0)
		memcpy(rep->text + rep->text_len, l + 4, tlen);
	rep->text_len += tlen;
	rep->text[rep->text_len] = '\0';
	rep->n_lines++;
	rep->bare_lf |= bare_lf;
	r->line_len = 0;
	return last ? 1 : 0;
}

enum probe_reply_status
probe_reply_feed(struct probe_reply_reader *r, const unsigned char *data,
		 size_t len, size_t *used_r, struct probe_reply *reply_r,
		 const char **error_r)
{
	size_t i;
	int rc;

	*used_r = 0;
	*error_r = NULL;
	if (r->dead) {
		*error_r = r->error;
		return PROBE_REPLY_ERROR;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = data[i];

		if (c == '\0')
			return probe_reply_fail(r, "NUL in a reply", error_r);
		if (c != '\n') {
			/* The buffer holds one more octet: the CR of CRLF. */
			if (r->line_len > PROBE_REPLY_LINE_MAX)
				return probe_reply_fail(
				    r, "reply line too long", error_r);
			r->line[r->line_len++] = (char)c;
			continue;
		}
		/* LF: the line ends; a CR before it is part of the end. */
		bool bare =
		    r->line_len == 0 || r->line[r->line_len - 1] != '\r';

		if (!bare)
			r->line_len--;
		if (r->line_len > PROBE_REPLY_LINE_MAX)
			return probe_reply_fail(r, "reply line too long",
						error_r);
		rc = probe_reply_line_done(r, bare);
		if (rc < 0)
			return probe_reply_fail(r, r->error, error_r);
		if (rc == 1) {
			*used_r = i + 1;
			memcpy(reply_r, &r->reply, sizeof(*reply_r));
			memset(&r->reply, 0, sizeof(r->reply));
			return PROBE_REPLY_DONE;
		}
	}
	*used_r = len;
	return PROBE_REPLY_MORE;
}

bool
probe_reply_line(const struct probe_reply *reply, size_t i, const char **line_r,
		 size_t *len_r)
{
	const char *p = reply->text, *end = reply->text + reply->text_len;

	if (i >= reply->n_lines)
		return false;
	for (; i > 0; i--) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			return false;
		p = nl + 1;
	}
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	*line_r = p;
	*len_r = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
	return true;
}
