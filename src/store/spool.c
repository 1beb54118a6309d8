/*
 * spool.c - durable acceptance of messages (docs/durability.md).
 *
 * Layout under the spool directory:
 *   <area>/tmp/<id>           message data while it arrives (and until its
 *                             commit is finished)
 *   <area>/journal            append-only commit log of the area: a
 *                             "commit" record (the envelope) per message,
 *                             whose durability is the commit point, and a
 *                             "done" record once it needs no recovery
 *   queue/<id>.msg            outbound queue (docs/queue-format.md): the
 *   queue/<id>.tmp            data (a hard link), the queue envelope being
 *   queue/<id>.env            written, and the same renamed into place
 *   quarantine/               corrupt files found by recovery
 *   (<area>/committed/<id>    the envelope files of the layout before the
 *                             journal: recovery still finishes them)
 *
 * The event-loop thread creates and writes data files. One committer thread
 * per spool writes each recipient's copy (trace fields, then the data)
 * into its Maildir's tmp/, appends a batch of commit records to the
 * journal, makes them, the data and the copies durable with one sync,
 * moves the copies into new/ and makes that durable with one more (group
 * commit), hands the results back through an eventfd (spool_commit_fd),
 * then appends "done" records and removes the data files.
 *
 * This file: opening and closing a spool, and the loop thread's side of a
 * message (begin, write, commit, reap). The other parts are listed in
 * spool_int.h.
 */
#include "store/spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/log.h"
#include "store/storefs.h"

static unsigned spool_counter; /* per process, atomic */

/*
 * Open (creating) <root>/queue, shared by every area, and remember its
 * device: step 5 syncs it like a Maildir, and when it is a file system of
 * its own (a mount point), step 3 syncs it too.
 */
static int
spool_open_queue(struct spool *sp, const char *root, int root_fd)
{
	struct stat qst, ast;
	size_t len = strlen(root) + sizeof("/queue");
	int n;

	sp->queue_fd = spool_open_dir(root_fd, "queue");
	if (sp->queue_fd < 0 || fstat(sp->queue_fd, &qst) < 0 ||
	    fstat(sp->area_fd, &ast) < 0)
		return -1;
	sp->area_dev = ast.st_dev;
	sp->queue_other_fs = qst.st_dev != ast.st_dev;
	sp->queue_md = calloc(1, sizeof(*sp->queue_md) + len);
	if (sp->queue_md == NULL)
		return -1;
	n = snprintf(sp->queue_md->path, len, "%s/queue", root);
	if (n < 0 || (size_t)n >= len)
		return -1;
	sp->queue_md->dev = qst.st_dev;
	return 0;
}

/*
 * Open the area of this process and start its committer. The spool
 * directory is made absolute (realpath) so that its path stays valid
 * whatever the process's working directory becomes.
 * The new directory entries (area, tmp/, journal, queue/, and the spool
 * directory itself in its parents) are made durable here, once, so that
 * no batch has to.
 */
int
spool_open(const char *dir, const char *area, const char *hostname,
	   enum sync_method sync, struct spool **spool_r, const char **error_r)
{
	struct spool *sp;
	char *root = NULL, path[SPOOL_PATH_MAX];
	int root_fd = -1, n;
	sigset_t all, old;

