/*
 * probe_tls_scan.c - tls.protocols and tls.ciphers: which TLS versions a
 * port accepts and every suite it accepts in each, found the way nmap's
 * ssl-enum-ciphers finds them: offer all suites of one version, note the
 * one the server picks, offer the rest again, until the server refuses.
 * Each attempt is a new connection (and STARTTLS) and a real handshake
 * with this OpenSSL at security level 0, so a suite is found when both
 * sides have it: what nmap's hand-made ClientHello offers and this
 * OpenSSL lacks (RC4, 3DES, EXPORT in Debian's build) is not tested, and
 * the report says which versions could not be offered. Bounded: at most
 * PROBE_SCAN_HANDSHAKES_MAX handshakes a port.
 */
#include "probe/probe_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#define PROBE_SUITES_MAX 256
#define PROBE_CANDIDATES_MAX 256
#define PROBE_SCAN_HANDSHAKES_MAX 600

enum probe_vstate {
	PROBE_V_UNTESTED = 0, /* this OpenSSL cannot offer it */
	PROBE_V_REFUSED,
	PROBE_V_ACCEPTED,
	PROBE_V_ERROR, /* the scan could not reach the handshake */
};

struct probe_scan {
	struct probe_suite suites[PROBE_SUITES_MAX];
	size_t n;
	enum probe_vstate state[5];
	char note[5][300];
	unsigned handshakes;
	bool stopped;
};

static const struct {
	int version;
	const char *name;
} probe_versions[5] = {
    {SSL3_VERSION, "SSLv3"},	 {TLS1_VERSION, "TLSv1.0"},
    {TLS1_1_VERSION, "TLSv1.1"}, {TLS1_2_VERSION, "TLSv1.2"},
    {TLS1_3_VERSION, "TLSv1.3"},
};

/* A context that offers one version and everything of it. */
static SSL_CTX *
probe_scan_ctx(int version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT |
				     SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, version) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL:@SECLEVEL=0") !=
		1 ||
	    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:"
					  "TLS_AES_256_GCM_SHA384:"
					  "TLS_CHACHA20_POLY1305_SHA256:"
					  "TLS_AES_128_CCM_SHA256:"
					  "TLS_AES_128_CCM_8_SHA256") != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_set1_groups_list(ctx,
				     "X25519:P-256:X448:P-521:P-384:"
				     "P-224:ffdhe2048:ffdhe3072:"
				     "ffdhe4096:brainpoolP256r1:"
				     "brainpoolP384r1:brainpoolP512r1") != 1)
		ERR_clear_error();
	return ctx;
}

/* The suites this OpenSSL would offer for the context's version. */
static size_t
probe_scan_candidates(SSL_CTX *ctx, const SSL_CIPHER **out, size_t max)
{
	SSL *ssl = SSL_new(ctx);
	STACK_OF(SSL_CIPHER) *sk =
	    ssl != NULL ? SSL_get1_supported_ciphers(ssl) : NULL;
	size_t n = 0;

	for (int i = 0; sk != NULL && i < sk_SSL_CIPHER_num(sk) && n < max; i++)
		out[n++] = sk_SSL_CIPHER_value(sk, i);
	sk_SSL_CIPHER_free(sk);
	SSL_free(ssl);
	ERR_clear_error();
	return n;
}

/* "prime256v1" is secp256r1 in TLS (RFC 8422 appendix A), as nmap says. */
static void
probe_scan_group(EVP_PKEY *k, int id, char *out, size_t size)
{
	char name[64] = "";

	if (id == EVP_PKEY_X25519 || id == EVP_PKEY_X448) {
		(void)snprintf(out, size, "%s",
			       id == EVP_PKEY_X25519 ? "x25519" : "x448");
		return;
	}
	if (id == EVP_PKEY_DH) {
		(void)snprintf(out, size, "dh %d", EVP_PKEY_get_bits(k));
		return;
	}
	if (EVP_PKEY_get_group_name(k, name, sizeof(name), NULL) != 1)
		(void)snprintf(name, sizeof(name), "ec %d",
			       EVP_PKEY_get_bits(k));
	(void)snprintf(out, size, "%s",
		       strcmp(name, "prime256v1") == 0 ? "secp256r1" : name);
}

/* The strength of the certificate's key, when the suite uses it to
   authenticate (nmap: kex.pubkey == the key's type); -1 otherwise. */
