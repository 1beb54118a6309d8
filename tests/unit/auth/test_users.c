/*
 * test_users.c - the users file (Dovecot passwd-file), password schemes,
 * aliases and the dummy verification (THREATS A-03). `postern user` is
 * tests/unit/cli/test_user_cmd.c.
 */
#include <crypt.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth/users.h"
#include "users_harness.h"

/* --- helpers ------------------------------------------------------- */

/* Load `text` from a file; errors captured into *errs_r (malloc'd). */
static int
load_text(const char *name, const char *text, size_t len,
	  struct users **users_r, char **errs_r)
{
	char path[256];
	size_t elen = 0;
	FILE *errs;
	int ret;

	path_of(path, sizeof(path), name);
	write_bytes(path, text, len);
	*errs_r = NULL;
	errs = open_memstream(errs_r, &elen);
	assert_non_null(errs);
	ret = users_load(path, users_r, errs);
	fclose(errs);
	return ret;
}

static int
group_setup(void **state)
{
	(void)state;
	return users_harness_setup("test_users");
}

static int
group_teardown(void **state)
{
	(void)state;
	return users_harness_teardown();
}

/* --- verification -------------------------------------------------- */

static void
test_verify_schemes(void **state)
{
	const char *hashes[] = {h_argon,  h_bcrypt,   h_bcrypt_y,
				h_sha512, h_yescrypt, h_crypt6};

	(void)state;
	assert_true(strncmp(h_argon,
			    "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$",
			    41) == 0);
	assert_true(strncmp(h_bcrypt, "{BLF-CRYPT}$2b$04$", 18) == 0);
	assert_true(strncmp(h_yescrypt, "{CRYPT}$y$", 10) == 0);
	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		const char *h = hashes[i];

		print_message("scheme %zu: %.24s...\n", i, h);
		assert_int_equal(users_verify(h, "password1", 9), 1);
		assert_int_equal(users_verify(h, "password2", 9), 0);
		assert_int_equal(users_verify(h, "password", 8), 0);
		assert_int_equal(users_verify(h, "password1x", 10), 0);
		assert_int_equal(users_verify(h, "", 0), 0);
		/* a NUL never matches, even where crypt would cut there */
		assert_int_equal(users_verify(h, "password1\0x", 11), 0);
	}
}

