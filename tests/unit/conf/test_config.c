/*
 * test_config.c - the configuration parser: good files, every error class
 * (each naming its line), values and bounds, lookups, the built-in
 * configuration, and docs/config.md against config_write_reference().
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <cmocka.h>

#include "conf/config.h"
#include "conf/config_values.h"

#define BASE                                                                   \
	"hostname mx.test\n"                                                   \
	"domains example.test\n"                                               \
	"listen 127.0.0.1:25 mx\n"

/*
 * Load `text` as "t.conf"; return what was written to the error stream
 * (caller frees). *cfg_r is freed here unless the caller wants it.
 */
static char *
load(const char *text, int *rc_r, struct config **cfg_r)
{
	struct config *cfg = NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&out, &len);
	int rc;

	assert_non_null(errors);
	rc = config_load_string("t.conf", text, &cfg, errors);
	assert_int_equal(fclose(errors), 0);
	if (rc_r != NULL)
		*rc_r = rc;
	if (rc == 0)
		assert_non_null(cfg);
	else
		assert_null(cfg);
	if (cfg_r != NULL)
		*cfg_r = cfg;
	else
		config_free(&cfg);
	return out;
}

/* Load `text`, which must be free of errors. */
static struct config *
load_good(const char *text)
{
	struct config *cfg;
	int rc;
	char *out = load(text, &rc, &cfg);

	assert_string_equal(out, "");
	assert_int_equal(rc, 0);
	free(out);
	return cfg;
}

static char *xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return s;
}

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Every directive set, with comments, tabs, CRLF and blank lines. */
static void
test_good_file(void **state)
{
	static const char text[] =
	    "# postern test configuration\n"
	    "\n"
	    "hostname Mx.Example.Test # our name\n"
	    "domains\tExample.Test  other.test\r\n"
	    "domains third.test\n"
	    "mailbox Bob@Example.Test alice@example.test\n"
	    "mailbox z.9_+=-x@third.test\n"
	    "maildir /srv/mail/%d/%n/%%Maildir\n"
	    "spool /var/spool/postern\n"
	    "user postern\n"
	    "listen 192.0.2.10:25 mx\n"
	    "listen [2001:db8::1]:587 submission\n"
	    "listen localhost:465 submissions\n"
	    "workers 4\n"
	    "max-message-size 10M\n"
	    "max-recipients 100\n"
	    "max-sessions 500\n"
	    "error-limit 20\n"
	    "hop-limit 30\n"
	    "header-size-limit 64K\n"
	    "timeout-command 10m\n"
	    "timeout-data 2m\n"
	    "timeout-shutdown 1m\n"
	    "greet-delay 5s\n"
	    "log-level debug\n"
	    "sync-method fsync\n"
	    "   # indented comment with a \x01 control octet\n"
	    "  \t  \n"
	    "users /etc/postern/users\n"
	    "tls-certificate /etc/tls/a.pem /etc/tls/a.key\n"
	    "tls-certificate b.pem\tb.key\n"
	    "tls-self-signed on\n"
	    "tls-handshake-timeout 1m\n"
	    "from-header-check no\n"
	    "auth-account-failures 3\n"
	    "auth-address-failures 30\n"
	    "auth-failure-window 1h\n"
	    "auth-lock-time 10m\n"
	    "auth-lock-max 10m\n"
	    "auth-allow 192.0.2.0/24 2001:db8::/32\n"
	    "auth-allow 127.0.0.1\n"
	    "auth-cache-ttl 0\n"
	    "auth-failure-delay 2s\n"
	    "auth-threads 8\n"
	    "conn-limit-per-address 0\n"
	    "conn-rate-per-address 600\n"
	    "control-socket /run/postern/control\n";
	struct config *cfg = load_good(text);
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	struct in6_addr a6;

	(void)state;
	assert_string_equal(cfg->file, "t.conf");
	assert_string_equal(cfg->hostname, "Mx.Example.Test");
	assert_int_equal(cfg->n_domains, 3);
	assert_string_equal(cfg->domains[0], "example.test");
	assert_string_equal(cfg->domains[1], "other.test");
	assert_string_equal(cfg->domains[2], "third.test");
	assert_int_equal(cfg->n_mailboxes, 3);
	assert_string_equal(cfg->mailboxes[0].local, "alice");
	assert_string_equal(cfg->mailboxes[0].domain, "example.test");
	assert_string_equal(cfg->mailboxes[1].local, "bob");
	assert_string_equal(cfg->mailboxes[2].local, "z.9_+=-x");
	assert_string_equal(cfg->mailboxes[2].domain, "third.test");
	assert_string_equal(cfg->maildir, "/srv/mail/%d/%n/%%Maildir");
	assert_string_equal(cfg->spool, "/var/spool/postern");
	assert_string_equal(cfg->user, "postern");

	assert_int_equal(cfg->n_listeners, 3);
	sin = (const struct sockaddr_in *)&cfg->listeners[0].addr;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 25);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc000020a);
	assert_int_equal(cfg->listeners[0].addr_len, sizeof(*sin));
	assert_string_equal(cfg->listeners[0].addr_text, "192.0.2.10:25");
	assert_int_equal(cfg->listeners[0].role, ROLE_MX);
	assert_int_equal(cfg->listeners[0].line, 11);
	sin6 = (const struct sockaddr_in6 *)&cfg->listeners[1].addr;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 587);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &a6), 1);
	assert_memory_equal(&sin6->sin6_addr, &a6, sizeof(a6));
	assert_int_equal(cfg->listeners[1].addr_len, sizeof(*sin6));
	assert_int_equal(cfg->listeners[1].role, ROLE_SUBMISSION);
	sin = (const struct sockaddr_in *)&cfg->listeners[2].addr;
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(sin->sin_port), 465);
	assert_int_equal(cfg->listeners[2].role, ROLE_SUBMISSIONS);
	assert_string_equal(cfg->listeners[2].addr_text, "localhost:465");

	assert_int_equal(cfg->workers, 4);
	assert_int_equal(cfg->max_message_size, 10 << 20);
	assert_int_equal(cfg->max_recipients, 100);
	assert_int_equal(cfg->max_sessions, 500);
	assert_int_equal(cfg->error_limit, 20);
	assert_int_equal(cfg->hop_limit, 30);
	assert_int_equal(cfg->header_size_limit, 64 << 10);
	assert_int_equal(cfg->timeout_command, 600);
	assert_int_equal(cfg->timeout_data, 120);
	assert_int_equal(cfg->timeout_shutdown, 60);
	assert_int_equal(cfg->greet_delay, 5);
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg->sync_method, SYNC_FSYNC);

	assert_string_equal(cfg->users_file, "/etc/postern/users");
	assert_int_equal(cfg->n_certs, 2);
	assert_string_equal(cfg->certs[0].cert, "/etc/tls/a.pem");
	assert_string_equal(cfg->certs[0].key, "/etc/tls/a.key");
	assert_int_equal(cfg->certs[0].line, 30);
	/* relative to the file's directory ("t.conf": the current one),
	   then absolute */
	assert_int_equal(cfg->certs[1].cert[0], '/');
	assert_non_null(strstr(cfg->certs[1].cert, "/b.pem"));
	assert_int_equal(strlen(strstr(cfg->certs[1].cert, "/b.pem")), 6);
	assert_int_equal(strlen(strstr(cfg->certs[1].key, "/b.key")), 6);
	assert_int_equal(cfg->certs[1].line, 31);
	assert_true(cfg->tls_self_signed);
	assert_int_equal(cfg->tls_handshake_timeout, 60);
	assert_false(cfg->from_header_check);
	assert_int_equal(cfg->auth_account_failures, 3);
	assert_int_equal(cfg->auth_address_failures, 30);
	assert_int_equal(cfg->auth_failure_window, 3600);
	assert_int_equal(cfg->auth_lock_time, 600);
	assert_int_equal(cfg->auth_lock_max, 600);
	assert_int_equal(cfg->n_auth_allow, 3);
	assert_int_equal(cfg->auth_allow[0].family, AF_INET);
	assert_int_equal(cfg->auth_allow[0].prefix, 24);
	assert_memory_equal(cfg->auth_allow[0].addr, "\xc0\x00\x02\x00", 4);
	assert_int_equal(cfg->auth_allow[1].family, AF_INET6);
	assert_int_equal(cfg->auth_allow[1].prefix, 32);
	assert_int_equal(cfg->auth_allow[2].prefix, 32);
	assert_memory_equal(cfg->auth_allow[2].addr, "\x7f\x00\x00\x01", 4);
	assert_int_equal(cfg->auth_cache_ttl, 0);
	assert_int_equal(cfg->auth_failure_delay, 2);
	assert_int_equal(cfg->auth_threads, 8);
	assert_int_equal(cfg->conn_limit_per_address, 0);
	assert_int_equal(cfg->conn_rate_per_address, 600);
	assert_string_equal(cfg->control_socket, "/run/postern/control");
	config_free(&cfg);
	assert_null(cfg);
}

