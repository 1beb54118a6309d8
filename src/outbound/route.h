/*
 * route.h - from the configuration to the resolver's settings and to a
 * destination for a recipient domain: a `transport`, the `relay-host`, or
 * the domain's MX (docs/outbound.md).
 */
#ifndef POSTERN_ROUTE_H
#define POSTERN_ROUTE_H

#include <stdbool.h>

#include "conf/config.h"
#include "outbound/dns.h"

/*
 * The resolver settings of `cfg`. A trust anchor file that cannot be read
 * counts as none (validation off): *ta_missing_r says so, for the log.
 * The pointers in *dp point into cfg.
 */
void route_dns_params(const struct config *cfg, struct dns_params *dp,
		      bool *ta_missing_r);

#endif
