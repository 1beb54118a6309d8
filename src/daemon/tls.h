/*
 * tls.h - TLS for the server side: contexts built once from the
 * configuration, chosen by SNI; TLS 1.2 and 1.3 only with Mozilla's
 * "intermediate" ciphers; no renegotiation; session tickets whose keys
 * rotate and are derived from a secret shared by all workers; ALPN that
 * refuses other protocols (ALPACA, THREATS T-08). The event-loop glue
 * (bufferevent_openssl) lives in server.c.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include "conf/config.h"

struct tls_server;

/*
 * Build the contexts for every configured certificate (config.certs).
 * With tls_self_signed, a missing certs[0] is first created: a new EC key
 * and a self-signed certificate for config.hostname, valid one year, files
 * 0600. Errors are written to `errors` ("tls: file: reason") and -1 is
 * returned. `ticket_secret` (32 octets) seeds the ticket keys: the master
 * makes it once so that every worker derives the same keys.
 */
int tls_server_new(const struct config *cfg,
		   const unsigned char ticket_secret[32],
		   struct tls_server **tls_r, FILE *errors);
void tls_server_free(struct tls_server **tls);

/* A new server-side SSL for one connection (SSL_free by the caller). */
SSL *tls_server_ssl(struct tls_server *tls);

/*
 * After the handshake: "TLSv1.3" and "TLS_AES_256_GCM_SHA384" (for the
 * Received header and the logs); both always printable ASCII.
 */
void tls_describe(SSL *ssl, char *version, size_t vsize, char *cipher,
		  size_t csize);

/* The SNI host name the client sent, validated (LDH, <= 253 octets), or
   NULL (THREATS T-07). */
const char *tls_sni(SSL *ssl);

/*
 * Is name[0..len) a host name we accept in SNI: LDH labels of 1 to 63
 * octets, no leading or trailing hyphen, at most 253 octets, no empty label
 * (so no trailing dot, RFC 6066 section 3), no NUL (THREATS T-07).
 */
bool tls_hostname_valid(const char *name, size_t len);

/* Why our own callbacks refused the handshake ("invalid SNI host name"),
   or NULL: OpenSSL itself only says "callback failed". */
const char *tls_failure_note(SSL *ssl);

/* Why a handshake failed, from the OpenSSL error queue (printable). */
void tls_error_reason(char *buf, size_t size);

#endif
