/*
 * probe_hello.c - what this OpenSSL cannot offer, asked with a ClientHello
 * written by hand (RFC 6101 section 5.6.1.2 for SSLv3, RFC 5246 section
 * 7.4.1.2): SSLv3 itself, and in TLS 1.0 to 1.2 the suites OpenSSL 3 has
 * dropped or Debian builds without (RC4, 3DES, single DES, IDEA, RC2 and
 * the EXPORT ones). The server's first flight is read (ServerHello,
 * Certificate, ServerKeyExchange, up to ServerHelloDone) to learn the
 * suite and the key sizes for nmap's grading; the handshake is never
 * finished. Like nmap's ssl-enum-ciphers: offer, note the pick, offer the
 * rest again until the server refuses.
 */
#include "probe/probe_int.h"

#include <string.h>
#include <sys/random.h>

#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#define PROBE_HELLO_MAX 2048
#define PROBE_FLIGHT_MAX 65536
#define PROBE_RECORDS_MAX 70000 /* even of one octet each, 64 KiB */

enum probe_hello_auth {
	PROBE_HA_RSA,
	PROBE_HA_DSS,
	PROBE_HA_ECDSA,
	PROBE_HA_NONE, /* anonymous */
};

enum probe_hello_eph {
	PROBE_HE_NONE,
	PROBE_HE_DH,  /* DHE, DH_anon: p in ServerKeyExchange */
	PROBE_HE_EC,  /* ECDHE, ECDH_anon: a named curve */
	PROBE_HE_RSA, /* RSA_EXPORT: a temporary RSA key */
};

struct probe_hello_suite {
	unsigned id;
	const char *name;
	enum probe_hello_auth auth;
	enum probe_hello_eph eph;
	int export_bits; /* nmap: 512, or 1024 for EXPORT1024; 0 */
	int bits;	 /* nmap's cipher size (RC4 already capped at 80) */
	unsigned warn;
	bool ssl3_only; /* OpenSSL has it for TLS: offered in SSLv3 only */
};

#define RC4 PROBE_SW_RC4
#define B64 PROBE_SW_64BIT
#define MD5 PROBE_SW_MD5

/* IANA TLS cipher suite registry; sizes and flags as nmap's tls.lua
   cipher_info() derives them from the names. */