/* A minimal file gets every default; relative paths become absolute. */
static void
test_defaults(void **state)
{
	struct config *cfg = load_good(BASE);
	char *cwd = getcwd(NULL, 0), *want;

	(void)state;
	assert_non_null(cwd);
	if (strcmp(cwd, "/") == 0)
		cwd[0] = '\0'; /* "/var/spool", not "//var/spool" */
	want = xasprintf("%s/var/spool", cwd);
	assert_string_equal(cfg->spool, want);
	free(want);
	want = xasprintf("%s/var/mail/%%d/%%n/Maildir", cwd);
	assert_string_equal(cfg->maildir, want);
	free(want);
	assert_null(cfg->user);
	assert_int_equal(cfg->n_mailboxes, 0);
	assert_null(config_find_mailbox(cfg, "a", "example.test"));
	assert_int_equal(cfg->workers, 0);
	assert_int_equal(cfg->max_message_size, 50 << 20);
	assert_int_equal(cfg->max_recipients, 1000);
	assert_int_equal(cfg->max_sessions, 10000);
	assert_int_equal(cfg->error_limit, 10);
	assert_int_equal(cfg->hop_limit, 50);
	assert_int_equal(cfg->header_size_limit, 100 << 10);
	assert_int_equal(cfg->timeout_command, 300);
	assert_int_equal(cfg->timeout_data, 180);
	assert_int_equal(cfg->timeout_shutdown, 30);
	assert_int_equal(cfg->greet_delay, 0);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg->sync_method, SYNC_SYNCFS);
	assert_int_equal(cfg->n_certs, 0);
	assert_null(cfg->certs);
	assert_false(cfg->tls_self_signed);
	assert_int_equal(cfg->tls_handshake_timeout, 20);
	assert_null(cfg->users_file);
	assert_true(cfg->from_header_check);
	assert_int_equal(cfg->auth_account_failures, 5);
	assert_int_equal(cfg->auth_address_failures, 10);
	assert_int_equal(cfg->auth_failure_window, 900);
	assert_int_equal(cfg->auth_lock_time, 300);
	assert_int_equal(cfg->auth_lock_max, 3600);
	assert_int_equal(cfg->n_auth_allow, 0);
	assert_null(cfg->auth_allow);
	assert_int_equal(cfg->auth_cache_ttl, 300);
	assert_int_equal(cfg->auth_failure_delay, 1);
	assert_int_equal(cfg->auth_threads, 0);
	/* Postfix's 50 open sessions; a rate an application sending one
	   message per session at 5 a second stays under (issue 7 item 4) */
	assert_int_equal(cfg->conn_limit_per_address, 50);
	assert_int_equal(cfg->conn_rate_per_address, 300);
	assert_int_equal(cfg->n_conn_limit_exempt, 0);
	assert_null(cfg->conn_limit_exempt);
	want = xasprintf("%s/var/run/postern.sock", cwd);
	assert_string_equal(cfg->control_socket, want);
	free(want);
	free(cwd);
	config_free(&cfg);
}

struct error_case {
	bool no_base; /* text is the whole file, not appended to BASE */
	const char *text;
	const char *want; /* the whole error output */
};

