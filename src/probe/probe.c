/*
 * probe.c - `postern probe`: the command line, the target and its ports
 * (or, with --self, the listeners of a configuration), the order of the
 * checks, the note of what was sent, the report. See docs/probe.md.
 */
#include "probe/probe.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/config.h"
#include "probe/probe_int.h"
#include "smtp/smtp_parse.h"

#define PROBE_DEFAULT_PORTS "25,465,587,2525"
#define PROBE_RELAY_DOMAIN "example.net"

static void
probe_usage(FILE *out)
{
	fprintf(out,
		"usage: postern probe HOST [--ports 25,465,587,2525] [--json]\n"
		"           [--timeout S] [--ca FILE] [--name SNI]\n"
		"           [--deliver-to ADDRESS] [--intrusive [--user "
		"ACCOUNT]]\n"
		"           [--helo NAME] [--relay-domain DOMAIN] "
		"[--dns ADDR[:PORT]] [-v]\n"
		"       postern probe --self [-c FILE] [options]\n"
		"A port may carry a hint: 465/tls (implicit TLS), 2525/smtp.\n"
		"Exit: 0 nothing failed, 1 a check failed, 2 usage or "
		"connection error.\n");
}

/* "25,465/tls,2525/smtp" into o->ports and o->hints. */
static int
probe_parse_ports(const char *s, struct probe_options *o)
{
	const char *p = s;

	o->n_ports = 0;
	while (*p != '\0') {
		char *end;
		long v = strtol(p, &end, 10);
		enum probe_role hint = PROBE_ROLE_CLOSED;

		if (end == p || v < 1 || v > 65535 ||
		    o->n_ports >= PROBE_PORTS_MAX)
			return -1;
		if (strncmp(end, "/tls", 4) == 0) {
			hint = PROBE_ROLE_IMPLICIT_TLS;
			end += 4;
		} else if (strncmp(end, "/smtp", 5) == 0) {
			hint = PROBE_ROLE_PLAIN;
			end += 5;
		}
		for (size_t i = 0; i < o->n_ports; i++)
			if (o->ports[i] == (unsigned)v)
				return -1;
		o->hints[o->n_ports] = hint;
		o->ports[o->n_ports++] = (unsigned)v;
		if (*end == ',')
			end++;
		else if (*end != '\0')
			return -1;
		p = end;
	}
	return o->n_ports > 0 ? 0 : -1;
}

/* A host name for SNI and certificates (RFC 6066 section 3): LDH labels
   as our parser takes them in EHLO, no address literal, no trailing
   dot, at most 253 octets. */
static bool
probe_hostname_valid(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= 253 && name[0] != '[' &&
	       name[len - 1] != '.' && smtp_helo_valid(name, len);
}

/* A mailbox our parser takes as an RCPT path (no route, no NUL...). */
static bool
probe_valid_mailbox(const char *addr)
{
	char args[320];
	struct smtp_path p;
	int n = snprintf(args, sizeof(args), "TO:<%s>", addr);

	return n > 0 && (size_t)n < sizeof(args) && strchr(addr, ':') == NULL &&
	       smtp_parse_rcpt(args, (size_t)n, false, &p) == SMTP_PERR_OK &&
	       !p.is_null;
}

/* "ADDR[:PORT]", IPv4 (what res_state's nsaddr_list takes). */
static bool
probe_valid_dns(const char *spec)
{
	char host[INET_ADDRSTRLEN];
	struct in_addr a;
	const char *colon = strchr(spec, ':');
	size_t n = colon != NULL ? (size_t)(colon - spec) : strlen(spec);

	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, spec, n);
	host[n] = '\0';
	if (colon != NULL) {
		char *end;
		long port = strtol(colon + 1, &end, 10);

		if (colon[1] == '\0' || *end != '\0' || port < 1 ||
		    port > 65535)
			return false;
	}
	return inet_pton(AF_INET, host, &a) == 1;
}

