/*
 * test_spool.c - the spool: envelope format, commit round trips, group
 * commit, recovery, and fault injection at every file-system call
 * (THREATS ). The spool's parts share spool_int.h, which this
 * test reads to reach them; file-system calls are faulted through the
 * storefs seam.
 */
#include "store/spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/log.h"
#include "store/maildir.h"
#include "store/storefs.h"

static char root[64];
static char spool_dir[128];
static bool plant_journal; /* plant() writes a journal record, not
			      committed/<id> */

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
	plant_journal = false;
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
	    {"postern-envelope 4\nid abc\ntime 5\nsize 7\nsender \n"
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

/* ---- envelope format, version 2 (remote, auth) ------------------------- */

/*
 * Random envelopes mixing local and remote recipients, with or without an
 * authenticated user: the version is 1 exactly when neither is there, the
 * round trip is exact, and every cut is refused.
 */
static void
test_env_v2_round_trip(void **state)
{
	unsigned seed = 7;
	int n_v2 = 0;

	(void)state;
	for (int iter = 0; iter < 300; iter++) {
		char sender[40], user[40], addr[4][40], dir[4][40], *buf;
		struct spool_rcpt rcpts[4];
		struct spool_env in = {0}, out;
		const char *error = NULL;
		size_t len, n = 1 + (size_t)rand_r(&seed) % 4;
		bool v2;

		snprintf(in.id, sizeof(in.id), "Q%d", iter);
		in.time = (long long)rand_r(&seed);
		in.size = (uint64_t)rand_r(&seed);
		rand_string(sender, sizeof(sender), &seed, false);
		in.sender = sender;
		if (rand_r(&seed) % 2) {
			/* no space: spool_auth_ok() refuses one */
			snprintf(user, sizeof(user), "u%d@x%%\x01", iter);
			in.auth = user;
		}
		v2 = in.auth != NULL;
		for (size_t i = 0; i < n; i++) {
			rand_string(addr[i], sizeof(addr[i]), &seed, true);
			rand_string(dir[i], sizeof(dir[i]), &seed, true);
			rcpts[i].address = addr[i];
			rcpts[i].maildir = rand_r(&seed) % 2 ? dir[i] : NULL;
			v2 = v2 || rcpts[i].maildir == NULL;
		}
		n_v2 += v2;
		in.rcpts = rcpts;
		in.n_rcpts = n;
		assert_int_equal(spool_env_format(&in, &buf, &len), 0);
		assert_memory_equal(
		    buf, v2 ? "postern-envelope 2\n" : "postern-envelope 1\n",
		    19);
		assert_int_equal(spool_env_parse(buf, len, &out, &error), 0);
		assert_int_equal(out.version, v2 ? 2 : 1);
		assert_string_equal(out.id, in.id);
		assert_string_equal(out.sender, in.sender);
		if (in.auth != NULL)
			assert_string_equal(out.auth, in.auth);
		else
			assert_null(out.auth);
		assert_int_equal(out.n_rcpts, n);
		for (size_t i = 0; i < n; i++) {
			assert_string_equal(out.rcpts[i].address, addr[i]);
			if (rcpts[i].maildir == NULL)
				assert_null(out.rcpts[i].maildir);
			else
				assert_string_equal(out.rcpts[i].maildir,
						    dir[i]);
		}
		spool_env_free(&out);
		for (size_t cut = 0; cut < len; cut++)
			if (spool_env_parse(buf, cut, &out, &error) == 0)
				fail_msg("iter %d: accepted a cut at %zu", iter,
					 cut);
		free(buf);
	}
	assert_true(n_v2 > 100 && n_v2 < 300);
}

/* The exact bytes of a version-2 envelope, and what the writer refuses. */
static void
test_env_v2_format(void **state)
{
	struct spool_rcpt r[2] = {{"a@b", "/m"}, {"\"c d\"@e.example", NULL}};
	struct spool_env e = {.id = "abc",
			      .time = 5,
			      .size = 7,
			      .sender = "s@x",
			      .auth = "alice@x",
			      .rcpts = r,
			      .n_rcpts = 2};
	static const char *const bad_auth[] = {"", "a b", "a\r", "a\nb"};
	static const char want[] = "postern-envelope 2\nid abc\ntime 5\n"
				   "size 7\nsender s@x\nauth alice@x\n"
				   "rcpt a@b /m\nremote \"c%20d\"@e.example\n"
				   "end\n";
	char *buf, big[SPOOL_AUTH_MAX + 2];
	size_t len;

	(void)state;
	assert_int_equal(spool_env_format(&e, &buf, &len), 0);
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(buf, want, len);
	free(buf);
	/* The queue envelope: the remote recipients only. */
	assert_int_equal(spool_queue_env(&e, &buf, &len), 0);
	{
		static const char tail[] =
		    "\nremote \"c%20d\"@e.example\nend\n";

		assert_true(len > sizeof(tail) - 1);
		assert_memory_equal(buf + len - (sizeof(tail) - 1), tail,
				    sizeof(tail) - 1);
	}
	assert_null(memmem(buf, len, "rcpt ", 5));
	assert_null(memmem(buf, len, "/m", 2));
	free(buf);
	/* An empty remote address. */
	r[1].address = "";
	assert_int_equal(spool_env_format(&e, &buf, &len), -1);
	r[1].address = "c@e";
	for (size_t i = 0; i < sizeof(bad_auth) / sizeof(bad_auth[0]); i++) {
		e.auth = bad_auth[i];
		assert_int_equal(spool_env_format(&e, &buf, &len), -1);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	e.auth = big;
	assert_int_equal(spool_env_format(&e, &buf, &len), -1);
	big[SPOOL_AUTH_MAX] = '\0';
	assert_int_equal(spool_env_format(&e, &buf, &len), 0);
	free(buf);
}

#define ENV2_HEAD "postern-envelope 2\nid abc\ntime 5\nsize 7\nsender \n"
#define ENV3_HEAD "postern-envelope 3\nid abc\ntime 5\nsize 7\nsender \n"

/* Version 3: a held message (docs/sendlimit.md) says `hold send-burst`;
   written only when held, read back; the queue envelope keeps it. */
static void
test_env_v3_hold(void **state)
{
	struct spool_rcpt r[2] = {{"a@b", "/m"}, {"c@e", NULL}};
	struct spool_env e = {.id = "abc", .time = 5, .size = 7,
			      .sender = "s@x", .auth = "alice@x", .hold = true,
			      .rcpts = r, .n_rcpts = 2};
	static const char want[] = "postern-envelope 3\nid abc\ntime 5\n"
				   "size 7\nsender s@x\nauth alice@x\n"
				   "hold send-burst\nrcpt a@b /m\n"
				   "remote c@e\nend\n";
	static const struct {
		const char *text;
		bool ok;
	} cases[] = {
	    {ENV3_HEAD "hold send-burst\nremote x@y\nend\n", true},
	    {ENV3_HEAD "remote x@y\nend\n", true},
	    {ENV3_HEAD "hold send-burst\nhold send-burst\nremote x@y\nend\n",
	     false},
	    {ENV3_HEAD "hold other\nremote x@y\nend\n", false},
	    {ENV3_HEAD "hold \nremote x@y\nend\n", false},
	    {ENV2_HEAD "hold send-burst\nremote x@y\nend\n", false},
	    {"postern-envelope 4\nid abc\ntime 5\nsize 7\nsender \n"
	     "remote x@y\nend\n",
	     false},
	};
	struct spool_env env;
	const char *error;
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(spool_env_format(&e, &buf, &len), 0);
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(buf, want, len);
	assert_int_equal(spool_env_parse(buf, len, &env, &error), 0);
	assert_true(env.hold);
	assert_int_equal(env.version, 3);
	spool_env_free(&env);
	free(buf);
	assert_int_equal(spool_queue_env(&e, &buf, &len), 0);
	assert_non_null(memmem(buf, len, "\nhold send-burst\n", 17));
	free(buf);
	e.hold = false; /* not held: version 2 as before */
	assert_int_equal(spool_env_format(&e, &buf, &len), 0);
	assert_memory_equal(buf, "postern-envelope 2\n", 19);
	free(buf);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = spool_env_parse(cases[i].text, strlen(cases[i].text),
					 &env, &error);

		if ((rc == 0) != cases[i].ok)
			fail_msg("case %zu: rc=%d", i, rc);
		if (rc == 0)
			spool_env_free(&env);
	}
}

static void
test_env_v2_parse_table(void **state)
{
	static const struct {
		const char *text;
		bool ok;
	} cases[] = {
	    {ENV2_HEAD "remote x@y\nend\n", true},
	    {ENV2_HEAD "rcpt x@y /m\nend\n", true},
	    {ENV2_HEAD "remote x@y\nrcpt x@y /m\nremote z@y\nend\n", true},
	    {ENV2_HEAD "auth u\nremote x@y\nend\n", true},
	    {ENV2_HEAD "remote x@y\nauth u%25\nend\n", true},
	    {ENV2_HEAD "remote \"a%20b\"@y\nend\n", true},
	    {ENV2_HEAD "remote %22a%20b%22@y\nend\n", false},
	    {ENV2_HEAD "end\n", false},
	    {ENV2_HEAD "auth u\nend\n", false},
	    {ENV2_HEAD "remote \nend\n", false},
	    {ENV2_HEAD "remote\nend\n", false},
	    {ENV2_HEAD "remote x@y /m\nend\n", false},
	    {ENV2_HEAD "remote x@y%0A\nend\n", false},
	    {ENV2_HEAD "remote x@%79\nend\n", false},
	    {ENV2_HEAD "auth \nremote x@y\nend\n", false},
	    {ENV2_HEAD "auth u\nauth u\nremote x@y\nend\n", false},
	    {ENV2_HEAD "auth a%20b\nremote x@y\nend\n", false},
	    {ENV2_HEAD "auth a%0D\nremote x@y\nend\n", false},
	    {ENV2_HEAD "auth a b\nremote x@y\nend\n", false},
	    {ENV2_HEAD "rcpt x@y\nend\n", false},
	    {ENV2_HEAD "state new\nremote x@y\nend\n", false},
	    {ENV2_HEAD "remote x@y\nend\nremote z@y\n", false},
	    /* version 1 knows neither remote nor auth */
	    {ENV_HEAD "sender \nremote x@y\nend\n", false},
	    {ENV_HEAD "sender \nauth u\nrcpt x@y /m\nend\n", false},
	    {ENV_HEAD "sender \nrcpt x@y /m\nend\n", true},
	    {"postern-envelope 0\nid abc\ntime 5\nsize 7\nsender \n"
	     "remote x@y\nend\n",
	     false},
	    {"postern-envelope 22\nid abc\ntime 5\nsize 7\nsender \n"
	     "remote x@y\nend\n",
	     false},
	    {"postern-envelope  2\nid abc\ntime 5\nsize 7\nsender \n"
	     "remote x@y\nend\n",
	     false},
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

/* The journal of `area`, read and scanned (false when there is none). */
static bool
journal_read(const char *area, char **buf_r, size_t *len_r,
	     struct spool_jscan *js)
{
	char p[256];
	const char *error = NULL;
	int fd;

	path_of(p, sizeof(p), "spool/%s/journal", area);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return false;
	*buf_r = spool_read_fd(fd, SPOOL_JOURNAL_READ_MAX, len_r);
	close(fd);
	assert_non_null(*buf_r);
	if (spool_journal_scan(*buf_r, *len_r, js, &error) < 0)
		fail_msg("journal of %s: %s", area, error);
	return true;
}

/* Commit records of `area` without a done record (-1 without journal,
   -2 when it has a torn tail: an append under way). */
static int
journal_live_now(const char *area)
{
	struct spool_jscan js;
	char *buf;
	size_t len;
	int n;

	if (!journal_read(area, &buf, &len, &js))
		return -1;
	n = js.torn ? -2 : (int)js.n_live;
	assert_false(js.corrupt);
	spool_jscan_free(&js);
	free(buf);
	return n;
}

static int
journal_live(const char *area)
{
	int n = journal_live_now(area);

	assert_int_not_equal(n, -2);
	return n;
}

/* Is message `id` committed and not done in the journal of `area`? */
static bool
journal_has(const char *area, const char *id)
{
	struct spool_jscan js;
	char *buf;
	size_t len;
	bool has = false;

	if (!journal_read(area, &buf, &len, &js))
		return false;
	for (size_t i = 0; i < js.n_recs; i++)
		has =
		    has || (js.recs[i].live && strcmp(js.recs[i].id, id) == 0);
	spool_jscan_free(&js);
	free(buf);
	return has;
}

/*
 * Data files in the area's tmp/ (0 when there is none): every entry but
 * the emptied files kept for reuse (tmp/.pool<n>, which must be empty).
 */
static size_t
count_data(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char p[512];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strncmp(de->d_name, ".pool", 5) != 0) {
			n++;
			continue;
		}
		snprintf(p, sizeof(p), "%s/%s", tmp, de->d_name);
		/* the committer empties it before it renames it there */
		if (lstat(p, &st) == 0 && (!S_ISREG(st.st_mode) ||
					  st.st_size != 0 || st.st_nlink != 1))
			fail_msg("%s is not an empty file of its own", p);
	}
	closedir(d);
	return n;
}

/*
 * The area holds nothing of finished messages: no data, no pending record.
 * The committer removes them (or keeps emptied files for reuse) just after
 * the callbacks (step 8), so a live spool gets a moment to settle.
 */
static void
assert_area_empty(void)
{
	char p[256];
	int k;

	path_of(p, sizeof(p), "spool/1234/tmp");
	for (k = 0; k < 500; k++) {
		if (count_data(p) == 0 && journal_live_now("1234") == 0)
			break;
		usleep(2000);
	}
	assert_int_equal(count_data(p), 0);
	assert_int_equal(journal_live("1234"), 0);
	path_of(p, sizeof(p), "spool/1234/committed");
	assert_false(exists(p));
}

/* ---- round trips ------------------------------------------------------ */

/* The whole content of `path` is `text`. */
static void
assert_file_is(const char *path, const char *text)
{
	char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, (ssize_t)strlen(text));
	assert_memory_equal(buf, text, (size_t)n);
}


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
	assert_area_empty();
	/* The exact bytes (issue 6 item 8): Return-Path and Delivered-To
	   first, then the message as written. */
	delivered_path(p, sizeof(p), "mail/u0/Maildir", run.time[0], run.id[0]);
	assert_file_is(p, "Return-Path: <s@x>\r\n"
			  "Delivered-To: \"a b\"@x\r\n"
			  "Subject: one\r\n");
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(a.st_nlink, 1);
	assert_int_equal(a.st_mode & 0777, 0600);
	/* Several recipients: a copy each, with its own Delivered-To; the
	   null sender as <>. */
	m = begin_write(sp, "Subject: many");
	spool_msg_commit(m, "", rcpts, 4, record_cb, &run);
	wait_done(sp, &run, 2);
	assert_int_equal(run.result[1], 0);
	assert_area_empty();
	delivered_path(p, sizeof(p), "mail/u0/Maildir", run.time[1], run.id[1]);
	assert_file_is(p, "Return-Path: <>\r\nDelivered-To: \"a b\"@x\r\n"
			  "Subject: many\r\n");
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(a.st_nlink, 1);
	for (int i = 1; i < 3; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "mail/u%d/Maildir", i);
		delivered_path(q, sizeof(q), rel, run.time[1], run.id[1]);
		assert_file_is(q, "Return-Path: <>\r\nDelivered-To: u@x\r\n"
				  "Subject: many\r\n");
		assert_int_equal(stat(q, &b), 0);
		assert_true(a.st_ino != b.st_ino);
		assert_int_equal(b.st_nlink, 1);
		path_of(q, sizeof(q), "mail/u%d/Maildir/new", i);
		assert_int_equal(count_dir(q), 1 + (i == 0));
	}
	path_of(q, sizeof(q), "mail/u1/Maildir/tmp");
	assert_int_equal(count_dir(q), 0);
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
	assert_int_equal(
	    spool_open(spool_dir, "queue", "h", SYNC_SYNCFS, &sp, &error), -1);
	assert_int_equal(spool_open("/proc/nonexistent/x", "1", "h",
				    SYNC_SYNCFS, &sp, &error),
			 -1);
}

