/*
 * config_outbound.c - the values of the outbound directives (the queue
 * process, docs/outbound.md): resolvers, trust anchor, transports, the
 * relay host and its credentials, and the checks between them.
 */
#include "conf/config_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* dns-resolver ADDR[:PORT]...: IPv4 "a.b.c.d[:port]" or "[v6]:port" or a
   bare v6 address; kept as libunbound wants it, "ADDR@PORT". */
static const char *
config_resolver(const char *s, char *out, size_t size)
{
	char addr[64];
	const char *port = NULL, *end;
	unsigned char bin[16];
	size_t n;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return "is not [ADDRESS]:PORT";
		n = (size_t)(end - s - 1);
		memcpy(addr, s + 1, n < sizeof(addr) ? n : 0);
		port = end[1] == ':' ? end + 2 : NULL;
	} else if ((end = strchr(s, ':')) != NULL && strchr(end + 1, ':') ==
							   NULL) {
		n = (size_t)(end - s);
		port = end + 1;
	} else {
		n = strlen(s);
	}
	if (n == 0 || n >= sizeof(addr))
		return "is not an IP address";
	if (s[0] != '[')
		memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, bin) != 1 &&
	    inet_pton(AF_INET6, addr, bin) != 1)
		return "is not an IP address";
	if (port != NULL) {
		uint64_t v;

		if (config_values_digits(port, strlen(port), &v) < 0 || v == 0 ||
		    v > 65535)
			return "has a bad port";
		snprintf(out, size, "%s@%u", addr, (unsigned)v);
	} else {
		snprintf(out, size, "%s", addr);
	}
	return NULL;
}

void
config_parse_resolver(struct config_parser *p,
		      const struct config_directive *d, char **argv,
		      size_t argc)
{
	struct config *cfg = p->cfg;

	for (size_t i = 0; i < argc; i++) {
		char out[80];
		const char *why = config_resolver(argv[i], out, sizeof(out));

		if (why != NULL) {
			config_error(p, "%s: \"%s\" %s", d->name, argv[i], why);
			continue;
		}
		cfg->dns_resolvers =
		    config_xrealloc(cfg->dns_resolvers, cfg->n_dns_resolvers + 1,
				    sizeof(*cfg->dns_resolvers));
		cfg->dns_resolvers[cfg->n_dns_resolvers++] =
		    config_xstrdup(out);
	}
}

/* dns-trust-anchor FILE|none. */
void
config_parse_trust_anchor(struct config_parser *p,
			  const struct config_directive *d, char **argv,
			  size_t argc)
{
	struct config *cfg = p->cfg;

	(void)d;
	(void)argc;
	free(cfg->dns_trust_anchor);
	cfg->dns_trust_anchor = strcmp(argv[0], "none") == 0
				    ? NULL
				    : config_relative_path(p->file, argv[0]);
}

/*
 * HOST, HOST:PORT, [HOST] or [HOST]:PORT (Postfix's notation): brackets
 * mean the host's own addresses, no MX lookup; an IP address must be in
 * brackets. The port defaults to 25.
 */
static const char *
config_route(const char *s, struct config_route *r)
{
	const char *end, *port = NULL;
	size_t n;
	char host[256];
	unsigned char bin[16];

	r->no_mx = s[0] == '[';
	if (r->no_mx) {
		end = strchr(s, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return "is not [HOST]:PORT";
		n = (size_t)(end - s - 1);
		port = end[1] == ':' ? end + 2 : NULL;
		s++;
	} else {
		end = strchr(s, ':');
		n = end != NULL ? (size_t)(end - s) : strlen(s);
		port = end != NULL ? end + 1 : NULL;
	}
	if (n == 0 || n >= sizeof(host))
		return "has no host";
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, bin) != 1 &&
	    inet_pton(AF_INET6, host, bin) != 1) {
		if (config_values_domain(host) != NULL)
			return "is not a host name or an IP address";
	} else if (!r->no_mx) {
		return "has an IP address outside brackets";
	}
	r->port = 25;
	if (port != NULL) {
		uint64_t v;

		if (config_values_digits(port, strlen(port), &v) < 0 || v == 0 ||
		    v > 65535)
			return "has a bad port";
		r->port = (unsigned)v;
	}
	r->host = config_lower_dup(host, n);
	return NULL;
}

/* transport DOMAIN [HOST]:PORT */
void
config_parse_transport(struct config_parser *p,
		       const struct config_directive *d, char **argv,
		       size_t argc)
{
	struct config *cfg = p->cfg;
	struct config_route r = {.line = p->line};
	const char *why = config_values_domain(argv[0]);
	size_t dlen = strlen(argv[0]);

	(void)argc;
	if (why != NULL) {
		config_error(p, "%s: \"%s\" is not a domain name: %s", d->name,
			     argv[0], why);
		return;
	}
	if (dlen > 0 && argv[0][dlen - 1] == '.')
		dlen--;
	for (size_t i = 0; i < cfg->n_transports; i++) {
		if (config_casecmp(cfg->transports[i].domain,
				   strlen(cfg->transports[i].domain), argv[0],
				   dlen) == 0) {
			config_error(p, "%s: %s given twice (first on line %u)",
				     d->name, argv[0], cfg->transports[i].line);
			return;
		}
	}
	if ((why = config_route(argv[1], &r)) != NULL) {
		config_error(p, "%s: \"%s\" %s", d->name, argv[1], why);
		return;
	}
	r.domain = config_lower_dup(argv[0], dlen);
	cfg->transports = config_xrealloc(cfg->transports, cfg->n_transports + 1,
					  sizeof(*cfg->transports));
	cfg->transports[cfg->n_transports++] = r;
}

