/*
 * tls.c - server-side TLS with OpenSSL 3: one SSL_CTX per configured
 * certificate, chosen by SNI; TLS 1.2 and 1.3 with Mozilla's
 * "intermediate" ciphers; no renegotiation, no compression; stateless
 * session tickets whose keys every worker derives from one shared secret
 * and the current hour; strict ALPN (THREATS T-08); a self-signed
 * development certificate made on first start. See docs/tls.md.
 *
 * Lifetime: a struct tls_server is reference counted. The owner holds one
 * reference and every SSL made by tls_server_ssl() holds another (dropped by
 * SSL_free() through an ex_data free callback), so tls_server_free() on a
 * SIGHUP reload never pulls the contexts, the SNI table or the ticket
 * secret from under a connection that is still shaking hands.
 */
#include "daemon/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

/*
 * Mozilla "intermediate" (v5.7) for TLS 1.2, without the DHE-RSA suites:
 * every client that speaks TLS 1.2 also speaks ECDHE, and finite-field DH
 * costs the server several times the CPU of X25519 for each handshake
 * (a lever for THREATS T-05), so ffdhe groups are not configured either.
 */
#define TLS_CIPHERS_12                                                         \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* The TLS 1.3 suites of the same profile (OpenSSL's defaults). */
#define TLS_CIPHERS_13                                                         \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"                       \
	"TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:prime256v1:secp384r1"
#define TLS_SID_CTX "postern"

/* Ticket keys change every period; the previous period's key is still
   accepted (and its tickets renewed), so a ticket lives 1 to 2 periods. */
#define TLS_TICKET_PERIOD 3600
#define TLS_TICKET_SALT "postern session ticket keys v1"

#define TLS_HOSTNAME_MAX 253
#define TLS_LABEL_MAX 63
#define TLS_CN_MAX 64 /* ub-common-name, RFC 5280 appendix A.1 */

struct tls_ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

struct tls_server {
	atomic_uint refs;
	SSL_CTX **ctx; /* ctx[0] is the default (certs[0]) */
	size_t n_ctx;
	unsigned char secret[32];
	EVP_KDF *hkdf;
	EVP_CIPHER *aes;
};

static CRYPTO_ONCE tls_once = CRYPTO_ONCE_STATIC_INIT;
static int tls_ex_server = -1; /* SSL -> struct tls_server (a reference) */
static int tls_ex_sni = -1;    /* SSL -> validated SNI, lower case */
static int tls_ex_note = -1;   /* SSL -> why we refused (static text) */

/*
 * The clock behind the ticket key periods. It is a weak symbol so that the
 * unit test can move time across a rotation; nothing else overrides it.
 */
time_t tls_clock(void) __attribute__((weak));
time_t
tls_clock(void)
{
	return time(NULL);
}

static void tls_server_unref(struct tls_server *tls);

static void
tls_ex_free_server(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		   long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	tls_server_unref(ptr);
}

static void
tls_ex_free_sni(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
		void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	OPENSSL_free(ptr);
}

static void
tls_ex_init(void)
{
	tls_ex_server =
	    SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_ex_free_server);
	tls_ex_sni = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_ex_free_sni);
	tls_ex_note = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

const char *
tls_failure_note(SSL *ssl)
{
	if (ssl == NULL || tls_ex_note < 0)
		return NULL;
	return SSL_get_ex_data(ssl, tls_ex_note);
}

