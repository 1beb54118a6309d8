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
 * per spool appends a batch of commit records to the journal, makes them
 * and the data durable with one sync, delivers into the Maildirs by hard
 * link and makes that durable with one more (group commit), hands the
 * results back through an eventfd (spool_commit_fd), then appends "done"
 * records and removes the data files. No inode is created or removed per
 * message but the data file, which lives on in the Maildir.
 */
#include "store/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "conf/mailpath.h"
#include "lib/log.h"
#include "store/maildir.h"

#define SPOOL_BATCH_MAX 256	 /* messages per group commit */
#define SPOOL_ENV_MAX (4u << 20) /* largest envelope file read back */
#define SPOOL_PATH_MAX 4096
#define SPOOL_MDNAME_MAX 1200 /* "<when>.<id>." + 255 octets escaped */
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

/* An idle journal (no message waiting for its "done" record) larger than
   this is truncated to 0 (same inode). A variable so tests can lower it. */
static size_t spool_journal_max = 4u << 20;

/* ---- the file-system seam ---------------------------------------------- */

static int
spool_sys_openat(int dirfd, const char *path, int flags, int mode)
{
	return openat(dirfd, path, flags, (mode_t)mode);
}

static ssize_t
spool_sys_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

static int
spool_sys_mkdirat(int dirfd, const char *path, int mode)
{
	return mkdirat(dirfd, path, (mode_t)mode);
}

static int
spool_sys_renameat(int fromfd, const char *from, int tofd, const char *to,
		   unsigned int flags)
{
	return renameat2(fromfd, from, tofd, to, flags);
}

static int
spool_sys_ftruncate(int fd, off_t len)
{
	return ftruncate(fd, len);
}

struct spool_fs_ops spool_fs = {
    .openat = spool_sys_openat,
    .write = spool_sys_write,
    .fsync = fsync,
    .syncfs = syncfs,
    .mkdirat = spool_sys_mkdirat,
    .renameat = spool_sys_renameat,
    .linkat = linkat,
    .unlinkat = unlinkat,
    .ftruncate = spool_sys_ftruncate,
};

/* ---- types --------------------------------------------------------------- */

/* An envelope: the payload of a journal commit record (or, in the layout
   before the journal, the file committed/<id>). */
struct spool_env {
	char id[SPOOL_ID_MAX];
	long long time; /* unix seconds, names the Maildir file */
	uint64_t size;	/* octets of the data file */
	const char *sender;
	const char *auth;	  /* authenticated user, or NULL (version 2) */
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

	/* Set by spool_msg_commit(), then owned by the committer. */
	struct spool_env env;
	spool_commit_cb *cb;
	void *arg;
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
	SPOOL_RCPT_DELIVERED, /* linked by this batch: undo on failure */
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
	size_t n_done_ids;			      /* remove */
};

static unsigned spool_counter; /* per process, atomic */

static const char *
spool_errname(int err)
{
	const char *s = strerrorname_np(err);

	return s != NULL ? s : "unknown";
}

/* ---- envelope format (docs/queue-format.md) ---------------------------- */

/* Octets written as themselves; everything else is %XX. */
static bool
spool_env_plain(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '%';
}

static size_t
spool_env_esc_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += spool_env_plain((unsigned char)*s) ? 1 : 3;
	return n;
}

static char *
spool_env_esc(char *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (spool_env_plain(c)) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	return o;
}

/* RFC 5321 section 2.3.8: envelope values never hold CR or LF. */
static bool
spool_env_value_ok(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static bool
spool_id_ok(const char *s, size_t len)
{
	if (len == 0 || len >= SPOOL_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		      (c >= 'a' && c <= 'z')))
			return false;
	}
	return true;
}

static char *
spool_env_put(char *o, const char *s)
{
	size_t n = strlen(s);

	memcpy(o, s, n);
	return o + n;
}

/* A user name for the `auth` record: see spool_msg_set_auth(). */
static bool
spool_auth_ok(const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	return len > 0 && len <= SPOOL_AUTH_MAX && strpbrk(s, "\r\n ") == NULL;
}

/* A non-empty address, and a non-empty Maildir path or NULL (remote). */
static bool
spool_env_rcpt_ok(const struct spool_rcpt *r)
{
	return spool_env_value_ok(r->address) && r->address[0] != '\0' &&
	       (r->maildir == NULL ||
		(spool_env_value_ok(r->maildir) && r->maildir[0] != '\0'));
}

/*
 * Serialise `env` into a new buffer. The version is the lowest that can
 * say it all: 1 unless there is a remote recipient or an authenticated
 * user (docs/queue-format.md), so a local-only envelope reads as before.
 * Fails (EINVAL) when a value holds CR or LF, the id or user is malformed,
 * or there is no recipient.
 */
static int
spool_env_format(const struct spool_env *env, char **buf_r, size_t *len_r)
{
	char num[64], *buf, *o;
	unsigned version = env->auth != NULL ? 2 : 1;
	size_t total;
	int n;

	if (!spool_id_ok(env->id, strlen(env->id)) || env->n_rcpts == 0 ||
	    !spool_env_value_ok(env->sender) || env->time < 0 ||
	    (env->auth != NULL && !spool_auth_ok(env->auth)))
		goto inval;
	n = snprintf(num, sizeof(num), "time %lld\nsize %" PRIu64 "\n",
		     env->time, env->size);
	if (n < 0 || (size_t)n >= sizeof(num))
		goto inval;
	total = sizeof(SPOOL_ENV_MAGIC "1\nid \n") + strlen(env->id) +
		(size_t)n + sizeof("sender \n") +
		spool_env_esc_len(env->sender) + sizeof("end\n");
	if (env->auth != NULL)
		total += sizeof("auth \n") + spool_env_esc_len(env->auth);
	for (size_t i = 0; i < env->n_rcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		if (!spool_env_rcpt_ok(r))
			goto inval;
		total += sizeof("remote  \n") + spool_env_esc_len(r->address);
		if (r->maildir != NULL)
			total += spool_env_esc_len(r->maildir);
		else
			version = 2;
	}
	buf = malloc(total);
	if (buf == NULL)
		return -1;
	o = spool_env_put(buf, SPOOL_ENV_MAGIC);
	*o++ = (char)('0' + version);
	o = spool_env_put(o, "\nid ");
	o = spool_env_put(o, env->id);
	*o++ = '\n';
	o = spool_env_put(o, num);
	o = spool_env_put(o, "sender ");
	o = spool_env_esc(o, env->sender);
	*o++ = '\n';
	if (env->auth != NULL) {
		o = spool_env_put(o, "auth ");
		o = spool_env_esc(o, env->auth);
		*o++ = '\n';
	}
	for (size_t i = 0; i < env->n_rcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		o = spool_env_put(o, r->maildir != NULL ? "rcpt " : "remote ");
		o = spool_env_esc(o, r->address);
		if (r->maildir != NULL) {
			*o++ = ' ';
			o = spool_env_esc(o, r->maildir);
		}
		*o++ = '\n';
	}
	o = spool_env_put(o, "end\n");
	*buf_r = buf;
	*len_r = (size_t)(o - buf);
	return 0;
inval:
	errno = EINVAL;
	return -1;
}

