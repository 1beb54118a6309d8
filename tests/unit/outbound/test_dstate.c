/*
 * test_dstate.c - the queue's delivery-state journal
 * (src/outbound/dstate.c): records round-trip; a record cut at every
 * offset or with any bit flipped is refused; a torn or damaged journal
 * keeps exactly its intact records and stays appendable; a failed append
 * leaves nothing behind; compaction keeps what it is told to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbound/dstate.h"

static struct dstate_rec
rec(enum dstate_kind kind, const char *id, int rcpt, const char *text)
{
	struct dstate_rec r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	snprintf(r.id, sizeof(r.id), "%s", id);
	r.rcpt = rcpt;
	r.time = 1700000100;
	if (kind != DSTATE_WARNED && kind != DSTATE_HELD &&
	    kind != DSTATE_RELEASED) {
		snprintf(r.dsn, sizeof(r.dsn), "%s",
			 kind == DSTATE_SENT	   ? "2.0.0"
			 : kind == DSTATE_BOUNCED ? "5.1.1"
						   : "4.4.1");
		snprintf(r.relay, sizeof(r.relay), "mx.example.net[192.0.2.1]:25");
	}
	snprintf(r.text, sizeof(r.text), "%s", text);
	return r;
}

static void
assert_rec_equal(const struct dstate_rec *a, const struct dstate_rec *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->rcpt, b->rcpt);
	assert_int_equal(a->time, b->time);
	assert_string_equal(a->dsn, b->dsn);
	assert_string_equal(a->relay, b->relay);
	assert_string_equal(a->text, b->text);
}

static void
test_format_golden(void **state)
{
	struct dstate_rec r = rec(DSTATE_SENT, "06553f1c02a3b70012ab005", 0,
				  "250 2.0.0 Ok: queued as X");
	struct dstate_rec back;
	char line[DSTATE_LINE_MAX + 1];
	int n = dstate_format(&r, line, sizeof(line));

	assert_true(n > 0);
	assert_int_equal(strncmp(line,
				 "sent 06553f1c02a3b70012ab005 0 1700000100 "
				 "2.0.0 mx.example.net[192.0.2.1]:25 "
				 "250%202.0.0%20Ok:%20queued%20as%20X ",
				 113),
			 0);
	assert_int_equal(line[n - 1], '\n');
	assert_int_equal(n, 113 + 9);
	assert_int_equal(dstate_parse(line, (size_t)n - 1, &back), 0);
	assert_rec_equal(&r, &back);
	/* held and released: the message, like warned. */
	r = rec(DSTATE_HELD, "abc", -1, "held");
	n = dstate_format(&r, line, sizeof(line));
	assert_true(n > 0);
	assert_int_equal(strncmp(line, "held abc -1 1700000100 - - held ", 32),
			 0);
	assert_int_equal(dstate_parse(line, (size_t)n - 1, &back), 0);
	assert_rec_equal(&r, &back);
	r = rec(DSTATE_RELEASED, "abc", 0, "released");
	assert_int_equal(dstate_format(&r, line, sizeof(line)), -1);
	/* warned: no rcpt, dsn or relay. */
	r = rec(DSTATE_WARNED, "abc", -1, "delay-warning");
	n = dstate_format(&r, line, sizeof(line));
	assert_true(n > 0);
	assert_int_equal(strncmp(line, "warned abc -1 1700000100 - - "
				       "delay-warning ",
				 43),
			 0);
	assert_int_equal(dstate_parse(line, (size_t)n - 1, &back), 0);
	assert_rec_equal(&r, &back);
}

/* Hostile text (a remote server's reply) survives exactly. */
static void
test_escaping(void **state)
{
	static const char hostile[] = "5%0 \r\n\t\x01\xff\xc3\xa9 -";
	struct dstate_rec r = rec(DSTATE_BOUNCED, "a1", 3, hostile), back;
	char line[DSTATE_LINE_MAX + 1];
	int n = dstate_format(&r, line, sizeof(line));

	assert_true(n > 0);
	for (int i = 0; i < n - 1; i++)
		assert_true(line[i] > 0x1f && line[i] < 0x7f);
	assert_non_null(strstr(line, " 5%250%20%0D%0A%09%01%FF%C3%A9%20- "));
	assert_int_equal(dstate_parse(line, (size_t)n - 1, &back), 0);
	assert_string_equal(back.text, hostile);
}