/* Copy `s` into buf as printable ASCII ('?' for anything else), cut. */
static void
tls_copy_printable(char *buf, size_t size, const char *s)
{
	size_t i = 0;

	if (size == 0)
		return;
	if (s == NULL)
		s = "none";
	for (; s[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	buf[i] = '\0';
}

/* Append s to buf at *o, cutting at the end of buf. */
static void
tls_append(char *buf, size_t size, size_t *o, const char *s)
{
	for (; *s != '\0' && *o + 1 < size; s++)
		buf[(*o)++] = *s;
	buf[*o] = '\0';
}

/*
 * Drain the OpenSSL error queue of this thread into buf as
 * "reason (detail); reason ...", printable; the queue is left empty.
 */
void
tls_error_reason(char *buf, size_t size)
{
	char raw[512];
	size_t o = 0;
	unsigned long e;
	const char *data;
	int flags;

	raw[0] = '\0';
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		const char *r = ERR_reason_error_string(e);
		char code[32];

		if (r == NULL) {
			(void)snprintf(code, sizeof(code), "error %lx", e);
			r = code;
		}
		if (o > 0)
			tls_append(raw, sizeof(raw), &o, "; ");
		tls_append(raw, sizeof(raw), &o, r);
		if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0') {
			tls_append(raw, sizeof(raw), &o, " (");
			tls_append(raw, sizeof(raw), &o, data);
			tls_append(raw, sizeof(raw), &o, ")");
		}
	}
	ERR_clear_error();
	tls_copy_printable(buf, size, o > 0 ? raw : "no reason given");
}

/* "tls: <what>: <OpenSSL reason>" into errors. */
static void
tls_report_openssl(FILE *errors, const char *what)
{
	char reason[512];

	tls_error_reason(reason, sizeof(reason));
	if (errors != NULL)
		fprintf(errors, "tls: %s: %s\n", what, reason);
}

static bool
tls_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

/*
 * RFC 6066 section 3: HostName is an ASCII host name without a trailing
 * dot; RFC 1123 section 2.1 and RFC 952: letters, digits, hyphen, labels
 * neither starting nor ending with a hyphen. THREATS T-07 (Exim
 * CVE-2019-15846: "x\" then NUL) is covered by refusing every other octet.
 */
bool
tls_hostname_valid(const char *name, size_t len)
{
	size_t label = 0;

	if (name == NULL || len == 0 || len > TLS_HOSTNAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!tls_ldh(c) || (c == '-' && label == 0))
			return false;
		if (++label > TLS_LABEL_MAX)
			return false;
	}
	return label > 0 && name[len - 1] != '-';
}

/*
 * HKDF-SHA256 (RFC 5869) of the shared secret, with the period number as
 * info: every worker, and every server started with the same secret,
 * derives the same name and keys for a period without talking.
 */
static int
tls_ticket_key(struct tls_server *tls, uint64_t period,
	       struct tls_ticket_key *key)
{
	unsigned char info[16] = "ticket";
	unsigned char out[sizeof(*key)];
	OSSL_PARAM params[5];
	EVP_KDF_CTX *kctx;
	int rc;

	for (int i = 0; i < 8; i++)
		info[8 + i] = (unsigned char)(period >> (56 - 8 * i));
	kctx = EVP_KDF_CTX_new(tls->hkdf);
	if (kctx == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(
	    OSSL_KDF_PARAM_KEY, tls->secret, sizeof(tls->secret));
	params[2] = OSSL_PARAM_construct_octet_string(
	    OSSL_KDF_PARAM_SALT, (char *)TLS_TICKET_SALT,
	    sizeof(TLS_TICKET_SALT) - 1);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info,
						      sizeof(info));
	params[4] = OSSL_PARAM_construct_end();
	rc = EVP_KDF_derive(kctx, out, sizeof(out), params);
	EVP_KDF_CTX_free(kctx);
	if (rc != 1)
		return -1;
	memcpy(key->name, out, sizeof(key->name));
	memcpy(key->aes, out + 16, sizeof(key->aes));
	memcpy(key->hmac, out + 48, sizeof(key->hmac));
	OPENSSL_cleanse(out, sizeof(out));
	return 0;
}