/* ---- the outbound queue ----------------------------------------------- */

/* The entry of `id` in queue/, parsed (false when there is no .env). */
static bool
queue_entry(const char *id, struct spool_env *env)
{
	char p[512], name[SPOOL_QNAME_MAX], *buf;
	const char *error = "unreadable";
	size_t len = 0;
	int qfd;

	path_of(p, sizeof(p), "spool/queue");
	qfd = open(p, O_RDONLY | O_DIRECTORY);
	assert_true(qfd >= 0);
	buf = spool_read_env(qfd, spool_qname(name, id, ".env"), &len);
	close(qfd);
	if (buf == NULL)
		return false;
	if (spool_env_parse(buf, len, env, &error) < 0)
		fail_msg("queue/%s.env: %s", id, error);
	free(buf);
	assert_string_equal(env->id, id);
	return true;
}

/*
 * Look at queue/ as the outbound reader will: every <id>.env parses as
 * version 2 with remote recipients only, and its <id>.msg is a regular
 * file of the size the envelope says. Returns the number of entries;
 * *n_parts_r counts .tmp files and .msg files without their .env.
 */
static size_t
check_queue(size_t *n_parts_r)
{
	char p[512];
	size_t n_env = 0, n_parts = 0;
	struct dirent *de;
	DIR *d;

	path_of(p, sizeof(p), "spool/queue");
	d = opendir(p);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char id[SPOOL_ID_MAX];
		struct spool_env env;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		assert_true(len > 4 && len - 4 < SPOOL_ID_MAX);
		memcpy(id, de->d_name, len - 4);
		id[len - 4] = '\0';
		assert_true(spool_id_ok(id, len - 4));
		if (strcmp(de->d_name + len - 4, ".tmp") == 0) {
			n_parts++;
			continue;
		}
		if (strcmp(de->d_name + len - 4, ".msg") == 0) {
			path_of(p, sizeof(p), "spool/queue/%s.env", id);
			n_parts += !exists(p);
			continue;
		}
		assert_string_equal(de->d_name + len - 4, ".env");
		assert_true(queue_entry(id, &env));
		assert_int_equal(env.version, 2);
		for (size_t i = 0; i < env.n_rcpts; i++)
			assert_null(env.rcpts[i].maildir);
		path_of(p, sizeof(p), "spool/queue/%s.msg", id);
		if (lstat(p, &st) < 0)
			fail_msg("queue/%s.env without its .msg", id);
		assert_true(S_ISREG(st.st_mode));
		assert_true((uint64_t)st.st_size == env.size);
		spool_env_free(&env);
		n_env++;
	}
	closedir(d);
	*n_parts_r = n_parts;
	return n_env;
}

/*
 * Only remote, mixed, local only, a refused user name, and an EXDEV copy:
 * the acknowledged remote mail is in queue/ complete (envelope with the
 * remote recipients and the login, data a link of the delivered copies),
 * the rest is not there at all, and the spool area is left empty.
 */
static void
remote_round_trip(enum sync_method sync)
{
	struct spool *sp = open_spool(sync);
	struct run run = {0};
	char md[2][256], p[512], q[512];
	struct spool_rcpt remote[2] = {{"r1@remote.example", NULL},
				       {"\"r 2\"@remote.example", NULL}};
	struct spool_rcpt mixed[3] = {
	    {"u0@x", md[0]}, {"r3@remote.example", NULL}, {"u1@x", md[1]}};
	struct spool_env env;
	struct spool_msg *m;
	struct stat st, st2;
	size_t parts;

	path_of(md[0], sizeof(md[0]), "mail/u0");
	path_of(md[1], sizeof(md[1]), "mail/u1");
	path_of(p, sizeof(p), "spool/queue");
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	/* 0: remote only, authenticated. */
	m = begin_write(sp, "Subject: remote");
	spool_msg_set_auth(m, "alice@x");
	spool_msg_commit(m, "alice@x", remote, 2, record_cb, &run);
	/* 1: mixed, not authenticated (set, then cleared). */
	m = begin_write(sp, "Subject: mixed");
	spool_msg_set_auth(m, "bob@x");
	spool_msg_set_auth(m, NULL);
	spool_msg_commit(m, "", mixed, 3, record_cb, &run);
	/* 2: local only: no queue entry. */
	spool_msg_commit(begin_write(sp, "Subject: local"), "s@x", mixed, 1,
			 record_cb, &run);
	/* 3, 4: a user name the envelope cannot hold: 451, nothing. */
	m = begin_write(sp, "Subject: bad user");
	spool_msg_set_auth(m, "a b");
	spool_msg_commit(m, "s@x", remote, 1, record_cb, &run);
	m = begin_write(sp, "Subject: bad user");
	spool_msg_set_auth(m, "");
	spool_msg_set_auth(m, "ok"); /* the failure is remembered */
	spool_msg_commit(m, "s@x", mixed, 3, record_cb, &run);
	wait_done(sp, &run, 5);
	assert_int_equal(run.result[0], 0);
	assert_int_equal(run.result[1], 0);
	assert_int_equal(run.result[2], 0);
	assert_int_equal(run.result[3], -1);
	assert_int_equal(run.result[4], -1);
	assert_int_equal(check_queue(&parts), 2);
	assert_int_equal(parts, 0);
	assert_area_empty();

	assert_true(queue_entry(run.id[0], &env));
	assert_string_equal(env.sender, "alice@x");
	assert_string_equal(env.auth, "alice@x");
	assert_true(env.time == run.time[0]);
	assert_int_equal(env.n_rcpts, 2);
	assert_string_equal(env.rcpts[0].address, "r1@remote.example");
	assert_string_equal(env.rcpts[1].address, "\"r 2\"@remote.example");
	spool_env_free(&env);
	path_of(p, sizeof(p), "spool/queue/%s.msg", run.id[0]);
	assert_file_is(p, "Subject: remote\r\n");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 1); /* the spool's name is gone */
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_true(queue_entry(run.id[1], &env));
	assert_null(env.auth);
	assert_string_equal(env.sender, "");
	assert_int_equal(env.n_rcpts, 1);
	assert_string_equal(env.rcpts[0].address, "r3@remote.example");
	spool_env_free(&env);
	path_of(p, sizeof(p), "spool/queue/%s.msg", run.id[1]);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 1); /* the Maildirs have copies */
	delivered_path(q, sizeof(q), "mail/u1", run.time[1], run.id[1]);
	assert_int_equal(stat(q, &st2), 0);
	assert_true(st.st_ino != st2.st_ino);

	for (int i = 2; i < 5; i++) {
		path_of(p, sizeof(p), "spool/queue/%s.msg", run.id[i]);
		assert_false(exists(p));
	}
	path_of(p, sizeof(p), "mail/u0/new");
	assert_int_equal(count_dir(p), 2); /* 1 and 2, not 4 */
	spool_close(&sp);
}

