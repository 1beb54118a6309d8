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

#define HEAD "Return-Path: <s@x>\r\nDelivered-To: u@x\r\n"

/* maildir_deliver() of the file `src` with the header HEAD. */
static int
deliver(const char *md, const char *name, const char *src)
{
	int fd = open(src, O_RDONLY), r, saved;
	struct stat st;

	if (fd < 0)
		return -1;
	assert_int_equal(fstat(fd, &st), 0);
	r = maildir_deliver(md, name, HEAD, strlen(HEAD), fd,
			    (uint64_t)st.st_size);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* The whole content of `path` equals `text`. */
static void
assert_content(const char *path, const char *text)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, (ssize_t)strlen(text));
	assert_memory_equal(buf, text, strlen(text));
}

/* Issue 6 item 8: the trace fields, exactly; CR or LF never pass. */
static void
test_trace_header(void **state)
{
	char buf[MAILDIR_HEADER_MAX];
	size_t len = 0;

	(void)state;
	assert_int_equal(maildir_trace_header("a@b.example", "\"c d\"@e.example",
					      buf, sizeof(buf), &len),
			 0);
	assert_int_equal(len, strlen(buf));
	assert_string_equal(buf, "Return-Path: <a@b.example>\r\n"
				 "Delivered-To: \"c d\"@e.example\r\n");
	/* The null reverse-path (RFC 5321 4.5.5). */
	assert_int_equal(maildir_trace_header("", "u@x", buf, sizeof(buf), &len),
			 0);
	assert_string_equal(buf, "Return-Path: <>\r\nDelivered-To: u@x\r\n");
	/* A header injection is refused, whichever value carries it. */
	static const char *const bad[] = {"a\r\nX-Evil: 1", "a\nb", "a\rb"};
	for (size_t k = 0; k < 3; k++) {
		errno = 0;
		assert_int_equal(
		    maildir_trace_header(bad[k], "u@x", buf, sizeof(buf), &len),
		    -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(
		    maildir_trace_header("s@x", bad[k], buf, sizeof(buf), &len),
		    -1);
	}
	assert_int_equal(maildir_trace_header("s@x", "", buf, sizeof(buf), &len),
			 -1);
	/* No room: refused, not cut. */
	errno = 0;
	assert_int_equal(maildir_trace_header("s@x", "u@x", buf, 20, &len), -1);
	assert_int_equal(errno, EOVERFLOW);
}

static void
test_deliver(void **state)
{
	char md[512], src[512], p[700], q[700];
	const char *name = "1.abc.host";
	struct stat a, b;

	(void)state;
	make_src(src, sizeof(src), "Subject: x\r\n\r\nbody\r\n");
	path_of(md, sizeof(md), "Maildir");
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(maildir_has(md, name), 0);
	assert_int_equal(deliver(md, name, src), 0);
	snprintf(p, sizeof(p), "%s/new/%s", md, name);
	/* A file of its own: the header, then the message byte for byte. */
	assert_content(p, HEAD "Subject: x\r\n\r\nbody\r\n");
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(stat(src, &b), 0);
	assert_true(a.st_ino != b.st_ino);
	assert_int_equal(a.st_nlink, 1);
	assert_int_equal(a.st_mode & 0777, 0600);
	assert_content(src, "Subject: x\r\n\r\nbody\r\n");
	snprintf(q, sizeof(q), "%s/tmp", md);
	assert_int_equal(count_entries(q), 0);
	/* Delivered already: in new/, then (after a reader saw it) cur/. */
	assert_int_equal(maildir_has(md, name), 1);
	assert_int_equal(deliver(md, name, src), 1);
	snprintf(q, sizeof(q), "%s/cur/%s:2,S", md, name);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(maildir_has(md, name), 1);
	assert_int_equal(deliver(md, name, src), 1);
	snprintf(q, sizeof(q), "%s/new", md);
	assert_int_equal(count_entries(q), 0);
	/* A name that merely shares a prefix is not a match. */
	assert_int_equal(maildir_has(md, "1.abc.hos"), 0);
	assert_int_equal(deliver(md, "1.abc.hos", src), 0);
	/* Bad names are refused. */
	assert_int_equal(deliver(md, ".x", src), -1);
	assert_int_equal(deliver(md, "a/b", src), -1);
	assert_int_equal(deliver(md, "a:b", src), -1);
	assert_int_equal(deliver(md, "", src), -1);
	assert_int_equal(maildir_remove(md, "cur", "x"), -1);
	/* A source shorter than said: -1 EIO, nothing left in tmp/. */
	{
		int fd = open(src, O_RDONLY);

		errno = 0;
		assert_int_equal(maildir_deliver(md, "2.x.h", HEAD, strlen(HEAD),
						 fd, 1000),
				 -1);
		assert_int_equal(errno, EIO);
		close(fd);
	}
	snprintf(q, sizeof(q), "%s/tmp", md);
	assert_int_equal(count_entries(q), 0);
	/* Missing Maildir. */
	path_of(p, sizeof(p), "nope");
	assert_int_equal(deliver(p, name, src), -1);
}

/* The two halves the spool uses, and the undo of each. */
static void
test_write_publish_remove(void **state)
{
	char md[512], src[512], p[700];
	int fd;

	(void)state;
	make_src(src, sizeof(src), "data");
	path_of(md, sizeof(md), "Maildir");
	assert_int_equal(maildir_create(md), 0);
	fd = open(src, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(maildir_write_tmp(md, "1.a.h", "H:\r\n", 4, fd, 4,
					   false),
			 0);
	snprintf(p, sizeof(p), "%s/tmp/1.a.h", md);
	assert_content(p, "H:\r\ndata");
	assert_int_equal(maildir_has(md, "1.a.h"), 0); /* not yet */
	assert_int_equal(maildir_publish(md, "1.a.h"), 0);
	assert_int_equal(maildir_has(md, "1.a.h"), 1);
	assert_false(access(p, F_OK) == 0);
	/* Publishing over an existing one: 1, the new copy dropped. */
	assert_int_equal(maildir_write_tmp(md, "1.a.h", "X:\r\n", 4, fd, 4,
					   true),
			 0);
	assert_int_equal(maildir_publish(md, "1.a.h"), 1);
	assert_false(access(p, F_OK) == 0);
	snprintf(p, sizeof(p), "%s/new/1.a.h", md);
	assert_content(p, "H:\r\ndata");
	/* The undo. */
	assert_int_equal(maildir_write_tmp(md, "2.a.h", "", 0, fd, 4, false),
			 0);
	assert_int_equal(maildir_remove(md, "tmp", "2.a.h"), 0);
	assert_int_equal(maildir_remove(md, "tmp", "2.a.h"), 0); /* gone */
	assert_int_equal(maildir_remove(md, "new", "1.a.h"), 0);
	assert_int_equal(maildir_has(md, "1.a.h"), 0);
	snprintf(p, sizeof(p), "%s/tmp", md);
	assert_int_equal(count_entries(p), 0);
	snprintf(p, sizeof(p), "%s/new", md);
	assert_int_equal(count_entries(p), 0);
	close(fd);
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
		assert_int_equal(deliver(md, "1.a.h", src), -1);
		assert_int_equal(maildir_publish(md, "1.a.h"), -1);
		assert_int_equal(maildir_remove(md, subs[i], "1.a.h"), -1);
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
	struct stat a;

	(void)state;
	make_src(src, sizeof(src), "message");
	path_of(victim, sizeof(victim), "victim");
	write_file(victim, "precious");
	path_of(md, sizeof(md), "Maildir");
	assert_int_equal(maildir_create(md), 0);
	snprintf(p, sizeof(p), "%s/tmp/1.a.h", md);
	assert_int_equal(symlink(victim, p), 0);
	assert_int_equal(deliver(md, "1.a.h", src), 0);
	assert_content(victim, "precious");
	snprintf(p, sizeof(p), "%s/new/1.a.h", md);
	assert_int_equal(lstat(p, &a), 0);
	assert_true(S_ISREG(a.st_mode));
	assert_content(p, HEAD "message");
	/* A stale regular file there is replaced the same way. */
	snprintf(p, sizeof(p), "%s/tmp/2.a.h", md);
	write_file(p, "stale and longer than the message");
	assert_int_equal(deliver(md, "2.a.h", src), 0);
	snprintf(p, sizeof(p), "%s/new/2.a.h", md);
	assert_content(p, HEAD "message");
	snprintf(p, sizeof(p), "%s/tmp", md);
	assert_int_equal(count_entries(p), 0);
}

static int copy_calls;
static int copy_mode; /* 0: EXDEV, 1: ENOSYS, 2: at most 3 octets a call */

static ssize_t
test_copy_range(int in, off_t *in_off, int out, size_t len)
{
	copy_calls++;
	if (copy_mode == 2)
		return copy_file_range(in, in_off, out, NULL, len < 3 ? len : 3,
				       0);
	errno = copy_mode == 0 ? EXDEV : ENOSYS;
	return -1;
}

/* copy_file_range(2) that cannot (another file system, an old kernel)
   or that copies a little at a time: the same bytes either way. */
static void
test_deliver_copy(void **state)
{
	char md[512], src[512], p[700], name[16];
	ssize_t (*real)(int, off_t *, int, size_t) = storefs.copy_range;

	(void)state;
	make_src(src, sizeof(src), "copied body");
	path_of(md, sizeof(md), "Maildir");
	assert_int_equal(maildir_create(md), 0);
	storefs.copy_range = test_copy_range;
	for (copy_mode = 0; copy_mode < 3; copy_mode++) {
		copy_calls = 0;
		snprintf(name, sizeof(name), "%d.c.h", copy_mode);
		assert_int_equal(deliver(md, name, src), 0);
		assert_int_equal(copy_calls, copy_mode < 2 ? 1 : 4);
		snprintf(p, sizeof(p), "%s/new/%s", md, name);
		assert_content(p, HEAD "copied body");
	}
	storefs.copy_range = real;
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
	    cmocka_unit_test(test_trace_header),
	    cmocka_unit_test_setup_teardown(test_deliver, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_publish_remove, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_symlinked_dirs, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_planted_tmp, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_copy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