static void
test_verify_bad_hashes(void **state)
{
	static const char *const bad[] = {
	    "{PLAIN}password1",
	    "{MD5-CRYPT}$1$abcdefgh$aaaaaaaaaaaaaaaaaaaaaa",
	    ("{YESCRYPT}$y$j9T$aaaaaaaaaaaaaaaaaaaaaa$"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	    "password1",
	    "",
	    "{ARGON2ID}garbage",
	    "{ARGON2ID}$argon2i$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
	    "{SHA512-CRYPT}garbage",
	    "{BLF-CRYPT}*0",
	};
	char lower[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("bad hash %zu: %s\n", i, bad[i]);
		assert_int_equal(users_verify(bad[i], "password1", 9), -1);
	}
	assert_int_equal(users_verify(NULL, "x", 1), -1);
	/* scheme names compare case-insensitively, as in Dovecot */
	assert_true(strlen(h_bcrypt) < sizeof(lower));
	strncpy(lower, h_bcrypt, sizeof(lower) - 1);
	lower[sizeof(lower) - 1] = '\0';
	memcpy(lower, "{blf-crypt}", 11);
	assert_int_equal(users_verify(lower, "password1", 9), 1);
}

static void
test_hash(void **state)
{
	char *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(users_hash("another secret", 14, &a), 0);
	assert_int_equal(users_hash("another secret", 14, &b), 0);
	assert_string_not_equal(a, b); /* fresh salt each time */
	assert_int_equal(users_verify(a, "another secret", 14), 1);
	assert_int_equal(users_verify(b, "another secret", 13), 0);
	free(a);
	free(b);
	assert_int_equal(users_hash("nul\0inside", 10, &a), -1);
	assert_null(a);
}

/* --- loading ------------------------------------------------------- */

static void
test_load_good(void **state)
{
	char *text =
	    expand("# postern users, Dovecot passwd-file\n"
		   "\n"
		   "alice@example.test:%A\n"
		   "   \n"
		   "Bob@Example.TEST:%B:1000:1000:Bob B:/home/bob:/bin/false:"
		   "userdb_mail=maildir:~/Maildir "
		   "userdb_postern_aliases=Info@example.test,sales@example.test"
		   " nodelay=yes\n"
		   "carol@example.test:%S\r\n"
		   "#dave@example.test:{PLAIN}x\n"
		   "dave@mail.example.test:%Y::::::userdb_postern_aliases=\n"
		   "erin_x+tag=1-a.b@x-1.example.test:%A");
	struct users *us = NULL;
	const struct user *u;
	char *errs;

	(void)state;
	assert_int_equal(load_text("good", text, strlen(text), &us, &errs), 0);
	assert_string_equal(errs, "");
	assert_int_equal(users_count(us), 5);

	u = users_get(us, 0);
	assert_string_equal(u->name, "alice@example.test");
	assert_string_equal(u->hash, h_argon);
	assert_int_equal(u->line, 3);
	assert_int_equal(u->n_aliases, 0);

	u = users_get(us, 1);
	assert_string_equal(u->name, "bob@example.test");
	assert_string_equal(u->hash, h_bcrypt);
	assert_int_equal(u->line, 5);
	assert_int_equal(u->n_aliases, 2);
	assert_string_equal(u->aliases[0], "info@example.test");
	assert_string_equal(u->aliases[1], "sales@example.test");

	u = users_get(us, 2);
	assert_string_equal(u->name, "carol@example.test");
	assert_string_equal(u->hash, h_sha512); /* CR stripped */
	assert_int_equal(u->line, 6);

	u = users_get(us, 3);
	assert_string_equal(u->name, "dave@mail.example.test");
	assert_int_equal(u->n_aliases, 0);
	assert_int_equal(u->line, 8);
	u = users_get(us, 4);
	assert_string_equal(u->name, "erin_x+tag=1-a.b@x-1.example.test");
	assert_int_equal(u->line, 9);
	assert_null(users_get(us, 5));

	for (size_t i = 0; i < users_count(us); i++) {
		u = users_get(us, i);
		assert_int_equal(users_verify(u->hash, "password1", 9), 1);
		assert_int_equal(users_verify(u->hash, "Password1", 9), 0);
	}
	users_free(&us);
	assert_null(us);
	users_free(&us); /* twice is harmless */
	free(errs);
	free(text);
}

/* The send limits of docs/sendlimit.md as extra fields: parsed, and a
   bad or repeated one is an error naming the line. */
static void
test_send_limit_fields(void **state)
{
	char *text = expand(
	    "a@example.test:%A::::::userdb_postern_send_limit_day=5000 "
	    "userdb_postern_aliases=x@example.test "
	    "userdb_postern_send_limit_hour=0 "
	    "userdb_postern_new_recipients_day=10000000\n"
	    "b@example.test:%A\n");
	static const char *const bad[] = {
	    "userdb_postern_send_limit_day=",
	    "userdb_postern_send_limit_day=-1",
	    "userdb_postern_send_limit_day=10000001",
	    "userdb_postern_send_limit_day=012",
	    "userdb_postern_send_limit_hour=1x",
	    "userdb_postern_new_recipients_day=999999999999",
	    "userdb_postern_send_limit_hour=5 userdb_postern_send_limit_hour=6",
	};
	struct users *us = NULL;
	const struct user *u;
	char *errs, line[300];

	(void)state;
	assert_int_equal(load_text("lim", text, strlen(text), &us, &errs), 0);
	u = users_find(us, "a@example.test");
	assert_int_equal(u->send_limit[USERS_SEND_DAY], 5000);
	assert_int_equal(u->send_limit[USERS_SEND_HOUR], 0);
	assert_int_equal(u->send_limit[USERS_SEND_NEW_DAY], 10000000);
	assert_int_equal(u->n_aliases, 1);
	u = users_find(us, "b@example.test");
	for (int k = 0; k < USERS_SEND_LIMITS; k++)
		assert_int_equal(u->send_limit[k], -1);
	users_free(&us);
	free(errs);
	free(text);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "ok@example.test:%%A\n"
			 "c@example.test:%%A::::::%s\n", bad[i]);
		text = expand(line);
		assert_int_equal(
		    load_text("lim", text, strlen(text), &us, &errs), -1);
		assert_non_null(strstr(errs, "lim:2: "));
		assert_non_null(strstr(errs, "userdb_postern_"));
		free(errs);
		free(text);
	}
}