enum {
	OPT_PORTS = 256,
	OPT_JSON,
	OPT_TIMEOUT,
	OPT_CA,
	OPT_NAME,
	OPT_DELIVER,
	OPT_INTRUSIVE,
	OPT_USER,
	OPT_HELO,
	OPT_RELAY,
	OPT_DNS,
	OPT_SELF,
};

static const struct option probe_longopts[] = {
    {"ports", required_argument, NULL, OPT_PORTS},
    {"json", no_argument, NULL, OPT_JSON},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"ca", required_argument, NULL, OPT_CA},
    {"name", required_argument, NULL, OPT_NAME},
    {"deliver-to", required_argument, NULL, OPT_DELIVER},
    {"intrusive", no_argument, NULL, OPT_INTRUSIVE},
    {"user", required_argument, NULL, OPT_USER},
    {"helo", required_argument, NULL, OPT_HELO},
    {"relay-domain", required_argument, NULL, OPT_RELAY},
    {"dns", required_argument, NULL, OPT_DNS},
    {"self", no_argument, NULL, OPT_SELF},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option; -1 with the reason on a bad value. */
static int
probe_option(int opt, const char *arg, struct probe_options *o,
	     const char **config_r, const char **why_r)
{
	char *end;
	long v;

	switch (opt) {
	case OPT_PORTS:
		*why_r = "--ports: a list of ports 1-65535 (PORT[/tls|/smtp])";
		return probe_parse_ports(arg, o);
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_TIMEOUT:
		v = strtol(arg, &end, 10);
		*why_r = "--timeout: seconds, 1 to 300";
		if (*end != '\0' || v < 1 || v > PROBE_TIMEOUT_MAX)
			return -1;
		o->timeout = (unsigned)v;
		return 0;
	case OPT_CA:
		o->ca = arg;
		return 0;
	case OPT_NAME:
		o->name = arg;
		*why_r = "--name: a host name";
		return probe_hostname_valid(arg) ? 0 : -1;
	case OPT_DELIVER:
		o->deliver_to = arg;
		*why_r = "--deliver-to: a mailbox address (user@domain)";
		return probe_valid_mailbox(arg) ? 0 : -1;
	case OPT_INTRUSIVE:
		o->intrusive = true;
		return 0;
	case OPT_USER:
		o->user = arg;
		*why_r = "--user: 1 to 255 printable characters";
		for (const char *p = arg; *p != '\0'; p++)
			if ((unsigned char)*p < 0x21 || *p == 0x7f)
				return -1;
		return arg[0] != '\0' && strlen(arg) <= 255 ? 0 : -1;
	case OPT_HELO:
		o->helo = arg;
		*why_r = "--helo: a domain or an address literal";
		return smtp_helo_valid(arg, strlen(arg)) && strlen(arg) < 255
			   ? 0
			   : -1;
	case OPT_RELAY:
		o->relay_domain = arg;
		*why_r = "--relay-domain: a host name";
		return probe_hostname_valid(arg) ? 0 : -1;
	case OPT_DNS:
		o->dns = arg;
		*why_r = "--dns: an IPv4 address, optionally :PORT";
		return probe_valid_dns(arg) ? 0 : -1;
	case OPT_SELF:
		o->self = true;
		return 0;
	case 'c':
		*config_r = arg;
		return 0;
	case 'v':
		o->verbose = true;
		return 0;
	}
	*why_r = NULL;
	return -1;
}

static int
probe_options_parse(int argc, char **argv, struct probe_options *o,
		    const char **config_r)
{
	const char *why = NULL;
	bool ports_given = false;
	int opt;

	memset(o, 0, sizeof(*o));
	o->timeout = PROBE_TIMEOUT_DEFAULT;
	o->relay_domain = PROBE_RELAY_DOMAIN;
	(void)probe_parse_ports(PROBE_DEFAULT_PORTS, o);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:vh", probe_longopts, NULL)) !=
	       -1) {
		if (opt == 'h') {
			probe_usage(stdout);
			return 1;
		}
		ports_given |= opt == OPT_PORTS;
		if (probe_option(opt, optarg, o, config_r, &why) < 0) {
			if (why != NULL)
				fprintf(stderr, "postern probe: %s\n", why);
			probe_usage(stderr);
			return -1;
		}
	}
	if (o->self ? optind != argc : optind + 1 != argc) {
		probe_usage(stderr);
		return -1;
	}
	if (*config_r != NULL && !o->self) {
		fprintf(stderr, "postern probe: -c goes with --self\n");
		return -1;
	}
	if (o->self && ports_given) {
		fprintf(stderr, "postern probe: --self probes the configured "
				"listeners; --ports does not go with it\n");
		return -1;
	}
	if (!o->self)
		o->host = argv[optind];
	return 0;
}

