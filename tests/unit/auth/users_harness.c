/*
 * users_harness.c - see users_harness.h.
 */
#include <crypt.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/users.h"
#include "users_harness.h"

static char root[64];
char *h_argon, *h_bcrypt, *h_bcrypt_y, *h_sha512, *h_yescrypt, *h_crypt6;

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
path_of(char *buf, size_t size, const char *rel)
{
	int n = snprintf(buf, size, "%s/%s", root, rel);

	assert_true(n > 0 && (size_t)n < size);
}

void
write_bytes(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Replace every "%A" (argon2id), "%B" (bcrypt), "%S" (sha512crypt) and
   "%Y" (yescrypt) in t by a full "{SCHEME}hash". */
char *
expand(const char *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	assert_non_null(m);
	for (; *t != '\0'; t++) {
		if (t[0] == '%' && t[1] != '\0' && strchr("ABSY", t[1])) {
			const char *h = t[1] == 'A'   ? h_argon
					: t[1] == 'B' ? h_bcrypt
					: t[1] == 'S' ? h_sha512
						      : h_yescrypt;

			fputs(h, m);
			t++;
		} else {
			fputc(*t, m);
		}
	}
	fclose(m);
	return buf;
}

/* "{SCHEME}" + crypt(pw) with a fresh setting for `prefix`. */
char *
make_crypt(const char *scheme, const char *prefix, unsigned long count,
	   const char *pw)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *data = calloc(1, sizeof(*data));
	const char *out;
	char *r;

	assert_non_null(data);
	assert_non_null(
	    crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof(setting)));
	out = crypt_rn(pw, setting, data, (int)sizeof(*data));
	assert_non_null(out);
	assert_true(asprintf(&r, "{%s}%s", scheme, out) > 0);
	free(data);
	return r;
}

int
users_harness_setup(const char *name)
{
	int n = snprintf(root, sizeof(root), "/tmp/%s.XXXXXX", name);

	if (n < 0 || (size_t)n >= sizeof(root))
		return -1;
	if (mkdtemp(root) == NULL)
		return -1;
	if (users_hash("password1", 9, &h_argon) < 0)
		return -1;
	h_bcrypt = make_crypt("BLF-CRYPT", "$2b$", 4, "password1");
	h_bcrypt_y = make_crypt("BLF-CRYPT", "$2y$", 4, "password1");
	h_sha512 = make_crypt("SHA512-CRYPT", "$6$", 1000, "password1");
	h_yescrypt = make_crypt("CRYPT", "$y$", 0, "password1");
	h_crypt6 = make_crypt("CRYPT", "$6$", 1000, "password1");
	return 0;
}

int
users_harness_teardown(void)
{
	free(h_argon);
	free(h_bcrypt);
	free(h_bcrypt_y);
	free(h_sha512);
	free(h_yescrypt);
	free(h_crypt6);
	return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
