/*
 * config_table.c - the directives: one row each, in the order of the
 * reference (docs/config.md), and the embedded development configuration.
 * A file that is one table.
 */
#include "conf/config_int.h"

#include <stddef.h>

/*
 * The embedded development configuration (docs/config.md shows it too).
 * Its relative paths are relative to the current directory: there is no
 * file to be relative to. The server makes the certificate and the demo
 * user on first start.
 */
const char config_builtin_text[] =
    "hostname localhost\n"
    "domains example.test\n"
    "mailbox demo@example.test\n"
    "postmaster demo@example.test\n"
    "users var/users\n"
    "spool var/spool\n"
    "maildir var/mail/%d/%n/Maildir\n"
    "control-socket var/run/postern.sock\n"
    "tls-certificate var/tls/cert.pem var/tls/key.pem\n"
    "tls-self-signed yes\n"
    "conn-limit-exempt 127.0.0.0/8 ::1\n"
    "listen 127.0.0.1:2025 mx\n"
    "listen [::1]:2025 mx\n"
    "listen 127.0.0.1:2587 submission\n"
    "listen 127.0.0.1:2525 submission\n"
    "listen 127.0.0.1:2465 submissions\n";
const char *const config_role_words[] = {"mx", "submission",
						"submissions", NULL};
static const char *const config_level_words[] = {"debug",   "info",  "notice",
						 "warning", "error", NULL};
static const char *const config_sync_words[] = {"syncfs", "fsync", NULL};
static const char *const config_relay_tls_words[] = {"starttls", "implicit",
						     NULL};
static const char *const config_local_sender_words[] = {"refuse", "accept",
							NULL};
static const char *const config_burst_action_words[] = {"hold", "refuse", "log",
							NULL};

_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum sync_method) == sizeof(int), "enum size");
_Static_assert(sizeof(enum relay_tls) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mx_local_senders) == sizeof(int), "enum size");
_Static_assert(sizeof(enum burst_action) == sizeof(int), "enum size");

#define FIELD(f) offsetof(struct config, f)
#define ROW_NUM(n, a, f, u, d, lo, hi, doc_)                                   \
	{                                                                      \
		.name = n, .args = a, .min_args = 1, .max_args = 1,            \
		.parse = config_parse_number, .field = FIELD(f), .def = d,     \
		.unit = u, .min = lo, .max = hi, .doc = doc_                   \
	}
#define ROW_BOOL(n, f, d, doc_)                                                \
	{                                                                      \
		.name = n, .args = "BOOLEAN", .min_args = 1, .max_args = 1,    \
		.parse = config_parse_bool, .field = FIELD(f), .def = d,       \
		.doc = doc_                                                    \
	}

/*
 * The directives, in the order of the reference. Sizes are multiples of
 * 1024; durations are seconds.
 */
