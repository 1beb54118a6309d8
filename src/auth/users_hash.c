/*
 * users_hash.c - password schemes of the users file: checking a stored
 * hash, verification (libsodium Argon2id; libxcrypt bcrypt, sha512crypt,
 * yescrypt) and new hashes (Argon2id). The dummy verification of an
 * unknown user is users_dummy.c.
 */
#include <crypt.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/users_int.h"

enum users_scheme {
	USERS_SCHEME_NONE = 0,
	USERS_SCHEME_ARGON2ID,
	USERS_SCHEME_BLF_CRYPT,
	USERS_SCHEME_SHA512_CRYPT,
	USERS_SCHEME_CRYPT, /* Dovecot's name for "whatever crypt(3) does" */
};

/* --- hashes -------------------------------------------------------- */

static const struct {
	const char *name;
	enum users_scheme scheme;
} users_schemes[] = {
    {"ARGON2ID", USERS_SCHEME_ARGON2ID},
    {"BLF-CRYPT", USERS_SCHEME_BLF_CRYPT},
    {"SHA512-CRYPT", USERS_SCHEME_SHA512_CRYPT},
    {"CRYPT", USERS_SCHEME_CRYPT},
};

/*
 * Split "{SCHEME}rest". Scheme names compare case-insensitively, as in
 * Dovecot. Returns USERS_SCHEME_NONE when there is no "{...}" prefix or
 * the name is unknown; *name_r and *name_len_r show what was there.
 */
static enum users_scheme
users_scheme_of(const char *hash, const char **rest_r, const char **name_r,
		size_t *name_len_r)
{
	const char *end;

	*name_r = "";
	*name_len_r = 0;
	*rest_r = hash;
	if (hash[0] != '{' || (end = strchr(hash, '}')) == NULL)
		return USERS_SCHEME_NONE;
	*name_r = hash + 1;
	*name_len_r = (size_t)(end - hash - 1);
	*rest_r = end + 1;
	for (size_t i = 0; i < sizeof(users_schemes) / sizeof(users_schemes[0]);
	     i++) {
		const char *n = users_schemes[i].name;

		if (strlen(n) == *name_len_r &&
		    strncasecmp(n, *name_r, *name_len_r) == 0)
			return users_schemes[i].scheme;
	}
	return USERS_SCHEME_NONE;
}

static bool
users_b64_char(unsigned char c)
{
	return isalnum(c) || c == '.' || c == '/';
}

/* Length of the run of crypt base64 characters at s. */
static size_t
users_b64_run(const char *s)
{
	size_t n = 0;

	while (users_b64_char((unsigned char)s[n]))
		n++;
	return n;
}

/* bcrypt: "$2b$NN$" then 22 salt and 31 hash characters (60 in all). */
static bool
users_valid_bcrypt(const char *h)
{
	if (strncmp(h, "$2", 2) != 0 ||
	    (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' ||
	    !isdigit((unsigned char)h[4]) || !isdigit((unsigned char)h[5]) ||
	    h[6] != '$')
		return false;
	return strlen(h) == 60 && users_b64_run(h + 7) == 53;
}

/* sha512crypt: "$6$[rounds=N$]salt$" then 86 hash characters. */
static bool
users_valid_sha512(const char *h)
{
	const char *p = h + 3, *dollar;

	if (strncmp(h, "$6$", 3) != 0)
		return false;
	if (strncmp(p, "rounds=", 7) == 0) {
		p += 7;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p++ != '$')
			return false;
	}
	dollar = strchr(p, '$');
	if (dollar == NULL || dollar - p > 16 ||
	    users_b64_run(p) != (size_t)(dollar - p))
		return false;
	return strlen(dollar + 1) == 86 && users_b64_run(dollar + 1) == 86;
}

/* yescrypt: "$y$params$salt$" then 43 hash characters. */
static bool
users_valid_yescrypt(const char *h)
{
	const char *p = h + 3;

	if (strncmp(h, "$y$", 3) != 0)
		return false;
	for (int part = 0; part < 2; part++) {
		size_t n = users_b64_run(p);

		if (n == 0 || p[n] != '$')
			return false;
		p += n + 1;
	}
	return strlen(p) == 43 && users_b64_run(p) == 43;
}

/*
 * Check a "{SCHEME}..." password field. Returns true when it is usable,
 * else false with a message in msg.
 */
