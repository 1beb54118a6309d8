/*
 * test_gstore.c - the guard's state store (src/auth/gstore.c): put, get,
 * del, each, flush, reopen, a full map, and a damaged file (garbage,
 * truncated, wrong version record, a damaged free-page list: its layout
 * is read from LMDB's meta page and checked against mdb_env_info and
 * mdb_stat) moved aside and rebuilt empty.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "auth/gstore.h"
#include "lib/log.h"

struct fixture {
	char dir[64];
	char file[128];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_gstore.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->file, sizeof(f->file), "%s/guard.mdb", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct gstore *
open_ok(const struct fixture *f)
{
	struct gstore *st = NULL;
	const char *error = NULL;

	assert_int_equal(gstore_open(f->dir, &st, &error), 0);
	assert_non_null(st);
	return st;
}

static int
get_text(struct gstore *st, enum gstore_table t, const char *key,
	 char *out, size_t size)
{
	size_t n = size - 1;
	int rc = gstore_get(st, t, key, strlen(key), out, &n);

	if (rc == 1)
		out[n] = '\0';
	return rc;
}

static void
put_text(struct gstore *st, enum gstore_table t, const char *key,
	 const char *val)
{
	assert_int_equal(
	    gstore_put(st, t, key, strlen(key), val, strlen(val)), 0);
}

/* How many files in the directory start with "guard.mdb.corrupt-". */
static int
count_aside(const struct fixture *f)
{
	DIR *d = opendir(f->dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "guard.mdb.corrupt-", 18) == 0)
			n++;
	closedir(d);
	return n;
}

/* --- put, get, del, flush --------------------------------------------- */

static void
test_put_get_del_flush(void **state)
{
	struct fixture *f = *state;
	struct gstore *st = open_ok(f);
	const char *error;
	char buf[64];
	size_t small = 1;

	assert_int_equal(get_text(st, GSTORE_LOCKOUT, "k1", buf, sizeof(buf)),
			 0);
	put_text(st, GSTORE_LOCKOUT, "k1", "v1");
	put_text(st, GSTORE_SEND, "k1", "other table");
	assert_int_equal(gstore_pending(st), 2);
	/* The batch is visible before the flush. */
	assert_int_equal(get_text(st, GSTORE_LOCKOUT, "k1", buf, sizeof(buf)),
			 1);
	assert_string_equal(buf, "v1");
	assert_int_equal(gstore_count(st, GSTORE_LOCKOUT), 0);
	assert_int_equal(gstore_flush(st, &error), 0);
	assert_int_equal(gstore_pending(st), 0);
	assert_int_equal(gstore_count(st, GSTORE_LOCKOUT), 1);
	assert_int_equal(get_text(st, GSTORE_SEND, "k1", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "other table");
	/* The last write of a key wins; a value too long for the buffer is an
	   error, not a cut copy. */
	put_text(st, GSTORE_LOCKOUT, "k1", "v2");
	put_text(st, GSTORE_LOCKOUT, "k1", "v3");
	assert_int_equal(gstore_pending(st), 1);
	assert_int_equal(gstore_get(st, GSTORE_LOCKOUT, "k1", 2, buf, &small),
			 -1);
	assert_int_equal(gstore_flush(st, &error), 0);
	assert_int_equal(get_text(st, GSTORE_LOCKOUT, "k1", buf, sizeof(buf)),
			 1);
	assert_string_equal(buf, "v3");
	small = 1;
	assert_int_equal(gstore_get(st, GSTORE_LOCKOUT, "k1", 2, buf, &small),
			 -1);
	/* del, seen before and after the flush; deleting an absent key. */
	assert_int_equal(gstore_del(st, GSTORE_LOCKOUT, "k1", 2), 0);
	assert_int_equal(gstore_del(st, GSTORE_LOCKOUT, "nope", 4), 0);
	assert_int_equal(get_text(st, GSTORE_LOCKOUT, "k1", buf, sizeof(buf)),
			 0);
	assert_int_equal(gstore_flush(st, &error), 0);
	assert_int_equal(get_text(st, GSTORE_LOCKOUT, "k1", buf, sizeof(buf)),
			 0);
	assert_int_equal(gstore_count(st, GSTORE_LOCKOUT), 0);
	/* Bad arguments. */
	assert_int_equal(gstore_put(st, GSTORE_N_TABLES, "k", 1, "v", 1), -1);
	assert_int_equal(gstore_put(st, GSTORE_LOCKOUT, "k", 0, "v", 1), -1);
	{
		static char big[GSTORE_VALUE_MAX + 1];

		assert_int_equal(gstore_put(st, GSTORE_LOCKOUT, "k", 1, big,
					    sizeof(big)),
				 -1);
		assert_int_equal(gstore_put(st, GSTORE_LOCKOUT, big,
					    GSTORE_KEY_MAX + 1, "v", 1),
				 -1);
	}
	gstore_close(&st);
	assert_null(st);
}

/* --- each ---------------------------------------------------------------- */

struct walk {
	int seen;
	int stop_after;
	struct gstore *st;
};

static int
walk_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct walk *w = arg;

	assert_true(kl == 2 && vl == 1);
	(void)v;
	w->seen++;
	/* A callback may write: it goes into the next batch. */
	if (w->st != NULL && memcmp(k, "k3", 2) == 0)
		assert_int_equal(gstore_del(w->st, GSTORE_RCPTS, k, kl), 0);
	return w->stop_after > 0 && w->seen >= w->stop_after;
}