static void
test_remote_syncfs(void **state)
{
	(void)state;
	remote_round_trip(SYNC_SYNCFS);
}

static void
test_remote_fsync(void **state)
{
	(void)state;
	remote_round_trip(SYNC_FSYNC);
}

static int exdev_copies;

static int
exdev_linkat(int a, const char *b, int c, const char *d, int f)
{
	size_t n = strlen(d);

	if (n > 4 && strcmp(d + n - 4, ".msg") == 0) {
		exdev_copies++;
		errno = EXDEV;
		return -1;
	}
	return linkat(a, b, c, d, f);
}

/* The queue on another file system: the data is copied (and synced). */
static void
test_remote_exdev(void **state)
{
	struct spool_rcpt r[2] = {{"u@x", NULL}, {"v@y", NULL}};
	struct storefs_ops saved = storefs;
	char md[256], p[512];
	struct stat st;
	size_t parts;

	(void)state;
	path_of(md, sizeof(md), "mail/u");
	r[1].maildir = md;
	storefs.linkat = exdev_linkat;
	for (int k = 0; k < 2; k++) {
		struct spool *sp = open_spool(k ? SYNC_FSYNC : SYNC_SYNCFS);
		struct run run = {0};

		spool_msg_commit(begin_write(sp, "Subject: copied"), "s@x", r,
				 2, record_cb, &run);
		wait_done(sp, &run, 1);
		assert_int_equal(run.result[0], 0);
		path_of(p, sizeof(p), "spool/queue/%s.msg", run.id[0]);
		assert_file_is(p, "Subject: copied\r\n");
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_nlink, 1); /* a copy, not the link */
		spool_close(&sp);
	}
	storefs = saved;
	assert_int_equal(exdev_copies, 2);
	assert_int_equal(check_queue(&parts), 2);
	assert_int_equal(parts, 0);
}

/* ---- recovery --------------------------------------------------------- */

/* Append a record to the journal of `area` (made, with its magic line,
   when missing). */
static void
jappend(const char *area, const char *kind, const char *id, const char *payload,
	size_t len)
{
	struct spool_buf b = {0};
	struct stat st;
	char p[512];
	int fd;

	path_of(p, sizeof(p), "spool/%s/journal", area);
	fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	if (st.st_size == 0)
		assert_int_equal(spool_buf_add(&b, SPOOL_JOURNAL_MAGIC,
					       strlen(SPOOL_JOURNAL_MAGIC)),
				 0);
	assert_int_equal(spool_journal_add(&b, kind, id, payload, len), 0);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	close(fd);
	spool_buf_free(&b);
}

/* Is message `id` of `area` committed and unfinished (either layout)? */
static bool
planted(const char *area, const char *id)
{
	char p[512];

	path_of(p, sizeof(p), "spool/%s/committed/%s", area, id);
	return exists(p) || journal_has(area, id);
}

/* Put a message into the spool as a crashed process would leave it: its
   data (unless NULL) and its envelope (made from the arguments unless
   env_text is given) in committed/ or, with plant_journal, the journal. */
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
	if (!plant_journal)
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
	if (plant_journal) {
		jappend(area, "commit", id, env_text, len);
		free(buf);
		return;
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
	assert_file_is(p, "Return-Path: <s@x>\r\nDelivered-To: u@x\r\none");
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
	assert_true(planted("5", "idx"));
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

/*
 * Issue 6 item 4: a 253-octet hostname (the longest the configuration
 * takes) used to fail every delivery with ENAMETOOLONG. Now the commit
 * delivers, and recovery finds the same name: it delivers a planted
 * message once and recognises it the next time.
 */
static void
test_long_hostname(void **state)
{
	char host[254], md[256], p[512], name[SPOOL_MDNAME_MAX];
	struct spool_rcpt r = {"u@x", md};
	const char *const mds[] = {md};
	const char *error = NULL;
	struct run run = {0};
	struct spool *sp;

	(void)state;
	for (size_t i = 0; i < 253; i++)
		host[i] = i % 64 == 63 ? '.' : (char)('a' + i % 26);
	host[253] = '\0';
	path_of(md, sizeof(md), "mail/Maildir");
	if (spool_open(spool_dir, "1234", host, SYNC_SYNCFS, &sp, &error) < 0)
		fail_msg("spool_open: %s", error);
	spool_msg_commit(begin_write(sp, "Subject: long"), "s@x", &r, 1,
			 record_cb, &run);
	wait_done(sp, &run, 1);
	assert_int_equal(run.result[0], 0);
	assert_area_empty();
	spool_close(&sp);
	assert_int_equal(maildir_name(run.time[0], run.id[0], host, name,
				      sizeof(name)),
			 0);
	assert_true(strlen(name) < 200);
	path_of(p, sizeof(p), "mail/Maildir/new/%s", name);
	assert_true(exists(p));
	/* Recovery: the same name, so exactly once. */
	plant_journal = true;
	plant("9", "idlong", 100, "data", NULL, mds, 1);
	assert_int_equal(spool_recover(spool_dir, NULL, host), 1);
	assert_int_equal(maildir_name(100, "idlong", host, name, sizeof(name)),
			 0);
	path_of(p, sizeof(p), "mail/Maildir/new/%s", name);
	assert_true(exists(p));
	plant("9", "idlong", 100, "data", NULL, mds, 1);
	assert_int_equal(spool_recover(spool_dir, NULL, host), 0);
	path_of(p, sizeof(p), "mail/Maildir/new");
	assert_int_equal(count_dir(p), 2);
}

/*
 * A crash after the commit point but before the copies were moved into
 * new/ leaves them in tmp/, maybe cut short (with syncfs they were durable
 * only at the commit, and a copy may also be stale from an earlier try).
 * Recovery never trusts one: it writes each copy again, header first,
 * then moves it into new/.
 */
static void
test_recover_partial_copy(void **state)
{
	char a[256], b[256], p[512], name[SPOOL_MDNAME_MAX];
	const char *const both[] = {a, b};

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	path_of(b, sizeof(b), "mail/b");
	plant_journal = true;
	plant("5", "idp", 100, "Subject: p\r\n\r\nbody\r\n", NULL, both, 2);
	assert_int_equal(maildir_create(a), 0);
	assert_int_equal(maildir_name(100, "idp", "mx/host:1", name,
				      sizeof(name)),
			 0);
	path_of(p, sizeof(p), "mail/a/tmp/%s", name);
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
	assert_int_equal(truncate(p, 7), 0); /* "Return-" then zeros */
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 1);
	assert_false(exists(p));
	path_of(p, sizeof(p), "mail/a/new/%s", name);
	assert_file_is(p, "Return-Path: <s@x>\r\nDelivered-To: u@x\r\n"
			  "Subject: p\r\n\r\nbody\r\n");
	path_of(p, sizeof(p), "mail/b/new/%s", name);
	assert_file_is(p, "Return-Path: <s@x>\r\nDelivered-To: u@x\r\n"
			  "Subject: p\r\n\r\nbody\r\n");
	path_of(p, sizeof(p), "mail/a/tmp");
	assert_int_equal(count_dir(p), 0);
	path_of(p, sizeof(p), "spool/5");
	assert_false(exists(p));
}

/*
 * Data files are reused (spool_pool.c): a finished message's file, emptied,
 * becomes the next message's, so no inode is freed per message - but
 * never one that queue/<id>.msg links to, and a clean close leaves none.
 */
static void
test_data_reuse(void **state)
{
	struct spool *sp = open_spool(SYNC_SYNCFS);
	char md[256], p[512], q[512];
	struct spool_rcpt local = {"u@x", md}, remote = {"r@remote.example",
							 NULL};
	struct run run = {0};
	struct spool_msg *m;
	struct stat st, st2;

	(void)state;
	path_of(md, sizeof(md), "mail/Maildir");
	m = begin_write(sp, "Subject: first");
	path_of(p, sizeof(p), "spool/1234/tmp/%s", spool_msg_id(m));
	assert_int_equal(stat(p, &st), 0);
	spool_msg_commit(m, "s@x", &local, 1, record_cb, &run);
	wait_done(sp, &run, 1);
	assert_area_empty();
	path_of(p, sizeof(p), "spool/1234/tmp/.pool0");
	assert_int_equal(stat(p, &st2), 0);
	assert_true(st.st_ino == st2.st_ino);
	assert_int_equal(st2.st_size, 0);
	/* The next message gets that inode, and only its own bytes. */
	m = begin_write(sp, "Subject: 2");
	assert_false(exists(p));
	path_of(q, sizeof(q), "spool/1234/tmp/%s", spool_msg_id(m));
	assert_int_equal(stat(q, &st2), 0);
	assert_true(st.st_ino == st2.st_ino);
	assert_int_equal(st2.st_size, 12);
	/* It goes to the queue: its inode is queue/<id>.msg's from now on,
	   so it is removed from tmp/, not reused. */
	spool_msg_commit(m, "s@x", &remote, 1, record_cb, &run);
	wait_done(sp, &run, 2);
	assert_int_equal(run.result[1], 0);
	assert_area_empty();
	path_of(q, sizeof(q), "spool/1234/tmp");
	assert_int_equal(count_dir(q), 0);
	m = begin_write(sp, "Subject: third, and longer");
	path_of(q, sizeof(q), "spool/queue/%s.msg", run.id[1]);
	assert_file_is(q, "Subject: 2\r\n");
	spool_msg_abort(&m);
	/* A clean close removes what it kept. */
	spool_msg_commit(begin_write(sp, "Subject: 4"), "s@x", &local, 1,
			 record_cb, &run);
	wait_done(sp, &run, 3);
	assert_area_empty();
	spool_close(&sp);
	path_of(q, sizeof(q), "spool/1234/tmp");
	assert_int_equal(count_dir(q), 0);
	path_of(q, sizeof(q), "mail/Maildir/new");
	assert_int_equal(count_dir(q), 2);
}