static int
probe_scan_cert_strength(SSL *ssl, int auth, struct probe_suite *s)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	EVP_PKEY *pk = cert != NULL ? X509_get0_pubkey(cert) : NULL;
	int id = pk != NULL ? EVP_PKEY_get_base_id(pk) : 0;
	int bits = pk != NULL ? EVP_PKEY_get_bits(pk) : 0, md = 0, pkn = 0;

	if (pk == NULL || !((auth == NID_auth_rsa && id == EVP_PKEY_RSA) ||
			    (auth == NID_auth_ecdsa && id == EVP_PKEY_EC) ||
			    (auth == NID_auth_dss && id == EVP_PKEY_DSA)))
		return -1;
	if (id == EVP_PKEY_EC)
		probe_scan_group(pk, id, s->kex, sizeof(s->kex));
	else
		(void)snprintf(s->kex, sizeof(s->kex), "%s %d",
			       id == EVP_PKEY_RSA ? "rsa" : "dsa", bits);
	(void)OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md, &pkn);
	if (md == NID_md5 || md == NID_sha1 || md == NID_md4) {
		s->warn |= PROBE_SW_WEAKSIG;
		return 0;
	}
	return probe_tls_rsa_equiv(
	    id == EVP_PKEY_EC ? PROBE_KEX_EC : PROBE_KEX_RSA, bits);
}

/* Grade the suite of a finished handshake as nmap does. */
static void
probe_scan_grade(SSL *ssl, const SSL_CIPHER *c, struct probe_suite *s)
{
	int kx = SSL_CIPHER_get_kx_nid(c), au = SSL_CIPHER_get_auth_nid(c);
	int enc = SSL_CIPHER_get_cipher_nid(c), strength = -1;
	EVP_PKEY *tmp = NULL;

	s->bits = SSL_CIPHER_get_bits(c, NULL);
	s->pfs = kx == NID_kx_ecdhe || kx == NID_kx_dhe || kx == NID_kx_any;
	if (au == NID_auth_null) {
		s->warn |= PROBE_SW_ANON;
		strength = 0;
		(void)snprintf(s->kex, sizeof(s->kex), "anonymous");
	} else if (au != NID_auth_any) {
		strength = probe_scan_cert_strength(ssl, au, s);
	}
	if (SSL_get_peer_tmp_key(ssl, &tmp) == 1 && tmp != NULL) {
		int id = EVP_PKEY_get_base_id(tmp);
		int bits = id == EVP_PKEY_X25519 ? 256
			   : id == EVP_PKEY_X448 ? 448
						 : EVP_PKEY_get_bits(tmp);
		int e = probe_tls_rsa_equiv(
		    id == EVP_PKEY_DH ? PROBE_KEX_DH : PROBE_KEX_EC, bits);

		if (!(s->warn & PROBE_SW_ANON))
			probe_scan_group(tmp, id, s->kex, sizeof(s->kex));
		strength = strength < 0 || e < strength ? e : strength;
		if (s->warn & PROBE_SW_ANON)
			strength = 0;
		EVP_PKEY_free(tmp);
	}
	if (enc == NID_undef) {
		s->bits = 0;
		s->warn |= PROBE_SW_NULL;
	} else if (enc == NID_rc4 || enc == NID_rc4_40) {
		s->warn |= PROBE_SW_RC4;
		s->bits = s->bits < 80 ? s->bits : 80;
	} else if (enc == NID_des_ede3_cbc || enc == NID_des_cbc ||
		   enc == NID_idea_cbc || enc == NID_rc2_cbc ||
		   enc == NID_bf_cbc) {
		s->warn |= PROBE_SW_64BIT;
	}
	if (SSL_CIPHER_get_digest_nid(c) == NID_md5)
		s->warn |= PROBE_SW_MD5;
	s->kex_strength = strength < 0 ? 0 : strength;
	s->grade = probe_tls_letter(s->kex_strength, s->bits);
}

/* "a:b:c" of the candidates still in play, for the cipher list. */
static void
probe_scan_list(const SSL_CIPHER **cand, const bool *found, size_t n, bool is13,
		struct probe_buf *b)
{
	b->len = 0;
	for (size_t i = 0; i < n; i++) {
		if (found[i])
			continue;
		if (b->len > 0)
			probe_buf_add(b, ":", 1);
		probe_buf_addf(b, "%s", SSL_CIPHER_get_name(cand[i]));
	}
	if (!is13 && b->len > 0)
		probe_buf_addf(b, ":@SECLEVEL=0");
}

