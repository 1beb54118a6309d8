/*
 * test_probe_dane.c - tls.dane of `postern probe` without a network
 * (STYLE.md: mock the resolver): DNS answers built byte by byte (RFC 1035
 * section 4.1, TLSA RDATA of RFC 6698 section 2.1) are parsed, and the
 * records are matched against certificates made here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "probe/probe_int.h"

struct msg {
	unsigned char b[8192];
	size_t n;
};

static void
put(struct msg *m, const void *p, size_t n)
{
	assert_true(m->n + n <= sizeof(m->b));
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void
put16(struct msg *m, unsigned v)
{
	unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};

	put(m, b, 2);
}

/* A response for _25._tcp.mx.example.org TLSA; RRs added after. */
static void
msg_start(struct msg *m, bool ad, unsigned ancount)
{
	static const unsigned char qname[] = "\x03_25\x04_tcp\x02mx\x07"
					     "example\x03org";

	m->n = 0;
	put16(m, 0x1234);
	put16(m, 0x8180 | (ad ? 0x20 : 0)); /* QR RD RA (AD) NOERROR */
	put16(m, 1);
	put16(m, ancount);
	put16(m, 0);
	put16(m, 0);
	put(m, qname, sizeof(qname)); /* with the root label */
	put16(m, 52);
	put16(m, 1);
}

/* One answer RR owned by the question's name (a pointer to offset 12). */
static void
msg_rr(struct msg *m, unsigned type, const unsigned char *rdata, size_t len)
{
	put16(m, 0xc00c);
	put16(m, type);
	put16(m, 1);
	put16(m, 0);
	put16(m, 300);
	put16(m, (unsigned)len);
	put(m, rdata, len);
}

static void
msg_tlsa(struct msg *m, unsigned u, unsigned s, unsigned t,
	 const unsigned char *data, size_t len)
{
	unsigned char rd[2100];

	assert_true(len + 3 <= sizeof(rd));
	rd[0] = (unsigned char)u;
	rd[1] = (unsigned char)s;
	rd[2] = (unsigned char)t;
	memcpy(rd + 3, data, len);
	msg_rr(m, 52, rd, len + 3);
}

static void
test_parse(void **state)
{
	static const unsigned char sig[] = "\x00\x34\x0d\x02"; /* RRSIG stub */
	static const unsigned char h[32] = {1, 2, 3};
	struct probe_tlsa t[PROBE_TLSA_MAX];
	struct msg m;
	bool ad;

	(void)state;
	msg_start(&m, true, 3);
	msg_tlsa(&m, 3, 1, 1, h, sizeof(h));
	msg_rr(&m, 46, sig, 4); /* not TLSA: skipped */
	msg_tlsa(&m, 2, 0, 2, h, 16);
	assert_int_equal(
	    probe_dane_parse(m.b, (int)m.n, t, PROBE_TLSA_MAX, &ad), 2);
	assert_true(ad);
	assert_int_equal(t[0].usage, 3);
	assert_int_equal(t[0].selector, 1);
	assert_int_equal(t[0].mtype, 1);
	assert_int_equal(t[0].len, 32);
	assert_memory_equal(t[0].data, h, 32);
	assert_int_equal(t[1].usage, 2);
	assert_int_equal(t[1].len, 16);

	msg_start(&m, false, 1);
	msg_tlsa(&m, 3, 1, 1, h, sizeof(h));
	assert_int_equal(probe_dane_parse(m.b, (int)m.n, t, 1, &ad), 1);
	assert_false(ad);

	/* Cut anywhere inside the answer: malformed, never a read past. */
	for (size_t cut = 0; cut < m.n; cut++) {
		unsigned char *copy = malloc(cut > 0 ? cut : 1);

		memcpy(copy, m.b, cut);
		assert_int_equal(
		    probe_dane_parse(copy, (int)cut, t, PROBE_TLSA_MAX, &ad),
		    -1);
		free(copy);
	}
	/* A lying RDLENGTH (past the end). */
	msg_start(&m, true, 1);
	msg_tlsa(&m, 3, 1, 1, h, sizeof(h));
	m.b[m.n - 35 - 2 + 1] = 0xff;
	assert_int_equal(
	    probe_dane_parse(m.b, (int)m.n, t, PROBE_TLSA_MAX, &ad), -1);
}

static X509 *
make_cert(const char *cn, EVP_PKEY **key_r)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;

	assert_non_null(key);
	assert_non_null(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	*key_r = key;
	return x;
}

/* A TLSA record for x: selector 0 (cert) or 1 (SPKI), mtype 0, 1, 2. */
static void
make_tlsa(struct probe_tlsa *t, X509 *x, unsigned usage, unsigned sel,
	  unsigned mtype)
{
	unsigned char *der = NULL;
	unsigned int mdlen;
	int len = sel == 0 ? i2d_X509(x, &der)
			   : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);

	assert_true(len > 0);
	memset(t, 0, sizeof(*t));
	t->usage = usage;
	t->selector = sel;
	t->mtype = mtype;
	if (mtype == 0) {
		assert_true((size_t)len <= sizeof(t->data));
		memcpy(t->data, der, (size_t)len);
		t->len = (size_t)len;
	} else {
		EVP_Digest(der, (size_t)len, t->data, &mdlen,
			   mtype == 1 ? EVP_sha256() : EVP_sha512(), NULL);
		t->len = mdlen;
	}
	OPENSSL_free(der);
}

static void
test_match(void **state)
{
	EVP_PKEY *k1, *k2;
	X509 *leaf = make_cert("mx.example.org", &k1);
	X509 *ca = make_cert("Example CA", &k2);
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct probe_tlsa t;

	(void)state;
	sk_X509_push(chain, leaf);
	sk_X509_push(chain, ca);
	for (unsigned sel = 0; sel < 2; sel++) {
		for (unsigned mt = 0; mt < 3; mt++) {
			make_tlsa(&t, leaf, 3, sel, mt);
			assert_int_equal(probe_dane_match(&t, chain), 1);
			/* one bit off: no match */
			t.data[t.len - 1] ^= 1;
			assert_int_equal(probe_dane_match(&t, chain), 0);
			/* DANE-TA matches the issuer, not the leaf */
			make_tlsa(&t, ca, 2, sel, mt);
			assert_int_equal(probe_dane_match(&t, chain), 1);
			make_tlsa(&t, leaf, 2, sel, mt);
			assert_int_equal(probe_dane_match(&t, chain), 0);
		}
	}
	/* RFC 7672 3.1.3: PKIX usages are unusable for SMTP. */
	make_tlsa(&t, leaf, 1, 1, 1);
	assert_int_equal(probe_dane_match(&t, chain), -1);
	make_tlsa(&t, ca, 0, 1, 1);
	assert_int_equal(probe_dane_match(&t, chain), -1);
	/* Unknown selector or matching type. */
	make_tlsa(&t, leaf, 3, 1, 1);
	t.selector = 2;
	assert_int_equal(probe_dane_match(&t, chain), -1);
	t.selector = 1;
	t.mtype = 3;
	assert_int_equal(probe_dane_match(&t, chain), -1);
	/* A 3 1 1 record for the leaf when only the CA is sent. */
	make_tlsa(&t, leaf, 3, 1, 1);
	(void)sk_X509_shift(chain);
	assert_int_equal(probe_dane_match(&t, chain), 0);
	sk_X509_free(chain);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