/* ---- fault injection -------------------------------------------------- */

static int fi_at;	       /* fail the call with this number (1-based) */
static bool fi_crash;	       /* ... and every call after it */
static int fi_err;	       /* errno to fail with */
static int fi_calls;	       /* calls so far (atomic) */
static int fi_journal_fd = -1; /* the spool's journal, for the trace */

/* The sequence of calls, one letter each, for the ordering checks:
   o openat (T: of a queue/<id>.tmp, C: of a Maildir copy), w write (J:
   to the journal), c copy_file_range, f fsync of a file (d: of a
   directory), s syncfs, m mkdirat, Q rename of a queue entry into place,
   P rename of a data file into or out of reuse, R other rename, l linkat
   (L: to a queue/<id>.msg), u unlinkat, t ftruncate, and '!' where a
   callback ran. */
static char fi_trace[4096];

/*
 * Which directory entries were made and which were made durable, for the
 * check that every directory created is synced in its parent before a
 * commit is reported (issue 6 item 5). 'm': a mkdirat() that succeeded,
 * with its parent directory; 'f': an fsync() that succeeded, with the
 * file synced; 's': a syncfs() that succeeded, with its file system; '!':
 * a callback. Not reset by fi_run's spool_open, so that the directories
 * spool_open() makes are checked too.
 */
struct fi_event {
	char kind;
	dev_t dev;
	ino_t ino;
	char name[64]; /* of a mkdirat, for the message */
};
static struct fi_event fi_events[4096];
static int fi_n_events; /* atomic */

static void
fi_event(char kind, const struct stat *st, const char *name)
{
	int i = __atomic_fetch_add(&fi_n_events, 1, __ATOMIC_SEQ_CST);

	if (i >= (int)(sizeof(fi_events) / sizeof(fi_events[0])))
		return; /* fi_check_dirs_synced fails on the count */
	fi_events[i].kind = kind;
	fi_events[i].dev = st != NULL ? st->st_dev : 0;
	fi_events[i].ino = st != NULL ? st->st_ino : 0;
	snprintf(fi_events[i].name, sizeof(fi_events[i].name), "%s",
		 name != NULL ? name : "");
}

/* Count one call (or callback) and note it; returns its number. */
static int
fi_note(char op)
{
	if (op == '!')
		fi_event('!', NULL, NULL);
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

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

static int
fi_openat(int d, const char *p, int f, int m)
{
	/* A Maildir copy is named after the host "mx/host:1" */
	char op = ends_with(p, ".tmp")		     ? 'T'
		  : strstr(p, "host\\0721") != NULL ? 'C'
						     : 'o';

	return fi_fail_op(op) ? -1 : openat(d, p, f, (mode_t)m);
}

static ssize_t
fi_copy_range(int in, off_t *in_off, int out, size_t len)
{
	return fi_fail_op('c') ? -1
			       : copy_file_range(in, in_off, out, NULL, len, 0);
}

static ssize_t
fi_write(int fd, const void *b, size_t n)
{
	return fi_fail_op(fd == fi_journal_fd ? 'J' : 'w') ? -1
							   : write(fd, b, n);
}

static int
fi_ftruncate(int fd, off_t len)
{
	return fi_fail_op('t') ? -1 : ftruncate(fd, len);
}

static int
fi_fsync(int fd)
{
	struct stat st;
	bool is_dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);

	if (fi_fail_op(is_dir ? 'd' : 'f') || fsync(fd) < 0)
		return -1;
	fi_event('f', &st, NULL);
	return 0;
}

static int
fi_syncfs(int fd)
{
	struct stat st;

	if (fi_fail() || syncfs(fd) < 0)
		return -1;
	if (fstat(fd, &st) == 0)
		fi_event('s', &st, NULL);
	return 0;
}

/* The directory that holds `p` (relative to d). */
static int
fi_parent(int d, const char *p, struct stat *st)
{
	char dir[512];
	const char *slash = strrchr(p, '/');

	if (slash == NULL)
		return d == AT_FDCWD ? stat(".", st) : fstat(d, st);
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - p), p);
	return fstatat(d, slash == p ? "/" : dir, st, 0);
}

static int
fi_mkdirat(int d, const char *p, int m)
{
	struct stat st;

	if (fi_fail() || mkdirat(d, p, (mode_t)m) < 0)
		return -1;
	if (fi_parent(d, p, &st) == 0)
		fi_event('m', &st, p);
	else
		fi_event('m', NULL, p); /* matches no sync: fails the check */
	return 0;
}

static int
fi_renameat(int a, const char *b, int c, const char *d, unsigned f)
{
	char op = ends_with(b, ".tmp")		 ? 'Q'
		  : strstr(b, ".pool") != NULL || strstr(d, ".pool") != NULL
		      ? 'P'
		      : 'R';

	return fi_fail_op(op) ? -1 : renameat2(a, b, c, d, f);
}

static int
fi_linkat(int a, const char *b, int c, const char *d, int f)
{
	return fi_fail_op(ends_with(d, ".msg") ? 'L' : 'l')
		   ? -1
		   : linkat(a, b, c, d, f);
}

static int
fi_unlinkat(int d, const char *p, int f)
{
	return fi_fail() ? -1 : unlinkat(d, p, f);
}

static const struct storefs_ops fi_ops = {
    fi_openat,	 fi_write,  fi_fsync,	 fi_syncfs,    fi_mkdirat,
    fi_renameat, fi_linkat, fi_unlinkat, fi_ftruncate, fi_copy_range,
};

#define FI_MSGS 3

#define FI_REMOTE 3 /* a remote recipient, in the tables below */

/* Which Maildirs (mail/m0..m2) each message goes to. */
static const int fi_local[FI_MSGS][3] = {{0, 1, -1}, {1, -1, -1}, {2, 0, -1}};
/* ... and with remote recipients: mixed, remote only, mixed. */
static const int fi_mixed[FI_MSGS][3] = {
    {0, FI_REMOTE, -1}, {FI_REMOTE, FI_REMOTE, -1}, {2, 0, FI_REMOTE}};
static const int (*fi_rcpts)[3] = fi_local;
static char fi_ids[FI_MSGS][SPOOL_ID_MAX];

/* The message (row of fi_rcpts) with queue id `id`. */
static int
fi_msg_of(const char *id)
{
	for (int i = 0; i < FI_MSGS; i++)
		if (strcmp(fi_ids[i], id) == 0)
			return i;
	fail_msg("unknown id %s", id);
	return -1;
}

static bool
fi_has(int msg, bool remote)
{
	for (int j = 0; j < 3; j++)
		if (fi_rcpts[msg][j] >= 0 &&
		    (fi_rcpts[msg][j] == FI_REMOTE) == remote)
			return true;
	return false;
}

/* Is any file of message `id` in queue/ (.msg, .tmp, .env)? */
static bool
fi_in_queue(const char *id, const char *suffix)
{
	char p[512];

	path_of(p, sizeof(p), "spool/queue/%s%s", id, suffix);
	return exists(p);
}

/* Every file in the Maildir tmp/ `dir` is the copy of a message of the
   run that was neither acknowledged nor committed. */
