/*
 * probe_tls.c - the client side of TLS for `postern probe` (OpenSSL 3):
 * two contexts per run, the grading of a suite the way nmap's
 * ssl-enum-ciphers grades it, and tls.certificate. The server side lives
 * in src/daemon/tls.c; nothing is shared but OpenSSL: a client that must
 * offer TLS 1.0 and NULL suites has nothing in common with a server that
 * refuses them.
 *
 * The modern context (TLS 1.2 and 1.3, OpenSSL's defaults) is what a
 * sender of today uses; the legacy one offers every version and suite this
 * OpenSSL has, at security level 0, with the legacy provider loaded (SEED
 * and the like): it is only for finding out what a server still accepts.
 * Neither aborts a handshake on a bad certificate: the verification result
 * is read afterwards and reported by tls.certificate.
 */
#include "probe/probe_int.h"

#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#define PROBE_CERT_WARN_DAYS 14

/* Every group a server might pick, so that a server with only an old
   curve still completes ECDHE; OpenSSL's default list when refused. */
#define PROBE_GROUPS_ALL                                                       \
	"X25519:P-256:X448:P-521:P-384:P-224:ffdhe2048:ffdhe3072:ffdhe4096:"   \
	"ffdhe6144:ffdhe8192:brainpoolP256r1:brainpoolP384r1:"                 \
	"brainpoolP512r1"
#define PROBE_SUITES_13                                                        \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"                       \
	"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:"                 \
	"TLS_AES_128_CCM_8_SHA256"

/* The trust anchors: --ca, else the system store. */
static int
probe_tls_trust(SSL_CTX *ctx, const char *ca)
{
	if (ca != NULL)
		return SSL_CTX_load_verify_locations(ctx, ca, NULL) == 1 ? 0
									 : -1;
	return SSL_CTX_set_default_verify_paths(ctx) == 1 ? 0 : -1;
}

/*
 * The legacy provider holds SEED, IDEA and the like; loading it by name
 * turns off the automatic default provider, so both are loaded. Missing
 * legacy provider: only what the default one has.
 */
static OSSL_PROVIDER *probe_prov_legacy, *probe_prov_default;

static void
probe_tls_providers(void)
{
	if (probe_prov_legacy != NULL)
		return;
	probe_prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
	if (probe_prov_legacy != NULL)
		probe_prov_default = OSSL_PROVIDER_load(NULL, "default");
	ERR_clear_error();
}