static void
test_find_and_send_as(void **state)
{
	char *text = expand("alice@example.test:%A::::::"
			    "userdb_postern_aliases=info@example.test\n"
			    "bob@example.test:%A::::::"
			    "userdb_postern_aliases=sales@example.test\n");
	char longname[400];
	struct users *us = NULL;
	const struct user *a, *b;
	char *errs;

	(void)state;
	assert_int_equal(load_text("find", text, strlen(text), &us, &errs), 0);
	a = users_find(us, "ALICE@Example.Test");
	b = users_find(us, "bob@example.test");
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->name, "alice@example.test");
	assert_null(users_find(us, "info@example.test")); /* alias: no login */
	assert_null(users_find(us, "nobody@example.test"));
	assert_null(users_find(us, ""));
	assert_null(users_find(us, NULL));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_null(users_find(us, longname));

	assert_true(users_may_send_as(a, "alice@example.test"));
	assert_true(users_may_send_as(a, "Alice@EXAMPLE.test"));
	assert_true(users_may_send_as(a, "INFO@example.test"));
	assert_false(users_may_send_as(a, "sales@example.test"));
	assert_false(users_may_send_as(a, "bob@example.test"));
	assert_false(users_may_send_as(a, "alice@example.test."));
	assert_false(users_may_send_as(a, "alice+x@example.test"));
	assert_false(users_may_send_as(a, ""));
	assert_false(users_may_send_as(a, NULL));
	assert_false(users_may_send_as(NULL, "alice@example.test"));
	assert_true(users_may_send_as(b, "sales@example.test"));

	assert_int_equal(users_count(NULL), 0);
	assert_null(users_find(NULL, "alice@example.test"));
	users_free(&us);
	free(errs);
	free(text);
}

#define LOCAL64                                                                \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LOCAL65 LOCAL64 "a"
#define LABEL63                                                                \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define LABEL64 LABEL63 "b"
#define NUL_LINE "alice@example.test:{PLAIN}a\0b\n"

struct err_case {
	const char *text; /* %A %B %S %Y expand to hashes */
	size_t len;	  /* 0: strlen after expansion */
	const char *want; /* error lines without the "path:" prefix */
};