/* Was the failure ours (nothing to offer) rather than the server's? */
static bool
probe_scan_local_error(const char *why)
{
	return strstr(why, "no protocols available") != NULL ||
	       strstr(why, "no ciphers available") != NULL ||
	       strstr(why, "TLS setup") != NULL;
}

/* One handshake with what is left; the server's pick is recorded. 1 a
   suite was found, 0 refused (why in c->error), -1 no connection. */
static int
probe_scan_try(struct probe_port_state *ps, struct probe_scan *scan,
	       SSL_CTX *ctx, int vi, struct probe_conn *c, long *id_r)
{
	const SSL_CIPHER *got;
	struct probe_suite *s;

	for (unsigned wait = 0;; wait++) {
		if (probe_session_tls_ready(ps, c) < 0)
			return -1;
		scan->handshakes++;
		ps->pr->sent.handshakes++;
		if (probe_conn_tls(c, ctx, probe_sni(ps->pr)) == 0)
			break;
		/* A close without an alert may be a connection-rate limit
		   (a server cannot say 421 on implicit TLS): once more after
		   a wait. */
		if (!c->peer_closed || wait > 0 || !probe_backoff(ps->pr, 1))
			return 0;
		probe_conn_close(c);
	}
	got = SSL_get_current_cipher(c->ssl);
	if (got == NULL || SSL_version(c->ssl) != probe_versions[vi].version) {
		(void)snprintf(c->error, sizeof(c->error),
			       "the server answered with %s",
			       SSL_get_version(c->ssl));
		return 0;
	}
	*id_r = (long)SSL_CIPHER_get_id(got);
	if (scan->n >= PROBE_SUITES_MAX)
		return 1;
	s = &scan->suites[scan->n++];
	memset(s, 0, sizeof(*s));
	s->version = probe_versions[vi].version;
	(void)snprintf(s->name, sizeof(s->name), "%s",
		       SSL_CIPHER_standard_name(got));
	probe_scan_grade(c->ssl, got, s);
	return 1;
}

/* Mark the suite the server picked; false when we did not offer it. */
static bool
probe_scan_mark(const SSL_CIPHER **cand, bool *found, size_t n, long id)
{
	for (size_t i = 0; i < n; i++)
		if (!found[i] && (long)SSL_CIPHER_get_id(cand[i]) == id)
			return found[i] = true;
	return false;
}

/*
 * One round of a version: offer what is left. true to go on (a suite
 * was found), false when the version is done: refused, out of suites or
 * of handshakes, or no connection (then the whole scan stops).
 */
static bool
probe_scan_round(struct probe_port_state *ps, struct probe_scan *scan, int vi,
		 SSL_CTX *ctx, const SSL_CIPHER **cand, bool *found, size_t n,
		 bool first, struct probe_buf *list)
{
	bool is13 = probe_versions[vi].version == TLS1_3_VERSION;
	struct probe_conn c;
	long id = 0;
	int rc;

	probe_scan_list(cand, found, n, is13, list);
	if (list->len == 0 ||
	    (is13 ? SSL_CTX_set_ciphersuites(ctx, list->s)
		  : SSL_CTX_set_cipher_list(ctx, list->s)) != 1)
		return false;
	if (scan->handshakes >= PROBE_SCAN_HANDSHAKES_MAX) {
		scan->stopped = true;
		(void)snprintf(scan->note[vi], sizeof(scan->note[vi]),
			       "stopped after %d handshakes",
			       PROBE_SCAN_HANDSHAKES_MAX);
		return false;
	}
	probe_conn_init(&c, ps->pr->o->timeout);
	rc = probe_scan_try(ps, scan, ctx, vi, &c, &id);
	probe_conn_close(&c);
	if (rc < 0) {
		scan->stopped = true;
		scan->state[vi] = PROBE_V_ERROR;
	}
	if (rc < 0 || (rc == 0 && first && !probe_scan_local_error(c.error))) {
		if (rc == 0)
			scan->state[vi] = PROBE_V_REFUSED;
		(void)snprintf(scan->note[vi], sizeof(scan->note[vi]), "%s",
			       c.error);
	}
	if (rc <= 0)
		return false;
	scan->state[vi] = PROBE_V_ACCEPTED;
	/* a suite we did not offer: stop here */
	return probe_scan_mark(cand, found, n, id);
}

/* Every suite of one version, until the server refuses the rest. The
   IANA ids this OpenSSL offered go to ids_r (for probe_hello_scan()). */