/* relay-host [HOST]:PORT */
void
config_parse_relay_host(struct config_parser *p,
			const struct config_directive *d, char **argv,
			size_t argc)
{
	struct config_route r = {.line = p->line};
	const char *why = config_route(argv[0], &r);

	(void)argc;
	if (why != NULL) {
		config_error(p, "%s: \"%s\" %s", d->name, argv[0], why);
		return;
	}
	p->cfg->relay_host = config_xrealloc(NULL, 1, sizeof(r));
	*p->cfg->relay_host = r;
}

/* relay-auth USER FILE: the password is read by the queue process. */
void
config_parse_relay_auth(struct config_parser *p,
			const struct config_directive *d, char **argv,
			size_t argc)
{
	struct config *cfg = p->cfg;

	(void)argc;
	if (strlen(argv[0]) > 255) {
		config_error(p, "%s: the user name is over 255 octets", d->name);
		return;
	}
	cfg->relay_auth_user = config_xstrdup(argv[0]);
	cfg->relay_auth_file = config_relative_path(p->file, argv[1]);
}

static const char *const config_tls_policy_words[] = {
    "may", "none", "encrypt", "verify", "dane", NULL};

/* tls-policy DOMAIN POLICY */
void
config_parse_tls_policy(struct config_parser *p,
			const struct config_directive *d, char **argv,
			size_t argc)
{
	struct config *cfg = p->cfg;
	const char *why = config_values_domain(argv[0]);
	int k = config_values_word_index(config_tls_policy_words, argv[1]);

	(void)argc;
	if (why != NULL) {
		config_error(p, "%s: \"%s\" is not a domain name: %s", d->name,
			     argv[0], why);
		return;
	}
	if (k < 0) {
		config_error(p, "%s: \"%s\" is not one of may, none, encrypt, "
				"verify, dane",
			     d->name, argv[1]);
		return;
	}
	for (size_t i = 0; i < cfg->n_tls_policies; i++) {
		if (config_casecmp(cfg->tls_policies[i].domain,
				   strlen(cfg->tls_policies[i].domain), argv[0],
				   strlen(argv[0])) == 0) {
			config_error(p, "%s: %s given twice (first on line %u)",
				     d->name, argv[0],
				     cfg->tls_policies[i].line);
			return;
		}
	}
	cfg->tls_policies =
	    config_xrealloc(cfg->tls_policies, cfg->n_tls_policies + 1,
			    sizeof(*cfg->tls_policies));
	cfg->tls_policies[cfg->n_tls_policies++] = (struct config_tls_policy){
	    config_lower_dup(argv[0], strlen(argv[0])), (enum tls_policy)k,
	    p->line};
}

bool
config_has_tls_policy(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->n_tls_policies; i++)
		if (strcasecmp(cfg->tls_policies[i].domain, domain) == 0)
			return true;
	return false;
}

enum tls_policy
config_find_tls_policy(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->n_tls_policies; i++)
		if (strcasecmp(cfg->tls_policies[i].domain, domain) == 0)
			return cfg->tls_policies[i].policy;
	return TLS_POLICY_MAY;
}

/* The rules between the outbound directives. */
void
config_check_outbound(struct config_parser *p)
{
	struct config *cfg = p->cfg;

	p->line = 0;
	if (cfg->retry_max < cfg->retry_min)
		config_error(p, "retry-max is shorter than retry-min");
	if (cfg->relay_auth_user != NULL && cfg->relay_host == NULL)
		config_error(p, "relay-auth needs a relay-host");
	for (size_t i = 0; i < cfg->n_transports; i++) {
		/* (domains are stored lower case, as transports are) */
		for (size_t k = 0; k < cfg->n_domains; k++) {
			if (strcmp(cfg->domains[k], cfg->transports[i].domain) !=
			    0)
				continue;
			p->line = cfg->transports[i].line;
			config_error(p, "transport: %s is one of our domains",
				     cfg->transports[i].domain);
		}
	}
}

static void
config_route_free(struct config_route *r)
{
	free(r->domain);
	free(r->host);
}

void
config_free_outbound(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_dns_resolvers; i++)
		free(cfg->dns_resolvers[i]);
	free(cfg->dns_resolvers);
	free(cfg->dns_trust_anchor);
	for (size_t i = 0; i < cfg->n_transports; i++)
		config_route_free(&cfg->transports[i]);
	free(cfg->transports);
	if (cfg->relay_host != NULL)
		config_route_free(cfg->relay_host);
	free(cfg->relay_host);
	free(cfg->relay_auth_user);
	free(cfg->relay_auth_file);
	free(cfg->outbound_tls_ca);
	for (size_t i = 0; i < cfg->n_tls_policies; i++)
		free(cfg->tls_policies[i].domain);
	free(cfg->tls_policies);
}

const struct config_route *
config_find_route(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->n_transports; i++)
		if (strcasecmp(cfg->transports[i].domain, domain) == 0)
			return &cfg->transports[i];
	return cfg->relay_host;
}