	*spool_r = NULL;
	*error_r = "invalid area name";
	if (!spool_area_ok(area))
		return -1;
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	sp->area_fd = sp->tmp_fd = sp->event_fd = -1;
	sp->queue_fd = sp->journal_fd = -1;
	sp->sync = sync;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	*error_r = "cannot create the spool directory";
	if (storefs.mkdirat(AT_FDCWD, dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	root = realpath(dir, NULL);
	*error_r = "cannot open the spool directory";
	if (root == NULL)
		goto fail;
	root_fd = storefs.openat(AT_FDCWD, root, SPOOL_DIR_FLAGS, 0);
	if (root_fd < 0)
		goto fail;
	*error_r = "cannot create the spool area";
	sp->area_fd = spool_open_dir(root_fd, area);
	if (sp->area_fd < 0)
		goto fail;
	sp->tmp_fd = spool_open_dir(sp->area_fd, "tmp");
	if (sp->tmp_fd < 0 || spool_journal_open(sp, error_r) < 0)
		goto fail;
	*error_r = "cannot create the queue directory";
	if (spool_open_queue(sp, root, root_fd) < 0)
		goto fail;
	/* The area's entries (tmp/, journal), the spool's (area, queue/)
	   and the spool directory's own, up to "/": durable before any
	   commit, with either sync method. */
	*error_r = "cannot sync the spool area";
	if (storefs.fsync(sp->area_fd) < 0 || spool_fsync_path(root) < 0)
		goto fail;
	n = snprintf(path, sizeof(path), "%s/%s", root, area);
	*error_r = "spool path too long";
	if (n < 0 || (size_t)n >= sizeof(path) - SPOOL_ID_MAX - 8)
		goto fail;
	sp->area_path = strdup(path);
	sp->hostname = strdup(hostname != NULL ? hostname : "localhost");
	sp->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	*error_r = "out of resources";
	if (sp->area_path == NULL || sp->hostname == NULL || sp->event_fd < 0)
		goto fail;
	/* Signals stay with the loop thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	n = pthread_create(&sp->thread, NULL, spool_committer, sp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	*error_r = "cannot start the committer thread";
	if (n != 0)
		goto fail;
	sp->has_thread = true;
	close(root_fd);
	free(root);
	*spool_r = sp;
	return 0;
fail:
	if (root_fd >= 0)
		close(root_fd);
	free(root);
	spool_close(&sp);
	return -1;
}

static void
spool_msg_free(struct spool_msg *m)
{
	spool_close_fd(&m->fd);
	spool_env_free(&m->env);
	free(m->env_text);
	free(m->auth);
	free(m->mds);
	free(m->state);
	free(m);
}

/*
 * Stop the committer after it has finished every pending commit. Finished
 * commits that were never reaped are freed without their callbacks (the
 * caller has stopped caring; the messages stay delivered). Done records
 * still owed are appended and an idle journal is truncated, so that a
 * clean shutdown leaves nothing to recover. Messages begun and neither
 * committed nor aborted must not exist at this point.
 */
void
spool_close(struct spool **spool)
{
	struct spool *sp = *spool;

	if (sp == NULL)
		return;
	*spool = NULL;
	if (sp->has_thread) {
		pthread_mutex_lock(&sp->mu);
		sp->stopping = true;
		sp->paused = false;
		pthread_cond_broadcast(&sp->cv);
		pthread_mutex_unlock(&sp->mu);
		pthread_join(sp->thread, NULL);
	}
	while (sp->done_head != NULL) {
		struct spool_msg *m = sp->done_head;

		sp->done_head = m->next;
		spool_msg_free(m);
	}
	if (sp->journal_fd >= 0 && sp->has_thread)
		spool_journal_finish(sp);
	if (sp->tmp_fd >= 0)
		spool_pool_drain(sp);
	for (size_t i = 0; i < SPOOL_CACHE_BUCKETS; i++) {
		while (sp->cache[i] != NULL) {
			struct spool_md *md = sp->cache[i];

			sp->cache[i] = md->next;
			free(md);
		}
	}
	for (size_t i = 0; i < sp->n_devs; i++)
		close(sp->devs[i].fd);
	spool_close_fd(&sp->area_fd);
	spool_close_fd(&sp->tmp_fd);
	spool_close_fd(&sp->journal_fd);
	spool_buf_free(&sp->j_owed);
	spool_buf_free(&sp->j_buf);
	spool_close_fd(&sp->queue_fd);
	spool_close_fd(&sp->event_fd);
	free(sp->queue_md);
	pthread_cond_destroy(&sp->cv);
	pthread_mutex_destroy(&sp->mu);
	free(sp->area_path);
	free(sp->hostname);
	free(sp);
}

/* ---- messages (loop thread) ---------------------------------------------- */

/*
 * A queue id unique across processes and restarts: seconds (9 hex
 * digits), microseconds (5), pid (6, pid_max is at most 2^22) and a
 * per-process counter (3), 23 characters of [0-9a-f]. O_EXCL catches the
 * impossible collision and the caller tries again.
 */
static int
spool_make_id(char *buf, size_t size, long *time_r)
{
	struct timeval tv;
	unsigned c = __atomic_fetch_add(&spool_counter, 1, __ATOMIC_RELAXED);
	int n;

	gettimeofday(&tv, NULL);
	n = snprintf(buf, size, "%09llx%05lx%06lx%03x",
		     (unsigned long long)tv.tv_sec & 0xfffffffffULL,
		     (unsigned long)tv.tv_usec & 0xfffffUL,
		     (unsigned long)getpid() & 0xffffffUL, c & 0xfffU);
	if (n < 0 || (size_t)n >= size)
		return -1;
	*time_r = (long)tv.tv_sec;
	return 0;
}

int
spool_msg_begin(struct spool *sp, struct spool_msg **msg_r)
{
	struct spool_msg *m;

	*msg_r = NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -1;
	m->sp = sp;
	m->fd = -1;
	for (int attempt = 0; attempt < 4 && m->fd < 0; attempt++) {
		if (spool_make_id(m->id, sizeof(m->id), &m->time) < 0)
			break;
		if (attempt == 0)
			m->fd = spool_pool_take(sp, m->id);
		if (m->fd < 0)
			m->fd = storefs.openat(sp->tmp_fd, m->id,
					       SPOOL_NEW_FLAGS, 0600);
		if (m->fd < 0 && errno != EEXIST)
			break;
	}
	if (m->fd < 0) {
		log_error("spool", "spool begin error=%s",
			  spool_errname(errno));
		free(m);
		return -1;
	}
	*msg_r = m;
	return 0;
}

const char *
spool_msg_id(const struct spool_msg *msg)
{
	return msg->id;
}

/* Plain write(2): the data sits in the page cache until the group sync. */
int
spool_msg_write(struct spool_msg *msg, const void *buf, size_t len)
{
	if (msg->error != 0)
		return -1;
	if (storefs_write_all(msg->fd, buf, len) < 0) {
		msg->error = errno;
		log_warning(msg->id, "spool write error=%s",
			    spool_errname(errno));
		return -1;
	}
	msg->size += len;
	return 0;
}

uint64_t
spool_msg_size(const struct spool_msg *msg)
{
	return msg->size;
}

/* Keep a copy of the login for the envelope; a bad one fails the commit. */
void
spool_msg_set_hold(struct spool_msg *msg, bool hold)
{
	msg->hold = hold;
}

void
spool_msg_set_auth(struct spool_msg *msg, const char *user)
{
	free(msg->auth);
	msg->auth = NULL;
	if (user == NULL)
		return;
	if (!spool_auth_ok(user)) {
		log_warning(msg->id, "spool bad-auth-user");
		if (msg->error == 0)
			msg->error = EINVAL;
		return;
	}
	msg->auth = strdup(user);
	if (msg->auth == NULL && msg->error == 0)
		msg->error = ENOMEM;
}

void
spool_msg_abort(struct spool_msg **msg)
{
	struct spool_msg *m = *msg;

	if (m == NULL)
		return;
	*msg = NULL;
	spool_close_fd(&m->fd);
	if (storefs.unlinkat(m->sp->tmp_fd, m->id, 0) < 0)
		log_warning(m->id, "spool abort error=%s",
			    spool_errname(errno));
	spool_msg_free(m);
}

/* Copy the envelope into one allocation owned by the message. */
static int
spool_msg_copy_env(struct spool_msg *m, const char *sender,
		   const struct spool_rcpt *rcpts, size_t n_rcpts)
{
	size_t total = strlen(sender) + 1;
	char *o;

	for (size_t i = 0; i < n_rcpts; i++)
		total +=
		    strlen(rcpts[i].address) + 2 +
		    (rcpts[i].maildir != NULL ? strlen(rcpts[i].maildir) : 0);
	m->env.store = malloc(total);
	m->env.rcpts = calloc(n_rcpts + 1, sizeof(*m->env.rcpts));
	m->mds = calloc(n_rcpts + 1, sizeof(*m->mds));
	m->state = calloc(n_rcpts + 1, 1);
	if (m->env.store == NULL || m->env.rcpts == NULL || m->mds == NULL ||
	    m->state == NULL)
		return -1;
	o = m->env.store;
	m->env.sender = o;
	o = spool_env_put(o, sender) + 1;
	o[-1] = '\0';
	for (size_t i = 0; i < n_rcpts; i++) {
		m->env.rcpts[i].address = o;
		o = spool_env_put(o, rcpts[i].address) + 1;
		o[-1] = '\0';
		if (rcpts[i].maildir == NULL) {
			m->has_remote = true; /* maildir stays NULL */
			continue;
		}
		m->env.rcpts[i].maildir = o;
		o = spool_env_put(o, rcpts[i].maildir) + 1;
		o[-1] = '\0';
	}
	m->env.n_rcpts = n_rcpts;
	m->env.auth = m->auth;
	m->env.hold = m->hold;
	memcpy(m->env.id, m->id, sizeof(m->id));
	m->env.time = m->time;
	m->env.size = m->size;
	return 0;
}

void
spool_msg_commit(struct spool_msg *msg, const char *sender,
		 const struct spool_rcpt *rcpts, size_t n_rcpts,
		 spool_commit_cb *cb, void *arg)
{
	struct spool *sp = msg->sp;

	msg->cb = cb;
	msg->arg = arg;
	msg->result = -1;
	if (spool_msg_copy_env(msg, sender != NULL ? sender : "", rcpts,
			       n_rcpts) < 0 &&
	    msg->error == 0)
		msg->error = ENOMEM;
	/* With syncfs the data needs no descriptor of its own any more. */
	if (sp->sync == SYNC_SYNCFS)
		spool_close_fd(&msg->fd);
	msg->next = NULL;
	sp->in_flight++;
	pthread_mutex_lock(&sp->mu);
	if (sp->pend_tail != NULL)
		sp->pend_tail->next = msg;
	else
		sp->pend_head = msg;
	sp->pend_tail = msg;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

int
spool_commit_fd(const struct spool *sp)
{
	return sp->event_fd;
}

size_t
spool_commits_pending(const struct spool *sp)
{
	return sp->in_flight;
}

/*
 * Run the callbacks of finished commits and free them. (Their data files
 * and journal records are the committer's business: it finishes them
 * while the loop sends the replies.)
 */
void
spool_commit_reap(struct spool *sp)
{
	struct spool_msg *list;
	uint64_t v;

	if (read(sp->event_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warning("spool", "spool eventfd error=%s",
			    spool_errname(errno));
	pthread_mutex_lock(&sp->mu);
	list = sp->done_head;
	sp->done_head = sp->done_tail = NULL;
	pthread_mutex_unlock(&sp->mu);
	while (list != NULL) {
		struct spool_msg *m = list;

		list = m->next;
		sp->in_flight--;
		if (m->cb != NULL)
			m->cb(m, m->result, m->arg);
		spool_msg_free(m);
	}
}