int
probe_tls_init(struct probe *pr, const char **error_r)
{
	SSL_CTX *m, *l;

	probe_tls_providers();
	m = SSL_CTX_new(TLS_client_method());
	l = SSL_CTX_new(TLS_client_method());
	pr->tls_modern = m;
	pr->tls_legacy = l;
	if (m == NULL || l == NULL ||
	    SSL_CTX_set_min_proto_version(m, TLS1_2_VERSION) != 1) {
		*error_r = "cannot make a TLS context";
		return -1;
	}
	if (probe_tls_trust(m, pr->o->ca) < 0 ||
	    probe_tls_trust(l, pr->o->ca) < 0) {
		*error_r = "cannot load the trust anchors (--ca)";
		return -1;
	}
	SSL_CTX_set_verify(m, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_verify(l, SSL_VERIFY_NONE, NULL);
	/* Level 0 for the legacy context only: TLS 1.0, SHA-1, NULL. */
	SSL_CTX_set_security_level(l, 0);
	(void)SSL_CTX_set_min_proto_version(l, 0);
	(void)SSL_CTX_set_max_proto_version(l, 0);
	if (SSL_CTX_set_cipher_list(l, "ALL:COMPLEMENTOFALL:@SECLEVEL=0") !=
		1 ||
	    SSL_CTX_set_ciphersuites(l, PROBE_SUITES_13) != 1) {
		*error_r = "cannot set the legacy cipher list";
		return -1;
	}
	if (SSL_CTX_set1_groups_list(l, PROBE_GROUPS_ALL) != 1)
		ERR_clear_error();
	SSL_CTX_set_options(l, SSL_OP_LEGACY_SERVER_CONNECT |
				   SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_options(m, SSL_OP_IGNORE_UNEXPECTED_EOF);
	ERR_clear_error();
	return 0;
}

void
probe_tls_deinit(struct probe *pr)
{
	SSL_CTX_free(pr->tls_modern);
	SSL_CTX_free(pr->tls_legacy);
	pr->tls_modern = pr->tls_legacy = NULL;
	if (probe_prov_default != NULL)
		(void)OSSL_PROVIDER_unload(probe_prov_default);
	if (probe_prov_legacy != NULL)
		(void)OSSL_PROVIDER_unload(probe_prov_legacy);
	probe_prov_default = probe_prov_legacy = NULL;
}

/* ---- nmap's grading --------------------------------------------------------
 */

/*
 * NIST SP 800-57 part 1 equivalents, as nmap's tls.lua rsa_equiv(): the
 * RSA modulus size of the same strength.
 */
int
probe_tls_rsa_equiv(enum probe_kex_type type, int bits)
{
	if (type != PROBE_KEX_EC)
		return bits;
	if (bits < 160)
		return 512;
	if (bits < 224)
		return 1024;
	if (bits < 256)
		return 2048;
	if (bits < 384)
		return 3072;
	if (bits < 512)
		return 7680;
	return 15360;
}

/*
 * nmap ssl-enum-ciphers score_cipher() and letter_grade(): 43% key
 * exchange, 57% cipher strength (SSL Labs' guide without the protocol
 * part); 0 when either is 0 (anonymous, NULL, a broken signature).
 */
char
probe_tls_letter(int kex_strength, int cipher_bits)
{
	double kex, cipher, score;

	if (kex_strength <= 0 || cipher_bits <= 0)
		return 'F';
	kex = kex_strength < 512    ? 0.2
	      : kex_strength < 1024 ? 0.4
	      : kex_strength < 2048 ? 0.8
	      : kex_strength < 4096 ? 0.9
				    : 1.0;
	cipher = cipher_bits < 128 ? 0.2 : cipher_bits < 256 ? 0.8 : 1.0;
	score = 0.43 * kex + 0.57 * cipher;
	if (score >= 0.80)
		return 'A';
	if (score >= 0.65)
		return 'B';
	if (score >= 0.50)
		return 'C';
	if (score >= 0.35)
		return 'D';
	if (score >= 0.20)
		return 'E';
	return 'F';
}

/* ---- the peer of the main session ------------------------------------------
 */

void
probe_tls_note_peer(struct probe_port_state *ps, SSL *ssl)
{
	const SSL_CIPHER *c;
	STACK_OF(X509) * chain;

	if (ssl == NULL)
		return;
	probe_tls_forget_peer(ps);
	ps->verify_result = SSL_get_verify_result(ssl);
	chain = SSL_get_peer_cert_chain(ssl);
	if (chain != NULL)
		ps->chain = X509_chain_up_ref(chain);
	c = SSL_get_current_cipher(ssl);
	(void)snprintf(ps->tls_version, sizeof(ps->tls_version), "%s",
		       SSL_get_version(ssl));
	(void)snprintf(ps->tls_cipher, sizeof(ps->tls_cipher), "%s",
		       c != NULL ? SSL_CIPHER_standard_name(c) : "?");
}

void
probe_tls_forget_peer(struct probe_port_state *ps)
{
	if (ps->chain != NULL)
		sk_X509_pop_free(ps->chain, X509_free);
	ps->chain = NULL;
}

/* ---- tls.certificate ----------------------------------------------------- */

/* The name the certificate must carry, and where it came from. */
static const char *
probe_cert_name(const struct probe_port_state *ps, const char **from_r)
{
	const struct probe *pr = ps->pr;

	if (pr->o->name != NULL) {
		*from_r = "--name";
		return pr->o->name;
	}
	if (!pr->host_is_ip) {
		*from_r = "the target";
		return pr->o->host;
	}
	*from_r = "the greeting";
	return ps->srvname[0] != '[' ? ps->srvname : NULL;
}

/* "EC 256", "RSA 2048"; false when the key is too weak (RSA or DSA under
   2048 bits, EC under 224: NIST SP 800-57 after 2030, and OpenSSL's
   security level 2). */
static bool
probe_cert_key(X509 *leaf, struct probe_buf *b)
{
	EVP_PKEY *pk = X509_get0_pubkey(leaf);
	int bits = pk != NULL ? EVP_PKEY_get_bits(pk) : 0;
	int id = pk != NULL ? EVP_PKEY_get_base_id(pk) : 0;
	const char *type = id == EVP_PKEY_RSA	    ? "RSA"
			   : id == EVP_PKEY_EC	    ? "EC"
			   : id == EVP_PKEY_DSA	    ? "DSA"
			   : id == EVP_PKEY_ED25519 ? "Ed25519"
			   : id == EVP_PKEY_ED448   ? "Ed448"
						    : "unknown";

	probe_buf_addf(b, "; key %s %d", type, bits);
	if (id == EVP_PKEY_EC)
		return bits >= 224;
	if (id == EVP_PKEY_RSA || id == EVP_PKEY_DSA)
		return bits >= 2048;
	return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448;
}

/* The leaf's signature hash; false for MD5 and SHA-1 (nmap: grade F). */
static bool
probe_cert_sig(X509 *leaf, struct probe_buf *b)
{
	int md = NID_undef, pk = NID_undef;
	int nid = X509_get_signature_nid(leaf);

	(void)OBJ_find_sigid_algs(nid, &md, &pk);
	probe_buf_addf(b, ", signed %s", OBJ_nid2sn(nid));
	return md != NID_md5 && md != NID_sha1 && md != NID_md4;
}

void
probe_tls_certificate_check(struct probe_port_state *ps)
{
	X509 *leaf = ps->chain != NULL && sk_X509_num(ps->chain) > 0
			 ? sk_X509_value(ps->chain, 0)
			 : NULL;
	const char *from = NULL, *name = probe_cert_name(ps, &from);
	struct probe_buf b = {0};
	bool bad = false, warn = false;
	int days = 0, secs = 0;

	if (leaf == NULL) {
		probe_set(ps->out, PC_TLS_CERTIFICATE,
			  ps->tls_works ? PROBE_FAIL : PROBE_SKIP, "%s",
			  ps->tls_works ? "the server sent no certificate"
					: "no TLS on this port");
		return;
	}
	if (ps->verify_result == X509_V_OK)
		probe_buf_addf(&b, "chain verified against %s",
			       ps->pr->o->ca_is_self_signed
				   ? "the configured self-signed certificate"
			       : ps->pr->o->ca != NULL ? ps->pr->o->ca
						       : "the system store");
	else {
		bad = true;
		probe_buf_addf(
		    &b, "chain not verified: %s",
		    X509_verify_cert_error_string(ps->verify_result));
	}
	if (name == NULL) {
		warn = true;
		probe_buf_addf(&b, "; name not checked (give --name)");
	} else if (X509_check_host(leaf, name, strlen(name),
				   X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
				   NULL) == 1) {
		probe_buf_addf(&b, "; name %s (from %s) matches", name, from);
	} else {
		bad = true;
		probe_buf_addf(&b, "; name %s (from %s) does not match", name,
			       from);
	}
	if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
		bad = true;
		probe_buf_addf(&b, "; not valid yet");
	} else if (ASN1_TIME_diff(&days, &secs, NULL,
				  X509_get0_notAfter(leaf)) != 1 ||
		   days < 0 || (days == 0 && secs <= 0)) {
		bad = true;
		probe_buf_addf(&b, "; expired");
	} else {
		warn |= days < PROBE_CERT_WARN_DAYS;
		probe_buf_addf(&b, "; %d days left", days);
	}
	bad |= !probe_cert_key(leaf, &b);
	bad |= !probe_cert_sig(leaf, &b);
	probe_set_owned(ps->out, PC_TLS_CERTIFICATE,
			bad    ? PROBE_FAIL
			: warn ? PROBE_WARN
			       : PROBE_PASS,
			probe_buf_take(&b));
}
