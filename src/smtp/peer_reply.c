/*
 * peer_reply.c - the reader of a peer server's SMTP replies. See
 * peer_reply.h.
 */
#include "smtp/peer_reply.h"

#include <string.h>

void
peer_reply_init(struct peer_reply_parser *p)
{
	p->reply.code = 0;
	p->reply.status[0] = '\0';
	p->reply.text[0] = '\0';
	p->reply.text_len = 0;
	p->reply.n_lines = 0;
	p->reply.is_truncated = false;
	p->reply.has_bare_lf = false;
	p->line_len = 0;
	p->has_cr = false;
	p->is_done = false;
	p->error = PEER_REPLY_OK;
}

static bool
peer_reply_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* 1*3digit at s, up to len; returns its length or 0. */
static size_t
peer_reply_digits(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && n < 4 && peer_reply_digit(s[n]))
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/*
 * RFC 3463 2 (and RFC 2034 4): status-code = class "." subject "." detail,
 * class "2" / "4" / "5" equal to the reply's first digit, subject and
 * detail 1*3digit, then a space or the end of the line.
 */
static void
peer_reply_status(struct peer_reply *r, const char *t, size_t len)
{
	size_t a, b, n;

	if (len < 5 || t[0] != (char)('0' + r->code / 100) || t[1] != '.')
		return;
	a = peer_reply_digits(t + 2, len - 2);
	if (a == 0 || 2 + a >= len || t[2 + a] != '.')
		return;
	b = peer_reply_digits(t + 3 + a, len - 3 - a);
	n = 3 + a + b;
	if (b == 0 || (n < len && t[n] != ' '))
		return;
	memcpy(r->status, t, n);
	r->status[n] = '\0';
}

/* Keep a line's text, as much as there is room for. */
static void
peer_reply_keep(struct peer_reply *r, const char *t, size_t len)
{
	size_t room = PEER_REPLY_TEXT_MAX - r->text_len;

	if (r->n_lines > 0) {
		if (room == 0) {
			r->is_truncated = true;
			return;
		}
		r->text[r->text_len++] = '\n';
		room--;
	}
	if (len > room) {
		len = room;
		r->is_truncated = true;
	}
	memcpy(r->text + r->text_len, t, len);
	r->text_len += len;
	r->text[r->text_len] = '\0';
}

/*
 * One complete line (without its end). RFC 5321 4.2: Reply-code is
 * %x32-35 %x30-35 %x30-39; then "-" (more lines follow), " " or nothing
 * (the last line). Returns 1 for the last line, 0 for more, -1 on error.
 */
static int
peer_reply_judge(struct peer_reply_parser *p)
{
	const char *l = p->line;
	size_t len = p->line_len;
	unsigned code;

	if (len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' ||
	    !peer_reply_digit(l[2]) || (len > 3 && l[3] != '-' &&
					  l[3] != ' ')) {
		p->error = PEER_REPLY_SYNTAX;
		return -1;
	}
	code = (unsigned)(l[0] - '0') * 100 + (unsigned)(l[1] - '0') * 10 +
	       (unsigned)(l[2] - '0');
	if (p->reply.n_lines == 0) {
		p->reply.code = code;
	} else if (code != p->reply.code) {
		p->error = PEER_REPLY_CODE_MISMATCH; /* RFC 5321 4.2.1 */
		return -1;
	}
	if (p->reply.n_lines == PEER_REPLY_LINES_MAX) {
		p->error = PEER_REPLY_TOO_MANY_LINES;
		return -1;
	}
	if (len > 4) {
		if (p->reply.n_lines == 0)
			peer_reply_status(&p->reply, l + 4, len - 4);
		peer_reply_keep(&p->reply, l + 4, len - 4);
	} else {
		peer_reply_keep(&p->reply, "", 0);
	}
	p->reply.n_lines++;
	return len > 3 && l[3] == '-' ? 0 : 1;
}