static int
spool_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not canonical */
}

/*
 * Decode an escaped value into *o (NUL-terminated). Only the canonical
 * form is accepted: plain octets raw, the others as %XX in upper case, so
 * every value has exactly one spelling. Returns 0 or -1.
 */
static int
spool_env_unesc(const char *s, size_t len, char **o, const char **value_r)
{
	char *d = *o;

	*value_r = d;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int hi, lo;

		if (spool_env_plain(c)) {
			*d++ = (char)c;
			continue;
		}
		if (c != '%' || len - i < 3)
			return -1;
		hi = spool_hex((unsigned char)s[i + 1]);
		lo = spool_hex((unsigned char)s[i + 2]);
		if (hi < 0 || lo < 0)
			return -1;
		c = (unsigned char)(hi << 4 | lo);
		if (spool_env_plain(c) || c == '\0' || c == '\r' || c == '\n')
			return -1;
		*d++ = (char)c;
		i += 2;
	}
	*d++ = '\0';
	*o = d;
	return 0;
}

/* A decimal number without sign or leading zero, at most `max`. */
static int
spool_env_number(const char *s, size_t len, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

static void
spool_env_free(struct spool_env *env)
{
	free(env->store);
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

enum {
	SPOOL_K_ID = 1,
	SPOOL_K_TIME = 2,
	SPOOL_K_SIZE = 4,
	SPOOL_K_SENDER = 8,
	SPOOL_K_AUTH = 16, /* version 2, optional */
};

/* "remote <address>" (version 2): one non-empty value. */
static int
spool_env_remote(struct spool_env *env, const char *val, size_t vlen,
		 char **store)
{
	struct spool_rcpt *r = &env->rcpts[env->n_rcpts];

	if (vlen == 0 || spool_env_unesc(val, vlen, store, &r->address) < 0)
		return -1;
	r->maildir = NULL;
	env->n_rcpts++;
	return 0;
}

/* One "key value" line of the body (not the magic, not "end"). */
static int
spool_env_line(struct spool_env *env, const char *line, size_t len,
	       unsigned *seen, char **store, const char **error_r)
{
	const char *sp = memchr(line, ' ', len), *val, *sp2;
	size_t klen, vlen;
	uint64_t v;
	unsigned bit;

	if (sp == NULL) {
		*error_r = "line without value";
		return -1;
	}
	klen = (size_t)(sp - line);
	val = sp + 1;
	vlen = len - klen - 1;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
	if (KEY("rcpt")) {
		struct spool_rcpt *r = &env->rcpts[env->n_rcpts];

		sp2 = memchr(val, ' ', vlen);
		if (sp2 == NULL || sp2 == val || sp2 == val + vlen - 1 ||
		    spool_env_unesc(val, (size_t)(sp2 - val), store,
				    &r->address) < 0 ||
		    spool_env_unesc(sp2 + 1, vlen - (size_t)(sp2 - val) - 1,
				    store, &r->maildir) < 0) {
			*error_r = "bad rcpt";
			return -1;
		}
		env->n_rcpts++;
		return 0;
	}
	if (env->version >= 2 && KEY("remote")) {
		if (spool_env_remote(env, val, vlen, store) < 0) {
			*error_r = "bad remote";
			return -1;
		}
		return 0;
	}
	bit = KEY("id")				 ? SPOOL_K_ID
	      : KEY("time")			 ? SPOOL_K_TIME
	      : KEY("size")			 ? SPOOL_K_SIZE
	      : KEY("sender")			 ? SPOOL_K_SENDER
	      : env->version >= 2 && KEY("auth") ? SPOOL_K_AUTH
						 : 0;
#undef KEY
	if (bit == 0) {
		*error_r = "unknown key";
		return -1;
	}
	if (*seen & bit) {
		*error_r = "duplicate key";
		return -1;
	}
	*seen |= bit;
	switch (bit) {
	case SPOOL_K_ID:
		if (!spool_id_ok(val, vlen))
			break;
		memcpy(env->id, val, vlen);
		env->id[vlen] = '\0';
		return 0;
	case SPOOL_K_TIME:
		if (spool_env_number(val, vlen, LLONG_MAX, &v) < 0)
			break;
		env->time = (long long)v;
		return 0;
	case SPOOL_K_SIZE:
		if (spool_env_number(val, vlen, UINT64_MAX, &env->size) < 0)
			break;
		return 0;
	case SPOOL_K_AUTH:
		if (spool_env_unesc(val, vlen, store, &env->auth) < 0 ||
		    !spool_auth_ok(env->auth))
			break;
		return 0;
	default:
		if (spool_env_unesc(val, vlen, store, &env->sender) < 0)
			break;
		return 0;
	}
	*error_r = "bad value";
	return -1;
}

/*
 * Parse an envelope file, version 1 or 2. Everything must be right: the
 * magic first line, each single key exactly once (auth at most once, and
 * only in version 2), at least one rcpt or remote (remote only in version
 * 2), "end" as the last line and nothing after it. A file cut anywhere is
 * refused, never partially used (THREATS Q-01, Q-02). On success env owns its
 * strings.
 */
static int
spool_env_parse(const char *buf, size_t len, struct spool_env *env,
		const char **error_r)
{
	const char *p = buf, *end = buf + len;
	unsigned seen = 0;
	size_t n_rcpt = 0;
	bool has_end = false;
	char *store;

	memset(env, 0, sizeof(*env));
	if (len == 0 || buf[len - 1] != '\n') {
		*error_r = "truncated";
		return -1;
	}
	if (memchr(buf, '\0', len) != NULL) {
		*error_r = "NUL octet";
		return -1;
	}
	for (const char *q = buf; q < end; q++)
		if (*q == '\n' &&
		    ((end - q > 5 && memcmp(q + 1, "rcpt ", 5) == 0) ||
		     (end - q > 7 && memcmp(q + 1, "remote ", 7) == 0)))
			n_rcpt++;
	env->store = malloc(len + 1);
	env->rcpts = calloc(n_rcpt + 1, sizeof(*env->rcpts));
	if (env->store == NULL || env->rcpts == NULL) {
		*error_r = "out of memory";
		goto fail;
	}
	store = env->store;
	for (unsigned line_no = 0; p < end; line_no++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t llen = (size_t)(eol - p);

		if (has_end) {
			*error_r = "data after end";
			goto fail;
		}
		if (line_no == 0) {
			/* "postern-envelope 1" or "... 2" */
			if (llen != sizeof(SPOOL_ENV_MAGIC) ||
			    memcmp(p, SPOOL_ENV_MAGIC, llen - 1) != 0 ||
			    (p[llen - 1] != '1' && p[llen - 1] != '2')) {
				*error_r = "bad magic";
				goto fail;
			}
			env->version = (unsigned)(p[llen - 1] - '0');
		} else if (llen == 3 && memcmp(p, "end", 3) == 0) {
			has_end = true;
		} else if (spool_env_line(env, p, llen, &seen, &store,
					  error_r) < 0) {
			goto fail;
		}
		p = eol + 1;
	}
	if (!has_end) {
		*error_r = "no end";
		goto fail;
	}
	if ((seen & ~(unsigned)SPOOL_K_AUTH) !=
		(SPOOL_K_ID | SPOOL_K_TIME | SPOOL_K_SIZE | SPOOL_K_SENDER) ||
	    env->n_rcpts == 0) {
		*error_r = "missing key";
		goto fail;
	}
	return 0;
fail:
	spool_env_free(env);
	return -1;
}

/* ---- journal format (docs/durability.md) --------------------------------- */

/*
 * CRC-32C (Castagnoli, reflected, as in iSCSI and ext4), bit by bit: a
 * record is a few hundred octets, so a table would buy nothing. Chains:
 * spool_crc32c(spool_crc32c(0, a), b) is the CRC of a followed by b.
 */
static uint32_t
spool_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static int
spool_buf_add(struct spool_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap != 0 ? b->cap : 4096;
		char *d;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				errno = ENOMEM;
				return -1;
			}
			cap *= 2;
		}
		d = realloc(b->data, cap);
		if (d == NULL)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static void
spool_buf_free(struct spool_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/*
 * Append one journal record to `b`:
 *
 *   "@" kind SP id SP length LF  payload  "@crc " 8 lower-case hex LF
 *
 * kind is "commit" (payload: the envelope, docs/queue-format.md) or "done"
 * (no payload); the CRC-32C covers everything from the first "@" to the
 * end of the payload. The trailer is the end marker: a record cut anywhere,
 * or with any octet changed, does not parse. 0 or -1 (errno).
 */
static int
spool_journal_add(struct spool_buf *b, const char *kind, const char *id,
		  const char *payload, size_t len)
{
	char head[SPOOL_REC_HEAD_MAX], tail[SPOOL_REC_TAIL_LEN + 1];
	uint32_t crc;
	int n;

	n = snprintf(head, sizeof(head), "@%s %s %zu\n", kind, id, len);
	if (n < 0 || (size_t)n >= sizeof(head) || len > SPOOL_ENV_MAX) {
		errno = EINVAL;
		return -1;
	}
	crc = spool_crc32c(spool_crc32c(0, head, (size_t)n), payload, len);
	snprintf(tail, sizeof(tail), "@crc %08" PRIx32 "\n", crc);
	if (spool_buf_add(b, head, (size_t)n) < 0 ||
	    spool_buf_add(b, payload, len) < 0 ||
	    spool_buf_add(b, tail, SPOOL_REC_TAIL_LEN) < 0)
		return -1;
	return 0;
}

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

/*
 * Parse the record at the start of buf[0..avail). Returns its length, or 0
 * when there is no complete, intact record there (a torn tail, or
 * garbage). Everything is checked: the head's syntax (known kind, an id,
 * a canonical length within SPOOL_ENV_MAX, none for "done"), the payload
 * fits, the trailer is exactly the CRC of head and payload.
 */
static size_t
spool_journal_rec(const char *buf, size_t avail, struct spool_jrec *r)
{
	char tail[SPOOL_REC_TAIL_LEN + 1];
	const char *eol, *sp1, *sp2;
	size_t hlen, klen, ilen;
	uint64_t plen;
	uint32_t crc;

	if (avail == 0 || buf[0] != '@')
		return 0;
	eol = memchr(buf, '\n',
		     avail < SPOOL_REC_HEAD_MAX ? avail : SPOOL_REC_HEAD_MAX);
	if (eol == NULL)
		return 0;
	hlen = (size_t)(eol - buf) + 1;
	sp1 = memchr(buf, ' ', hlen);
	sp2 =
	    sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (sp2 == NULL)
		return 0;
	klen = (size_t)(sp1 - buf) - 1;
	ilen = (size_t)(sp2 - sp1) - 1;
	if (klen == 6 && memcmp(buf + 1, "commit", 6) == 0)
		r->kind = SPOOL_REC_COMMIT;
	else if (klen == 4 && memcmp(buf + 1, "done", 4) == 0)
		r->kind = SPOOL_REC_DONE;
	else
		return 0;
	if (!spool_id_ok(sp1 + 1, ilen) ||
	    spool_env_number(sp2 + 1, (size_t)(eol - sp2 - 1), SPOOL_ENV_MAX,
			     &plen) < 0 ||
	    (r->kind == SPOOL_REC_DONE && plen != 0) || avail - hlen < plen ||
	    avail - hlen - plen < SPOOL_REC_TAIL_LEN)
		return 0;
	crc = spool_crc32c(spool_crc32c(0, buf, hlen), buf + hlen, plen);
	snprintf(tail, sizeof(tail), "@crc %08" PRIx32 "\n", crc);
	if (memcmp(buf + hlen + plen, tail, SPOOL_REC_TAIL_LEN) != 0)
		return 0;
	memcpy(r->id, sp1 + 1, ilen);
	r->id[ilen] = '\0';
	r->payload = buf + hlen;
	r->len = plen;
	r->raw = buf;
	r->raw_len = hlen + plen + SPOOL_REC_TAIL_LEN;
	r->live = r->kind == SPOOL_REC_COMMIT;
	return r->raw_len;
}

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

static void
spool_jscan_free(struct spool_jscan *js)
{
	free(js->recs);
	memset(js, 0, sizeof(*js));
}

/*
 * The next intact record after `from`, or `len`. Any "@" may start one:
 * damage can swallow the line end before a record, and "@commit " or
 * "@done " cannot occur inside an envelope (a space there is %20).
 */
static size_t
spool_journal_resync(const char *buf, size_t len, size_t from,
		     struct spool_jrec *r)
{
	while (++from < len) {
		const char *at = memchr(buf + from, '@', len - from);

		if (at == NULL)
			break;
		from = (size_t)(at - buf);
		if (spool_journal_rec(buf + from, len - from, r) > 0)
			return from;
	}
	return len;
}

/* Apply one intact record: a commit joins the list, a done ends one. */
static int
spool_journal_apply(struct spool_jscan *js, const struct spool_jrec *r)
{
	/* A done record follows its commit closely: search from the end. */
	for (size_t i = js->n_recs; i-- > 0;) {
		struct spool_jrec *c = &js->recs[i];

		if (!c->live || strcmp(c->id, r->id) != 0)
			continue;
		if (r->kind == SPOOL_REC_COMMIT) {
			js->corrupt = true; /* ids are unique: never twice */
			return 0;
		}
		c->live = false;
		js->n_live--;
		return 0;
	}
	if (r->kind == SPOOL_REC_DONE)
		return 0; /* its commit was cut off with a bad stretch */
	if (js->n_recs == js->cap) {
		size_t cap = js->cap != 0 ? js->cap * 2 : 64;
		struct spool_jrec *n = realloc(js->recs, cap * sizeof(*n));

		if (n == NULL)
			return -1;
		js->recs = n;
		js->cap = cap;
	}
	js->recs[js->n_recs++] = *r;
	js->n_live++;
	return 0;
}

/*
 * Read a journal: the magic line, then records. A stretch that is not an
 * intact record ends the journal when no intact record follows it (a torn
 * tail: the append of a batch whose sync never finished, so nothing in it
 * was acknowledged); otherwise it is corruption, skipped up to the next
 * intact record. A missing or cut magic line is such a stretch too; a
 * complete magic line of another version fails (-1, *error_r): the
 * journal is not ours to interpret. -1 also when out of memory. On success
 * js lists the commit records (pointers into buf), `live` ones first
 * waiting for recovery.
 */
static int
spool_journal_scan(const char *buf, size_t len, struct spool_jscan *js,
		   const char **error_r)
{
	const size_t mlen = sizeof(SPOOL_JOURNAL_MAGIC) - 1;
	size_t off = 0;

	memset(js, 0, sizeof(*js));
	js->bad_off = len;
	if (len >= mlen && memcmp(buf, SPOOL_JOURNAL_MAGIC, mlen) == 0) {
		off = mlen;
	} else if (len > 0) {
		const char *nl = memchr(buf, '\n', len < 64 ? len : 64);

		if (nl != NULL && len > 16 &&
		    memcmp(buf, "postern-journal ", 16) == 0) {
			*error_r = "unknown journal version";
			return -1;
		}
	}
	while (off < len) {
		struct spool_jrec r;
		size_t n =
		    off == 0 ? 0 : spool_journal_rec(buf + off, len - off, &r);

		if (n == 0) {
			size_t next = spool_journal_resync(buf, len, off, &r);

			if (js->bad_off == len)
				js->bad_off = off;
			if (next == len) {
				js->torn = true;
				break;
			}
			js->corrupt = true;
			off = next;
			n = r.raw_len;
		}
		if (spool_journal_apply(js, &r) < 0) {
			*error_r = "out of memory";
			spool_jscan_free(js);
			return -1;
		}
		off += n;
	}
	return 0;
}

/* ---- small helpers ------------------------------------------------------- */

static int
spool_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = spool_fs.write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read the regular file open on `fd` (at most `max` octets, else EFBIG)
 * into a new buffer; a NUL follows the contents. NULL on error (errno).
 */
static char *
spool_read_fd(int fd, uint64_t max, size_t *len_r)
{
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fstat(fd, &st) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return NULL;
	while (off < (size_t)st.st_size) {
		ssize_t n =
		    pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break; /* shrank under us: the parser will refuse */
		off += (size_t)n;
	}
	buf[off] = '\0';
	*len_r = off;
	return buf;
}

/* Read <dfd>/<name> (a regular file, never a symlink, bounded). */
static char *
spool_read_env(int dfd, const char *name, size_t *len_r)
{
	char *buf;
	int fd, saved;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = spool_read_fd(fd, SPOOL_ENV_MAX, len_r);
	saved = errno;
	close(fd);
	errno = saved;
	return buf;
}

/* Is `s` usable as a spool area (one path component we created)? */
static bool
spool_area_ok(const char *s)
{
	return s != NULL && strcmp(s, "quarantine") != 0 &&
	       strcmp(s, "queue") != 0 && mailpath_check_part(s, strlen(s)) &&
	       strchr(s, '+') == NULL && strchr(s, '=') == NULL;
}

static void
spool_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Open (creating when missing) directory `name` under dfd, 0700. */
static int
spool_open_dir(int dfd, const char *name)
{
	if (spool_fs.mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
		return -1;
	return spool_fs.openat(dfd, name, SPOOL_DIR_FLAGS, 0);
}

/* ---- open and close ------------------------------------------------------ */

static void *spool_committer(void *arg);

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
 * Open (creating) the area's journal. A journal left with content is
 * taken over only when it is clean - intact to the end, every commit
 * record done (a clean shutdown that could not truncate) - and then
 * truncated; one with unfinished messages or damage is recovery's.
 */
static int
spool_journal_open(struct spool *sp, const char **error_r)
{
	struct spool_jscan js;
	char *buf;
	size_t len = 0;
	int r;

	*error_r = "cannot open the journal";
	sp->journal_fd = spool_fs.openat(
	    sp->area_fd, SPOOL_JOURNAL,
	    O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sp->journal_fd < 0)
		return -1;
	buf = spool_read_fd(sp->journal_fd, SPOOL_JOURNAL_READ_MAX, &len);
	if (buf == NULL)
		return -1;
	r = len == 0 ? 0 : spool_journal_scan(buf, len, &js, error_r);
	free(buf);
	if (r < 0 || len == 0)
		return r;
	r = js.n_live == 0 && !js.torn && !js.corrupt ? 0 : -1;
	spool_jscan_free(&js);
	*error_r = "the spool area holds unrecovered messages";
	if (r < 0)
		return -1;
	*error_r = "cannot truncate the journal";
	return spool_fs.ftruncate(sp->journal_fd, 0);
}

/*
 * Open the area of this process and start its committer. The spool
 * directory is made absolute (realpath) so that the hard-link source
 * path stays valid whatever the process's working directory becomes.
 * The new directory entries (area, tmp/, journal) are made durable here,
 * once, so that no batch has to.
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
	if (spool_fs.mkdirat(AT_FDCWD, dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	root = realpath(dir, NULL);
	*error_r = "cannot open the spool directory";
	if (root == NULL)
		goto fail;
	root_fd = spool_fs.openat(AT_FDCWD, root, SPOOL_DIR_FLAGS, 0);
	if (root_fd < 0)
		goto fail;
	*error_r = "cannot create the spool area";
	sp->area_fd = spool_open_dir(root_fd, area);
	if (sp->area_fd < 0)
		goto fail;
	sp->tmp_fd = spool_open_dir(sp->area_fd, "tmp");
	if (sp->tmp_fd < 0 || spool_journal_open(sp, error_r) < 0)
		goto fail;
	*error_r = "cannot sync the spool area";
	if (spool_fs.fsync(sp->area_fd) < 0 || spool_fs.fsync(root_fd) < 0)
		goto fail;
	*error_r = "cannot create the queue directory";
	if (spool_open_queue(sp, root, root_fd) < 0)
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

static void spool_journal_finish(struct spool *sp);

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
		m->fd =
		    spool_fs.openat(sp->tmp_fd, m->id, SPOOL_NEW_FLAGS, 0600);
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
	if (spool_write_all(msg->fd, buf, len) < 0) {
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
	if (spool_fs.unlinkat(m->sp->tmp_fd, m->id, 0) < 0)
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

/* ---- the outbound queue (docs/queue-format.md) -------------------------- */

#define SPOOL_QNAME_MAX (SPOOL_ID_MAX + 8)

/* queue/<id><suffix>: ".msg", ".tmp" or ".env". */
static const char *
spool_qname(char *buf, const char *id, const char *suffix)
{
	int n = snprintf(buf, SPOOL_QNAME_MAX, "%s%s", id, suffix);

	if (n < 0 || n >= SPOOL_QNAME_MAX)
		abort(); /* ids are checked: cannot happen */
	return buf;
}

/*
 * Copy `src` (in directory sfd) to a new file `name` in dfd and fsync it:
 * the fallback when the queue is on another file system than the spool
 * area (a mount point), so the link fails with EXDEV. Rare; the fsync
 * keeps both sync methods right without a special case. 0 or -1.
 */
static int
spool_copy(int sfd, const char *src, int dfd, const char *name)
{
	char buf[65536];
	int in, out, r = -1, saved;
	ssize_t n;

	in = spool_fs.openat(sfd, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (in < 0)
		return -1;
	out = spool_fs.openat(dfd, name, SPOOL_NEW_FLAGS, 0600);
	if (out < 0)
		goto out_in;
	for (;;) {
		n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || spool_write_all(out, buf, (size_t)n) < 0)
			break;
	}
	if (n == 0)
		r = spool_fs.fsync(out);
	saved = errno;
	close(out);
	if (r < 0)
		spool_fs.unlinkat(dfd, name, 0);
	errno = saved;
out_in:
	saved = errno;
	close(in);
	errno = saved;
	return r;
}

/*
 * The queue envelope: `env` with only its remote recipients (and so always
 * version 2). Formatted into a new buffer; 0 or -1.
 */
static int
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
static int
spool_queue_prepare(int qfd, int tfd, const struct spool_env *env,
		    bool do_fsync, bool *msg_r, bool *tmp_r)
{
	char name[SPOOL_QNAME_MAX], *buf;
	size_t len;
	int fd, r, saved;

	spool_qname(name, env->id, ".msg");
	r = spool_fs.linkat(tfd, env->id, qfd, name, 0);
	if (r < 0 && errno == EXDEV)
		r = spool_copy(tfd, env->id, qfd, name);
	if (r < 0)
		return -1;
	*msg_r = true;
	if (spool_queue_env(env, &buf, &len) < 0)
		return -1;
	fd = spool_fs.openat(qfd, spool_qname(name, env->id, ".tmp"),
			     SPOOL_NEW_FLAGS, 0600);
	r = -1;
	if (fd >= 0) {
		*tmp_r = true;
		r = spool_write_all(fd, buf, len);
		if (r == 0 && do_fsync)
			r = spool_fs.fsync(fd);
		saved = errno;
		close(fd);
		errno = saved;
	}
	free(buf);
	return r;
}

/* The entry appears: queue/<id>.tmp renamed to queue/<id>.env. */
static int
spool_queue_publish(int qfd, const char *id)
{
	char from[SPOOL_QNAME_MAX], to[SPOOL_QNAME_MAX];

	return spool_fs.renameat(qfd, spool_qname(from, id, ".tmp"), qfd,
				 spool_qname(to, id, ".env"), RENAME_NOREPLACE);
}

/* ---- the committer ------------------------------------------------------- */

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
 * The Maildir `path`, created if this spool has not seen it yet. Cached
 * with its device so that step 5 knows which file systems to sync.
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
	if (maildir_create(path) < 0 || stat(path, &st) < 0)
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
 * Step 1 for one message: its envelope formatted (for the commit record),
 * its data made durable with SYNC_FSYNC, and for remote recipients the
 * first half of its queue entry, queue/<id>.msg and .tmp.
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
	if (sp->sync == SYNC_FSYNC && m->fd >= 0)
		r = spool_fs.fsync(m->fd);
	spool_close_fd(&m->fd);
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
	if (spool_fs.fsync(sp->tmp_fd) < 0) {
		spool_fail_all(msgs, n, 2, errno);
		return;
	}
	if (spool_any_queued(msgs, n) && spool_fs.fsync(sp->queue_fd) < 0)
		for (size_t i = 0; i < n; i++)
			if (spool_live(msgs[i]) && msgs[i]->has_remote)
				spool_fail(msgs[i], 2, errno);
}

/*
 * Bring the journal back to its last intact state after an append that
 * failed (it may have written part of its records): truncated to j_size,
 * or to 0 when no record is pending. 0, or -1 with j_bad still set.
 */
static int
spool_journal_repair(struct spool *sp)
{
	uint64_t to = sp->j_pending == 0 ? 0 : sp->j_size;

	if (spool_fs.ftruncate(sp->journal_fd, (off_t)to) < 0) {
		log_error("spool", "spool journal-truncate error=%s",
			  spool_errname(errno));
		sp->j_bad = true;
		return -1;
	}
	sp->j_size = to;
	sp->j_bad = false;
	return 0;
}

/* Start the records of one append (the magic line first in an empty
   journal). */
static int
spool_journal_start(struct spool *sp)
{
	sp->j_buf.len = 0;
	if (sp->j_size == 0)
		return spool_buf_add(&sp->j_buf, SPOOL_JOURNAL_MAGIC,
				     sizeof(SPOOL_JOURNAL_MAGIC) - 1);
	return 0;
}

/* Append sp->j_buf with one write(2) (O_APPEND); on failure the journal
   is repaired (or marked j_bad). 0 or -1 (errno). */
static int
spool_journal_append(struct spool *sp)
{
	int saved;

	if (spool_write_all(sp->journal_fd, sp->j_buf.data, sp->j_buf.len) ==
	    0) {
		sp->j_size += sp->j_buf.len;
		return 0;
	}
	saved = errno;
	log_error("spool", "spool journal-write error=%s",
		  spool_errname(saved));
	spool_journal_repair(sp);
	errno = saved;
	return -1;
}

/*
 * Step 3: one commit record per live message, appended with one write,
 * then the one sync that makes the data files, the queue parts and the
 * records durable together: syncfs of the spool file system (and of the
 * queue's when it is another), or fsync of the journal (the data and the
 * directories were fsync'd by steps 1 and 2). The sync returning is the
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
		r = spool_fs.fsync(sp->journal_fd);
	else
		r = spool_fs.syncfs(sp->area_fd);
	if (r == 0 && sp->sync == SYNC_SYNCFS && sp->queue_other_fs &&
	    spool_any_queued(msgs, n))
		r = spool_fs.syncfs(sp->queue_fd);
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
 * Step 4 for one message: link it into every local recipient's Maildir,
 * then publish its queue entry if it has remote recipients.
 */
static void
spool_step_deliver(struct spool *sp, struct spool_msg *m)
{
	char name[SPOOL_MDNAME_MAX], src[SPOOL_PATH_MAX];
	struct stat st;
	int n;

	n = snprintf(src, sizeof(src), "%s/tmp/%s", sp->area_path, m->id);
	if (n < 0 || (size_t)n >= sizeof(src) ||
	    maildir_name(m->time, m->id, sp->hostname, name, sizeof(name)) <
		0) {
		spool_fail(m, 4, ENAMETOOLONG);
		return;
	}
	for (size_t i = 0; i < m->env.n_rcpts && spool_live(m); i++) {
		const char *dir = m->env.rcpts[i].maildir;
		struct spool_md *md;
		bool dup = dir == NULL; /* remote: the queue's */
		int r;

		for (size_t j = 0; j < i && !dup; j++)
			dup = m->env.rcpts[j].maildir != NULL &&
			      strcmp(m->env.rcpts[j].maildir, dir) == 0;
		if (dup)
			continue; /* one copy per Maildir */
		md = spool_cache_get(sp, dir);
		if (md == NULL) {
			spool_fail(m, 4, errno);
			break;
		}
		r = maildir_deliver_fresh(dir, name, src);
		if (r < 0 && errno == ENOENT && maildir_create(dir) == 0) {
			/* Removed since we cached it: created again. */
			if (stat(dir, &st) == 0)
				md->dev = st.st_dev;
			r = maildir_deliver_fresh(dir, name, src);
		}
		if (r < 0) {
			spool_fail(m, 4, errno);
			break;
		}
		m->mds[i] = md;
		m->state[i] =
		    r == 0 ? SPOOL_RCPT_DELIVERED : SPOOL_RCPT_PRESENT;
		md->gen = sp->gen;
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

/* A descriptor on file system `dev` for syncfs(); *tmp when not kept. */
static int
spool_dev_fd(struct spool *sp, const struct spool_md *md, bool *tmp)
{
	int fd;

	*tmp = false;
	for (size_t i = 0; i < sp->n_devs; i++)
		if (sp->devs[i].dev == md->dev)
			return sp->devs[i].fd;
	fd = spool_fs.openat(AT_FDCWD, md->path, SPOOL_DIR_FLAGS, 0);
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

/* fsync() new/ of one Maildir (SYNC_FSYNC); 0 or -1. */
static int
spool_fsync_new(const struct spool_md *md)
{
	int dfd, fd, r, saved;

	dfd = spool_fs.openat(AT_FDCWD, md->path, SPOOL_DIR_FLAGS, 0);
	if (dfd < 0)
		return -1;
	fd = spool_fs.openat(dfd, "new", SPOOL_DIR_FLAGS, 0);
	saved = errno;
	close(dfd);
	errno = saved;
	if (fd < 0)
		return -1;
	r = spool_fs.fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* One file system synced by step 5 of this batch, and how it went. */
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
	r = fd < 0 ? -1 : spool_fs.syncfs(fd);
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

			if (m->state[j] == SPOOL_RCPT_NONE || md == NULL ||
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
			? spool_fs.fsync(sp->queue_fd)
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
			if (m->state[j] != SPOOL_RCPT_NONE &&
			    m->mds[j] != NULL &&
			    m->mds[j]->failed_gen == sp->gen)
				spool_fail(m, 5, EIO);
	}
}

/* Remove new/<name> from the Maildir `dir` (undo of a delivery). 0 when
   it is gone, -1 when it may still be there. */
static int
spool_undeliver(const char *dir, const char *name)
{
	int dfd, nfd, r = -1;

	dfd = spool_fs.openat(AT_FDCWD, dir, SPOOL_DIR_FLAGS, 0);
	if (dfd < 0)
		return -1;
	nfd = spool_fs.openat(dfd, "new", SPOOL_DIR_FLAGS, 0);
	if (nfd >= 0) {
		r = spool_fs.unlinkat(nfd, name, 0) == 0 || errno == ENOENT
			? 0
			: -1;
		close(nfd);
	}
	close(dfd);
	return r;
}

/* unlinkat() where a name already gone counts as success. */
static bool
spool_unlink_ok(int dfd, const char *name)
{
	return spool_fs.unlinkat(dfd, name, 0) == 0 || errno == ENOENT;
}

/*
 * Step 6 for a failed message: the client will hear 451 and send it
 * again, so everything this batch did for it is taken back - its queue
 * entry and new deliveries first, then its data; a committed message then
 * owes a done record. If a removal fails, a committed message is instead
 * left whole for recovery (data kept, no done record), which will deliver
 * it everywhere: a duplicate of a message never acknowledged, rather than
 * a partial one. The same holds when the undo is cut short by a crash.
 */
static void
spool_undo(struct spool *sp, struct spool_msg *m)
{
	char name[SPOOL_MDNAME_MAX];
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
	if (maildir_name(m->time, m->id, sp->hostname, name, sizeof(name)) == 0)
		for (size_t i = 0; i < m->env.n_rcpts && ok; i++)
			if (m->state[i] == SPOOL_RCPT_DELIVERED)
				ok = spool_undeliver(m->env.rcpts[i].maildir,
						     name) == 0;
	spool_close_fd(&m->fd);
	if (!ok && m->committed) {
		m->keep = true;
		log_error(m->id, "spool undo-incomplete: left for recovery");
		return;
	}
	spool_fs.unlinkat(sp->tmp_fd, m->id, 0);
}

/* Owe a done record for `id` (appended by step 8). */
static void
spool_owe_done(struct spool *sp, const char *id)
{
	if (spool_journal_add(&sp->j_owed, "done", id, "", 0) == 0)
		sp->j_owed_n++;
	/* else out of memory: the record stays pending, recovery redoes
	   idempotent work */
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
			memcpy(sp->done_ids[sp->n_done_ids++], m->id,
			       sizeof(m->id));
		} else {
			spool_undo(sp, m);
		}
		if (m->committed && !m->keep)
			spool_owe_done(sp, m->id);
	}
}

/*
 * Step 8, after the replies are on their way: append the done records
 * owed (one write; kept for the next try if it fails), remove the data
 * files of the finished messages, and truncate the journal to 0 (same
 * inode) when no record is pending and it is larger than `max`. None of
 * this is synced: if it is lost in a crash, recovery finds the messages
 * delivered (the Maildir name is deterministic) and just finishes them.
 */
static void
spool_journal_settle(struct spool *sp, uint64_t max)
{
	if (sp->j_owed_n > 0 && !(sp->j_bad && spool_journal_repair(sp) < 0) &&
	    spool_journal_start(sp) == 0 &&
	    spool_buf_add(&sp->j_buf, sp->j_owed.data, sp->j_owed.len) == 0 &&
	    spool_journal_append(sp) == 0) {
		sp->j_pending -= sp->j_owed_n;
		sp->j_owed_n = 0;
		sp->j_owed.len = 0;
	}
	for (size_t i = 0; i < sp->n_done_ids; i++)
		if (spool_fs.unlinkat(sp->tmp_fd, sp->done_ids[i], 0) < 0)
			log_warning(sp->done_ids[i],
				    "spool unlink-data error=%s",
				    spool_errname(errno));
	sp->n_done_ids = 0;
	if (sp->j_pending == 0 && (sp->j_size > max || sp->j_bad))
		spool_journal_repair(sp); /* to 0, as nothing is pending */
}

/* At close: what is owed, and an idle journal emptied. */
static void
spool_journal_finish(struct spool *sp)
{
	spool_journal_settle(sp, 0);
}

static void *
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
		if (n == 0)
			break; /* stopping, nothing left */
		spool_commit_batch(sp, batch, n);
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

/* ---- recovery ------------------------------------------------------------ */

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

/* Names in directory `fd` (not "." or ".."), as a NULL-ended array. */
static char **
spool_list_dir(int fd, size_t *n_r)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int dfd = dup(fd);

	*n_r = 0;
	if (dfd < 0)
		return NULL;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return NULL;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n + 1 >= cap) {
			size_t ncap = cap != 0 ? cap * 2 : 16;
			char **nn = realloc(names, ncap * sizeof(*names));

			if (nn == NULL)
				goto fail;
			names = nn;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (names[n] == NULL)
			goto fail;
		names[++n] = NULL;
	}
	closedir(d);
	if (names == NULL)
		names = calloc(1, sizeof(*names));
	*n_r = n;
	return names;
fail:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return NULL;
}

static void
spool_free_list(char **names, size_t n)
{
	if (names == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Append a copy of `name` to a list; false when out of memory. */
static bool
spool_list_add(char ***list, size_t *n, const char *name)
{
	char **l = realloc(*list, (*n + 1) * sizeof(*l));

	if (l == NULL)
		return false;
	*list = l;
	l[*n] = strdup(name);
	if (l[*n] == NULL)
		return false;
	(*n)++;
	return true;
}

static bool
spool_list_has(char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
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
		if (spool_fs.renameat(fd, name, qfd, qname, RENAME_NOREPLACE) ==
		    0) {
			log_warning("spool",
				    "spool quarantined area=%s file=%s "
				    "reason=\"%s\" as=%s",
				    rc->area, esc, reason, qname);
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
		fd = spool_fs.openat(qfd, qname, SPOOL_NEW_FLAGS, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		goto out;
	r = spool_write_all(fd, text, len) < 0 || spool_fs.fsync(fd) < 0 ||
		    spool_fs.fsync(qfd) < 0
		? -1
		: 0;
	close(fd);
	if (r < 0)
		spool_fs.unlinkat(qfd, qname, 0);
	else
		log_warning("spool",
			    "spool quarantined area=%s file=journal id=%s "
			    "reason=\"%s\" as=%s",
			    rc->area, name, reason, qname);
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

/* Remember the file system of Maildir `dir` for the sync of phase 2. */
static void
spool_rec_add_dev(struct spool_rec *rc, const char *dir)
{
	struct stat st;
	int fd;

	fd = spool_fs.openat(AT_FDCWD, dir, SPOOL_DIR_FLAGS, 0);
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
	if (spool_fs.syncfs(fd) < 0) /* too many file systems: sync now */
		rc->sync_failed = true;
out:
	if (fd >= 0)
		close(fd);
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
	if ((spool_fs.unlinkat(rc->queue_fd, spool_qname(name, env->id, ".tmp"),
			       0) < 0 &&
	     errno != ENOENT) ||
	    (spool_fs.unlinkat(rc->queue_fd, spool_qname(name, env->id, ".msg"),
			       0) < 0 &&
	     errno != ENOENT) ||
	    spool_queue_prepare(rc->queue_fd, rc->tmp_fd, env, true, &made_msg,
				&made_tmp) < 0 ||
	    spool_fs.fsync(rc->queue_fd) < 0 ||
	    spool_queue_publish(rc->queue_fd, env->id) < 0) {
		log_error(env->id, "spool recover-queue error=%s",
			  spool_errname(errno));
		return -1; /* the parts stay: the next recovery replaces them */
	}
	spool_rec_add_dev(rc, path);
	return 1;
}

/*
 * Deliver one committed message to every local recipient that does not
 * have it yet (maildir_deliver() recognises a finished delivery by its
 * name), and complete its queue entry if it has remote recipients.
 * Returns true when every recipient has it now (durable after phase 2).
 * Without data, only looks: true when every recipient had it already.
 */
static bool
spool_rec_deliver(struct spool_rec *rc, const struct spool_env *env,
		  const char *src, bool has_data)
{
	char name[SPOOL_MDNAME_MAX];
	bool ok = true, fresh = false, remote = false;

	if (maildir_name((long)env->time, env->id, rc->hostname, name,
			 sizeof(name)) < 0)
		return false;
	for (size_t i = 0; i < env->n_rcpts && ok; i++) {
		const char *dir = env->rcpts[i].maildir;
		int r = -1;

		if (dir == NULL) {
			remote = true;
			continue;
		}
		if (!has_data || maildir_create(dir) == 0)
			r = maildir_deliver(dir, name, src);
		if (r < 0 && has_data)
			log_error(env->id,
				  "spool recover-deliver rcpt=%zu error=%s", i,
				  spool_errname(errno));
		if (r < 0)
			ok = false;
		else
			spool_rec_add_dev(rc, dir);
		fresh = fresh || r == 0;
	}
	if (ok && remote) {
		int r = spool_rec_queue(rc, env, has_data);

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
	if (spool_fs.unlinkat(rc->queue_fd, spool_qname(name, id, ".tmp"), 0) <
		0 &&
	    errno != ENOENT)
		goto fail;
	if (fstatat(rc->queue_fd, spool_qname(name, id, ".env"), &st,
		    AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno == ENOENT &&
	    (spool_fs.unlinkat(rc->queue_fd, spool_qname(name, id, ".msg"),
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
	char src[SPOOL_PATH_MAX];
	struct spool_env env;
	struct stat st;
	bool has_data;
	int fate, n;

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
	n = snprintf(src, sizeof(src), "%s/%s/tmp/%s", rc->dir, rc->area, id);
	if (n > 0 && (size_t)n < sizeof(src) &&
	    spool_rec_deliver(rc, &env, src, has_data)) {
		fate = SPOOL_FATE_DONE;
	} else if (!has_data) {
		*error_r = "data missing, not delivered everywhere";
	} else {
		log_error(id, "spool recover-deferred");
		fate = SPOOL_FATE_KEEP;
	}
out:
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

		if (spool_list_has(rc->keep, rc->n_keep, names[i]) ||
		    spool_rec_unqueue(rc, names[i]) < 0)
			continue;
		if (rc->suspicious && !spool_rec_known(rc, names[i])) {
			spool_quarantine(rc, rc->tmp_fd, names[i], ".data",
					 "not in the damaged journal");
			continue;
		}
		if (spool_fs.unlinkat(rc->tmp_fd, names[i], 0) == 0)
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

	if (spool_fs.unlinkat(rc->area_fd, SPOOL_JOURNAL_NEW, 0) < 0 &&
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
		r = spool_fs.unlinkat(rc->area_fd, SPOOL_JOURNAL, 0) == 0 ||
			    errno == ENOENT
			? 0
			: -1;
		goto out;
	}
	fd = spool_fs.openat(rc->area_fd, SPOOL_JOURNAL_NEW, SPOOL_NEW_FLAGS,
			     0600);
	if (fd < 0)
		goto out;
	if (spool_write_all(fd, b.data, b.len) < 0 || spool_fs.fsync(fd) < 0 ||
	    spool_fs.renameat(rc->area_fd, SPOOL_JOURNAL_NEW, rc->area_fd,
			      SPOOL_JOURNAL, 0) < 0) {
		saved = errno;
		spool_fs.unlinkat(rc->area_fd, SPOOL_JOURNAL_NEW, 0);
		errno = saved;
		goto out;
	}
	r = spool_fs.fsync(rc->area_fd);
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
		spool_fs.unlinkat(rc->committed_fd, rc->done[i], 0);
		spool_fs.unlinkat(rc->tmp_fd, rc->done[i], 0);
		log_info(rc->done[i], "spool recovered");
	}
	if (!rc->has_journal)
		return;
	spool_rec_journal_write(rc);
	for (size_t i = 0; i < rc->js.n_recs; i++) {
		const struct spool_jrec *j = &rc->js.recs[i];

		if (!j->live || j->fate != SPOOL_FATE_DONE)
			continue;
		spool_fs.unlinkat(rc->tmp_fd, j->id, 0);
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
		if (spool_fs.syncfs(rc->dev_fds[i]) < 0)
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

	rc->area_fd = spool_fs.openat(root_fd, area, SPOOL_DIR_FLAGS, 0);
	if (rc->area_fd < 0)
		return false;
	/* A directory that exists but cannot be opened now: touch nothing
	   (missing data would look like a finished message). */
	rc->committed_fd =
	    spool_fs.openat(rc->area_fd, "committed", SPOOL_DIR_FLAGS, 0);
	ok = rc->committed_fd >= 0 || errno == ENOENT;
	if (ok) {
		rc->tmp_fd =
		    spool_fs.openat(rc->area_fd, "tmp", SPOOL_DIR_FLAGS, 0);
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
	rc.queue_fd = spool_fs.openat(root_fd, "queue", SPOOL_DIR_FLAGS, 0);
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
	spool_fs.unlinkat(rc.area_fd, "tmp", AT_REMOVEDIR);
	spool_fs.unlinkat(rc.area_fd, "committed", AT_REMOVEDIR);
	if (spool_fs.unlinkat(root_fd, area, AT_REMOVEDIR) < 0 &&
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
	root_fd = spool_fs.openat(AT_FDCWD, dir, SPOOL_DIR_FLAGS, 0);
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
