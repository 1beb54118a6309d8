/*
 * test_tls.c - the server side of tls.c, in process: real handshakes
 * between an OpenSSL client and tls_server_ssl() over a BIO pair, pumped in
 * bounded loops. Certificates live in a temporary directory: certs[0] is
 * made by tls_server_new() itself (tls_self_signed), the others by
 * make_cert() below (RSA for one name, EC for a wildcard, CN only).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "daemon/tls.h"

#define PUMP_ROUNDS 100

/* The seam in tls.c (a weak symbol): 0 means the real time. */
time_t tls_clock(void);
static time_t test_now;

time_t
tls_clock(void)
{
	return test_now != 0 ? test_now : time(NULL);
}

static char dir[64];
static char path_cert0[128], path_key0[128];
static char path_cert1[128], path_key1[128]; /* RSA, other.test */
static char path_cert2[128], path_key2[128]; /* EC, *.wild.test */
static char path_cert3[128], path_key3[128]; /* EC, CN cn.test only */
static const unsigned char secret1[32] = "0123456789abcdef0123456789abcde";
static const unsigned char secret2[32] = "fedcba9876543210fedcba987654321";

/* ---- helpers ------------------------------------------------------- */

static void
join(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

/*
 * Write a self-signed certificate for `cn` (and SAN DNS `san` unless NULL)
 * with a new key: RSA 2048 when `rsa`, else EC P-256.
 */
static void
make_cert(const char *cert, const char *key, const char *cn, const char *san,
	  bool rsa)
{
	EVP_PKEY *pk = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX v3;
	FILE *fp;

	assert_non_null(pk);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pk);
	X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
				   MBSTRING_ASC, (const unsigned char *)cn, -1,
				   -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (san != NULL) {
		char v[128];
		X509_EXTENSION *e;
		int n = snprintf(v, sizeof(v), "DNS:%s", san);

		assert_true(n > 0 && (size_t)n < sizeof(v));
		X509V3_set_ctx_nodb(&v3);
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, v);
		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	fp = fopen(cert, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
	fp = fopen(key, "w");
	assert_non_null(fp);
	assert_int_equal(
	    PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
cfg_init(struct config *cfg, struct config_cert *certs, size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->hostname = (char *)"mx.local.test";
	cfg->certs = certs;
	cfg->n_certs = n;
	cfg->tls_self_signed = true;
}

/* A server with the four test certificates. */
static struct tls_server *
server_new(const unsigned char *secret)
{
	struct config_cert certs[4] = {
	    {path_cert0, path_key0, 1},
	    {path_cert1, path_key1, 2},
	    {path_cert2, path_key2, 3},
	    {path_cert3, path_key3, 4},
	};
	struct config cfg;
	struct tls_server *tls = NULL;

	cfg_init(&cfg, certs, 4);
	assert_int_equal(tls_server_new(&cfg, secret, &tls, stderr), 0);
	assert_non_null(tls);
	return tls;
}

struct client_opts {
	int min, max;	      /* 0: library default */
	const char *ciphers;  /* TLS 1.2 list, or NULL */
	const char *suites;   /* TLS 1.3 list, or NULL */
	const char *sni;      /* or NULL */
	const char *alpn;     /* comma-separated, or NULL */
	SSL_SESSION *session; /* to resume, or NULL */
	bool weak;	      /* security level 0 on the client */
};

struct conn {
	SSL *c, *s;
	bool ok;
	char reason[512]; /* the server's, on failure */
};

/* Encode "a,b" as an ALPN wire list. */
static unsigned
alpn_wire(const char *list, unsigned char *out, size_t size)
{
	unsigned o = 0;
	const char *p = list;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");

		assert_true(o + 1 + n <= size);
		out[o++] = (unsigned char)n;
		memcpy(out + o, p, n);
		o += (unsigned)n;
		p += n;
		if (*p == ',')
			p++;
	}
	return o;
}

/*
 * Drive both ends until both finished or one failed (bounded). The
 * server's failure reason is taken from the error queue right after the
 * server's failing call, so client errors never mix in.
 */
static bool
pump(SSL *c, SSL *s, char *reason, size_t rsize)
{
	int cst = 0, sst = 0; /* 0 running, 1 done, -1 failed */

	reason[0] = '\0';
	for (int i = 0; i < PUMP_ROUNDS && (cst == 0 || sst == 0); i++) {
		int rc, e;

		if (cst == 0) {
			ERR_clear_error();
			rc = SSL_do_handshake(c);
			e = SSL_get_error(c, rc);
			if (rc == 1)
				cst = 1;
			else if (e != SSL_ERROR_WANT_READ &&
				 e != SSL_ERROR_WANT_WRITE)
				cst = -1;
			ERR_clear_error();
		}
		if (sst == 0) {
			ERR_clear_error();
			rc = SSL_do_handshake(s);
			e = SSL_get_error(s, rc);
			if (rc == 1) {
				sst = 1;
			} else if (e != SSL_ERROR_WANT_READ &&
				   e != SSL_ERROR_WANT_WRITE) {
				sst = -1;
				tls_error_reason(reason, rsize);
			}
			ERR_clear_error();
		}
		if (cst == -1 && sst == 0 && i > 4)
			break;
	}
	return cst == 1 && sst == 1;
}

static SSL_CTX *
client_ctx(const struct client_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (o->weak)
		SSL_CTX_set_security_level(ctx, 0);
	if (o->min != 0)
		assert_int_equal(SSL_CTX_set_min_proto_version(ctx, o->min), 1);
	if (o->max != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(ctx, o->max), 1);
	if (o->ciphers != NULL)
		assert_int_equal(SSL_CTX_set_cipher_list(ctx, o->ciphers), 1);
	if (o->suites != NULL)
		assert_int_equal(SSL_CTX_set_ciphersuites(ctx, o->suites), 1);
	/* No client cache: freeing the context would flush it and mark our
	   sessions not resumable. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

/* One handshake with `tls`; the caller frees with conn_free(). */
static void
connect_to(struct tls_server *tls, const struct client_opts *o, struct conn *cn)
{
	SSL_CTX *cctx = client_ctx(o);
	BIO *cb = NULL, *sb = NULL;

	memset(cn, 0, sizeof(*cn));
	cn->c = SSL_new(cctx);
	SSL_CTX_free(cctx); /* the SSL keeps its reference */
	cn->s = tls_server_ssl(tls);
	assert_non_null(cn->c);
	assert_non_null(cn->s);
	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(cn->c, cb, cb);
	SSL_set_bio(cn->s, sb, sb);
	SSL_set_connect_state(cn->c);
	SSL_set_accept_state(cn->s);
	if (o->sni != NULL)
		assert_int_equal(SSL_set_tlsext_host_name(cn->c, o->sni), 1);
	if (o->alpn != NULL) {
		unsigned char wire[64];
		unsigned n = alpn_wire(o->alpn, wire, sizeof(wire));

		assert_int_equal(SSL_set_alpn_protos(cn->c, wire, n), 0);
	}
	if (o->session != NULL)
		assert_int_equal(SSL_set_session(cn->c, o->session), 1);
	cn->ok = pump(cn->c, cn->s, cn->reason, sizeof(cn->reason));
}

/*
 * Close both ends with close_notify first: OpenSSL marks the session of a
 * connection freed without it as not resumable (ssl_clear_bad_session).
 */
static void
conn_free(struct conn *cn)
{
	if (cn->ok) {
		(void)SSL_shutdown(cn->c);
		(void)SSL_shutdown(cn->s);
		ERR_clear_error();
	}
	SSL_free(cn->c);
	SSL_free(cn->s);
	cn->c = cn->s = NULL;
}

/*
 * After the handshake, let the client read what the server sent after it
 * (TLS 1.3 NewSessionTicket), then return the client's session.
 */
static SSL_SESSION *
client_session(struct conn *cn)
{
	char buf[16];

	for (int i = 0; i < 4; i++) {
		ERR_clear_error();
		(void)SSL_read(cn->c, buf, sizeof(buf));
		(void)SSL_read(cn->s, buf, sizeof(buf));
	}
	ERR_clear_error();
	return SSL_get1_session(cn->c);
}

static bool
peer_is(struct conn *cn, const char *host)
{
	X509 *x = SSL_get0_peer_certificate(cn->c);

	return x != NULL && X509_check_host(x, host, 0, 0, NULL) == 1;
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

/* ---- fixtures ------------------------------------------------------ */

static int
group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_tls.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	join(path_cert0, sizeof(path_cert0), "dev/tls/cert.pem");
	join(path_key0, sizeof(path_key0), "dev/tls/key.pem");
	join(path_cert1, sizeof(path_cert1), "other.crt");
	join(path_key1, sizeof(path_key1), "other.key");
	join(path_cert2, sizeof(path_cert2), "wild.crt");
	join(path_key2, sizeof(path_key2), "wild.key");
	join(path_cert3, sizeof(path_cert3), "cn.crt");
	join(path_key3, sizeof(path_key3), "cn.key");
	make_cert(path_cert1, path_key1, "other.test", "other.test", true);
	make_cert(path_cert2, path_key2, "wild", "*.wild.test", false);
	make_cert(path_cert3, path_key3, "cn.test", NULL, false);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- tests --------------------------------------------------------- */

static void
test_hostname_valid(void **state)
{
	static const struct {
		const char *name;
		size_t len; /* 0: strlen */
		bool valid;
	} cases[] = {
	    {"a", 0, true},
	    {"mx.local.test", 0, true},
	    {"MX.Local.TEST", 0, true},
	    {"xn--bcher-kva.example", 0, true},
	    {"a-b.c-d.e", 0, true},
	    {"127.0.0.1", 0, true},
	    {"", 0, false},
	    {".", 0, false},
	    {"a.", 0, false}, /* RFC 6066: no trailing dot */
	    {".a", 0, false},
	    {"a..b", 0, false},
	    {"-a.b", 0, false},
	    {"a-.b", 0, false},
	    {"a.-b", 0, false},
	    {"a.b-", 0, false},
	    {"a_b.test", 0, false},
	    {"a b", 0, false},
	    {"*.wild.test", 0, false},
	    {"x\\", 0, false},
	    {"x\\\0", 3, false}, /* Exim CVE-2019-15846 */
	    {"a\0b", 3, false},
	    {"mx.test\0", 8, false},
	    {"caf\xc3\xa9.test", 0, false},
	    {"a\r\nb", 0, false},
	    {"a/b", 0, false},
	    {"a:25", 0, false},
	};
	char label63[64], label64[65], long253[254], long254[255];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len =
		    cases[i].len ? cases[i].len : strlen(cases[i].name);

		if (tls_hostname_valid(cases[i].name, len) != cases[i].valid)
			fail_msg("case %zu: \"%s\"", i, cases[i].name);
	}
	assert_false(tls_hostname_valid(NULL, 3));
	memset(label63, 'a', 63);
	label63[63] = '\0';
	assert_true(tls_hostname_valid(label63, 63));
	memset(label64, 'a', 64);
	label64[64] = '\0';
	assert_false(tls_hostname_valid(label64, 64));
	/* 253 octets: labels of 63+1+63+1+63+1+61 */
	memset(long253, 'b', 253);
	long253[63] = long253[127] = long253[191] = '.';
	long253[253] = '\0';
	assert_true(tls_hostname_valid(long253, 253));
	memcpy(long254, long253, 253);
	long254[253] = 'b';
	long254[254] = '\0';
	assert_false(tls_hostname_valid(long254, 254));
}

/* certs[0] made on first start: files, modes, and the certificate. */
static void
test_self_signed_created(void **state)
{
	char tlsdir[128], devdir[128], *first = NULL, *second = NULL;
	struct config_cert certs[1] = {{path_cert0, path_key0, 1}};
	struct config cfg;
	struct tls_server *tls = NULL;
	struct stat st;
	size_t n1 = 0, n2 = 0;
	FILE *fp;
	X509 *x;
	EVP_PKEY *pk;
	int crit = 0, count = 0;
	DIR *d;
	struct dirent *de;
	GENERAL_NAMES *gens;
	BASIC_CONSTRAINTS *bc;
	char name[16] = "";

	(void)state;
	join(devdir, sizeof(devdir), "dev");
	join(tlsdir, sizeof(tlsdir), "dev/tls");
	assert_int_equal(stat(devdir, &st), -1);
	cfg_init(&cfg, certs, 1);
	assert_int_equal(tls_server_new(&cfg, secret1, &tls, stderr), 0);
	tls_server_free(&tls);
	assert_null(tls);

	assert_int_equal(stat(tlsdir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(path_key0, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(path_cert0, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	d = opendir(tlsdir); /* no temporary file left behind */
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			count++;
	closedir(d);
	assert_int_equal(count, 2);

	fp = fopen(path_cert0, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
				  name, sizeof(name));
	assert_string_equal(name, "mx.local.test");
	{
		/* A client that pins the file as its CA accepts it (what the
		   integration tests and `swaks --tls-ca-path` do). */
		X509_STORE *store = X509_STORE_new();
		X509_STORE_CTX *vc = X509_STORE_CTX_new();
		int ok;

		assert_int_equal(X509_STORE_add_cert(store, x), 1);
		assert_int_equal(X509_STORE_CTX_init(vc, store, x, NULL), 1);
		X509_STORE_CTX_set_purpose(vc, X509_PURPOSE_SSL_SERVER);
		X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(vc),
					    "mx.local.test", 0);
		ok = X509_verify_cert(vc);
		if (ok != 1)
			fail_msg("verify: %s",
				 X509_verify_cert_error_string(
				     X509_STORE_CTX_get_error(vc)));
		X509_STORE_CTX_free(vc);
		X509_STORE_free(store);
	}
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
	{
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
		int type;
		ASN1_IA5STRING *v = GENERAL_NAME_get0_value(g, &type);

		assert_int_equal(type, GEN_DNS);
		assert_int_equal(ASN1_STRING_length(v), 13);
		assert_memory_equal(ASN1_STRING_get0_data(v), "mx.local.test",
				    13);
	}
	GENERAL_NAMES_free(gens);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(bc->ca, 0);
	assert_int_equal(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	{
		time_t now = time(NULL), t = now - 3000;
		int days = 0, secs = 0;

		/* not before ~ now - 1h, not after ~ now + 365 days */
		assert_true(X509_cmp_time(X509_get0_notBefore(x), &t) < 0);
		t = now - 4000;
		assert_true(X509_cmp_time(X509_get0_notBefore(x), &t) > 0);
		assert_int_equal(
		    ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)),
		    1);
		assert_true(days == 365 || (days == 364 && secs > 86000));
	}
	{
		const ASN1_INTEGER *sn = X509_get0_serialNumber(x);

		assert_true(ASN1_STRING_length(sn) >= 15);
	}
	pk = X509_get0_pubkey(x);
	assert_non_null(pk);
	assert_true(EVP_PKEY_is_a(pk, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pk), 256);
	X509_free(x);

	/* A second start keeps the files. */
	fp = fopen(path_cert0, "r");
	assert_non_null(fp);
	assert_int_equal(getdelim(&first, &n1, '\0', fp) > 0, 1);
	fclose(fp);
	assert_int_equal(tls_server_new(&cfg, secret1, &tls, stderr), 0);
	tls_server_free(&tls);
	fp = fopen(path_cert0, "r");
	assert_non_null(fp);
	assert_int_equal(getdelim(&second, &n2, '\0', fp) > 0, 1);
	fclose(fp);
	assert_string_equal(first, second);
	free(first);
	free(second);
}

static void
test_tls13(void **state)
{
	static const struct {
		const char *suites;
		bool ok;
	} cases[] = {
	    {NULL, true},
	    {"TLS_AES_128_GCM_SHA256", true},
	    {"TLS_AES_256_GCM_SHA384", true},
	    {"TLS_CHACHA20_POLY1305_SHA256", true},
	    {"TLS_AES_128_CCM_SHA256", false},
	    {"TLS_AES_128_CCM_8_SHA256", false},
	};
	struct tls_server *tls = server_new(secret1);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct client_opts o = {.min = TLS1_3_VERSION,
					.suites = cases[i].suites};
		struct conn cn;
		char v[32], c[64];

		connect_to(tls, &o, &cn);
		if (cn.ok != cases[i].ok)
			fail_msg("case %zu (%s): ok=%d reason=%s", i,
				 cases[i].suites, cn.ok, cn.reason);
		if (cn.ok) {
			tls_describe(cn.s, v, sizeof(v), c, sizeof(c));
			assert_string_equal(v, "TLSv1.3");
			if (cases[i].suites != NULL)
				assert_string_equal(c, cases[i].suites);
			assert_true(peer_is(&cn, "mx.local.test"));
			assert_null(tls_sni(cn.s));
		} else {
			assert_non_null(strstr(cn.reason, "no shared cipher"));
		}
		conn_free(&cn);
	}
	tls_server_free(&tls);
}

/*
 * TLS 1.2: only ECDHE with AES-GCM or ChaCha20-Poly1305. The EC default
 * certificate serves the ECDSA suites, "other.test" (RSA) the RSA ones.
 */
static void
test_tls12_ciphers(void **state)
{
	static const struct {
		const char *ciphers;
		const char *sni;
		bool ok;
	} cases[] = {
	    {NULL, NULL, true},
	    {"ECDHE-ECDSA-AES128-GCM-SHA256", NULL, true},
	    {"ECDHE-ECDSA-AES256-GCM-SHA384", NULL, true},
	    {"ECDHE-ECDSA-CHACHA20-POLY1305", NULL, true},
	    {"ECDHE-RSA-AES128-GCM-SHA256", "other.test", true},
	    {"ECDHE-RSA-AES256-GCM-SHA384", "other.test", true},
	    {"ECDHE-RSA-CHACHA20-POLY1305", "other.test", true},
	    {"ECDHE-ECDSA-AES128-SHA256", NULL, false}, /* CBC */
	    {"ECDHE-ECDSA-AES256-SHA", NULL, false},
	    {"ECDHE-RSA-AES128-SHA", "other.test", false},
	    {"AES128-GCM-SHA256", "other.test", false}, /* no PFS */
	    {"AES256-SHA256", "other.test", false},
	    {"DHE-RSA-AES128-GCM-SHA256", "other.test", false},
	    {"RC4:3DES:NULL:aNULL:EXPORT", NULL, false},
	    {"RC4:3DES:NULL:aNULL:EXPORT", "other.test", false},
	};
	struct tls_server *tls = server_new(secret1);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct client_opts o = {.max = TLS1_2_VERSION,
					.ciphers = cases[i].ciphers,
					.sni = cases[i].sni,
					.weak = true};
		struct conn cn;
		char v[32], c[64];

		connect_to(tls, &o, &cn);
		if (cn.ok != cases[i].ok)
			fail_msg("case %zu (%s): ok=%d reason=%s", i,
				 cases[i].ciphers, cn.ok, cn.reason);
		if (cn.ok) {
			tls_describe(cn.s, v, sizeof(v), c, sizeof(c));
			assert_string_equal(v, "TLSv1.2");
			assert_int_equal(strncmp(c, "ECDHE-", 6), 0);
			assert_true(strstr(c, "GCM") != NULL ||
				    strstr(c, "CHACHA20") != NULL);
			if (cases[i].ciphers != NULL)
				assert_string_equal(c, cases[i].ciphers);
		} else {
			/* The client did offer something: the server said no.
			 */
			STACK_OF(SSL_CIPHER) *sk =
			    SSL_get1_supported_ciphers(cn.c);

			assert_true(sk_SSL_CIPHER_num(sk) > 0);
			sk_SSL_CIPHER_free(sk);
			assert_non_null(strstr(cn.reason, "no shared cipher"));
		}
		conn_free(&cn);
	}
	tls_server_free(&tls);
}

/* TLS 1.0 and 1.1 are refused by the server (the client offers them). */
static void
test_old_protocols(void **state)
{
	static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION};
	struct tls_server *tls = server_new(secret1);

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct client_opts o = {.min = versions[i],
					.max = versions[i],
					.ciphers = "ALL:@SECLEVEL=0",
					.weak = true};
		struct conn cn;

		connect_to(tls, &o, &cn);
		assert_false(cn.ok);
		if (strstr(cn.reason, "unsupported protocol") == NULL)
			fail_msg("version %x: %s", versions[i], cn.reason);
		conn_free(&cn);
	}
	tls_server_free(&tls);
}

/* THREATS T-08: ALPN without "smtp" fails with no_application_protocol. */
static void
test_alpn(void **state)
{
	static const struct {
		const char *alpn;
		int max;
		bool ok;
		bool selected;
	} cases[] = {
	    {NULL, 0, true, false},
	    {"smtp", 0, true, true},
	    {"smtp", TLS1_2_VERSION, true, true},
	    {"http/1.1,smtp", 0, true, true},
	    {"h2,smtp,imap", 0, true, true},
	    {"http/1.1", 0, false, false},
	    {"http/1.1", TLS1_2_VERSION, false, false},
	    {"h2,http/1.1", 0, false, false},
	    {"smtps", 0, false, false},
	    {"smt", 0, false, false},
	    {"SMTP", 0, false, false},
	};
	struct tls_server *tls = server_new(secret1);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct client_opts o = {.max = cases[i].max,
					.alpn = cases[i].alpn};
		struct conn cn;
		const unsigned char *sel = NULL;
		unsigned len = 0;

		connect_to(tls, &o, &cn);
		if (cn.ok != cases[i].ok)
			fail_msg("case %zu (%s): ok=%d reason=%s", i,
				 cases[i].alpn, cn.ok, cn.reason);
		if (cn.ok) {
			SSL_get0_alpn_selected(cn.c, &sel, &len);
			if (cases[i].selected) {
				assert_int_equal(len, 4);
				assert_memory_equal(sel, "smtp", 4);
			} else {
				assert_int_equal(len, 0);
			}
		} else {
			assert_non_null(
			    strstr(cn.reason, "no application protocol"));
		}
		conn_free(&cn);
	}
	tls_server_free(&tls);
}