static void
test_each(void **state)
{
	struct fixture *f = *state;
	struct gstore *st = open_ok(f);
	struct walk w = {0, 0, NULL};
	const char *error;
	char key[3];

	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(gstore_put(st, GSTORE_RCPTS, key, 2, "x", 1),
				 0);
	}
	put_text(st, GSTORE_SEND, "zz", "y");
	/* each commits the batch first: all 10 are seen, unflushed. */
	assert_int_equal(gstore_each(st, GSTORE_RCPTS, walk_cb, &w), 0);
	assert_int_equal(w.seen, 10);
	w = (struct walk){0, 4, NULL};
	assert_int_equal(gstore_each(st, GSTORE_RCPTS, walk_cb, &w), 0);
	assert_int_equal(w.seen, 4);
	w = (struct walk){0, 0, st};
	assert_int_equal(gstore_each(st, GSTORE_RCPTS, walk_cb, &w), 0);
	assert_int_equal(w.seen, 10);
	assert_int_equal(gstore_pending(st), 1);
	assert_int_equal(gstore_flush(st, &error), 0);
	assert_int_equal(gstore_count(st, GSTORE_RCPTS), 9);
	assert_int_equal(gstore_count(st, GSTORE_SEND), 1);
	gstore_close(&st);
}

/* --- reopen ---------------------------------------------------------------- */

