/*
 * probe_int.h - what the files of src/probe/ share: the checks and their
 * results (probe_report.c), a connection with per-operation deadlines
 * (probe_conn.c), SMTP sessions on one port (probe_smtp.c), TLS
 * (probe_tls.c, probe_dane.c), the relay forms (probe_relay.c) and the
 * checks that send mail or stress the server (probe_intrusive.c). See
 * docs/probe.md.
 */
#ifndef POSTERN_PROBE_INT_H
#define POSTERN_PROBE_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "lib/log.h"
#include "smtp/peer_reply.h"

#define PROBE_PORTS_MAX 16
#define PROBE_TIMEOUT_DEFAULT 10 /* seconds per operation */
#define PROBE_TIMEOUT_MAX 300
/* Connections one run may open in all (TLS scans included). */
#define PROBE_CONN_BUDGET 3000
/* Seconds one run may wait in all for a server that answers 421 at
   connect (a connection-rate limit), and the waits. */
#define PROBE_BACKOFF_BUDGET 120

/* ---- results (probe_report.c) --------------------------------------- */

enum probe_result {
	PROBE_SKIP = 0,
	PROBE_PASS,
	PROBE_WARN,
	PROBE_FAIL,
};

/* The checks, in report order; ids as docs/probe.md names them. */
enum probe_check {
	PC_BANNER_VERSION = 0,
	PC_TLS_STARTTLS,
	PC_TLS_PROTOCOLS,
	PC_TLS_CIPHERS,
	PC_TLS_CERTIFICATE,
	PC_TLS_DANE,
	PC_AUTH_BEFORE_TLS,
	PC_AUTH_PLAINTEXT,
	PC_RELAY_OPEN,
	PC_USERS_VRFY,
	PC_USERS_EXPN,
	PC_PIPELINING,
	PC_SMUGGLING,
	PC_LOCKOUT,
	PC_CONN_LIMIT,
	PC_COUNT
};

enum probe_role {
	PROBE_ROLE_CLOSED = 0,	 /* no TCP connection */
	PROBE_ROLE_UNKNOWN,	 /* connected, but neither SMTP nor TLS */
	PROBE_ROLE_PLAIN,	 /* SMTP without STARTTLS */
	PROBE_ROLE_STARTTLS,	 /* SMTP with STARTTLS (RFC 3207) */
	PROBE_ROLE_IMPLICIT_TLS, /* TLS first, then SMTP (RFC 8314) */
};

struct probe_outcome {
	enum probe_result result;
	bool is_set;
	char *detail; /* one line, as built (may hold the server's bytes) */
};

struct probe_port {
	unsigned port;
	enum probe_role role;
	char host[256]; /* where it was probed, when not the target */
	struct probe_outcome checks[PC_COUNT];
};

struct probe_report {
	char target[256];
	struct probe_port *ports;
	size_t n_ports;
	char *sent; /* the note of what was sent (human report only) */
};

/* A growing string for details and notes; out of memory aborts. */
struct probe_buf {
	char *s;
	size_t len, cap;
};

void probe_buf_add(struct probe_buf *b, const char *s, size_t len);
void probe_buf_addf(struct probe_buf *b, const char *fmt, ...) LOG_PRINTF(2, 3);
/* Append the server's bytes as printable ASCII (\xNN for the rest),
   at most `max` of them ("..." marks a cut). */
void probe_buf_add_peer(struct probe_buf *b, const char *s, size_t len,
			size_t max);
/* Take the string (the buffer is emptied; "" when nothing was added). */
char *probe_buf_take(struct probe_buf *b);
void probe_buf_free(struct probe_buf *b);

const char *probe_check_name(enum probe_check id);
const char *probe_result_name(enum probe_result r);
const char *probe_role_name(enum probe_role r);

/* Set (or replace) a check's outcome; detail is printf-formatted. */
void probe_set(struct probe_port *p, enum probe_check id, enum probe_result r,
	       const char *fmt, ...) LOG_PRINTF(4, 5);
/* The same, taking a string made with probe_buf_take(). */
void probe_set_owned(struct probe_port *p, enum probe_check id,
		     enum probe_result r, char *detail);
/* Every check not yet set gets `r` with this detail. */
void probe_set_rest(struct probe_port *p, enum probe_result r,
		    const char *detail);

/*
 * The overall grade (docs/probe.md): 'F' for an open relay or smuggling,
 * 'E' for AUTH in clear text, 'D' for a TLS or lockout failure, 'C' for
 * any other failure, 'B' for warnings only, 'A' otherwise; '-' when no port
 * answered. *why_r names the deciding check ("relay.open on port 25") in
 * a static buffer, or says that nothing failed.
 */
