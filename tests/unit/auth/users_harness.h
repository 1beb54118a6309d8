/*
 * users_harness.h - what the users-file tests share
 * (tests/unit/auth/test_users.c, tests/unit/cli/test_user_cmd.c): a scratch
 * directory, files written into it, and a hash of "password1" in each
 * scheme the users file accepts.
 */
#ifndef POSTERN_TEST_USERS_HARNESS_H
#define POSTERN_TEST_USERS_HARNESS_H

#include <stddef.h>

/* "{SCHEME}hash" of "password1", made by users_harness_setup(). */
extern char *h_argon, *h_bcrypt, *h_bcrypt_y, *h_sha512, *h_yescrypt,
    *h_crypt6;

/* Group setup: the directory /tmp/<name>.XXXXXX and the hashes. 0 or -1. */
int users_harness_setup(const char *name);
/* Group teardown: frees the hashes, removes the directory. */
int users_harness_teardown(void);

/* <scratch directory>/<rel> into buf (asserts it fits). */
void path_of(char *buf, size_t size, const char *rel);
/* Create or truncate `path` (mode 0600) holding `data`. */
void write_bytes(const char *path, const char *data, size_t len);
/* Replace every "%A" (argon2id), "%B" (bcrypt), "%S" (sha512crypt) and
   "%Y" (yescrypt) in t by a full "{SCHEME}hash" (malloc'd). */
char *expand(const char *t);
/* "{SCHEME}" + crypt(pw) with a fresh setting for `prefix` (malloc'd). */
char *make_crypt(const char *scheme, const char *prefix, unsigned long count,
		 const char *pw);

#endif