/* Each class of error, with the exact message and line. */
static const struct error_case error_cases[] = {
    /* unknown directives */
    {false, "hostnam x\n",
     "t.conf:4: unknown directive \"hostnam\" (did you mean "
     "\"hostname\"?)\n"},
    {false, "Workers 2\n",
     "t.conf:4: unknown directive \"Workers\" (did you mean "
     "\"workers\"?)\n"},
    {false, "\n# x\nfrobnicate 1\n",
     "t.conf:6: unknown directive \"frobnicate\"\n"},
    /* arity */
    {false, "workers\n",
     "t.conf:4: workers: expected 1 argument (workers N), got 0\n"},
    {false, "spool a b\n",
     "t.conf:4: spool: expected 1 argument (spool DIR), got 2\n"},
    {false, "domains # none\n",
     "t.conf:4: domains: expected at least 1 argument (domains "
     "DOMAIN...), got 0\n"},
    {false, "listen 127.0.0.1:26\n",
     "t.conf:4: listen: expected 2 arguments (listen ADDR:PORT ROLE), "
     "got 1\n"},
    {false, "timeout-data 5 m\n",
     "t.conf:4: timeout-data: expected 1 argument (timeout-data "
     "DURATION), got 2\n"},
    /* given twice */
    {false, "workers 1\nworkers 2\n",
     "t.conf:5: workers: given twice (first on line 4)\n"},
    {false, "hostname b.test\n",
     "t.conf:4: hostname: given twice (first on line 1)\n"},
    {false, "log-level info\nlog-level bogus\n",
     "t.conf:5: log-level: given twice (first on line 4)\n"},
    /* hostname and domains */
    {true,
     "hostname -bad.test\ndomains example.test\n"
     "listen 127.0.0.1:25 mx\n",
     "t.conf:1: hostname: \"-bad.test\" is not a domain name: has a "
     "label starting with '-'\n"},
    {true,
     "hostname 192.0.2.1\ndomains example.test\n"
     "listen 127.0.0.1:25 mx\n",
     "t.conf:1: hostname: \"192.0.2.1\" is not a domain name: ends in "
     "an all-numeric label\n"},
    {false, "domains exa_mple.test\n",
     "t.conf:4: domains: \"exa_mple.test\" is not a domain name: has a "
     "character other than letters, digits, '-' and '.'\n"},
    {false, "domains a.test.\n",
     "t.conf:4: domains: \"a.test.\" is not a domain name: has an empty "
     "label\n"},
    {false, "domains bad-.test\n",
     "t.conf:4: domains: \"bad-.test\" is not a domain name: has a label "
     "ending in '-'\n"},
    {false,
     "domains "
     "a234567890123456789012345678901234567890123456789012345678901234"
     ".test\n",
     "t.conf:4: domains: "
     "\"a234567890123456789012345678901234567890123456789012345678901234"
     ".test\" is not a domain name: has a label longer than 63 octets\n"},
    {false, "domains ok.test EXAMPLE.test\n",
     "t.conf:4: domains: EXAMPLE.test given twice (first on line 2)\n"},
    /* mailboxes */
    {false, "mailbox nobody\n",
     "t.conf:4: bad mailbox \"nobody\": not user@domain\n"},
    {false, "mailbox @example.test\n",
     "t.conf:4: bad mailbox \"@example.test\": local part is empty\n"},
    {false, "mailbox .a@example.test\n",
     "t.conf:4: bad mailbox \".a@example.test\": local part starts with "
     "'.'\n"},
    {false, "mailbox a.@example.test\n",
     "t.conf:4: bad mailbox \"a.@example.test\": local part ends with "
     "'.'\n"},
    {false, "mailbox a..b@example.test\n",
     "t.conf:4: bad mailbox \"a..b@example.test\": local part contains "
     "\"..\"\n"},
    {false, "mailbox ../etc@example.test\n",
     "t.conf:4: bad mailbox \"../etc@example.test\": local part starts "
     "with '.'\n"},
    {false, "mailbox a/b@example.test\n",
     "t.conf:4: bad mailbox \"a/b@example.test\": local part has a "
     "character outside [A-Za-z0-9._+=-]\n"},
    {false, "mailbox \"a\"@example.test\n",
     "t.conf:4: bad mailbox \"\"a\"@example.test\": local part has a "
     "character outside [A-Za-z0-9._+=-]\n"},
    {false, "mailbox a@b@example.test\n",
     "t.conf:4: bad mailbox \"a@b@example.test\": local part has a "
     "character outside [A-Za-z0-9._+=-]\n"},
    {false,
     "mailbox "
     "a2345678901234567890123456789012345678901234567890123456789012345"
     "@example.test\n",
     "t.conf:4: bad mailbox "
     "\"a2345678901234567890123456789012345678901234567890123456789012345"
     "@example.test\": local part is longer than 64 octets\n"},
    {false, "mailbox a@-x.test\n",
     "t.conf:4: bad mailbox \"a@-x.test\": domain has a label starting "
     "with '-'\n"},
    {false, "mailbox ok@example.test\nmailbox bob@other.test\n",
     "t.conf:5: mailbox bob@other.test: domain other.test is not in "
     "domains\n"},
    {false,
     "mailbox a@example.test\n\nmailbox x@example.test "
     "A@Example.Test\n",
     "t.conf:6: mailbox a@example.test given twice (first at "
     "t.conf:4)\n"},
    /* maildir */
    {false, "maildir /m/%d/%n/%x\n",
     "t.conf:4: maildir: \"/m/%d/%n/%x\": only %d, %n and %% may follow "
     "%\n"},
    {false, "maildir /m/%n/%\n",
     "t.conf:4: maildir: \"/m/%n/%\": only %d, %n and %% may follow %\n"},
    {false, "maildir /m/%d/%%n\n",
     "t.conf:4: maildir: \"/m/%d/%%n\" has no %n: every mailbox would "
     "share one Maildir\n"},
    /* metrics-listen */
    {false, "metrics-listen 127.0.0.1\n",
     "t.conf:4: metrics-listen: \"127.0.0.1\" is not ADDR:PORT\n"},
    {false, "metrics-listen example.test:9154\n",
     "t.conf:4: metrics-listen: \"example.test:9154\" needs an IPv4 "
     "address, [IPv6 address] or localhost\n"},
    /* listen */
    {false, "listen 256.1.1.1:26 mx\n",
     "t.conf:4: listen: \"256.1.1.1:26\" needs an IPv4 address, [IPv6 "
     "address] or localhost\n"},
    {false, "listen ::1:26 mx\n",
     "t.conf:4: listen: \"::1:26\" needs an IPv4 address, [IPv6 "
     "address] or localhost\n"},
    {false, "listen example.test:26 mx\n",
     "t.conf:4: listen: \"example.test:26\" needs an IPv4 address, [IPv6 "
     "address] or localhost\n"},
    {false, "listen 127.0.0.1 mx\n",
     "t.conf:4: listen: \"127.0.0.1\" is not ADDR:PORT\n"},
    {false, "listen [::1:26 mx\n",
     "t.conf:4: listen: \"[::1:26\" is not ADDR:PORT\n"},
    {false, "listen [::1]26 mx\n",
     "t.conf:4: listen: \"[::1]26\" is not ADDR:PORT\n"},
    {false, "listen [::g]:26 mx\n",
     "t.conf:4: listen: \"[::g]:26\" has a bad IPv6 address\n"},
    {false, "listen [127.0.0.1]:26 mx\n",
     "t.conf:4: listen: \"[127.0.0.1]:26\" has a bad IPv6 address\n"},
    {false, "listen 127.0.0.1:0 mx\n",
     "t.conf:4: listen: \"127.0.0.1:0\" has a port outside 1..65535\n"},
    {false, "listen 127.0.0.1:65536 mx\n",
     "t.conf:4: listen: \"127.0.0.1:65536\" has a port outside "
     "1..65535\n"},
    {false, "listen 127.0.0.1:+26 mx\n",
     "t.conf:4: listen: \"127.0.0.1:+26\" has a port outside 1..65535\n"},
    {false, "listen 127.0.0.1: mx\n",
     "t.conf:4: listen: \"127.0.0.1:\" has a port outside 1..65535\n"},
    {false,
     "listen "
     "[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]"
     ":25 mx\n",
     "t.conf:4: listen: "
     "\"[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]"
     ":25\" has an address that is too long\n"},
    {false,
     "listen [0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:"
     "0000:0000:0000:0000:0001]:25 mx\n",
     "t.conf:4: listen: \"[0000:0000:0000:0000:0000:0000:0000:0000:0000:"
     "0000:0000:0000:0000:0000:0000:0001]:25\" is too long\n"},
    {false, "listen 127.0.0.1:26 smtp\n",
     "t.conf:4: listen: role \"smtp\" is not one of mx, submission, "
     "submissions\n"},
    {false, "listen 1.2.3:26 MX\n",
     "t.conf:4: listen: \"1.2.3:26\" needs an IPv4 address, [IPv6 "
     "address] or localhost\n"
     "t.conf:4: listen: role \"MX\" is not one of mx, submission, "
     "submissions\n"},
    {false, "listen localhost:25 submission\n",
     "t.conf:4: listen: localhost:25 duplicates line 3 "
     "(127.0.0.1:25)\n"},
    {false, "listen [::1]:25 mx\nlisten [0:0::1]:25 submissions\n",
     "t.conf:5: listen: [0:0::1]:25 duplicates line 4 ([::1]:25)\n"},
    /* numbers: syntax, bounds, overflow */
    {false, "workers 65\n", "t.conf:4: workers: 65 is out of range 0..64\n"},
    {false, "workers -1\n",
     "t.conf:4: workers: \"-1\" is not a whole number\n"},
    {false, "workers 1K\n",
     "t.conf:4: workers: \"1K\" is not a whole number\n"},
    {false, "workers 99999999999999999999\n",
     "t.conf:4: workers: 99999999999999999999 is out of range 0..64\n"},
    {false, "max-recipients 0\n",
     "t.conf:4: max-recipients: 0 is out of range 1..100000\n"},
    {false, "max-recipients 100001\n",
     "t.conf:4: max-recipients: 100001 is out of range 1..100000\n"},
    {false, "max-sessions 1000001\n",
     "t.conf:4: max-sessions: 1000001 is out of range 1..1000000\n"},
    {false, "error-limit 1001\n",
     "t.conf:4: error-limit: 1001 is out of range 1..1000\n"},
    {false, "hop-limit 0\n", "t.conf:4: hop-limit: 0 is out of range 1..500\n"},
    {false, "max-message-size 1023\n",
     "t.conf:4: max-message-size: 1023 is out of range 1K..2G\n"},
    {false, "max-message-size 2147483649\n",
     "t.conf:4: max-message-size: 2147483649 is out of range 1K..2G\n"},
    {false, "max-message-size 3G\n",
     "t.conf:4: max-message-size: 3G is out of range 1K..2G\n"},
    {false, "max-message-size 99999999999999999999G\n",
     "t.conf:4: max-message-size: 99999999999999999999G is out of range "
     "1K..2G\n"},
    {false, "max-message-size 18014398509481984K\n",
     "t.conf:4: max-message-size: 18014398509481984K is out of range "
     "1K..2G\n"},
    {false, "max-message-size 10X\n",
     "t.conf:4: max-message-size: \"10X\" is not a size (a whole number, "
     "then K, M or G)\n"},
    {false, "max-message-size M\n",
     "t.conf:4: max-message-size: \"M\" is not a size (a whole number, "
     "then K, M or G)\n"},
    {false, "max-message-size 1KK\n",
     "t.conf:4: max-message-size: \"1KK\" is not a size (a whole number, "
     "then K, M or G)\n"},
    {false, "header-size-limit 17M\n",
     "t.conf:4: header-size-limit: 17M is out of range 1K..16M\n"},
    {false, "timeout-command 0\n",
     "t.conf:4: timeout-command: 0 is out of range 1s..24h\n"},
    {false, "timeout-command 25h\n",
     "t.conf:4: timeout-command: 25h is out of range 1s..24h\n"},
    {false, "timeout-data 86401\n",
     "t.conf:4: timeout-data: 86401 is out of range 1s..24h\n"},
    {false, "timeout-shutdown 2d\n",
     "t.conf:4: timeout-shutdown: \"2d\" is not a duration (a whole "
     "number, then s, m or h)\n"},
    {false, "timeout-shutdown 5M\n",
     "t.conf:4: timeout-shutdown: \"5M\" is not a duration (a whole "
     "number, then s, m or h)\n"},
    {false, "greet-delay 61\n",
     "t.conf:4: greet-delay: 61 is out of range 0..1m\n"},
    {false, "greet-delay 307445734561825861m\n",
     "t.conf:4: greet-delay: 307445734561825861m is out of range "
     "0..1m\n"},
    /* keywords */
    {false, "log-level INFO\n",
     "t.conf:4: log-level: \"INFO\" is not one of debug, info, notice, "
     "warning, error\n"},
    {false, "sync-method fdatasync\n",
     "t.conf:4: sync-method: \"fdatasync\" is not one of syncfs, "
     "fsync\n"},
    /* control characters; a CR only at the end of a line */
    {false, "workers\x01 1\n", "t.conf:4: control character 0x01\n"},
    {false, "workers 1\r2\n", "t.conf:4: control character 0x0d\n"},
    {false, "spool /a\x7f\n", "t.conf:4: control character 0x7f\n"},
    /* required directives */
    {true, "",
     "t.conf:0: missing required directive \"hostname\"\n"
     "t.conf:0: missing required directive \"domains\"\n"
     "t.conf:0: missing required directive \"listen\"\n"},
    {true, "# only a comment\nhostname a.test\ndomains a.test\n",
     "t.conf:0: missing required directive \"listen\"\n"},
    /* a bad required line is reported once, not also as missing */
    {true, "hostname a.test\ndomains a.test\nlisten nowhere mx\n",
     "t.conf:3: listen: \"nowhere\" is not ADDR:PORT\n"},
    /* TLS */
    {false, "tls-certificate a.pem\n",
     "t.conf:4: tls-certificate: expected 2 arguments (tls-certificate "
     "CERT KEY), got 1\n"},
    {false, "tls-certificate a.pem a.key extra\n",
     "t.conf:4: tls-certificate: expected 2 arguments (tls-certificate "
     "CERT KEY), got 3\n"},
    {false, "tls-certificate a.pem a.key\ntls-certificate a.pem b.key\n",
     "t.conf:5: tls-certificate: a.pem given twice (first on line 4)\n"},
    {false, "tls-certificate c k\ntls-self-signed maybe\n",
     "t.conf:5: tls-self-signed: \"maybe\" is not yes or no (nor on, off, "
     "true, false)\n"},
    {false, "tls-certificate c k\ntls-self-signed YES\n",
     "t.conf:5: tls-self-signed: \"YES\" is not yes or no (nor on, off, "
     "true, false)\n"},
    {false, "tls-certificate c k\ntls-self-signed 1\n",
     "t.conf:5: tls-self-signed: \"1\" is not yes or no (nor on, off, "
     "true, false)\n"},
    {false, "tls-certificate c k\ntls-self-signed yes\ntls-self-signed no\n",
     "t.conf:6: tls-self-signed: given twice (first on line 5)\n"},
    {false, "tls-self-signed\n",
     "t.conf:4: tls-self-signed: expected 1 argument (tls-self-signed "
     "BOOLEAN), got 0\n"},
    {false, "\ntls-self-signed yes\n",
     "t.conf:5: tls-self-signed: no tls-certificate line names the files "
     "to create\n"},
    {false, "tls-handshake-timeout 0\n",
     "t.conf:4: tls-handshake-timeout: 0 is out of range 1s..5m\n"},
    {false, "tls-handshake-timeout 301\n",
     "t.conf:4: tls-handshake-timeout: 301 is out of range 1s..5m\n"},
    {false, "tls-handshake-timeout 5m1\n",
     "t.conf:4: tls-handshake-timeout: \"5m1\" is not a duration (a whole "
     "number, then s, m or h)\n"},
    /* users, From: check */
    {false, "users a b\n",
     "t.conf:4: users: expected 1 argument (users FILE), got 2\n"},
    {false, "users a\nusers b\n",
     "t.conf:5: users: given twice (first on line 4)\n"},
    {false, "from-header-check nope\n",
     "t.conf:4: from-header-check: \"nope\" is not yes or no (nor on, off, "
     "true, false)\n"},
    {false, "from-header-check No\n",
     "t.conf:4: from-header-check: \"No\" is not yes or no (nor on, off, "
     "true, false)\n"},
    /* lockout numbers */
    {false, "auth-account-failures 0\n",
     "t.conf:4: auth-account-failures: 0 is out of range 1..1000\n"},
    {false, "auth-account-failures 1001\n",
     "t.conf:4: auth-account-failures: 1001 is out of range 1..1000\n"},
    {false, "auth-address-failures 10001\n",
     "t.conf:4: auth-address-failures: 10001 is out of range 1..10000\n"},
    {false, "auth-address-failures 5m\n",
     "t.conf:4: auth-address-failures: \"5m\" is not a whole number\n"},
    {false, "auth-failure-window 0\n",
     "t.conf:4: auth-failure-window: 0 is out of range 1s..24h\n"},
    {false, "auth-lock-time 25h\n",
     "t.conf:4: auth-lock-time: 25h is out of range 1s..24h\n"},
    {false, "auth-lock-max 169h\n",
     "t.conf:4: auth-lock-max: 169h is out of range 1s..168h\n"},
    {false, "auth-cache-ttl 86401\n",
     "t.conf:4: auth-cache-ttl: 86401 is out of range 0..24h\n"},
    {false, "auth-failure-delay 11\n",
     "t.conf:4: auth-failure-delay: 11 is out of range 0..10s\n"},
    {false, "auth-failure-delay 1m\n",
     "t.conf:4: auth-failure-delay: 1m is out of range 0..10s\n"},
    {false, "auth-threads 65\n",
     "t.conf:4: auth-threads: 65 is out of range 0..64\n"},
    {false, "conn-limit-per-address 1000001\n",
     "t.conf:4: conn-limit-per-address: 1000001 is out of range "
     "0..1000000\n"},
    {false, "conn-rate-per-address -1\n",
     "t.conf:4: conn-rate-per-address: \"-1\" is not a whole number\n"},
    {false, "conn-limit-exempt 127.0.0.0/8 10.0.0.0/33\n",
     "t.conf:4: conn-limit-exempt: \"10.0.0.0/33\" has a prefix longer than "
     "32 bits\n"},
    {false, "conn-limit-exempt\n",
     "t.conf:4: conn-limit-exempt: expected at least 1 argument "
     "(conn-limit-exempt NETWORK...), got 0\n"},
    /* auth-lock-max >= auth-lock-time, on the line of the one given */
    {false, "auth-lock-max 1m\n",
     "t.conf:4: auth-lock-max: 1m is shorter than auth-lock-time (5m)\n"},
    {false, "\nauth-lock-time 7200\n",
     "t.conf:5: auth-lock-time: 2h is longer than auth-lock-max (1h)\n"},
    {false, "auth-lock-time 11m\nauth-lock-max 10m\n",
     "t.conf:5: auth-lock-max: 10m is shorter than auth-lock-time (11m)\n"},
    {false, "auth-lock-max 10m\nauth-lock-time 601\n",
     "t.conf:4: auth-lock-max: 10m is shorter than auth-lock-time (601s)\n"},
    /* a line with its own error adds nothing more */
    {false, "auth-lock-time 0\nauth-lock-max 1m\n",
     "t.conf:4: auth-lock-time: 0 is out of range 1s..24h\n"},
    {false, "auth-lock-time 2h\nauth-lock-max 9999h\n",
     "t.conf:5: auth-lock-max: 9999h is out of range 1s..168h\n"},
    /* auth-allow */
    {false, "auth-allow\n",
     "t.conf:4: auth-allow: expected at least 1 argument (auth-allow "
     "NETWORK...), got 0\n"},
    {false, "auth-allow 10.0.0.0/33\n",
     "t.conf:4: auth-allow: \"10.0.0.0/33\" has a prefix longer than 32 "
     "bits\n"},
    {false, "auth-allow 10.0.0.0/8 ::1/129 junk 192.0.2.1\n",
     "t.conf:4: auth-allow: \"::1/129\" has a prefix longer than 128 "
     "bits\n"
     "t.conf:4: auth-allow: \"junk\" is not an IPv4 or IPv6 address\n"},
    {false, "auth-allow [::1]/128\n",
     "t.conf:4: auth-allow: \"[::1]/128\" is not an IPv4 or IPv6 "
     "address\n"},
    {false, "auth-allow 10.0.0.0/\n",
     "t.conf:4: auth-allow: \"10.0.0.0/\" has a prefix length that is not "
     "a number\n"},
    /* control socket: an absolute path must fit in sun_path */
    {false,
     "control-socket "
     "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "t.conf:4: control-socket: "
     "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is longer than 107 octets, the "
     "limit of a socket path\n"},
    {false, "control-socket a b\n",
     "t.conf:4: control-socket: expected 1 argument (control-socket PATH), "
     "got 2\n"},
    /* no listener may relay without authentication */
    {false,
     "listen 127.0.0.1:587 submission\n"
     "listen [::1]:465 submissions\n",
     "t.conf:4: listen: 127.0.0.1:587 submission needs a certificate "
     "(tls-certificate): AUTH is accepted only under TLS\n"
     "t.conf:4: listen: 127.0.0.1:587 submission needs a users file "
     "(users): it relays mail only for authenticated users\n"
     "t.conf:5: listen: [::1]:465 submissions needs a certificate "
     "(tls-certificate): it speaks TLS from the first octet\n"
     "t.conf:5: listen: [::1]:465 submissions needs a users file (users): "
     "it relays mail only for authenticated users\n"},
    {false,
     "users u\nlisten 127.0.0.1:2525 submission\n"
     "listen 127.0.0.1:2587 mx\n",
     "t.conf:5: listen: 127.0.0.1:2525 submission needs a certificate "
     "(tls-certificate): AUTH is accepted only under TLS\n"},
    {false, "tls-certificate c k\n\n\nlisten 127.0.0.1:2465 submissions\n",
     "t.conf:7: listen: 127.0.0.1:2465 submissions needs a users file "
     "(users): it relays mail only for authenticated users\n"},
    {true,
     "listen 127.0.0.1:587 submission\nhostname a.test\ndomains a.test\n"
     "users u\ntls-self-signed yes\n",
     "t.conf:5: tls-self-signed: no tls-certificate line names the files "
     "to create\n"
     "t.conf:1: listen: 127.0.0.1:587 submission needs a certificate "
     "(tls-certificate): AUTH is accepted only under TLS\n"},
    /* a refused tls-certificate line is not reported again */
    {false, "users u\ntls-certificate c\nlisten 127.0.0.1:587 submission\n",
     "t.conf:5: tls-certificate: expected 2 arguments (tls-certificate "
     "CERT KEY), got 1\n"},
};

