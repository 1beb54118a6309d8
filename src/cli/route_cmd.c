/*
 * route_cmd.c - `postern route [-c FILE] DOMAIN`: where mail for DOMAIN
 * would go (docs/outbound.md), with the same resolver, trust anchor and
 * transports as the queue process. Exit status: 0 a route, 75 a
 * temporary failure (EX_TEMPFAIL), 69 the domain takes no mail
 * (EX_UNAVAILABLE), 2 usage or configuration.
 */
#include "cli/route_cmd.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "outbound/dns.h"
#include "outbound/route.h"

struct route_cmd {
	int rc;
	bool done;
};

static void
route_cmd_print(void *arg, const struct dns_route *rt)
{
	struct route_cmd *rc = arg;

	rc->done = true;
	if (rt->status != DNS_OK) {
		printf("error %s %s\n", rt->dsn, rt->text);
		rc->rc = rt->status == DNS_TEMP ? 75 : 69;
		return;
	}
	printf("mx %s%s\n", rt->is_implicit ? "implicit " : "",
	       rt->mx_sec == DNS_SECURE ? "secure" : "insecure");
	for (size_t i = 0; i < rt->n_hosts; i++) {
		const struct dns_host *h = &rt->hosts[i];

		printf("host %s pref %u %s", h->name, h->pref,
		       h->addr_sec == DNS_SECURE ? "secure" : "insecure");
		for (size_t k = 0; k < h->n_addrs; k++) {
			char text[INET6_ADDRSTRLEN];

			inet_ntop(h->addrs[k].family, h->addrs[k].addr, text,
				  sizeof(text));
			printf(" %s", text);
		}
		printf("\n");
	}
	rc->rc = 0;
}

int
route_main(int argc, char **argv)
{
	const char *file = NULL;
	struct config *cfg = NULL;
	struct event_base *base;
	struct dns *dns = NULL;
	struct dns_req *req = NULL;
	struct route_cmd rc = {2, false};
	struct dns_params dp;
	const char *err = NULL;
	int opt;

	optind = 1;
	while ((opt = getopt(argc, argv, "+c:")) != -1) {
		if (opt != 'c')
			goto usage;
		file = optarg;
	}
	if (optind + 1 != argc)
		goto usage;
	if ((file != NULL ? config_load(file, &cfg, stderr)
			  : config_load_builtin(&cfg, stderr)) < 0)
		return 2;
	base = event_base_new();
	{
		bool ta_missing;

		route_dns_params(cfg, &dp, &ta_missing);
		if (ta_missing)
			fprintf(stderr, "postern: %s cannot be read: DNSSEC "
					"validation is off\n",
				cfg->dns_trust_anchor);
	}
	if (base == NULL || dns_new(base, &dp, &dns, &err) < 0) {
		fprintf(stderr, "postern: resolver: %s\n",
			err != NULL ? err : "no event base");
		rc.rc = 2;
	} else if (dns_route(dns, argv[optind], false, route_cmd_print, &rc,
			     &req) < 0) {
		fprintf(stderr, "postern: bad domain\n");
		rc.rc = 2;
	} else {
		while (!rc.done && event_base_loop(base, EVLOOP_ONCE) == 0)
			;
	}
	dns_free(&dns);
	if (base != NULL)
		event_base_free(base);
	config_free(&cfg);
	return rc.rc;
usage:
	fprintf(stderr, "usage: postern route [-c FILE] DOMAIN\n");
	return 2;
}
