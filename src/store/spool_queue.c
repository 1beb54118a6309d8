/*
 * spool_queue.c - the spool's side of the outbound queue
 * (docs/queue-format.md): the entry's parts before the commit point, and
 * its publication after it.
 */
#include "store/spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/storefs.h"

/* queue/<id><suffix>: ".msg", ".tmp" or ".env". */
const char *
spool_qname(char *buf, const char *id, const char *suffix)
{
	int n = snprintf(buf, SPOOL_QNAME_MAX, "%s%s", id, suffix);

	if (n < 0 || n >= SPOOL_QNAME_MAX)
		abort(); /* ids are checked: cannot happen */
	return buf;
}

/*
 * The queue envelope: `env` with only its remote recipients (and so always
 * version 2). Formatted into a new buffer; 0 or -1.
 */
int
spool_queue_env(const struct spool_env *env, char **buf_r, size_t *len_r)
{
	struct spool_env q = *env;
	int r;

	q.rcpts = calloc(env->n_rcpts + 1, sizeof(*q.rcpts));
	if (q.rcpts == NULL)
		return -1;
	q.n_rcpts = 0;
	for (size_t i = 0; i < env->n_rcpts; i++)
		if (env->rcpts[i].maildir == NULL)
			q.rcpts[q.n_rcpts++] = env->rcpts[i];
	r = spool_env_format(&q, buf_r, len_r);
	free(q.rcpts);
	return r;
}

/*
 * The first half of a queue entry, before the commit point: queue/<id>.msg
 * as a hard link of the data file tmp/<id> (dirfd `tfd`; a copy across file
 * systems) and the queue envelope written to queue/<id>.tmp, fsync'd when
 * `do_fsync`. Neither name is one a reader of the queue looks at; the
 * entry appears only with the rename of .tmp to .env (spool_queue_publish),
 * after both are durable. *msg_r and *tmp_r tell what was created, for the
 * undo. 0 or -1 (errno).
 */
int
spool_queue_prepare(int qfd, int tfd, const struct spool_env *env,
		    bool do_fsync, bool *msg_r, bool *tmp_r)
{
	char name[SPOOL_QNAME_MAX], *buf;
	size_t len;
	int fd, r, saved;

	spool_qname(name, env->id, ".msg");
	r = storefs.linkat(tfd, env->id, qfd, name, 0);
	if (r < 0 && errno == EXDEV)
		r = spool_copy(tfd, env->id, qfd, name);
	if (r < 0)
		return -1;
	*msg_r = true;
	if (spool_queue_env(env, &buf, &len) < 0)
		return -1;
	fd = storefs.openat(qfd, spool_qname(name, env->id, ".tmp"),
			     SPOOL_NEW_FLAGS, 0600);
	r = -1;
	if (fd >= 0) {
		*tmp_r = true;
		r = storefs_write_all(fd, buf, len);
		if (r == 0 && do_fsync)
			r = storefs.fsync(fd);
		saved = errno;
		close(fd);
		errno = saved;
	}
	free(buf);
	return r;
}

/* The entry appears: queue/<id>.tmp renamed to queue/<id>.env. */
int
spool_queue_publish(int qfd, const char *id)
{
	char from[SPOOL_QNAME_MAX], to[SPOOL_QNAME_MAX];

	return storefs.renameat(qfd, spool_qname(from, id, ".tmp"), qfd,
				 spool_qname(to, id, ".env"), RENAME_NOREPLACE);
}