static void
test_format_refuses(void **state)
{
	char line[DSTATE_LINE_MAX + 1], big[DSTATE_TEXT_MAX + 1];
	struct dstate_rec r;

	r = rec(DSTATE_SENT, "bad-id", 0, "x");
	assert_int_equal(dstate_format(&r, line, sizeof(line)), -1);
	r = rec(DSTATE_SENT, "a", -1, "x"); /* only warned has no rcpt */
	assert_int_equal(dstate_format(&r, line, sizeof(line)), -1);
	r = rec(DSTATE_WARNED, "a", 0, "x");
	assert_int_equal(dstate_format(&r, line, sizeof(line)), -1);
	r = rec(DSTATE_SENT, "a", 0, "");
	assert_int_equal(dstate_format(&r, line, sizeof(line)), -1);
	r = rec(DSTATE_SENT, "a", 0, "x");
	snprintf(r.dsn, sizeof(r.dsn), "2.0");
	assert_int_equal(dstate_format(&r, line, sizeof(line)), -1);
	r = rec(DSTATE_SENT, "a", 0, "x");
	snprintf(r.relay, sizeof(r.relay), "-");
	assert_int_equal(dstate_format(&r, line, sizeof(line)), -1);
	r = rec(DSTATE_SENT, "a", 0, "x");
	assert_int_equal(dstate_format(&r, line, 10), -1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	r = rec(DSTATE_SENT, "a", 0, "x");
	memcpy(r.text, big, DSTATE_TEXT_MAX - 1);
	r.text[DSTATE_TEXT_MAX - 1] = '\0';
	assert_true(dstate_format(&r, line, sizeof(line)) > 0);
	/* The longest text, all escaped, still fits a line. */
	memset(r.text, '\x01', DSTATE_TEXT_MAX - 1);
	memset(r.relay, '\x02', DSTATE_RELAY_MAX - 1);
	r.relay[DSTATE_RELAY_MAX - 1] = '\0';
	assert_true(dstate_format(&r, line, sizeof(line)) > 0);
}

/* Every prefix and every single-bit change of a record is refused. */
static void
test_parse_cut_and_flip(void **state)
{
	struct dstate_rec r = rec(DSTATE_DEFERRED, "06553f1c02a3b70012ab005",
				  7, "451 4.3.0 try again"),
			  back;
	char line[DSTATE_LINE_MAX + 1], *copy;
	int n = dstate_format(&r, line, sizeof(line));
	size_t len = (size_t)n - 1;

	assert_true(n > 0);
	for (size_t k = 0; k < len; k++) {
		copy = malloc(k + 1);
		assert_non_null(copy);
		memcpy(copy, line, k);
		assert_int_equal(dstate_parse(copy, k, &back), -1);
		free(copy);
	}
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			line[i] ^= (char)(1 << bit);
			if (dstate_parse(line, len, &back) == 0)
				fail_msg("flip at %zu bit %d accepted", i, bit);
			line[i] ^= (char)(1 << bit);
		}
	}
	assert_int_equal(dstate_parse(line, len, &back), 0);
}