/* SNI chooses the certificate; bad names abort (THREATS T-07). */
static void
test_sni(void **state)
{
	static const struct {
		const char *sni;
		int max;
		bool ok;
		const char *cert;   /* host the served certificate is for */
		const char *stored; /* what tls_sni() returns */
	} cases[] = {
	    {NULL, 0, true, "mx.local.test", NULL},
	    {"mx.local.test", 0, true, "mx.local.test", "mx.local.test"},
	    {"other.test", 0, true, "other.test", "other.test"},
	    {"Other.TEST", 0, true, "other.test", "other.test"},
	    {"other.test", TLS1_2_VERSION, true, "other.test", "other.test"},
	    {"a.wild.test", 0, true, "a.wild.test", "a.wild.test"},
	    {"a.b.wild.test", 0, true, "mx.local.test", "a.b.wild.test"},
	    {"wild.test", 0, true, "mx.local.test", "wild.test"},
	    {"cn.test", 0, true, "cn.test", "cn.test"},
	    {"unknown.test", 0, true, "mx.local.test", "unknown.test"},
	    {"x\\", 0, false, NULL, NULL},
	    {"x\\", TLS1_2_VERSION, false, NULL, NULL},
	    {"bad_name.test", 0, false, NULL, NULL},
	    {"a..b", 0, false, NULL, NULL},
	    {"trailing.dot.", 0, false, NULL, NULL},
	    {"-lead.test", 0, false, NULL, NULL},
	    {"*.wild.test", 0, false, NULL, NULL},
	    {"evil)\r\nX-Injected: 1", 0, false, NULL, NULL},
	};
	struct tls_server *tls = server_new(secret1);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct client_opts o = {.max = cases[i].max,
					.sni = cases[i].sni};
		struct conn cn;

		connect_to(tls, &o, &cn);
		if (cn.ok != cases[i].ok)
			fail_msg("case %zu (%s): ok=%d reason=%s", i,
				 cases[i].sni, cn.ok, cn.reason);
		if (cn.ok) {
			if (!peer_is(&cn, cases[i].cert))
				fail_msg("case %zu: not the %s certificate", i,
					 cases[i].cert);
			if (cases[i].stored == NULL)
				assert_null(tls_sni(cn.s));
			else
				assert_string_equal(tls_sni(cn.s),
						    cases[i].stored);
		} else {
			assert_null(tls_sni(cn.s));
			assert_non_null(
			    strstr(cn.reason, "invalid SNI host name"));
		}
		conn_free(&cn);
	}
	tls_server_free(&tls);
}