/* ---- the target
 * -------------------------------------------------------------- */

/* Resolve a host (a name or an address, "[...]" allowed) for TCP. */
static int
probe_resolve(const char *host, struct sockaddr_storage *ss, socklen_t *len_r,
	      bool *is_ip_r)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char h[256];
	size_t n = strlen(host);
	int rc;

	if (n >= sizeof(h))
		return -1;
	if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
	} else {
		memcpy(h, host, n + 1);
	}
	hints.ai_flags = AI_NUMERICHOST;
	*is_ip_r = getaddrinfo(h, NULL, &hints, &ai) == 0;
	if (!*is_ip_r) {
		hints.ai_flags = 0;
		rc = getaddrinfo(h, NULL, &hints, &ai);
		if (rc != 0) {
			fprintf(stderr, "postern probe: %s: %s\n", host,
				gai_strerror(rc));
			return -1;
		}
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len_r = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Text and RFC 5321 address literal of the target's address. */
static void
probe_describe_addr(struct probe *pr)
{
	const struct sockaddr_storage *ss = &pr->addr;
	const void *a =
	    ss->ss_family == AF_INET6
		? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
		: (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (inet_ntop(ss->ss_family, a, pr->addr_text, sizeof(pr->addr_text)) ==
	    NULL)
		(void)snprintf(pr->addr_text, sizeof(pr->addr_text), "?");
	(void)snprintf(pr->ip_literal, sizeof(pr->ip_literal), "[%s%s]",
		       ss->ss_family == AF_INET6 ? "IPv6:" : "", pr->addr_text);
}

static void
probe_set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/* ---- --self ---------------------------------------------------------------
 */

/* The listener's address to connect to: a wildcard becomes loopback. */
static void
probe_listener_host(const struct config_listener *l, char *out, size_t size)
{
	char text[INET6_ADDRSTRLEN] = "127.0.0.1";
	const struct sockaddr_storage *ss = &l->addr;

	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)ss)->sin6_addr;

		if (IN6_IS_ADDR_UNSPECIFIED(a))
			(void)snprintf(text, sizeof(text), "::1");
		else
			(void)inet_ntop(AF_INET6, a, text, sizeof(text));
	} else {
		const struct in_addr *a =
		    &((const struct sockaddr_in *)ss)->sin_addr;

		if (a->s_addr != htonl(INADDR_ANY))
			(void)inet_ntop(AF_INET, a, text, sizeof(text));
	}
	(void)snprintf(out, size, "%s", text);
}

static unsigned
probe_listener_port(const struct config_listener *l)
{
	return l->addr.ss_family == AF_INET6
		   ? ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port)
		   : ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
}

/*
 * The ports of --self: each listener once per port (the first address
 * wins), with the role it is configured for as the hint; --name defaults
 * to the hostname, and a self-signed certificate (tls-self-signed) is
 * trusted as the only anchor when no --ca is given.
 */