static void
test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]);
	     i++) {
		const struct error_case *c = &error_cases[i];
		char *text = xasprintf("%s%s", c->no_base ? "" : BASE, c->text);
		int rc;
		char *out = load(text, &rc, NULL);

		if (strcmp(out, c->want) != 0)
			print_error("case %zu: %s\n", i, c->text);
		assert_string_equal(out, c->want);
		assert_int_equal(rc, -1);
		free(out);
		free(text);
	}
}

/* Every error is reported, not only the first: 3 errors, 3 lines. */
static void
test_all_errors_reported(void **state)
{
	static struct config dummy;
	struct config *cfg = &dummy;
	static const char text[] = BASE "workers 100\n"
					"bogus\n"
					"# fine\n"
					"mailbox x@nowhere.test\n"
					"workers 2\n"
					"hop-limit 10\n";
	int rc, lines = 0;
	char *out = load(text, &rc, NULL);

	(void)state;
	assert_int_equal(rc, -1);
	for (char *c = out; *c != '\0'; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 4);
	assert_string_equal(out,
			    "t.conf:4: workers: 100 is out of range 0..64\n"
			    "t.conf:5: unknown directive \"bogus\"\n"
			    "t.conf:8: workers: given twice (first on line 4)\n"
			    "t.conf:7: mailbox x@nowhere.test: domain "
			    "nowhere.test is not in domains\n");
	free(out);

	/* Exactly three. */
	out = load(BASE "workers x\nspool\nlisten 1.2.3.4:5 y\n", &rc, NULL);
	lines = 0;
	for (char *c = out; *c != '\0'; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 3);
	assert_non_null(strstr(out, "t.conf:4: "));
	assert_non_null(strstr(out, "t.conf:5: "));
	assert_non_null(strstr(out, "t.conf:6: "));
	free(out);

	/* No error stream: still fails cleanly, and clears *cfg_r. */
	assert_int_equal(config_load_string("t.conf", "bogus\n", &cfg, NULL),
			 -1);
	assert_null(cfg);
}

