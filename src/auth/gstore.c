/*
 * gstore.c - the guard's state store on LMDB (gstore.h,
 * docs/guard-state.md).
 *
 * One file `guard.mdb` (and its lock file `guard.mdb-lock`) in the state
 * directory, one named LMDB database per table plus "meta", which holds the
 * version record. Writes wait in an in-memory batch (a hash table keyed
 * with a random SipHash key, so a flood of chosen keys cannot make it
 * slow) and gstore_flush() commits them in one write transaction.
 *
 * LMDB trusts its file: a damaged page can make it read outside the map
 * (SIGSEGV, SIGBUS). So an existing file is first checked in a child
 * process that opens it read-only and walks every record; if the child
 * fails or dies, the file is moved aside and a new one is made. The parent
 * never touches a file the child did not pass.
 */
#include "auth/gstore.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "lib/log.h"

#define SID "guard"
#define GSTORE_FILE "guard.mdb"
#define GSTORE_BUCKETS 4096
#define GSTORE_MAGIC "postern-gstore"
#define GSTORE_VERSION 1
#define GSTORE_PATH_MAX 4096
#define GSTORE_CHECK_SECONDS 60 /* reading 256 MiB takes far less */

static const char *const gstore_names[GSTORE_N_TABLES] = {
    "lockout", "known-nets", "send", "rcpts", "notices"};
/* Tables the first stores were made with; a later one ("notices") may be
   missing from an older file: the open creates it, the check allows it. */
#define GSTORE_TABLES_FIRST 4

/* One write waiting in the batch: key then value in `data`. */
struct gstore_op {
	struct gstore_op *next;
	enum gstore_table table;
	bool is_del;
	size_t klen, vlen;
	unsigned char data[];
};

struct gstore {
	MDB_env *env;
	MDB_dbi dbi[GSTORE_N_TABLES];
	char path[GSTORE_PATH_MAX];
	size_t map_size;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
	struct gstore_op *bucket[GSTORE_BUCKETS];
	size_t pending;
	time_t logged;	   /* last gstore-write-failed line */
	unsigned unlogged; /* failures since */
};

/* The version record: magic, NUL, then the version in 4 octets (big
   endian). */
static size_t
gstore_version_record(unsigned char out[32])
{
	size_t n = sizeof(GSTORE_MAGIC);

	memcpy(out, GSTORE_MAGIC, n);
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = GSTORE_VERSION;
	return n;
}

/* --- the batch -------------------------------------------------------- */

static size_t
gstore_bucket(const struct gstore *st, enum gstore_table t, const void *key,
	      size_t klen)
{
	unsigned char in[GSTORE_KEY_MAX + 1], h[crypto_shorthash_BYTES];
	uint64_t v;

	in[0] = (unsigned char)t;
	memcpy(in + 1, key, klen);
	crypto_shorthash(h, in, klen + 1, st->hkey);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v % GSTORE_BUCKETS);
}

/* The batch's op for this key (its link, to replace or unlink it). */
static struct gstore_op **
gstore_find(struct gstore *st, enum gstore_table t, const void *key,
	    size_t klen)
{
	struct gstore_op **pp = &st->bucket[gstore_bucket(st, t, key, klen)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->table == t && (*pp)->klen == klen &&
		    memcmp((*pp)->data, key, klen) == 0)
			return pp;
	return pp;
}

static void
gstore_batch_clear(struct gstore *st)
{
	for (size_t b = 0; b < GSTORE_BUCKETS; b++) {
		while (st->bucket[b] != NULL) {
			struct gstore_op *op = st->bucket[b];

			st->bucket[b] = op->next;
			free(op);
		}
	}
	st->pending = 0;
}

static bool
gstore_args_ok(enum gstore_table t, size_t klen, size_t vlen)
{
	return (unsigned)t < GSTORE_N_TABLES && klen > 0 &&
	       klen <= GSTORE_KEY_MAX && vlen <= GSTORE_VALUE_MAX;
}

