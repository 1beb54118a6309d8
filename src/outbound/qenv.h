/*
 * qenv.h - reading a queue envelope, <spool>/queue/<id>.env (format in
 * docs/queue-format.md: `postern-envelope 1`, `2` or `3`), no I/O.
 *
 * XXX: a second reader of the format written by store/spool_env.c, kept
 * to the documented rules; use the store's own parser once store/
 * exposes it.
 */
#ifndef POSTERN_QENV_H
#define POSTERN_QENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QENV_MAX (4u << 20) /* largest envelope read */

struct qenv {
	char id[24];
	int64_t time;
	uint64_t size;
	char *sender; /* "" for the null sender */
	char *auth;   /* NULL: none */
	bool hold;    /* version 3 `hold send-burst`: held at arrival */
	char **remote; /* remote recipients, in RCPT order */
	size_t n_remote;
	char *store;   /* one allocation behind the strings */
};

/*
 * Parse an envelope held in buf. Every rule of the format is checked
 * (magic, known keys, counts, canonical escapes and numbers, `end` last,
 * the final LF); `rcpt` lines (local recipients, delivered at commit) are
 * skipped. 0, or -1 with *error_r.
 */
int qenv_parse(const char *buf, size_t len, struct qenv *env,
	       const char **error_r);
void qenv_free(struct qenv *env);

#endif