static const struct probe_hello_suite probe_hello_suites[] = {
    {0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", PROBE_HA_RSA, PROBE_HE_RSA, 512,
     40, RC4 | MD5, false},
    {0x0004, "TLS_RSA_WITH_RC4_128_MD5", PROBE_HA_RSA, PROBE_HE_NONE, 0, 80,
     RC4 | MD5, false},
    {0x0005, "TLS_RSA_WITH_RC4_128_SHA", PROBE_HA_RSA, PROBE_HE_NONE, 0, 80,
     RC4, false},
    {0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", PROBE_HA_RSA, PROBE_HE_RSA,
     512, 40, B64 | MD5, false},
    {0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA", PROBE_HA_RSA, PROBE_HE_NONE, 0, 128,
     B64, false},
    {0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", PROBE_HA_RSA, PROBE_HE_RSA,
     512, 40, B64, false},
    {0x0009, "TLS_RSA_WITH_DES_CBC_SHA", PROBE_HA_RSA, PROBE_HE_NONE, 0, 56,
     B64, false},
    {0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", PROBE_HA_RSA, PROBE_HE_NONE, 0,
     112, B64, false},
    {0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA", PROBE_HA_DSS, PROBE_HE_DH,
     512, 40, B64, false},
    {0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA", PROBE_HA_DSS, PROBE_HE_DH, 0, 56,
     B64, false},
    {0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", PROBE_HA_DSS, PROBE_HE_DH, 0,
     112, B64, false},
    {0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", PROBE_HA_RSA, PROBE_HE_DH,
     512, 40, B64, false},
    {0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA", PROBE_HA_RSA, PROBE_HE_DH, 0, 56,
     B64, false},
    {0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", PROBE_HA_RSA, PROBE_HE_DH, 0,
     112, B64, false},
    {0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5", PROBE_HA_NONE, PROBE_HE_DH,
     512, 40, RC4 | MD5, false},
    {0x0018, "TLS_DH_anon_WITH_RC4_128_MD5", PROBE_HA_NONE, PROBE_HE_DH, 0, 80,
     RC4 | MD5, false},
    {0x0019, "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA", PROBE_HA_NONE,
     PROBE_HE_DH, 512, 40, B64, false},
    {0x001A, "TLS_DH_anon_WITH_DES_CBC_SHA", PROBE_HA_NONE, PROBE_HE_DH, 0, 56,
     B64, false},
    {0x001B, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA", PROBE_HA_NONE, PROBE_HE_DH, 0,
     112, B64, false},
    {0x0062, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA", PROBE_HA_RSA, PROBE_HE_RSA,
     1024, 56, B64, false},
    {0x0064, "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA", PROBE_HA_RSA, PROBE_HE_RSA,
     1024, 56, RC4, false},
    {0x0066, "TLS_DHE_DSS_WITH_RC4_128_SHA", PROBE_HA_DSS, PROBE_HE_DH, 0, 80,
     RC4, false},
    {0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", PROBE_HA_ECDSA, PROBE_HE_EC, 0,
     80, RC4, false},
    {0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", PROBE_HA_ECDSA,
     PROBE_HE_EC, 0, 112, B64, false},
    {0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", PROBE_HA_RSA, PROBE_HE_EC, 0, 80,
     RC4, false},
    {0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", PROBE_HA_RSA, PROBE_HE_EC,
     0, 112, B64, false},
    {0xC016, "TLS_ECDH_anon_WITH_RC4_128_SHA", PROBE_HA_NONE, PROBE_HE_EC, 0,
     80, RC4, false},
    {0xC017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA", PROBE_HA_NONE, PROBE_HE_EC,
     0, 112, B64, false},
    /* What SSLv3 servers also had (OpenSSL offers these for TLS). */
    {0x0001, "TLS_RSA_WITH_NULL_MD5", PROBE_HA_RSA, PROBE_HE_NONE, 0, 0,
     PROBE_SW_NULL | MD5, true},
    {0x0002, "TLS_RSA_WITH_NULL_SHA", PROBE_HA_RSA, PROBE_HE_NONE, 0, 0,
     PROBE_SW_NULL, true},
    {0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", PROBE_HA_RSA, PROBE_HE_NONE, 0,
     128, 0, true},
    {0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA", PROBE_HA_DSS, PROBE_HE_DH, 0,
     128, 0, true},
    {0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", PROBE_HA_RSA, PROBE_HE_DH, 0,
     128, 0, true},
    {0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA", PROBE_HA_NONE, PROBE_HE_DH, 0,
     128, 0, true},
    {0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", PROBE_HA_RSA, PROBE_HE_NONE, 0,
     256, 0, true},
    {0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA", PROBE_HA_DSS, PROBE_HE_DH, 0,
     256, 0, true},
    {0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", PROBE_HA_RSA, PROBE_HE_DH, 0,
     256, 0, true},
    {0x003A, "TLS_DH_anon_WITH_AES_256_CBC_SHA", PROBE_HA_NONE, PROBE_HE_DH, 0,
     256, 0, true},
    {0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", PROBE_HA_RSA, PROBE_HE_NONE,
     0, 128, 0, true},
    {0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", PROBE_HA_RSA, PROBE_HE_NONE,
     0, 256, 0, true},
};

#undef RC4
#undef B64
#undef MD5

#define N_SUITES (sizeof(probe_hello_suites) / sizeof(*probe_hello_suites))

/* ---- the ClientHello -------------------------------------------------------
 */

static void
probe_put16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* Append an extension (type, body) at *o; false when it does not fit. */
static bool
probe_hello_ext(unsigned char *out, size_t size, size_t *o, unsigned type,
		const unsigned char *body, size_t len)
{
	if (*o + 4 + len > size)
		return false;
	probe_put16(out + *o, type);
	probe_put16(out + *o + 2, len);
	memcpy(out + *o + 4, body, len);
	*o += 4 + len;
	return true;
}