static int
gstore_batch_add(struct gstore *st, enum gstore_table t, const void *key,
		 size_t klen, const void *val, size_t vlen, bool is_del)
{
	struct gstore_op **pp, *op;

	if (st == NULL || !gstore_args_ok(t, klen, vlen))
		return -1;
	op = malloc(sizeof(*op) + klen + vlen);
	if (op == NULL)
		return -1;
	op->table = t;
	op->is_del = is_del;
	op->klen = klen;
	op->vlen = vlen;
	memcpy(op->data, key, klen);
	if (vlen > 0)
		memcpy(op->data + klen, val, vlen);
	pp = gstore_find(st, t, key, klen);
	if (*pp != NULL) { /* the last write of a key wins */
		op->next = (*pp)->next;
		free(*pp);
	} else {
		op->next = NULL;
		st->pending++;
	}
	*pp = op;
	if (st->pending >= GSTORE_BATCH_MAX) {
		const char *error;

		if (gstore_flush(st, &error) < 0)
			return -1;
	}
	return 0;
}

int
gstore_put(struct gstore *st, enum gstore_table t, const void *key,
	   size_t klen, const void *val, size_t vlen)
{
	return gstore_batch_add(st, t, key, klen, val, vlen, false);
}

int
gstore_del(struct gstore *st, enum gstore_table t, const void *key,
	   size_t klen)
{
	return gstore_batch_add(st, t, key, klen, NULL, 0, true);
}

size_t
gstore_pending(const struct gstore *st)
{
	return st == NULL ? 0 : st->pending;
}

/* --- reads and the commit --------------------------------------------- */

int
gstore_get(struct gstore *st, enum gstore_table t, const void *key,
	   size_t klen, void *val, size_t *vlen_io)
{
	struct gstore_op **pp;
	MDB_txn *txn;
	MDB_val k = {klen, (void *)key}, v;
	int rc, ret;

	if (st == NULL || !gstore_args_ok(t, klen, 0))
		return -1;
	pp = gstore_find(st, t, key, klen);
	if (*pp != NULL) {
		if ((*pp)->is_del)
			return 0;
		if ((*pp)->vlen > *vlen_io)
			return -1;
		memcpy(val, (*pp)->data + klen, (*pp)->vlen);
		*vlen_io = (*pp)->vlen;
		return 1;
	}
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	rc = mdb_get(txn, st->dbi[t], &k, &v);
	if (rc == MDB_NOTFOUND)
		ret = 0;
	else if (rc != 0 || v.mv_size > *vlen_io)
		ret = -1;
	else {
		memcpy(val, v.mv_data, v.mv_size);
		*vlen_io = v.mv_size;
		ret = 1;
	}
	mdb_txn_abort(txn);
	return ret;
}

static int
gstore_apply(struct gstore *st, MDB_txn *txn)
{
	for (size_t b = 0; b < GSTORE_BUCKETS; b++) {
		for (struct gstore_op *op = st->bucket[b]; op != NULL;
		     op = op->next) {
			MDB_val k = {op->klen, op->data};
			MDB_val v = {op->vlen, op->data + op->klen};
			int rc = op->is_del
				     ? mdb_del(txn, st->dbi[op->table], &k, NULL)
				     : mdb_put(txn, st->dbi[op->table], &k, &v, 0);

			if (rc != 0 && !(op->is_del && rc == MDB_NOTFOUND))
				return rc;
		}
	}
	return 0;
}

static const char *
gstore_why(int rc)
{
	return rc == MDB_MAP_FULL ? "store full" : mdb_strerror(rc);
}

int
gstore_flush(struct gstore *st, const char **error_r)
{
	MDB_txn *txn;
	int rc;

	if (st == NULL) {
		*error_r = "no store";
		return -1;
	}
	if (st->pending == 0)
		return 0;
	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc == 0) {
		rc = gstore_apply(st, txn);
		if (rc != 0)
			mdb_txn_abort(txn);
		else
			rc = mdb_txn_commit(txn);
	}
	if (rc != 0) {
		char esc[GSTORE_PATH_MAX * 4 + 8];
		time_t now = time(NULL);

		/* A full store fails every second: one line a minute. */
		if (st->logged == 0 || now - st->logged >= 60 ||
		    now < st->logged) {
			log_error(SID, "gstore-write-failed file=%s writes=%zu "
				       "error=\"%s\" failures-unlogged=%u",
				  log_escape(esc, sizeof(esc), st->path,
					     strlen(st->path), 1000),
				  st->pending, gstore_why(rc), st->unlogged);
			st->logged = now;
			st->unlogged = 0;
		} else {
			st->unlogged++;
		}
		*error_r = gstore_why(rc);
	}
	gstore_batch_clear(st);
	return rc == 0 ? 0 : -1;
}

