/*
 * test_gstore.c - the guard's state store (src/auth/gstore.c): put, get,
 * del, each, flush, reopen, a full map, and a damaged file (garbage,
 * truncated, wrong version record) moved aside and rebuilt empty.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
expect_rebuilt(struct fixture *f)
{
	struct gstore *st = open_ok(f);
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
