/*
 * config.h - the configuration: one directive per line, read by a
 * table-driven parser (config.c). The table row of each directive gives its
 * name, arity, default, bounds and a one-line doc; `postern check` and
 * docs/config.md follow the same table.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "lib/log.h"

enum listen_role {
	ROLE_MX = 0,	  /* port 25: local delivery only, never relays */
	ROLE_SUBMISSION,  /* 587/2525: STARTTLS, then AUTH (submission issue) */
	ROLE_SUBMISSIONS, /* 465: implicit TLS, then AUTH (submission issue) */
};

/* An unauthenticated mx client giving a sender in one of our domains. */
enum burst_action {
	BURST_ACTION_HOLD = 0, /* accept and hold until released */
	BURST_ACTION_REFUSE,   /* 451 4.7.1 until released */
	BURST_ACTION_LOG,      /* only the log line and the notice */
};

enum mx_local_senders {
	MX_LOCAL_SENDERS_REFUSE = 0, /* 550 5.7.1 (our users submit) */
	MX_LOCAL_SENDERS_ACCEPT,     /* sites forwarding back to themselves */
};

enum sync_method {
	SYNC_SYNCFS = 0, /* one syncfs(2) per batch and file system */
	SYNC_FSYNC,	 /* fsync(2) of every file and directory touched */
};

struct config_listener {
	char addr_text[80]; /* as written: "127.0.0.1:25", "[::1]:25" */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	enum listen_role role;
	unsigned line; /* where it was declared */
};

/* A certificate chain and its key (PEM files). */
struct config_cert {
	char *cert;
	char *key;
	unsigned line;
};

/* A network in CIDR form, for allow-lists. */
struct config_network {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix; /* bits */
};

/* A local mailbox: canonical address, split, lower-case ASCII. */
struct config_mailbox {
	char *local;  /* local part, validated: [A-Za-z0-9._+=-], no
			 leading or trailing dot, no "..", <= 64 octets */
	char *domain; /* one of config.domains */
};

/* Where mail goes instead of the MX: `transport` and `relay-host`. */
struct config_route {
	char *domain; /* lower case; NULL for relay-host */
	char *host;   /* a host name or an IP address */
	unsigned port;
	bool no_mx;   /* written [host]: its addresses, no MX lookup */
	unsigned line;
};

/* tls-policy DOMAIN POLICY (docs/outbound.md). */
enum tls_policy {
	TLS_POLICY_MAY = 0, /* opportunistic; DANE when published */
	TLS_POLICY_NONE,    /* never TLS */
	TLS_POLICY_ENCRYPT, /* TLS required, not verified */
	TLS_POLICY_VERIFY,  /* TLS required, CA and host name verified */
	TLS_POLICY_DANE,    /* DANE required */
};

struct config_tls_policy {
	char *domain; /* lower case */
	enum tls_policy policy;
	unsigned line;
};

enum relay_tls {
	RELAY_TLS_STARTTLS = 0, /* STARTTLS, required */
	RELAY_TLS_IMPLICIT,	/* TLS from the first octet (RFC 8314) */
};

struct config {
	char *file; /* path it was read from, or "(built-in)" */

	char *hostname;	    /* our name in the greeting and Received */
	char **domains;	    /* lower case; the domains we accept mail for */
	size_t n_domains;
	struct config_mailbox *mailboxes; /* sorted by domain, then local */
	size_t n_mailboxes;
	char *maildir;	    /* template, %d domain, %n local part, %% */
	/* Receives postmaster@ and abuse@ of our domains (RFC 5321 4.5.1,
	   RFC 2142); local NULL: each gets a Maildir of its own. */
	struct config_mailbox postmaster;
	char *spool;	    /* spool directory (absolute after load) */
	char *user;	    /* account the workers run as, or NULL */
	char *guard_user;   /* account the guard runs as, or NULL: user */
	char *admin_group;  /* may use the control socket, or NULL */

	struct config_listener *listeners;
	size_t n_listeners;

	unsigned workers;	  /* 0: one per core */
	uint64_t max_message_size; /* octets, after dot-unstuffing */
	unsigned max_recipients;
	unsigned max_sessions;	  /* per server, shared among workers */
	unsigned error_limit;	  /* protocol errors before 421 and close */
	unsigned reject_limit;	  /* policy refusals before 421 and close */
	unsigned error_delay;	  /* seconds an error reply waits, past the
				     soft limit (tarpit) */
	unsigned hop_limit;	  /* Received headers before 554 5.4.6 */
	uint64_t header_size_limit; /* octets of header section */

	/* Timeouts in seconds, RFC 5321 section 4.5.3.2. */
	unsigned timeout_command; /* waiting for the next command */
	unsigned timeout_data;	  /* between two reads inside DATA/BDAT */
	unsigned timeout_shutdown; /* SIGTERM: open sessions may finish */
	unsigned greet_delay;	  /* seconds before the 220 (0: none) */

	enum log_level log_level;
	enum sync_method sync_method;