static void
fi_check_tmp_left(const char *dir, const struct run *run,
		  const bool *committed)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL && errno == ENOENT)
		return; /* the crash came before the Maildir was made */
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		bool known = false;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		for (int i = 0; i < run->n_done && !known; i++) {
			char name[SPOOL_MDNAME_MAX];

			assert_int_equal(maildir_name(run->time[i], run->id[i],
						      "mx/host:1", name,
						      sizeof(name)),
					 0);
			known = strcmp(name, de->d_name) == 0 &&
				run->result[i] != 0 && !committed[i];
		}
		if (!known)
			fail_msg("%s/%s left in tmp/", dir, de->d_name);
	}
	closedir(d);
}

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
	struct storefs_ops saved = storefs;
	struct spool_msg *msgs[FI_MSGS] = {0};
	char md[3][256], p[512];
	bool committed[FI_MSGS] = {0};
	struct run run = {0};
	struct spool *sp;
	int n_commit = 0;

	for (int i = 0; i < 3; i++)
		path_of(md[i], sizeof(md[i]), "mail/m%d", i);
	storefs = fi_ops;
	fi_at = 0;
	fi_n_events = 0;
	sp = open_spool(sync);
	fi_journal_fd = sp->journal_fd;
	set_paused(sp, true);
	memset(fi_trace, 0, sizeof(fi_trace));
	fi_calls = 0;
	fi_crash = crash;
	fi_err = err;
	fi_at = at;
	memset(fi_ids, 0, sizeof(fi_ids));
	for (int i = 0; i < FI_MSGS; i++) {
		struct spool_rcpt r[3];
		size_t n = 0;
		char text[32];

		if (spool_msg_begin(sp, &msgs[i]) < 0)
			continue;
		snprintf(fi_ids[i], sizeof(fi_ids[i]), "%s",
			 spool_msg_id(msgs[i]));
		snprintf(text, sizeof(text), "Subject: %d\r\n\r\n", i);
		spool_msg_write(msgs[i], text, strlen(text));
		spool_msg_write(msgs[i], "body\r\n", 6);
		if (i == 0)
			spool_msg_set_auth(msgs[i], "alice@x");
		for (int j = 0; j < 3; j++) {
			if (fi_rcpts[i][j] < 0)
				continue;
			r[n].address = fi_rcpts[i][j] == FI_REMOTE
					   ? "r@remote.example"
					   : "u@x";
			r[n++].maildir = fi_rcpts[i][j] == FI_REMOTE
					     ? NULL
					     : md[fi_rcpts[i][j]];
		}
		spool_msg_commit(msgs[i], "s@x", r, n, record_cb, &run);
		n_commit++;
	}
	set_paused(sp, false);
	wait_done(sp, &run, n_commit);
	spool_close(&sp);
	fi_journal_fd = -1;
	out.calls = fi_calls;
	fi_at = 0;
	if (!crash && at > 0 && (size_t)at <= sizeof(fi_trace)) {
		/* A failed sync before the callbacks: whatever it was to make
		   durable must not be acknowledged. With syncfs every message
		   of the batch depends on every sync. */
		char op = fi_trace[at - 1];
		const char *cb = memchr(fi_trace, '!', sizeof(fi_trace));

		if ((op == 's' || op == 'f' || op == 'd') && cb != NULL &&
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
	/* After a single failure every record is done: the owed done
	   records were appended at the latest by spool_close(). */
	if (!crash && journal_live("1234") > 0)
		fail_msg("at=%d: records left pending", at);
	/* What a reader of queue/ sees at any time: complete entries only
	   (check_queue fails on an .env without its .msg, or cut). */
	{
		size_t parts;

		check_queue(&parts);
	}
	for (int i = 0; i < run.n_done; i++) {
		committed[i] = journal_has("1234", run.id[i]);
		if (run.result[i] == 0)
			out.n_ok++;
		else
			out.n_failed++;
		if (run.result[i] == 0 && fi_has(fi_msg_of(run.id[i]), true) &&
		    !fi_in_queue(run.id[i], ".env"))
			fail_msg("at=%d: acknowledged message %d not queued",
				 at, i);
		if (crash || run.result[i] == 0)
			continue;
		/* A single failure: undone completely. */
		assert_false(committed[i]);
		path_of(p, sizeof(p), "spool/1234/tmp/%s", run.id[i]);
		assert_false(exists(p));
		assert_false(fi_in_queue(run.id[i], ".env"));
		assert_false(fi_in_queue(run.id[i], ".tmp"));
		assert_false(fi_in_queue(run.id[i], ".msg"));
		for (int m = 0; m < 3; m++) {
			delivered_path(p, sizeof(p), md[m] + strlen(root) + 1,
				       run.time[i], run.id[i]);
			assert_false(exists(p));
		}
	}
	storefs = saved;
	assert_true(spool_recover(spool_dir, NULL, "mx/host:1") >= 0);
	for (int i = 0; i < run.n_done; i++) {
		int have = 0;
		bool must = run.result[i] == 0 || committed[i];

		for (int m = 0; m < 3; m++) {
			delivered_path(p, sizeof(p), md[m] + strlen(root) + 1,
				       run.time[i], run.id[i]);
			have += exists(p);
		}
		if (must && have == 0 && fi_has(fi_msg_of(run.id[i]), false))
			fail_msg("at=%d crash=%d: acknowledged or committed "
				 "message %d lost",
				 at, crash, i);
		if (!must && have != 0)
			fail_msg("at=%d crash=%d: uncommitted message %d "
				 "delivered",
				 at, crash, i);
		/* The queue: the entry exactly when it must be there. */
		if (must && fi_has(fi_msg_of(run.id[i]), true) &&
		    !fi_in_queue(run.id[i], ".env"))
			fail_msg("at=%d crash=%d: acknowledged or committed "
				 "message %d not queued",
				 at, crash, i);
		if (!must && (fi_in_queue(run.id[i], ".env") ||
			      fi_in_queue(run.id[i], ".msg")))
			fail_msg("at=%d crash=%d: uncommitted message %d "
				 "queued",
				 at, crash, i);
	}
	/* Nothing partial is left in queue/ after recovery. */
	{
		size_t parts, n = check_queue(&parts);

		if (parts != 0)
			fail_msg("at=%d crash=%d: %zu partial queue files", at,
				 crash, parts);
		if (fi_rcpts == fi_local)
			assert_int_equal(n, 0);
	}
	/* Exactly once, all-or-none: every new/ holds only known names,
	   tmp/ nothing but, after a crash, copies of messages that were never
	   committed (their Maildirs are not known to recovery; readers
	   remove old files in tmp/); the spool is empty. */
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
			if (!crash)
				assert_int_equal(count_dir(p), 0);
			else
				fi_check_tmp_left(p, &run, committed);
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

/*
 * Issue 6 item 5: every directory made before a commit was reported (the
 * spool's, a new Maildir, its tmp/ new/ cur/ and their parents) has its
 * entry made durable before that report: an fsync() of its parent, or a
 * syncfs() of its file system, between the mkdirat() and the first
 * callback after it.
 */
static void
fi_check_dirs_synced(void)
{
	int n = fi_n_events, first_cb = -1, n_dirs = 0;

	assert_true(n <= (int)(sizeof(fi_events) / sizeof(fi_events[0])));
	for (int i = 0; i < n && first_cb < 0; i++)
		if (fi_events[i].kind == '!')
			first_cb = i;
	assert_true(first_cb > 0);
	for (int i = 0; i < first_cb; i++) {
		const struct fi_event *m = &fi_events[i];
		bool synced = false;

		if (m->kind != 'm')
			continue;
		n_dirs++;
		for (int j = i + 1; j < first_cb && !synced; j++) {
			const struct fi_event *e = &fi_events[j];

			synced = m->dev != 0 &&
				 ((e->kind == 'f' && e->dev == m->dev &&
				   e->ino == m->ino) ||
				  (e->kind == 's' && e->dev == m->dev));
		}
		if (!synced)
			fail_msg("directory %s made, its parent never synced "
				 "before the commit was reported",
				 m->name);
	}
	/* spool/, the area, tmp/, queue/; mail/, and at least two of m0-m2
	   with their tmp/ new/ cur/: the check saw them all. */
	assert_true(n_dirs >= 4 + 1 + 2 * 4);
}

/* Calls in [from, to) that are any of `ops`. */
static size_t
fi_count(const char *from, const char *to, const char *ops)
{
	size_t n = 0;

	for (; from < to; from++)
		n += strchr(ops, *from) != NULL;
	return n;
}

/*
 * What both orders share, for a trace `t` of one batch: the data written
 * before the one append of commit records (the first J), one sync of
 * them between it and the first delivery `first_d`, `after` syncs of the
 * deliveries after the last one `last_d` and before the first callback,
 * then the append of the done records (the second J) and the removal of
 * the data files, after the last sync. Two syncs in all with syncfs; no
 * sync of the other method.
 */
static void
fi_check_journal(enum sync_method sync, const char *t, const char *first_d,
		 const char *last_d, size_t after)
{
	const char *first_j = strchr(t, 'J'), *last_j = strrchr(t, 'J');
	const char *cb = strchr(t, '!');
	const char *sync_op = sync == SYNC_SYNCFS ? "s" : "fd";

	assert_non_null(first_j);
	assert_non_null(first_d);
	assert_non_null(last_d);
	assert_non_null(cb);
	assert_true(first_j < last_j && first_j < first_d);
	assert_int_equal(fi_count(t, t + strlen(t), "J"), 2);
	assert_true(strrchr(t, 'w') < first_j);
	assert_true(last_d < last_j && last_d < cb);
	assert_int_equal(fi_count(first_j, first_d, sync_op), 1);
	assert_int_equal(fi_count(last_d, cb, sync_op), after);
	assert_int_equal(fi_count(last_d, last_j, sync_op), after);
	assert_int_equal(fi_count(last_j, t + strlen(t), sync_op), 0);
	/* the data files go after the done records: removed, or emptied
	   and kept for reuse (then removed by spool_close) */
	assert_int_equal(fi_count(last_j, t + strlen(t), "u"), FI_MSGS);
	assert_int_equal(fi_count(t, last_j, "P"), 0);
	if (sync == SYNC_SYNCFS) {
		assert_int_equal(fi_count(t, first_j, "s"), 0);
		assert_int_equal(fi_count(t, t + strlen(t), "s"), 2);
	}
	assert_int_equal(
	    fi_count(t, t + strlen(t), sync == SYNC_SYNCFS ? "fd" : "s"), 0);
}

/* Maildir copies in the batch of fi_rcpts (one per message and Maildir). */
static size_t
fi_n_copies(void)
{
	size_t n = 0;

	for (int i = 0; i < FI_MSGS; i++)
		for (int j = 0; j < 3; j++)
			n += fi_rcpts[i][j] >= 0 && fi_rcpts[i][j] != FI_REMOTE;
	return n;
}

/*
 * The durability order of one batch of FI_MSGS messages to 3 Maildirs:
 * data and the Maildir copies (in their tmp/) durable (fsync: each data
 * file, each copy, and tmp/) before the commit records are appended, the
 * records durable before the first move of a copy into new/, the
 * Maildirs synced after the last move and before the first callback. (A
 * simulated crash cannot show a missing sync; this can.)
 */
static void
fi_check_order(enum sync_method sync, const char *t)
{
	const char *first_j = strchr(t, 'J');

	fi_check_journal(sync, t, strchr(t, 'R'), strrchr(t, 'R'),
			 sync == SYNC_SYNCFS ? 1 : 3);
	assert_int_equal(fi_count(t, t + strlen(t), "C"), fi_n_copies());
	assert_int_equal(fi_count(t, first_j, "C"), fi_n_copies());
	assert_int_equal(fi_count(t, t + strlen(t), "l"), 0); /* no links */
	/* the data of each message, each copy, and tmp/ (and, before it,
	   the new Maildirs and their parents, on first use) */
	if (sync == SYNC_FSYNC) {
		assert_int_equal(fi_count(t, first_j, "f"),
				 FI_MSGS + fi_n_copies());
		assert_true(fi_count(t, first_j, "d") >= 1);
	}
}

/*
 * The same for a batch with queue entries (fi_mixed: every message has a
 * remote recipient): the queue's .msg links and .tmp envelopes made
 * before the commit records are appended (and, with fsync, synced with
 * queue/ before), the entries published (.tmp to .env) only after the
 * records are durable, and synced with the Maildirs before the first
 * callback: one syncfs for all (one file system), or fsync of each new/
 * touched (m0, m2) and of queue/.
 */
static void
fi_check_order_queue(enum sync_method sync, const char *t)
{
	const char *first_j = strchr(t, 'J'), *first_q = strchr(t, 'Q');
	const char *last_q = strrchr(t, 'Q'), *last_r = strrchr(t, 'R');

	assert_non_null(first_q);
	assert_non_null(last_r);
	fi_check_journal(
	    sync, t, strchr(t, 'R') < first_q ? strchr(t, 'R') : first_q,
	    last_r > last_q ? last_r : last_q, sync == SYNC_SYNCFS ? 1 : 3);
	assert_int_equal(fi_count(t, first_j, "C"), fi_n_copies());
	assert_int_equal(fi_count(t, first_j, "L"), FI_MSGS);
	assert_int_equal(fi_count(t, first_j, "T"), FI_MSGS);
	assert_int_equal(fi_count(t, t + strlen(t), "L"), FI_MSGS);
	assert_int_equal(fi_count(t, t + strlen(t), "T"), FI_MSGS);
	assert_int_equal(fi_count(t, t + strlen(t), "Q"), FI_MSGS);
	/* data and queue envelope of each message, each copy, tmp/ and
	   queue/ (and the new Maildirs) */
	if (sync == SYNC_FSYNC) {
		assert_int_equal(fi_count(t, first_j, "f"),
				 2 * FI_MSGS + fi_n_copies());
		assert_true(fi_count(t, first_j, "d") >= 2);
	}
}

static void
fault_sweep(enum sync_method sync, bool crash)
{
	struct fi_outcome clean;
	int failed_runs = 0;

	clean = fi_run(sync, 0, false, 0);
	if (getenv("FI_VERBOSE"))
		printf("sync=%d trace=%s\n", sync, fi_trace);
	fi_check_dirs_synced();
	if (fi_rcpts == fi_local)
		fi_check_order(sync, fi_trace);
	else
		fi_check_order_queue(sync, fi_trace);

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

/* ---- recovery of the outbound queue ---------------------------------- */

/* Put queue/<id><suffix> with `text` (the queue directory made first). */
static void
qplant(const char *id, const char *suffix, const char *text)
{
	char p[512];
	int fd;

	mkdir(spool_dir, 0700);
	path_of(p, sizeof(p), "spool/queue");
	mkdir(p, 0700);
	path_of(p, sizeof(p), "spool/queue/%s%s", id, suffix);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* A complete entry the outbound work owns: queue/<id>.env and .msg. */
static void
qplant_entry(const char *id, const char *data)
{
	struct spool_rcpt r = {"other@remote.example", NULL};
	struct spool_env e = {.time = 100,
			      .size = strlen(data),
			      .sender = "s@x",
			      .rcpts = &r,
			      .n_rcpts = 1};
	char *buf, *text;
	size_t len;

	snprintf(e.id, sizeof(e.id), "%s", id);
	assert_int_equal(spool_env_format(&e, &buf, &len), 0);
	text = strndup(buf, len); /* qplant writes a string */
	assert_non_null(text);
	qplant(id, ".msg", data);
	qplant(id, ".env", text);
	free(text);
	free(buf);
}

static void
assert_queue_has(const char *id, const char *data, const char *remote)
{
	struct spool_env env;
	char p[512];

	assert_true(queue_entry(id, &env));
	assert_int_equal(env.n_rcpts, 1);
	assert_string_equal(env.rcpts[0].address, remote);
	spool_env_free(&env);
	path_of(p, sizeof(p), "spool/queue/%s.msg", id);
	assert_file_is(p, data);
}

/* The recovery cases of the queue, planted as a crash leaves them. */
static void
plant_queue_cases(const char *a)
{
	const char *const remote[] = {NULL}, *const mixed[] = {a, NULL};
	char p[512];

	/* q1: committed, remote only, nothing in queue/ yet. */
	plant("77", "q1", 100, "one", NULL, remote, 1);
	/* q2: committed, mixed; a stale .msg and a cut .tmp in queue/. */
	plant("77", "q2", 100, "two", NULL, mixed, 2);
	qplant("q2", ".msg", "junk of another size");
	qplant("q2", ".tmp", "postern-envelope 2\nid q2\n");
	/* q4: uncommitted, with its queue parts: all removed. */
	path_of(p, sizeof(p), "spool/77/tmp/q4");
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
	path_of(p, sizeof(p), "spool/77/tmp/q4.env");
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
	qplant("q4", ".msg", "");
	qplant("q4", ".tmp", "postern-envelope 2\n");
	/* q5: committed and reaped up to the data file: the entry stays. */
	path_of(p, sizeof(p), "spool/77/tmp/q5");
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
	qplant_entry("q5", "five");
}

static void
check_queue_cases(const char *a)
{
	char p[512];
	size_t parts;

	assert_queue_has("q1", "one", "u@x");
	assert_queue_has("q2", "two", "u@x");
	assert_queue_has("q5", "five", "other@remote.example");
	assert_false(fi_in_queue("q4", ".msg"));
	assert_false(fi_in_queue("q4", ".tmp"));
	assert_int_equal(check_queue(&parts), 3);
	assert_int_equal(parts, 0);
	(void)a;
	delivered_path(p, sizeof(p), "mail/a", 100, "q2");
	assert_true(exists(p));
	path_of(p, sizeof(p), "mail/a/new");
	assert_int_equal(count_dir(p), 1);
	path_of(p, sizeof(p), "spool/77");
	assert_false(exists(p));
}

/*
 * A committed message's missing or partial queue entry is made (once); an
 * existing entry is never touched or doubled; an uncommitted message's
 * parts are removed, a reaped one's entry is kept; a v1 spool without
 * queue/ gets one when needed.
 */
static void
test_recover_queue(void **state)
{
	char a[256], p[512], before[512];
	const char *const remote[] = {NULL};
	struct stat st;
	size_t parts;
	int fd;
	ssize_t n;

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	/* No queue/ yet (a spool from before it existed). */
	plant("77", "q0", 100, "zero", NULL, remote, 1);
	path_of(p, sizeof(p), "spool/queue");
	assert_false(exists(p));
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 1);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_queue_has("q0", "zero", "u@x");
	path_of(p, sizeof(p), "spool/queue/q0.msg");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 1);
	path_of(p, sizeof(p), "spool/queue/q0.env");
	assert_int_equal(unlink(p), 0);
	path_of(p, sizeof(p), "spool/queue/q0.msg");
	assert_int_equal(unlink(p), 0);

	plant_queue_cases(a);
	/* q3: committed, its entry there already (and different): kept. */
	plant("77", "q3", 100, "three", NULL, remote, 1);
	qplant_entry("q3", "other");
	path_of(p, sizeof(p), "spool/queue/q3.env");
	fd = open(p, O_RDONLY);
	n = read(fd, before, sizeof(before) - 1);
	close(fd);
	assert_true(n > 0);
	before[n] = '\0';
	/* q6: committed, data gone, entry there: finished. */
	plant("77", "q6", 100, NULL, NULL, remote, 1);
	qplant_entry("q6", "");
	/* q7: committed, data gone, no entry: quarantined, not dropped. */
	plant("77", "q7", 100, NULL, NULL, remote, 1);
	/* q8: a corrupt envelope: quarantined, its queue parts removed. */
	plant("77", "q8", 100, "eight", "postern-envelope 2\nid q8\n", remote,
	      1);
	qplant("q8", ".msg", "eight");
	qplant("q8", ".tmp", "");

	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 2);
	assert_file_is(p, before); /* q3 untouched */
	path_of(p, sizeof(p), "spool/queue/q3.msg");
	assert_file_is(p, "other");
	assert_false(fi_in_queue("q7", ".env"));
	assert_false(fi_in_queue("q8", ".msg"));
	assert_false(fi_in_queue("q8", ".tmp"));
	path_of(p, sizeof(p), "spool/quarantine");
	assert_int_equal(count_dir(p), 3);	  /* q7 env, q8 env + data */
	assert_int_equal(check_queue(&parts), 5); /* q1 q2 q3 q5 q6 */
	assert_int_equal(parts, 0);
	/* Again: nothing changes. */
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 0);
	assert_int_equal(check_queue(&parts), 5);
	path_of(p, sizeof(p), "spool/queue");
	assert_int_equal(count_dir(p), 10);
	path_of(p, sizeof(p), "spool/quarantine");
	assert_int_equal(count_dir(p), 3);
	assert_queue_has("q1", "one", "u@x");
	assert_queue_has("q2", "two", "u@x");
	assert_queue_has("q5", "five", "other@remote.example");
	assert_queue_has("q6", "", "other@remote.example");
	delivered_path(p, sizeof(p), "mail/a", 100, "q2");
	assert_true(exists(p));
	path_of(p, sizeof(p), "spool/77");
	assert_false(exists(p));
}

