/*
 * users.h - the users file, in Dovecot's passwd-file format, so that one
 * file serves postern and Dovecot:
 *
 *     user@domain:{SCHEME}hash[:uid:gid:gecos:home:shell:extra fields]
 *
 * Schemes: ARGON2ID (libsodium; the default for new hashes), BLF-CRYPT,
 * SHA512-CRYPT and CRYPT ($y$ yescrypt; libcrypt). Aliases (other
 * addresses the user may send as) are an extra field, see docs/users.md.
 * Dovecot's nologin, fail and allow_nets fields are not honoured. Only
 * the guard process reads this file for passwords; `postern user` edits
 * it.
 */
#ifndef POSTERN_USERS_H
#define POSTERN_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct users;

struct user {
	char *name;	/* canonical address, lower-case: user@domain */
	char *hash;	/* "{SCHEME}..." as in the file */
	char **aliases; /* lower-case addresses; may be empty */
	size_t n_aliases;
	unsigned line;
};

/*
 * Load a users file. Every malformed line (bad address, unknown scheme,
 * malformed hash, duplicate user or alias) is written to `errors` as
 * "file:line: message"; then -1 is returned. A missing file is an error.
 */
int users_load(const char *path, struct users **users_r, FILE *errors);
void users_free(struct users **users);

size_t users_count(const struct users *users);
const struct user *users_get(const struct users *users, size_t i);
/* Find by address (ASCII case-insensitive); NULL when unknown. */
const struct user *users_find(const struct users *users, const char *name);

/*
 * Verify a password against a stored hash, in constant time where the
 * scheme allows. Slow by design (a KDF): call it from a worker thread, never
 * from an event loop. Returns 1 (match), 0 (no match) or -1 (error).
 */
int users_verify(const char *hash, const char *password, size_t len);

/*
 * Spend the time a verification of a real user would take, for an unknown
 * user (THREATS A-03): verify against a fixed dummy hash of the default
 * scheme. Always "fails".
 */
void users_verify_dummy(const char *password, size_t len);

/* Hash a new password with the default scheme (ARGON2ID). Returns 0 or -1;
   *hash_r is malloc'd "{ARGON2ID}$argon2id$...". */
int users_hash(const char *password, size_t len, char **hash_r);

/* May `user` use `address` as its sender (its own name or an alias)? */
bool users_may_send_as(const struct user *user, const char *address);

/*
 * `postern user add|passwd|del|list` (argv[0] is "user"). The file is
 * rewritten atomically (temporary file, fsync, rename, fsync of the
 * directory). Passwords come from the terminal without echo, or from
 * standard input with --stdin; never from argv. Returns the exit status.
 */
int users_cli(const char *path, int argc, char **argv);

#endif