char probe_grade(const struct probe_report *rep, const char **why_r);
/* The severity letter a failure of this check gives. */
char probe_check_severity(enum probe_check id);
/* 0 nothing failed, 1 a check failed, 2 no port could be probed. */
int probe_exit_status(const struct probe_report *rep);

/* A JSON string (quotes included) for bytes that may be anything: valid
   UTF-8 is kept, other octets become U+FFFD, controls are escaped. */
void probe_json_string(FILE *out, const char *s, size_t len);
void probe_report_json(const struct probe_report *rep, FILE *out);
/* The human report; details are cut to the line unless `verbose`. */
void probe_report_text(const struct probe_report *rep, bool verbose, FILE *out);
void probe_report_free(struct probe_report *rep);

/* ---- options and the run ------------------------------------------- */

struct probe_options {
	const char *host;
	unsigned ports[PROBE_PORTS_MAX];
	enum probe_role hints[PROBE_PORTS_MAX];	 /* --self: configured role */
	const char *port_hosts[PROBE_PORTS_MAX]; /* --self: other address */
	size_t n_ports;
	bool json, verbose, intrusive, self;
	unsigned timeout; /* seconds per operation */
	const char *ca;	  /* trust anchors (PEM); NULL: system store */
	const char *name; /* SNI and the name the certificate must carry */
	const char *deliver_to;
	const char *user;
	const char *helo;
	const char *relay_domain;
	const char *dns;	/* resolver address for TLSA, or NULL */
	bool ca_is_self_signed; /* --self with tls-self-signed */
};

/* What was sent, counted for the note at the top of the report. */
struct probe_sent {
	unsigned connections, handshakes, ehlo, help, auth_probes, vrfy, expn,
	    relay_pairs, pipelined, messages, passwords;
};

struct probe {
	const struct probe_options *o;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char addr_text[64];  /* "127.0.0.1", "::1" */
	char ip_literal[80]; /* "[127.0.0.1]", "[IPv6:::1]" */
	bool host_is_ip;
	char helo[256];		/* our EHLO argument */
	SSL_CTX *tls_modern;	/* TLS 1.2+, verifying store loaded */
	SSL_CTX *tls_legacy;	/* every version and suite, level 0 */
	unsigned backoff_spent; /* seconds */
	struct probe_sent sent;
	struct probe_report report;
};

/* ---- connections (probe_conn.c) ------------------------------------- */

struct probe_conn {
	int fd;
	SSL *ssl;
	unsigned timeout_ms;
	unsigned char buf[8192]; /* received, not yet read as replies */
	size_t off, len;
	bool eof;
	bool peer_closed; /* the handshake met a close, not an alert */
	unsigned errors;  /* 4xx and 5xx replies read on it */
	struct peer_reply_parser reader;
	char error[256]; /* why the last operation failed */
};

void probe_conn_init(struct probe_conn *c, unsigned timeout_s);
/* Connect within the timeout. 0, or -1 (c->error). */
int probe_conn_open(struct probe_conn *c, const struct sockaddr *sa,
		    socklen_t len);
/* Close (c->error stays: the caller may report it). */
void probe_conn_close(struct probe_conn *c);
/* The most connections this process had open at once. */
unsigned probe_conn_max_open(void);
bool probe_conn_is_open(const struct probe_conn *c);
int probe_conn_send(struct probe_conn *c, const void *data, size_t len);
/* Send one command line (CRLF added). */
int probe_conn_sendf(struct probe_conn *c, const char *fmt, ...)
    LOG_PRINTF(2, 3);
/* Read one reply. 0, or -1 on a timeout, EOF, I/O or syntax error. */
int probe_conn_reply(struct probe_conn *c, struct peer_reply *r);
/* Have at least n unread octets in c->buf (from c->off), reading as
   needed within the timeout: for raw TLS records. 0 or -1. */
int probe_conn_need(struct probe_conn *c, size_t n);
/* Read one reply if it comes within ms (at most the timeout): TLS
   records that are not data (session tickets) do not count. */
int probe_conn_reply_within(struct probe_conn *c, struct peer_reply *r,
			    unsigned ms);
/* Send a command and read its reply. */
int probe_conn_cmd(struct probe_conn *c, struct peer_reply *r, const char *fmt,
		   ...) LOG_PRINTF(3, 4);
/* TLS handshake on the connection (buffered plain text is dropped).
   `sni` may be NULL. 0, or -1 with the OpenSSL reason in c->error. */
int probe_conn_tls(struct probe_conn *c, SSL_CTX *ctx, const char *sni);

/* ---- SMTP on one port (probe_session.c, probe_smtp.c) ------------- */

struct probe_session {
	struct probe_conn c;
	bool is_tls;
	struct peer_reply ehlo; /* the last EHLO reply */
};