static void
test_reopen_keeps_data(void **state)
{
	struct fixture *f = *state;
	struct gstore *st = open_ok(f);
	const char *error;
	char buf[64];

	put_text(st, GSTORE_KNOWN_NETS, "alice", "198.51.100.0/24");
	assert_int_equal(gstore_flush(st, &error), 0);
	put_text(st, GSTORE_KNOWN_NETS, "bob", "at close");
	gstore_close(&st); /* close flushes */
	st = open_ok(f);
	assert_int_equal(
	    get_text(st, GSTORE_KNOWN_NETS, "alice", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "198.51.100.0/24");
	assert_int_equal(
	    get_text(st, GSTORE_KNOWN_NETS, "bob", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "at close");
	assert_int_equal(count_aside(f), 0);
	gstore_close(&st);
}

/* A store made before the "notices" table existed (the four first
   tables only) is kept at open, not moved aside, and gets the table. */
static void
test_store_without_notices_table(void **state)
{
	struct fixture *f = *state;
	struct gstore *st = open_ok(f);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	const char *error;
	char buf[64];

	put_text(st, GSTORE_KNOWN_NETS, "alice", "198.51.100.0/24");
	gstore_close(&st);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, f->file, MDB_NOSUBDIR, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "notices", 0, &dbi), 0);
	assert_int_equal(mdb_drop(txn, dbi, 1), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "notices", 0, &dbi), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	st = open_ok(f);
	assert_int_equal(count_aside(f), 0);
	assert_int_equal(
	    get_text(st, GSTORE_KNOWN_NETS, "alice", buf, sizeof(buf)), 1);
	put_text(st, GSTORE_NOTICES, "n1", "pending");
	assert_int_equal(gstore_flush(st, &error), 0);
	gstore_close(&st);
	st = open_ok(f);
	assert_int_equal(count_aside(f), 0);
	assert_int_equal(get_text(st, GSTORE_NOTICES, "n1", buf, sizeof(buf)),
			 1);
	assert_string_equal(buf, "pending");
	gstore_close(&st);
}

/* A store whose free-page list has records (many deletes, several
   commits) passes the check of that list at open: not moved aside. */
static void
test_free_list_passes(void **state)
{
	struct fixture *f = *state;
	struct gstore *st = open_ok(f);
	const char *error;
	char key[16], buf[64];

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2000; i++) {
			snprintf(key, sizeof(key), "key%d", i);
			put_text(st, GSTORE_LOCKOUT, key, "some value here");
		}
		assert_int_equal(gstore_flush(st, &error), 0);
		for (int i = 0; i < 2000; i += 2) {
			snprintf(key, sizeof(key), "key%d", i);
			assert_int_equal(gstore_del(st, GSTORE_LOCKOUT, key,
						    strlen(key)),
					 0);
		}
		assert_int_equal(gstore_flush(st, &error), 0);
	}
	gstore_close(&st);
	st = open_ok(f);
	assert_int_equal(count_aside(f), 0);
	assert_int_equal(get_text(st, GSTORE_LOCKOUT, "key1", buf, sizeof(buf)),
			 1);
	assert_int_equal(gstore_count(st, GSTORE_LOCKOUT), 1000);
	gstore_close(&st);
}

/* --- damaged files ---------------------------------------------------------- */

static void
write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A store with one record, then `damage`, then open: rebuilt empty, the
   old file kept aside. */
static void
expect_rebuilt_from(struct fixture *f, struct gstore *st)
{
	const char *error;
	char buf[64];

	assert_int_equal(count_aside(f), 1);
	assert_int_equal(get_text(st, GSTORE_LOCKOUT, "k", buf, sizeof(buf)),
			 0);
	assert_int_equal(gstore_count(st, GSTORE_LOCKOUT), 0);
	/* And it works. */
	put_text(st, GSTORE_LOCKOUT, "new", "1");
	assert_int_equal(gstore_flush(st, &error), 0);
	gstore_close(&st);
	st = open_ok(f);
	assert_int_equal(count_aside(f), 1);
	assert_int_equal(
	    get_text(st, GSTORE_LOCKOUT, "new", buf, sizeof(buf)), 1);
	gstore_close(&st);
}

static void
expect_rebuilt(struct fixture *f)
{
	expect_rebuilt_from(f, open_ok(f));
}

static void
make_store_with_record(struct fixture *f)
{
	struct gstore *st = open_ok(f);
	const char *error;

	for (int i = 0; i < 2000; i++) {
		char key[16];

		snprintf(key, sizeof(key), "key%d", i);
		put_text(st, GSTORE_LOCKOUT, key, "some value, some value");
	}
	put_text(st, GSTORE_LOCKOUT, "k", "v");
	assert_int_equal(gstore_flush(st, &error), 0);
	gstore_close(&st);
}

