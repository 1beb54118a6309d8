/*
 * users_dummy.c - what an AUTH for an unknown user costs (THREATS A-03):
 * a verification against a dummy hash with the scheme and cost of a real
 * entry of the users file, so that an unknown name answers at the speed
 * of a known one whatever schemes the file holds (bcrypt, SHA512-CRYPT,
 * yescrypt, Argon2id with any costs).
 *
 * The entry is chosen by a keyed hash of the name (SipHash-2-4 through
 * crypto_shorthash, its key drawn at random once per process): the same
 * unknown name always borrows the same entry's costs, so repeating a
 * guess does not average the choice away, and nobody outside the process
 * can tell which entry a name maps to. The dummy has a fresh random salt
 * and a random hash part: it never holds the entry's own salt or hash,
 * and no password is known to match it; the guard discards its verdict
 * anyway.
 */
#include <crypt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users_int.h"

#define USERS_DUMMY_B64                                                        \
	"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define USERS_DUMMY_MAX 512	     /* longest dummy we build */
#define USERS_SHA512_ROUNDS_MIN 1000 /* libxcrypt clamps to these */
#define USERS_SHA512_ROUNDS_MAX 999999999ul

static pthread_once_t users_dummy_once = PTHREAD_ONCE_INIT;
static unsigned char users_dummy_key[crypto_shorthash_KEYBYTES];
static char users_dummy_default[crypto_pwhash_STRBYTES];
static bool users_dummy_ok;

/* Once per process: the key of the choice, and the fallback dummy (a
   random password hashed with the costs users_hash uses). */
static void
users_dummy_init(void)
{
	unsigned char raw[24];
	char pw[2 * sizeof(raw) + 1];

	if (sodium_init() < 0)
		return;
	crypto_shorthash_keygen(users_dummy_key);
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(pw, sizeof(pw), raw, sizeof(raw));
	users_dummy_ok =
	    crypto_pwhash_str_alg(users_dummy_default, pw, strlen(pw),
				  USERS_OPSLIMIT, USERS_MEMLIMIT,
				  crypto_pwhash_ALG_ARGON2ID13) == 0;
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(pw, sizeof(pw));
}

void
users_verify_dummy(const char *password, size_t len)
{
	unsigned char key[32], salt[crypto_pwhash_SALTBYTES] = {0};
	int r;

	pthread_once(&users_dummy_once, users_dummy_init);
	if (password == NULL)
		password = "";
	if (len > USERS_PASSWORD_MAX)
		len = USERS_PASSWORD_MAX;
	if (users_dummy_ok) {
		r = crypto_pwhash_str_verify(users_dummy_default, password,
					     len);
		(void)r; /* always a mismatch; only the time matters */
		return;
	}
	/* XXX: the dummy hash could not be made (out of memory?); spend the
	   same work on a throwaway key so the timing still matches. */
	r = crypto_pwhash(key, sizeof(key), password, len, salt, USERS_OPSLIMIT,
			  USERS_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13);
	(void)r;
	sodium_memzero(key, sizeof(key));
}

const struct user *
users_dummy_model(const struct users *users, const char *name)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h = 0;
	char *low;

	if (users == NULL || users->n == 0 || name == NULL)
		return NULL;
	pthread_once(&users_dummy_once, users_dummy_init);
	low = users_strndup_lower(name, strlen(name));
	if (low == NULL)
		return &users->v[0];
	crypto_shorthash(out, (const unsigned char *)low, strlen(low),
			 users_dummy_key);
	free(low);
	for (size_t i = 0; i < sizeof(out); i++)
		h = h << 8 | out[i];
	/* the bias of a 64-bit hash modulo a file's line count is nil */
	return &users->v[h % users->n];
}

/* Append n random characters of crypt's base64 alphabet. */
static void
users_dummy_b64(struct users_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		users_buf_add(b, &USERS_DUMMY_B64[randombytes_uniform(64)], 1);
}

/* Append standard base64 (no padding) of n random octets, as Argon2's
   PHC strings have it. */
