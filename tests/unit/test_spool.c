/*
 * test_spool.c - the spool: envelope format, commit round trips, group
 * commit, recovery, and fault injection at every file-system call
 * (THREATS ). spool.c is included to reach its static parts.
 */
#include "spool.c"

#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static char root[64];
static char spool_dir[128];

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
	snprintf(root, sizeof(root), "/tmp/test_spool.XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(spool_dir, sizeof(spool_dir), "%s/spool", root);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_of(char *buf, size_t size, const char *fmt, ...)
    LOG_PRINTF(3, 4);

static void
path_of(char *buf, size_t size, const char *fmt, ...)
{
	char rel[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(rel));
	n = snprintf(buf, size, "%s/%s", root, rel);
	assert_true(n > 0 && (size_t)n < size);
}

/* Entries of a directory (0 when it does not exist). */
static size_t
count_dir(const char *path)
{
	size_t n = 0;
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* ---- envelope format ------------------------------------------------ */

static const char env_chars[] = "ab@.<> %\t\"\\\x01\x7f\x80\xff%2541";

static void
rand_string(char *buf, size_t max, unsigned *seed, bool nonempty)
{
	size_t len = (size_t)rand_r(seed) % max;

	if (nonempty && len == 0)
		len = 1;
	for (size_t i = 0; i < len; i++)
		buf[i] =
		    env_chars[(size_t)rand_r(seed) % (sizeof(env_chars) - 1)];
	buf[len] = '\0';
}

static void
test_env_round_trip(void **state)
{
	unsigned seed = 1;

	(void)state;
	for (int iter = 0; iter < 300; iter++) {
		char sender[40], addr[4][40], dir[4][40], *buf;
		struct spool_rcpt rcpts[4];
		struct spool_env in = {0}, out;
		const char *error = NULL;
		size_t len, n = 1 + (size_t)rand_r(&seed) % 4;

		snprintf(in.id, sizeof(in.id), "0abcDEF%d", iter);
		in.time = iter == 0 ? 0 : (long long)rand_r(&seed) * 1000;
		in.size = iter == 1 ? UINT64_MAX : (uint64_t)rand_r(&seed);
		rand_string(sender, sizeof(sender), &seed, false);
		in.sender = sender;
		for (size_t i = 0; i < n; i++) {
			rand_string(addr[i], sizeof(addr[i]), &seed, true);
			rand_string(dir[i], sizeof(dir[i]), &seed, true);
			rcpts[i].address = addr[i];
			rcpts[i].maildir = dir[i];
		}
		in.rcpts = rcpts;
		in.n_rcpts = n;
		assert_int_equal(spool_env_format(&in, &buf, &len), 0);
		assert_int_equal(spool_env_parse(buf, len, &out, &error), 0);
		assert_string_equal(out.id, in.id);
		assert_true(out.time == in.time);
		assert_true(out.size == in.size);
		assert_string_equal(out.sender, in.sender);
		assert_int_equal(out.n_rcpts, n);
		for (size_t i = 0; i < n; i++) {
			assert_string_equal(out.rcpts[i].address, addr[i]);
			assert_string_equal(out.rcpts[i].maildir, dir[i]);
		}
		spool_env_free(&out);
		/* Cut anywhere: refused, never partially trusted. */
		for (size_t cut = 0; cut < len; cut++) {
			if (spool_env_parse(buf, cut, &out, &error) == 0)
				fail_msg("iter %d: accepted a cut at %zu of "
					 "%zu",
					 iter, cut, len);
		}
		free(buf);
	}
}

static void
test_env_format_refuses(void **state)
{
	struct spool_rcpt r = {"a@b", "/m"}, bad = {"a\r\n@b", "/m"};
	struct spool_env e = {
	    .id = "abc", .sender = "", .rcpts = &r, .n_rcpts = 1};
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(spool_env_format(&e, &buf, &len), 0);
	assert_memory_equal(buf,
			    "postern-envelope 1\nid abc\ntime 0\n"
			    "size 0\nsender \nrcpt a@b /m\nend\n",
			    len);
	assert_int_equal(len, 64);
	free(buf);
	e.sender = "x\ny";
	assert_int_equal(spool_env_format(&e, &buf, &len), -1);
	e.sender = "";
	e.rcpts = &bad;
	assert_int_equal(spool_env_format(&e, &buf, &len), -1);
	e.rcpts = &r;
	e.n_rcpts = 0;
	assert_int_equal(spool_env_format(&e, &buf, &len), -1);
	e.n_rcpts = 1;
	snprintf(e.id, sizeof(e.id), "a-b");
	assert_int_equal(spool_env_format(&e, &buf, &len), -1);
}

#define ENV_HEAD "postern-envelope 1\nid abc\ntime 5\nsize 7\n"

static void
test_env_parse_table(void **state)
{
	static const struct {
		const char *text;
		bool ok;
	} cases[] = {
	    {ENV_HEAD "sender a@b\nrcpt x@y /m\nend\n", true},
	    {ENV_HEAD "sender \nrcpt x%20y@z /m%25\nend\n", true},
	    {"id abc\ntime 5\nsize 7\nsender \npostern-envelope 1\n"
	     "rcpt x /m\nend\n",
	     false},
	    {"postern-envelope 2\nid abc\ntime 5\nsize 7\nsender \n"
	     "rcpt x /m\nend\n",
	     false},
	    {ENV_HEAD "sender \nrcpt x /m\nend\nend\n", false},
	    {ENV_HEAD "sender \nrcpt x /m\nend\nx", false},
	    {ENV_HEAD "sender \nrcpt x /m\nend", false},
	    {ENV_HEAD "sender \nrcpt x /m\n", false},
	    {ENV_HEAD "sender \nend\n", false},
	    {ENV_HEAD "rcpt x /m\nend\n", false},
	    {ENV_HEAD "sender \nsender \nrcpt x /m\nend\n", false},
	    {ENV_HEAD "id abc\nsender \nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender \nrcpt x /m\nmode 1\nend\n", false},
	    {ENV_HEAD "sender \nrcpt x /m\nsender\nend\n", false},
	    {ENV_HEAD "sender \nrcpt x\nend\n", false},
	    {ENV_HEAD "sender \nrcpt x /m /n\nend\n", false},
	    {ENV_HEAD "sender \nrcpt  /m\nend\n", false},
	    {ENV_HEAD "sender \nrcpt x \nend\n", false},
	    {ENV_HEAD "sender a b\nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender a\tb\nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender a%2\nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender a%2g\nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender a%2a\nrcpt x /m\nend\n", false}, /* lower */
	    {ENV_HEAD "sender %41\nrcpt x /m\nend\n", false},  /* 'A' */
	    {ENV_HEAD "sender %0A\nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender %0D\nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender %00\nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender \xff\nrcpt x /m\nend\n", false},
	    {ENV_HEAD "sender \nrcpt x /m\r\nend\n", false},
	    {"postern-envelope 1\nid abc\ntime 05\nsize 7\nsender \n"
	     "rcpt x /m\nend\n",
	     false},
	    {"postern-envelope 1\nid abc\ntime -5\nsize 7\nsender \n"
	     "rcpt x /m\nend\n",
	     false},
	    {"postern-envelope 1\nid abc\ntime 5\nsize 18446744073709551616"
	     "\nsender \nrcpt x /m\nend\n",
	     false},
	    {"postern-envelope 1\nid a/b\ntime 5\nsize 7\nsender \n"
	     "rcpt x /m\nend\n",
	     false},
	    {"postern-envelope 1\nid 012345678901234567890123\ntime 5\n"
	     "size 7\nsender \nrcpt x /m\nend\n",
	     false},
	    {"postern-envelope 1\nid \ntime 5\nsize 7\nsender \n"
	     "rcpt x /m\nend\n",
	     false},
	    {"", false},
	    {"\n", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool_env env;
		const char *error = NULL;
		int r = spool_env_parse(cases[i].text, strlen(cases[i].text),
					&env, &error);

		if ((r == 0) != cases[i].ok)
			fail_msg("case %zu: r=%d error=%s", i, r,
				 error != NULL ? error : "-");
		if (r == 0)
			spool_env_free(&env);
	}
	/* An embedded NUL. */
	{
		static const char t[] =
		    ENV_HEAD "sender a\0b\nrcpt x /m\nend\n";
		struct spool_env env;
		const char *error;

		assert_int_equal(
		    spool_env_parse(t, sizeof(t) - 1, &env, &error), -1);
	}
}

/* ---- helpers for spool runs ------------------------------------------ */

#define MAX_MSGS 128

static int fi_note(char op);

struct run {
	int n_done;
	int result[MAX_MSGS];
	char id[MAX_MSGS][SPOOL_ID_MAX];
	long time[MAX_MSGS];
};

static void
record_cb(struct spool_msg *msg, int result, void *arg)
{
	struct run *run = arg;
	int i = run->n_done++;

	fi_note('!');

	assert_true(i < MAX_MSGS);
	run->result[i] = result;
	snprintf(run->id[i], sizeof(run->id[i]), "%s", spool_msg_id(msg));
	run->time[i] = msg->time;
}

/* Wait (bounded) until `want` callbacks have run. */
static void
wait_done(struct spool *sp, struct run *run, int want)
{
	for (int k = 0; k < 500 && run->n_done < want; k++) {
		struct pollfd pfd = {.fd = spool_commit_fd(sp),
				     .events = POLLIN};

		if (poll(&pfd, 1, 20) > 0)
			spool_commit_reap(sp);
	}
	assert_int_equal(run->n_done, want);
}

static void
set_paused(struct spool *sp, bool paused)
{
	pthread_mutex_lock(&sp->mu);
	sp->paused = paused;
	pthread_cond_broadcast(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

static struct spool *
open_spool(enum sync_method sync)
{
	struct spool *sp;
	const char *error = NULL;

	if (spool_open(spool_dir, "1234", "mx/host:1", sync, &sp, &error) < 0)
		fail_msg("spool_open: %s", error);
	return sp;
}

/* new/<name> of message (time, id) in Maildir `md` (relative to root). */
static void
delivered_path(char *buf, size_t size, const char *md, long t, const char *id)
{
	char name[SPOOL_MDNAME_MAX];

	assert_int_equal(maildir_name(t, id, "mx/host:1", name, sizeof(name)),
			 0);
	path_of(buf, size, "%s/new/%s", md, name);
}

static struct spool_msg *
begin_write(struct spool *sp, const char *text)
{
	struct spool_msg *m;

	assert_int_equal(spool_msg_begin(sp, &m), 0);
	assert_int_equal(spool_msg_write(m, text, strlen(text)), 0);
	assert_int_equal(spool_msg_write(m, "\r\n", 2), 0);
	return m;
}

static void
assert_area_empty(void)
{
	char p[256];

	path_of(p, sizeof(p), "spool/1234/tmp");
	assert_int_equal(count_dir(p), 0);
	path_of(p, sizeof(p), "spool/1234/committed");
	assert_int_equal(count_dir(p), 0);
}

/* ---- round trips ------------------------------------------------------ */

static void
round_trip(enum sync_method sync)
{
	struct spool *sp = open_spool(sync);
	struct run run = {0};
	char md[3][256], p[512], q[512];
	struct spool_rcpt rcpts[4];
	struct spool_msg *m;
	struct stat a, b;

	for (int i = 0; i < 3; i++) {
		path_of(md[i], sizeof(md[i]), "mail/u%d/Maildir", i);
		rcpts[i].address = i == 0 ? "\"a b\"@x" : "u@x";
		rcpts[i].maildir = md[i];
	}
	rcpts[3] = rcpts[1]; /* same Maildir twice: one copy */
	/* One recipient. */
	m = begin_write(sp, "Subject: one");
	assert_int_equal(spool_msg_size(m), 14);
	assert_int_equal(strlen(spool_msg_id(m)), 23);
	spool_msg_commit(m, "s@x", rcpts, 1, record_cb, &run);
	assert_int_equal(spool_commits_pending(sp), 1);
	wait_done(sp, &run, 1);
	assert_int_equal(spool_commits_pending(sp), 0);
	assert_int_equal(run.result[0], 0);
	delivered_path(p, sizeof(p), "mail/u0/Maildir", run.time[0], run.id[0]);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(a.st_size, 14);
	assert_int_equal(a.st_nlink, 1);
	assert_int_equal(a.st_mode & 0777, 0600);
	assert_area_empty();
	/* Several recipients: one inode, hard-linked. */
	m = begin_write(sp, "Subject: many");
	spool_msg_commit(m, "", rcpts, 4, record_cb, &run);
	wait_done(sp, &run, 2);
	assert_int_equal(run.result[1], 0);
	delivered_path(p, sizeof(p), "mail/u0/Maildir", run.time[1], run.id[1]);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(a.st_nlink, 3);
	for (int i = 1; i < 3; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "mail/u%d/Maildir", i);
		delivered_path(q, sizeof(q), rel, run.time[1], run.id[1]);
		assert_int_equal(stat(q, &b), 0);
		assert_true(a.st_ino == b.st_ino);
		path_of(q, sizeof(q), "mail/u%d/Maildir/new", i);
		assert_int_equal(count_dir(q), 1 + (i == 0));
	}
	assert_area_empty();
	/* Abort leaves nothing. */
	m = begin_write(sp, "Subject: aborted");
	path_of(p, sizeof(p), "spool/1234/tmp/%s", spool_msg_id(m));
	assert_true(exists(p));
	spool_msg_abort(&m);
	assert_null(m);
	assert_false(exists(p));
	spool_msg_abort(&m); /* NULL is fine */
	assert_area_empty();
	spool_close(&sp);
	assert_null(sp);
	spool_close(&sp);
}

static void
test_round_trip_syncfs(void **state)
{
	(void)state;
	round_trip(SYNC_SYNCFS);
}

static void
test_round_trip_fsync(void **state)
{
	(void)state;
	round_trip(SYNC_FSYNC);
}

/* 100 commits at once: all in one batch (paused), then free-running. */
static void
batch_of_100(enum sync_method sync, bool paused)
{
	struct spool *sp = open_spool(sync);
	struct run run = {0};
	char md[256], p[512];
	struct spool_rcpt r = {"u@x", md};

	path_of(md, sizeof(md), "mail/Maildir");
	if (paused)
		set_paused(sp, true);
	for (int i = 0; i < 100; i++) {
		char text[32];

		snprintf(text, sizeof(text), "message %d", i);
		spool_msg_commit(begin_write(sp, text), "s@x", &r, 1, record_cb,
				 &run);
	}
	if (paused)
		set_paused(sp, false);
	wait_done(sp, &run, 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(run.result[i], 0);
	path_of(p, sizeof(p), "mail/Maildir/new");
	assert_int_equal(count_dir(p), 100);
	assert_area_empty();
	spool_close(&sp);
	teardown(NULL);
	setup(NULL);
}

static void
test_batch_100(void **state)
{
	(void)state;
	batch_of_100(SYNC_SYNCFS, true);
	batch_of_100(SYNC_SYNCFS, false);
	batch_of_100(SYNC_FSYNC, true);
	batch_of_100(SYNC_FSYNC, false);
}

/* Refused commits: a write error, no recipient, CR/LF in a value. */
static void
test_commit_refused(void **state)
{
	struct spool *sp = open_spool(SYNC_SYNCFS);
	struct run run = {0};
	char md[256], p[256];
	struct spool_rcpt r = {"u@x", md}, bad = {"u\r\n@x", md};
	struct spool_msg *m;

	(void)state;
	path_of(md, sizeof(md), "mail/Maildir");
	spool_msg_commit(begin_write(sp, "a"), "s@x", &r, 0, record_cb, &run);
	spool_msg_commit(begin_write(sp, "b"), "s\n@x", &r, 1, record_cb, &run);
	spool_msg_commit(begin_write(sp, "c"), "s@x", &bad, 1, record_cb, &run);
	m = begin_write(sp, "d");
	m->error = EIO; /* as if a write had failed */
	assert_int_equal(spool_msg_write(m, "x", 1), -1);
	spool_msg_commit(m, "s@x", &r, 1, record_cb, &run);
	wait_done(sp, &run, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(run.result[i], -1);
	path_of(p, sizeof(p), "mail/Maildir/new");
	assert_int_equal(count_dir(p), 0);
	assert_area_empty();
	/* A Maildir whose new/ is a symlink: 451, nothing through it. */
	assert_int_equal(maildir_create(md), 0);
	path_of(p, sizeof(p), "mail/Maildir/new");
	assert_int_equal(rmdir(p), 0);
	path_of(md, sizeof(md), "elsewhere");
	assert_int_equal(mkdir(md, 0700), 0);
	assert_int_equal(symlink(md, p), 0);
	path_of(md, sizeof(md), "mail/Maildir");
	spool_msg_commit(begin_write(sp, "e"), "s@x", &r, 1, record_cb, &run);
	wait_done(sp, &run, 5);
	assert_int_equal(run.result[4], -1);
	path_of(p, sizeof(p), "elsewhere");
	assert_int_equal(count_dir(p), 0);
	assert_area_empty();
	spool_close(&sp);
}

static void
test_open_refused(void **state)
{
	struct spool *sp;
	const char *error = NULL;

	(void)state;
	assert_int_equal(
	    spool_open(spool_dir, "../x", "h", SYNC_SYNCFS, &sp, &error), -1);
	assert_non_null(error);
	assert_null(sp);
	assert_int_equal(
	    spool_open(spool_dir, "quarantine", "h", SYNC_SYNCFS, &sp, &error),
	    -1);
	assert_int_equal(spool_open("/proc/nonexistent/x", "1", "h",
				    SYNC_SYNCFS, &sp, &error),
			 -1);
}

/* ---- recovery --------------------------------------------------------- */

/* Put a message into the spool as a crashed process would leave it. */
static void
plant(const char *area, const char *id, long t, const char *data,
      const char *env_text, const char *const *mds, size_t n)
{
	char p[512], *buf = NULL;
	struct spool_rcpt r[4];
	struct spool_env e = {
	    .time = t, .sender = "s@x", .rcpts = r, .n_rcpts = n};
	size_t len;
	int fd;

	mkdir(spool_dir, 0700);
	path_of(p, sizeof(p), "spool/%s", area);
	mkdir(p, 0700);
	path_of(p, sizeof(p), "spool/%s/tmp", area);
	mkdir(p, 0700);
	path_of(p, sizeof(p), "spool/%s/committed", area);
	mkdir(p, 0700);
	if (data != NULL) {
		path_of(p, sizeof(p), "spool/%s/tmp/%s", area, id);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, data, strlen(data)),
				 (ssize_t)strlen(data));
		close(fd);
	}
	snprintf(e.id, sizeof(e.id), "%s", id);
	e.size = data != NULL ? strlen(data) : 0;
	for (size_t i = 0; i < n; i++) {
		r[i].address = "u@x";
		r[i].maildir = mds[i];
	}
	if (env_text == NULL) {
		assert_int_equal(spool_env_format(&e, &buf, &len), 0);
		env_text = buf;
	} else {
		len = strlen(env_text);
	}
	path_of(p, sizeof(p), "spool/%s/committed/%s", area, id);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, env_text, len), (ssize_t)len);
	close(fd);
	free(buf);
}

static void
test_recover(void **state)
{
	char a[256], b[256], p[512], q[512];
	const char *const both[] = {a, b}, *const only_a[] = {a};
	const char *const areas[] = {"77", NULL};
	struct stat st;

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	path_of(b, sizeof(b), "mail/b");
	/* Nothing to do: no spool at all. */
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 0);
	/* 1: committed, data present, not delivered -> delivered to both. */
	plant("77", "id1", 100, "one", NULL, both, 2);
	/* 2: delivered to a already (moved to cur/ by a reader), not b. */
	plant("77", "id2", 100, "two", NULL, both, 2);
	assert_int_equal(maildir_create(a), 0);
	path_of(p, sizeof(p), "spool/77/tmp/id2");
	path_of(q, sizeof(q), "mail/a/cur/100.id2.mx\\057host\\0721:2,S");
	assert_int_equal(link(p, q), 0);
	/* 3: data gone, delivered everywhere -> just removed. */
	plant("77", "id3", 100, "three", NULL, only_a, 1);
	path_of(p, sizeof(p), "spool/77/tmp/id3");
	delivered_path(q, sizeof(q), "mail/a", 100, "id3");
	assert_int_equal(link(p, q), 0);
	assert_int_equal(unlink(p), 0);
	/* 4: data gone, not delivered -> quarantined. */
	plant("77", "id4", 100, NULL, NULL, only_a, 1);
	/* 5: corrupt envelope -> quarantined with its data. */
	plant("77", "id5", 100, "five", "postern-envelope 1\nid id5\ntime 1\n",
	      only_a, 1);
	/* 6: data size does not match -> quarantined. */
	plant("77", "id6", 100, "six", NULL, only_a, 1);
	path_of(p, sizeof(p), "spool/77/tmp/id6");
	assert_int_equal(truncate(p, 1), 0);
	/* 7: uncommitted files -> removed. */
	path_of(p, sizeof(p), "spool/77/tmp/id7");
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
	path_of(p, sizeof(p), "spool/77/tmp/id8.env");
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
	/* 9: an envelope that is a symlink, and a badly named file. */
	path_of(p, sizeof(p), "spool/77/committed/id9");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	path_of(p, sizeof(p), "spool/77/committed/bad name");
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
	/* Another area, not in the list: untouched. */
	plant("88", "id1", 100, "other", NULL, only_a, 1);

	assert_int_equal(spool_recover(spool_dir, areas, "mx/host:1"), 2);
	delivered_path(p, sizeof(p), "mail/a", 100, "id1");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 3);
	delivered_path(p, sizeof(p), "mail/b", 100, "id1");
	assert_true(exists(p));
	delivered_path(p, sizeof(p), "mail/a", 100, "id2");
	assert_false(exists(p)); /* it is in cur/ */
	delivered_path(p, sizeof(p), "mail/b", 100, "id2");
	assert_true(exists(p));
	path_of(p, sizeof(p), "mail/a/new");
	assert_int_equal(count_dir(p), 2); /* id1, id3 */
	path_of(p, sizeof(p), "spool/77");
	assert_false(exists(p));
	path_of(p, sizeof(p), "spool/quarantine");
	/* id4 env; id5 env+data; id6 env+data; id9; "bad name" */
	assert_int_equal(count_dir(p), 7);
	path_of(p, sizeof(p), "spool/quarantine/77.id5.data.0");
	assert_true(exists(p));
	path_of(p, sizeof(p), "spool/88/committed/id1");
	assert_true(exists(p));
	/* Running it again changes nothing. */
	assert_int_equal(spool_recover(spool_dir, areas, "mx/host:1"), 0);
	path_of(p, sizeof(p), "spool/quarantine");
	assert_int_equal(count_dir(p), 7);
	/* Now all areas: 88 finishes (a new delivery under another name). */
	assert_int_equal(spool_recover(spool_dir, NULL, "other"), 1);
	path_of(p, sizeof(p), "spool");
	assert_int_equal(count_dir(p), 1); /* quarantine */
}