/* The end of a line was reached: judge it. */
static enum peer_reply_result
peer_reply_eol(struct peer_reply_parser *p)
{
	int r = peer_reply_judge(p);

	p->line_len = 0;
	if (r < 0)
		return PEER_REPLY_ERROR;
	if (r > 0) {
		p->is_done = true;
		return PEER_REPLY_DONE;
	}
	return PEER_REPLY_MORE;
}

enum peer_reply_result
peer_reply_feed(struct peer_reply_parser *p, const char *buf, size_t len,
		  size_t *used_r)
{
	size_t i;

	*used_r = 0;
	if (p->error != PEER_REPLY_OK)
		return PEER_REPLY_ERROR;
	if (p->is_done)
		return PEER_REPLY_DONE;
	for (i = 0; i < len; i++) {
		char c = buf[i];

		if (c == '\n') {
			enum peer_reply_result r;

			p->reply.has_bare_lf |= !p->has_cr;
			p->has_cr = false;
			r = peer_reply_eol(p);
			if (r != PEER_REPLY_MORE) {
				*used_r = i + 1;
				return r;
			}
			continue;
		}
		if (p->has_cr) { /* a CR inside the line is text */
			p->has_cr = false;
			if (p->line_len == PEER_REPLY_LINE_MAX)
				goto too_long;
			p->line[p->line_len++] = '\r';
		}
		if (c == '\0') {
			p->error = PEER_REPLY_SYNTAX;
			*used_r = i + 1;
			return PEER_REPLY_ERROR;
		}
		if (c == '\r') {
			p->has_cr = true;
			continue;
		}
		if (p->line_len == PEER_REPLY_LINE_MAX)
			goto too_long;
		p->line[p->line_len++] = c;
	}
	*used_r = len;
	return PEER_REPLY_MORE;
too_long:
	p->error = PEER_REPLY_LINE_TOO_LONG;
	*used_r = i + 1;
	return PEER_REPLY_ERROR;
}

const char *
peer_reply_error_name(enum peer_reply_error error)
{
	switch (error) {
	case PEER_REPLY_OK:
		return "ok";
	case PEER_REPLY_LINE_TOO_LONG:
		return "line-too-long";
	case PEER_REPLY_TOO_MANY_LINES:
		return "too-many-lines";
	case PEER_REPLY_SYNTAX:
		return "syntax";
	case PEER_REPLY_CODE_MISMATCH:
		return "code-mismatch";
	}
	return "unknown";
}

const char *
peer_reply_error_text(enum peer_reply_error error)
{
	switch (error) {
	case PEER_REPLY_OK:
		return "no error";
	case PEER_REPLY_LINE_TOO_LONG:
		return "reply line too long";
	case PEER_REPLY_TOO_MANY_LINES:
		return "reply of too many lines";
	case PEER_REPLY_SYNTAX:
		return "reply line without a valid reply code, or with a NUL";
	case PEER_REPLY_CODE_MISMATCH:
		return "reply lines with different codes";
	}
	return "unknown error";
}

bool
peer_reply_line(const struct peer_reply *r, size_t i, const char **line_r,
		size_t *len_r)
{
	const char *p = r->text, *end = r->text + r->text_len, *nl;

	if (i >= r->n_lines)
		return false;
	for (; i > 0; i--) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return false; /* cut by PEER_REPLY_TEXT_MAX */
		p = nl + 1;
	}
	nl = memchr(p, '\n', (size_t)(end - p));
	*line_r = p;
	*len_r = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
	return true;
}

size_t
peer_reply_summary(const struct peer_reply *r, char *buf, size_t size)
{
	const char code[3] = {(char)('0' + r->code / 100 % 10),
			      (char)('0' + r->code / 10 % 10),
			      (char)('0' + r->code % 10)};
	size_t n = 0;

	if (size == 0)
		return 0;

	for (size_t i = 0; i < 3 && n + 1 < size; i++)
		buf[n++] = code[i];
	if (r->text_len > 0 && n + 1 < size)
		buf[n++] = ' ';
	for (size_t i = 0; i < r->text_len && n + 1 < size; i++) {
		unsigned char c = (unsigned char)r->text[i];

		if (c == '\n')
			c = ' ';
		else if (c < 0x20 || c > 0x7e)
			c = '?';
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return n;
}