/* Lines with a right CRC but a non-canonical form are refused too. */
static void
test_parse_noncanonical(void **state)
{
	static const char *const bodies[] = {
	    "sent a 00 1 2.0.0 - x",	 /* leading zero */
	    "sent a 0 1 2.0.0 - %41",	 /* needless escape */
	    "sent a 0 1 2.0.0 - %0a",	 /* lower-case hex */
	    "sent a 0 1 2.0.0 - %00",	 /* NUL */
	    "sent a -1 1 2.0.0 - x",	 /* rcpt -1 not warned */
	    "sent a 0 1 2.0.0  x",	 /* empty field */
	    "lost a 0 1 2.0.0 - x",	 /* unknown kind */
	    "sent a 0 1 2.0.0 - x y",	 /* a field too many */
	    "sent a 0 99999999999999999999 2.0.0 - x",
	};
	struct dstate_rec back;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char line[512];
		int n = snprintf(line, sizeof(line), "%s %08x", bodies[i],
				 (unsigned)dstate_crc(bodies[i],
						      strlen(bodies[i])));

		assert_true(n > 0);
		if (dstate_parse(line, (size_t)n, &back) == 0)
			fail_msg("accepted: %s", line);
	}
	/* The control: a canonical body with its CRC is accepted. */
	{
		static const char good[] = "sent a 0 1 2.0.0 - x";
		char line[512];
		int n = snprintf(line, sizeof(line), "%s %08x", good,
				 (unsigned)dstate_crc(good, strlen(good)));

		assert_int_equal(dstate_parse(line, (size_t)n, &back), 0);
		assert_string_equal(back.text, "x");
	}
}