/* A Maildir that refuses the message: kept, never lost, retried. */
static void
test_recover_deferred(void **state)
{
	char a[256], p[512], t[256];
	const char *const only_a[] = {a};

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	path_of(t, sizeof(t), "target");
	assert_int_equal(maildir_create(a), 0);
	assert_int_equal(mkdir(t, 0700), 0);
	path_of(p, sizeof(p), "mail/a/new");
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(symlink(t, p), 0);
	plant("5", "idx", 100, "x", NULL, only_a, 1);
	assert_int_equal(spool_recover(spool_dir, NULL, "h"), 0);
	assert_int_equal(count_dir(t), 0);
	path_of(p, sizeof(p), "spool/5/committed/idx");
	assert_true(exists(p));
	path_of(p, sizeof(p), "spool/5/tmp/idx");
	assert_true(exists(p));
	/* The administrator repairs the Maildir. */
	path_of(p, sizeof(p), "mail/a/new");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(spool_recover(spool_dir, NULL, "h"), 1);
	assert_int_equal(count_dir(p), 1);
	path_of(p, sizeof(p), "spool/5");
	assert_false(exists(p));
}

/* ---- fault injection -------------------------------------------------- */

static int fi_at;     /* fail the call with this number (1-based) */
static bool fi_crash; /* ... and every call after it */
static int fi_err;    /* errno to fail with */
static int fi_calls;  /* calls so far (atomic) */

