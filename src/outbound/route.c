/*
 * route.c - see route.h.
 */
#include "outbound/route.h"

#include <unistd.h>

void
route_dns_params(const struct config *cfg, struct dns_params *dp,
		 bool *ta_missing_r)
{
	dp->resolvers = (const char *const *)cfg->dns_resolvers;
	dp->n_resolvers = cfg->n_dns_resolvers;
	dp->trust_anchor = cfg->dns_trust_anchor;
	*ta_missing_r = false;
	if (dp->trust_anchor != NULL && access(dp->trust_anchor, R_OK) < 0) {
		dp->trust_anchor = NULL;
		*ta_missing_r = true;
	}
	dp->self = cfg->hostname;
}