static const struct err_case err_cases[] = {
    {"alice@example.test\n", 0,
     "1: missing password (expected user:{SCHEME}hash)\n"},
    {"alice@example.test:\n", 0,
     "1: missing password (expected user:{SCHEME}hash)\n"},
    {"alice@example.test::1000:1000\n", 0,
     "1: missing password (expected user:{SCHEME}hash)\n"},
    {"alice@example.test:secret\n", 0, "1: password has no {SCHEME} prefix\n"},
    {"alice@example.test:{MD5}$1$abc$def\n", 0,
     "1: unknown password scheme {MD5}\n"},
    {"alice@example.test:{ARGON2I}$argon2i$v=19$m=4096,t=3,p=1$x$y\n", 0,
     "1: unknown password scheme {ARGON2I}\n"},
    {"alice@example.test:{SHA256-CRYPT}$5$abc$def\n", 0,
     "1: unknown password scheme {SHA256-CRYPT}\n"},
    {"alice@example.test:{YESCRYPT}$y$j9T$a$b\n", 0,
     "1: unknown password scheme {YESCRYPT} (Dovecot stores yescrypt as "
     "{CRYPT}$y$...)\n"},
    {"alice@example.test:{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$abc\n", 0,
     "1: malformed ARGON2ID hash\n"},
    {"alice@example.test:{ARGON2ID}%B\n", 0, "1: malformed ARGON2ID hash\n"},
    {"alice@example.test:{BLF-CRYPT}$2b$04$short\n", 0,
     "1: malformed BLF-CRYPT hash (expected $2b$, $2y$ or $2a$ bcrypt)\n"},
    {"alice@example.test:{BLF-CRYPT}$2x$04$"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     0, "1: malformed BLF-CRYPT hash (expected $2b$, $2y$ or $2a$ bcrypt)\n"},
    {"alice@example.test:{SHA512-CRYPT}$5$abc$def\n", 0,
     "1: malformed SHA512-CRYPT hash (expected $6$)\n"},
    {"alice@example.test:{SHA512-CRYPT}$6$salt$tooshort\n", 0,
     "1: malformed SHA512-CRYPT hash (expected $6$)\n"},
    {"alice@example.test:{CRYPT}$1$abcdefgh$aaaaaaaaaaaaaaaaaaaaaa\n", 0,
     "1: unsupported CRYPT hash (only yescrypt $y$, bcrypt $2b$ and "
     "sha512crypt $6$)\n"},
    {"alice@example.test:{CRYPT}vpvKh.SaNbR6s\n", 0,
     "1: unsupported CRYPT hash (only yescrypt $y$, bcrypt $2b$ and "
     "sha512crypt $6$)\n"},
    {"alice:%A\n", 0, "1: invalid user address 'alice'\n"},
    {"@example.test:%A\n", 0, "1: invalid user address '@example.test'\n"},
    {"alice@:%A\n", 0, "1: invalid user address 'alice@'\n"},
    {".alice@example.test:%A\n", 0,
     "1: invalid user address '.alice@example.test'\n"},
    {"alice.@example.test:%A\n", 0,
     "1: invalid user address 'alice.@example.test'\n"},
    {"al..ice@example.test:%A\n", 0,
     "1: invalid user address 'al..ice@example.test'\n"},
    {"al ice@example.test:%A\n", 0,
     "1: invalid user address 'al ice@example.test'\n"},
    {"al%ice@example.test:%A\n", 0,
     "1: invalid user address 'al%ice@example.test'\n"},
    {"a!b@example.test:%A\n", 0,
     "1: invalid user address 'a!b@example.test'\n"},
    {"a@b@example.test:%A\n", 0,
     "1: invalid user address 'a@b@example.test'\n"},
    {"\"a\"@example.test:%A\n", 0,
     "1: invalid user address '\"a\"@example.test'\n"},
    {"alice@-example.test:%A\n", 0,
     "1: invalid user address 'alice@-example.test'\n"},
    {"alice@example-.test:%A\n", 0,
     "1: invalid user address 'alice@example-.test'\n"},
    {"alice@example..test:%A\n", 0,
     "1: invalid user address 'alice@example..test'\n"},
    {"alice@example.test.:%A\n", 0,
     "1: invalid user address 'alice@example.test.'\n"},
    {"alice@[127.0.0.1]:%A\n", 0,
     "1: invalid user address 'alice@[127.0.0.1]'\n"},
    {"alice@ex_ample.test:%A\n", 0,
     "1: invalid user address 'alice@ex_ample.test'\n"},
    {"\xc3\xa9@example.test:%A\n", 0,
     "1: invalid user address '\xc3\xa9@example.test'\n"},
    {LOCAL65 "@x.test:%A\n", 0,
     "1: invalid user address '" LOCAL65 "@x.test'\n"},
    {"a@" LABEL64 ".test:%A\n", 0,
     "1: invalid user address 'a@" LABEL64 ".test'\n"},
    /* the longest parts that are still fine do not make an error */
    {LOCAL64 "@" LABEL63 ".test\n", 0,
     "1: missing password (expected user:{SCHEME}hash)\n"},
    {":%A\n", 0, "1: invalid user address ''\n"},
    {"alice@example.test:%A\x01\n", 0, "1: control character 0x01\n"},
    {"alice@example.test:%A\tx\n", 0, "1: control character 0x09\n"},
    {"alice@example.test:%A\x7f\n", 0, "1: control character 0x7f\n"},
    {NUL_LINE, sizeof(NUL_LINE) - 1, "1: NUL byte in line\n"},
    /* aliases */
    {"alice@example.test:%A::::::userdb_postern_aliases=bad\n", 0,
     "1: invalid alias 'bad'\n"},
    {"alice@example.test:%A::::::userdb_postern_aliases=a@x.test,,b@x.test"
     "\n",
     0, "1: empty alias in userdb_postern_aliases\n"},
    {"alice@example.test:%A::::::userdb_postern_aliases=a@x.test,\n", 0,
     "1: empty alias in userdb_postern_aliases\n"},
    {"alice@example.test:%A::::::userdb_postern_aliases=a@x.test "
     "userdb_postern_aliases=b@x.test\n",
     0, "1: userdb_postern_aliases given twice\n"},
    {"alice@example.test:%A::::::userdb_postern_aliases=Alice@Example.test"
     "\n",
     0, "1: alias alice@example.test is the user's own name\n"},
    {"alice@example.test:%A::::::userdb_postern_aliases=a@x.test,A@x.test"
     "\n",
     0, "1: duplicate alias a@x.test\n"},
    /* one address, one owner */
    {"alice@example.test:%A\nALICE@example.test:%B\n", 0,
     "2: duplicate user alice@example.test (first at line 1)\n"},
    {"alice@example.test:%A::::::userdb_postern_aliases=bob@example.test\n"
     "bob@example.test:%S\n",
     0, "1: alias bob@example.test is already a user (line 2)\n"},
    {"bob@example.test:%S\n"
     "alice@example.test:%A::::::userdb_postern_aliases=Bob@example.test\n",
     0, "2: alias bob@example.test is already a user (line 1)\n"},
    {"alice@example.test:%A::::::userdb_postern_aliases=info@example.test\n"
     "# comment\n"
     "bob@example.test:%S::::::userdb_postern_aliases=info@example.test\n",
     0,
     "3: alias info@example.test is already an alias of "
     "alice@example.test (line 1)\n"},
    /* every bad line is reported, in line order */
    {"# users\n"
     "alice@example.test:%A\n"
     "bad line\n"
     "bob@example.test:{MD5}x\n"
     "\n"
     "carol@example.test:%Y::::::userdb_postern_aliases=alice@example.test"
     "\n"
     "alice@example.test:%B\n"
     "dave@example.test:%S\n"
     "erin@example.test",
     0,
     "3: invalid user address 'bad line'\n"
     "4: unknown password scheme {MD5}\n"
     "6: alias alice@example.test is already a user (line 2)\n"
     "7: duplicate user alice@example.test (first at line 2)\n"
     "9: missing password (expected user:{SCHEME}hash)\n"},
};