static int server_alert;

static void
server_info(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	if ((where & SSL_CB_WRITE_ALERT) && server_alert == 0)
		server_alert = ret;
}

/*
 * THREATS T-05: a client-initiated renegotiation never completes; the
 * server answers it with a no_renegotiation alert (RFC 5246 section
 * 7.2.2) and the client gives up.
 */
static void
test_renegotiation(void **state)
{
	struct tls_server *tls = server_new(secret1);
	struct client_opts o = {.max = TLS1_2_VERSION};
	struct conn cn;
	char buf[16], reason[256] = "";
	int crc = 0, cerr = 0;

	(void)state;
	connect_to(tls, &o, &cn);
	assert_true(cn.ok);
	assert_true(SSL_get_options(cn.s) & SSL_OP_NO_RENEGOTIATION);
	assert_int_equal(SSL_get_secure_renegotiation_support(cn.c), 1);
	server_alert = 0;
	SSL_set_info_callback(cn.s, server_info);
	assert_int_equal(SSL_renegotiate(cn.c), 1);
	for (int i = 0; i < 10; i++) {
		ERR_clear_error();
		crc = SSL_do_handshake(cn.c);
		cerr = SSL_get_error(cn.c, crc);
		tls_error_reason(reason, sizeof(reason));
		(void)SSL_read(cn.s, buf, sizeof(buf));
		ERR_clear_error();
		if (crc == 1 || (cerr != SSL_ERROR_WANT_READ &&
				 cerr != SSL_ERROR_WANT_WRITE))
			break;
	}
	assert_int_not_equal(crc, 1);
	assert_int_equal(cerr, SSL_ERROR_SSL);
	assert_non_null(strstr(reason, "no renegotiation"));
	assert_int_equal(server_alert,
			 (SSL3_AL_WARNING << 8) | SSL_AD_NO_RENEGOTIATION);
	conn_free(&cn);
	tls_server_free(&tls);
}