const struct config_directive config_directives[] = {
    {.name = "hostname",
     .args = "NAME",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_hostname,
     .field = FIELD(hostname),
     .flags = DIR_REQUIRED,
     .doc = "our domain name, in the greeting and Received headers"},
    {.name = "domains",
     .args = "DOMAIN...",
     .min_args = 1,
     .parse = config_parse_domains,
     .flags = DIR_REQUIRED | DIR_REPEAT,
     .doc = "domains we accept mail for; repeat to add more"},
    {.name = "mailbox",
     .args = "ADDRESS...",
     .min_args = 1,
     .parse = config_parse_mailbox,
     .flags = DIR_REPEAT,
     .doc = "local mailboxes, user@domain; repeat to add more"},
    {.name = "mailboxes",
     .args = "FILE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_mailboxes,
     .flags = DIR_REPEAT,
     .doc = "file of mailboxes, one address per line, relative to "
	    "this file's directory"},
    {.name = "postmaster",
     .args = "ADDRESS",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_postmaster,
     .doc = "mailbox that receives postmaster@ and abuse@ of our domains "
	    "(none: a Maildir of their own)"},
    {.name = "users",
     .args = "FILE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_path,
     .field = FIELD(users_file),
     .doc = "users file (Dovecot passwd-file), relative to this file's "
	    "directory; its users are local mailboxes too"},
    {.name = "maildir",
     .args = "TEMPLATE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_template,
     .field = FIELD(maildir),
     .def = "var/mail/%d/%n/Maildir",
     .doc = "Maildir of a mailbox: %d domain, %n local part, %% percent"},
    {.name = "spool",
     .args = "DIR",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(spool),
     .def = "var/spool",
     .doc = "spool directory"},
    {.name = "control-socket",
     .args = "PATH",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(control_socket),
     .def = "var/run/postern.sock",
     .doc = "Unix socket of `postern locks` and `postern unlock`"},
    {.name = "guard-state",
     .args = "DIR",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(guard_state),
     .def = "var/guard",
     .doc = "the guard's state (locks, failures, known networks; "
	    "docs/guard-state.md), owned by the guard's account, mode 0700"},
    {.name = "user",
     .args = "NAME",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(user),
     .doc = "account the workers run as (none: the current one)"},
    {.name = "guard-user",
     .args = "NAME",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(guard_user),
     .doc = "account the guard runs as, the only one that reads the users "
	    "file (none: `user`); see docs/security.md"},
    {.name = "admin-group",
     .args = "GROUP",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_string,
     .field = FIELD(admin_group),
     .doc = "group whose members may use the control socket, besides root "
	    "(none: root only)"},
    {.name = "listen",
     .args = "ADDR:PORT ROLE",
     .min_args = 2,
     .max_args = 2,
     .parse = config_parse_listen,
     .words = config_role_words,
     .flags = DIR_REQUIRED | DIR_REPEAT,
     .doc = "a listening socket; ADDR is IPv4, [IPv6] or localhost"},
    {.name = "tls-certificate",
     .args = "CERT KEY",
     .min_args = 2,
     .max_args = 2,
     .parse = config_parse_cert,
     .flags = DIR_REPEAT,
     .doc = "PEM certificate chain and key, relative to this file's "
	    "directory; repeat for more names (SNI), the first is the "
	    "default"},
    ROW_BOOL("tls-self-signed", tls_self_signed, "no",
	     "create the first certificate, self-signed, when it is missing"),
    ROW_NUM("tls-handshake-timeout", "DURATION", tls_handshake_timeout,
	    UNIT_DURATION, "20s", 1, 300,
	    "time a client has to finish the TLS handshake"),
    ROW_NUM("workers", "N", workers, UNIT_COUNT, "0", 0, 64,
	    "worker processes (0: one per core)"),
    ROW_NUM("max-message-size", "SIZE", max_message_size, UNIT_SIZE, "50M",
	    CONFIG_KIB, 2 * CONFIG_KIB * CONFIG_KIB * CONFIG_KIB,
	    "largest message accepted (RFC 1870 SIZE)"),
    ROW_NUM("max-recipients", "N", max_recipients, UNIT_COUNT, "1000", 1,
	    100000, "recipients per message (RFC 5321 4.5.3.1.8)"),
    ROW_NUM("max-sessions", "N", max_sessions, UNIT_COUNT, "10000", 1, 1000000,
	    "open sessions, all workers together"),
    ROW_NUM("error-limit", "N", error_limit, UNIT_COUNT, "10", 1, 1000,
	    "protocol errors in a session before 421 and close"),
    ROW_NUM("reject-limit", "N", reject_limit, UNIT_COUNT, "20", 1, 1000,
	    "refused senders, recipients, messages before 421 and close"),
    ROW_NUM("error-delay", "DURATION", error_delay, UNIT_DURATION, "1s", 0,
	    10, "delay of each error reply past 10 errors and refusals"),
    ROW_NUM("hop-limit", "N", hop_limit, UNIT_COUNT, "50", 1, 500,
	    "Received headers before 554 5.4.6 (mail loop)"),
    ROW_NUM("header-size-limit", "SIZE", header_size_limit, UNIT_SIZE, "100K",
	    CONFIG_KIB, 16 * CONFIG_KIB * CONFIG_KIB, "largest header section"),
    ROW_NUM("timeout-command", "DURATION", timeout_command, UNIT_DURATION, "5m",
	    1, 86400, "wait for the next command (RFC 5321 4.5.3.2.7)"),
    ROW_NUM("timeout-data", "DURATION", timeout_data, UNIT_DURATION, "3m", 1,
	    86400, "wait for more data in DATA or BDAT (RFC 5321 4.5.3.2.6)"),
    ROW_NUM("timeout-shutdown", "DURATION", timeout_shutdown, UNIT_DURATION,
	    "30s", 1, 86400, "time SIGTERM gives open sessions to finish"),
    ROW_NUM("greet-delay", "DURATION", greet_delay, UNIT_DURATION, "0", 0, 60,
	    "wait before the 220; a client talking first gets 554 5.5.0"),
    {.name = "log-level",
     .args = "LEVEL",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_keyword,
     .field = FIELD(log_level),
     .def = "info",
     .words = config_level_words,
     .doc = "least important message logged"},
    {.name = "sync-method",
     .args = "METHOD",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_keyword,
     .field = FIELD(sync_method),
     .def = "syncfs",
     .words = config_sync_words,
     .doc = "how spool writes are made durable"},
    ROW_BOOL("from-header-check", from_header_check, "yes",
	     "an authenticated user's From: must be one of their addresses"),
    {.name = "mx-local-senders",
     .args = "WORD",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_keyword,
     .field = FIELD(mx_local_senders),
     .def = "refuse",
     .words = config_local_sender_words,
     .doc = "a sender in our domains on mx without AUTH: refuse (550 5.7.1) "
	    "or accept"},
    ROW_BOOL("sandbox", sandbox, "yes",
	     "seccomp filter and Landlock rules in the workers, the guard "
	     "and the queue process (docs/security.md); no only for "
	     "debugging"),
    ROW_NUM("auth-account-failures", "N", auth_account_failures, UNIT_COUNT,
	    "5", 1, 1000,
	    "failed logins to one account in the window before it is locked"),
    ROW_NUM("auth-address-failures", "N", auth_address_failures, UNIT_COUNT,
	    "10", 1, 10000,
	    "failed logins from one client address in the window before it "
	    "is locked"),
    ROW_NUM("auth-failure-window", "DURATION", auth_failure_window,
	    UNIT_DURATION, "15m", 1, 86400, "how long a failed login counts"),
    ROW_NUM("auth-lock-time", "DURATION", auth_lock_time, UNIT_DURATION, "5m",
	    1, 86400, "first lock; doubles on each relapse"),
    ROW_NUM("auth-lock-max", "DURATION", auth_lock_max, UNIT_DURATION, "1h", 1,
	    7 * 86400, "longest lock; at least auth-lock-time"),
    ROW_NUM("login-networks-hour", "N", login_networks_hour, UNIT_COUNT, "5",
	    0, 63,
	    "alarm when one account logs in from more networks (IPv4 /24, "
	    "IPv6 /48) in an hour (0: never)"),
    {.name = "auth-allow",
     .args = "NETWORK...",
     .min_args = 1,
     .parse = config_parse_network,
     .flags = DIR_REPEAT,
     .doc = "client networks never locked out (a.b.c.d/n, x::y/n, or an "
	    "address)"},
    ROW_NUM("auth-failure-delay", "DURATION", auth_failure_delay, UNIT_DURATION,
	    "1s", 0, 10, "wait before answering a failed login (535)"),
    ROW_NUM("auth-cache-ttl", "DURATION", auth_cache_ttl, UNIT_DURATION, "5m",
	    0, 86400,
	    "how long a verified password is remembered, saving its hash "
	    "(0: no cache)"),
    ROW_NUM("auth-threads", "N", auth_threads, UNIT_COUNT, "0", 0, 64,
	    "password hashing threads in the guard (0: one per core)"),
    ROW_NUM("auth-queue-per-network", "N", auth_queue_per_network,
	    UNIT_COUNT, "64", 1, 4096,
	    "logins waiting for a hash from one client network (IPv4 /24, "
	    "IPv6 /48); more get 454 4.7.0 at once"),
    ROW_NUM("conn-limit-per-address", "N", conn_limit_per_address, UNIT_COUNT,
	    "50", 0, 1000000,
	    "open sessions from one client address (0: no limit)"),
    ROW_NUM("conn-rate-per-address", "N", conn_rate_per_address, UNIT_COUNT,
	    "300", 0, 1000000,
	    "new sessions a minute from one client address (0: no limit)"),
    {.name = "conn-limit-exempt",
     .args = "NETWORK...",
     .min_args = 1,
     .parse = config_parse_exempt,
     .flags = DIR_REPEAT,
     .doc = "client networks the two limits above never refuse (the "
	    "lockout still applies)"},
    /* Send limits and the volume alarm (docs/sendlimit.md). */
    ROW_NUM("send-limit-hour", "N", send_limit_hour, UNIT_COUNT, "200", 0,
	    1000000,
	    "recipients an authenticated account may send to in a sliding "
	    "hour (0: no limit)"),
    ROW_NUM("send-limit-day", "N", send_limit_day, UNIT_COUNT, "1000", 0,
	    10000000,
	    "recipients an authenticated account may send to in a sliding "
	    "day (0: no limit)"),
    ROW_NUM("new-recipients-day", "N", new_recipients_day, UNIT_COUNT, "200",
	    0, 1000000,
	    "first-time recipients an account may send to in a UTC day (0: "
	    "no limit)"),
    ROW_NUM("burst-floor", "N", burst_floor, UNIT_COUNT, "50", 1, 1000000,
	    "an account's hour must exceed this many recipients to alarm"),
    ROW_NUM("burst-factor", "N", burst_factor, UNIT_COUNT, "10", 1, 100000,
	    "... and this many times the account's baseline"),
    {.name = "burst-action",
     .args = "WORD",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_keyword,
     .field = FIELD(burst_action),
     .def = "hold",
     .words = config_burst_action_words,
     .doc = "on a send-burst alarm: hold the account's mail in the queue, "
	    "refuse it (451 4.7.1), or only log"},
    /* Outbound delivery (docs/outbound.md). */
    {.name = "dns-resolver",
     .args = "ADDR[:PORT]...",
     .min_args = 1,
     .parse = config_parse_resolver,
     .flags = DIR_REPEAT,
     .doc = "resolvers to forward DNS queries to (none: those of "
	    "/etc/resolv.conf)"},
    {.name = "dns-trust-anchor",
     .args = "FILE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_trust_anchor,
     .def = "/usr/share/dns/root.key",
     .doc = "DNSSEC trust anchors (DS or DNSKEY records); none, or a "
	    "missing file, turns validation off"},
    ROW_BOOL("outbound-delivery", outbound_delivery, "yes",
	     "send remote mail; no keeps it queued, untried (maintenance)"),
    ROW_NUM("outbound-sessions", "N", outbound_sessions, UNIT_COUNT, "100", 1,
	    10000, "outbound SMTP sessions at once, in all"),
    ROW_NUM("outbound-sessions-per-destination", "N",
	    outbound_sessions_per_dest, UNIT_COUNT, "20", 1, 1000,
	    "outbound SMTP sessions at once to one destination domain"),
    ROW_NUM("retry-min", "DURATION", retry_min, UNIT_DURATION, "5m", 1,
	    86400, "first wait after a failed attempt; doubles each time"),
    ROW_NUM("retry-max", "DURATION", retry_max, UNIT_DURATION, "1h", 1,
	    7 * 86400, "longest wait between attempts"),
    ROW_NUM("queue-lifetime", "DURATION", queue_lifetime, UNIT_DURATION,
	    "120h", 1, 60 * 86400,
	    "how long a message is retried before it bounces"),
    ROW_NUM("delay-warning", "DURATION", delay_warning, UNIT_DURATION, "4h",
	    0, 60 * 86400,
	    "after this long undelivered the sender gets one notice (0: "
	    "never)"),
    {.name = "transport",
     .args = "DOMAIN [HOST]:PORT",
     .min_args = 2,
     .max_args = 2,
     .parse = config_parse_transport,
     .flags = DIR_REPEAT,
     .doc = "send a domain's mail to a fixed host ([HOST]: no MX lookup; "
	    "port 25 when not given)"},
    {.name = "relay-host",
     .args = "[HOST]:PORT",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_relay_host,
     .doc = "send all remote mail through this smarthost"},
    {.name = "relay-auth",
     .args = "USER FILE",
     .min_args = 2,
     .max_args = 2,
     .parse = config_parse_relay_auth,
     .doc = "AUTH PLAIN/LOGIN to the relay-host, only over TLS; FILE holds "
	    "the password and must be readable only by its owner"},
    {.name = "relay-tls",
     .args = "MODE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_keyword,
     .field = FIELD(relay_tls),
     .def = "starttls",
     .words = config_relay_tls_words,
     .doc = "TLS to the relay-host: starttls (required) or implicit"},
    {.name = "outbound-tls-ca",
     .args = "FILE",
     .min_args = 1,
     .max_args = 1,
     .parse = config_parse_path,
     .field = FIELD(outbound_tls_ca),
     .doc = "CA certificates (PEM) that verify the relay-host's, "
	    "tls-policy verify hosts', MTA-STS hosts' and MTA-STS policy "
	    "servers' certificates, relative to this file's directory "
	    "(none: the system's)"},
    ROW_BOOL("mta-sts", mta_sts, "yes",
	     "MTA-STS (RFC 8461): fetch and apply the policies of recipient "
	     "domains (over HTTPS, verified with outbound-tls-ca or the "
	     "system's CAs)"),
    {.name = "tls-policy",
     .args = "DOMAIN POLICY",
     .min_args = 2,
     .max_args = 2,
     .parse = config_parse_tls_policy,
     .flags = DIR_REPEAT,
     .doc = "TLS to a destination domain: none, may (the default: "
	    "opportunistic, DANE when published), encrypt (required), "
	    "verify (required, CA and host name checked), dane (DANE "
	    "required)"},
};

const size_t config_n_directives = ARRAY_SIZE(config_directives);
_Static_assert(ARRAY_SIZE(config_directives) <= CONFIG_DIRECTIVES_MAX,
	       "raise CONFIG_DIRECTIVES_MAX");
