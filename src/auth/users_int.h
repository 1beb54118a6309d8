/*
 * users_int.h - what the parts of the users file share: users.c (reading,
 * parsing, lookup), users_hash.c (schemes, verification, hashing, the
 * dummy verification) and users_edit.c (rewriting the file for an edit).
 * Not for other modules: they use users.h.
 */
#ifndef POSTERN_USERS_INT_H
#define POSTERN_USERS_INT_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/users.h"

#define USERS_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* RFC 5321 section 4.5.3.1: local part 64 octets, domain 255, path 256
   (with the angle brackets, so an address is at most 254). */
#define USERS_LOCAL_MAX 64
#define USERS_DOMAIN_MAX 253
#define USERS_LABEL_MAX 63

#define USERS_LINE_MAX 65536
#define USERS_FILE_MAX (64u * 1024 * 1024)

#define USERS_ALIASES_KEY "userdb_postern_aliases="
#define USERS_N_FIELDS 8 /* user pass uid gid gecos home shell extra */

/* New hashes and the fallback dummy: Argon2id, libsodium's "interactive"
   costs. */
#define USERS_OPSLIMIT crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE
#define USERS_MEMLIMIT crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE

struct users {
	struct user *v; /* file order */
	size_t n;
	struct user **by_name; /* sorted by name, for users_find */
};

/* A line cut into its passwd-file fields (pointers into the line). */
struct users_fields {
	const char *f[USERS_N_FIELDS];
	size_t len[USERS_N_FIELDS];
	int n;
};

/* A growable byte buffer (file images). */
struct users_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* users.c */
void users_buf_add(struct users_buf *b, const void *data, size_t len);
void users_buf_str(struct users_buf *b, const char *s);
void users_buf_free(struct users_buf *b);
char *users_strndup_lower(const char *s, size_t len);
void users_split_fields(const char *line, size_t len, struct users_fields *fl);
void users_join_fields(struct users_buf *b, const struct users_fields *fl);

/* users_hash.c: is a "{SCHEME}..." field usable? false with a message. */
bool users_check_hash(const char *hash, char *msg, size_t size);

#endif