static void
test_load_errors(void **state)
{
	char path[256];

	(void)state;
	path_of(path, sizeof(path), "bad");
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		char *text = c->len > 0 ? NULL : expand(c->text);
		struct users *us = (struct users *)1;
		char *errs = NULL, *want = NULL;
		size_t wlen = 0;
		FILE *w = open_memstream(&want, &wlen);
		const char *p = c->want;

		/* prefix each expected line with the path */
		assert_non_null(w);
		while (*p != '\0') {
			const char *nl = strchr(p, '\n');

			fprintf(w, "%s:%.*s\n", path, (int)(nl - p), p);
			p = nl + 1;
		}
		fclose(w);
		print_message("case %zu\n", i);
		assert_int_equal(load_text("bad", text ? text : c->text,
					   text ? strlen(text) : c->len, &us,
					   &errs),
				 -1);
		assert_null(us);
		assert_string_equal(errs, want);
		free(errs);
		free(want);
		free(text);
	}
}

static void
test_load_missing(void **state)
{
	char path[256], want[300];
	struct users *us = (struct users *)1;
	char *errs = NULL;
	size_t elen = 0;
	FILE *e = open_memstream(&errs, &elen);

	(void)state;
	path_of(path, sizeof(path), "does-not-exist");
	assert_int_equal(users_load(path, &us, e), -1);
	fclose(e);
	assert_null(us);
	snprintf(want, sizeof(want), "%s: No such file or directory\n", path);
	assert_string_equal(errs, want);
	free(errs);

	/* an empty file is a valid file with no users */
	assert_int_equal(load_text("empty", "", 0, &us, &errs), 0);
	assert_int_equal(users_count(us), 0);
	assert_null(users_find(us, "a@b.test"));
	users_free(&us);
	free(errs);
}