struct value_case {
	const char *line;
	size_t field;
	bool is_u64;
	uint64_t want;
};

#define F(f) offsetof(struct config, f)

/* Accepted values of sizes, durations, counts and keywords. */
static const struct value_case value_cases[] = {
    {"max-message-size 1K", F(max_message_size), true, 1024},
    {"max-message-size 1k", F(max_message_size), true, 1024},
    {"max-message-size 1024", F(max_message_size), true, 1024},
    {"max-message-size 50M", F(max_message_size), true, 52428800},
    {"max-message-size 2g", F(max_message_size), true, 2147483648u},
    {"max-message-size 2048M", F(max_message_size), true, 2147483648u},
    {"max-message-size 2147483648", F(max_message_size), true, 2147483648u},
    {"max-message-size 0002K", F(max_message_size), true, 2048},
    {"header-size-limit 16M", F(header_size_limit), true, 16777216},
    {"header-size-limit 1K", F(header_size_limit), true, 1024},
    {"timeout-command 1", F(timeout_command), false, 1},
    {"timeout-command 90s", F(timeout_command), false, 90},
    {"timeout-command 5m", F(timeout_command), false, 300},
    {"timeout-command 24h", F(timeout_command), false, 86400},
    {"timeout-command 1440m", F(timeout_command), false, 86400},
    {"timeout-data 86400s", F(timeout_data), false, 86400},
    {"timeout-shutdown 1h", F(timeout_shutdown), false, 3600},
    {"greet-delay 0", F(greet_delay), false, 0},
    {"greet-delay 0s", F(greet_delay), false, 0},
    {"greet-delay 1m", F(greet_delay), false, 60},
    {"workers 0", F(workers), false, 0},
    {"workers 64", F(workers), false, 64},
    {"max-recipients 007", F(max_recipients), false, 7},
    {"max-recipients 100000", F(max_recipients), false, 100000},
    {"max-sessions 1000000", F(max_sessions), false, 1000000},
    {"error-limit 1", F(error_limit), false, 1},
    {"hop-limit 500", F(hop_limit), false, 500},
    {"log-level debug", F(log_level), false, LOG_LEVEL_DEBUG},
    {"log-level notice", F(log_level), false, LOG_LEVEL_NOTICE},
    {"log-level warning", F(log_level), false, LOG_LEVEL_WARNING},
    {"log-level error", F(log_level), false, LOG_LEVEL_ERROR},
    {"sync-method syncfs", F(sync_method), false, SYNC_SYNCFS},
    {"sync-method fsync", F(sync_method), false, SYNC_FSYNC},
    {"tls-handshake-timeout 1", F(tls_handshake_timeout), false, 1},
    {"tls-handshake-timeout 5m", F(tls_handshake_timeout), false, 300},
    {"tls-handshake-timeout 300s", F(tls_handshake_timeout), false, 300},
    {"auth-account-failures 1", F(auth_account_failures), false, 1},
    {"auth-account-failures 1000", F(auth_account_failures), false, 1000},
    {"auth-address-failures 10000", F(auth_address_failures), false, 10000},
    {"auth-failure-window 24h", F(auth_failure_window), false, 86400},
    {"auth-failure-window 1", F(auth_failure_window), false, 1},
    {"auth-lock-time 1", F(auth_lock_time), false, 1},
    {"auth-lock-time 1h", F(auth_lock_time), false, 3600}, /* = max */
    {"auth-lock-max 5m", F(auth_lock_max), false, 300},	   /* = time */
    {"auth-lock-max 168h", F(auth_lock_max), false, 604800},
    {"auth-cache-ttl 0", F(auth_cache_ttl), false, 0},
    {"auth-cache-ttl 24h", F(auth_cache_ttl), false, 86400},
    {"auth-failure-delay 0", F(auth_failure_delay), false, 0},
    {"auth-failure-delay 10s", F(auth_failure_delay), false, 10},
    {"auth-threads 64", F(auth_threads), false, 64},
    {"conn-limit-per-address 1000000", F(conn_limit_per_address), false,
     1000000},
    {"conn-limit-per-address 1", F(conn_limit_per_address), false, 1},
    {"conn-rate-per-address 0", F(conn_rate_per_address), false, 0},
};

static void
test_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]);
	     i++) {
		const struct value_case *c = &value_cases[i];
		char *text = xasprintf(BASE "%s\n", c->line);
		struct config *cfg = load_good(text);
		const char *field = (const char *)cfg + c->field;
		uint64_t got;

		if (c->is_u64)
			memcpy(&got, field, sizeof(got));
		else
			got = *(const unsigned *)(const void *)field;
		if (got != c->want)
			print_error("case %s\n", c->line);
		assert_int_equal(got, c->want);
		config_free(&cfg);
		free(text);
	}
}

struct bool_case {
	const char *word;
	bool want;
};

static const struct bool_case bool_cases[] = {
    {"yes", true},  {"no", false},  {"on", true},
    {"off", false}, {"true", true}, {"false", false},
};

/* Every boolean word, on both boolean directives. */
static void
test_bools(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bool_cases) / sizeof(bool_cases[0]);
	     i++) {
		const struct bool_case *c = &bool_cases[i];
		char *text = xasprintf(BASE "tls-certificate c k\n"
					    "tls-self-signed %s\n"
					    "from-header-check %s\n",
				       c->word, c->word);
		struct config *cfg = load_good(text);
		bool v = !c->want;

		if (cfg->tls_self_signed != c->want)
			print_error("case %s\n", c->word);
		assert_int_equal(cfg->tls_self_signed, c->want);
		assert_int_equal(cfg->from_header_check, c->want);
		assert_int_equal(config_values_bool(c->word, &v), 0);
		assert_int_equal(v, c->want);
		config_free(&cfg);
		free(text);
	}
	for (size_t i = 0; i < 8; i++) {
		static const char *const bad[] = {"",  "Yes", "y",    "1",
						  "0", "nO",  "yes ", "enable"};
		bool v = true;

		assert_int_equal(config_values_bool(bad[i], &v), -1);
		assert_true(v); /* untouched */
	}
}

struct network_case {
	const char *text;
	int family; /* 0: refused */
	unsigned prefix;
	const char *addr; /* hex of the 16 octets, or the reason */
};

