/*
 * spool_int.h - what the parts of the spool share (not for other modules).
 *
 *   spool.c          open and close, messages (loop thread)
 *   spool_env.c      the envelope: format and exact parse
 *   spool_journal.c  journal records, scan, appends, repair, truncation
 *   spool_commit.c   the committer thread and the steps of a batch
 *   spool_queue.c    the outbound queue entry of a message
 *   spool_rec.c      recovery
 *   spool_pool.c     data files kept for reuse
 *   spool_file.c     small file helpers
 *
 * File-system calls that change anything go through storefs (storefs.h).
 */
#ifndef POSTERN_SPOOL_INT_H
#define POSTERN_SPOOL_INT_H

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/maildir.h"
#include "store/spool.h"

#define SPOOL_BATCH_MAX 256	 /* messages per group commit */
#define SPOOL_ENV_MAX (4u << 20) /* largest envelope file read back */
#define SPOOL_PATH_MAX 4096
#define SPOOL_MDNAME_MAX MAILDIR_NAME_MAX
#define SPOOL_CACHE_BUCKETS 1024
#define SPOOL_CACHE_MAX 4096 /* known Maildirs before the cache is reset */
#define SPOOL_DEVS_MAX 16    /* file systems with a kept syncfs() fd */
#define SPOOL_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define SPOOL_NEW_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
#define SPOOL_ENV_MAGIC "postern-envelope "
#define SPOOL_AUTH_MAX 1024 /* longest authenticated user name */
#define SPOOL_JOURNAL "journal"
#define SPOOL_JOURNAL_NEW "journal.new" /* recovery's rewrite */
#define SPOOL_JOURNAL_MAGIC "postern-journal 1\n"
#define SPOOL_JOURNAL_READ_MAX (256u << 20) /* largest journal recovered */
#define SPOOL_REC_HEAD_MAX 64		    /* "@commit <id> <len>\n" */
#define SPOOL_REC_TAIL_LEN 14		    /* "@crc xxxxxxxx\n" */
#define SPOOL_POOL_MAX 256		    /* emptied data files kept */
#define SPOOL_POOL_PREFIX ".pool"	    /* tmp/.pool<n> */
#define SPOOL_POOL_NAME_MAX 24

/* An envelope: the payload of a journal commit record (or, in the layout
   before the journal, the file committed/<id>). */
struct spool_env {
	char id[SPOOL_ID_MAX];
	long long time; /* unix seconds, names the Maildir file */
	uint64_t size;	/* octets of the data file */
	const char *sender;
	const char *auth;	  /* authenticated user, or NULL (version 2) */
	bool hold;		  /* `hold send-burst` (version 3) */
	struct spool_rcpt *rcpts; /* maildir NULL: remote (version 2) */
	size_t n_rcpts;
	unsigned version; /* parsed; the writer picks the lowest that fits */
	char *store;	  /* owns the strings and rcpts above */
};

/* A Maildir the committer has created or seen (committer thread only). */
struct spool_md {
	struct spool_md *next;
	dev_t dev;
	unsigned gen;	     /* batch that last delivered here */
	unsigned failed_gen; /* batch whose sync of it failed */
	char path[];
};

struct spool_dev {
	dev_t dev;
	int fd;
	unsigned failed_gen;
};

struct spool_msg {
	struct spool *sp;
	struct spool_msg *next;
	char id[SPOOL_ID_MAX];
	long time;
	int fd;
	uint64_t size;
	int error;  /* first errno of a write, or of the envelope copy */
	char *auth; /* spool_msg_set_auth() */
	bool hold;  /* spool_msg_set_hold() */

	/* Set by spool_msg_commit(), then owned by the committer. */
	struct spool_env env;
	spool_commit_cb *cb;
	void *arg;
	char mdname[SPOOL_MDNAME_MAX]; /* its name in the Maildirs */
	struct spool_md **mds; /* per recipient; NULL: duplicate Maildir */
	unsigned char *state;  /* per recipient: SPOOL_RCPT_* */
	int result;
	int fail_step; /* 0: none */
	int fail_errno;
	char *env_text; /* the formatted envelope, during the batch */
	size_t env_len;
	bool committed;	 /* its commit record is in the journal */
	bool keep;	 /* failed, undo incomplete: left for recovery */
	bool has_remote; /* goes into the outbound queue too */
	bool q_msg;	 /* queue/<id>.msg made by this batch */
	bool q_tmp;	 /* queue/<id>.tmp exists */
	bool q_env;	 /* queue/<id>.env renamed in by this batch */
};

enum {
	SPOOL_RCPT_NONE = 0,
	SPOOL_RCPT_TMP,	      /* copy in its tmp/ by this batch: undo */
	SPOOL_RCPT_DELIVERED, /* moved into new/ by this batch: undo */
	SPOOL_RCPT_PRESENT,   /* was there already: never undone */
};

/* A growing byte buffer. */
struct spool_buf {
	char *data;
	size_t len, cap;
};

struct spool {
	char *area_path;
	char *hostname;
	enum sync_method sync;
	int area_fd, tmp_fd, event_fd;
	dev_t area_dev;		   /* the area's file system */
	int queue_fd;		   /* <spool>/queue */
	bool queue_other_fs;	   /* not on the area's file system */
	struct spool_md *queue_md; /* its path and device, for step 5 */

