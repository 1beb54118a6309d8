/*
 * spool_rec.c - recovery of spool areas at start-up
 * (docs/durability.md, "Recovery"): finish committed messages, sync, drop
 * what is finished, sweep what was never committed, quarantine what
 * cannot be trusted.
 */
#include "store/spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "store/maildir.h"
#include "store/storefs.h"

struct spool_rec {
	int root_fd, area_fd, tmp_fd, committed_fd;
	int queue_fd; /* <spool>/queue, or -1 (missing: opened when needed) */
	const char *dir, *area, *hostname;
	char **keep; /* tmp/ data of messages left for a later recovery */
	size_t n_keep;
	char **done; /* committed/ names finished, removed after the sync */
	size_t n_done;
	dev_t devs[64]; /* file systems to sync before removing anything */
	int dev_fds[64];
	size_t n_devs;
	bool sync_failed;
	int delivered; /* messages that needed a new delivery */

	/* The journal, read whole, and its commit records. */
	char *jbuf;
	size_t jlen;
	bool has_journal;
	bool suspicious; /* damaged: tmp/ files it does not explain are
			    quarantined, not removed */
	struct spool_jscan js;
};

/* Remember the file system of directory `dir` (a Maildir, queue/, the
   spool) for the sync of phase 2. */
static void
spool_rec_add_dev(struct spool_rec *rc, const char *dir)
{
	struct stat st;
	int fd;

	fd = storefs.openat(AT_FDCWD, dir, SPOOL_DIR_FLAGS, 0);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc->sync_failed = true;
		goto out;
	}
	for (size_t i = 0; i < rc->n_devs; i++)
		if (rc->devs[i] == st.st_dev)
			goto out;
	if (rc->n_devs < sizeof(rc->devs) / sizeof(rc->devs[0])) {
		rc->devs[rc->n_devs] = st.st_dev;
		rc->dev_fds[rc->n_devs++] = fd;
		return;
	}
	if (storefs.syncfs(fd) < 0) /* too many file systems: sync now */
		rc->sync_failed = true;
out:
	if (fd >= 0)
		close(fd);
}

/*
 * Move `name` from directory `fd` into <spool>/quarantine/ as
 * "<area>.<name><suffix>.<k>" (or "<area>.ino<inode>..." when the name is
 * not a plain id), never replacing anything there.
 */