/* The sequence of calls, one letter each, for the ordering checks:
   o openat, w write, f fsync, s syncfs, m mkdirat, C rename into
   committed/, R other rename, l linkat, u unlinkat, and '!' where a
   callback ran. */
static char fi_trace[4096];

/* Count one call (or callback) and note it; returns its number. */
static int
fi_note(char op)
{
	int c = __atomic_add_fetch(&fi_calls, 1, __ATOMIC_SEQ_CST);

	if (c >= 1 && (size_t)c < sizeof(fi_trace))
		fi_trace[c - 1] = op;
	return c;
}

static bool
fi_fail_op(char op)
{
	int c = fi_note(op);

	if (fi_at == 0 || c < fi_at || (!fi_crash && c != fi_at))
		return false;
	errno = fi_err;
	return true;
}

#define fi_fail() fi_fail_op(__func__[3])

static int
fi_openat(int d, const char *p, int f, int m)
{
	return fi_fail() ? -1 : openat(d, p, f, (mode_t)m);
}

static ssize_t
fi_write(int fd, const void *b, size_t n)
{
	return fi_fail() ? -1 : write(fd, b, n);
}

static int
fi_fsync(int fd)
{
	return fi_fail() ? -1 : fsync(fd);
}

static int
fi_syncfs(int fd)
{
	return fi_fail() ? -1 : syncfs(fd);
}

