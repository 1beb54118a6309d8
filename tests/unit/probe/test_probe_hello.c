/*
 * test_probe_hello.c - the hand-made ClientHello of `postern probe`
 * (src/probe/probe_hello.c): its bytes (RFC 5246 7.4.1.2, RFC 6101
 * 5.6.1.2), the reading of a server's first flight fed through a socket
 * pair in pieces, and the grades of the legacy suites as nmap's
 * ssl-enum-ciphers gives them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "probe/probe_int.h"

static size_t
get16(const unsigned char *p)
{
	return (size_t)p[0] << 8 | p[1];
}

static size_t
get24(const unsigned char *p)
{
	return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
}

/* Find an extension in a ClientHello's extension block. */
static const unsigned char *
find_ext(const unsigned char *ext, size_t len, unsigned type, size_t *len_r)
{
	size_t o = 0;

	while (o + 4 <= len) {
		size_t n = get16(ext + o + 2);

		assert_true(o + 4 + n <= len);
		if (get16(ext + o) == type) {
			*len_r = n;
			return ext + o + 4;
		}
		o += 4 + n;
	}
	return NULL;
}

static void
test_build(void **state)
{
	static const unsigned ids[] = {0x000a, 0x0005, 0xc012};
	unsigned char out[2048];
	const unsigned char *ext, *e;
	size_t o, n, elen;
	int len;

	(void)state;
	for (int v = SSL3_VERSION; v <= TLS1_2_VERSION; v++) {
		len = probe_hello_build(v, ids, 3, "mx.example.org", out,
					sizeof(out));
		assert_true(len > 0);
		assert_int_equal(out[0], 22);
		assert_int_equal(get16(out + 1),
				 v == SSL3_VERSION ? 0x0300 : 0x0301);
		assert_int_equal(get16(out + 3), (size_t)len - 5);
		assert_int_equal(out[5], 1);
		assert_int_equal(get24(out + 6), (size_t)len - 9);
		assert_int_equal(get16(out + 9), (size_t)v);
		o = 9 + 2 + 32;
		assert_int_equal(out[o], 0); /* no session id */
		o++;
		n = get16(out + o);
		assert_int_equal(n, 2 * 4); /* three ids and the SCSV */
		assert_int_equal(get16(out + o + 2), 0x000a);
		assert_int_equal(get16(out + o + 4), 0x0005);
		assert_int_equal(get16(out + o + 6), 0xc012);
		assert_int_equal(get16(out + o + 8), 0x00ff);
		o += 2 + n;
		assert_int_equal(out[o], 1);
		assert_int_equal(out[o + 1], 0);
		o += 2;
		if (v == SSL3_VERSION) {
			/* SSLv3 servers may choke on extensions: none */
			assert_int_equal(o, (size_t)len);
			continue;
		}
		elen = get16(out + o);
		assert_int_equal(o + 2 + elen, (size_t)len);
		ext = out + o + 2;
		e = find_ext(ext, elen, 0x0000, &n);
		assert_non_null(e);
		assert_int_equal(n, 5 + 14);
		assert_memory_equal(e + 5, "mx.example.org", 14);
		assert_non_null(find_ext(ext, elen, 0x000a, &n));
		assert_non_null(find_ext(ext, elen, 0xff01, &n));
		/* signature_algorithms exists in TLS 1.2 only */
		assert_true((find_ext(ext, elen, 0x000d, &n) != NULL) ==
			    (v == TLS1_2_VERSION));
	}
	/* no SNI for an address; a buffer too small is refused */
	len = probe_hello_build(TLS1_VERSION, ids, 3, NULL, out, sizeof(out));
	assert_true(len > 0);
	assert_int_equal(probe_hello_build(TLS1_VERSION, ids, 3, NULL, out, 40),
			 -1);
}

/* ---- a server's flight --------------------------------------------------- */

struct flight {
	unsigned char b[8192];
	size_t n;
};

static void
add(struct flight *f, const void *p, size_t n)
{
	assert_true(f->n + n <= sizeof(f->b));
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

static void
add16(struct flight *f, size_t v)
{
	unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};

	add(f, b, 2);
}

static void
add24(struct flight *f, size_t v)
{
	unsigned char b[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8),
			      (unsigned char)v};

	add(f, b, 3);
}