static void
users_dummy_b64_bytes(struct users_buf *b, size_t n)
{
	unsigned char raw[128];
	char text[sodium_base64_ENCODED_LEN(
	    sizeof(raw), sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];

	if (n == 0 || n > sizeof(raw)) {
		b->oom = true; /* not a hash we could have loaded */
		return;
	}
	randombytes_buf(raw, n);
	sodium_bin2base64(text, sizeof(text), raw, n,
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	users_buf_str(b, text);
}

/*
 * "$argon2id$v=19$m=M,t=T,p=P$salt$hash": the same version and costs,
 * a random salt and hash of the model's lengths.
 */
static void
users_dummy_argon2(struct users_buf *b, const char *h)
{
	const char *hash = strrchr(h, '$'), *salt = hash;

	/* the salt and the hash are the last two '$' fields */
	while (salt != NULL && salt > h && *--salt != '$')
		;
	if (hash == NULL || salt == NULL || salt == hash || *salt != '$') {
		b->oom = true;
		return;
	}
	users_buf_add(b, h, (size_t)(salt - h) + 1);
	users_dummy_b64_bytes(b, (size_t)(hash - salt - 1) * 3 / 4);
	users_buf_add(b, "$", 1);
	users_dummy_b64_bytes(b, strlen(hash + 1) * 3 / 4);
}

/* A fresh crypt(3) setting for `prefix` and `count` (libxcrypt). */
static void
users_dummy_setting(struct users_buf *b, const char *prefix,
		    unsigned long count)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];

	if (crypt_gensalt_rn(prefix, count, NULL, 0, setting,
			     sizeof(setting)) == NULL) {
		b->oom = true;
		return;
	}
	users_buf_str(b, setting);
}

/* bcrypt "$2b$NN$": the same variant and cost; 31 hash characters. */
static void
users_dummy_bcrypt(struct users_buf *b, const char *h)
{
	char prefix[5];
	unsigned long cost =
	    (unsigned long)(h[4] - '0') * 10 + (unsigned long)(h[5] - '0');

	memcpy(prefix, h, 4);
	prefix[4] = '\0';
	users_dummy_setting(b, prefix, cost);
	users_dummy_b64(b, 31);
}

/* sha512crypt "$6$[rounds=N$]": the same rounds (5000 when absent). */
static void
users_dummy_sha512(struct users_buf *b, const char *h)
{
	unsigned long rounds = 5000;

	if (strncmp(h + 3, "rounds=", 7) == 0)
		rounds = strtoul(h + 10, NULL, 10);
	if (rounds < USERS_SHA512_ROUNDS_MIN)
		rounds = USERS_SHA512_ROUNDS_MIN;
	if (rounds > USERS_SHA512_ROUNDS_MAX)
		rounds = USERS_SHA512_ROUNDS_MAX;
	users_dummy_setting(b, "$6$", rounds);
	users_buf_add(b, "$", 1);
	users_dummy_b64(b, 86);
}

/* yescrypt "$y$PARAMS$": the same parameters, a salt made by libxcrypt. */
static void
users_dummy_yescrypt(struct users_buf *b, const char *h)
{
	const char *params_end = strchr(h + 3, '$');
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *salt;

	if (params_end == NULL ||
	    crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) ==
		NULL ||
	    (salt = strchr(setting + 3, '$')) == NULL) {
		b->oom = true;
		return;
	}
	users_buf_add(b, h, (size_t)(params_end - h));
	users_buf_str(b, salt);
	users_buf_add(b, "$", 1);
	users_dummy_b64(b, 43);
}

int
users_dummy_hash(const struct user *model, char **hash_r)
{
	struct users_buf b = {0};
	const char *end, *h;

	*hash_r = NULL;
	if (model == NULL || model->hash[0] != '{' ||
	    (end = strchr(model->hash, '}')) == NULL)
		return -1;
	h = end + 1;
	users_buf_add(&b, model->hash, (size_t)(h - model->hash));
	if (strncmp(h, "$argon2id$", 10) == 0)
		users_dummy_argon2(&b, h);
	else if (strncmp(h, "$2", 2) == 0 && strlen(h) >= 7)
		users_dummy_bcrypt(&b, h);
	else if (strncmp(h, "$6$", 3) == 0)
		users_dummy_sha512(&b, h);
	else if (strncmp(h, "$y$", 3) == 0)
		users_dummy_yescrypt(&b, h);
	else
		b.oom = true; /* users_check_hash admits nothing else */
	if (b.oom || b.len > USERS_DUMMY_MAX) {
		users_buf_free(&b);
		return -1;
	}
	*hash_r = b.p;
	return 0;
}