/* --- a damaged free-page list ------------------------------------------------ */

/* LMDB's on-disk layout (liblmdb 0.9, 64-bit; mdb.c: MDB_page, MDB_meta,
   MDB_db, MDB_node), read here only to damage a file on purpose. A page
   starts with a 16-octet header: page number (8), pad (2), flags (2),
   lower (2), upper (2); then, on a leaf, 2-octet offsets of its nodes.
   Pages 0 and 1 are the meta pages: after the header, magic (4), version
   (4), address (8), map size (8), then two MDB_db of 48 octets (free-page
   list, main), the last page number (8) and the transaction id (8). An
   MDB_db: pad (4: the page size in the free list's), flags (2), depth (2),
   branch, leaf, overflow pages, entries, root page (8 each). A leaf node:
   data size (2 + 2, low half first), flags (2), key size (2), key, data. */
#define L_HDR 16
#define L_META_MAGIC (L_HDR + 0)
#define L_META_FREE (L_HDR + 24) /* mm_dbs[FREE_DBI] */
#define L_META_LAST (L_META_FREE + 2 * 48)
#define L_META_TXNID (L_META_LAST + 8)
#define L_DB_PAD 0
#define L_DB_DEPTH 6
#define L_DB_ENTRIES 32
#define L_DB_ROOT 40
#define L_P_LEAF 0x02
#define L_F_BIGDATA 0x01
#define L_MAGIC 0xBEEFC0DEu

static uint64_t
rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static unsigned
rd16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* What LMDB's own API says of the free-page list and the last commit, to
   check the offsets above against. */
static void
free_list_stat(const struct fixture *f, MDB_stat *ms, MDB_envinfo *info)
{
	MDB_env *env;
	MDB_txn *txn;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, f->file,
				      MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK,
				      0600),
			 0);
	assert_int_equal(mdb_env_info(env, info), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_stat(txn, 0, ms), 0); /* 0: FREE_DBI */
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* The root page number of the free-page list, from the newer meta page,
   after checking that page against what LMDB reports (so a wrong offset
   fails here, not silently). *psize_r: the page size. */
static uint64_t
free_list_root(const struct fixture *f, int fd, size_t *psize_r)
{
	unsigned char meta[2][512];
	const unsigned char *m;
	MDB_stat ms;
	MDB_envinfo info;
	size_t psize;

	free_list_stat(f, &ms, &info);
	psize = ms.ms_psize;
	assert_int_equal(pread(fd, meta[0], sizeof(meta[0]), 0),
			 (ssize_t)sizeof(meta[0]));
	assert_int_equal(pread(fd, meta[1], sizeof(meta[1]), (off_t)psize),
			 (ssize_t)sizeof(meta[1]));
	m = rd64(meta[1] + L_META_TXNID) > rd64(meta[0] + L_META_TXNID)
		? meta[1]
		: meta[0];
	assert_int_equal(rd64(m + L_META_MAGIC) & 0xffffffffu, L_MAGIC);
	assert_int_equal(rd64(m + L_META_TXNID), info.me_last_txnid);
	assert_int_equal(rd64(m + L_META_LAST), info.me_last_pgno);
	assert_int_equal(rd64(m + L_META_FREE + L_DB_PAD) & 0xffffffffu,
			 psize);
	assert_int_equal(rd16(m + L_META_FREE + L_DB_DEPTH), ms.ms_depth);
	assert_int_equal(rd64(m + L_META_FREE + L_DB_ENTRIES), ms.ms_entries);
	/* The churn left a free list of records, all in one leaf page. */
	assert_true(ms.ms_entries >= 2);
	assert_int_equal(ms.ms_depth, 1);
	*psize_r = psize;
	return rd64(m + L_META_FREE + L_DB_ROOT);
}

/* Overwrite every page number of every free-list record (count first,
   then the numbers) with `bad`, counting down: beyond the file and the
   map. Returns how many numbers were overwritten. */