/* --- the dummy ----------------------------------------------------- */

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *
dummy_thread(void *arg)
{
	(void)arg;
	users_verify_dummy("guess", 5);
	return NULL;
}

static void
test_dummy_timing(void **state)
{
	double t0, real = 0, dummy = 0;
	pthread_t th[2];
	const int rounds = 3;

	(void)state;
	/* first use from two threads at once: pthread_once makes one hash */
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, dummy_thread, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < rounds; i++) {
		t0 = now_ms();
		assert_int_equal(users_verify(h_argon, "wrong guess", 11), 0);
		real += now_ms() - t0;
		t0 = now_ms();
		users_verify_dummy("wrong guess", 11);
		dummy += now_ms() - t0;
	}
	users_verify_dummy(NULL, 0);
	{
		/* an over-long guess is clamped, never hashed in full */
		char *big = malloc(5000);

		assert_non_null(big);
		memset(big, 'x', 5000);
		users_verify_dummy(big, 5000);
		assert_int_equal(users_verify(h_argon, big, 5000), 0);
		free(big);
	}
	print_message("argon2id verify (known user): %.1f ms, dummy (unknown "
		      "user): %.1f ms, mean of %d\n",
		      real / rounds, dummy / rounds, rounds);
	assert_true(real > 0 && dummy > 0);
}

/* --- the dummy's model (users_dummy_model, users_dummy_hash) ------- */

/* The cost of a hash as text: the scheme, then what sets the work
   (Argon2id m,t,p; bcrypt variant and cost; sha512crypt rounds; yescrypt
   parameters). Salt and hash are left out. */
static void
cost_of(const char *hash, char *out, size_t size)
{
	const char *h = strchr(hash, '}') + 1, *end;
	unsigned long rounds = 5000;
	int n = 0;

	if (strncmp(h, "$argon2id$", 10) == 0) {
		end = strstr(h, "$m=");
		assert_non_null(end);
		n = snprintf(out, size, "%.*s%.*s", (int)(h - hash), hash,
			     (int)strcspn(end + 1, "$"), end + 1);
	} else if (strncmp(h, "$2", 2) == 0) {
		n = snprintf(out, size, "%.*s%.7s", (int)(h - hash), hash, h);
	} else if (strncmp(h, "$6$", 3) == 0) {
		if (strncmp(h + 3, "rounds=", 7) == 0)
			rounds = strtoul(h + 10, NULL, 10);
		n = snprintf(out, size, "%.*s$6$rounds=%lu", (int)(h - hash),
			     hash, rounds);
	} else if (strncmp(h, "$y$", 3) == 0) {
		n = snprintf(out, size, "%.*s$y$%.*s", (int)(h - hash), hash,
			     (int)strcspn(h + 3, "$"), h + 3);
	} else {
		fail_msg("unexpected hash %s", hash);
	}
	assert_true(n > 0 && (size_t)n < size);
}