/*
 * Tickets: a session from one server resumes on another made with the
 * same secret (two workers), not on one with another secret.
 */
static void
test_resumption(void **state)
{
	static const int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
	struct tls_server *a = server_new(secret1);
	struct tls_server *b = server_new(secret1);
	struct tls_server *c = server_new(secret2);

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct client_opts o = {.max = versions[i]};
		struct conn cn;
		SSL_SESSION *sess;

		connect_to(a, &o, &cn);
		assert_true(cn.ok);
		assert_int_equal(SSL_session_reused(cn.c), 0);
		sess = client_session(&cn);
		conn_free(&cn);
		assert_non_null(sess);
		assert_int_equal(SSL_SESSION_has_ticket(sess), 1);

		o.session = sess;
		connect_to(b, &o, &cn);
		assert_true(cn.ok);
		assert_int_equal(SSL_session_reused(cn.c), 1);
		assert_int_equal(SSL_session_reused(cn.s), 1);
		conn_free(&cn);

		connect_to(c, &o, &cn);
		assert_true(cn.ok);
		assert_int_equal(SSL_session_reused(cn.c), 0);
		assert_int_equal(SSL_session_reused(cn.s), 0);
		conn_free(&cn);
		SSL_SESSION_free(sess);
	}
	tls_server_free(&a);
	tls_server_free(&b);
	tls_server_free(&c);
}