static const struct network_case network_cases[] = {
    {"192.0.2.0/24", AF_INET, 24, "c0000200000000000000000000000000"},
    /* host bits are cleared */
    {"192.0.2.77/24", AF_INET, 24, "c0000200000000000000000000000000"},
    {"10.1.2.3/8", AF_INET, 8, "0a000000000000000000000000000000"},
    {"10.1.2.3/9", AF_INET, 9, "0a000000000000000000000000000000"},
    {"10.129.2.3/9", AF_INET, 9, "0a800000000000000000000000000000"},
    {"255.255.255.255/31", AF_INET, 31, "fffffffe000000000000000000000000"},
    {"255.255.255.255/1", AF_INET, 1, "80000000000000000000000000000000"},
    {"10.1.2.3/0", AF_INET, 0, "00000000000000000000000000000000"},
    /* a bare address is one host */
    {"10.1.2.3", AF_INET, 32, "0a010203000000000000000000000000"},
    {"10.1.2.3/32", AF_INET, 32, "0a010203000000000000000000000000"},
    {"10.1.2.3/032", AF_INET, 32, "0a010203000000000000000000000000"},
    {"::1", AF_INET6, 128, "00000000000000000000000000000001"},
    {"::1/128", AF_INET6, 128, "00000000000000000000000000000001"},
    {"::/0", AF_INET6, 0, "00000000000000000000000000000000"},
    {"2001:db8::/32", AF_INET6, 32, "20010db8000000000000000000000000"},
    {"2001:DB8:ffff::1/33", AF_INET6, 33, "20010db8800000000000000000000000"},
    {"2001:db8::1/64", AF_INET6, 64, "20010db8000000000000000000000000"},
    {"2001:db8:0:1:2:3:4:5/63", AF_INET6, 63,
     "20010db8000000000000000000000000"},
    {"2001:db8:0:1:2:3:4:5/127", AF_INET6, 127,
     "20010db8000000010002000300040004"},
    {"::ffff:192.0.2.1", AF_INET6, 128, "00000000000000000000ffffc0000201"},
    /* refused */
    {"10.0.0.0/33", 0, 0, "has a prefix longer than 32 bits"},
    {"10.0.0.0/99999999999999999999999", 0, 0,
     "has a prefix longer than 32 bits"},
    {"::1/129", 0, 0, "has a prefix longer than 128 bits"},
    {"10.0.0.0/", 0, 0, "has a prefix length that is not a number"},
    {"10.0.0.0/-1", 0, 0, "has a prefix length that is not a number"},
    {"10.0.0.0/+8", 0, 0, "has a prefix length that is not a number"},
    {"10.0.0.0/8x", 0, 0, "has a prefix length that is not a number"},
    {"10.0.0.0/0x8", 0, 0, "has a prefix length that is not a number"},
    {"10.0.0.0/8/8", 0, 0, "has a prefix length that is not a number"},
    {"10.0.0/8", 0, 0, "is not an IPv4 or IPv6 address"},
    {"10/8", 0, 0, "is not an IPv4 or IPv6 address"},
    {"1.2.3.4.5", 0, 0, "is not an IPv4 or IPv6 address"},
    {"256.0.0.0", 0, 0, "is not an IPv4 or IPv6 address"},
    {"a.b.c.d", 0, 0, "is not an IPv4 or IPv6 address"},
    {"localhost", 0, 0, "is not an IPv4 or IPv6 address"},
    {"", 0, 0, "is not an IPv4 or IPv6 address"},
    {"/8", 0, 0, "is not an IPv4 or IPv6 address"},
    {"fe80::1%eth0", 0, 0, "is not an IPv4 or IPv6 address"},
    {"[::1]", 0, 0, "is not an IPv4 or IPv6 address"},
    {"1:2:3:4:5:6:7:8:9", 0, 0, "is not an IPv4 or IPv6 address"},
    {":::1", 0, 0, "is not an IPv4 or IPv6 address"},
    {"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001", 0, 0,
     "is not an IPv4 or IPv6 address"},
};

static void
hex16(const unsigned char *a, char *out)
{
	for (size_t i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", a[i]);
}

/* Networks: the value parser, then the same text through auth-allow. */
static void
test_networks(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(network_cases) / sizeof(network_cases[0]);
	     i++) {
		const struct network_case *c = &network_cases[i];
		struct config_network net;
		const char *why = config_values_network(c->text, &net);
		char hex[33], *text, *out, *want;
		int rc;

		if ((why == NULL) != (c->family != 0))
			print_error("case %s: %s\n", c->text,
				    why ? why : "accepted");
		if (c->family == 0) {
			assert_non_null(why);
			assert_string_equal(why, c->addr);
		} else {
			assert_null(why);
			assert_int_equal(net.family, c->family);
			assert_int_equal(net.prefix, c->prefix);
			hex16(net.addr, hex);
			if (strcmp(hex, c->addr) != 0)
				print_error("case %s\n", c->text);
			assert_string_equal(hex, c->addr);
		}
		if (c->text[0] == '\0')
			continue; /* an empty word cannot be written */
		text = xasprintf(BASE "auth-allow 127.0.0.0/8 %s\n", c->text);
		out = load(text, &rc, NULL);
		if (c->family == 0) {
			want = xasprintf("t.conf:4: auth-allow: \"%s\" %s\n",
					 c->text, c->addr);
			assert_string_equal(out, want);
			assert_int_equal(rc, -1);
			free(want);
		} else {
			struct config *cfg = load_good(text);

			assert_int_equal(cfg->n_auth_allow, 2);
			assert_memory_equal(&cfg->auth_allow[1], &net,
					    sizeof(net));
			config_free(&cfg);
		}
		free(out);
		free(text);
	}
}

/*
 * Submission listeners with what they need load; repeated auth-allow and
 * tls-certificate lines add up.
 */
static void
test_submission_ok(void **state)
{
	struct config *cfg = load_good(BASE "listen 127.0.0.1:587 submission\n"
					    "listen 127.0.0.1:2525 submission\n"
					    "listen 127.0.0.1:465 submissions\n"
					    "users /etc/postern/users\n"
					    "tls-certificate /a.pem /a.key\n"
					    "tls-certificate /b.pem /b.key\n"
					    "tls-certificate /c.pem /c.key\n"
					    "auth-allow 10.0.0.0/8\n"
					    "auth-allow ::1 192.0.2.1\n"
					    "conn-limit-exempt 192.0.2.0/24\n"
					    "conn-limit-exempt 2001:db8::/32 "
					    "10.9.8.7\n");

	(void)state;
	assert_int_equal(cfg->n_listeners, 4);
	assert_int_equal(cfg->listeners[3].role, ROLE_SUBMISSIONS);
	assert_int_equal(cfg->n_certs, 3);
	assert_string_equal(cfg->certs[2].key, "/c.key");
	assert_int_equal(cfg->certs[2].line, 10);
	assert_int_equal(cfg->n_auth_allow, 3);
	assert_int_equal(cfg->auth_allow[1].family, AF_INET6);
	assert_int_equal(cfg->auth_allow[2].family, AF_INET);
	/* conn-limit-exempt adds up too, apart from auth-allow */
	assert_int_equal(cfg->n_conn_limit_exempt, 3);
	assert_int_equal(cfg->conn_limit_exempt[0].prefix, 24);
	assert_int_equal(cfg->conn_limit_exempt[1].family, AF_INET6);
	assert_int_equal(cfg->conn_limit_exempt[1].prefix, 32);
	assert_int_equal(cfg->conn_limit_exempt[2].prefix, 32);
	assert_memory_equal(cfg->conn_limit_exempt[2].addr, "\x0a\x09\x08\x07",
			    4);
	assert_false(cfg->tls_self_signed);
	config_free(&cfg);

	/* self-signed with the files to make; an exactly full socket path */
	cfg =
	    load_good(BASE "listen 127.0.0.1:587 submission\n"
			   "users u\n"
			   "tls-certificate c k\n"
			   "tls-self-signed yes\n"
			   "control-socket "
			   "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			   "aaaaa\n");
	assert_true(cfg->tls_self_signed);
	assert_int_equal(strlen(cfg->control_socket), 107);
	config_free(&cfg);
}

static char *load_path(const char *path, int *rc_r, struct config **cfg_r);

/*
 * users and tls-certificate are relative to the configuration file's
 * directory; control-socket, spool and maildir to the current one. All
 * end up absolute, also when the file itself was named relatively.
 */
static void
test_relative_files(void **state)
{
	char tmpl[] = "/tmp/test_config.XXXXXX";
	char *dir = mkdtemp(tmpl), *sub, *conf, *old = getcwd(NULL, 0), *want;
	static const char text[] = BASE "users users.db\n"
					"tls-certificate tls/c.pem /k.pem\n"
					"control-socket run/ctl.sock\n"
					"listen 127.0.0.1:587 submission\n";
	struct config *cfg;
	char *out;
	int rc;

	(void)state;
	assert_non_null(dir);
	assert_non_null(old);
	sub = xasprintf("%s/sub", dir);
	conf = xasprintf("%s/p.conf", sub);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(conf, text, strlen(text));

	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: absolute name, cwd elsewhere; 1: "sub/p.conf" */
		assert_int_equal(chdir(pass == 0 ? "/" : dir), 0);
		out = load_path(pass == 0 ? conf : "sub/p.conf", &rc, &cfg);
		assert_int_equal(chdir(old), 0);
		assert_string_equal(out, "");
		assert_int_equal(rc, 0);
		free(out);
		want = xasprintf("%s/users.db", sub);
		assert_string_equal(cfg->users_file, want);
		free(want);
		want = xasprintf("%s/tls/c.pem", sub);
		assert_string_equal(cfg->certs[0].cert, want);
		free(want);
		assert_string_equal(cfg->certs[0].key, "/k.pem");
		want = xasprintf("%s/run/ctl.sock", pass == 0 ? "" : dir);
		assert_string_equal(cfg->control_socket, want);
		free(want);
		config_free(&cfg);
	}
	assert_int_equal(unlink(conf), 0);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
	free(conf);
	free(sub);
	free(old);
}

