/*
 * test_maildir.c - Maildir path checks, expansion, unique names and
 * delivery (THREATS F-01, F-04).
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/maildir.h"
#include "store/storefs.h"


static char root[64];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/test_maildir.XXXXXX");
	return mkdtemp(root) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
path_of(char *buf, size_t size, const char *rel)
{
	int n = snprintf(buf, size, "%s/%s", root, rel);

	assert_true(n > 0 && (size_t)n < size);
}

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Entries in `dir` other than . and .. (0 when it does not exist). */
static size_t
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* ---- maildir_name ---- */

static void
test_name(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(
	    maildir_name(1700000000, "0abc", "a/b:c", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1700000000.0abc.a\\057b\\072c");
	assert_int_equal(
	    maildir_name(5, "id", "mx.example.org", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "5.id.mx.example.org");
	assert_int_equal(maildir_name(5, "id", "a b\x01\xff", buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "5.id.a\\040b\\001\\377");
	assert_null(strchr(buf, '/'));
	/* "5.id.h" needs 7 octets. */
	assert_int_equal(maildir_name(5, "id", "h", buf, 7), 0);
	assert_int_equal(maildir_name(5, "id", "h", buf, 6), -1);
	assert_int_equal(maildir_name(5, "id", "/", buf, 9), -1);
	assert_int_equal(maildir_name(5, "id", "/", buf, 10), 0);
}

/* A valid DNS name of `len` octets: labels of up to 63 'a'..'z'. */
static void
long_host(char *buf, size_t len, char first)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = i % 64 == 63 ? '.' : (char)(first + i % 26);
	buf[len] = '\0';
}

/* Issue 6 item 4: every name fits NAME_MAX, whatever the hostname. */
static void
test_name_long_host(void **state)
{
	char host[300], other[300], buf[MAILDIR_NAME_MAX], buf2[1200], p[512];
	const char *id = "0123456789abcdef0123456";
	size_t head = strlen("9223372036854775807.") + strlen(id) + 1;
	int fd;

	(void)state;
	/* 128 octets: as written. */
	long_host(host, 128, 'a');
	assert_int_equal(maildir_name(5, "id", host, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 5 + 128);
	assert_string_equal(buf + 5, host);
	/* 253 octets: the first 111 and a digest, 128 in all. */
	long_host(host, 253, 'a');
	assert_int_equal(maildir_name(LONG_MAX, id, host, buf, sizeof(buf)),
			 0);
	assert_int_equal(strlen(buf), head + 128);
	assert_true(strlen(buf) + strlen(":2,abcdefghijklmnopqrstuvwxyz") <
		    255);
	assert_memory_equal(buf + head, host, 111);
	assert_int_equal(buf[head + 111], '-');
	assert_int_equal(strspn(buf + head + 112, "0123456789abcdef"), 16);
	/* Deterministic; another host with the same first 200 octets gets
	   another name. */
	assert_int_equal(maildir_name(LONG_MAX, id, host, buf2, sizeof(buf2)),
			 0);
	assert_string_equal(buf, buf2);
	memcpy(other, host, sizeof(host));
	other[250] = 'z';
	assert_int_equal(maildir_name(LONG_MAX, id, other, buf2, sizeof(buf2)),
			 0);
	assert_memory_equal(buf, buf2, head + 111);
	assert_string_not_equal(buf, buf2);
	/* The file can be made, and renamed with flags as in cur/. */
	path_of(p, sizeof(p), buf);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(buf2, sizeof(buf2), "%s:2,abcdefghijklmnopqrstuvwxyz", p);
	assert_int_equal(rename(p, buf2), 0);
	assert_int_equal(unlink(buf2), 0);
	/* Escapes are never cut in two: 129 escaped octets of \001. */
	memset(host, 1, 40);
	host[40] = '\0';
	assert_int_equal(maildir_name(5, "id", host, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 5 + 108 + 17);
	for (size_t i = 0; i < 108; i += 4)
		assert_memory_equal(buf + 5 + i, "\\001", 4);
	assert_int_equal(buf[5 + 108], '-');
	/* A slash makes a 127-octet name 130 octets escaped: shortened. */
	long_host(host, 127, 'a');
	host[126] = '/';
	assert_int_equal(maildir_name(5, "id", host, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 5 + 128);
	assert_null(strchr(buf, '/'));
}

/* ---- create and deliver ---- */

static void
make_src(char *src, size_t size, const char *text)
{
	path_of(src, size, "src");
	write_file(src, text);
}

static void
test_create(void **state)
{
	char md[512], sub[600], target[512];
	struct stat st;

	(void)state;
	path_of(md, sizeof(md), "deep/er/Maildir");
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(maildir_create(md), 0); /* idempotent */
	snprintf(sub, sizeof(sub), "%s/new", md);
	assert_int_equal(lstat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	/* A Maildir whose cur/ is a symlink is refused. */
	path_of(md, sizeof(md), "bad");
	path_of(target, sizeof(target), "elsewhere");
	assert_int_equal(mkdir(md, 0700), 0);
	assert_int_equal(mkdir(target, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/cur", md);
	assert_int_equal(symlink(target, sub), 0);
	assert_int_equal(maildir_create(md), -1);
	/* The Maildir itself a symlink: refused. */
	path_of(sub, sizeof(sub), "link");
	assert_int_equal(symlink(target, sub), 0);
	assert_int_equal(maildir_create(sub), -1);
	assert_int_equal(count_entries(target), 0);
	assert_int_equal(maildir_create(""), -1);
}

static void
test_deliver(void **state)
{
	char md[512], src[512], p[700], q[700];
	struct stat a, b;
	const char *name = "1.abc.host";

	(void)state;
	make_src(src, sizeof(src), "Subject: x\r\n\r\nbody\r\n");
	path_of(md, sizeof(md), "Maildir");
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(maildir_deliver(md, name, src), 0);
	snprintf(p, sizeof(p), "%s/new/%s", md, name);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(stat(src, &b), 0);
	assert_true(a.st_ino == b.st_ino); /* a hard link */
	snprintf(q, sizeof(q), "%s/tmp", md);
	assert_int_equal(count_entries(q), 0);
	/* Delivered already: in new/, then (after a reader saw it) cur/. */
	assert_int_equal(maildir_deliver(md, name, src), 1);
	assert_int_equal(maildir_deliver_fresh(md, name, src), 1);
	snprintf(q, sizeof(q), "%s/cur/%s:2,S", md, name);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(maildir_deliver(md, name, src), 1);
	snprintf(q, sizeof(q), "%s/new", md);
	assert_int_equal(count_entries(q), 0);
	/* A name that merely shares a prefix is not a match. */
	assert_int_equal(maildir_deliver(md, "1.abc.hos", src), 0);
	/* Bad names are refused. */
	assert_int_equal(maildir_deliver(md, ".x", src), -1);
	assert_int_equal(maildir_deliver(md, "a/b", src), -1);
	assert_int_equal(maildir_deliver(md, "a:b", src), -1);
	assert_int_equal(maildir_deliver(md, "", src), -1);
	/* Missing source: -1 ENOENT, nothing left in tmp/. */
	errno = 0;
	assert_int_equal(maildir_deliver(md, "2.x.h", "/nonexistent/x"), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(q, sizeof(q), "%s/tmp", md);
	assert_int_equal(count_entries(q), 0);
	/* Missing Maildir. */
	path_of(p, sizeof(p), "nope");
	assert_int_equal(maildir_deliver(p, name, src), -1);
}

/* F-04 vector 1: new/ (or tmp/) replaced by a symlink. */
static void
test_deliver_symlinked_dirs(void **state)
{
	static const char *const subs[] = {"new", "tmp"};
	char md[512], src[512], target[512], p[700];

	(void)state;
	make_src(src, sizeof(src), "x");
	for (size_t i = 0; i < 2; i++) {
		char rel[32];

		snprintf(rel, sizeof(rel), "md%zu", i);
		path_of(md, sizeof(md), rel);
		snprintf(rel, sizeof(rel), "target%zu", i);
		path_of(target, sizeof(target), rel);
		assert_int_equal(maildir_create(md), 0);
		assert_int_equal(mkdir(target, 0700), 0);
		snprintf(p, sizeof(p), "%s/%s", md, subs[i]);
		assert_int_equal(rmdir(p), 0);
		assert_int_equal(symlink(target, p), 0);
		assert_int_equal(maildir_deliver(md, "1.a.h", src), -1);
		assert_int_equal(maildir_deliver_fresh(md, "1.a.h", src), -1);
		assert_int_equal(count_entries(target), 0);
		snprintf(p, sizeof(p), "%s/%s", md, subs[1 - i]);
		assert_int_equal(count_entries(p), 0);
	}
}

/* F-04 vector 2: tmp/<name> planted as a symlink is never followed. */
static void
test_deliver_planted_tmp(void **state)
{
	char md[512], src[512], victim[512], p[700];
	struct stat a, b;
	char buf[64];
	int fd;
	ssize_t n;

	(void)state;
	make_src(src, sizeof(src), "message");
	path_of(victim, sizeof(victim), "victim");
	write_file(victim, "precious");
	path_of(md, sizeof(md), "Maildir");
	assert_int_equal(maildir_create(md), 0);
	snprintf(p, sizeof(p), "%s/tmp/1.a.h", md);
	assert_int_equal(symlink(victim, p), 0);
	assert_int_equal(maildir_deliver(md, "1.a.h", src), 0);
	fd = open(victim, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "precious", 8);
	snprintf(p, sizeof(p), "%s/new/1.a.h", md);
	assert_int_equal(lstat(p, &a), 0);
	assert_int_equal(stat(src, &b), 0);
	assert_true(a.st_ino == b.st_ino);
	/* A stale regular file there is replaced the same way. */
	snprintf(p, sizeof(p), "%s/tmp/2.a.h", md);
	write_file(p, "stale");
	assert_int_equal(maildir_deliver_fresh(md, "2.a.h", src), 0);
	snprintf(p, sizeof(p), "%s/tmp", md);
	assert_int_equal(count_entries(p), 0);
}

static int (*real_linkat)(int, const char *, int, const char *, int);

static int
exdev_linkat(int a, const char *b, int c, const char *d, int e)
{
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	(void)e;
	errno = EXDEV;
	return -1;
}

/* Spool on another file system: copy instead of link. */
static void
test_deliver_copy(void **state)
{
	char md[512], src[512], p[700], buf[64];
	struct stat a, b;
	int fd;
	ssize_t n;

	(void)state;
	make_src(src, sizeof(src), "copied body");
	path_of(md, sizeof(md), "Maildir");
	assert_int_equal(maildir_create(md), 0);
	real_linkat = storefs.linkat;
	storefs.linkat = exdev_linkat;
	assert_int_equal(maildir_deliver(md, "1.c.h", src), 0);
	assert_int_equal(maildir_deliver(md, "1.c.h", src), 1);
	storefs.linkat = real_linkat;
	snprintf(p, sizeof(p), "%s/new/1.c.h", md);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(stat(src, &b), 0);
	assert_true(a.st_ino != b.st_ino);
	assert_int_equal(a.st_mode & 0777, 0600);
	fd = open(p, O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, 11);
	assert_memory_equal(buf, "copied body", 11);
	snprintf(p, sizeof(p), "%s/tmp", md);
	assert_int_equal(count_entries(p), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name),
	    cmocka_unit_test_setup_teardown(test_name_long_host, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_create, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deliver, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_symlinked_dirs, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_planted_tmp, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_copy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