static int
spool_quarantine(struct spool_rec *rc, int fd, const char *name,
		 const char *suffix, const char *reason)
{
	char qname[NAME_MAX + 1], esc[128];
	struct stat st;
	int qfd, n, r = -1;

	log_escape(esc, sizeof(esc), name, strlen(name), 64);
	if (fd < 0 || fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fd < 0 || errno == ENOENT ? 0 : -1;
	qfd = spool_open_dir(rc->root_fd, "quarantine");
	if (qfd < 0) {
		log_error("spool", "spool quarantine area=%s file=%s error=%s",
			  rc->area, esc, spool_errname(errno));
		return -1;
	}
	for (int k = 0; k < 100; k++) {
		if (spool_id_ok(name, strlen(name)))
			n = snprintf(qname, sizeof(qname), "%s.%s%s.%d",
				     rc->area, name, suffix, k);
		else
			n = snprintf(qname, sizeof(qname), "%s.ino%ju%s.%d",
				     rc->area, (uintmax_t)st.st_ino, suffix, k);
		if (n < 0 || (size_t)n >= sizeof(qname))
			break;
		if (storefs.renameat(fd, name, qfd, qname, RENAME_NOREPLACE) ==
		    0) {
			log_warning("spool",
				    "spool quarantined area=%s file=%s "
				    "reason=\"%s\" as=%s",
				    rc->area, esc, reason, qname);
			/* The move (and quarantine/ itself) durable before
			   phase 3 drops the record that names the file. */
			spool_rec_add_dev(rc, rc->dir);
			r = 0;
			break;
		}
		if (errno != EEXIST) {
			log_error("spool",
				  "spool quarantine area=%s file=%s error=%s",
				  rc->area, esc, spool_errname(errno));
			break;
		}
	}
	close(qfd);
	return r;
}

/*
 * Write `text` into <spool>/quarantine/ as a new file
 * "<area>.<name><suffix>.<k>", durable (file and directory fsync'd) before
 * the caller drops its only other copy (a journal record, or the journal).
 * 0 or -1.
 */
static int
spool_quarantine_text(struct spool_rec *rc, const char *name,
		      const char *suffix, const char *text, size_t len,
		      const char *reason)
{
	char qname[NAME_MAX + 1];
	int qfd, fd = -1, n, r = -1;

	qfd = spool_open_dir(rc->root_fd, "quarantine");
	if (qfd < 0)
		goto out;
	for (int k = 0; k < 100 && fd < 0; k++) {
		n = snprintf(qname, sizeof(qname), "%s.%s%s.%d", rc->area, name,
			     suffix, k);
		if (n < 0 || (size_t)n >= sizeof(qname))
			break;
		fd = storefs.openat(qfd, qname, SPOOL_NEW_FLAGS, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		goto out;
	r = storefs_write_all(fd, text, len) < 0 || storefs.fsync(fd) < 0 ||
		    storefs.fsync(qfd) < 0
		? -1
		: 0;
	close(fd);
	if (r < 0)
		storefs.unlinkat(qfd, qname, 0);
	else
		log_warning("spool",
			    "spool quarantined area=%s file=journal id=%s "
			    "reason=\"%s\" as=%s",
			    rc->area, name, reason, qname);
	if (r == 0) /* quarantine/ itself, if just made: by phase 2 */
		spool_rec_add_dev(rc, rc->dir);
out:
	if (r < 0)
		log_error("spool",
			  "spool quarantine area=%s file=journal id=%s "
			  "error=%s",
			  rc->area, name, spool_errname(errno));
	if (qfd >= 0)
		close(qfd);
	return r;
}

/*
 * The queue part of recovering a committed message with remote recipients.
 * queue/<id>.env present: done (it appeared complete, and belongs to the
 * outbound work now: never rewritten). Else whatever part exists is
 * thrown away and the entry made again from the area's data and envelope:
 * .msg and .tmp, the .tmp and queue/ fsync'd, then the rename to .env
 * (made durable by phase 2). Without data, only looks. Returns 1 when
 * made now, 0 when it was there, -1 when it is not there and cannot be made.
 */
static int
spool_rec_queue(struct spool_rec *rc, const struct spool_env *env,
		bool has_data)
{
	char name[SPOOL_QNAME_MAX], path[SPOOL_PATH_MAX];
	bool made_msg = false, made_tmp = false;
	struct stat st;
	int n;

	n = snprintf(path, sizeof(path), "%s/queue", rc->dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	if (rc->queue_fd < 0 && has_data)
		rc->queue_fd = spool_open_dir(rc->root_fd, "queue");
	if (rc->queue_fd < 0)
		return -1;
	if (fstatat(rc->queue_fd, spool_qname(name, env->id, ".env"), &st,
		    AT_SYMLINK_NOFOLLOW) == 0) {
		spool_rec_add_dev(rc, path);
		return 0;
	}
	if (!has_data)
		return -1;
	if ((storefs.unlinkat(rc->queue_fd, spool_qname(name, env->id, ".tmp"),
			       0) < 0 &&
	     errno != ENOENT) ||
	    (storefs.unlinkat(rc->queue_fd, spool_qname(name, env->id, ".msg"),
			       0) < 0 &&
	     errno != ENOENT) ||
	    spool_queue_prepare(rc->queue_fd, rc->tmp_fd, env, true, &made_msg,
				&made_tmp) < 0 ||
	    storefs.fsync(rc->queue_fd) < 0 ||
	    spool_queue_publish(rc->queue_fd, env->id) < 0) {
		log_error(env->id, "spool recover-queue error=%s",
			  spool_errname(errno));
		return -1; /* the parts stay: the next recovery replaces them */
	}
	spool_rec_add_dev(rc, path);
	return 1;
}

/*
 * Recipient `i` of a committed message: 1 when its Maildir has the
 * message already (new/<name> or cur/<name>:*), else, with the data open
 * on `src` (-1: none, only look), 0 once a copy (its trace header, then
 * the data; fsync'd) is moved into new/. -1 on failure (errno).
 */
static int
spool_rec_copy(const struct spool_env *env, size_t i, const char *name,
	       int src)
{
	const struct spool_rcpt *r = &env->rcpts[i];
	char head[MAILDIR_HEADER_MAX];
	size_t len;

	if (src < 0)
		return maildir_has(r->maildir, name) == 1 ? 1 : -1;
	if (maildir_create(r->maildir) < 0 ||
	    maildir_trace_header(env->sender, r->address, head, sizeof(head),
				 &len) < 0)
		return -1;
	return maildir_deliver(r->maildir, name, head, len, src, env->size);
}

/*
 * Deliver one committed message to every local recipient that does not
 * have it yet (recognised by its name), and complete its queue entry if
 * it has remote recipients. Returns true when every recipient has it now
 * (durable after phase 2). Without data (src -1), only looks: true when
 * every recipient had it already.
 */
static bool
spool_rec_deliver(struct spool_rec *rc, const struct spool_env *env, int src)
{
	char name[SPOOL_MDNAME_MAX];
	bool ok = true, fresh = false, remote = false;

	if (maildir_name((long)env->time, env->id, rc->hostname, name,
			 sizeof(name)) < 0)
		return false;
	for (size_t i = 0; i < env->n_rcpts && ok; i++) {
		int r;

		if (env->rcpts[i].maildir == NULL) {
			remote = true;
			continue;
		}
		r = spool_rec_copy(env, i, name, src);
		if (r < 0 && src >= 0)
			log_error(env->id,
				  "spool recover-deliver rcpt=%zu error=%s", i,
				  spool_errname(errno));
		if (r < 0)
			ok = false;
		else
			spool_rec_add_dev(rc, env->rcpts[i].maildir);
		fresh = fresh || r == 0;
	}
	if (ok && remote) {
		int r = spool_rec_queue(rc, env, src >= 0);

		ok = r >= 0;
		fresh = fresh || r == 1;
	}
	if (ok && fresh)
		rc->delivered++;
	return ok;
}

/*
 * The queue files of an uncommitted message `id` (tmp/ holds its data, no
 * pending record names it), or of a quarantined one: the .tmp, and the
 * .msg unless the .env exists - then the message was committed and
 * reaped, and the entry is the outbound work's. Removed before the area's file
 * that led here, which the caller keeps when this fails (-1), so the next
 * recovery finds them again.
 */
static int
spool_rec_unqueue(struct spool_rec *rc, const char *tmp_name)
{
	char id[SPOOL_ID_MAX], name[SPOOL_QNAME_MAX];
	size_t len = strcspn(tmp_name, ".");
	struct stat st;

	if (rc->queue_fd < 0 || !spool_id_ok(tmp_name, len))
		return 0;
	memcpy(id, tmp_name, len);
	id[len] = '\0';
	if (storefs.unlinkat(rc->queue_fd, spool_qname(name, id, ".tmp"), 0) <
		0 &&
	    errno != ENOENT)
		goto fail;
	if (fstatat(rc->queue_fd, spool_qname(name, id, ".env"), &st,
		    AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno == ENOENT &&
	    (storefs.unlinkat(rc->queue_fd, spool_qname(name, id, ".msg"),
			       0) == 0 ||
	     errno == ENOENT))
		return 0;
fail:
	log_warning(id, "spool recover-unqueue error=%s", spool_errname(errno));
	return -1;
}

enum {
	SPOOL_FATE_KEEP = 1,   /* left for the next recovery */
	SPOOL_FATE_DONE,       /* every recipient has it (after the sync) */
	SPOOL_FATE_QUARANTINE, /* corrupt, or its data does not match */
};

/*
 * Phase 1 for one committed message `id` with envelope text buf[0..len)
 * (NULL: unreadable): check it and its data file, deliver it. Returns its
 * fate; for SPOOL_FATE_QUARANTINE, *error_r says why. Only a message
 * whose data is missing after its deliveries finished is done without
 * data; missing data otherwise means quarantine, never a silent drop.
 */
static int
spool_rec_message(struct spool_rec *rc, const char *id, const char *buf,
		  size_t len, const char **error_r)
{
	struct spool_env env;
	struct stat st;
	bool has_data;
	int fate, src = -1;

	*error_r = "unreadable";
	if (buf == NULL || spool_env_parse(buf, len, &env, error_r) < 0)
		return SPOOL_FATE_QUARANTINE;
	fate = SPOOL_FATE_QUARANTINE;
	if (strcmp(env.id, id) != 0) {
		*error_r = "id does not match";
		goto out;
	}
	has_data = rc->tmp_fd >= 0 &&
		   fstatat(rc->tmp_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (!has_data && rc->tmp_fd >= 0 && errno != ENOENT) {
		/* Cannot tell whether the data is there: try again later. */
		log_error(id, "spool recover-deferred error=%s",
			  spool_errname(errno));
		fate = SPOOL_FATE_KEEP;
		goto out;
	}
	if (has_data &&
	    (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != env.size)) {
		*error_r = "data does not match";
		goto out;
	}
	if (has_data)
		src = openat(rc->tmp_fd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (has_data && src < 0) {
		log_error(id, "spool recover-deferred error=%s",
			  spool_errname(errno));
		fate = SPOOL_FATE_KEEP;
	} else if (spool_rec_deliver(rc, &env, src)) {
		fate = SPOOL_FATE_DONE;
	} else if (!has_data) {
		*error_r = "data missing, not delivered everywhere";
	} else {
		log_error(id, "spool recover-deferred");
		fate = SPOOL_FATE_KEEP;
	}
out:
	if (src >= 0)
		close(src);
	spool_env_free(&env);
	return fate;
}

/*
 * Phase 1 for committed/<name> (the layout before the journal): put it on
 * the done list (removed after the sync) or the keep list (left for the
 * next recovery), or move the envelope and its data to quarantine.
 */
static void
spool_rec_committed(struct spool_rec *rc, const char *name)
{
	const char *error;
	char *buf;
	size_t len = 0;
	int fate;

	if (!spool_id_ok(name, strlen(name))) {
		spool_quarantine(rc, rc->committed_fd, name, ".env",
				 "bad name");
		return;
	}
	buf = spool_read_env(rc->committed_fd, name, &len);
	fate = spool_rec_message(rc, name, buf, len, &error);
	free(buf);
	if (fate == SPOOL_FATE_DONE &&
	    spool_list_add(&rc->done, &rc->n_done, name))
		return;
	/* Quarantine: the queue parts go (the data is kept), then the
	   envelope, then the data; whatever fails is kept for next time. */
	if (fate != SPOOL_FATE_QUARANTINE || spool_rec_unqueue(rc, name) < 0 ||
	    spool_quarantine(rc, rc->committed_fd, name, ".env", error) < 0 ||
	    spool_quarantine(rc, rc->tmp_fd, name, ".data", error) < 0)
		spool_list_add(&rc->keep, &rc->n_keep, name);
}

/*
 * Phase 1 for a journal record without its done record: as above, but a
 * quarantined envelope is written out of the record into quarantine/ (the
 * record is dropped when the journal is rewritten). The fate is kept in
 * the record for phase 3; kept ones keep their data from the sweep.
 */
static void
spool_rec_record(struct spool_rec *rc, struct spool_jrec *r)
{
	const char *error;

	r->fate = spool_rec_message(rc, r->id, r->payload, r->len, &error);
	if (r->fate == SPOOL_FATE_QUARANTINE &&
	    (spool_rec_unqueue(rc, r->id) < 0 ||
	     spool_quarantine_text(rc, r->id, ".env", r->payload, r->len,
				   error) < 0 ||
	     spool_quarantine(rc, rc->tmp_fd, r->id, ".data", error) < 0))
		r->fate = SPOOL_FATE_KEEP;
	if (r->fate == SPOOL_FATE_KEEP)
		spool_list_add(&rc->keep, &rc->n_keep, r->id);
}

/* Does the journal hold a commit record of `name` (done or not)? */
static bool
spool_rec_known(const struct spool_rec *rc, const char *name)
{
	for (size_t i = 0; i < rc->js.n_recs; i++)
		if (strcmp(rc->js.recs[i].id, name) == 0)
			return true;
	return false;
}

/*
 * Phase 4: remove every tmp/ entry except data still needed. After a
 * damaged journal, an entry no record names may be the data of a
 * committed message whose record was lost: it is quarantined instead.
 */
static void
spool_rec_sweep_tmp(struct spool_rec *rc)
{
	size_t n;
	char **names = spool_list_dir(rc->tmp_fd, &n);

	for (size_t i = 0; i < n; i++) {
		char esc[128];

		if (strncmp(names[i], SPOOL_POOL_PREFIX,
			    sizeof(SPOOL_POOL_PREFIX) - 1) == 0) {
			/* An emptied file kept for reuse (spool_pool.c). */
			storefs.unlinkat(rc->tmp_fd, names[i], 0);
			continue;
		}
		if (spool_list_has(rc->keep, rc->n_keep, names[i]) ||
		    spool_rec_unqueue(rc, names[i]) < 0)
			continue;
		if (rc->suspicious && !spool_rec_known(rc, names[i])) {
			spool_quarantine(rc, rc->tmp_fd, names[i], ".data",
					 "not in the damaged journal");
			continue;
		}
		if (storefs.unlinkat(rc->tmp_fd, names[i], 0) == 0)
			continue;
		log_warning("spool",
			    "spool recover-unlink area=%s file=%s error=%s",
			    rc->area,
			    log_escape(esc, sizeof(esc), names[i],
				       strlen(names[i]), 64),
			    spool_errname(errno));
	}
	spool_free_list(names, n);
}

/*
 * Read the area's journal (absent is fine: an area of the layout before
 * it, or one never used). A torn tail is logged and ignored: nothing in it
 * was acknowledged. Damage before intact records is logged, a copy of the
 * journal is quarantined, and recovery goes on with the intact records,
 * suspicious of the rest. Fails (-1: leave the area alone) when the
 * journal cannot be read, is not a regular file, is too large, is of an
 * unknown version, or is damaged and cannot be copied aside.
 */
static int
spool_rec_journal_read(struct spool_rec *rc)
{
	const char *error = "unreadable";
	int fd, saved;

	fd = openat(rc->area_fd, SPOOL_JOURNAL,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	rc->jbuf = spool_read_fd(fd, SPOOL_JOURNAL_READ_MAX, &rc->jlen);
	saved = errno;
	close(fd);
	errno = saved;
	if (rc->jbuf == NULL ||
	    spool_journal_scan(rc->jbuf, rc->jlen, &rc->js, &error) < 0) {
		log_error("spool", "spool recover-journal area=%s error=\"%s\"",
			  rc->area,
			  rc->jbuf == NULL ? spool_errname(errno) : error);
		return -1;
	}
	rc->has_journal = true;
	if (rc->js.torn && !rc->js.corrupt)
		log_warning("spool",
			    "spool recover-journal area=%s torn-tail=%" PRIu64
			    " size=%zu",
			    rc->area, rc->js.bad_off, rc->jlen);
	if (rc->js.corrupt) {
		log_error("spool",
			  "spool recover-journal area=%s damaged-at=%" PRIu64
			  " size=%zu",
			  rc->area, rc->js.bad_off, rc->jlen);
		rc->suspicious = true;
		if (spool_quarantine_text(rc, "journal", "", rc->jbuf, rc->jlen,
					  "damaged") < 0)
			return -1;
	}
	return 0;
}

/*
 * Phase 3 for the journal: it keeps only the records of messages left for
 * the next recovery. None: it is removed. Some: they are written to
 * journal.new, which is fsync'd and renamed over the journal (then the
 * area fsync'd), so a crash leaves the old journal or the new one, whole.
 * 0 or -1 (the old journal stays, and with it every record).
 */
static int
spool_rec_journal_write(struct spool_rec *rc)
{
	struct spool_buf b = {0};
	int fd = -1, r = -1, saved;

	if (storefs.unlinkat(rc->area_fd, SPOOL_JOURNAL_NEW, 0) < 0 &&
	    errno != ENOENT)
		return -1;
	if (spool_buf_add(&b, SPOOL_JOURNAL_MAGIC,
			  sizeof(SPOOL_JOURNAL_MAGIC) - 1) < 0)
		return -1;
	for (size_t i = 0; i < rc->js.n_recs; i++) {
		const struct spool_jrec *j = &rc->js.recs[i];

		if (j->live && j->fate == SPOOL_FATE_KEEP &&
		    spool_buf_add(&b, j->raw, j->raw_len) < 0)
			goto out;
	}
	if (b.len == sizeof(SPOOL_JOURNAL_MAGIC) - 1) {
		r = storefs.unlinkat(rc->area_fd, SPOOL_JOURNAL, 0) == 0 ||
			    errno == ENOENT
			? 0
			: -1;
		goto out;
	}
	fd = storefs.openat(rc->area_fd, SPOOL_JOURNAL_NEW, SPOOL_NEW_FLAGS,
			     0600);
	if (fd < 0)
		goto out;
	if (storefs_write_all(fd, b.data, b.len) < 0 || storefs.fsync(fd) < 0 ||
	    storefs.renameat(rc->area_fd, SPOOL_JOURNAL_NEW, rc->area_fd,
			      SPOOL_JOURNAL, 0) < 0) {
		saved = errno;
		storefs.unlinkat(rc->area_fd, SPOOL_JOURNAL_NEW, 0);
		errno = saved;
		goto out;
	}
	r = storefs.fsync(rc->area_fd);
out:
	saved = errno;
	if (fd >= 0)
		close(fd);
	spool_buf_free(&b);
	if (r < 0)
		log_error("spool",
			  "spool recover-journal-write area=%s "
			  "error=%s",
			  rc->area, spool_errname(saved));
	errno = saved;
	return r;
}

/*
 * Phase 3: the sync of phase 2 succeeded, so the finished messages'
 * records and files can go: the journal first (rewritten or removed),
 * then their data; the old layout's envelopes and data likewise. None of
 * it is synced: if it is lost, the next recovery finds them delivered.
 */
static void
spool_rec_finish(struct spool_rec *rc)
{
	for (size_t i = 0; i < rc->n_done; i++) {
		storefs.unlinkat(rc->committed_fd, rc->done[i], 0);
		storefs.unlinkat(rc->tmp_fd, rc->done[i], 0);
		log_info(rc->done[i], "spool recovered");
	}
	if (!rc->has_journal)
		return;
	spool_rec_journal_write(rc);
	for (size_t i = 0; i < rc->js.n_recs; i++) {
		const struct spool_jrec *j = &rc->js.recs[i];

		if (!j->live || j->fate != SPOOL_FATE_DONE)
			continue;
		storefs.unlinkat(rc->tmp_fd, j->id, 0);
		log_info(j->id, "spool recovered");
	}
}

/*
 * Phase 1 over the old layout's committed/ and the journal's records
 * without a done record. False when committed/ could not be listed.
 */
static bool
spool_rec_messages(struct spool_rec *rc)
{
	bool ok = true;

	if (rc->committed_fd >= 0) {
		size_t n;
		char **names = spool_list_dir(rc->committed_fd, &n);

		ok = names != NULL;
		for (size_t i = 0; i < n; i++)
			spool_rec_committed(rc, names[i]);
		spool_free_list(names, n);
	}
	for (size_t i = 0; i < rc->js.n_recs; i++)
		if (rc->js.recs[i].live)
			spool_rec_record(rc, &rc->js.recs[i]);
	return ok;
}

/* Phase 2: sync every file system delivered to. False on a failure:
   then everything finished is kept for the next recovery instead. */
static bool
spool_rec_sync(struct spool_rec *rc)
{
	for (size_t i = 0; i < rc->n_devs; i++) {
		if (storefs.syncfs(rc->dev_fds[i]) < 0)
			rc->sync_failed = true;
		close(rc->dev_fds[i]);
	}
	rc->n_devs = 0;
	if (!rc->sync_failed)
		return true;
	log_error("spool", "spool recover-sync area=%s error=%s", rc->area,
		  spool_errname(errno));
	for (size_t i = 0; i < rc->n_done; i++)
		spool_list_add(&rc->keep, &rc->n_keep, rc->done[i]);
	for (size_t i = 0; i < rc->js.n_recs; i++) {
		struct spool_jrec *j = &rc->js.recs[i];

		if (j->live && j->fate == SPOOL_FATE_DONE) {
			j->fate = SPOOL_FATE_KEEP;
			spool_list_add(&rc->keep, &rc->n_keep, j->id);
		}
	}
	return false;
}

/* Open the area's directories; false: leave the area alone. */
static bool
spool_rec_open(struct spool_rec *rc, int root_fd, const char *area)
{
	bool ok;

	rc->area_fd = storefs.openat(root_fd, area, SPOOL_DIR_FLAGS, 0);
	if (rc->area_fd < 0)
		return false;
	/* A directory that exists but cannot be opened now: touch nothing
	   (missing data would look like a finished message). */
	rc->committed_fd =
	    storefs.openat(rc->area_fd, "committed", SPOOL_DIR_FLAGS, 0);
	ok = rc->committed_fd >= 0 || errno == ENOENT;
	if (ok) {
		rc->tmp_fd =
		    storefs.openat(rc->area_fd, "tmp", SPOOL_DIR_FLAGS, 0);
		ok = rc->tmp_fd >= 0 || errno == ENOENT;
	}
	if (ok && spool_rec_journal_read(rc) < 0)
		ok = false;
	if (!ok)
		log_error("spool", "spool recover-skipped area=%s error=%s",
			  area, spool_errname(errno));
	return ok;
}

static void
spool_rec_free(struct spool_rec *rc)
{
	spool_close_fd(&rc->tmp_fd);
	spool_close_fd(&rc->committed_fd);
	spool_close_fd(&rc->queue_fd);
	spool_close_fd(&rc->area_fd);
	spool_free_list(rc->keep, rc->n_keep);
	spool_free_list(rc->done, rc->n_done);
	spool_jscan_free(&rc->js);
	free(rc->jbuf);
}

/*
 * Recover one area: (1) finish committed messages (the journal's, and the
 * old layout's committed/), (2) sync every file system written to, (3)
 * only then drop their records and data, (4) remove uncommitted files,
 * (5) remove the area when empty.
 */
static int
spool_rec_area(int root_fd, const char *dir, const char *area,
	       const char *hostname)
{
	struct spool_rec rc = {.root_fd = root_fd,
			       .dir = dir,
			       .area = area,
			       .hostname = hostname,
			       .area_fd = -1,
			       .tmp_fd = -1,
			       .committed_fd = -1,
			       .queue_fd = -1};
	bool can_sweep; /* every committed message and queue part seen */
	int delivered;

	if (!spool_rec_open(&rc, root_fd, area)) {
		spool_rec_free(&rc);
		return -1;
	}
	rc.queue_fd = storefs.openat(root_fd, "queue", SPOOL_DIR_FLAGS, 0);
	can_sweep = rc.queue_fd >= 0 || errno == ENOENT;
	if (!spool_rec_messages(&rc))
		can_sweep = false;
	if (spool_rec_sync(&rc))
		spool_rec_finish(&rc);
	/* Without the list of committed messages, tmp/ holds data that may
	   be needed; without queue/, parts there would be orphaned. */
	if (rc.tmp_fd >= 0 && can_sweep)
		spool_rec_sweep_tmp(&rc);
	else if (!can_sweep)
		log_error("spool", "spool recover-incomplete area=%s", area);
	spool_close_fd(&rc.tmp_fd);
	spool_close_fd(&rc.committed_fd);
	/* All fail harmlessly (ENOTEMPTY, ENOENT) while something is kept. */
	storefs.unlinkat(rc.area_fd, "tmp", AT_REMOVEDIR);
	storefs.unlinkat(rc.area_fd, "committed", AT_REMOVEDIR);
	if (storefs.unlinkat(root_fd, area, AT_REMOVEDIR) < 0 &&
	    errno != ENOTEMPTY && errno != EEXIST)
		log_warning("spool", "spool recover-rmdir area=%s error=%s",
			    area, spool_errname(errno));
	delivered = rc.delivered;
	spool_rec_free(&rc);
	return delivered;
}

static bool
spool_area_wanted(const char *name, const char *const *areas)
{
	if (areas == NULL)
		return true;
	for (; *areas != NULL; areas++)
		if (strcmp(*areas, name) == 0)
			return true;
	return false;
}

/*
 * Recover the areas under `dir` (see spool.h). A message that cannot be
 * finished now (a Maildir refuses it) is logged and left in place for the
 * next recovery; it is not counted as an operational error, so one broken
 * Maildir cannot keep the server from starting.
 */
int
spool_recover(const char *dir, const char *const *areas, const char *hostname)
{
	int root_fd, total = 0;
	char **names;
	size_t n;

	if (hostname == NULL)
		hostname = "localhost";
	root_fd = storefs.openat(AT_FDCWD, dir, SPOOL_DIR_FLAGS, 0);
	if (root_fd < 0) {
		if (errno == ENOENT)
			return 0;
		log_error("spool", "spool recover error=%s",
			  spool_errname(errno));
		return -1;
	}
	names = spool_list_dir(root_fd, &n);
	if (names == NULL) {
		close(root_fd);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		int r;

		if (!spool_area_ok(names[i]) ||
		    !spool_area_wanted(names[i], areas) ||
		    fstatat(root_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		r = spool_rec_area(root_fd, dir, names[i], hostname);
		if (r > 0)
			total += r;
	}
	spool_free_list(names, n);
	close(root_fd);
	return total;
}
