/*
 * spool_commit.c - the committer thread and the steps of a group commit
 * (docs/durability.md, "The steps of a commit"): prepare, sync, journal,
 * deliver into the Maildirs and publish queue entries, sync them, decide
 * and undo, hand the results to the loop.
 */
#include "store/spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "metrics/metrics.h"
#include "store/maildir.h"
#include "store/storefs.h"

static void
spool_fail(struct spool_msg *m, int step, int err)
{
	if (m->fail_step == 0) {
		m->fail_step = step;
		m->fail_errno = err;
	}
}

static bool
spool_live(const struct spool_msg *m)
{
	return m->fail_step == 0;
}

static unsigned
spool_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % SPOOL_CACHE_BUCKETS;
}

static void
spool_cache_reset(struct spool *sp)
{
	for (size_t i = 0; i < SPOOL_CACHE_BUCKETS; i++) {
		while (sp->cache[i] != NULL) {
			struct spool_md *md = sp->cache[i];

			sp->cache[i] = md->next;
			free(md);
		}
	}
	sp->n_cache = 0;
}

/*
 * Create the Maildir `path` as needed. With SYNC_FSYNC, also make its
 * directory entries durable: the Maildir's own (tmp/ new/ cur/) and those
 * of the Maildir and each parent in theirs, since step 5 fsyncs only
 * new/ (docs/durability.md). Directories made by someone else (the master
 * at start-up) are covered too. With syncfs, step 5's syncfs covers
 * them. 0 or -1 (errno).
 */
static int
spool_md_create(struct spool *sp, const char *path)
{
	if (maildir_create(path) < 0)
		return -1;
	return sp->sync == SYNC_FSYNC ? spool_fsync_path(path) : 0;
}

/*
 * The Maildir `path`, created (and made durable) if this spool has not
 * seen it yet. Cached with its device so that step 5 knows which file
 * systems to sync.
 */
static struct spool_md *
spool_cache_get(struct spool *sp, const char *path)
{
	unsigned h = spool_hash(path);
	struct spool_md *md;
	struct stat st;
	size_t len;

	for (md = sp->cache[h]; md != NULL; md = md->next)
		if (strcmp(md->path, path) == 0)
			return md;
	if (spool_md_create(sp, path) < 0 || stat(path, &st) < 0)
		return NULL;
	len = strlen(path);
	md = malloc(sizeof(*md) + len + 1);
	if (md == NULL)
		return NULL;
	memcpy(md->path, path, len + 1);
	md->dev = st.st_dev;
	md->gen = md->failed_gen = 0;
	md->next = sp->cache[h];
	sp->cache[h] = md;
	sp->n_cache++;
	return md;
}

/*
 * The copy of message `m` for its recipient `i` (the first one of its
 * Maildir): the Maildir found or created (and, with SYNC_FSYNC, made
 * durable on first use), then <maildir>/tmp/<name> written: the trace
 * header of that recipient, then the data, fsync'd with SYNC_FSYNC (with
 * syncfs, step 3 makes it durable). 0 or -1.
 */
static int
spool_msg_copy(struct spool *sp, struct spool_msg *m, size_t i, int src)
{
	const struct spool_rcpt *rc = &m->env.rcpts[i];
	bool do_fsync = sp->sync == SYNC_FSYNC;
	char head[MAILDIR_HEADER_MAX];
	size_t len;
	struct stat st;
	int r;

	m->mds[i] = spool_cache_get(sp, rc->maildir);
	if (m->mds[i] == NULL ||
	    maildir_trace_header(m->env.sender, rc->address, head,
				 sizeof(head), &len) < 0)
		return -1;
	r = maildir_write_tmp(rc->maildir, m->mdname, head, len, src, m->size,
			      do_fsync);
	if (r < 0 && errno == ENOENT && spool_md_create(sp, rc->maildir) == 0) {
		/* Removed since we cached it: created again. */
		if (stat(rc->maildir, &st) == 0)
			m->mds[i]->dev = st.st_dev;
		r = maildir_write_tmp(rc->maildir, m->mdname, head, len, src,
				      m->size, do_fsync);
	}
	if (r == 0)
		m->state[i] = SPOOL_RCPT_TMP;
	return r;
}

/*
 * The local recipients' copies, before the commit point, so that after
 * it a delivery is only a rename: one per Maildir (m->mds[i] for the
 * first recipient of each, NULL for a remote one or a repeated Maildir),
 * each its own file because each has its own Delivered-To. 0 or -1.
 */