static bool
same_ticket(SSL_SESSION *x, SSL_SESSION *y)
{
	const unsigned char *tx, *ty;
	size_t lx, ly;

	SSL_SESSION_get0_ticket(x, &tx, &lx);
	SSL_SESSION_get0_ticket(y, &ty, &ly);
	return lx == ly && memcmp(tx, ty, lx) == 0;
}

/*
 * Key rotation: the current hour's key and the previous one are taken
 * (the previous one renews the ticket); older tickets mean a full
 * handshake. TLS 1.2 shows renewal: without it no new ticket is sent.
 */
static void
test_ticket_rotation(void **state)
{
	static const struct {
		time_t offset;
		bool reused;
		bool renewed;
	} steps[] = {
	    {0, true, false},	  {1799, true, false},
	    {1800, true, true}, /* next hour */
	    {3599, true, true},	  {5399, true, true},
	    {5400, false, true}, /* two hours on: full handshake */
	    {36000, false, true},
	};
	struct tls_server *tls = server_new(secret1);
	struct client_opts o = {.max = TLS1_2_VERSION};
	time_t base = (time(NULL) / 3600 + 1) * 3600 + 1800;
	struct conn cn;
	SSL_SESSION *first;

	(void)state;
	test_now = base;
	connect_to(tls, &o, &cn);
	assert_true(cn.ok);
	first = client_session(&cn);
	conn_free(&cn);
	assert_non_null(first);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		SSL_SESSION *now;

		test_now = base + steps[i].offset;
		o.session = first;
		connect_to(tls, &o, &cn);
		assert_true(cn.ok);
		now = client_session(&cn);
		assert_non_null(now);
		if (SSL_session_reused(cn.s) != steps[i].reused ||
		    same_ticket(first, now) == steps[i].renewed)
			fail_msg("step %zu: reused=%d renewed=%d", i,
				 SSL_session_reused(cn.s),
				 !same_ticket(first, now));
		SSL_SESSION_free(now);
		conn_free(&cn);
	}
	SSL_SESSION_free(first);
	test_now = 0;
	tls_server_free(&tls);
}

