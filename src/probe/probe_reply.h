/*
 * probe_reply.h - a resumable reader of SMTP replies (RFC 5321 section
 * 4.2), for `postern probe`. No I/O: bytes in, whole replies out. Its
 * position lives in the reader, so any split of the input into pieces
 * gives the same replies. The server is hostile: every limit travels with
 * the reader and the text of a reply is kept as received (callers escape it
 * before printing).
 */
#ifndef POSTERN_PROBE_REPLY_H
#define POSTERN_PROBE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1.5 allows 512 octets a reply line; real servers send
   longer EHLO and banner lines, so the reader is lenient up to this. */
#define PROBE_REPLY_LINE_MAX 2048
#define PROBE_REPLY_LINES_MAX 128
#define PROBE_REPLY_TEXT_MAX 16384

struct probe_reply {
	int code;	   /* 200..599 (1xx is refused) */
	char enhanced[16]; /* RFC 3463 code on the first line ("5.7.1"),
			      or "" */
	size_t n_lines;
	/* The text of each line (after "250-" or "250 "), joined by '\n',
	   NUL-terminated; never holds NUL, nor LF but as the separator (a CR
	   not followed by LF is kept). */
	char text[PROBE_REPLY_TEXT_MAX];
	size_t text_len;
	bool bare_lf; /* some line ended with LF alone */
};

enum probe_reply_status {
	PROBE_REPLY_MORE = 0, /* every byte consumed, no whole reply yet */
	PROBE_REPLY_DONE,     /* a reply is complete */
	PROBE_REPLY_ERROR,    /* malformed input; the reader is dead */
};

struct probe_reply_reader {
	struct probe_reply reply; /* being assembled */
	char line[PROBE_REPLY_LINE_MAX + 1];
	size_t line_len;
	bool dead;
	const char *error;
};

void probe_reply_reader_init(struct probe_reply_reader *r);

/*
 * Feed data[0..len). Stops right after the first complete reply: then
 * returns PROBE_REPLY_DONE with the reply copied to *reply_r and *used_r
 * the number of octets consumed (the rest belongs to the next reply); the
 * reader is ready for the next reply. PROBE_REPLY_MORE: all octets
 * consumed. PROBE_REPLY_ERROR: a line is not "ddd", "ddd text" or
 * "ddd-text", the codes of a multiline reply differ, a line holds NUL, or a
 * limit above is passed; *error_r says which, and every later call fails
 * the same way.
 */
enum probe_reply_status probe_reply_feed(struct probe_reply_reader *r,
					 const unsigned char *data, size_t len,
					 size_t *used_r,
					 struct probe_reply *reply_r,
					 const char **error_r);

/* The i-th line of a reply's text (0-based) into *line_r and *len_r; false
   when there is no such line. */
bool probe_reply_line(const struct probe_reply *reply, size_t i,
		      const char **line_r, size_t *len_r);

#endif