static int
test_dir(char *buf, size_t size)
{
	int fd;

	snprintf(buf, size, "/tmp/test_dstate.XXXXXX");
	assert_non_null(mkdtemp(buf));
	fd = open(buf, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	return fd;
}

static void
rm_dir(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

struct collected {
	struct dstate_rec recs[64];
	size_t n;
};

static void
collect(void *ctx, const struct dstate_rec *r)
{
	struct collected *c = ctx;

	assert_true(c->n < 64);
	c->recs[c->n++] = *r;
}

static char *
read_file(int dir_fd, const char *name, size_t *len_r)
{
	int fd = openat(dir_fd, name, O_RDONLY);
	static char buf[1 << 16];
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	close(fd);
	buf[n] = '\0';
	*len_r = (size_t)n;
	return buf;
}

static void
append_raw(int dir_fd, const char *s, size_t len)
{
	int fd = openat(dir_fd, DSTATE_FILE, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, len), (ssize_t)len);
	close(fd);
}

static void
load(int dir_fd, struct collected *c, unsigned *skipped)
{
	struct dstate *ds;
	const char *err = NULL;

	memset(c, 0, sizeof(*c));
	assert_int_equal(dstate_open(dir_fd, &ds, &err), 0);
	assert_int_equal(dstate_load(ds, collect, c, skipped, &err), 0);
	dstate_close(&ds);
}

static void
test_journal_round_trip(void **state)
{
	char dir[64];
	int dfd = test_dir(dir, sizeof(dir));
	struct dstate *ds;
	const char *err = NULL;
	struct dstate_rec a = rec(DSTATE_SENT, "m1", 0, "250 ok"),
			  b = rec(DSTATE_DEFERRED, "m1", 1, "451 later");
	struct collected c;
	unsigned skipped;
	size_t len;

	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	assert_int_equal(dstate_load(ds, collect, &c, &skipped, &err), 0);
	assert_false(dstate_pending(ds));
	assert_int_equal(dstate_add(ds, &a), 0);
	assert_int_equal(dstate_add(ds, &b), 0);
	assert_true(dstate_pending(ds));
	/* Nothing reaches the file before the sync. */
	assert_int_equal(strlen(read_file(dfd, DSTATE_FILE, &len)),
			 sizeof(DSTATE_MAGIC));
	assert_int_equal(dstate_sync(ds, &err), 0);
	assert_false(dstate_pending(ds));
	assert_int_equal(dstate_size(ds), read_file(dfd, DSTATE_FILE, &len)
					      ? len
					      : 0);
	dstate_close(&ds);
	load(dfd, &c, &skipped);
	assert_int_equal(c.n, 2);
	assert_int_equal(skipped, 0);
	assert_rec_equal(&c.recs[0], &a);
	assert_rec_equal(&c.recs[1], &b);
	/* A bad record is refused by add. */
	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	a.rcpt = -1;
	assert_int_equal(dstate_add(ds, &a), -1);
	assert_false(dstate_pending(ds));
	dstate_close(&ds);
	close(dfd);
	rm_dir(dir);
}

/* A journal cut at any offset of its last record keeps the records
   before it, cuts the tail, and takes new records cleanly. */
static void
test_torn_tail_every_offset(void **state)
{
	struct dstate_rec a = rec(DSTATE_SENT, "m1", 0, "250 ok"),
			  b = rec(DSTATE_BOUNCED, "m1", 1, "550 no"),
			  d = rec(DSTATE_WARNED, "m2", -1, "delay-warning");
	char line[DSTATE_LINE_MAX + 1];
	int n = dstate_format(&b, line, sizeof(line));

	for (int k = 0; k < n; k++) {
		char dir[64];
		int dfd = test_dir(dir, sizeof(dir));
		struct dstate *ds;
		const char *err = NULL;
		struct collected c;
		unsigned skipped;

		assert_int_equal(dstate_open(dfd, &ds, &err), 0);
		assert_int_equal(dstate_add(ds, &a), 0);
		assert_int_equal(dstate_sync(ds, &err), 0);
		dstate_close(&ds);
		append_raw(dfd, line, (size_t)k); /* a torn append */
		assert_int_equal(dstate_open(dfd, &ds, &err), 0);
		memset(&c, 0, sizeof(c));
		assert_int_equal(dstate_load(ds, collect, &c, &skipped, &err),
				 0);
		assert_int_equal(c.n, 1);
		assert_int_equal(skipped, k > 0 ? 1 : 0);
		assert_int_equal(dstate_add(ds, &d), 0);
		assert_int_equal(dstate_sync(ds, &err), 0);
		dstate_close(&ds);
		load(dfd, &c, &skipped);
		assert_int_equal(c.n, 2);
		assert_int_equal(skipped, 0);
		assert_rec_equal(&c.recs[1], &d);
		close(dfd);
		rm_dir(dir);
	}
}

/* Damage in the middle: that line is skipped, the rest is kept. */
static void
test_damage_in_middle(void **state)
{
	char dir[64];
	int dfd = test_dir(dir, sizeof(dir));
	struct dstate *ds;
	const char *err = NULL;
	struct dstate_rec r[3] = {rec(DSTATE_SENT, "m1", 0, "a"),
				  rec(DSTATE_SENT, "m1", 1, "b"),
				  rec(DSTATE_SENT, "m1", 2, "c")};
	struct collected c;
	unsigned skipped;
	size_t len;
	char *buf, copy[4096];
	int fd;

	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(dstate_add(ds, &r[i]), 0);
	assert_int_equal(dstate_sync(ds, &err), 0);
	dstate_close(&ds);
	buf = read_file(dfd, DSTATE_FILE, &len);
	memcpy(copy, buf, len);
	/* Change one octet of the second record's text. */
	*strstr(copy, " b ") = ' ';
	strstr(copy, " b ")[1] = 'B';
	fd = openat(dfd, DSTATE_FILE, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, copy, len), (ssize_t)len);
	close(fd);
	load(dfd, &c, &skipped);
	assert_int_equal(c.n, 2);
	assert_int_equal(skipped, 1);
	assert_string_equal(c.recs[0].text, "a");
	assert_string_equal(c.recs[1].text, "c");
	close(dfd);
	rm_dir(dir);
}

static void
test_wrong_magic(void **state)
{
	char dir[64];
	int dfd = test_dir(dir, sizeof(dir));
	struct dstate *ds;
	const char *err = NULL;
	struct collected c;
	unsigned skipped;
	size_t len;

	(void)len;
	{
		int fd = openat(dfd, DSTATE_FILE, O_WRONLY | O_CREAT, 0600);

		assert_int_equal(write(fd, "postern-queue-state 9\n", 22), 22);
		close(fd);
	}
	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	assert_int_equal(dstate_load(ds, collect, &c, &skipped, &err), -1);
	assert_string_equal(err, "not a postern-queue-state 1 journal");
	dstate_close(&ds);
	assert_int_equal(dstate_set_aside(dfd, &err), 0);
	assert_int_equal(faccessat(dfd, "state.damaged.1", F_OK, 0), 0);
	load(dfd, &c, &skipped);
	assert_int_equal(c.n, 0);
	close(dfd);
	rm_dir(dir);
}