static int
fi_mkdirat(int d, const char *p, int m)
{
	return fi_fail() ? -1 : mkdirat(d, p, (mode_t)m);
}

static int
fi_renameat(int a, const char *b, int c, const char *d, unsigned f)
{
	size_t n = strlen(b);
	bool commit = n > 4 && strcmp(b + n - 4, ".env") == 0;

	return fi_fail_op(commit ? 'C' : 'R') ? -1 : renameat2(a, b, c, d, f);
}

static int
fi_linkat(int a, const char *b, int c, const char *d, int f)
{
	return fi_fail() ? -1 : linkat(a, b, c, d, f);
}

static int
fi_unlinkat(int d, const char *p, int f)
{
	return fi_fail() ? -1 : unlinkat(d, p, f);
}

static const struct spool_fs_ops fi_ops = {
    fi_openat,	fi_write,    fi_fsync,	fi_syncfs,
    fi_mkdirat, fi_renameat, fi_linkat, fi_unlinkat,
};

#define FI_MSGS 3

/* Which Maildirs (mail/m0..m2) each message goes to. */
static const int fi_rcpts[FI_MSGS][2] = {{0, 1}, {1, -1}, {2, 0}};

struct fi_outcome {
	int calls;
	int n_ok, n_failed;
};

/*
 * Three messages in one batch; the call numbered `at` fails (or, with
 * `crash`, that call and all later ones: the process is as good as dead
 * and the files stay as they are). Then recovery runs with working calls.
 * Checked: a message is in all of its Maildirs exactly once or in none;
 * in all when it was acknowledged (callback 0) or committed at the crash;
 * after a single failure, a failed message left nothing at all behind.
 */