/*
 * Recovery itself interrupted at each of its calls (one failure, or a
 * crash: that call and all after it fail), then run again: the end state
 * is the same as after an undisturbed recovery.
 */
static void
test_recover_queue_faults(void **state)
{
	struct storefs_ops saved = storefs;
	char a[256];
	int calls;

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	plant_queue_cases(a);
	storefs = fi_ops;
	fi_at = 0;
	fi_calls = 0;
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 2);
	calls = fi_calls;
	storefs = saved;
	check_queue_cases(a);
	assert_true(calls > 20);
	for (int crash = 0; crash < 2; crash++) {
		for (int at = 1; at <= calls; at++) {
			teardown(NULL);
			setup(NULL);
			path_of(a, sizeof(a), "mail/a");
			plant_queue_cases(a);
			storefs = fi_ops;
			fi_calls = 0;
			fi_crash = crash;
			fi_err = at % 2 ? ENOSPC : EIO;
			fi_at = at;
			spool_recover(spool_dir, NULL, "mx/host:1");
			if (getenv("FI_VERBOSE"))
				printf("crash=%d at=%d trace=%s\n", crash, at,
				       fi_trace);
			fi_at = 0;
			storefs = saved;
			assert_true(
			    spool_recover(spool_dir, NULL, "mx/host:1") >= 0);
			check_queue_cases(a);
		}
	}
}

static void
remote_sweep(enum sync_method sync, bool crash)
{
	fi_rcpts = fi_mixed;
	fault_sweep(sync, crash);
	fi_rcpts = fi_local;
}

static void
test_fault_remote_syncfs(void **state)
{
	(void)state;
	remote_sweep(SYNC_SYNCFS, false);
}

static void
test_fault_remote_fsync(void **state)
{
	(void)state;
	remote_sweep(SYNC_FSYNC, false);
}

static void
test_crash_remote_syncfs(void **state)
{
	(void)state;
	remote_sweep(SYNC_SYNCFS, true);
}

static void
test_crash_remote_fsync(void **state)
{
	(void)state;
	remote_sweep(SYNC_FSYNC, true);
}

/* ---- the journal -------------------------------------------------------- */

/* The recovery tests of the old layout, with the messages in the journal. */
static void
test_recover_deferred_journal(void **state)
{
	plant_journal = true;
	test_recover_deferred(state);
	assert_int_equal(count_dir(spool_dir), 0);
}

static void
test_recover_queue_journal(void **state)
{
	plant_journal = true;
	test_recover_queue(state);
}

static void
test_recover_queue_faults_journal(void **state)
{
	plant_journal = true;
	test_recover_queue_faults(state);
}

/*
 * The record format: CRC-32C check value, the exact bytes of a record, a
 * round trip, and every cut and every single-octet change refused.
 */