int
gstore_each(struct gstore *st, enum gstore_table t,
	    int (*fn)(const void *k, size_t kl, const void *v, size_t vl,
		      void *arg),
	    void *arg)
{
	const char *error;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (st == NULL || (unsigned)t >= GSTORE_N_TABLES ||
	    gstore_flush(st, &error) < 0)
		return -1;
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if (mdb_cursor_open(txn, st->dbi[t], &cur) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

size_t
gstore_count(struct gstore *st, enum gstore_table t)
{
	MDB_txn *txn;
	MDB_stat ms;
	size_t n = 0;

	if (st == NULL || (unsigned)t >= GSTORE_N_TABLES ||
	    mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_stat(txn, st->dbi[t], &ms) == 0)
		n = ms.ms_entries;
	mdb_txn_abort(txn);
	return n;
}

/* --- the check of an existing file (in a child) ------------------------ */

enum gstore_bad {
	GSTORE_GOOD = 0,
	GSTORE_BAD_OPEN = 3,
	GSTORE_BAD_SHORT,
	GSTORE_BAD_NO_VERSION,
	GSTORE_BAD_VERSION,
	GSTORE_BAD_TABLE,
	GSTORE_BAD_READ,
	GSTORE_BAD_SIGNAL,
};

static const char *
gstore_bad_text(int code)
{
	switch (code) {
	case GSTORE_BAD_OPEN:
		return "not an LMDB file (cannot open)";
	case GSTORE_BAD_SHORT:
		return "truncated";
	case GSTORE_BAD_NO_VERSION:
		return "no version record";
	case GSTORE_BAD_VERSION:
		return "wrong version record";
	case GSTORE_BAD_TABLE:
		return "a table is missing";
	case GSTORE_BAD_READ:
		return "a record cannot be read";
	case GSTORE_BAD_SIGNAL:
		return "reading it crashed the check, or never ended";
	default:
		return "the check failed";
	}
}

static void
gstore_check_crashed(int sig)
{
	(void)sig;
	_exit(GSTORE_BAD_SIGNAL);
}

/* Walk one table to the end. */
static int
gstore_check_table(MDB_txn *txn, const char *name)
{
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (mdb_dbi_open(txn, name, 0, &dbi) != 0)
		return GSTORE_BAD_TABLE;
	if (mdb_cursor_open(txn, dbi, &cur) != 0)
		return GSTORE_BAD_READ;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? GSTORE_GOOD : GSTORE_BAD_READ;
}

/* Walk LMDB's free-page list (database 0, as `mdb_stat -f` reads it):
   every write transaction reads it, so a damaged one would crash the
   guard at its first flush. Each record is a count, then that many page
   numbers, all below the last page in use. */
static int
gstore_check_free(MDB_txn *txn, size_t last_pgno)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (mdb_cursor_open(txn, 0, &cur) != 0)
		return GSTORE_BAD_READ;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		size_t n, id, have = v.mv_size / sizeof(size_t);

		if (have == 0 || v.mv_size % sizeof(size_t) != 0)
			break;
		memcpy(&n, v.mv_data, sizeof(n)); /* may be unaligned */
		if (n >= have)
			break;
		for (size_t i = 1; i <= n; i++) {
			memcpy(&id, (const char *)v.mv_data + i * sizeof(id),
			       sizeof(id));
			if (id < 2 || id > last_pgno) /* 0, 1: the meta pages */
				goto bad;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
bad:
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? GSTORE_GOOD : GSTORE_BAD_READ;
}

static int
gstore_check_txn(MDB_txn *txn, size_t last_pgno)
{
	unsigned char want[32];
	size_t wn = gstore_version_record(want);
	MDB_dbi meta;
	MDB_val k = {7, (void *)"version"}, v;
	int bad;

	if (mdb_dbi_open(txn, "meta", 0, &meta) != 0 ||
	    mdb_get(txn, meta, &k, &v) != 0)
		return GSTORE_BAD_NO_VERSION;
	if (v.mv_size != wn || memcmp(v.mv_data, want, wn) != 0)
		return GSTORE_BAD_VERSION;
	for (size_t i = 0; i < GSTORE_N_TABLES; i++) {
		MDB_dbi dbi;

		if (i >= GSTORE_TABLES_FIRST &&
		    mdb_dbi_open(txn, gstore_names[i], 0, &dbi) == MDB_NOTFOUND)
			continue;
		if ((bad = gstore_check_table(txn, gstore_names[i])) != 0)
			return bad;
	}
	return gstore_check_free(txn, last_pgno);
}

/* In the child: open read-only without the lock file, compare the size
   the meta page claims with the file's, read every record. */
static int
gstore_check_file(const char *path, off_t size, size_t map_size)
{
	MDB_env *env;
	MDB_envinfo info;
	MDB_stat ms;
	MDB_txn *txn;
	int bad;

	if (mdb_env_create(&env) != 0 ||
	    mdb_env_set_maxdbs(env, GSTORE_N_TABLES + 1) != 0 ||
	    mdb_env_set_mapsize(env, map_size > (size_t)size ? map_size
							     : (size_t)size) != 0)
		return GSTORE_BAD_OPEN;
	if (mdb_env_open(env, path,
			 MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS,
			 0600) != 0)
		return GSTORE_BAD_OPEN;
	if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &ms) != 0)
		return GSTORE_BAD_OPEN;
	if ((off_t)((info.me_last_pgno + 1) * (size_t)ms.ms_psize) > size)
		return GSTORE_BAD_SHORT;
	if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
		return GSTORE_BAD_OPEN;
	bad = gstore_check_txn(txn, info.me_last_pgno);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return bad;
}

