/*
 * peer_reply.h - the reader of a peer server's SMTP replies (RFC 5321
 * 4.2), no I/O: one parser for every client postern has, the queue
 * process's SMTP client (src/outbound) and `postern probe` (src/probe).
 *
 * A reply is one or more lines "NNN-text" ... "NNN text" (RFC 5321
 * 4.2.1); the first line's text may begin with an enhanced status code
 * (RFC 2034, RFC 3463). The parser is resumable: its position lives in the
 * struct, so bytes may arrive split at any offset and the result is the
 * same. It consumes exactly the bytes of one reply and stops, so a caller
 * holding pipelined replies (RFC 2920) feeds the rest again for the next.
 *
 * Limits travel with the parser: a line longer than PEER_REPLY_LINE_MAX
 * octets, more than PEER_REPLY_LINES_MAX lines, or a malformed line is an
 * error and the connection is not to be trusted any further. Text beyond
 * PEER_REPLY_TEXT_MAX octets in all is dropped (reply.is_truncated).
 *
 * Lines end in CRLF; a bare LF is taken as a line end too (a CR before it
 * is dropped), as Postfix's client does, so that a sloppy server does not
 * make mail undeliverable. A NUL octet is an error.
 */
#ifndef POSTERN_PEER_REPLY_H
#define POSTERN_PEER_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1.5 allows 512 octets; we tolerate four times that. */
#define PEER_REPLY_LINE_MAX 2048 /* octets, code included, CRLF not */
#define PEER_REPLY_LINES_MAX 128 /* a long EHLO list stays well below */
#define PEER_REPLY_TEXT_MAX 16384 /* octets of text kept, LFs included */
#define PEER_REPLY_STATUS_MAX 12 /* "5.123.123" and NUL, rounded up */

struct peer_reply {
	unsigned code;				/* 200..559 */
	char status[PEER_REPLY_STATUS_MAX];	/* "5.1.1", or "" */
	/* The text of every line (after "NNN-" or "NNN "), lines joined by
	   LF, NUL-terminated; the enhanced status code stays in it. */
	char text[PEER_REPLY_TEXT_MAX + 1];
	size_t text_len;
	unsigned n_lines;
	bool is_truncated; /* text was dropped past PEER_REPLY_TEXT_MAX */
	bool has_bare_lf;  /* a line ended in LF without CR (the probe
			      reports it; the client tolerates it) */
};

enum peer_reply_error {
	PEER_REPLY_OK = 0,
	PEER_REPLY_LINE_TOO_LONG,
	PEER_REPLY_TOO_MANY_LINES,
	PEER_REPLY_SYNTAX,	    /* no valid code, bad separator, NUL */
	PEER_REPLY_CODE_MISMATCH, /* lines of one reply differ in code */
};

enum peer_reply_result {
	PEER_REPLY_MORE = 0, /* all input consumed, reply not complete */
	PEER_REPLY_DONE,     /* parser->reply is complete */
	PEER_REPLY_ERROR,    /* parser->error says why; stays so */
};

struct peer_reply_parser {
	struct peer_reply reply;
	char line[PEER_REPLY_LINE_MAX + 1]; /* the current line so far */
	size_t line_len;
	bool has_cr; /* the octet before the current one was CR */
	bool is_done;
	enum peer_reply_error error;
};

/* Start (or restart, after a reply was taken) with an empty state. */
void peer_reply_init(struct peer_reply_parser *p);

/*
 * Feed up to `len` octets. Stops right after the last line of a reply:
 * *used_r tells how many octets were consumed (all of them unless the
 * result is DONE). After DONE call peer_reply_init() before the next
 * reply; after ERROR the parser refuses everything.
 */
enum peer_reply_result peer_reply_feed(struct peer_reply_parser *p,
					   const char *buf, size_t len,
					   size_t *used_r);

/* A word for logs: "line-too-long", "too-many-lines", ... */
const char *peer_reply_error_name(enum peer_reply_error error);

/* The same as a phrase for a person: "reply line too long", ... */
const char *peer_reply_error_text(enum peer_reply_error error);

/* The i-th line of a reply's text (0-based) into *line_r and *len_r (not
   NUL-terminated); false when there is no such line. */
bool peer_reply_line(const struct peer_reply *r, size_t i,
		     const char **line_r, size_t *len_r);

/*
 * The reply's first line for a log or a DSN: "550 5.1.1 text", at most
 * `size` - 1 octets, every octet outside printable ASCII written as '?'.
 * Later lines are appended, separated by a space, while room remains.
 * Returns the length written.
 */
size_t peer_reply_summary(const struct peer_reply *r, char *buf,
			    size_t size);

#endif