static void
test_lookups(void **state)
{
	struct config *cfg =
	    load_good(BASE "mailbox Bob@Example.Test zed@a.test\n"
			   "mailbox alice@example.test x+tag=1@example.test\n"
			   "domains a.test # declared after its mailbox\n");
	const struct config_mailbox *mb;

	(void)state;
	assert_int_equal(cfg->n_mailboxes, 4);
	/* sorted by domain, then local part */
	assert_string_equal(cfg->mailboxes[0].domain, "a.test");
	assert_string_equal(cfg->mailboxes[1].local, "alice");
	assert_string_equal(cfg->mailboxes[2].local, "bob");
	assert_string_equal(cfg->mailboxes[3].local, "x+tag=1");

	mb = config_find_mailbox(cfg, "BOB", "EXAMPLE.test");
	assert_ptr_equal(mb, &cfg->mailboxes[2]);
	assert_ptr_equal(config_find_mailbox(cfg, "bob", "example.test."), mb);
	assert_ptr_equal(config_find_mailbox(cfg, "Zed", "A.TEST"),
			 &cfg->mailboxes[0]);
	assert_ptr_equal(config_find_mailbox(cfg, "X+Tag=1", "example.test"),
			 &cfg->mailboxes[3]);
	assert_null(config_find_mailbox(cfg, "bob", "example.test.."));
	assert_null(config_find_mailbox(cfg, "bo", "example.test"));
	assert_null(config_find_mailbox(cfg, "bobb", "example.test"));
	assert_null(config_find_mailbox(cfg, "bob", "a.test"));
	assert_null(config_find_mailbox(cfg, "zed", "example.test"));
	assert_null(config_find_mailbox(cfg, "", "example.test"));
	assert_null(config_find_mailbox(cfg, "bob", ""));
	assert_null(config_find_mailbox(cfg, NULL, "example.test"));

	assert_true(config_is_local_domain(cfg, "example.test"));
	assert_true(config_is_local_domain(cfg, "EXAMPLE.Test"));
	assert_true(config_is_local_domain(cfg, "example.test."));
	assert_true(config_is_local_domain(cfg, "A.TEST."));
	assert_false(config_is_local_domain(cfg, "example.test.."));
	assert_false(config_is_local_domain(cfg, "xample.test"));
	assert_false(config_is_local_domain(cfg, "example.tes"));
	assert_false(config_is_local_domain(cfg, "sub.example.test"));
	assert_false(config_is_local_domain(cfg, ""));
	assert_false(config_is_local_domain(cfg, "."));
	assert_false(config_is_local_domain(cfg, NULL));
	config_free(&cfg);
}

static void
test_maildir_path(void **state)
{
	struct config *cfg = load_good(BASE "mailbox Bob@example.test\n"
					    "maildir /srv/%d/%n/%%x/Maildir\n");
	char buf[64];

	(void)state;
	assert_int_equal(
	    config_maildir_path(cfg, &cfg->mailboxes[0], buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/srv/example.test/bob/%x/Maildir");
	/* exactly enough room, then one octet short */
	assert_int_equal(
	    config_maildir_path(cfg, &cfg->mailboxes[0], buf, strlen(buf) + 1),
	    0);
	assert_int_equal(config_maildir_path(cfg, &cfg->mailboxes[0], buf,
					     strlen("/srv/example.test/bob/%x/"
						    "Maildir")),
			 -1);
	config_free(&cfg);
}

/*
 * A '%' in the current directory must not turn into a template sequence
 * when a relative maildir is made absolute.
 */
static void
test_relative_paths_percent(void **state)
{
	char tmpl[] = "/tmp/test_config.XXXXXX";
	char *dir = mkdtemp(tmpl), *sub, *old = getcwd(NULL, 0), *want;
	struct config *cfg;
	char buf[PATH_MAX];

	(void)state;
	assert_non_null(dir);
	assert_non_null(old);
	sub = xasprintf("%s/a%%d%%b", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(chdir(sub), 0);
	assert_int_equal(config_load_builtin(&cfg, stderr), 0);
	assert_int_equal(chdir(old), 0);

	want = xasprintf("%s/a%%%%d%%%%b/var/mail/%%d/%%n/Maildir", dir);
	assert_string_equal(cfg->maildir, want);
	free(want);
	want = xasprintf("%s/var/spool", sub);
	assert_string_equal(cfg->spool, want);
	free(want);
	assert_int_equal(
	    config_maildir_path(cfg, &cfg->mailboxes[0], buf, sizeof(buf)), 0);
	want = xasprintf("%s/var/mail/example.test/demo/Maildir", sub);
	assert_string_equal(buf, want);
	free(want);
	config_free(&cfg);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
	free(sub);
	free(old);
}

/* Load a file; return the error output (caller frees). */
static char *
load_path(const char *path, int *rc_r, struct config **cfg_r)
{
	struct config *cfg;
	char *out = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&out, &len);

	assert_non_null(errors);
	*rc_r = config_load(path, &cfg, errors);
	assert_int_equal(fclose(errors), 0);
	if (cfg_r != NULL)
		*cfg_r = cfg;
	else
		config_free(&cfg);
	return out;
}

/* Files: mailboxes files (relative to the config), unreadable files. */
static void
test_files(void **state)
{
	char tmpl[] = "/tmp/test_config.XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *conf, *mb, *mb2, *nul, *text, *want, *out;
	struct config *cfg;
	int rc;

	(void)state;
	assert_non_null(dir);
	conf = xasprintf("%s/postern.conf", dir);
	mb = xasprintf("%s/mb.txt", dir);
	mb2 = xasprintf("%s/mb2.txt", dir);
	nul = xasprintf("%s/nul.conf", dir);

	/* good: relative and absolute mailboxes files, CRLF */
	write_file(mb,
		   "# users\r\n\r\n  carol@example.test  # c\r\n"
		   "Dave@Example.Test\r\n",
		   strlen("# users\r\n\r\n  carol@example.test  # c\r\n"
			  "Dave@Example.Test\r\n"));
	write_file(mb2, "erin@example.test", strlen("erin@example.test"));
	text = xasprintf(BASE "mailboxes mb.txt\nmailboxes %s\n", mb2);
	write_file(conf, text, strlen(text));
	free(text);
	out = load_path(conf, &rc, &cfg);
	assert_string_equal(out, "");
	assert_int_equal(rc, 0);
	free(out);
	assert_string_equal(cfg->file, conf);
	assert_int_equal(cfg->n_mailboxes, 3);
	assert_non_null(config_find_mailbox(cfg, "dave", "example.test"));
	assert_non_null(config_find_mailbox(cfg, "erin", "example.test"));
	config_free(&cfg);

	/* errors name the mailboxes file and its line */
	write_file(mb,
		   "carol@example.test\n"
		   "# comment\n"
		   ".bad@example.test\n"
		   "two words@example.test\n"
		   "Alice@example.test\n"
		   "zoe@elsewhere.test\n",
		   strlen("carol@example.test\n# comment\n.bad@example.test\n"
			  "two words@example.test\nAlice@example.test\n"
			  "zoe@elsewhere.test\n"));
	text = xasprintf(BASE "mailbox alice@example.test\n"
			      "mailboxes mb.txt\n"
			      "mailboxes missing.txt\n");
	write_file(conf, text, strlen(text));
	free(text);
	out = load_path(conf, &rc, NULL);
	want = xasprintf("%s/mb.txt:3: bad mailbox \".bad@example.test\": "
			 "local part starts with '.'\n"
			 "%s/mb.txt:4: expected one address per line, got 2 "
			 "words\n"
			 "%s/postern.conf:6: mailboxes: %s/missing.txt: cannot "
			 "read: No such file or directory\n"
			 "%s/mb.txt:6: mailbox zoe@elsewhere.test: domain "
			 "elsewhere.test is not in domains\n"
			 "%s/mb.txt:5: mailbox alice@example.test given twice "
			 "(first at %s/postern.conf:4)\n",
			 dir, dir, dir, dir, dir, dir, dir);
	assert_string_equal(out, want);
	assert_int_equal(rc, -1);
	free(want);
	free(out);

	/* a NUL octet in a line */
	write_file(nul, BASE "workers 1\0 2\n",
		   sizeof(BASE "workers 1\0 2\n") - 1);
	out = load_path(nul, &rc, NULL);
	want = xasprintf("%s:4: control character 0x00\n", nul);
	assert_string_equal(out, want);
	assert_int_equal(rc, -1);
	free(want);
	free(out);

	/* unreadable: missing, a directory */
	free(conf);
	conf = xasprintf("%s/nope.conf", dir);
	out = load_path(conf, &rc, &cfg);
	want = xasprintf("%s: cannot read: %s\n", conf, strerror(ENOENT));
	assert_string_equal(out, want);
	assert_int_equal(rc, -1);
	assert_null(cfg);
	free(want);
	free(out);
	out = load_path(dir, &rc, &cfg);
	want = xasprintf("%s: cannot read: %s\n", dir, strerror(EISDIR));
	assert_string_equal(out, want);
	assert_int_equal(rc, -1);
	assert_null(cfg);
	free(want);
	free(out);

	assert_int_equal(unlink(mb), 0);
	assert_int_equal(unlink(mb2), 0);
	assert_int_equal(unlink(nul), 0);
	free(conf);
	conf = xasprintf("%s/postern.conf", dir);
	assert_int_equal(unlink(conf), 0);
	assert_int_equal(rmdir(dir), 0);
	free(conf);
	free(mb);
	free(mb2);
	free(nul);
}

static void
test_builtin(void **state)
{
	struct config *cfg = NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&out, &len);
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	(void)state;
	assert_int_equal(config_load_builtin(&cfg, errors), 0);
	assert_int_equal(fclose(errors), 0);
	assert_string_equal(out, "");
	free(out);
	assert_string_equal(cfg->file, "(built-in)");
	assert_string_equal(cfg->hostname, "localhost");
	assert_true(config_is_local_domain(cfg, "example.test"));
	assert_non_null(config_find_mailbox(cfg, "demo", "example.test"));
	assert_int_equal(cfg->spool[0], '/');
	assert_int_equal(cfg->maildir[0], '/');
	assert_int_equal(cfg->n_listeners, 5);
	sin = (const struct sockaddr_in *)&cfg->listeners[0].addr;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 2025);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	sin6 = (const struct sockaddr_in6 *)&cfg->listeners[1].addr;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 2025);
	assert_memory_equal(&sin6->sin6_addr, &in6addr_loopback,
			    sizeof(in6addr_loopback));
	assert_int_equal(cfg->listeners[0].role, ROLE_MX);
	assert_int_equal(cfg->listeners[1].role, ROLE_MX);
	for (size_t i = 2; i < 5; i++) {
		static const unsigned ports[] = {2587, 2525, 2465};
		static const enum listen_role roles[] = {
		    ROLE_SUBMISSION, ROLE_SUBMISSION, ROLE_SUBMISSIONS};

		sin = (const struct sockaddr_in *)&cfg->listeners[i].addr;
		assert_int_equal(sin->sin_family, AF_INET);
		assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
		assert_int_equal(ntohs(sin->sin_port), ports[i - 2]);
		assert_int_equal(cfg->listeners[i].role, roles[i - 2]);
	}
	/* relative to the current directory, made absolute */
	assert_int_equal(cfg->n_certs, 1);
	assert_int_equal(cfg->certs[0].cert[0], '/');
	assert_non_null(strstr(cfg->certs[0].cert, "/var/tls/cert.pem"));
	assert_non_null(strstr(cfg->certs[0].key, "/var/tls/key.pem"));
	assert_true(cfg->tls_self_signed);
	assert_int_equal(cfg->users_file[0], '/');
	assert_non_null(strstr(cfg->users_file, "/var/users"));
	assert_int_equal(cfg->control_socket[0], '/');
	assert_non_null(strstr(cfg->control_socket, "/var/run/postern.sock"));
	assert_true(cfg->from_header_check);
	/* local tools (smtp-source) are never throttled in development */
	assert_int_equal(cfg->n_conn_limit_exempt, 2);
	assert_int_equal(cfg->conn_limit_exempt[0].family, AF_INET);
	assert_int_equal(cfg->conn_limit_exempt[0].prefix, 8);
	assert_memory_equal(cfg->conn_limit_exempt[0].addr, "\x7f\0\0\0", 4);
	assert_int_equal(cfg->conn_limit_exempt[1].family, AF_INET6);
	assert_int_equal(cfg->conn_limit_exempt[1].prefix, 128);
	assert_memory_equal(cfg->conn_limit_exempt[1].addr, &in6addr_loopback,
			    16);
	config_free(&cfg);
	assert_null(cfg);
	config_free(&cfg); /* twice is harmless */
	config_free(NULL);
}

