/*
 * spool_pool.c - data files kept for reuse (docs/durability.md, "Data
 * files are reused").
 *
 * A message's data file tmp/<id> is the only inode the spool frees per
 * message now that every Maildir gets a copy of its own; on ext4 freeing
 * an inode per message makes every later creation scan the inodes freed
 * in the last minutes (recently_deleted()). So a finished data file that
 * nothing else links to is emptied and renamed to tmp/.pool<n>, and the
 * next message renames it to its own id instead of creating a file. The
 * pool is only an optimisation: a file in it holds nothing, and recovery
 * removes any it finds.
 */
#include "store/spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/log.h"
#include "store/storefs.h"

/* tmp/.pool<seq>: the leading dot keeps it apart from every queue id. */
static const char *
spool_pool_name(char *buf, size_t size, unsigned seq)
{
	int n = snprintf(buf, size, SPOOL_POOL_PREFIX "%u", seq);

	if (n < 0 || (size_t)n >= size)
		abort(); /* a fixed format into a sized buffer */
	return buf;
}

/*
 * A data file for message id `id` from the pool: tmp/.pool<n> renamed to
 * tmp/<id> (never over an existing name) and opened for writing, empty.
 * Returns the descriptor, or -1 when the pool is empty or something
 * failed (the pool file is then dropped; the caller creates a file).
 * Loop thread.
 */
int
spool_pool_take(struct spool *sp, const char *id)
{
	char name[SPOOL_POOL_NAME_MAX];
	unsigned seq;
	int fd;

	pthread_mutex_lock(&sp->mu);
	if (sp->n_pool == 0) {
		pthread_mutex_unlock(&sp->mu);
		return -1;
	}
	seq = sp->pool[--sp->n_pool];
	pthread_mutex_unlock(&sp->mu);
	spool_pool_name(name, sizeof(name), seq);
	if (storefs.renameat(sp->tmp_fd, name, sp->tmp_fd, id,
			     RENAME_NOREPLACE) < 0) {
		storefs.unlinkat(sp->tmp_fd, name, 0);
		return -1;
	}
	fd = storefs.openat(sp->tmp_fd, id,
			    O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		storefs.unlinkat(sp->tmp_fd, id, 0);
	return fd;
}

/* Remove tmp/<name>, logging a failure (it is then swept by recovery). */
static void
spool_pool_unlink(struct spool *sp, const char *name)
{
	if (storefs.unlinkat(sp->tmp_fd, name, 0) < 0)
		log_warning("spool", "spool unlink-data error=%s",
			    spool_errname(errno));
}

/*
 * The data file tmp/<id> of a finished message is no longer needed: into
 * the pool, emptied (its blocks freed, so the pool holds no message and
 * no space), or removed when the pool is full or anything fails. Only for
 * a file no other name links to (not one linked into queue/). Committer
 * thread, step 8.
 */
void
spool_pool_put(struct spool *sp, const char *id)
{
	char name[SPOOL_POOL_NAME_MAX];
	bool full;
	int fd;

	pthread_mutex_lock(&sp->mu);
	full = sp->n_pool >= SPOOL_POOL_MAX;
	pthread_mutex_unlock(&sp->mu);
	if (full) {
		spool_pool_unlink(sp, id);
		return;
	}
	fd = storefs.openat(sp->tmp_fd, id,
			    O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0) {
		spool_pool_unlink(sp, id);
		return;
	}
	close(fd);
	spool_pool_name(name, sizeof(name), sp->pool_seq);
	if (storefs.renameat(sp->tmp_fd, id, sp->tmp_fd, name,
			     RENAME_NOREPLACE) < 0) {
		spool_pool_unlink(sp, id);
		return;
	}
	pthread_mutex_lock(&sp->mu);
	sp->pool[sp->n_pool++] = sp->pool_seq++;
	pthread_mutex_unlock(&sp->mu);
}

/* At close: every pool file removed, so a clean shutdown leaves none. */
void
spool_pool_drain(struct spool *sp)
{
	char name[SPOOL_POOL_NAME_MAX];

	while (sp->n_pool > 0)
		spool_pool_unlink(
		    sp, spool_pool_name(name, sizeof(name),
					sp->pool[--sp->n_pool]));
}