static void
test_journal_record(void **state)
{
	static const char env[] = "postern-envelope 1\nid abc\ntime 5\n"
				  "size 7\nsender \nrcpt x /m\nend\n";
	static const char want_done[] = "@done abc 0\n@crc ";
	struct spool_buf b = {0};
	struct spool_jrec r;
	size_t len;

	(void)state;
	assert_true(spool_crc32c(0, "123456789", 9) == 0xe3069283u);
	assert_true(spool_crc32c(spool_crc32c(0, "1234", 4), "56789", 5) ==
		    0xe3069283u);
	assert_int_equal(
	    spool_journal_add(&b, "commit", "abc", env, sizeof(env) - 1), 0);
	len = b.len;
	assert_int_equal(spool_journal_add(&b, "done", "abc", "", 0), 0);
	{
		char head[64];
		int n = snprintf(head, sizeof(head), "@commit abc %zu\n%s",
				 sizeof(env) - 1, "postern-envelope 1\n");

		assert_memory_equal(b.data, head, (size_t)n);
	}
	assert_memory_equal(b.data + len, want_done, sizeof(want_done) - 1);
	assert_int_equal(b.len - len, sizeof(want_done) - 1 + 9);
	assert_int_equal(spool_journal_rec(b.data, b.len, &r), len);
	assert_int_equal(r.kind, SPOOL_REC_COMMIT);
	assert_string_equal(r.id, "abc");
	assert_int_equal(r.len, sizeof(env) - 1);
	assert_memory_equal(r.payload, env, r.len);
	assert_int_equal(spool_journal_rec(b.data + len, b.len - len, &r),
			 b.len - len);
	assert_int_equal(r.kind, SPOOL_REC_DONE);
	for (size_t cut = 0; cut < len; cut++)
		if (spool_journal_rec(b.data, cut, &r) != 0)
			fail_msg("accepted a cut at %zu", cut);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b.data[i] ^= (char)(1 << bit);
			if (spool_journal_rec(b.data, len, &r) != 0)
				fail_msg("accepted a change at %zu", i);
			b.data[i] ^= (char)(1 << bit);
		}
	}
	/* The writer refuses what the reader would: an id too long, a
	   payload over SPOOL_ENV_MAX. */
	assert_int_equal(spool_journal_add(&b, "done",
					   "012345678901234567890123456789"
					   "0123456789012345678901234567890",
					   "", 0),
			 -1);
	assert_int_equal(
	    spool_journal_add(&b, "commit", "abc", "", SPOOL_ENV_MAX + 1), -1);
	spool_buf_free(&b);
}

/* Heads that must not parse even with a right CRC. */
static void
test_journal_bad_heads(void **state)
{
	static const char *const heads[] = {
	    "@commit abc 01\n",	     "@commit abc -1\n", "@commit a-c 1\n",
	    "@commit  1\n",	     "@done abc 1\n",	 "@Done abc 0\n",
	    "@commit abc\n",	     "commit abc 1\n",	 "@commit abc 1 \n",
	    "@commit abc 4194305\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		char buf[128], tail[SPOOL_REC_TAIL_LEN + 1];
		size_t hl = strlen(heads[i]);
		struct spool_jrec r;
		uint32_t crc;

		memcpy(buf, heads[i], hl);
		buf[hl] = 'x';
		crc = spool_crc32c(0, buf, hl + 1);
		snprintf(tail, sizeof(tail), "@crc %08" PRIx32 "\n", crc);
		memcpy(buf + hl + 1, tail, SPOOL_REC_TAIL_LEN);
		if (spool_journal_rec(buf, hl + 1 + SPOOL_REC_TAIL_LEN, &r) !=
		    0)
			fail_msg("head %zu accepted", i);
	}
}

/* A journal with commit records for a, b, c and a done record for b. */
static void
journal_abc(struct spool_buf *b, size_t off[4])
{
	static const char *const ids[] = {"a", "b", "c"};

	b->len = 0;
	assert_int_equal(
	    spool_buf_add(b, SPOOL_JOURNAL_MAGIC, strlen(SPOOL_JOURNAL_MAGIC)),
	    0);
	for (int i = 0; i < 3; i++) {
		off[i] = b->len;
		assert_int_equal(
		    spool_journal_add(b, "commit", ids[i], "payload\n", 8), 0);
	}
	off[3] = b->len;
	assert_int_equal(spool_journal_add(b, "done", "b", "", 0), 0);
}

/*
 * Reading a journal cut at every offset: the records before the cut are
 * used, the cut one is a torn tail (never corruption); an octet changed
 * in a record that has intact records after it is corruption, and those
 * records are still used; a magic line of another version is refused.
 */
static void
test_journal_scan(void **state)
{
	struct spool_buf b = {0};
	struct spool_jscan js;
	const char *error;
	size_t off[4];

	(void)state;
	journal_abc(&b, off);
	assert_int_equal(spool_journal_scan(b.data, b.len, &js, &error), 0);
	assert_int_equal(js.n_recs, 3);
	assert_int_equal(js.n_live, 2);
	assert_false(js.torn || js.corrupt);
	assert_true(js.recs[0].live && !js.recs[1].live && js.recs[2].live);
	spool_jscan_free(&js);
	for (size_t cut = 0; cut < b.len; cut++) {
		/* the commit records that end before the cut */
		size_t n_recs =
		    (size_t)(cut >= off[1]) + (cut >= off[2]) + (cut >= off[3]);

		assert_int_equal(spool_journal_scan(b.data, cut, &js, &error),
				 0);
		if (js.corrupt || js.n_recs != n_recs ||
		    js.torn != (cut != 0 && cut != off[0] && cut != off[1] &&
				cut != off[2] && cut != off[3]))
			fail_msg("cut at %zu: recs=%zu torn=%d corrupt=%d", cut,
				 js.n_recs, js.torn, js.corrupt);
		/* the done record of b was cut away: b is live */
		assert_int_equal(js.n_live, n_recs);
		spool_jscan_free(&js);
	}
	/* Damage in b: a and c are still read, b is lost, it is corrupt. */
	for (size_t i = off[1]; i < off[2]; i++) {
		b.data[i] ^= 0x20;
		assert_int_equal(spool_journal_scan(b.data, b.len, &js, &error),
				 0);
		if (!js.corrupt || js.bad_off != off[1] || js.n_live != 2)
			fail_msg("damage at %zu (%zu..%zu): corrupt=%d bad=%zu "
				 "live=%zu",
				 i, off[1], off[2], js.corrupt,
				 (size_t)js.bad_off, js.n_live);
		assert_string_equal(js.recs[0].id, "a");
		assert_string_equal(js.recs[1].id, "c");
		spool_jscan_free(&js);
		b.data[i] ^= 0x20;
	}
	/* The same commit twice is corrupt; the first one counts. */
	assert_int_equal(spool_journal_add(&b, "commit", "a", "x", 1), 0);
	assert_int_equal(spool_journal_scan(b.data, b.len, &js, &error), 0);
	assert_true(js.corrupt);
	assert_int_equal(js.n_live, 2);
	spool_jscan_free(&js);
	/* Another version; a cut magic line is just torn. */
	memcpy(b.data, "postern-journal 2\n", 18);
	assert_int_equal(spool_journal_scan(b.data, b.len, &js, &error), -1);
	assert_string_equal(error, "unknown journal version");
	assert_int_equal(spool_journal_scan("postern-jour", 12, &js, &error),
			 0);
	assert_true(js.torn && !js.corrupt && js.n_recs == 0);
	spool_jscan_free(&js);
	spool_buf_free(&b);
}

/* Plant messages j1 (done), j2 and j3 (not done) and j4 (uncommitted). */
static void
plant_jmsgs(const char *a, size_t *end_j2)
{
	const char *const only_a[] = {a};
	struct stat st;
	char p[512];

	plant_journal = true;
	plant("9", "j1", 100, "one", NULL, only_a, 1);
	jappend("9", "done", "j1", "", 0);
	plant("9", "j2", 100, "two", NULL, only_a, 1);
	path_of(p, sizeof(p), "spool/9/journal");
	assert_int_equal(stat(p, &st), 0);
	*end_j2 = (size_t)st.st_size;
	plant("9", "j3", 100, "three", NULL, only_a, 1);
	path_of(p, sizeof(p), "spool/9/tmp/j4");
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
}

static bool
delivered(const char *md, const char *id)
{
	char p[512];

	delivered_path(p, sizeof(p), md, 100, id);
	return exists(p);
}

/*
 * Recovery of a journal torn at every offset of its last record (as a
 * crash during an append leaves it): the messages before it are finished
 * exactly once, the torn one is not delivered and its data is removed
 * like any uncommitted file; nothing is quarantined; the area goes.
 */
static void
test_recover_journal_torn(void **state)
{
	char a[256], p[512];
	size_t end_j2, size;
	struct stat st;

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	plant_jmsgs(a, &end_j2);
	path_of(p, sizeof(p), "spool/9/journal");
	assert_int_equal(stat(p, &st), 0);
	size = (size_t)st.st_size;
	for (size_t cut = end_j2; cut < size; cut++) {
		if (cut > end_j2) {
			teardown(NULL);
			setup(NULL);
			path_of(a, sizeof(a), "mail/a");
			plant_jmsgs(a, &end_j2);
			path_of(p, sizeof(p), "spool/9/journal");
		}
		assert_int_equal(truncate(p, (off_t)cut), 0);
		assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"),
				 1);
		if (delivered("mail/a", "j1") || !delivered("mail/a", "j2") ||
		    delivered("mail/a", "j3"))
			fail_msg("cut at %zu: wrong deliveries", cut);
		path_of(p, sizeof(p), "mail/a/new");
		assert_int_equal(count_dir(p), 1);
		path_of(p, sizeof(p), "spool");
		assert_int_equal(count_dir(p), 0); /* the area is gone */
	}
}

/*
 * Committed and not done, with a queue entry to make, delivered exactly
 * once; done ones left alone; a record without data and not delivered,
 * and one whose envelope is corrupt (its CRC right), quarantined as files
 * written from the record; running again changes nothing.
 */
static void
test_recover_journal(void **state)
{
	char a[256], b[256], p[512];
	const char *const both[] = {a, b}, *const only_a[] = {a};
	const char *const remote[] = {NULL};
	size_t end_j2, parts;

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	path_of(b, sizeof(b), "mail/b");
	plant_jmsgs(a, &end_j2);
	plant("9", "j5", 100, "five", NULL, both, 2);
	plant("9", "j6", 100, NULL, NULL, only_a, 1); /* data lost */
	plant("9", "j7", 100, "seven", "postern-envelope 1\nid j7\n", only_a,
	      1);
	plant("9", "j8", 100, "eight", NULL, remote, 1);
	/* j3 was delivered before the crash, and read (moved to cur/). */
	assert_int_equal(maildir_create(a), 0);
	path_of(p, sizeof(p), "spool/9/tmp/j3");
	{
		char q[512];

		path_of(q, sizeof(q),
			"mail/a/cur/100.j3.mx\\057host\\0721:2,S");
		assert_int_equal(link(p, q), 0);
	}
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 3);
	assert_false(delivered("mail/a", "j1"));
	assert_true(delivered("mail/a", "j2"));
	assert_false(delivered("mail/a", "j3")); /* in cur/ */
	assert_true(delivered("mail/a", "j5"));
	assert_true(delivered("mail/b", "j5"));
	assert_queue_has("j8", "eight", "u@x");
	assert_int_equal(check_queue(&parts), 1);
	assert_int_equal(parts, 0);
	path_of(p, sizeof(p), "spool/quarantine");
	assert_int_equal(count_dir(p), 3); /* j6 env, j7 env and data */
	path_of(p, sizeof(p), "spool/quarantine/9.j7.env.0");
	assert_file_is(p, "postern-envelope 1\nid j7\n");
	path_of(p, sizeof(p), "spool/quarantine/9.j7.data.0");
	assert_file_is(p, "seven");
	path_of(p, sizeof(p), "spool/9");
	assert_false(exists(p));
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 0);
	path_of(p, sizeof(p), "mail/a/new");
	assert_int_equal(count_dir(p), 2);
	path_of(p, sizeof(p), "spool/quarantine");
	assert_int_equal(count_dir(p), 3);
}