bool
users_check_hash(const char *hash, char *msg, size_t size)
{
	const char *rest, *name;
	size_t name_len;
	bool ok = false;

	switch (users_scheme_of(hash, &rest, &name, &name_len)) {
	case USERS_SCHEME_NONE:
		if (hash[0] != '{' || strchr(hash, '}') == NULL)
			snprintf(msg, size, "password has no {SCHEME} prefix");
		else if (name_len == 8 && strncasecmp(name, "YESCRYPT", 8) == 0)
			snprintf(msg, size,
				 "unknown password scheme {YESCRYPT} (Dovecot "
				 "stores yescrypt as {CRYPT}$y$...)");
		else
			snprintf(msg, size, "unknown password scheme {%.*s}",
				 (int)(name_len > 32 ? 32 : name_len), name);
		return false;
	case USERS_SCHEME_ARGON2ID:
		/* needs_rehash decodes the whole string; -1 means malformed */
		if (strncmp(rest, "$argon2id$", 10) != 0 ||
		    crypto_pwhash_argon2id_str_needs_rehash(
			rest, USERS_OPSLIMIT, USERS_MEMLIMIT) == -1) {
			snprintf(msg, size, "malformed ARGON2ID hash");
			return false;
		}
		return true;
	case USERS_SCHEME_BLF_CRYPT:
		ok = users_valid_bcrypt(rest);
		if (!ok)
			snprintf(msg, size,
				 "malformed BLF-CRYPT hash (expected $2b$, "
				 "$2y$ or $2a$ bcrypt)");
		break;
	case USERS_SCHEME_SHA512_CRYPT:
		ok = users_valid_sha512(rest);
		if (!ok)
			snprintf(msg, size,
				 "malformed SHA512-CRYPT hash (expected $6$)");
		break;
	case USERS_SCHEME_CRYPT:
		ok = users_valid_yescrypt(rest) || users_valid_bcrypt(rest) ||
		     users_valid_sha512(rest);
		if (!ok)
			snprintf(msg, size,
				 "unsupported CRYPT hash (only yescrypt $y$, "
				 "bcrypt $2b$ and sha512crypt $6$)");
		break;
	}
	if (!ok)
		return false;
	/* libxcrypt's own opinion of the setting (method enabled, sane) */
	if (crypt_checksalt(rest) != CRYPT_SALT_OK) {
		snprintf(msg, size, "hash rejected by libcrypt");
		return false;
	}
	return true;
}

/* --- verification -------------------------------------------------- */

/*
 * crypt(3) a NUL-terminated copy of the password with the stored hash as
 * setting and compare the result in constant time.
 */
static int
users_verify_crypt(const char *stored, const char *password, size_t len)
{
	struct crypt_data *data;
	char *pw;
	const char *out;
	size_t n = strlen(stored);
	int ret;

	data = calloc(1, sizeof(*data));
	pw = malloc(len + 1);
	if (data == NULL || pw == NULL) {
		free(data);
		free(pw);
		return -1;
	}
	memcpy(pw, password, len);
	pw[len] = '\0';
	out = crypt_rn(pw, stored, data, (int)sizeof(*data));
	if (out == NULL || out[0] == '*')
		ret = -1;
	else if (strlen(out) != n)
		ret = 0;
	else
		ret = sodium_memcmp(out, stored, n) == 0 ? 1 : 0;
	sodium_memzero(pw, len + 1);
	sodium_memzero(data, sizeof(*data));
	free(pw);
	free(data);
	return ret;
}

int
users_verify(const char *hash, const char *password, size_t len)
{
	enum users_scheme scheme;
	const char *rest, *name;
	size_t name_len;
	char msg[128];

	if (hash == NULL || password == NULL || sodium_init() < 0)
		return -1;
	/* the same checks as at load time: a {SHA512-CRYPT} field can never
	   reach crypt(3) as, say, a DES setting */
	if (!users_check_hash(hash, msg, sizeof(msg)))
		return -1;
	scheme = users_scheme_of(hash, &rest, &name, &name_len);
	/* A NUL cannot be in a crypt(3) phrase, and Dovecot cuts the
	   password at the first NUL: such a password never matches. */
	if (len > USERS_PASSWORD_MAX || memchr(password, '\0', len) != NULL)
		return 0;
	if (scheme == USERS_SCHEME_ARGON2ID)
		return crypto_pwhash_str_verify(rest, password, len) == 0 ? 1
									  : 0;
	return users_verify_crypt(rest, password, len);
}

int
users_hash(const char *password, size_t len, char **hash_r)
{
	char out[crypto_pwhash_STRBYTES];
	static const char prefix[] = "{ARGON2ID}";
	char *r;

	*hash_r = NULL;
	if (password == NULL || len > USERS_PASSWORD_MAX ||
	    memchr(password, '\0', len) != NULL || sodium_init() < 0)
		return -1;
	if (crypto_pwhash_str_alg(out, password, len, USERS_OPSLIMIT,
				  USERS_MEMLIMIT,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -1;
	if (asprintf(&r, "%s%s", prefix, out) < 0)
		return -1;
	*hash_r = r;
	return 0;
}