/* What the probe learned about one port. */
struct probe_port_state {
	struct probe *pr;
	struct probe_port *out;
	unsigned port;
	enum probe_role hint;
	const struct sockaddr *addr;
	socklen_t addr_len;
	char srvname[256]; /* the greeting's domain, or our target */
	struct peer_reply greeting;
	struct peer_reply ehlo_plain; /* before TLS (or the only one) */
	struct peer_reply ehlo_tls;   /* after TLS */
	bool has_ehlo_tls;
	bool tls_legacy; /* TLS works only with the legacy context */
	bool tls_works;
	STACK_OF(X509) * chain; /* the server's chain, leaf first */
	long verify_result;
	char tls_version[32], tls_cipher[96];
	int auth_plain_code, auth_login_code; /* AUTH before TLS */
	unsigned clear_offered_plain;	      /* clear mechanisms then */
};

/*
 * Wait before the attempt-th retry after the server turned a connection
 * away (a 421 greeting, a close at connect): 2, 4, 8, 15, 30 s... within
 * the run's PROBE_BACKOFF_BUDGET. false when no wait is left.
 */
bool probe_backoff(struct probe *pr, unsigned attempt);
/* The SNI to send: --name, else the host when it is a DNS name. */
const char *probe_sni(const struct probe *pr);

/* Error replies after which a session is replaced: servers slow down
   past about ten (Postfix smtpd_soft_error_limit, postern error-delay). */
#define PROBE_SESSION_TIRED 8

/*
 * Open a session ready for commands: connect (waiting out 421 greetings
 * within the run's backoff budget), TLS first on implicit TLS, greeting,
 * EHLO, and with `tls` on a STARTTLS port STARTTLS, handshake and EHLO
 * again. A session already open in that state is kept, unless it has
 * had PROBE_SESSION_TIRED error replies. 0, or -1 with the reason in
 * s->c.error.
 */
int probe_session_get(struct probe_port_state *ps, struct probe_session *s,
		      bool tls);
/* QUIT (reply awaited briefly) and close. */
void probe_session_end(struct probe_session *s);
/* A connection for a TLS scan: connected (and STARTTLS accepted on a
   STARTTLS port), ready for the ClientHello. */
int probe_session_tls_ready(struct probe_port_state *ps, struct probe_conn *c);

/* Decide the role of a port; fills ps (greeting, EHLO, srvname) and
   leaves s open after EHLO. */
void probe_smtp_detect(struct probe_port_state *ps, struct probe_session *s);
/* banner.version, auth.*, users.*, pipelining (probe_smtp.c), on s. */
void probe_smtp_checks(struct probe_port_state *ps, struct probe_session *s);
/* pipelining on s, when its EHLO offers it (else a skip). */
void probe_pipelining_check(struct probe_port_state *ps,
			    struct probe_session *s);
/* auth.plaintext_mechanisms, once both EHLO replies are known. */
void probe_auth_verdict(struct probe_port_state *ps);
/* STARTTLS on s (modern TLS, else legacy): the EHLO inside TLS and the
   server's chain are kept; a failure sets tls.starttls. */
void probe_starttls_upgrade(struct probe_port_state *ps,
			    struct probe_session *s);
/* tls.starttls, with the injection test on a connection of its own
   (the caller has ended its session: one connection at a time). */
void probe_starttls_check(struct probe_port_state *ps);
/*
 * Look for software names and versions in a greeting or EHLO line
 * (without its first word, the server's name). Writes what was found
 * into b ("Postfix", "3.7.11"); returns 2 for a version, 1 for a name
 * only, 0 for nothing.
 */
int probe_banner_scan(const char *text, size_t len, struct probe_buf *b);
/* Does an EHLO reply list this keyword (case-insensitive)? The value
   after it (", "PLAIN LOGIN") goes to *args_r when asked. */
bool probe_ehlo_has(const struct peer_reply *ehlo, const char *kw,
		    const char **args_r, size_t *args_len_r);

/* ---- relay (probe_relay.c) ------------------------------------------ */

#define PROBE_RELAY_FORMS_MAX 40

struct probe_relay_form {
	char from[300]; /* between the angle brackets */
	char to[300];
	const char *kind; /* "nmap 1" .. "nmap 16", "source route", ... */
	bool valid;	  /* a valid RFC 5321 path for our parser */
	bool foreign;	  /* its domain is neither srvname nor the IP */
	bool space;	  /* "RCPT TO: <...>" */
};

/*
 * Build the relay forms: nmap smtp-open-relay's 16, then more. `domain`
 * is the foreign domain, `srvname` the server's name and `ip_literal`
 * its address literal ("[192.0.2.1]"). Returns the count.
 */
size_t probe_relay_forms(const char *domain, const char *srvname,
			 const char *ip_literal, struct probe_relay_form *forms,
			 size_t max);
void probe_relay_check(struct probe_port_state *ps, struct probe_session *s);

