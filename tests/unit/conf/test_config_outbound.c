/*
 * test_config_outbound.c - the outbound directives
 * (src/conf/config_outbound.c): values, defaults, errors, routes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/config.h"

#define BASE                                                                   \
	"hostname out.example.org\ndomains example.org\n"                     \
	"listen 127.0.0.1:2525 mx\n"

/* Load `text`; on failure the errors are in *errs_r (to free). */
static int
load(const char *text, struct config **cfg_r, char **errs_r)
{
	size_t len;
	FILE *f = open_memstream(errs_r, &len);
	int rc;

	assert_non_null(f);
	rc = config_load_string("/etc/postern/p.conf", text, cfg_r, f);
	fclose(f);
	return rc;
}

static void
test_defaults(void **state)
{
	struct config *cfg;
	char *errs = NULL;

	assert_int_equal(load(BASE, &cfg, &errs), 0);
	free(errs);
	assert_int_equal(cfg->n_dns_resolvers, 0);
	assert_string_equal(cfg->dns_trust_anchor, "/usr/share/dns/root.key");
	assert_int_equal(cfg->outbound_sessions, 100);
	assert_int_equal(cfg->outbound_sessions_per_dest, 20);
	assert_int_equal(cfg->retry_min, 300);
	assert_int_equal(cfg->retry_max, 3600);
	assert_int_equal(cfg->queue_lifetime, 5 * 86400);
	assert_int_equal(cfg->delay_warning, 4 * 3600);
	assert_null(cfg->relay_host);
	assert_int_equal(cfg->relay_tls, RELAY_TLS_STARTTLS);
	assert_null(config_find_route(cfg, "example.net"));
	assert_int_equal(config_find_tls_policy(cfg, "example.net"),
			 TLS_POLICY_MAY);
	assert_true(cfg->outbound_delivery);
	config_free(&cfg);
}

static void
test_values(void **state)
{
	struct config *cfg;
	char *errs = NULL;
	const struct config_route *r;

	assert_int_equal(
	    load(BASE "dns-resolver 127.0.0.1:5353 ::1 [::1]:53 192.0.2.1\n"
		      "dns-trust-anchor keys/ta.ds\n"
		      "transport Example.NET [127.0.0.2]:2525\n"
		      "transport example.com mx.example.com\n"
		      "relay-host [smtp.example.com]:587\n"
		      "relay-auth joe secret.txt\n"
		      "relay-tls implicit\nretry-min 1s\nretry-max 2s\n"
		      "tls-policy Bank.example verify\n"
		      "tls-policy a.example none\ntls-policy b.example dane\n"
		      "outbound-tls-ca ca.pem\noutbound-delivery no\n",
		      &cfg, &errs),
	    0);
	free(errs);
	assert_int_equal(cfg->n_dns_resolvers, 4);
	assert_string_equal(cfg->dns_resolvers[0], "127.0.0.1@5353");
	assert_string_equal(cfg->dns_resolvers[1], "::1");
	assert_string_equal(cfg->dns_resolvers[2], "::1@53");
	assert_string_equal(cfg->dns_resolvers[3], "192.0.2.1");
	assert_string_equal(cfg->dns_trust_anchor, "/etc/postern/keys/ta.ds");
	r = config_find_route(cfg, "example.net");
	assert_non_null(r);
	assert_string_equal(r->host, "127.0.0.2");
	assert_int_equal(r->port, 2525);
	assert_true(r->no_mx);
	r = config_find_route(cfg, "EXAMPLE.COM");
	assert_string_equal(r->host, "mx.example.com");
	assert_int_equal(r->port, 25);
	assert_false(r->no_mx);
	r = config_find_route(cfg, "other.example");
	assert_ptr_equal(r, cfg->relay_host);
	assert_string_equal(r->host, "smtp.example.com");
	assert_int_equal(r->port, 587);
	assert_string_equal(cfg->relay_auth_user, "joe");
	assert_string_equal(cfg->relay_auth_file, "/etc/postern/secret.txt");
	assert_int_equal(cfg->relay_tls, RELAY_TLS_IMPLICIT);
	assert_int_equal(config_find_tls_policy(cfg, "bank.example"),
			 TLS_POLICY_VERIFY);
	assert_int_equal(config_find_tls_policy(cfg, "a.example"),
			 TLS_POLICY_NONE);
	assert_int_equal(config_find_tls_policy(cfg, "b.example"),
			 TLS_POLICY_DANE);
	assert_int_equal(config_find_tls_policy(cfg, "c.example"),
			 TLS_POLICY_MAY);
	assert_string_equal(cfg->outbound_tls_ca, "/etc/postern/ca.pem");
	assert_false(cfg->outbound_delivery);
	config_free(&cfg);
	assert_int_equal(load(BASE "dns-trust-anchor none\n", &cfg, &errs), 0);
	free(errs);
	assert_null(cfg->dns_trust_anchor);
	config_free(&cfg);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *line, *error;
	} cases[] = {
	    {"dns-resolver example.net\n", "is not an IP address"},
	    {"dns-resolver 127.0.0.1:0\n", "has a bad port"},
	    {"dns-resolver [::1\n", "is not [ADDRESS]:PORT"},
	    {"transport example.net 127.0.0.2\n",
	     "has an IP address outside brackets"},
	    {"transport example.net [bad!host]:25\n",
	     "is not a host name or an IP address"},
	    {"transport example.net [x]:99999\n", "has a bad port"},
	    {"transport example.net []:25\n", "has no host"},
	    {"transport example.org [x]\n", "is one of our domains"},
	    {"transport a.example [x]\ntransport A.example [y]\n",
	     "given twice"},
	    {"relay-auth joe f\n", "relay-auth needs a relay-host"},
	    {"retry-min 2h\nretry-max 1h\n",
	     "retry-max is shorter than retry-min"},
	    {"relay-tls maybe\n", "relay-tls"},
	    {"tls-policy a.example secure\n",
	     "is not one of may, none, encrypt, verify, dane"},
	    {"tls-policy a.example none\ntls-policy A.example may\n",
	     "given twice"},
	    {"tls-policy bad!domain none\n", "is not a domain name"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512], *errs = NULL;
		struct config *cfg = NULL;

		snprintf(text, sizeof(text), BASE "%s", cases[i].line);
		assert_int_equal(load(text, &cfg, &errs), -1);
		assert_null(cfg);
		if (strstr(errs, cases[i].error) == NULL)
			fail_msg("%s: got \"%s\"", cases[i].line, errs);
		free(errs);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