	pthread_t thread;
	bool has_thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct spool_msg *pend_head, *pend_tail; /* under mu */
	struct spool_msg *done_head, *done_tail; /* under mu */
	bool stopping;				 /* under mu */
	bool paused;	  /* under mu; tests hold batches back with it */
	size_t in_flight; /* loop thread: committed, not yet reaped */
	unsigned pool[SPOOL_POOL_MAX]; /* under mu: tmp/.pool<n> free */
	size_t n_pool;		       /* under mu */
	unsigned pool_seq;	       /* committer: the next <n> */

	/* Committer thread only. */
	struct spool_md *cache[SPOOL_CACHE_BUCKETS];
	size_t n_cache;
	struct spool_dev devs[SPOOL_DEVS_MAX];
	size_t n_devs;
	unsigned gen;

	/* The journal (committer thread only, and spool_open/close). */
	int journal_fd;
	uint64_t j_size;	 /* octets written and intact */
	size_t j_pending;	 /* commit records without their done record */
	bool j_bad;		 /* a failed append may have left a partial
				    record after j_size: repair first */
	struct spool_buf j_owed; /* done records not yet appended */
	size_t j_owed_n;
	struct spool_buf j_buf; /* the records of one append */
	char done_ids[SPOOL_BATCH_MAX][SPOOL_ID_MAX]; /* step 8: data to */
	bool done_reuse[SPOOL_BATCH_MAX];	      /* remove, or reuse */
	size_t n_done_ids;
};

enum {
	SPOOL_REC_COMMIT = 1,
	SPOOL_REC_DONE,
};

/* One record of a journal being read (pointers into the journal). */
struct spool_jrec {
	int kind;
	char id[SPOOL_ID_MAX];
	const char *payload; /* the envelope of a commit */
	size_t len;
	const char *raw; /* the whole record, head to trailer */
	size_t raw_len;
	bool live; /* a commit without its done record (so far) */
	int fate;  /* recovery: SPOOL_FATE_* */
};

/* What a journal holds, as read by spool_journal_scan(). */
struct spool_jscan {
	struct spool_jrec *recs; /* commit records, in journal order */
	size_t n_recs, cap;
	size_t n_live;	  /* of them without a done record */
	uint64_t bad_off; /* where the first bad stretch begins */
	bool torn;	  /* bad octets at the end, nothing valid after them */
	bool corrupt;	  /* bad octets with a valid record after them, or a
			     commit of an id that is committed already */
};

#define SPOOL_QNAME_MAX (SPOOL_ID_MAX + 8)


/* An idle journal larger than this is truncated to 0 (same inode); a
   variable so tests can lower it (spool_journal.c). */
extern size_t spool_journal_max;

/* ---- spool_env.c ---- */
bool spool_id_ok(const char *s, size_t len);
bool spool_auth_ok(const char *s);
char *spool_env_put(char *o, const char *s);
int spool_env_number(const char *s, size_t len, uint64_t max, uint64_t *v_r);
int spool_env_format(const struct spool_env *env, char **buf_r,
		     size_t *len_r);
int spool_env_parse(const char *buf, size_t len, struct spool_env *env,
		    const char **error_r);
void spool_env_free(struct spool_env *env);

/* ---- spool_journal.c ---- */
uint32_t spool_crc32c(uint32_t crc, const void *buf, size_t len);
int spool_buf_add(struct spool_buf *b, const void *p, size_t n);
void spool_buf_free(struct spool_buf *b);
int spool_journal_add(struct spool_buf *b, const char *kind, const char *id,
		      const char *payload, size_t len);
size_t spool_journal_rec(const char *buf, size_t avail, struct spool_jrec *r);
void spool_jscan_free(struct spool_jscan *js);
int spool_journal_scan(const char *buf, size_t len, struct spool_jscan *js,
		       const char **error_r);
int spool_journal_open(struct spool *sp, const char **error_r);
int spool_journal_repair(struct spool *sp);
int spool_journal_start(struct spool *sp);
int spool_journal_append(struct spool *sp);
void spool_journal_owe_done(struct spool *sp, const char *id);
void spool_journal_settle(struct spool *sp, uint64_t max);
void spool_journal_finish(struct spool *sp);

/* ---- spool_commit.c ---- */
void *spool_committer(void *arg);

/* ---- spool_queue.c ---- */
const char *spool_qname(char *buf, const char *id, const char *suffix);
int spool_queue_env(const struct spool_env *env, char **buf_r,
		    size_t *len_r);
int spool_queue_prepare(int qfd, int tfd, const struct spool_env *env,
			bool do_fsync, bool *msg_r, bool *tmp_r);
int spool_queue_publish(int qfd, const char *id);

/* ---- spool_pool.c ---- */
int spool_pool_take(struct spool *sp, const char *id);
void spool_pool_put(struct spool *sp, const char *id);
void spool_pool_drain(struct spool *sp);

/* ---- spool_file.c ---- */
const char *spool_errname(int err);
char *spool_read_fd(int fd, uint64_t max, size_t *len_r);
char *spool_read_env(int dfd, const char *name, size_t *len_r);
bool spool_area_ok(const char *s);
void spool_close_fd(int *fd);
int spool_open_dir(int dfd, const char *name);
int spool_copy(int sfd, const char *src, int dfd, const char *name);
char **spool_list_dir(int fd, size_t *n_r);
void spool_free_list(char **names, size_t n);
bool spool_list_add(char ***list, size_t *n, const char *name);
bool spool_list_has(char *const *list, size_t n, const char *name);
int spool_fsync_path(const char *path);

#endif