/* The server stays usable by its SSLs after tls_server_free (reload). */
static void
test_free_while_connecting(void **state)
{
	struct tls_server *tls = server_new(secret1);
	struct client_opts o = {.sni = "other.test"};
	SSL_CTX *cctx = client_ctx(&o);
	SSL *s = tls_server_ssl(tls), *c = SSL_new(cctx);
	BIO *cb, *sb;
	char reason[256];

	(void)state;
	tls_server_free(&tls);
	assert_null(tls);
	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	SSL_set_tlsext_host_name(c, "other.test");
	assert_true(pump(c, s, reason, sizeof(reason)));
	assert_string_equal(tls_sni(s), "other.test");
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
}

/* Errors: each names the file and says what is wrong. */
static void
test_load_errors(void **state)
{
	char missing[128], garbage[128];
	struct {
		const char *cert, *key;
		bool self_signed;
		const char *hostname;
		const char *expect1, *expect2;
	} cases[] = {
	    {path_cert1, path_key2, false, NULL, "does not match", path_key2},
	    {path_cert2, path_key1, true, NULL, "does not match", path_cert2},
	    {missing, path_key1, false, NULL, missing,
	     "No such file or directory"},
	    {path_cert1, missing, false, NULL, missing,
	     "No such file or directory"},
	    {garbage, path_key1, false, NULL, garbage, "tls: "},
	    {path_cert1, garbage, false, NULL, garbage, "tls: "},
	    {missing, garbage, true, "bad_host", "not a valid DNS name",
	     "self-signed"},
	    {dir, path_key1, false, NULL, dir, "not a regular file"},
	};
	FILE *fp;

	(void)state;
	join(missing, sizeof(missing), "missing/cert.pem");
	join(garbage, sizeof(garbage), "garbage.pem");
	fp = fopen(garbage, "w");
	assert_non_null(fp);
	fputs("-----BEGIN CERTIFICATE-----\nnot base64\n", fp);
	fclose(fp);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_cert certs[1] = {
		    {(char *)cases[i].cert, (char *)cases[i].key, 1}};
		struct config cfg;
		struct tls_server *tls = (struct tls_server *)&cfg;
		char *text = NULL;
		size_t size = 0;
		FILE *err = open_memstream(&text, &size);

		assert_non_null(err);
		cfg_init(&cfg, certs, 1);
		cfg.tls_self_signed = cases[i].self_signed;
		if (cases[i].hostname != NULL)
			cfg.hostname = (char *)cases[i].hostname;
		assert_int_equal(tls_server_new(&cfg, secret1, &tls, err), -1);
		assert_null(tls);
		fclose(err);
		if (strstr(text, cases[i].expect1) == NULL ||
		    strstr(text, cases[i].expect2) == NULL ||
		    strncmp(text, "tls: ", 5) != 0)
			fail_msg("case %zu: %s", i, text);
		free(text);
	}
	{
		struct config cfg;
		struct tls_server *tls = NULL;
		FILE *err = fopen("/dev/null", "w");

		cfg_init(&cfg, NULL, 0);
		assert_int_equal(tls_server_new(&cfg, secret1, &tls, err), -1);
		fclose(err);
	}
	assert_int_equal(ERR_peek_error(), 0);
	unlink(garbage);
}