static int
spool_msg_copies(struct spool *sp, struct spool_msg *m)
{
	int src = -1, r = 0, saved;

	for (size_t i = 0; i < m->env.n_rcpts && r == 0; i++) {
		const char *dir = m->env.rcpts[i].maildir;
		bool dup = dir == NULL; /* remote: the queue's */

		for (size_t j = 0; j < i && !dup; j++)
			dup = m->env.rcpts[j].maildir != NULL &&
			      strcmp(m->env.rcpts[j].maildir, dir) == 0;
		if (dup)
			continue; /* one copy per Maildir */
		if (src < 0)
			src = openat(sp->tmp_fd, m->id,
				     O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		r = src < 0 ? -1 : spool_msg_copy(sp, m, i, src);
	}
	saved = errno;
	if (src >= 0)
		close(src);
	errno = saved;
	return r;
}

/*
 * Step 1 for one message: its envelope formatted (for the commit record),
 * its data made durable with SYNC_FSYNC, its copies written into its
 * Maildirs' tmp/, and for remote recipients the first half of its queue
 * entry, queue/<id>.msg and .tmp.
 */
static int
spool_step_prepare(struct spool *sp, struct spool_msg *m)
{
	int r = 0;

	m->env.size = m->size;
	if (spool_env_format(&m->env, &m->env_text, &m->env_len) < 0)
		return -1;
	if (m->env_len > SPOOL_ENV_MAX) {
		errno = EFBIG; /* recovery would not read it back */
		return -1;
	}
	if (maildir_name(m->time, m->id, sp->hostname, m->mdname,
			 sizeof(m->mdname)) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (sp->sync == SYNC_FSYNC && m->fd >= 0)
		r = storefs.fsync(m->fd);
	spool_close_fd(&m->fd);
	if (r == 0)
		r = spool_msg_copies(sp, m);
	if (r == 0 && m->has_remote)
		r = spool_queue_prepare(sp->queue_fd, sp->tmp_fd, &m->env,
					sp->sync == SYNC_FSYNC, &m->q_msg,
					&m->q_tmp);
	return r;
}

static bool
spool_any_queued(struct spool_msg **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (spool_live(msgs[i]) && msgs[i]->has_remote)
			return true;
	return false;
}

/* Fail every live message of the batch (a batch-wide call failed). */
static void
spool_fail_all(struct spool_msg **msgs, size_t n, int step, int err)
{
	for (size_t i = 0; i < n; i++)
		if (spool_live(msgs[i]))
			spool_fail(msgs[i], step, err);
}

static bool
spool_any_live(struct spool_msg **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (spool_live(msgs[i]))
			return true;
	return false;
}

/*
 * Step 2, SYNC_FSYNC only: the directory entries of the data files (tmp/)
 * and of the queue parts (queue/) durable before any commit record is
 * written, so that a durable record always finds its data. (With syncfs
 * the one sync of step 3 covers them with the records.)
 */
static void
spool_step_sync_dirs(struct spool *sp, struct spool_msg **msgs, size_t n)
{
	if (sp->sync != SYNC_FSYNC || !spool_any_live(msgs, n))
		return;
	if (storefs.fsync(sp->tmp_fd) < 0) {
		spool_fail_all(msgs, n, 2, errno);
		return;
	}
	if (spool_any_queued(msgs, n) && storefs.fsync(sp->queue_fd) < 0)
		for (size_t i = 0; i < n; i++)
			if (spool_live(msgs[i]) && msgs[i]->has_remote)
				spool_fail(msgs[i], 2, errno);
}

/* A descriptor on file system `dev` for syncfs(); *tmp when not kept. */
static int
spool_dev_fd(struct spool *sp, const struct spool_md *md, bool *tmp)
{
	int fd;

	*tmp = false;
	for (size_t i = 0; i < sp->n_devs; i++)
		if (sp->devs[i].dev == md->dev)
			return sp->devs[i].fd;
	fd = storefs.openat(AT_FDCWD, md->path, SPOOL_DIR_FLAGS, 0);
	if (fd < 0)
		return -1;
	if (sp->n_devs < SPOOL_DEVS_MAX) {
		sp->devs[sp->n_devs].dev = md->dev;
		sp->devs[sp->n_devs++].fd = fd;
	} else {
		*tmp = true;
	}
	return fd;
}

/* One file system synced by step 3 or 5 of this batch, and how it went. */
struct spool_synced {
	dev_t dev;
	int r;
};

/*
 * syncfs() the file system of `md` unless this batch did already; the
 * result is remembered per file system, because a write-back error is
 * reported only once and every Maildir on that file system must see it.
 */
static int
spool_syncfs_md(struct spool *sp, const struct spool_md *md,
		struct spool_synced *done, size_t *n_done)
{
	bool tmp;
	int fd, r, saved;

	for (size_t i = 0; i < *n_done; i++)
		if (done[i].dev == md->dev)
			return done[i].r;
	fd = spool_dev_fd(sp, md, &tmp);
	r = fd < 0 ? -1 : storefs.syncfs(fd);
	saved = errno;
	if (fd >= 0 && tmp)
		close(fd);
	if (*n_done < SPOOL_BATCH_MAX) {
		done[*n_done].dev = md->dev;
		done[(*n_done)++].r = r;
	}
	errno = saved;
	return r;
}

/*
 * Step 3, syncfs: the copies written into Maildirs on file systems other
 * than the spool's are made durable with the records (the spool's own is
 * synced by the caller). 0 or -1.
 */
static int
spool_sync_copies(struct spool *sp, struct spool_msg **msgs, size_t n)
{
	struct spool_synced done[SPOOL_BATCH_MAX];
	size_t n_done = 0;

	for (size_t i = 0; i < n; i++) {
		struct spool_msg *m = msgs[i];

		for (size_t j = 0; spool_live(m) && j < m->env.n_rcpts; j++)
			if (m->state[j] == SPOOL_RCPT_TMP &&
			    m->mds[j]->dev != sp->area_dev &&
			    spool_syncfs_md(sp, m->mds[j], done, &n_done) < 0)
				return -1;
	}
	return 0;
}

/*
 * Step 3: one commit record per live message, appended with one write,
 * then the one sync that makes the data files, the Maildir copies, the
 * queue parts and the records durable together: syncfs of the spool file
 * system (and of the queue's and the Maildirs' when they are others), or
 * fsync of the journal (the data, the copies and the directories were
 * fsync'd by steps 1 and 2). The sync returning is the
 * commit point of every message of the batch.
 */
static void
spool_step_journal(struct spool *sp, struct spool_msg **msgs, size_t n)
{
	size_t n_rec = 0;
	int r;

	if (!spool_any_live(msgs, n))
		return;
	if ((sp->j_bad && spool_journal_repair(sp) < 0) ||
	    spool_journal_start(sp) < 0) {
		spool_fail_all(msgs, n, 3, errno);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct spool_msg *m = msgs[i];

		if (!spool_live(m))
			continue;
		if (spool_journal_add(&sp->j_buf, "commit", m->id, m->env_text,
				      m->env_len) < 0) {
			spool_fail_all(msgs, n, 3, errno);
			return;
		}
		n_rec++;
	}
	if (spool_journal_append(sp) < 0) {
		spool_fail_all(msgs, n, 3, errno);
		return;
	}
	sp->j_pending += n_rec;
	for (size_t i = 0; i < n; i++)
		if (spool_live(msgs[i]))
			msgs[i]->committed = true;
	if (sp->sync == SYNC_FSYNC)
		r = storefs.fsync(sp->journal_fd);
	else
		r = storefs.syncfs(sp->area_fd);
	if (r == 0 && sp->sync == SYNC_SYNCFS && sp->queue_other_fs &&
	    spool_any_queued(msgs, n))
		r = storefs.syncfs(sp->queue_fd);
	if (r == 0 && sp->sync == SYNC_SYNCFS)
		r = spool_sync_copies(sp, msgs, n);
	if (r < 0)
		spool_fail_all(msgs, n, 3, errno);
}

/* Steps 1-3: prepared, durable, committed. */
static void
spool_steps_commit(struct spool *sp, struct spool_msg **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (spool_live(msgs[i]) && spool_step_prepare(sp, msgs[i]) < 0)
			spool_fail(msgs[i], 1, errno);
	spool_step_sync_dirs(sp, msgs, n);
	spool_step_journal(sp, msgs, n);
}

/*
 * Step 4 for one message: move its copies from tmp/ to new/ in every
 * local recipient's Maildir, then publish its queue entry if it has
 * remote recipients.
 */
static void
spool_step_deliver(struct spool *sp, struct spool_msg *m)
{
	for (size_t i = 0; i < m->env.n_rcpts && spool_live(m); i++) {
		int r;

		if (m->state[i] != SPOOL_RCPT_TMP)
			continue; /* remote, or a Maildir seen before */
		r = maildir_publish(m->env.rcpts[i].maildir, m->mdname);
		if (r < 0) {
			spool_fail(m, 4, errno);
			break;
		}
		m->state[i] =
		    r == 0 ? SPOOL_RCPT_DELIVERED : SPOOL_RCPT_PRESENT;
		m->mds[i]->gen = sp->gen;
	}
	if (spool_live(m) && m->has_remote) {
		if (spool_queue_publish(sp->queue_fd, m->id) < 0) {
			spool_fail(m, 4, errno);
			return;
		}
		m->q_tmp = false;
		m->q_env = true;
	}
}

/* fsync() new/ of one Maildir (SYNC_FSYNC); 0 or -1. */
static int
spool_fsync_new(const struct spool_md *md)
{
	int dfd, fd, r, saved;

	dfd = storefs.openat(AT_FDCWD, md->path, SPOOL_DIR_FLAGS, 0);
	if (dfd < 0)
		return -1;
	fd = storefs.openat(dfd, "new", SPOOL_DIR_FLAGS, 0);
	saved = errno;
	close(dfd);
	errno = saved;
	if (fd < 0)
		return -1;
	r = storefs.fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* Is a recipient's copy in new/ (by this batch or before)? */
static bool
spool_rcpt_published(unsigned char state)
{
	return state == SPOOL_RCPT_DELIVERED || state == SPOOL_RCPT_PRESENT;
}

/*
 * Step 5: make the deliveries and queue entries durable. syncfs() once
 * per file system, or fsync() of each new/ touched and of queue/; a
 * message with a delivery under a Maildir, or a queue entry, whose sync
 * failed fails.
 */
static void
spool_step_sync_maildirs(struct spool *sp, struct spool_msg **msgs, size_t n)
{
	struct spool_synced done[SPOOL_BATCH_MAX];
	size_t n_done = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		struct spool_msg *m = msgs[i];

		for (size_t j = 0; j < m->env.n_rcpts; j++) {
			struct spool_md *md = m->mds[j];

			if (!spool_rcpt_published(m->state[j]) ||
			    md->gen != sp->gen)
				continue;
			/* Each Maildir once per batch: mark it seen. */
			md->gen = sp->gen - 1;
			if (sp->sync == SYNC_FSYNC)
				r = spool_fsync_new(md);
			else
				r = spool_syncfs_md(sp, md, done, &n_done);
			if (r < 0) {
				md->failed_gen = sp->gen;
				log_error("spool",
					  "spool sync-maildir error=%s",
					  spool_errname(errno));
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!msgs[i]->q_env)
			continue;
		r = sp->sync == SYNC_FSYNC
			? storefs.fsync(sp->queue_fd)
			: spool_syncfs_md(sp, sp->queue_md, done, &n_done);
		if (r < 0) {
			log_error("spool", "spool sync-queue error=%s",
				  spool_errname(errno));
			for (size_t j = 0; j < n; j++)
				if (msgs[j]->q_env)
					spool_fail(msgs[j], 5, EIO);
		}
		break; /* once per batch */
	}
	for (size_t i = 0; i < n; i++) {
		struct spool_msg *m = msgs[i];

		for (size_t j = 0; j < m->env.n_rcpts; j++)
			if (spool_rcpt_published(m->state[j]) &&
			    m->mds[j]->failed_gen == sp->gen)
				spool_fail(m, 5, EIO);
	}
}

/* unlinkat() where a name already gone counts as success. */
static bool
spool_unlink_ok(int dfd, const char *name)
{
	return storefs.unlinkat(dfd, name, 0) == 0 || errno == ENOENT;
}

/*
 * Step 6 for a failed message: the client will hear 451 and send it
 * again, so everything this batch did for it is taken back - its queue
 * entry and its copies (in new/, or still in tmp/) first, then its data;
 * a committed message then
 * owes a done record. If a removal fails, a committed message is instead
 * left whole for recovery (data kept, no done record), which will deliver
 * it everywhere: a duplicate of a message never acknowledged, rather than
 * a partial one. The same holds when the undo is cut short by a crash.
 */
static void
spool_undo(struct spool *sp, struct spool_msg *m)
{
	char name[SPOOL_QNAME_MAX];
	bool ok = true;

	log_warning(m->id, "spool commit-failed step=%d error=%s", m->fail_step,
		    spool_errname(m->fail_errno));
	/* The queue entry first: .env (a reader may have seen it: a
	   duplicate of an unacknowledged message at worst), then its parts. */
	if (m->q_env)
		ok = spool_unlink_ok(sp->queue_fd,
				     spool_qname(name, m->id, ".env"));
	if (m->q_tmp && ok)
		ok = spool_unlink_ok(sp->queue_fd,
				     spool_qname(name, m->id, ".tmp"));
	if (m->q_msg && ok)
		ok = spool_unlink_ok(sp->queue_fd,
				     spool_qname(name, m->id, ".msg"));
	for (size_t i = 0; i < m->env.n_rcpts && ok; i++) {
		const char *sub = m->state[i] == SPOOL_RCPT_TMP	      ? "tmp"
				  : m->state[i] == SPOOL_RCPT_DELIVERED ? "new"
									: NULL;

		if (sub != NULL)
			ok = maildir_remove(m->env.rcpts[i].maildir, sub,
					    m->mdname) == 0;
	}
	spool_close_fd(&m->fd);
	if (!ok && m->committed) {
		m->keep = true;
		log_error(m->id, "spool undo-incomplete: left for recovery");
		return;
	}
	storefs.unlinkat(sp->tmp_fd, m->id, 0);
}

/*
 * Steps 1-6 for one batch; step 7 is the caller's, and step 8
 * (spool_journal_settle) comes after it. Here the batch's done records
 * are queued and the data files to remove listed, because the messages
 * belong to the loop thread from step 7 on.
 */
static void
spool_commit_batch(struct spool *sp, struct spool_msg **msgs, size_t n)
{
	sp->gen += 2; /* gen - 1 marks "synced in this batch" */
	if (sp->n_cache > SPOOL_CACHE_MAX)
		spool_cache_reset(sp);
	for (size_t i = 0; i < n; i++) {
		struct spool_msg *m = msgs[i];

		m->result = -1;
		if (m->error != 0)
			spool_fail(m, 1, m->error);
		else if (m->env.n_rcpts == 0)
			spool_fail(m, 1, EINVAL);
	}
	spool_steps_commit(sp, msgs, n);
	for (size_t i = 0; i < n; i++)
		if (spool_live(msgs[i]))
			spool_step_deliver(sp, msgs[i]);
	spool_step_sync_maildirs(sp, msgs, n);
	sp->n_done_ids = 0;
	for (size_t i = 0; i < n; i++) {
		struct spool_msg *m = msgs[i];

		free(m->env_text);
		m->env_text = NULL;
		if (spool_live(m)) {
			m->result = 0;
			/* Reused unless queue/<id>.msg is the same inode. */
			sp->done_reuse[sp->n_done_ids] = !m->has_remote;
			memcpy(sp->done_ids[sp->n_done_ids++], m->id,
			       sizeof(m->id));
		} else {
			spool_undo(sp, m);
		}
		if (m->committed && !m->keep)
			spool_journal_owe_done(sp, m->id);
	}
}

void *
spool_committer(void *arg)
{
	struct spool *sp = arg;
	struct spool_msg *batch[SPOOL_BATCH_MAX];
	const uint64_t one = 1;

	for (;;) {
		size_t n = 0;

		pthread_mutex_lock(&sp->mu);
		while (!sp->stopping && (sp->paused || sp->pend_head == NULL))
			pthread_cond_wait(&sp->cv, &sp->mu);
		while (n < SPOOL_BATCH_MAX && sp->pend_head != NULL) {
			batch[n++] = sp->pend_head;
			sp->pend_head = sp->pend_head->next;
		}
		if (sp->pend_head == NULL)
			sp->pend_tail = NULL;
		pthread_mutex_unlock(&sp->mu);
		double t0 = metrics_now();

		if (n == 0)
			break; /* stopping, nothing left */
		spool_commit_batch(sp, batch, n);
		metrics_observe(MH_SPOOL_COMMIT, metrics_now() - t0);
		/* Step 7: hand the results to the loop thread. */
		for (size_t i = 0; i + 1 < n; i++)
			batch[i]->next = batch[i + 1];
		batch[n - 1]->next = NULL;
		pthread_mutex_lock(&sp->mu);
		if (sp->done_tail != NULL)
			sp->done_tail->next = batch[0];
		else
			sp->done_head = batch[0];
		sp->done_tail = batch[n - 1];
		pthread_mutex_unlock(&sp->mu);
		if (write(sp->event_fd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			log_error("spool", "spool eventfd error=%s",
				  spool_errname(errno));
		spool_journal_settle(sp, spool_journal_max);
	}
	return NULL;
}