static struct fi_outcome
fi_run(enum sync_method sync, int at, bool crash, int err)
{
	struct fi_outcome out = {0};
	struct spool_fs_ops saved = spool_fs;
	struct spool_msg *msgs[FI_MSGS] = {0};
	char md[3][256], p[512];
	bool committed[FI_MSGS] = {0};
	struct run run = {0};
	struct spool *sp;
	int n_commit = 0;

	for (int i = 0; i < 3; i++)
		path_of(md[i], sizeof(md[i]), "mail/m%d", i);
	spool_fs = fi_ops;
	fi_at = 0;
	sp = open_spool(sync);
	set_paused(sp, true);
	memset(fi_trace, 0, sizeof(fi_trace));
	fi_calls = 0;
	fi_crash = crash;
	fi_err = err;
	fi_at = at;
	for (int i = 0; i < FI_MSGS; i++) {
		struct spool_rcpt r[2];
		size_t n = 0;
		char text[32];

		if (spool_msg_begin(sp, &msgs[i]) < 0)
			continue;
		snprintf(text, sizeof(text), "Subject: %d\r\n\r\n", i);
		spool_msg_write(msgs[i], text, strlen(text));
		spool_msg_write(msgs[i], "body\r\n", 6);
		for (int j = 0; j < 2; j++) {
			if (fi_rcpts[i][j] < 0)
				continue;
			r[n].address = "u@x";
			r[n++].maildir = md[fi_rcpts[i][j]];
		}
		spool_msg_commit(msgs[i], "s@x", r, n, record_cb, &run);
		n_commit++;
	}
	set_paused(sp, false);
	wait_done(sp, &run, n_commit);
	spool_close(&sp);
	out.calls = fi_calls;
	fi_at = 0;
	if (!crash && at > 0 && (size_t)at <= sizeof(fi_trace)) {
		/* A failed sync before the callbacks: whatever it was to make
		   durable must not be acknowledged. With syncfs every message
		   of the batch depends on every sync. */
		char op = fi_trace[at - 1];
		const char *cb = memchr(fi_trace, '!', sizeof(fi_trace));

		if ((op == 's' || op == 'f') && cb != NULL &&
		    fi_trace + at - 1 < cb) {
			int n_failed = 0;

			for (int i = 0; i < run.n_done; i++)
				n_failed += run.result[i] != 0;
			if (sync == SYNC_SYNCFS)
				assert_int_equal(n_failed, run.n_done);
			else
				assert_true(n_failed > 0);
		}
	}
	if (!crash) {
		DIR *d;
		struct dirent *de;

		path_of(p, sizeof(p), "spool/1234/tmp");
		d = opendir(p);
		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			if (strstr(de->d_name, ".env") != NULL)
				fail_msg("at=%d: %s left behind", at,
					 de->d_name);
		closedir(d);
	}
	for (int i = 0; i < run.n_done; i++) {
		path_of(p, sizeof(p), "spool/1234/committed/%s", run.id[i]);
		committed[i] = exists(p);
		if (run.result[i] == 0)
			out.n_ok++;
		else
			out.n_failed++;
		if (crash || run.result[i] == 0)
			continue;
		/* A single failure: undone completely. */
		assert_false(committed[i]);
		path_of(p, sizeof(p), "spool/1234/tmp/%s", run.id[i]);
		assert_false(exists(p));
		for (int m = 0; m < 3; m++) {
			delivered_path(p, sizeof(p), md[m] + strlen(root) + 1,
				       run.time[i], run.id[i]);
			assert_false(exists(p));
		}
	}
	spool_fs = saved;
	assert_true(spool_recover(spool_dir, NULL, "mx/host:1") >= 0);
	for (int i = 0; i < run.n_done; i++) {
		int have = 0;
		bool must = run.result[i] == 0 || committed[i];

		for (int m = 0; m < 3; m++) {
			delivered_path(p, sizeof(p), md[m] + strlen(root) + 1,
				       run.time[i], run.id[i]);
			have += exists(p);
		}
		if (must && have == 0)
			fail_msg("at=%d crash=%d: acknowledged or committed "
				 "message %d lost",
				 at, crash, i);
		if (!must && have != 0)
			fail_msg("at=%d crash=%d: uncommitted message %d "
				 "delivered",
				 at, crash, i);
	}
	/* Exactly once, all-or-none: every new/ holds only known names,
	   tmp/ holds nothing; the spool is empty. */
	{
		size_t want = 0, have = 0;

		for (int i = 0; i < run.n_done; i++) {
			bool in = false;

			for (int m = 0; m < 3; m++) {
				delivered_path(p, sizeof(p),
					       md[m] + strlen(root) + 1,
					       run.time[i], run.id[i]);
				in = in || exists(p);
			}
			if (!in)
				continue;
			/* Delivered: then to every recipient. */
			for (int m = 0; m < 3; m++) {
				delivered_path(p, sizeof(p),
					       md[m] + strlen(root) + 1,
					       run.time[i], run.id[i]);
				if (exists(p))
					want++;
			}
		}
		for (int m = 0; m < 3; m++) {
			path_of(p, sizeof(p), "mail/m%d/new", m);
			have += count_dir(p);
			path_of(p, sizeof(p), "mail/m%d/tmp", m);
			assert_int_equal(count_dir(p), 0);
		}
		assert_int_equal(have, want);
	}
	path_of(p, sizeof(p), "spool/1234");
	assert_false(exists(p));
	path_of(p, sizeof(p), "spool/quarantine");
	assert_int_equal(count_dir(p), 0);
	teardown(NULL);
	setup(NULL);
	return out;
}