static size_t
damage_free_ids(int fd, unsigned char *page, size_t psize, uint64_t bad)
{
	size_t done = 0, nkeys = (rd16(page + 12) - L_HDR) / 2;

	for (size_t i = 0; i < nkeys && i < psize / 2; i++) {
		unsigned off = rd16(page + L_HDR + 2 * i);
		unsigned char *node = page + off, ov[L_HDR + 8 * 64];
		size_t dsize = rd16(node) | (size_t)rd16(node + 2) << 16;
		unsigned char *data = node + 8 + rd16(node + 6);
		off_t at = -1; /* where `data` lives when not on this page */
		uint64_t n;

		assert_true(off + 8u <= psize && rd16(node + 6) == 8);
		if (rd16(node + 4) & L_F_BIGDATA) { /* on an overflow page */
			at = (off_t)(rd64(data) * psize);
			assert_int_equal(pread(fd, ov, sizeof(ov), at),
					 (ssize_t)sizeof(ov));
			data = ov + L_HDR;
			at += L_HDR;
		} else {
			assert_true((size_t)(data - page) + dsize <= psize);
		}
		n = rd64(data);
		assert_true(n >= 1 && (n + 1) * 8 <= dsize);
		for (uint64_t j = 1; j <= n && j < 64; j++, done++) {
			uint64_t id = bad - done;

			memcpy(data + j * 8, &id, 8);
		}
		if (at >= 0)
			assert_int_equal(pwrite(fd, ov + L_HDR, 64 * 8, at),
					 64 * 8);
	}
	return done;
}

/* Churn (as test_free_list_passes) so that the free list has records,
   then `how`: 0 overwrite its page numbers with numbers past the map,
   1 overwrite its root page with garbage. */
static void
damage_free_list(struct fixture *f, int how)
{
	struct gstore *st = open_ok(f);
	const char *error;
	char key[16];
	unsigned char *page;
	uint64_t root;
	size_t psize;
	int fd;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2000; i++) {
			snprintf(key, sizeof(key), "key%d", i);
			put_text(st, GSTORE_LOCKOUT, key, "some value here");
		}
		assert_int_equal(gstore_flush(st, &error), 0);
		for (int i = 0; i < 2000; i += 2) {
			snprintf(key, sizeof(key), "key%d", i);
			assert_int_equal(gstore_del(st, GSTORE_LOCKOUT, key,
						    strlen(key)),
					 0);
		}
		assert_int_equal(gstore_flush(st, &error), 0);
	}
	put_text(st, GSTORE_LOCKOUT, "k", "v");
	gstore_close(&st);
	fd = open(f->file, O_RDWR);
	assert_true(fd >= 0);
	root = free_list_root(f, fd, &psize);
	page = malloc(psize);
	assert_non_null(page);
	assert_int_equal(pread(fd, page, psize, (off_t)(root * psize)),
			 (ssize_t)psize);
	assert_int_equal(rd64(page), root); /* the page names itself */
	assert_true(rd16(page + 10) & L_P_LEAF);
	if (how == 0)
		assert_true(damage_free_ids(fd, page, psize,
					    (uint64_t)1 << 40) > 0);
	else
		for (size_t i = 0; i < psize; i++)
			page[i] = (unsigned char)(i * 131 + 7);
	assert_int_equal(pwrite(fd, page, psize, (off_t)(root * psize)),
			 (ssize_t)psize);
	close(fd);
	free(page);
}

/* The damage is real: a write transaction on a copy of the file, in a
   child, with raw LMDB, does not end well (it crashes, or the commit or a
   read after it fails). */
