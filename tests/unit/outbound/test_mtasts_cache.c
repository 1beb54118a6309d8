/*
 * test_mtasts_cache.c - the MTA-STS policy cache on disk
 * (src/outbound/mtasts_cache.c), in a temporary directory: a policy
 * written reads back; an expired one is removed by the read (RFC 8461
 * 5.1); `mailed` is written again only when an hour behind; the sweep
 * removes expired policies, unfinished temporary files and old files
 * that do not parse, leaves everything else (links, directories, other
 * names, live policies) alone, and reads at most `max` entries a call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbound/mtasts_cache.h"

#define NOW 1800000000

static const char pol[] = "version: STSv1\nmode: enforce\nmx: mx.example\n"
			  "max_age: 86400\n";

struct dir {
	char path[64];
	int fd;
};

static void
dir_open(struct dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/test-mtasts-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(d->fd >= 0);
}

static void
dir_close(struct dir *d)
{
	char cmd[128];

	close(d->fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	assert_int_equal(system(cmd), 0);
}

static void
put(const struct dir *d, const char *name, const char *text)
{
	int fd = openat(d->fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
put_policy(const struct dir *d, const char *name, time_t expires,
	   time_t mailed)
{
	char buf[512];
	long n = mtasts_cache_format(buf, sizeof(buf) - 1, "id1", expires,
				     mailed, pol, sizeof(pol) - 1);

	assert_true(n > 0);
	buf[n] = '\0';
	put(d, name, buf);
}

static bool
exists(const struct dir *d, const char *name)
{
	struct stat st;

	return fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void
test_write_read(void **state)
{
	struct dir d;
	struct mtasts_cached c;
	const char *err = NULL;

	(void)state;
	dir_open(&d);
	assert_int_equal(mtasts_cache_read(d.fd, "example.com", NOW, &c, &err),
			 MTASTS_CACHE_NONE);
	assert_int_equal(mtasts_cache_write(d.fd, "example.com", "abc",
					    NOW + 10, NOW - 5, pol,
					    sizeof(pol) - 1, &err),
			 0);
	assert_false(exists(&d, "t.example.com"));
	assert_int_equal(mtasts_cache_read(d.fd, "example.com", NOW, &c, &err),
			 MTASTS_CACHE_OK);
	assert_string_equal(c.id, "abc");
	assert_int_equal(c.expires, NOW + 10);
	assert_int_equal(c.mailed, NOW - 5);
	assert_int_equal(c.policy.mode, MTASTS_MODE_ENFORCE);
	/* at its expiry it is gone */
	assert_int_equal(mtasts_cache_read(d.fd, "example.com", NOW + 10, &c,
					   &err),
			 MTASTS_CACHE_EXPIRED);
	assert_false(exists(&d, "p.example.com"));
	/* not a host name: no file at all */
	assert_int_equal(mtasts_cache_write(d.fd, "../x", "abc", NOW, NOW, pol,
					    sizeof(pol) - 1, &err),
			 -1);
	assert_int_equal(mtasts_cache_read(d.fd, "../x", NOW, &c, &err),
			 MTASTS_CACHE_NONE);
	/* a link is not followed */
	assert_int_equal(symlinkat("/etc/passwd", d.fd, "p.link.example"), 0);
	assert_int_equal(mtasts_cache_read(d.fd, "link.example", NOW, &c, &err),
			 MTASTS_CACHE_BAD);
	put(&d, "p.bad.example", "postern-mta-sts 1\nid x\n");
	assert_int_equal(mtasts_cache_read(d.fd, "bad.example", NOW, &c, &err),
			 MTASTS_CACHE_BAD);
	assert_true(exists(&d, "p.bad.example"));
	dir_close(&d);
}