/* The salt and hash of a hash: what follows the cost. */
static const char *
salt_of(const char *hash)
{
	const char *h = strchr(hash, '}') + 1;
	const char *last = strrchr(h, '$');

	if (strncmp(h, "$2", 2) == 0)
		return h + 7;
	while (last > h && *--last != '$')
		;
	return last;
}

static char *
argon2_with(unsigned long long ops, size_t mem)
{
	char out[crypto_pwhash_STRBYTES], *r;

	assert_int_equal(crypto_pwhash_str_alg(out, "password1", 9, ops, mem,
					       crypto_pwhash_ALG_ARGON2ID13),
			 0);
	assert_true(asprintf(&r, "{ARGON2ID}%s", out) > 0);
	return r;
}

#define N_MAP 64

/* Where one process maps names 0..n-1 (the lines of their models). */
static void
map_names(const struct users *us, unsigned *lines, size_t n)
{
	char name[64];

	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "unknown%zu@example.test", i);
		lines[i] = users_dummy_model(us, name)->line;
	}
}

/*
 * An unknown name borrows the scheme and cost of an entry of the file,
 * always the same one for the same name (in any case), every entry for
 * some names; the dummy has that entry's cost, a salt and hash of its
 * own, and loads and verifies like a real hash without matching.
 */