/* Fault injection: an append that fails half-way, or whose fdatasync
   fails, leaves the file as it was and keeps the records for later. */
static ssize_t (*real_write)(int, const void *, size_t);
static int fail_writes;

static ssize_t
half_write(int fd, const void *buf, size_t len)
{
	if (fail_writes > 0) {
		fail_writes--;
		if (len > 1) {
			ssize_t n = real_write(fd, buf, len / 2);

			(void)n;
			errno = ENOSPC;
			return -1;
		}
	}
	return real_write(fd, buf, len);
}

static int
failing_fdatasync(int fd)
{
	errno = EIO;
	return -1;
}

static void
test_failed_append(void **state)
{
	char dir[64];
	int dfd = test_dir(dir, sizeof(dir));
	struct dstate *ds;
	const char *err = NULL;
	struct dstate_rec a = rec(DSTATE_SENT, "m1", 0, "250 ok"),
			  b = rec(DSTATE_SENT, "m1", 1, "250 ok too");
	struct collected c;
	unsigned skipped;
	size_t len;
	uint64_t before;

	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	assert_int_equal(dstate_add(ds, &a), 0);
	assert_int_equal(dstate_sync(ds, &err), 0);
	before = dstate_size(ds);
	real_write = dstate_fs.write;
	dstate_fs.write = half_write;
	fail_writes = 1;
	assert_int_equal(dstate_add(ds, &b), 0);
	assert_int_equal(dstate_sync(ds, &err), -1);
	assert_string_equal(err, strerror(ENOSPC));
	read_file(dfd, DSTATE_FILE, &len);
	assert_int_equal(len, before);
	assert_true(dstate_pending(ds));
	dstate_fs.fdatasync = failing_fdatasync;
	assert_int_equal(dstate_sync(ds, &err), -1);
	read_file(dfd, DSTATE_FILE, &len);
	assert_int_equal(len, before);
	dstate_fs.fdatasync = fdatasync;
	assert_int_equal(dstate_sync(ds, &err), 0);
	dstate_fs.write = real_write;
	dstate_close(&ds);
	load(dfd, &c, &skipped);
	assert_int_equal(c.n, 2);
	assert_int_equal(skipped, 0);
	close(dfd);
	rm_dir(dir);
}

static bool
keep_m2(void *ctx, const struct dstate_rec *r)
{
	return strcmp(r->id, "m2") == 0;
}

static void
test_compact(void **state)
{
	char dir[64];
	int dfd = test_dir(dir, sizeof(dir));
	struct dstate *ds;
	const char *err = NULL;
	struct dstate_rec r1 = rec(DSTATE_SENT, "m1", 0, "250 ok"),
			  r2 = rec(DSTATE_DEFERRED, "m2", 0, "451 later"),
			  r3 = rec(DSTATE_SENT, "m2", 1, "250 ok");
	struct collected c;
	unsigned skipped;
	size_t len;

	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	assert_int_equal(dstate_add(ds, &r1), 0);
	assert_int_equal(dstate_add(ds, &r2), 0);
	assert_int_equal(dstate_sync(ds, &err), 0);
	assert_int_equal(dstate_add(ds, &r3), 0); /* waiting: synced first */
	assert_int_equal(dstate_compact(ds, keep_m2, NULL, &err), 0);
	assert_int_equal(faccessat(dfd, "state.new", F_OK, 0), -1);
	read_file(dfd, DSTATE_FILE, &len);
	assert_int_equal(dstate_size(ds), len);
	/* The new file takes appends. */
	assert_int_equal(dstate_add(ds, &r1), 0);
	assert_int_equal(dstate_sync(ds, &err), 0);
	dstate_close(&ds);
	load(dfd, &c, &skipped);
	assert_int_equal(c.n, 3);
	assert_rec_equal(&c.recs[0], &r2);
	assert_rec_equal(&c.recs[1], &r3);
	assert_rec_equal(&c.recs[2], &r1);
	close(dfd);
	rm_dir(dir);
}