static void
test_mailed(void **state)
{
	struct dir d;
	struct mtasts_cached c;
	const char *err = NULL;

	(void)state;
	dir_open(&d);
	put_policy(&d, "p.example.com", NOW + 1000, NOW - 3599);
	assert_int_equal(mtasts_cache_mailed(d.fd, "example.com", NOW, &err),
			 0);
	assert_int_equal(mtasts_cache_read(d.fd, "example.com", NOW, &c, &err),
			 MTASTS_CACHE_OK);
	assert_int_equal(c.mailed, NOW - 3599); /* (within the hour) */
	assert_int_equal(mtasts_cache_mailed(d.fd, "example.com", NOW + 1,
					     &err),
			 0);
	assert_int_equal(mtasts_cache_read(d.fd, "example.com", NOW, &c, &err),
			 MTASTS_CACHE_OK);
	assert_int_equal(c.mailed, NOW + 1);
	assert_string_equal(c.id, "id1");
	assert_int_equal(c.expires, NOW + 1000);
	assert_int_equal(c.policy.n_mx, 1);
	assert_int_equal(mtasts_cache_mailed(d.fd, "none.example", NOW, &err),
			 -1);
	dir_close(&d);
}

struct seen {
	char removed[8][64], live[8][64];
	size_t n_removed, n_live;
};

static void
seen_cb(void *arg, const char *name, const struct mtasts_cached *c)
{
	struct seen *s = arg;

	if (c == NULL) {
		assert_true(s->n_removed < 8);
		snprintf(s->removed[s->n_removed++], 64, "%s", name);
	} else {
		assert_true(s->n_live < 8);
		snprintf(s->live[s->n_live++], 64, "%s", name);
	}
}

static bool
has(char list[8][64], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

static void
test_sweep(void **state)
{
	struct dir d;
	struct mtasts_sweep sw = {NULL};
	struct seen s;
	struct timespec old[2] = {{NOW - 31557601, 0}, {NOW - 31557601, 0}};
	size_t calls = 0;
	bool end = false;

	(void)state;
	memset(&s, 0, sizeof(s));
	dir_open(&d);
	put_policy(&d, "p.expired.example", NOW, NOW);
	put_policy(&d, "p.live.example", NOW + 1, NOW);
	put_policy(&d, "t.live.example", NOW + 1, NOW);
	put_policy(&d, "notes", 1, 1);
	put_policy(&d, "p.UPPER.example", 1, 1);
	put(&d, "p.oldbad.example", "garbage");
	assert_int_equal(utimensat(d.fd, "p.oldbad.example", old, 0), 0);
	put(&d, "p.newbad.example", "garbage");
	assert_int_equal(symlinkat("p.expired.example", d.fd, "p.ln.example"),
			 0);
	assert_int_equal(mkdirat(d.fd, "p.dir.example", 0700), 0);
	/* 11 entries with . and ..: one a call */
	while (!end) {
		assert_true(++calls <= 12);
		end = mtasts_cache_sweep(d.fd, &sw, NOW, 1, seen_cb, &s);
	}
	assert_int_equal(calls, 12);
	assert_null(sw.dir);
	assert_int_equal(s.n_removed, 3);
	assert_true(has(s.removed, s.n_removed, "p.expired.example"));
	assert_true(has(s.removed, s.n_removed, "t.live.example"));
	assert_true(has(s.removed, s.n_removed, "p.oldbad.example"));
	assert_int_equal(s.n_live, 1);
	assert_string_equal(s.live[0], "p.live.example");
	assert_false(exists(&d, "p.expired.example"));
	assert_false(exists(&d, "t.live.example"));
	assert_false(exists(&d, "p.oldbad.example"));
	assert_true(exists(&d, "p.live.example") && exists(&d, "notes") &&
		    exists(&d, "p.UPPER.example") &&
		    exists(&d, "p.newbad.example") &&
		    exists(&d, "p.ln.example") && exists(&d, "p.dir.example"));
	/* the next call starts over: one pass in one call now */
	memset(&s, 0, sizeof(s));
	assert_true(mtasts_cache_sweep(d.fd, &sw, NOW, 64, seen_cb, &s));
	assert_int_equal(s.n_removed, 0);
	assert_int_equal(s.n_live, 1);
	mtasts_sweep_end(&sw);
	dir_close(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_read),
	    cmocka_unit_test(test_mailed),
	    cmocka_unit_test(test_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