/* server_name, supported_groups, ec_point_formats, signature_algorithms
   (TLS 1.2) and renegotiation_info: what old and new servers expect. */
static bool
probe_hello_exts(unsigned char *out, size_t size, size_t *o, int version,
		 const char *sni)
{
	static const unsigned char groups[] = {0x00, 0x08, 0x00, 0x1d, 0x00,
					       0x17, 0x00, 0x18, 0x00, 0x19};
	static const unsigned char points[] = {0x01, 0x00};
	static const unsigned char sigalgs[] = {
	    0x00, 0x12, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x02, 0x01,
	    0x04, 0x03, 0x05, 0x03, 0x02, 0x03, 0x04, 0x02, 0x02, 0x02};
	static const unsigned char reneg[] = {0x00};
	unsigned char name[300];
	size_t n = sni != NULL ? strlen(sni) : 0;

	if (n > 0 && n + 5 <= sizeof(name)) {
		probe_put16(name, n + 3);
		name[2] = 0; /* host_name */
		probe_put16(name + 3, n);
		memcpy(name + 5, sni, n);
		if (!probe_hello_ext(out, size, o, 0x0000, name, n + 5))
			return false;
	}
	return probe_hello_ext(out, size, o, 0x000a, groups, sizeof(groups)) &&
	       probe_hello_ext(out, size, o, 0x000b, points, sizeof(points)) &&
	       (version < TLS1_2_VERSION ||
		probe_hello_ext(out, size, o, 0x000d, sigalgs,
				sizeof(sigalgs))) &&
	       probe_hello_ext(out, size, o, 0xff01, reneg, sizeof(reneg));
}

int
probe_hello_build(int version, const unsigned *ids, size_t n, const char *sni,
		  unsigned char *out, size_t size)
{
	size_t o = 9, ext_at;

	if (size < 9 + 2 + 32 + 1 + 2 + 2 * n + 2 + 2 + 64)
		return -1;
	probe_put16(out + o, (size_t)version); /* client_version */
	o += 2;
	if (getrandom(out + o, 32, 0) != 32)
		memset(out + o, 0x42, 32);
	o += 32;
	out[o++] = 0; /* session_id */
	probe_put16(out + o, 2 * (n + 1));
	o += 2;
	for (size_t i = 0; i < n; i++, o += 2)
		probe_put16(out + o, ids[i]);
	probe_put16(out + o, 0x00ff); /* TLS_EMPTY_RENEGOTIATION_INFO_SCSV */
	o += 2;
	out[o++] = 1; /* one compression method: null */
	out[o++] = 0;
	if (version > SSL3_VERSION) {
		ext_at = o;
		o += 2;
		if (!probe_hello_exts(out, size, &o, version, sni))
			return -1;
		probe_put16(out + ext_at, o - ext_at - 2);
	}
	/* record header, then handshake header (RFC 5246 6.2.1, 7.4) */
	out[0] = 22;
	probe_put16(out + 1,
		    version == SSL3_VERSION ? SSL3_VERSION : TLS1_VERSION);
	probe_put16(out + 3, o - 5);
	out[5] = 1; /* client_hello */
	out[6] = (unsigned char)((o - 9) >> 16);
	probe_put16(out + 7, o - 9);
	return (int)o;
}

/* ---- the server's first flight ------------------------------------------- */

static size_t
probe_get16(const unsigned char *p)
{
	return (size_t)p[0] << 8 | p[1];
}

static size_t
probe_get24(const unsigned char *p)
{
	return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
}