static int
tls_ticket_mac_init(EVP_MAC_CTX *hctx, const struct tls_ticket_key *key)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_MAC_PARAM_KEY, (void *)key->hmac, sizeof(key->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

static uint64_t
tls_ticket_period(void)
{
	time_t now = tls_clock();

	return now > 0 ? (uint64_t)now / TLS_TICKET_PERIOD : 0;
}

/*
 * The ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)).
 * Encrypting: the current period's key. Decrypting: 1 for the current
 * period's key, 2 (valid, issue a new ticket) for the previous one, 0
 * (unknown: full handshake) otherwise, -1 on an internal error.
 */
static int
tls_on_ticket(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
	      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_server *tls = SSL_get_ex_data(ssl, tls_ex_server);
	uint64_t period = tls_ticket_period();
	struct tls_ticket_key key;
	int rc = -1;

	if (tls == NULL)
		return enc ? 0 : -1;
	if (enc) {
		int ivlen = EVP_CIPHER_get_iv_length(tls->aes);

		if (tls_ticket_key(tls, period, &key) == 0 &&
		    RAND_bytes(iv, ivlen) == 1 &&
		    EVP_EncryptInit_ex2(cctx, tls->aes, key.aes, iv, NULL) ==
			1 &&
		    tls_ticket_mac_init(hctx, &key) == 0) {
			memcpy(key_name, key.name, sizeof(key.name));
			rc = 1;
		}
		OPENSSL_cleanse(&key, sizeof(key));
		return rc;
	}
	rc = 0;
	for (uint64_t age = 0; age < 2 && age <= period; age++) {
		if (tls_ticket_key(tls, period - age, &key) != 0) {
			rc = -1;
			break;
		}
		if (CRYPTO_memcmp(key_name, key.name, sizeof(key.name)) != 0)
			continue;
		if (EVP_DecryptInit_ex2(cctx, tls->aes, key.aes, iv, NULL) !=
			1 ||
		    tls_ticket_mac_init(hctx, &key) != 0)
			rc = -1;
		else
			rc = age == 0 ? 1 : 2;
		break;
	}
	OPENSSL_cleanse(&key, sizeof(key));
	return rc;
}

/*
 * RFC 7301 section 3.2 and THREATS T-08 (ALPACA): a client that offers
 * ALPN without "smtp" is speaking some other protocol to us; the handshake
 * fails with no_application_protocol (OpenSSL sends that alert for
 * SSL_TLSEXT_ERR_ALERT_FATAL). A malformed list fails the same way.
 */
static int
tls_on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
	    const unsigned char *in, unsigned int inlen, void *arg)
{
	size_t i = 0;

	(void)ssl;
	(void)arg;
	while (i < inlen) {
		size_t n = in[i];

		if (n == 0 || n > inlen - i - 1)
			break;
		if (n == 4 && memcmp(in + i + 1, "smtp", 4) == 0) {
			*out = in + i + 1;
			*outlen = 4;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * SNI (RFC 6066 section 3). A name that is not a valid host name aborts
 * the handshake with unrecognized_name (THREATS T-07): only a broken or
 * hostile client sends one, and nothing of it is kept. A valid name
 * selects the first certificate, in configuration order, whose SAN DNS
 * names (or CN when there is no SAN DNS name) match it exactly or by a
 * one-label wildcard; no match keeps the default certificate.
 */
static int
tls_on_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *tls = SSL_get_ex_data(ssl, tls_ex_server);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t len;
	char *copy;

	(void)arg;
	if (name == NULL || tls == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	len = strlen(name);
	if (!tls_hostname_valid(name, len)) {
		ERR_raise_data(ERR_LIB_SSL, SSL_R_CALLBACK_FAILED,
			       "invalid SNI host name");
		(void)SSL_set_ex_data(ssl, tls_ex_note,
				      (void *)"invalid SNI host name");
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	copy = OPENSSL_strndup(name, len);
	if (copy == NULL) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	for (size_t i = 0; i < len; i++)
		if (copy[i] >= 'A' && copy[i] <= 'Z')
			copy[i] = (char)(copy[i] - 'A' + 'a');
	OPENSSL_free(SSL_get_ex_data(ssl, tls_ex_sni));
	if (SSL_set_ex_data(ssl, tls_ex_sni, copy) != 1) {
		OPENSSL_free(copy);
		(void)SSL_set_ex_data(ssl, tls_ex_sni, NULL);
	}
	for (size_t i = 0; i < tls->n_ctx; i++) {
		X509 *x = SSL_CTX_get0_certificate(tls->ctx[i]);

		if (x == NULL ||
		    X509_check_host(x, name, len,
				    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
				    NULL) != 1)
			continue;
		if (SSL_get_SSL_CTX(ssl) != tls->ctx[i] &&
		    SSL_set_SSL_CTX(ssl, tls->ctx[i]) == NULL) {
			*alert = SSL_AD_INTERNAL_ERROR;
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		}
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* Protocol, ciphers, options and callbacks shared by every context. */
static int
tls_ctx_configure(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERS_13) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1)
		return -1;
	/* Level 2: RSA and DH keys of 2048 bits at least, no SHA-1. */
	SSL_CTX_set_security_level(ctx, 2);
	/* THREATS T-05: renegotiation is a CPU lever and CVE-2009-3555. */
	SSL_CTX_set_options(ctx,
			    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* Intermediate lets the client choose (it knows whether it has AES
	   hardware); tickets stay on. */
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
				       SSL_OP_NO_TICKET);
	/* Idle connections give their 34 KiB of record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Resumption is by ticket only: a per-process cache would not be
	   shared between workers and costs memory per session. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(ctx, 2 * TLS_TICKET_PERIOD);
	if (SSL_CTX_set_num_tickets(ctx, 1) != 1 ||
	    SSL_CTX_set_session_id_context(ctx,
					   (const unsigned char *)TLS_SID_CTX,
					   sizeof(TLS_SID_CTX) - 1) != 1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_on_ticket) != 1)
		return -1;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_alpn_select_cb(ctx, tls_on_alpn, NULL);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_on_servername);
	return 0;
}

/* stat() a file we are about to read, for a message better than
   OpenSSL's. */
static int
tls_check_file(const char *path, FILE *errors)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		fprintf(errors, "tls: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(errors, "tls: %s: not a regular file\n", path);
		return -1;
	}
	return 0;
}

/*
 * One context for a certificate chain (PEM, leaf first) and its key.
 * Every failure is reported as "tls: file: reason".
 */
static SSL_CTX *
tls_ctx_new(const struct config_cert *cc, FILE *errors)
{
	SSL_CTX *ctx;

	if (cc->cert == NULL || cc->key == NULL) {
		fprintf(errors, "tls: certificate or key path missing\n");
		return NULL;
	}
	if (tls_check_file(cc->cert, errors) != 0 ||
	    tls_check_file(cc->key, errors) != 0)
		return NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || tls_ctx_configure(ctx) != 0) {
		tls_report_openssl(errors, "setting up a context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cc->cert) != 1) {
		tls_report_openssl(errors, cc->cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cc->key, SSL_FILETYPE_PEM) != 1) {
		tls_report_openssl(errors, cc->key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		fprintf(errors,
			"tls: %s: the key does not match the certificate %s\n",
			cc->key, cc->cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* mkdir -p of the directory part of `path`, new directories 0700. */
static int
tls_make_parents(const char *path, FILE *errors)
{
	char dir[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(dir)) {
		fprintf(errors, "tls: %s: path too long\n", path);
		return -1;
	}
	memcpy(dir, path, len + 1);
	for (size_t i = 1; i < len; i++) {
		if (dir[i] != '/')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			fprintf(errors, "tls: %s: %s\n", dir, strerror(errno));
			return -1;
		}
		dir[i] = '/';
	}
	return 0;
}

/* fsync the directory holding `path`, so a rename in it is durable. */
static int
tls_sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t len = slash == NULL ? 0 : (size_t)(slash - path);
	int fd, rc;

	if (slash == NULL)
		memcpy(dir, ".", 2);
	else if (len == 0)
		memcpy(dir, "/", 2);
	else if (len < sizeof(dir)) {
		memcpy(dir, path, len);
		dir[len] = '\0';
	} else
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * Write a key (when `key` is set) or a certificate as PEM to `path` with
 * `mode`, atomically: a temporary file beside it, fsync, rename, fsync of
 * the directory. A reader sees the old file or the whole new one.
 */
static int
tls_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert,
	      FILE *errors)
{
	char tmp[PATH_MAX];
	const char *what = "writing";
	FILE *fp = NULL;
	int n, fd, ok;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		fprintf(errors, "tls: %s: path too long\n", path);
		return -1;
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  mode);
	if (fd < 0 || fchmod(fd, mode) != 0 || (fp = fdopen(fd, "w")) == NULL) {
		fprintf(errors, "tls: %s: %s\n", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		(void)unlink(tmp);
		return -1;
	}
	errno = 0;
	if (key != NULL)
		ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_X509(fp, cert);
	if (ok == 1) {
		what = "fsync";
		ok = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	}
	if (fclose(fp) != 0)
		ok = 0;
	if (ok) {
		what = "rename";
		ok = rename(tmp, path) == 0;
	}
	if (!ok) {
		fprintf(errors, "tls: %s: %s failed: %s\n", path, what,
			errno != 0 ? strerror(errno) : "OpenSSL error");
		ERR_clear_error();
		(void)unlink(tmp);
		return -1;
	}
	if (tls_sync_parent(path) != 0) {
		fprintf(errors, "tls: %s: directory fsync: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Add one extension given in openssl.cnf syntax (constant text only). */
static int
tls_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	int rc;

	if (ext == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return rc == 1 ? 0 : -1;
}

/* subjectAltName with one DNS name, built as data, not parsed text. */
static int
tls_add_san(X509 *x, const char *host)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int rc = -1;

	if (gens == NULL || gen == NULL || ia5 == NULL ||
	    ASN1_STRING_set(ia5, host, (int)strlen(host)) != 1) {
		ASN1_IA5STRING_free(ia5);
		GENERAL_NAME_free(gen);
		sk_GENERAL_NAME_free(gens);
		return -1;
	}
	GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
	if (sk_GENERAL_NAME_push(gens, gen) <= 0)
		GENERAL_NAME_free(gen);
	else if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
				   X509V3_ADD_DEFAULT) == 1)
		rc = 0;
	GENERAL_NAMES_free(gens);
	return rc;
}

/*
 * A self-signed X.509 v3 server certificate for `host`: random 127-bit
 * serial, valid from an hour ago for 365 days, CA:FALSE, digitalSignature,
 * serverAuth, CN and SAN DNS = host (RFC 5280 section 4.2). NULL on error.
 */
static X509 *
tls_self_signed_cert(EVP_PKEY *key, const char *host)
{
	unsigned char serial[16];
	const char *cn = strlen(host) <= TLS_CN_MAX ? host : "postern";
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	X509_NAME *name;
	X509V3_CTX v3;
	bool ok;

	if (x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	name = X509_get_subject_name(x);
	ok = bn != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
	     X509_time_adj_ex(X509_getm_notAfter(x), 365, 0, NULL) != NULL &&
	     X509_set_pubkey(x, key) == 1 &&
	     X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
					(const unsigned char *)cn, -1, -1,
					0) == 1 &&
	     X509_set_issuer_name(x, name) == 1;
	BN_free(bn);
	if (!ok)
		goto fail;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (tls_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    tls_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") ||
	    tls_add_ext(x, &v3, NID_ext_key_usage, "serverAuth") ||
	    tls_add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
	    tls_add_san(x, host) != 0)
		goto fail;
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/*
 * Create certs[0] for the development configuration: an EC P-256 key
 * (0600) and a self-signed certificate (0644), each written atomically,
 * the key first, so a crash between the two leaves the certificate
 * missing and the next start makes both again.
 */
static int
tls_make_self_signed(const struct config *cfg, FILE *errors)
{
	const struct config_cert *cc = &cfg->certs[0];
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int rc = -1;

	if (cfg->hostname == NULL ||
	    !tls_hostname_valid(cfg->hostname, strlen(cfg->hostname))) {
		fprintf(errors, "tls: hostname is not a valid DNS name, "
				"cannot make a self-signed certificate\n");
		return -1;
	}
	if (tls_make_parents(cc->key, errors) != 0 ||
	    tls_make_parents(cc->cert, errors) != 0)
		return -1;
	ERR_clear_error();
	key = EVP_EC_gen("P-256");
	if (key != NULL)
		x = tls_self_signed_cert(key, cfg->hostname);
	if (x == NULL) {
		tls_report_openssl(errors, "making a self-signed certificate");
		goto out;
	}
	if (tls_write_pem(cc->key, 0600, key, NULL, errors) != 0 ||
	    tls_write_pem(cc->cert, 0644, NULL, x, errors) != 0)
		goto out;
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static bool
tls_file_missing(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) != 0 && errno == ENOENT;
}

/* Drop one reference; the last one frees the contexts and the secret. */
static void
tls_server_unref(struct tls_server *tls)
{
	if (tls == NULL || atomic_fetch_sub(&tls->refs, 1) != 1)
		return;
	for (size_t i = 0; i < tls->n_ctx; i++)
		SSL_CTX_free(tls->ctx[i]);
	free(tls->ctx);
	EVP_KDF_free(tls->hkdf);
	EVP_CIPHER_free(tls->aes);
	OPENSSL_cleanse(tls->secret, sizeof(tls->secret));
	free(tls);
}

/*
 * Build every context; with tls_self_signed, create certs[0] first when
 * its certificate or key file does not exist. A NULL ticket_secret gets a
 * random one (tickets then only work within this process).
 */
int
tls_server_new(const struct config *cfg, const unsigned char ticket_secret[32],
	       struct tls_server **tls_r, FILE *errors)
{
	struct tls_server *tls;

	*tls_r = NULL;
	if (errors == NULL)
		errors = stderr;
	if (CRYPTO_THREAD_run_once(&tls_once, tls_ex_init) != 1 ||
	    tls_ex_server < 0 || tls_ex_sni < 0) {
		fprintf(errors, "tls: cannot allocate ex_data indexes\n");
		return -1;
	}
	if (cfg->n_certs == 0 || cfg->certs == NULL) {
		fprintf(errors, "tls: no certificate configured\n");
		return -1;
	}
	if (cfg->tls_self_signed &&
	    (tls_file_missing(cfg->certs[0].cert) ||
	     tls_file_missing(cfg->certs[0].key)) &&
	    tls_make_self_signed(cfg, errors) != 0)
		return -1;

	tls = calloc(1, sizeof(*tls));
	if (tls == NULL) {
		fprintf(errors, "tls: out of memory\n");
		return -1;
	}
	atomic_init(&tls->refs, 1);
	tls->ctx = calloc(cfg->n_certs, sizeof(*tls->ctx));
	tls->hkdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	tls->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (ticket_secret != NULL)
		memcpy(tls->secret, ticket_secret, sizeof(tls->secret));
	if (tls->ctx == NULL || tls->hkdf == NULL || tls->aes == NULL ||
	    (ticket_secret == NULL &&
	     RAND_bytes(tls->secret, sizeof(tls->secret)) != 1)) {
		tls_report_openssl(errors, "ticket keys");
		tls_server_unref(tls);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_certs; i++) {
		tls->ctx[i] = tls_ctx_new(&cfg->certs[i], errors);
		if (tls->ctx[i] == NULL) {
			tls_server_unref(tls);
			return -1;
		}
		tls->n_ctx++;
	}
	*tls_r = tls;
	return 0;
}

/* Drop the owner's reference; SSLs still alive keep the rest. */
void
tls_server_free(struct tls_server **tls)
{
	if (tls == NULL || *tls == NULL)
		return;
	tls_server_unref(*tls);
	*tls = NULL;
}

/* A server SSL on the default context, holding a reference to tls. */
SSL *
tls_server_ssl(struct tls_server *tls)
{
	SSL *ssl;

	if (tls == NULL || tls->n_ctx == 0)
		return NULL;
	ssl = SSL_new(tls->ctx[0]);
	if (ssl == NULL)
		return NULL;
	atomic_fetch_add(&tls->refs, 1);
	if (SSL_set_ex_data(ssl, tls_ex_server, tls) != 1) {
		atomic_fetch_sub(&tls->refs, 1);
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

void
tls_describe(SSL *ssl, char *version, size_t vsize, char *cipher, size_t csize)
{
	const SSL_CIPHER *c = ssl != NULL ? SSL_get_current_cipher(ssl) : NULL;

	tls_copy_printable(version, vsize,
			   ssl != NULL ? SSL_get_version(ssl) : NULL);
	tls_copy_printable(cipher, csize,
			   c != NULL ? SSL_CIPHER_get_name(c) : NULL);
}

const char *
tls_sni(SSL *ssl)
{
	if (ssl == NULL || tls_ex_sni < 0)
		return NULL;
	return SSL_get_ex_data(ssl, tls_ex_sni);
}