/* ---- TLS (probe_tls.c, probe_dane.c) --------------------------------- */

/* The two client contexts of a run. -1 with *error_r on a bad --ca. */
int probe_tls_init(struct probe *pr, const char **error_r);
void probe_tls_deinit(struct probe *pr);
/* After the main handshake: keep chain, verify result, version, cipher. */
void probe_tls_note_peer(struct probe_port_state *ps, SSL *ssl);
/* tls.protocols and tls.ciphers (many handshakes, probe_tls_scan.c)
   and tls.certificate. */
void probe_tls_checks(struct probe_port_state *ps);
void probe_tls_certificate_check(struct probe_port_state *ps);
/* Free what probe_tls_note_peer() kept. */
void probe_tls_forget_peer(struct probe_port_state *ps);

/* One accepted suite, graded (probe_tls_scan.c, probe_hello.c). */
enum probe_suite_warn {
	PROBE_SW_ANON = 1 << 0,
	PROBE_SW_NULL = 1 << 1,
	PROBE_SW_RC4 = 1 << 2,
	PROBE_SW_64BIT = 1 << 3,
	PROBE_SW_MD5 = 1 << 4,
	PROBE_SW_WEAKSIG = 1 << 5,
	PROBE_SW_EXPORT = 1 << 6,
	PROBE_SW_SSL3 = 1 << 7,
};

struct probe_suite {
	int version;
	char name[80]; /* IANA name */
	char kex[48];  /* "secp256r1", "rsa 2048", "dh 2048", "anonymous" */
	int kex_strength;
	int bits;
	char grade;
	unsigned warn;
	bool pfs;
};

/* nmap ssl-enum-ciphers: the score of a suite and its letter. */
enum probe_kex_type { PROBE_KEX_RSA, PROBE_KEX_DH, PROBE_KEX_EC };
int probe_tls_rsa_equiv(enum probe_kex_type type, int bits);
char probe_tls_letter(int kex_strength, int cipher_bits);

/* ---- hand-made hellos (probe_hello.c) ---- */

/* What the server's first flight said. */
struct probe_flight {
	bool has_hello, done;	 /* ServerHello, ServerHelloDone seen */
	int version;		 /* ServerHello.server_version */
	unsigned suite;		 /* ServerHello.cipher_suite */
	unsigned alert;		 /* the alert's description, when refused */
	X509 *cert;		 /* the first certificate, or NULL */
	unsigned char ske[1024]; /* ServerKeyExchange, cut */
	size_t ske_len;
};

/* A ClientHello record for `version` (SSL3_VERSION..TLS1_2_VERSION)
   offering ids. The length, or -1 when it does not fit. */
int probe_hello_build(int version, const unsigned *ids, size_t n,
		      const char *sni, unsigned char *out, size_t size);
/* Read the server's records up to ServerHelloDone or an alert. 1 a
   ServerHello (f->cert is the caller's to free), 0 an alert, -1 else. */
int probe_hello_read(struct probe_conn *c, struct probe_flight *f);
/* Grade a suite of the legacy table for the flight (for the tests);
   s->grade stays '?' for an id not in the table. */
void probe_hello_grade_id(unsigned id, const struct probe_flight *f,
			  struct probe_suite *s);
/*
 * Scan one version with hand-made hellos: the legacy suites (and, for
 * SSLv3, the usual ones too), minus `exclude` (the IANA ids OpenSSL
 * offered). Found suites go to out; returns their count; why says why
 * the last offer was refused.
 */
int probe_hello_scan(struct probe_port_state *ps, int version,
		     const unsigned *exclude, size_t n_exclude,
		     struct probe_suite *out, size_t max, char *why,
		     size_t why_size);

/* tls.dane */
#define PROBE_TLSA_MAX 16
struct probe_tlsa {
	unsigned usage, selector, mtype; /* RFC 6698 section 2.1 */
	unsigned char data[2048];
	size_t len;
	bool too_long; /* data longer than the buffer (a full cert) */
};

/* The TLSA records (any owner) of a DNS answer and its AD bit. The
   count, or -1 when the answer is malformed. */
int probe_dane_parse(const unsigned char *ans, int len, struct probe_tlsa *out,
		     size_t max, bool *ad_r);
/* 1 the record matches the chain (leaf first), 0 not, -1 unusable for
   SMTP (RFC 7672 3.1.3: usages 0 and 1) or unknown. */
int probe_dane_match(const struct probe_tlsa *t, STACK_OF(X509) * chain);
void probe_dane_check(struct probe_port_state *ps);

/* ---- intrusive (probe_intrusive.c) ---------------------------------- */

void probe_smuggling_check(struct probe_port_state *ps);
/* lockout and conn-limit: once per run, on the first port that suits. */
void probe_intrusive_checks(struct probe *pr, struct probe_port_state *states,
			    size_t n);

#endif