static int
probe_self(struct probe_options *o, const char *file, struct config **cfg_r,
	   char hosts[][64])
{
	struct config *cfg = NULL;

	if ((file != NULL ? config_load(file, &cfg, stderr)
			  : config_load_builtin(&cfg, stderr)) < 0) {
		fprintf(stderr, "postern probe: configuration refused\n");
		return -1;
	}
	*cfg_r = cfg;
	o->n_ports = 0;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		unsigned port = probe_listener_port(l);
		bool seen = false;

		for (size_t k = 0; k < o->n_ports; k++)
			seen |= o->ports[k] == port;
		if (seen || o->n_ports >= PROBE_PORTS_MAX)
			continue;
		probe_listener_host(l, hosts[o->n_ports], 64);
		o->port_hosts[o->n_ports] = hosts[o->n_ports];
		o->hints[o->n_ports] = l->role == ROLE_SUBMISSIONS
					   ? PROBE_ROLE_IMPLICIT_TLS
				       : cfg->n_certs > 0 ? PROBE_ROLE_STARTTLS
							  : PROBE_ROLE_PLAIN;
		o->ports[o->n_ports++] = port;
	}
	if (o->n_ports == 0) {
		fprintf(stderr, "postern probe: no listener to probe\n");
		return -1;
	}
	o->host = o->port_hosts[0];
	if (o->name == NULL && cfg->hostname != NULL &&
	    probe_hostname_valid(cfg->hostname))
		o->name = cfg->hostname;
	if (o->ca == NULL && cfg->tls_self_signed && cfg->n_certs > 0 &&
	    access(cfg->certs[0].cert, R_OK) == 0) {
		o->ca = cfg->certs[0].cert;
		o->ca_is_self_signed = true;
	}
	return 0;
}

/* ---- the run
 * ------------------------------------------------------------------ */

static void
probe_port_run(struct probe_port_state *ps)
{
	struct probe_session s;

	memset(&s, 0, sizeof(s));
	probe_conn_init(&s.c, ps->pr->o->timeout);
	probe_smtp_detect(ps, &s);
	if (ps->out->role == PROBE_ROLE_CLOSED ||
	    ps->out->role == PROBE_ROLE_UNKNOWN)
		return;
	probe_smtp_checks(ps, &s);
	probe_relay_check(ps, &s);
	probe_starttls_upgrade(ps, &s);
	/* A STARTTLS port may offer PIPELINING only inside TLS. */
	if (ps->out->checks[PC_PIPELINING].result == PROBE_SKIP && s.is_tls &&
	    ps->has_ehlo_tls)
		probe_pipelining_check(ps, &s);
	/* From here every check makes its own connections, one at a time. */
	probe_session_end(&s);
	probe_starttls_check(ps);
	probe_auth_verdict(ps);
	probe_tls_checks(ps);
	probe_dane_check(ps);
	probe_smuggling_check(ps);
}

/* The note of what was sent, for the top of the report. */
static char *
probe_sent_note(const struct probe *pr)
{
	const struct probe_sent *t = &pr->sent;
	struct probe_buf b = {0};

	probe_buf_addf(&b, "%u connections", t->connections);
	if (probe_conn_max_open() > 1)
		probe_buf_addf(&b, " (at most %u at once)",
			       probe_conn_max_open());
	else
		probe_buf_addf(&b, " (one at a time)");
	probe_buf_addf(&b, ", %u TLS handshakes, %u EHLO, %u HELP",
		       t->handshakes, t->ehlo, t->help);
	if (t->auth_probes > 0)
		probe_buf_addf(&b,
			       ", %u AUTH started without credentials "
			       "before TLS and cancelled",
			       t->auth_probes);
	if (t->vrfy + t->expn > 0)
		probe_buf_addf(&b,
			       ", %u VRFY and %u EXPN of common names and "
			       "a random one",
			       t->vrfy, t->expn);
	if (t->relay_pairs > 0)
		probe_buf_addf(&b,
			       ", %u MAIL/RCPT pairs to %s (each stopped "
			       "at RCPT and reset, no DATA)",
			       t->relay_pairs, pr->o->relay_domain);
	if (t->pipelined > 0)
		probe_buf_addf(&b, ", %u pipelined group%s", t->pipelined,
			       t->pipelined == 1 ? "" : "s");
	if (t->messages > 0)
		probe_buf_addf(&b, ", %u short test messages to %s",
			       t->messages, pr->o->deliver_to);
	else
		probe_buf_addf(&b, ", no message");
	if (t->passwords > 0)
		probe_buf_addf(&b, ", %u wrong passwords for %s", t->passwords,
			       pr->o->user);
	else
		probe_buf_addf(&b, ", no password");
	return probe_buf_take(&b);
}