/* Named curves of RFC 8422 and RFC 7919 by size (nmap's table). */
static int
probe_hello_curve_bits(unsigned id, char *name, size_t size)
{
	static const struct {
		unsigned id;
		const char *name;
		int bits;
	} c[] = {
	    {19, "secp192r1", 192},	  {21, "secp224r1", 224},
	    {23, "secp256r1", 256},	  {24, "secp384r1", 384},
	    {25, "secp521r1", 521},	  {26, "brainpoolP256r1", 256},
	    {27, "brainpoolP384r1", 384}, {28, "brainpoolP512r1", 512},
	    {29, "x25519", 256},	  {30, "x448", 448},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++)
		if (c[i].id == id) {
			(void)snprintf(name, size, "%s", c[i].name);
			return c[i].bits;
		}
	(void)snprintf(name, size, "curve %u", id);
	return 0;
}

/* One handshake message of the flight into f; false when malformed. */
static bool
probe_hello_message(struct probe_flight *f, unsigned type,
		    const unsigned char *m, size_t len)
{
	switch (type) {
	case 2: /* server_hello */
		if (len < 38 || 35 + (size_t)m[34] + 3 > len)
			return false;
		f->version = (int)probe_get16(m);
		f->suite = (unsigned)probe_get16(m + 35 + m[34]);
		f->has_hello = true;
		return true;
	case 11: /* certificate: the first one is the server's */
		if (len < 6 || probe_get24(m) + 3 > len ||
		    probe_get24(m + 3) + 6 > len)
			return false;
		if (f->cert == NULL) {
			const unsigned char *p = m + 6;

			f->cert = d2i_X509(NULL, &p, (long)probe_get24(m + 3));
		}
		return true;
	case 12: /* server_key_exchange: kept, read by the kex kind */
		if (len > sizeof(f->ske))
			len = sizeof(f->ske);
		memcpy(f->ske, m, len);
		f->ske_len = len;
		return true;
	case 14: /* server_hello_done */
		f->done = true;
		return true;
	default:
		return true;
	}
}

/* Split the handshake bytes gathered so far into messages. */
static int
probe_hello_messages(struct probe_flight *f, const unsigned char *hs,
		     size_t len, size_t *used_r)
{
	size_t o = *used_r;

	while (len - o >= 4) {
		size_t mlen = probe_get24(hs + o + 1);

		if (len - o - 4 < mlen)
			break;
		if (!probe_hello_message(f, hs[o], hs + o + 4, mlen))
			return -1;
		o += 4 + mlen;
		if (f->done)
			break;
	}
	*used_r = o;
	return 0;
}

int
probe_hello_read(struct probe_conn *c, struct probe_flight *f)
{
	unsigned char hs[PROBE_FLIGHT_MAX];
	size_t hs_len = 0, used = 0;

	memset(f, 0, sizeof(*f));
	for (int rec = 0; rec < PROBE_RECORDS_MAX && !f->done; rec++) {
		const unsigned char *h;
		size_t len;

		if (probe_conn_need(c, 5) < 0)
			return f->has_hello ? 1 : -1;
		h = c->buf + c->off;
		len = probe_get16(h + 3);
		if ((h[0] != 21 && h[0] != 22) || h[1] != 3 || len > 18432 ||
		    probe_conn_need(c, 5 + len) < 0) {
			(void)snprintf(c->error, sizeof(c->error), "%s",
				       "not a TLS record");
			return -1;
		}
		h = c->buf + c->off;
		if (h[0] == 21) { /* alert */
			f->alert = len >= 2 ? h[6] : 0;
			c->off += 5 + len;
			return f->has_hello ? 1 : 0;
		}
		if (hs_len + len > sizeof(hs))
			break;
		memcpy(hs + hs_len, h + 5, len);
		hs_len += len;
		c->off += 5 + len;
		if (probe_hello_messages(f, hs, hs_len, &used) < 0) {
			(void)snprintf(c->error, sizeof(c->error), "%s",
				       "malformed handshake message");
			return -1;
		}
	}
	return f->has_hello ? 1 : -1;
}

/* ---- grading
 * ----------------------------------------------------------------- */