static size_t
fi_count(const char *from, const char *to, char op)
{
	size_t n = 0;

	for (; from < to; from++)
		n += *from == op;
	return n;
}

/*
 * The durability order of one batch of FI_MSGS messages to 3 Maildirs:
 * data and envelopes synced before the first commit rename, the commit
 * renames synced before the first link into a Maildir, and the Maildirs
 * synced after the last move into new/ and before the first callback.
 * (A simulated crash cannot show a missing sync; this can.)
 */
static void
fi_check_order(enum sync_method sync, const char *t)
{
	const char *first_c = strchr(t, 'C'), *last_c = strrchr(t, 'C');
	const char *first_l = strchr(t, 'l'), *last_r = strrchr(t, 'R');
	const char *cb = strchr(t, '!'), *last_w = first_c;
	char sync_op = sync == SYNC_SYNCFS ? 's' : 'f';

	assert_non_null(first_c);
	assert_non_null(first_l);
	assert_non_null(last_r);
	assert_non_null(cb);
	while (last_w > t && last_w[-1] != 'w')
		last_w--;
	assert_int_equal(fi_count(t, last_c + 1, 'C'), FI_MSGS);
	assert_true(last_c < first_l && last_r < cb);
	if (sync == SYNC_SYNCFS) {
		assert_int_equal(fi_count(last_w, first_c, 's'), 1);
		assert_int_equal(fi_count(t, first_c, 'f'), 0);
	} else {
		/* data and envelope of each message, and tmp/ */
		assert_int_equal(fi_count(t, first_c, 'f'), 2 * FI_MSGS + 1);
	}
	assert_int_equal(fi_count(last_c, first_l, sync_op), 1);
	/* syncfs: one file system; fsync: the new/ of each Maildir */
	assert_int_equal(fi_count(last_r, cb, sync_op),
			 sync == SYNC_SYNCFS ? 1 : 3);
	assert_int_equal(fi_count(t, cb, sync == SYNC_SYNCFS ? 'f' : 's'), 0);
}