/* 0 the file is good (or absent), else a gstore_bad code. */
static int
gstore_check(const char *path, size_t map_size)
{
	struct stat sb;
	pid_t pid;
	int status;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? GSTORE_GOOD : GSTORE_BAD_OPEN;
	if (!S_ISREG(sb.st_mode))
		return GSTORE_BAD_OPEN;
	if (sb.st_size < 2 * (off_t)sysconf(_SC_PAGESIZE))
		return GSTORE_BAD_SHORT; /* two meta pages, at least */
	pid = fork();
	if (pid < 0)
		return GSTORE_BAD_OPEN;
	if (pid == 0) {
		struct sigaction sa = {.sa_handler = gstore_check_crashed};

		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		sigaction(SIGFPE, &sa, NULL);
		sigaction(SIGILL, &sa, NULL);
		sigaction(SIGABRT, &sa, NULL);
		sigaction(SIGALRM, &sa, NULL); /* a loop in damaged pages */
		alarm(GSTORE_CHECK_SECONDS);
		_exit(gstore_check_file(path, sb.st_size, map_size));
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return GSTORE_BAD_OPEN;
	if (WIFSIGNALED(status))
		return GSTORE_BAD_SIGNAL;
	return WIFEXITED(status) ? WEXITSTATUS(status) : GSTORE_BAD_OPEN;
}

/* --- open ---------------------------------------------------------------- */

/* Move a bad file aside (and drop its lock file); one log line. */
static void
gstore_move_aside(const char *path, const char *why)
{
	char aside[GSTORE_PATH_MAX + 64], lock[GSTORE_PATH_MAX + 8];
	char esc[GSTORE_PATH_MAX * 4 + 8];
	int n = snprintf(aside, sizeof(aside), "%s.corrupt-%lld", path,
			 (long long)time(NULL));
	const char *moved = "none";

	if (n > 0 && (size_t)n < sizeof(aside) && rename(path, aside) == 0)
		moved = strrchr(aside, '/') != NULL ? strrchr(aside, '/') + 1
						    : aside;
	else if (unlink(path) == 0)
		moved = "removed";
	n = snprintf(lock, sizeof(lock), "%s-lock", path);
	if (n > 0 && (size_t)n < sizeof(lock))
		unlink(lock);
	log_error(SID, "gstore-corrupt file=%s reason=\"%s\" moved-to=%s "
		       "action=\"rebuilt empty\"",
		  log_escape(esc, sizeof(esc), path, strlen(path), 1000), why,
		  moved);
}

/* Open the tables (creating them) and write or compare the version
   record. 0, or an MDB error, or -GSTORE_BAD_VERSION. */
static int
gstore_open_tables(struct gstore *st)
{
	unsigned char want[32];
	size_t wn = gstore_version_record(want);
	MDB_txn *txn;
	MDB_dbi meta;
	MDB_val k = {7, (void *)"version"}, v = {wn, want}, have;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);

	if (rc != 0)
		return rc;
	rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta);
	for (size_t i = 0; rc == 0 && i < GSTORE_N_TABLES; i++)
		rc = mdb_dbi_open(txn, gstore_names[i], MDB_CREATE,
				  &st->dbi[i]);
	if (rc == 0) {
		rc = mdb_get(txn, meta, &k, &have);
		if (rc == MDB_NOTFOUND)
			rc = mdb_put(txn, meta, &k, &v, 0);
		else if (rc == 0 && (have.mv_size != wn ||
				     memcmp(have.mv_data, want, wn) != 0))
			rc = -GSTORE_BAD_VERSION;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

static int
gstore_env_open(struct gstore *st)
{
	int rc, dead;

	if ((rc = mdb_env_create(&st->env)) != 0)
		return rc;
	rc = mdb_env_set_maxdbs(st->env, GSTORE_N_TABLES + 1);
	if (rc == 0)
		rc = mdb_env_set_mapsize(st->env, st->map_size);
	if (rc == 0)
		rc = mdb_env_open(st->env, st->path, MDB_NOSUBDIR | MDB_NOTLS,
				  0600);
	if (rc == 0)
		rc = mdb_reader_check(st->env, &dead); /* after a kill -9 */
	if (rc == 0)
		rc = gstore_open_tables(st);
	if (rc != 0) {
		mdb_env_close(st->env);
		st->env = NULL;
	}
	return rc;
}

static int
gstore_dir(const char *dir, const char **error_r)
{
	struct stat sb;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = "cannot make the state directory";
		return -1;
	}
	if (lstat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		*error_r = "the state directory is not a directory";
		return -1;
	}
	if (sb.st_uid != geteuid() || (sb.st_mode & 077) != 0) {
		*error_r = "the state directory must be the guard's own, "
			   "mode 0700";
		return -1;
	}
	return 0;
}