/*
 * A journal damaged in the middle: a copy goes to quarantine, the intact
 * records after the damage are still finished, the data file nothing
 * explains any more is quarantined rather than removed, and the next
 * recovery has nothing left to do (no loop). A journal of an unknown
 * version is left alone, and so is its area.
 */
static void
test_recover_journal_damaged(void **state)
{
	char a[256], p[512], q[512];
	size_t end_j2;
	int fd;

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	plant_jmsgs(a, &end_j2);
	path_of(p, sizeof(p), "spool/9/journal");
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, (off_t)end_j2 - 20), 1); /* j2 */
	close(fd);
	/* An emptied data file kept for reuse: removed, never quarantined. */
	path_of(q, sizeof(q), "spool/9/tmp/.pool7");
	assert_int_equal(close(open(q, O_WRONLY | O_CREAT, 0600)), 0);
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 1);
	assert_false(exists(q));
	assert_false(delivered("mail/a", "j2"));
	assert_true(delivered("mail/a", "j3"));
	path_of(q, sizeof(q), "spool/quarantine/9.journal.0");
	assert_true(exists(q));
	path_of(q, sizeof(q), "spool/quarantine/9.j2.data.0");
	assert_file_is(q, "two");
	path_of(q, sizeof(q), "spool/quarantine/9.j4.data.0");
	assert_true(exists(q)); /* uncommitted, but who can tell now */
	path_of(q, sizeof(q), "spool/quarantine");
	assert_int_equal(count_dir(q), 3);
	path_of(q, sizeof(q), "spool/9");
	assert_false(exists(q));
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 0);
	path_of(q, sizeof(q), "spool/quarantine");
	assert_int_equal(count_dir(q), 3);

	/* Another version: untouched. */
	plant_jmsgs(a, &end_j2);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "postern-journal 9", 17, 0), 17);
	close(fd);
	assert_int_equal(spool_recover(spool_dir, NULL, "mx/host:1"), 0);
	path_of(q, sizeof(q), "spool/9/tmp");
	assert_int_equal(count_dir(q), 4);
	assert_true(exists(p));
	path_of(q, sizeof(q), "spool/quarantine");
	assert_int_equal(count_dir(q), 3);
}

/*
 * A message whose Maildir refuses it is kept in a rewritten journal with
 * only its record; the others' records and data are gone.
 */
static void
test_recover_journal_keep(void **state)
{
	char a[256], b[256], t[256], p[512];
	const char *const only_b[] = {b};
	size_t end_j2;

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	path_of(b, sizeof(b), "mail/b");
	path_of(t, sizeof(t), "target");
	plant_jmsgs(a, &end_j2);
	plant("9", "j9", 100, "nine", NULL, only_b, 1);
	assert_int_equal(maildir_create(b), 0);
	assert_int_equal(mkdir(t, 0700), 0);
	path_of(p, sizeof(p), "mail/b/new");
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(symlink(t, p), 0);
	assert_int_equal(spool_recover(spool_dir, NULL, "h"), 2);
	assert_int_equal(journal_live("9"), 1);
	assert_true(journal_has("9", "j9"));
	path_of(p, sizeof(p), "spool/9/tmp");
	assert_int_equal(count_dir(p), 1);
	path_of(p, sizeof(p), "spool/9/journal.new");
	assert_false(exists(p));
	/* Repaired: finished, and the area goes. */
	path_of(p, sizeof(p), "mail/b/new");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(spool_recover(spool_dir, NULL, "h"), 1);
	assert_int_equal(count_dir(p), 1);
	path_of(p, sizeof(p), "spool/9");
	assert_false(exists(p));
}

/* spool_open(): a journal with unfinished messages is recovery's; a
   clean one (every record done) is taken over and emptied. */
static void
test_open_journal(void **state)
{
	char a[256], p[512];
	struct spool *sp;
	const char *error = NULL;
	struct stat st;
	size_t end_j2;

	(void)state;
	path_of(a, sizeof(a), "mail/a");
	plant_jmsgs(a, &end_j2);
	assert_int_equal(
	    spool_open(spool_dir, "9", "h", SYNC_SYNCFS, &sp, &error), -1);
	assert_string_equal(error, "the spool area holds unrecovered messages");
	path_of(p, sizeof(p), "spool/9/journal");
	assert_int_equal(truncate(p, (off_t)end_j2), 0);
	jappend("9", "done", "j2", "", 0);
	assert_int_equal(
	    spool_open(spool_dir, "9", "h", SYNC_SYNCFS, &sp, &error), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 0);
	spool_close(&sp);
}

/* Fail the first append of done records (a write to the journal that
   starts with "@done"), once. */
static int jdone_failed;

static ssize_t
jdone_write(int fd, const void *buf, size_t len)
{
	if (__atomic_load_n(&jdone_failed, __ATOMIC_SEQ_CST) == 0 && len > 5 &&
	    memcmp(buf, "@done", 5) == 0) {
		__atomic_store_n(&jdone_failed, 1, __ATOMIC_SEQ_CST);
		errno = EIO;
		return -1;
	}
	return write(fd, buf, len);
}

static void
commit_one(struct spool *sp, struct run *run, struct spool_rcpt *r)
{
	int want = run->n_done + 1;

	spool_msg_commit(begin_write(sp, "Subject: t"), "s@x", r, 1, record_cb,
			 run);
	wait_done(sp, run, want);
	assert_int_equal(run->result[want - 1], 0);
	assert_area_empty();
}

/*
 * The journal is reused, never replaced: appended to, and truncated (same
 * inode) once it is over spool_journal_max with no record pending - but
 * not while a done record is owed (its append failed; it is retried with
 * the next batch). (Settings change only while no spool runs.)
 */
static void
test_journal_truncate(void **state)
{
	struct storefs_ops saved = storefs;
	size_t saved_max = spool_journal_max;
	struct run run = {0};
	char md[256], p[512];
	struct spool_rcpt r = {"u@x", md};
	struct stat st0, st;
	struct spool *sp;
	bool shrank = false;
	off_t last = 0;

	(void)state;
	path_of(md, sizeof(md), "mail/Maildir");
	path_of(p, sizeof(p), "spool/1234/journal");
	spool_journal_max = 1000;
	sp = open_spool(SYNC_SYNCFS);
	assert_int_equal(stat(p, &st0), 0);
	assert_int_equal(st0.st_size, 0);
	for (int i = 0; i < 12; i++) {
		commit_one(sp, &run, &r);
		assert_int_equal(stat(p, &st), 0);
		assert_true(st.st_ino == st0.st_ino);
		assert_true(st.st_size <= 1000 + 400);
		shrank = shrank || st.st_size < last;
		last = st.st_size;
	}
	assert_true(shrank);
	spool_close(&sp);
	/* A done record owed: no truncation, whatever the size. */
	spool_journal_max = 0;
	jdone_failed = 0;
	storefs.write = jdone_write;
	sp = open_spool(SYNC_SYNCFS);
	spool_msg_commit(begin_write(sp, "Subject: t"), "s@x", &r, 1, record_cb,
			 &run);
	wait_done(sp, &run, 13);
	for (int k = 0; k < 5000 && journal_live_now("1234") != 1; k++)
		usleep(2000);
	assert_int_equal(__atomic_load_n(&jdone_failed, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(journal_live("1234"), 1);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size > 0 && st.st_ino == st0.st_ino);
	/* The next batch appends it, and the journal is emptied. */
	spool_msg_commit(begin_write(sp, "Subject: t"), "s@x", &r, 1, record_cb,
			 &run);
	wait_done(sp, &run, 14);
	for (int k = 0; k < 5000; k++) { /* 10 s: syncfs is slow under load */
		assert_int_equal(stat(p, &st), 0);
		if (st.st_size == 0)
			break;
		usleep(2000);
	}
	assert_int_equal(st.st_size, 0);
	assert_true(st.st_ino == st0.st_ino);
	assert_area_empty();
	spool_close(&sp);
	storefs = saved;
	spool_journal_max = saved_max;
	path_of(p, sizeof(p), "mail/Maildir/new");
	assert_int_equal(count_dir(p), 14);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_env_round_trip),
	    cmocka_unit_test(test_env_format_refuses),
	    cmocka_unit_test(test_env_parse_table),
	    cmocka_unit_test(test_env_v2_round_trip),
	    cmocka_unit_test(test_env_v2_format),
	    cmocka_unit_test(test_env_v3_hold),
	    cmocka_unit_test(test_env_v2_parse_table),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_round_trip_syncfs),
	    T(test_round_trip_fsync),
	    T(test_batch_100),
	    T(test_commit_refused),
	    T(test_open_refused),
	    T(test_remote_syncfs),
	    T(test_remote_fsync),
	    T(test_remote_exdev),
	    T(test_recover),
	    T(test_recover_deferred),
	    T(test_long_hostname),
	    T(test_recover_partial_copy),
	    T(test_data_reuse),
	    T(test_recover_queue),
	    T(test_recover_queue_faults),
	    T(test_fault_syncfs),
	    T(test_fault_fsync),
	    T(test_crash_syncfs),
	    T(test_crash_fsync),
	    T(test_fault_remote_syncfs),
	    T(test_fault_remote_fsync),
	    T(test_crash_remote_syncfs),
	    T(test_crash_remote_fsync),
	    cmocka_unit_test(test_journal_record),
	    cmocka_unit_test(test_journal_bad_heads),
	    cmocka_unit_test(test_journal_scan),
	    T(test_recover_journal),
	    T(test_recover_journal_torn),
	    T(test_recover_journal_damaged),
	    T(test_recover_journal_keep),
	    T(test_recover_deferred_journal),
	    T(test_recover_queue_journal),
	    T(test_recover_queue_faults_journal),
	    T(test_open_journal),
	    T(test_journal_truncate),
#undef T
	};

	log_init("test_spool", true,
		 getenv("SPOOL_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR + 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
