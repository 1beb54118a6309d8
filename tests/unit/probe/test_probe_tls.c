/*
 * test_probe_tls.c - the grading of TLS suites by `postern probe`, which
 * must agree with nmap's ssl-enum-ciphers (score_cipher, letter_grade and
 * tls.lua rsa_equiv): a table of key-exchange strengths and cipher sizes
 * with the letters nmap gives, worked out by hand from its formula
 * 0.43 * kex + 0.57 * cipher. Also the client contexts' setup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "probe/probe_int.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static void
test_letter(void **state)
{
	static const struct {
		int kex, bits;
		char grade;
		const char *what;
	} cases[] = {
	    {2048, 128, 'A', "RSA 2048, AES-128 (.387 + .456)"},
	    {2048, 256, 'A', "RSA 2048, AES-256"},
	    {3072, 128, 'A', "P-256 (3072 equivalent), AES-128"},
	    {4096, 256, 'A', "RSA 4096, AES-256: 1.0"},
	    {1024, 128, 'A', "RSA 1024, AES-128: .344 + .456 = .800"},
	    {1024, 256, 'A', "RSA 1024, ChaCha20: .914"},
	    {768, 256, 'B', "RSA 768, AES-256: .742"},
	    {768, 128, 'C', "RSA 768, AES-128: .628"},
	    {512, 128, 'C', "512-bit export key, AES-128: .628"},
	    {2048, 112, 'C', "3DES (112 bits): .501"},
	    {2048, 80, 'C', "RC4, capped at 80 bits: .501"},
	    {256, 128, 'C', "a 256-bit DH group, AES-128: .542"},
	    {1024, 112, 'D', "DH 1024, 3DES: .458"},
	    {512, 40, 'E', "EXPORT40 with a 512-bit key: .286"},
	    {256, 40, 'E', "tiny key, 40-bit cipher: .200"},
	    {0, 256, 'F', "anonymous key exchange"},
	    {2048, 0, 'F', "NULL cipher"},
	    {-1, 128, 'F', "unknown strength"},
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char got = probe_tls_letter(cases[i].kex, cases[i].bits);

		if (got != cases[i].grade)
			fail_msg("%s: got %c, nmap gives %c", cases[i].what,
				 got, cases[i].grade);
	}
}

static void
test_rsa_equiv(void **state)
{
	static const struct {
		enum probe_kex_type type;
		int bits, rsa;
	} cases[] = {
	    {PROBE_KEX_EC, 159, 512},	 {PROBE_KEX_EC, 160, 1024},
	    {PROBE_KEX_EC, 223, 1024},	 {PROBE_KEX_EC, 224, 2048},
	    {PROBE_KEX_EC, 255, 2048},	 {PROBE_KEX_EC, 256, 3072},
	    {PROBE_KEX_EC, 384, 7680},	 {PROBE_KEX_EC, 448, 7680},
	    {PROBE_KEX_EC, 521, 15360},	 {PROBE_KEX_RSA, 2048, 2048},
	    {PROBE_KEX_RSA, 1024, 1024}, {PROBE_KEX_DH, 4096, 4096},
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		assert_int_equal(
		    probe_tls_rsa_equiv(cases[i].type, cases[i].bits),
		    cases[i].rsa);
	/* X25519 counts as 256 bits (nmap tls.lua named_group_info). */
	assert_int_equal(
	    probe_tls_letter(probe_tls_rsa_equiv(PROBE_KEX_EC, 256), 128), 'A');
}

/* --ca must name readable PEM anchors; a missing file is refused. */
static void
test_contexts(void **state)
{
	struct probe_options o;
	struct probe pr;
	const char *why = NULL;
	char path[] = "/tmp/test_probe_tls_XXXXXX";
	int fd;

	(void)state;
	memset(&o, 0, sizeof(o));
	memset(&pr, 0, sizeof(pr));
	pr.o = &o;
	o.ca = "/nonexistent/ca.pem";
	assert_int_equal(probe_tls_init(&pr, &why), -1);
	assert_non_null(why);
	probe_tls_deinit(&pr);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a certificate\n", 18), 18);
	close(fd);
	o.ca = path;
	assert_int_equal(probe_tls_init(&pr, &why), -1);
	probe_tls_deinit(&pr);
	unlink(path);

	o.ca = NULL; /* the system store */
	assert_int_equal(probe_tls_init(&pr, &why), 0);
	assert_non_null(pr.tls_modern);
	assert_non_null(pr.tls_legacy);
	/* the legacy context offers TLS 1.0 suites at level 0 */
	assert_int_equal(SSL_CTX_get_security_level(pr.tls_legacy), 0);
	assert_true(SSL_CTX_get_security_level(pr.tls_modern) >= 1);
	assert_int_equal(SSL_CTX_get_min_proto_version(pr.tls_modern),
			 TLS1_2_VERSION);
	probe_tls_deinit(&pr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_letter),
	    cmocka_unit_test(test_rsa_equiv),
	    cmocka_unit_test(test_contexts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