int
gstore_open_size(const char *dir, size_t map_size, struct gstore **st_r,
		 const char **error_r)
{
	struct gstore *st;
	int n, bad, rc;

	*st_r = NULL;
	if (sodium_init() < 0) {
		*error_r = "libsodium";
		return -1;
	}
	if (gstore_dir(dir, error_r) < 0)
		return -1;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	n = snprintf(st->path, sizeof(st->path), "%s/%s", dir, GSTORE_FILE);
	if (n < 0 || (size_t)n >= sizeof(st->path)) {
		free(st);
		*error_r = "state directory name too long";
		return -1;
	}
	st->map_size = map_size;
	randombytes_buf(st->hkey, sizeof(st->hkey));
	if ((bad = gstore_check(st->path, map_size)) != GSTORE_GOOD)
		gstore_move_aside(st->path, gstore_bad_text(bad));
	rc = gstore_env_open(st);
	if (rc != 0) { /* passed the check, failed anyway: once more */
		gstore_move_aside(st->path, rc == -GSTORE_BAD_VERSION
						? gstore_bad_text(GSTORE_BAD_VERSION)
						: mdb_strerror(rc));
		rc = gstore_env_open(st);
	}
	if (rc != 0) {
		*error_r = rc < 0 ? "wrong version record" : mdb_strerror(rc);
		free(st);
		return -1;
	}
	*st_r = st;
	return 0;
}

int
gstore_open(const char *dir, struct gstore **st_r, const char **error_r)
{
	return gstore_open_size(dir, GSTORE_MAP_SIZE, st_r, error_r);
}

void
gstore_close(struct gstore **stp)
{
	struct gstore *st = *stp;
	const char *error;

	if (st == NULL)
		return;
	*stp = NULL;
	(void)gstore_flush(st, &error); /* a failure is logged */
	mdb_env_close(st->env);
	free(st);
}