/* The bits of the ServerKeyExchange's key, and its name, by kex kind. */
static int
probe_hello_ske(const struct probe_flight *f, enum probe_hello_eph eph,
		char *name, size_t size, enum probe_kex_type *type_r)
{
	const unsigned char *p = f->ske;
	size_t len = f->ske_len, n;
	BIGNUM *bn;
	int bits;

	if (len < 3)
		return -1;
	if (eph == PROBE_HE_EC) {
		*type_r = PROBE_KEX_EC;
		return p[0] == 3 ? probe_hello_curve_bits(
				       (unsigned)probe_get16(p + 1), name, size)
				 : -1;
	}
	n = probe_get16(p);
	if (n == 0 || n + 2 > len)
		return -1;
	bn = BN_bin2bn(p + 2, (int)n, NULL);
	bits = bn != NULL ? BN_num_bits(bn) : -1;
	BN_free(bn);
	*type_r = eph == PROBE_HE_DH ? PROBE_KEX_DH : PROBE_KEX_RSA;
	(void)snprintf(name, size, "%s %d", eph == PROBE_HE_DH ? "dh" : "rsa",
		       bits);
	return bits;
}

/* The certificate's strength for this suite, as nmap: -1 when the suite
   does not use it (or the key type differs), 0 for MD5/SHA-1. */
static int
probe_hello_cert(X509 *cert, enum probe_hello_auth auth, char *name,
		 size_t size, unsigned *warn)
{
	EVP_PKEY *pk = cert != NULL ? X509_get0_pubkey(cert) : NULL;
	int id = pk != NULL ? EVP_PKEY_get_base_id(pk) : 0, md = 0, pkn = 0;
	int bits = pk != NULL ? EVP_PKEY_get_bits(pk) : 0;

	if (pk == NULL || !((auth == PROBE_HA_RSA && id == EVP_PKEY_RSA) ||
			    (auth == PROBE_HA_DSS && id == EVP_PKEY_DSA) ||
			    (auth == PROBE_HA_ECDSA && id == EVP_PKEY_EC)))
		return -1;
	(void)snprintf(name, size, "%s %d",
		       id == EVP_PKEY_RSA   ? "rsa"
		       : id == EVP_PKEY_DSA ? "dsa"
					    : "ec",
		       bits);
	(void)OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md, &pkn);
	if (md == NID_md5 || md == NID_sha1 || md == NID_md4) {
		*warn |= PROBE_SW_WEAKSIG;
		return 0;
	}
	return probe_tls_rsa_equiv(
	    id == EVP_PKEY_EC ? PROBE_KEX_EC : PROBE_KEX_RSA, bits);
}

/* nmap's order: export caps first, anonymous is 0, then the certificate
   and the ephemeral key, the lowest wins. */
static void
probe_hello_grade(const struct probe_hello_suite *hs,
		  const struct probe_flight *f, struct probe_suite *s)
{
	enum probe_kex_type type = PROBE_KEX_RSA;
	char name[48] = "";
	int strength = hs->export_bits > 0 ? hs->export_bits : -1, e;

	s->bits = hs->bits;
	s->warn = hs->warn | (f->version == SSL3_VERSION ? PROBE_SW_SSL3 : 0);
	s->pfs = hs->eph == PROBE_HE_DH || hs->eph == PROBE_HE_EC;
	if (hs->auth == PROBE_HA_NONE) {
		s->warn |= PROBE_SW_ANON;
		strength = 0;
		(void)snprintf(s->kex, sizeof(s->kex), "anonymous");
	} else if ((e = probe_hello_cert(f->cert, hs->auth, s->kex,
					 sizeof(s->kex), &s->warn)) >= 0) {
		strength = strength < 0 || e < strength ? e : strength;
	}
	if (hs->eph != PROBE_HE_NONE &&
	    (e = probe_hello_ske(f, hs->eph, name, sizeof(name), &type)) > 0) {
		e = probe_tls_rsa_equiv(type, e);
		if (hs->auth != PROBE_HA_NONE)
			(void)snprintf(s->kex, sizeof(s->kex), "%s", name);
		strength = strength < 0 || e < strength ? e : strength;
	}
	if (hs->export_bits > 0)
		s->warn |= PROBE_SW_EXPORT;
	s->kex_strength = strength < 0 ? 0 : strength;
	s->grade = probe_tls_letter(s->kex_strength, s->bits);
}