static void
test_dummy_choice(void **state)
{
	enum { N_NAMES = 3000 };
	char *hashes[11], *text = NULL, *errs = NULL, *d1, *d2;
	char c1[160], c2[160], name[64], cmd[256], line[400];
	unsigned hits[11] = {0}, mine[N_MAP], theirs[N_MAP];
	struct users *us = NULL, *again = NULL;
	size_t len = 0, n = sizeof(hashes) / sizeof(hashes[0]);
	FILE *m = open_memstream(&text, &len), *other;
	int same = 0;

	(void)state;
	hashes[0] = strdup(h_argon);
	hashes[1] = argon2_with(3, 8u << 20); /* doveadm-like other costs */
	hashes[2] = strdup(h_bcrypt);	      /* $2b$04 */
	hashes[3] = strdup(h_bcrypt_y);	      /* $2y$04 */
	hashes[4] = make_crypt("BLF-CRYPT", "$2a$", 5, "password1");
	hashes[5] = strdup(h_sha512);	      /* rounds=1000 */
	hashes[6] = make_crypt("SHA512-CRYPT", "$6$", 0, "password1");
	hashes[7] = make_crypt("SHA512-CRYPT", "$6$", 1500, "password1");
	hashes[8] = strdup(h_yescrypt);
	hashes[9] = make_crypt("CRYPT", "$y$", 3, "password1");
	hashes[10] = strdup(h_crypt6);
	for (size_t i = 0; i < n; i++)
		fprintf(m, "user%zu@example.test:%s\n", i, hashes[i]);
	fclose(m);
	assert_int_equal(load_text("models", text, len, &us, &errs), 0);
	free(errs);
	assert_int_equal(load_text("models", text, len, &again, &errs), 0);
	free(errs);

	for (int i = 0; i < N_NAMES; i++) {
		const struct user *u, *v;
		char upper[64];

		snprintf(name, sizeof(name), "Nobody%d@Example.test", i);
		u = users_dummy_model(us, name);
		assert_non_null(u);
		assert_true(u->line >= 1 && u->line <= n);
		hits[u->line - 1]++;
		/* the same name, in any case, and in a re-load of the file */
		for (size_t k = 0; k <= strlen(name); k++)
			upper[k] = (char)toupper((unsigned char)name[k]);
		assert_ptr_equal(users_dummy_model(us, name), u);
		assert_ptr_equal(users_dummy_model(us, upper), u);
		v = users_dummy_model(again, name);
		assert_int_equal(v->line, u->line);
	}
	for (size_t i = 0; i < n; i++) {
		print_message("entry %zu: %u of %d names\n", i, hits[i],
			      N_NAMES);
		assert_true(hits[i] > N_NAMES / n / 3); /* ~273 expected */
	}

	for (size_t i = 0; i < n; i++) {
		const struct user *u = users_get(us, i);
		double t0, real, dummy;

		assert_int_equal(users_dummy_hash(u, &d1), 0);
		assert_int_equal(users_dummy_hash(u, &d2), 0);
		cost_of(u->hash, c1, sizeof(c1));
		cost_of(d1, c2, sizeof(c2));
		print_message("model %s\ndummy %s\n", u->hash, d1);
		assert_string_equal(c1, c2);
		/* never the model's own salt or hash; fresh each time */
		assert_string_not_equal(salt_of(d1), salt_of(u->hash));
		assert_string_not_equal(salt_of(d1), salt_of(d2));
		/* a well-formed hash (not -1) that the password of every
		   entry does not match */
		t0 = now_ms();
		assert_int_equal(users_verify(u->hash, "password2", 9), 0);
		real = now_ms() - t0;
		t0 = now_ms();
		assert_int_equal(users_verify(d1, "password1", 9), 0);
		dummy = now_ms() - t0;
		print_message("  verify: entry %.2f ms, dummy %.2f ms\n", real,
			      dummy);
		free(d1);
		free(d2);
	}

	/* The key is drawn per process: another process (this program
	   run again) maps the same names differently (all 64 alike by
	   chance: 11^-64). */
	map_names(us, mine, N_MAP);
	path_of(cmd, sizeof(cmd), "models");
	snprintf(line, sizeof(line), "/proc/%ld/exe --map %s", (long)getpid(),
		 cmd);
	other = popen(line, "r");
	assert_non_null(other);
	for (int i = 0; i < N_MAP; i++) {
		assert_non_null(fgets(line, sizeof(line), other));
		theirs[i] = (unsigned)strtoul(line, NULL, 10);
		same += mine[i] == theirs[i];
	}
	assert_int_equal(pclose(other), 0);
	print_message("another process maps %d of %d names alike\n", same,
		      N_MAP);
	assert_true(same < N_MAP);

	/* no users, no model; no model, no dummy */
	users_free(&again);
	assert_int_equal(load_text("empty", "# none\n", 7, &again, &errs), 0);
	free(errs);
	assert_null(users_dummy_model(again, "a@b.test"));
	assert_null(users_dummy_model(NULL, "a@b.test"));
	assert_int_equal(users_dummy_hash(NULL, &d1), -1);
	assert_null(d1);
	users_free(&again);
	users_free(&us);
	for (size_t i = 0; i < n; i++)
		free(hashes[i]);
	free(text);
}

/* `test_users --map FILE`: print where this process maps the names of
   map_names(), one line each (test_dummy_choice runs it). */
static int
map_main(const char *path)
{
	unsigned lines[N_MAP];
	struct users *us = NULL;

	if (users_load(path, &us, stderr) < 0 || users_count(us) == 0)
		return 1;
	map_names(us, lines, N_MAP);
	for (int i = 0; i < N_MAP; i++)
		printf("%u\n", lines[i]);
	users_free(&us);
	return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify_schemes),
	    cmocka_unit_test(test_verify_bad_hashes),
	    cmocka_unit_test(test_hash),
	    cmocka_unit_test(test_load_good),
	    cmocka_unit_test(test_send_limit_fields),
	    cmocka_unit_test(test_find_and_send_as),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_load_missing),
	    cmocka_unit_test(test_dummy_timing),
	    cmocka_unit_test(test_dummy_choice),
	};

	if (argc == 3 && strcmp(argv[1], "--map") == 0)
		return map_main(argv[2]);

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