/* Resolve every port's address; the target's first. 0 or -1. */
static int
probe_targets(struct probe *pr, struct sockaddr_storage *addrs, socklen_t *lens)
{
	const struct probe_options *o = pr->o;

	if (probe_resolve(o->host, &pr->addr, &pr->addr_len, &pr->host_is_ip) <
	    0)
		return -1;
	probe_describe_addr(pr);
	for (size_t i = 0; i < o->n_ports; i++) {
		bool ip;

		if (o->port_hosts[i] != NULL &&
		    strcmp(o->port_hosts[i], o->host) != 0) {
			if (probe_resolve(o->port_hosts[i], &addrs[i], &lens[i],
					  &ip) < 0)
				return -1;
		} else {
			addrs[i] = pr->addr;
			lens[i] = pr->addr_len;
		}
		probe_set_port(&addrs[i], o->ports[i]);
	}
	return 0;
}

static int
probe_run(struct probe *pr)
{
	const struct probe_options *o = pr->o;
	struct sockaddr_storage addrs[PROBE_PORTS_MAX];
	socklen_t lens[PROBE_PORTS_MAX];
	struct probe_port_state *states;
	const char *why;

	if (probe_targets(pr, addrs, lens) < 0)
		return 2;
	(void)snprintf(pr->helo, sizeof(pr->helo), "%s",
		       o->helo != NULL ? o->helo : "postern-probe.invalid");
	if (probe_tls_init(pr, &why) < 0) {
		fprintf(stderr, "postern probe: %s\n", why);
		return 2;
	}
	(void)snprintf(pr->report.target, sizeof(pr->report.target), "%s",
		       o->host);
	pr->report.ports = calloc(o->n_ports, sizeof(*pr->report.ports));
	states = calloc(o->n_ports, sizeof(*states));
	if (pr->report.ports == NULL || states == NULL)
		abort();
	pr->report.n_ports = o->n_ports;
	for (size_t i = 0; i < o->n_ports; i++) {
		struct probe_port_state *ps = &states[i];

		ps->pr = pr;
		ps->out = &pr->report.ports[i];
		ps->out->port = ps->port = o->ports[i];
		ps->hint = o->hints[i];
		ps->addr = (const struct sockaddr *)&addrs[i];
		ps->addr_len = lens[i];
		if (o->port_hosts[i] != NULL &&
		    strcmp(o->port_hosts[i], o->host) != 0)
			(void)snprintf(ps->out->host, sizeof(ps->out->host),
				       "%s", o->port_hosts[i]);
		probe_port_run(ps);
	}
	probe_intrusive_checks(pr, states, o->n_ports);
	for (size_t i = 0; i < o->n_ports; i++) {
		probe_set_rest(states[i].out, PROBE_SKIP, "not reached");
		probe_tls_forget_peer(&states[i]);
	}
	free(states);
	pr->report.sent = probe_sent_note(pr);
	if (o->json)
		probe_report_json(&pr->report, stdout);
	else
		probe_report_text(&pr->report, o->verbose, stdout);
	fflush(stdout);
	return probe_exit_status(&pr->report);
}

int
probe_main(int argc, char **argv)
{
	char hosts[PROBE_PORTS_MAX][64];
	struct probe_options o;
	struct config *cfg = NULL;
	const char *config = NULL;
	struct probe pr;
	int rc;

	(void)signal(SIGPIPE, SIG_IGN);
	rc = probe_options_parse(argc, argv, &o, &config);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (o.self && probe_self(&o, config, &cfg, hosts) < 0) {
		config_free(&cfg);
		return 2;
	}
	memset(&pr, 0, sizeof(pr));
	pr.o = &o;
	rc = probe_run(&pr);
	probe_tls_deinit(&pr);
	probe_report_free(&pr.report);
	config_free(&cfg);
	return rc;
}