void
probe_hello_grade_id(unsigned id, const struct probe_flight *f,
		     struct probe_suite *s)
{
	memset(s, 0, sizeof(*s));
	s->grade = '?';
	for (size_t i = 0; i < N_SUITES; i++)
		if (probe_hello_suites[i].id == id) {
			(void)snprintf(s->name, sizeof(s->name), "%s",
				       probe_hello_suites[i].name);
			probe_hello_grade(&probe_hello_suites[i], f, s);
		}
}

/* ---- the scan of one version --------------------------------------------- */

/* Offer `ids` once. 1 with the suite in *f, 0 refused, -1 no session. */
static int
probe_hello_try(struct probe_port_state *ps, int version, const unsigned *ids,
		size_t n, struct probe_flight *f, char *why, size_t why_size)
{
	unsigned char hello[PROBE_HELLO_MAX];
	struct probe_conn c;
	int len, rc;

	len = probe_hello_build(version, ids, n, probe_sni(ps->pr), hello,
				sizeof(hello));
	if (len < 0)
		return -1;
	if (probe_session_tls_ready(ps, &c) < 0) {
		(void)snprintf(why, why_size, "%s", c.error);
		return -1;
	}
	ps->pr->sent.handshakes++;
	c.off = c.len = 0;
	rc = probe_conn_send(&c, hello, (size_t)len) < 0
		 ? -1
		 : probe_hello_read(&c, f);
	if (rc <= 0)
		(void)snprintf(why, why_size, "%s",
			       rc == 0 ? "alert" : c.error);
	if (rc == 0 && f->alert == 40)
		(void)snprintf(why, why_size, "%s", "alert handshake failure");
	else if (rc == 0 && f->alert == 70)
		(void)snprintf(why, why_size, "%s", "alert protocol version");
	probe_conn_close(&c);
	return rc < 0 ? 0 : rc;
}

int
probe_hello_scan(struct probe_port_state *ps, int version,
		 const unsigned *exclude, size_t n_exclude,
		 struct probe_suite *out, size_t max, char *why,
		 size_t why_size)
{
	const struct probe_hello_suite *cand[N_SUITES];
	unsigned ids[N_SUITES];
	size_t n = 0, found = 0;

	for (size_t i = 0; i < N_SUITES; i++) {
		bool skip =
		    probe_hello_suites[i].ssl3_only && version != SSL3_VERSION;

		for (size_t k = 0; k < n_exclude && !skip; k++)
			skip = exclude[k] == probe_hello_suites[i].id;
		if (!skip)
			cand[n++] = &probe_hello_suites[i];
	}
	why[0] = '\0';
	for (size_t round = 0; n > 0 && round <= N_SUITES && found < max;
	     round++) {
		struct probe_flight f;
		size_t k = 0;
		int rc;

		for (size_t i = 0; i < n; i++)
			ids[i] = cand[i]->id;
		rc = probe_hello_try(ps, version, ids, n, &f, why, why_size);
		if (rc <= 0 || f.version != version) {
			if (rc > 0)
				(void)snprintf(why, why_size,
					       "the server answered with "
					       "version %04x",
					       (unsigned)f.version);
			X509_free(f.cert);
			break;
		}
		while (k < n && cand[k]->id != f.suite)
			k++;
		if (k == n) { /* a suite we did not offer */
			X509_free(f.cert);
			break;
		}
		memset(&out[found], 0, sizeof(out[found]));
		out[found].version = version;
		(void)snprintf(out[found].name, sizeof(out[found].name), "%s",
			       cand[k]->name);
		probe_hello_grade(cand[k], &f, &out[found]);
		found++;
		X509_free(f.cert);
		cand[k] = cand[--n];
	}
	return (int)found;
}