	/* TLS (RFC 3207, RFC 8314). The first certificate is the default;
	   others are chosen by SNI from their names. */
	struct config_cert *certs;
	size_t n_certs;
	bool tls_self_signed;	       /* create certs[0] when missing */
	unsigned tls_handshake_timeout; /* seconds */

	/* Users (Dovecot passwd-file): they are local mailboxes too. */
	char *users_file;
	bool from_header_check; /* From: must be the user's address */
	enum mx_local_senders mx_local_senders;
	bool sandbox;		/* seccomp + Landlock: workers, guard, queue */

	/* The guard: lockout after failed logins, per-address limits. */
	unsigned auth_account_failures; /* in the window, then locked */
	unsigned auth_address_failures;
	unsigned auth_failure_window;	/* seconds */
	unsigned auth_lock_time;	/* first lock, seconds; doubles */
	unsigned auth_lock_max;		/* longest lock, seconds */
	unsigned login_networks_hour;	/* alarm past this many; 0: none */
	char *guard_state;		/* the guard's state directory */
	struct config_network *auth_allow; /* never locked out */
	size_t n_auth_allow;
	unsigned auth_cache_ttl;	/* seconds; 0: no cache */
	unsigned auth_failure_delay;	/* seconds before a 535 (+ jitter) */
	unsigned auth_threads;		/* hashing threads; 0: one per core */
	unsigned auth_queue_per_network; /* hashes waiting per /24 or /48 */
	unsigned conn_limit_per_address; /* concurrent sessions; 0: none */
	unsigned conn_rate_per_address;	 /* new sessions a minute; 0: none */
	struct config_network *conn_limit_exempt; /* the two limits above */
	size_t n_conn_limit_exempt;		  /* never apply to these */
	char *control_socket;		/* for postern locks / unlock */

	/* Send limits and the volume alarm (docs/sendlimit.md). */
	unsigned send_limit_hour;	/* recipients; 0: none */
	unsigned send_limit_day;
	unsigned new_recipients_day;
	unsigned burst_floor;
	unsigned burst_factor;
	enum burst_action burst_action;

	/* Outbound delivery: the queue process (docs/outbound.md). */
	char **dns_resolvers;	  /* "ADDR" or "ADDR@PORT"; none: resolv.conf */
	size_t n_dns_resolvers;
	char *dns_trust_anchor;	  /* DS/DNSKEY file, or NULL: no DNSSEC */
	unsigned outbound_sessions;	     /* client sessions in all */
	unsigned outbound_sessions_per_dest; /* ... to one destination */
	unsigned retry_min, retry_max;	     /* seconds between attempts */
	unsigned queue_lifetime;	     /* seconds, then it bounces */
	unsigned delay_warning;		     /* seconds; 0: no notice */
	struct config_route *transports;     /* per domain */
	size_t n_transports;
	struct config_route *relay_host;     /* NULL: by MX */
	char *relay_auth_user;		     /* NULL: no AUTH */
	char *relay_auth_file;		     /* its password */
	enum relay_tls relay_tls;
	char *outbound_tls_ca;		     /* NULL: the system's CAs */
	bool outbound_delivery;		     /* no: keep remote mail queued */
	bool mta_sts;			     /* MTA-STS (RFC 8461) */
	struct config_tls_policy *tls_policies;
	size_t n_tls_policies;
};

/*
 * Read and validate a configuration file. On success *cfg_r holds a new
 * config and 0 is returned. On failure -1 is returned and every error found
 * has been written to `errors` as "file:line: message\n" (all errors, not
 * only the first).
 */
int config_load(const char *path, struct config **cfg_r, FILE *errors);

/* The embedded development configuration (see docs/config.md). */
int config_load_builtin(struct config **cfg_r, FILE *errors);

/* Parse a configuration held in memory; `name` is used in messages. */
int config_load_string(const char *name, const char *text,
		       struct config **cfg_r, FILE *errors);

void config_free(struct config **cfg);

/* Is `domain` (any case, no trailing dot) one of ours? */
bool config_is_local_domain(const struct config *cfg, const char *domain);

/*
 * Find a local mailbox by local part and domain (ASCII case-insensitive).
 * Returns NULL when there is none.
 */
const struct config_mailbox *config_find_mailbox(const struct config *cfg,
						 const char *local,
						 const char *domain);

/*
 * Expand the maildir template for `mb` into buf. Returns 0, or -1 when the
 * result does not fit or a part is unsafe (see mailpath_check_part()).
 */
int config_maildir_path(const struct config *cfg,
			const struct config_mailbox *mb, char *buf,
			size_t size);

/* Write docs/config.md-style text for every directive (postern directives). */
void config_write_reference(FILE *out);

const char *config_role_name(enum listen_role role);

/* The tls-policy of `domain` (lower case): TLS_POLICY_MAY when none. */
/* Is there a tls-policy line for `domain`? */
bool config_has_tls_policy(const struct config *cfg, const char *domain);
enum tls_policy config_find_tls_policy(const struct config *cfg,
				       const char *domain);

/* The `transport` of `domain` (lower case), else the `relay-host`, else
   NULL: deliver by MX. */
const struct config_route *config_find_route(const struct config *cfg,
					     const char *domain);

#endif