static void
test_role_names(void **state)
{
	(void)state;
	assert_string_equal(config_role_name(ROLE_MX), "mx");
	assert_string_equal(config_role_name(ROLE_SUBMISSION), "submission");
	assert_string_equal(config_role_name(ROLE_SUBMISSIONS), "submissions");
	assert_string_equal(config_role_name((enum listen_role)7), "unknown");
}

/*
 * docs/config.md, found from this file's path (the build compiles it by a
 * path relative to where the tests run) or $POSTERN_SRCDIR.
 */
static char *
read_doc(void)
{
	static const char self[] = "tests/unit/test_config.c";
	const char *env = getenv("POSTERN_SRCDIR");
	const char *file = __FILE__;
	size_t flen = strlen(file), slen = strlen(self);
	char *path, *text = NULL;
	size_t cap = 0, len = 0, n;
	FILE *f;

	if (env != NULL)
		path = xasprintf("%s/docs/config.md", env);
	else if (flen >= slen && strcmp(file + flen - slen, self) == 0)
		path =
		    xasprintf("%.*sdocs/config.md", (int)(flen - slen), file);
	else
		path = xasprintf("docs/config.md");
	f = fopen(path, "r");
	if (f == NULL)
		print_error("cannot open %s: %s\n", path, strerror(errno));
	assert_non_null(f);
	do {
		if (cap - len < 4096) {
			cap += 65536;
			text = realloc(text, cap);
			assert_non_null(text);
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	assert_false(ferror(f));
	assert_true(len > 0);
	text[len] = '\0';
	fclose(f);
	free(path);
	return text;
}

/* The directive table in the doc is exactly what the code prints. */
static void
test_reference_matches_doc(void **state)
{
	static const char open_mark[] = "<!-- directives -->\n";
	static const char close_mark[] = "<!-- /directives -->";
	char *doc = read_doc(), *ref = NULL, *start, *end;
	size_t len = 0;
	FILE *out = open_memstream(&ref, &len);

	(void)state;
	config_write_reference(out);
	assert_int_equal(fclose(out), 0);
	start = strstr(doc, open_mark);
	assert_non_null(start);
	start += strlen(open_mark);
	end = strstr(start, close_mark);
	assert_non_null(end);
	*end = '\0';
	assert_string_equal(start, ref);
	/* and the table is not empty: one row per directive */
	assert_non_null(strstr(ref, "| `hostname` |"));
	assert_non_null(strstr(ref, "| `sync-method` |"));
	assert_non_null(strstr(ref, "| `tls-certificate` | CERT KEY | none |"));
	assert_non_null(strstr(ref, "| `tls-self-signed` | BOOLEAN | `no` | "
				    "yes, no |"));
	assert_non_null(strstr(ref, "| `auth-lock-max` | DURATION | `1h` | "
				    "1s..168h |"));
	assert_non_null(strstr(ref, "| `control-socket` |"));
	/* the built-in configuration is shown in the doc too */
	assert_non_null(strstr(end + 1, "hostname localhost\n"
					"domains example.test\n"
					"mailbox demo@example.test\n"
					"postmaster demo@example.test\n"
					"users var/users\n"
					"spool var/spool\n"
					"maildir var/mail/%d/%n/Maildir\n"
					"control-socket var/run/postern.sock\n"
					"metrics-listen 127.0.0.1:9154\n"
					"tls-certificate var/tls/cert.pem "
					"var/tls/key.pem\n"
					"tls-self-signed yes\n"
					"conn-limit-exempt 127.0.0.0/8 ::1\n"
					"listen 127.0.0.1:2025 mx\n"
					"listen [::1]:2025 mx\n"
					"listen 127.0.0.1:2587 submission\n"
					"listen 127.0.0.1:2525 submission\n"
					"listen 127.0.0.1:2465 submissions\n"
					"```\n"));
	free(ref);
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_file),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_all_errors_reported),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_bools),
	    cmocka_unit_test(test_networks),
	    cmocka_unit_test(test_submission_ok),
	    cmocka_unit_test(test_relative_files),
	    cmocka_unit_test(test_lookups),
	    cmocka_unit_test(test_maildir_path),
	    cmocka_unit_test(test_relative_paths_percent),
	    cmocka_unit_test(test_files),
	    cmocka_unit_test(test_builtin),
	    cmocka_unit_test(test_role_names),
	    cmocka_unit_test(test_reference_matches_doc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