static void
expect_raw_write_fails(const struct fixture *f)
{
	char copy[160], cmd[400];
	pid_t pid;
	int status;

	snprintf(copy, sizeof(copy), "%s/copy.mdb", f->dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", f->file, copy);
	assert_int_equal(system(cmd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		MDB_val k = {3, (void *)"new"}, v = {1, (void *)"1"}, got;

		alarm(60);
		if (mdb_env_create(&env) != 0 ||
		    mdb_env_set_maxdbs(env, 8) != 0 ||
		    mdb_env_open(env, copy, MDB_NOSUBDIR, 0600) != 0 ||
		    mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
		    mdb_dbi_open(txn, "lockout", 0, &dbi) != 0 ||
		    mdb_put(txn, dbi, &k, &v, 0) != 0 ||
		    mdb_txn_commit(txn) != 0 ||
		    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0 ||
		    mdb_get(txn, dbi, &k, &got) != 0)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(unlink(copy), 0);
	snprintf(cmd, sizeof(cmd), "rm -f '%s-lock'", copy);
	assert_int_equal(system(cmd), 0);
}

/* gstore_open() with stderr (the log) going to a file: the store, and
   that file's text in *log_r (malloc'd). No assertion runs while stderr
   is redirected (a failed one would leave it so). */
static struct gstore *
open_logged(const struct fixture *f, char **log_r)
{
	struct gstore *st = NULL;
	const char *error = NULL;
	char path[160];
	int fd, saved, rc;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/log.txt", f->dir);
	fflush(stderr);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	rc = gstore_open(f->dir, &st, &error);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(rc, 0);
	assert_int_equal(fstat(fd, &sb), 0);
	*log_r = calloc(1, (size_t)sb.st_size + 1);
	assert_non_null(*log_r);
	assert_int_equal(pread(fd, *log_r, (size_t)sb.st_size, 0),
			 (ssize_t)sb.st_size);
	close(fd);
	assert_int_equal(unlink(path), 0);
	fputs(*log_r, stderr); /* still shown with the test's output */
	return st;
}

/* How many times `needle` occurs in `hay`. */
static int
count_in(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Damage `how` (damage_free_list), check that it is real, then open
   through gstore: one gstore-corrupt line, the file moved aside, a new
   empty store that takes a flush (expect_rebuilt_from). */
static void
free_list_case(struct fixture *f, int how)
{
	struct gstore *st;
	char *log;

	damage_free_list(f, how);
	expect_raw_write_fails(f);
	st = open_logged(f, &log);
	assert_int_equal(count_in(log, "gstore-corrupt "), 1);
	assert_int_equal(count_in(log, "reason=\"a record cannot be read\""),
			 1);
	free(log);
	expect_rebuilt_from(f, st);
}

/* The free list's page numbers past the end of the map: the walk of the
   tables passes, only the walk of the free list sees it. Without it the
   file was kept and the first flush failed. */
static void
test_free_list_bad_ids(void **state)
{
	free_list_case(*state, 0);
}

/* The free list's root page overwritten with garbage. */
static void
test_free_list_garbage_page(void **state)
{
	free_list_case(*state, 1);
}

static void
test_garbage_file(void **state)
{
	struct fixture *f = *state;
	static unsigned char junk[65536];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	write_file(f->file, junk, sizeof(junk));
	expect_rebuilt(f);
}

static void
test_garbage_over_pages(void **state)
{
	struct fixture *f = *state;
	static unsigned char junk[8192];
	int fd;

	make_store_with_record(f);
	/* Overwrite the data pages after the two meta pages. */
	memset(junk, 0xA5, sizeof(junk));
	fd = open(f->file, O_WRONLY);
	assert_true(fd >= 0);
	for (off_t at = 2 * 4096; at < 40 * 4096; at += sizeof(junk))
		assert_int_equal(pwrite(fd, junk, sizeof(junk), at),
				 (ssize_t)sizeof(junk));
	close(fd);
	expect_rebuilt(f);
}

static void
test_truncated_file(void **state)
{
	struct fixture *f = *state;
	struct stat sb;

	make_store_with_record(f);
	assert_int_equal(stat(f->file, &sb), 0);
	assert_true(sb.st_size > 4 * 4096);
	assert_int_equal(truncate(f->file, sb.st_size / 2), 0);
	expect_rebuilt(f);
}

static void
test_truncated_to_little(void **state)
{
	struct fixture *f = *state;

	make_store_with_record(f);
	assert_int_equal(truncate(f->file, 100), 0);
	expect_rebuilt(f);
}

/* Rewrite the version record with raw LMDB calls. */
static void
set_version_record(const struct fixture *f, const void *val, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta;
	MDB_val k = {7, (void *)"version"}, v = {len, (void *)val};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, f->file, MDB_NOSUBDIR, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	if (val == NULL)
		assert_int_equal(mdb_del(txn, meta, &k, NULL), 0);
	else
		assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
test_wrong_version(void **state)
{
	struct fixture *f = *state;
	static const unsigned char v2[] = "postern-gstore\0\0\0\0\x02";

	make_store_with_record(f);
	set_version_record(f, v2, sizeof(v2) - 1);
	expect_rebuilt(f);
}

static void
test_wrong_magic(void **state)
{
	struct fixture *f = *state;

	make_store_with_record(f);
	set_version_record(f, "someone-else", 12);
	expect_rebuilt(f);
}

static void
test_no_version(void **state)
{
	struct fixture *f = *state;

	make_store_with_record(f);
	set_version_record(f, NULL, 0);
	expect_rebuilt(f);
}

static void
test_bad_directory(void **state)
{
	struct fixture *f = *state;
	struct gstore *st = NULL;
	const char *error = NULL;
	char sub[128];

	snprintf(sub, sizeof(sub), "%s/open", f->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(gstore_open(sub, &st, &error), -1);
	assert_null(st);
	assert_non_null(strstr(error, "0700"));
}

/* --- a full map ------------------------------------------------------------ */

static void
test_full_map(void **state)
{
	struct fixture *f = *state;
	struct gstore *st = NULL;
	const char *error = NULL;
	static char val[1000];
	char key[16], buf[64];
	int rc = 0, i;

	assert_int_equal(gstore_open_size(f->dir, 256 * 1024, &st, &error),
			 0);
	put_text(st, GSTORE_SEND, "early", "kept");
	assert_int_equal(gstore_flush(st, &error), 0);
	memset(val, 'v', sizeof(val));
	/* 256 KiB cannot hold 1,000 values of 1,000 octets. */
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(gstore_put(st, GSTORE_SEND, key, strlen(key),
					    val, sizeof(val)),
				 0);
	}
	rc = gstore_flush(st, &error);
	assert_int_equal(rc, -1);
	assert_string_equal(error, "store full");
	/* The batch is dropped; what was committed stays; the store still
	   takes writes that fit. */
	assert_int_equal(gstore_pending(st), 0);
	assert_int_equal(get_text(st, GSTORE_SEND, "early", buf, sizeof(buf)),
			 1);
	assert_int_equal(get_text(st, GSTORE_SEND, "k1", buf, sizeof(buf)), 0);
	put_text(st, GSTORE_SEND, "later", "fits");
	assert_int_equal(gstore_flush(st, &error), 0);
	gstore_close(&st);
	assert_int_equal(gstore_open_size(f->dir, 256 * 1024, &st, &error),
			 0);
	assert_int_equal(get_text(st, GSTORE_SEND, "later", buf, sizeof(buf)),
			 1);
	assert_int_equal(count_aside(f), 0);
	gstore_close(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_put_get_del_flush, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_each, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_list_passes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_store_without_notices_table,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_list_bad_ids, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_free_list_garbage_page, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_file, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_over_pages, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_file, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_to_little, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_version, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_magic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_directory, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_full_map, setup, teardown),
	};

	log_init("test_gstore", true, LOG_LEVEL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