static void
test_describe_and_reason(void **state)
{
	char v[8], c[4], buf[64];

	(void)state;
	tls_describe(NULL, v, sizeof(v), c, sizeof(c));
	assert_string_equal(v, "none");
	assert_string_equal(c, "non");
	ERR_clear_error();
	tls_error_reason(buf, sizeof(buf));
	assert_string_equal(buf, "no reason given");
	ERR_raise_data(ERR_LIB_SSL, SSL_R_NO_SHARED_CIPHER, "a\001b\nc");
	ERR_raise(ERR_LIB_SSL, SSL_R_UNSUPPORTED_PROTOCOL);
	tls_error_reason(buf, sizeof(buf));
	assert_string_equal(buf,
			    "no shared cipher (a?b?c); unsupported protocol");
	assert_int_equal(ERR_peek_error(), 0);
	for (int i = 0; i < 20; i++)
		ERR_raise(ERR_LIB_SSL, SSL_R_NO_SHARED_CIPHER);
	tls_error_reason(buf, sizeof(buf));
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	assert_int_equal(ERR_peek_error(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostname_valid),
	    cmocka_unit_test(test_self_signed_created),
	    cmocka_unit_test(test_tls13),
	    cmocka_unit_test(test_tls12_ciphers),
	    cmocka_unit_test(test_old_protocols),
	    cmocka_unit_test(test_alpn),
	    cmocka_unit_test(test_sni),
	    cmocka_unit_test(test_renegotiation),
	    cmocka_unit_test(test_resumption),
	    cmocka_unit_test(test_ticket_rotation),
	    cmocka_unit_test(test_free_while_connecting),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_describe_and_reason),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