static void
probe_scan_version(struct probe_port_state *ps, struct probe_scan *scan, int vi,
		   unsigned *ids_r, size_t *n_ids_r)
{
	const SSL_CIPHER *cand[PROBE_CANDIDATES_MAX];
	bool found[PROBE_CANDIDATES_MAX] = {false};
	SSL_CTX *ctx = probe_scan_ctx(probe_versions[vi].version);
	size_t n = ctx != NULL
		       ? probe_scan_candidates(ctx, cand, PROBE_CANDIDATES_MAX)
		       : 0;
	struct probe_buf list = {0};

	scan->state[vi] = PROBE_V_UNTESTED;
	(void)snprintf(scan->note[vi], sizeof(scan->note[vi]), "%s",
		       "this OpenSSL cannot offer it");
	for (size_t i = 0; i < n; i++)
		ids_r[i] = SSL_CIPHER_get_protocol_id(cand[i]);
	*n_ids_r = n;
	for (size_t round = 0; n > 0 && round <= n && !scan->stopped; round++)
		if (!probe_scan_round(ps, scan, vi, ctx, cand, found, n,
				      round == 0, &list))
			break;
	probe_buf_free(&list);
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

/* ---- verdicts ---------------------------------------------------------------
 */

static void
probe_protocols_verdict(struct probe_port_state *ps,
			const struct probe_scan *scan)
{
	struct probe_buf acc = {0}, rest = {0};
	bool old = false, modern = false;

	for (int vi = 0; vi < 5; vi++) {
		const char *name = probe_versions[vi].name;

		switch (scan->state[vi]) {
		case PROBE_V_ACCEPTED:
			probe_buf_addf(&acc, "%s%s", acc.len ? " " : "", name);
			if (probe_versions[vi].version < TLS1_2_VERSION)
				old = true;
			else
				modern = true;
			break;
		case PROBE_V_REFUSED:
			probe_buf_addf(&rest, "; refused %s (%s)", name,
				       scan->note[vi]);
			break;
		case PROBE_V_UNTESTED:
			probe_buf_addf(&rest, "; %s not tested (%s)", name,
				       scan->note[vi]);
			break;
		case PROBE_V_ERROR:
			probe_buf_addf(&rest, "; %s: %s", name, scan->note[vi]);
			break;
		}
	}
	probe_set(ps->out, PC_TLS_PROTOCOLS,
		  old || !modern ? PROBE_FAIL : PROBE_PASS, "%s%s%s%s",
		  old ? "old TLS accepted: " : "accepted: ",
		  acc.len ? acc.s : "none", rest.len ? rest.s : "",
		  scan->stopped ? "; the scan stopped early" : "");
	probe_buf_free(&acc);
	probe_buf_free(&rest);
}

static void
probe_ciphers_warnings(const struct probe_scan *scan, struct probe_buf *b)
{
	static const struct {
		unsigned flag;
		const char *text;
	} w[] = {
	    {PROBE_SW_ANON, "anonymous key exchange (no authentication)"},
	    {PROBE_SW_NULL, "NULL cipher (no encryption)"},
	    {PROBE_SW_RC4, "RC4 (RFC 7465)"},
	    {PROBE_SW_64BIT, "64-bit block cipher (SWEET32)"},
	    {PROBE_SW_MD5, "MD5 for integrity"},
	    {PROBE_SW_WEAKSIG, "certificate signed with MD5 or SHA-1"},
	    {PROBE_SW_EXPORT, "EXPORT key exchange"},
	    {PROBE_SW_SSL3, "SSLv3 (POODLE, CVE-2014-3566)"},
	};
	unsigned all = 0;
	bool pfs = false;

	for (size_t i = 0; i < scan->n; i++) {
		all |= scan->suites[i].warn;
		pfs |= scan->suites[i].pfs;
	}
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (all & w[i].flag)
			probe_buf_addf(b, "%s%s", b->len ? ", " : "",
				       w[i].text);
	if (!pfs && scan->n > 0)
		probe_buf_addf(b, "%sno forward secrecy", b->len ? ", " : "");
}

static void
probe_ciphers_verdict(struct probe_port_state *ps,
		      const struct probe_scan *scan)
{
	struct probe_buf d = {0}, w = {0};
	char least = 'A';
	int last = -1;

	for (size_t i = 0; i < scan->n; i++)
		if (scan->suites[i].grade > least)
			least = scan->suites[i].grade;
	if (scan->n == 0) {
		probe_set(ps->out, PC_TLS_CIPHERS, PROBE_SKIP,
			  "no suite could be negotiated");
		return;
	}
	probe_ciphers_warnings(scan, &w);
	probe_buf_addf(&d,
		       "least strength %c (as nmap ssl-enum-ciphers)%s%s; "
		       "%zu suites",
		       least, w.len ? ": " : "", w.len ? w.s : "", scan->n);
	for (size_t i = 0; i < scan->n; i++) {
		const struct probe_suite *s = &scan->suites[i];

		if (s->version != last) {
			for (int vi = 0; vi < 5; vi++)
				if (probe_versions[vi].version == s->version)
					probe_buf_addf(&d, "; %s:",
						       probe_versions[vi].name);
			last = s->version;
		} else {
			probe_buf_add(&d, ",", 1);
		}
		probe_buf_addf(&d, " %s (%s) %c", s->name,
			       s->kex[0] ? s->kex : "?", s->grade);
	}
	probe_set_owned(ps->out, PC_TLS_CIPHERS,
			least == 'A'   ? PROBE_PASS
			: least == 'B' ? PROBE_WARN
				       : PROBE_FAIL,
			probe_buf_take(&d));
	probe_buf_free(&w);
}

/*
 * After OpenSSL's handshakes, the hand-made hellos: SSLv3 always (this
 * OpenSSL has none), TLS 1.0 to 1.2 unless the server refused the
 * version itself. What they find joins the list, and a version accepted
 * only that way counts as accepted.
 */
static void
probe_scan_legacy(struct probe_port_state *ps, struct probe_scan *scan, int vi,
		  const unsigned *ids, size_t n_ids)
{
	int version = probe_versions[vi].version;
	const char *note = scan->note[vi];
	char why[200];
	int found;

	if (scan->stopped || version == TLS1_3_VERSION ||
	    (scan->state[vi] == PROBE_V_REFUSED &&
	     (strstr(note, "protocol version") != NULL ||
	      strstr(note, "unsupported protocol") != NULL ||
	      strstr(note, "wrong version number") != NULL)))
		return;
	found =
	    probe_hello_scan(ps, version, ids, n_ids, scan->suites + scan->n,
			     PROBE_SUITES_MAX - scan->n, why, sizeof(why));
	scan->n += (size_t)found;
	if (found > 0) {
		scan->state[vi] = PROBE_V_ACCEPTED;
	} else if (scan->state[vi] == PROBE_V_UNTESTED && why[0] != '\0') {
		scan->state[vi] = PROBE_V_REFUSED;
		(void)snprintf(scan->note[vi], sizeof(scan->note[vi]), "%s",
			       why);
	}
}

/* Group the suites by version, keeping the order within a version. */
static void
probe_scan_sort(struct probe_scan *scan)
{
	for (size_t i = 1; i < scan->n; i++) {
		struct probe_suite s = scan->suites[i];
		size_t k = i;

		for (; k > 0 && scan->suites[k - 1].version > s.version; k--)
			scan->suites[k] = scan->suites[k - 1];
		scan->suites[k] = s;
	}
}

void
probe_tls_checks(struct probe_port_state *ps)
{
	unsigned ids[PROBE_CANDIDATES_MAX];
	struct probe_scan *scan;
	size_t n_ids;

	if (!ps->tls_works) {
		const char *why = ps->out->role == PROBE_ROLE_PLAIN
				      ? "no TLS: STARTTLS not offered"
				      : "no TLS session could be made";

		probe_set(ps->out, PC_TLS_PROTOCOLS, PROBE_SKIP, "%s", why);
		probe_set(ps->out, PC_TLS_CIPHERS, PROBE_SKIP, "%s", why);
		probe_set(ps->out, PC_TLS_CERTIFICATE, PROBE_SKIP, "%s", why);
		return;
	}
	scan = calloc(1, sizeof(*scan));
	if (scan == NULL)
		abort();
	for (int vi = 0; vi < 5; vi++) {
		n_ids = 0;
		probe_scan_version(ps, scan, vi, ids, &n_ids);
		probe_scan_legacy(ps, scan, vi, ids, n_ids);
	}
	probe_scan_sort(scan);
	probe_protocols_verdict(ps, scan);
	probe_ciphers_verdict(ps, scan);
	free(scan);
	probe_tls_certificate_check(ps);
}
