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
 * the guard process reads this file for passwords; `postern user`
 * (cli/user_cmd.c) edits it through users_edit_apply().
 *
 * users.c reads and looks up, users_hash.c verifies and hashes,
 * users_edit.c rewrites the file image for an edit.
 */
#ifndef POSTERN_USERS_H
#define POSTERN_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Longest password we hash or verify; longer ones never match. This bounds
   the work an attacker can ask for (sha512crypt is linear in it). */
#define USERS_PASSWORD_MAX 1024
#define USERS_PASSWORD_MIN 8 /* for new passwords (`postern user`) */
#define USERS_ADDRESS_MAX 254

struct users;

/* The per-user send limits, in the order of users_send_limit_keys. */
enum { USERS_SEND_HOUR, USERS_SEND_DAY, USERS_SEND_NEW_DAY, USERS_SEND_LIMITS };
#define USERS_SEND_LIMIT_MAX 10000000LL

struct user {
	char *name;	/* canonical address, lower-case: user@domain */
	char *hash;	/* "{SCHEME}..." as in the file */
	char **aliases; /* lower-case addresses; may be empty */
	size_t n_aliases;
	unsigned line;
	/* userdb_postern_send_limit_hour, _send_limit_day and
	   _new_recipients_day (docs/sendlimit.md); -1: the configuration's
	   value; 0: no limit. */
	long long send_limit[USERS_SEND_LIMITS];
};

/*
 * Load a users file. Every malformed line (bad address, unknown scheme,
 * malformed hash, duplicate user or alias) is written to `errors` as
 * "file:line: message"; then -1 is returned. A missing file is an error.
 */
int users_load(const char *path, struct users **users_r, FILE *errors);
/* The same for a file image in memory; `label` names it in messages. */
int users_parse(const char *label, const char *buf, size_t len,
		struct users **users_r, FILE *errors);
/* Read a whole regular file (at most 64 MiB). Sets errno and returns -1. */
int users_read_file(const char *path, char **buf_r, size_t *len_r);
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

/* --- unknown users (users_dummy.c, THREATS A-03) -------------------- */

/*
 * The entry whose scheme and cost an AUTH for the unknown `name` borrows:
 * chosen by a keyed hash (SipHash, a random key per process) of the name
 * in lower case, so one name always maps to the same entry of the same
 * file. NULL when there are no users.
 */
const struct user *users_dummy_model(const struct users *users,
				     const char *name);

/*
 * A dummy "{SCHEME}hash" with the scheme and cost of `model`'s hash, a
 * fresh random salt and a random hash part (never the model's own):
 * users_verify() on it costs what the model's verification costs, and no
 * password is known to match it (the caller must still ignore the
 * verdict). *hash_r is malloc'd. Returns 0 or -1.
 */
int users_dummy_hash(const struct user *model, char **hash_r);

/*
 * The fallback when no model is at hand: verify against a fixed Argon2id
 * dummy of the default costs (made once per process). Always "fails".
 */
void users_verify_dummy(const char *password, size_t len);

/* Hash a new password with the default scheme (ARGON2ID). Returns 0 or -1;
   *hash_r is malloc'd "{ARGON2ID}$argon2id$...". */
int users_hash(const char *password, size_t len, char **hash_r);

/* May `user` use `address` as its sender (its own name or an alias)? */
bool users_may_send_as(const struct user *user, const char *address);

/*
 * Is s[0..len) an address we accept as a user name or alias: a dot-atom
 * local part of [A-Za-z0-9._+=-], an LDH domain (docs/users.md)?
 */
bool users_valid_address(const char *s, size_t len);

/* --- edits (users_edit.c) -------------------------------------------- */

enum users_op {
	USERS_OP_ADD,
	USERS_OP_PASSWD,
	USERS_OP_DEL,
	USERS_OP_ALIAS_ADD,
	USERS_OP_ALIAS_DEL,
};

struct users_edit {
	enum users_op op;
	char *address;	/* lower-case */
	char **aliases; /* lower-case; ADD: its aliases; ALIAS_*: the one */
	size_t n_aliases;
	char *hash; /* ADD, PASSWD: the new "{SCHEME}..." */
};

/*
 * The new file image for an edit already checked against `us` (the
 * parse of buf): every line but the edited user's is copied byte for
 * byte; a new user is appended at the end. *out_r is malloc'd (NUL
 * terminated); -1 when out of memory.
 */
int users_edit_apply(const char *buf, size_t len, const struct users *us,
		     const struct users_edit *ed, char **out_r,
		     size_t *out_len_r);

#endif