static X509 *
rsa_cert(int bits, const EVP_MD *md, EVP_PKEY **key_r)
{
	EVP_PKEY *key = EVP_RSA_gen((unsigned)bits);
	X509 *x = X509_new();

	assert_non_null(key);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"old.example", -1, -1,
				   0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, key, md) > 0);
	*key_r = key;
	return x;
}

/* The handshake messages of a first flight: ServerHello, Certificate,
   ServerKeyExchange with a DH p of dh_bytes (when not 0), Done. */
static void
messages(struct flight *m, int version, unsigned suite, X509 *cert,
	 size_t dh_bytes)
{
	unsigned char *der = NULL;
	int dlen = i2d_X509(cert, &der);

	m->n = 0;
	add(m, "\x02", 1);
	add24(m, 38);
	add16(m, (size_t)version);
	for (int i = 0; i < 32; i++)
		add(m, "\x11", 1);
	add(m, "\x00", 1);
	add16(m, suite);
	add(m, "\x00", 1);
	add(m, "\x0b", 1);
	add24(m, (size_t)dlen + 6);
	add24(m, (size_t)dlen + 3);
	add24(m, (size_t)dlen);
	add(m, der, (size_t)dlen);
	OPENSSL_free(der);
	if (dh_bytes > 0) {
		add(m, "\x0c", 1);
		add24(m, 2 + dh_bytes + 3 + 3);
		add16(m, dh_bytes);
		add(m, "\x80", 1); /* top bit set: 8 * dh_bytes bits */
		for (size_t i = 1; i < dh_bytes; i++)
			add(m, "\x07", 1);
		add16(m, 1);
		add(m, "\x02", 1);
		add16(m, 1);
		add(m, "\x05", 1);
	}
	add(m, "\x0e\x00\x00\x00", 4);
}

/* Wrap messages in records of at most `per` octets. */
static void
records(struct flight *out, const struct flight *m, int version, size_t per)
{
	out->n = 0;
	for (size_t o = 0; o < m->n; o += per) {
		size_t n = m->n - o < per ? m->n - o : per;

		add(out, "\x16", 1);
		add16(out, (size_t)version);
		add16(out, n);
		add(out, m->b + o, n);
	}
}

/* Feed bytes through a socket pair to probe_hello_read(). */
static int
read_flight(const struct flight *wire, struct probe_flight *f)
{
	struct probe_conn c;
	int sv[2], rc;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], wire->b, wire->n), (ssize_t)wire->n);
	close(sv[1]);
	probe_conn_init(&c, 5);
	c.fd = sv[0];
	rc = probe_hello_read(&c, f);
	close(sv[0]);
	return rc;
}