static void
fault_sweep(enum sync_method sync, bool crash)
{
	struct fi_outcome clean;
	int failed_runs = 0;

	clean = fi_run(sync, 0, false, 0);
	fi_check_order(sync, fi_trace);

	assert_int_equal(clean.n_ok, FI_MSGS);
	assert_true(clean.calls > 30);
	for (int at = 1; at <= clean.calls + 1; at++) {
		struct fi_outcome o =
		    fi_run(sync, at, crash, at % 2 ? ENOSPC : EIO);

		failed_runs += o.n_failed > 0;
	}
	/* Every call up to the last step of the committer matters. */
	assert_true(failed_runs > clean.calls / 2);
	if (getenv("FI_VERBOSE"))
		printf("sync=%d crash=%d calls=%d failed_runs=%d\n", sync,
		       crash, clean.calls, failed_runs);
}

static void
test_fault_syncfs(void **state)
{
	(void)state;
	fault_sweep(SYNC_SYNCFS, false);
}

static void
test_fault_fsync(void **state)
{
	(void)state;
	fault_sweep(SYNC_FSYNC, false);
}

static void
test_crash_syncfs(void **state)
{
	(void)state;
	fault_sweep(SYNC_SYNCFS, true);
}

static void
test_crash_fsync(void **state)
{
	(void)state;
	fault_sweep(SYNC_FSYNC, true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_env_round_trip),
	    cmocka_unit_test(test_env_format_refuses),
	    cmocka_unit_test(test_env_parse_table),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_round_trip_syncfs),
	    T(test_round_trip_fsync),
	    T(test_batch_100),
	    T(test_commit_refused),
	    T(test_open_refused),
	    T(test_recover),
	    T(test_recover_deferred),
	    T(test_fault_syncfs),
	    T(test_fault_fsync),
	    T(test_crash_syncfs),
	    T(test_crash_fsync),
#undef T
	};

	log_init("test_spool", true, LOG_LEVEL_ERROR + 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