/* --- a journal of several blocks (the reader streams 1 MiB blocks) --- */

#define BIG_RECS 30000 /* about 3.5 MiB of records */

struct counted {
	size_t n;
	int next_rcpt; /* records come in order */
	bool in_order;
};

static void
count_rec(void *ctx, const struct dstate_rec *r)
{
	struct counted *c = ctx;

	if (r->rcpt != c->next_rcpt)
		c->in_order = false;
	c->next_rcpt = r->rcpt + 1;
	c->n++;
}

static bool
keep_even(void *ctx, const struct dstate_rec *r)
{
	(void)ctx;
	return r->rcpt % 2 == 0;
}

static void
check_even(void *ctx, const struct dstate_rec *r)
{
	struct counted *c = ctx;

	if (r->rcpt % 2 != 0)
		c->in_order = false;
	c->n++;
}

static void
test_big_journal(void **state)
{
	char dir[64];
	int dfd = test_dir(dir, sizeof(dir));
	struct dstate *ds;
	const char *err = NULL;
	struct counted c = {0, 0, true};
	unsigned skipped = 99;
	size_t junk_len = (3u << 20) / 2; /* a line longer than a block */
	char *junk = malloc(junk_len);

	(void)state;
	assert_non_null(junk);
	memset(junk, 'x', junk_len - 1);
	junk[junk_len - 1] = '\n';
	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	/* One batch larger than a block: written out as it grows. */
	for (int i = 0; i < BIG_RECS / 2; i++) {
		struct dstate_rec r = rec(DSTATE_DEFERRED, "m1", i,
					  "connect to mx: Connection refused");

		assert_int_equal(dstate_add(ds, &r), 0);
	}
	assert_int_equal(dstate_sync(ds, &err), 0);
	dstate_close(&ds);
	append_raw(dfd, junk, junk_len);
	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	for (int i = BIG_RECS / 2; i < BIG_RECS; i++) {
		struct dstate_rec r = rec(DSTATE_DEFERRED, "m1", i,
					  "connect to mx: Connection refused");

		assert_int_equal(dstate_add(ds, &r), 0);
	}
	assert_int_equal(dstate_sync(ds, &err), 0);
	dstate_close(&ds);
	/* Every record read back across the block boundaries, the junk
	   line skipped once. */
	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	assert_int_equal(dstate_load(ds, count_rec, &c, &skipped, &err), 0);
	assert_int_equal(c.n, BIG_RECS);
	assert_true(c.in_order);
	assert_int_equal(skipped, 1);
	/* Compaction streams too: half kept, in a file that loads. */
	assert_int_equal(dstate_compact(ds, keep_even, NULL, &err), 0);
	dstate_close(&ds);
	c = (struct counted){0, 0, true};
	assert_int_equal(dstate_open(dfd, &ds, &err), 0);
	assert_int_equal(dstate_load(ds, check_even, &c, &skipped, &err), 0);
	assert_int_equal(c.n, BIG_RECS / 2);
	assert_true(c.in_order);
	assert_int_equal(skipped, 0);
	dstate_close(&ds);
	free(junk);
	close(dfd);
	rm_dir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_golden),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_parse_cut_and_flip),
		cmocka_unit_test(test_parse_noncanonical),
		cmocka_unit_test(test_journal_round_trip),
		cmocka_unit_test(test_torn_tail_every_offset),
		cmocka_unit_test(test_damage_in_middle),
		cmocka_unit_test(test_wrong_magic),
		cmocka_unit_test(test_failed_append),
		cmocka_unit_test(test_compact),
		cmocka_unit_test(test_big_journal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