static void
test_read(void **state)
{
	EVP_PKEY *key;
	X509 *cert = rsa_cert(2048, EVP_sha256(), &key);
	struct flight m, wire;
	struct probe_flight f;

	(void)state;
	messages(&m, 0x0301, 0x0016, cert, 128);
	/* whole, and cut into records of 7 octets (messages span them) */
	for (size_t per = 7; per <= 16384; per = per == 7 ? 16384 : 99999) {
		records(&wire, &m, 0x0301, per);
		assert_int_equal(read_flight(&wire, &f), 1);
		assert_true(f.has_hello && f.done);
		assert_int_equal(f.version, 0x0301);
		assert_int_equal(f.suite, 0x0016);
		assert_non_null(f.cert);
		assert_int_equal(X509_cmp(f.cert, cert), 0);
		assert_int_equal(f.ske_len, 2 + 128 + 6);
		X509_free(f.cert);
	}
	/* an alert: refused */
	wire.n = 0;
	add(&wire, "\x15\x03\x01\x00\x02\x02\x28", 7);
	assert_int_equal(read_flight(&wire, &f), 0);
	assert_int_equal(f.alert, 40);
	/* plain text where TLS was expected */
	wire.n = 0;
	add(&wire, "220 mx ESMTP\r\n", 14);
	assert_int_equal(read_flight(&wire, &f), -1);
	/* a truncated flight after the ServerHello still names the suite */
	records(&wire, &m, 0x0301, 16384);
	wire.n = 5 + 42;
	wire.b[3] = 0;
	wire.b[4] = 42;
	assert_int_equal(read_flight(&wire, &f), 1);
	assert_int_equal(f.suite, 0x0016);
	assert_false(f.done);
	/* a message that lies about its length */
	messages(&m, 0x0301, 0x000a, cert, 0);
	m.b[1] = 0;
	m.b[2] = 0;
	m.b[3] = 10; /* ServerHello of 10 octets */
	records(&wire, &m, 0x0301, 16384);
	assert_int_equal(read_flight(&wire, &f), -1);
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void
test_grade(void **state)
{
	EVP_PKEY *k2048, *k1024, *ksha1;
	X509 *c2048 = rsa_cert(2048, EVP_sha256(), &k2048);
	X509 *c1024 = rsa_cert(1024, EVP_sha256(), &k1024);
	X509 *csha1 = rsa_cert(2048, EVP_sha1(), &ksha1);
	struct flight m;
	struct probe_flight f;
	struct probe_suite s;
	static const struct {
		unsigned id;
		int cert; /* 0: 2048, 1: 1024, 2: SHA-1 signed */
		size_t dh;
		char grade;
		const char *kex;
		unsigned warn;
	} cases[] = {
	    /* 3DES (112 bits), RSA 2048: .387 + .114 = .501 */
	    {0x000a, 0, 0, 'C', "rsa 2048", PROBE_SW_64BIT},
	    /* RC4 capped at 80 bits */
	    {0x0005, 0, 0, 'C', "rsa 2048", PROBE_SW_RC4},
	    {0x0004, 0, 0, 'C', "rsa 2048", PROBE_SW_RC4 | PROBE_SW_MD5},
	    /* single DES (56) with RSA 1024: .344 + .114 = .458 */
	    {0x0009, 1, 0, 'D', "rsa 1024", PROBE_SW_64BIT},
	    /* DHE with a 1024-bit group: the lower key counts */
	    {0x0016, 0, 128, 'D', "dh 1024", PROBE_SW_64BIT},
	    {0x0016, 0, 256, 'C', "dh 2048", PROBE_SW_64BIT},
	    /* EXPORT: 512 at most, 40 bits: .172 + .114 = .286 */
	    {0x0008, 0, 0, 'E', "rsa 2048", PROBE_SW_64BIT | PROBE_SW_EXPORT},
	    /* anonymous: F whatever else */
	    {0x001b, 0, 256, 'F', "anonymous", PROBE_SW_ANON | PROBE_SW_64BIT},
	    /* a SHA-1 signed certificate: F (nmap caps it) */
	    {0x000a, 2, 0, 'F', "rsa 2048", PROBE_SW_64BIT | PROBE_SW_WEAKSIG},
	    /* IDEA: 128 bits, but a 64-bit block */
	    {0x0007, 0, 0, 'A', "rsa 2048", PROBE_SW_64BIT},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		X509 *cert = cases[i].cert == 0	  ? c2048
			     : cases[i].cert == 1 ? c1024
						  : csha1;
		struct flight wire;

		messages(&m, 0x0301, cases[i].id, cert, cases[i].dh);
		records(&wire, &m, 0x0301, 16384);
		assert_int_equal(read_flight(&wire, &f), 1);
		probe_hello_grade_id(cases[i].id, &f, &s);
		if (s.grade != cases[i].grade || strcmp(s.kex, cases[i].kex) ||
		    s.warn != cases[i].warn)
			fail_msg("%04x: %s %c (%s, %x), want %c (%s, %x)",
				 cases[i].id, s.name, s.grade, s.kex, s.warn,
				 cases[i].grade, cases[i].kex, cases[i].warn);
		X509_free(f.cert);
	}
	/* SSLv3 is marked (POODLE) */
	messages(&m, 0x0300, 0x002f, c2048, 0);
	{
		struct flight wire;

		records(&wire, &m, 0x0300, 16384);
		assert_int_equal(read_flight(&wire, &f), 1);
		probe_hello_grade_id(0x002f, &f, &s);
		assert_true(s.warn & PROBE_SW_SSL3);
		assert_int_equal(s.grade, 'A');
		X509_free(f.cert);
	}
	probe_hello_grade_id(0x1301, &f, &s); /* not a legacy suite */
	assert_int_equal(s.grade, '?');
	X509_free(c2048);
	X509_free(c1024);
	X509_free(csha1);
	EVP_PKEY_free(k2048);
	EVP_PKEY_free(k1024);
	EVP_PKEY_free(ksha1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_read),
	    cmocka_unit_test(test_grade),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
