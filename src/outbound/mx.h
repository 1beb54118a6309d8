/*
 * mx.h - choosing the hosts to try from a domain's MX records (RFC 5321
 * 5.1, RFC 7505), no I/O.
 */
#ifndef POSTERN_MX_H
#define POSTERN_MX_H

#include <stddef.h>
#include <stdint.h>

#include "outbound/dns_wire.h"

#define MX_HOSTS_MAX 5 /* hosts tried per domain and attempt */

struct mx_host {
	char name[DNS_NAME_MAX + 1];
	uint16_t pref;
};

enum mx_result {
	MX_OK = 0, /* hosts chosen */
	MX_NULL,   /* a null MX (RFC 7505 3): the domain takes no mail,
		      5.1.10 */
	MX_LOOP,   /* we are the best MX left (RFC 5321 5.1): 5.4.6 */
};

/*
 * Order `mx` by preference, the records of equal preference in random
 * order (RFC 5321 5.1: "randomize them to spread the load"), drop
 * repeated hosts, drop `self` (our host name, any case) and every record
 * of its preference or worse, and keep the first MX_HOSTS_MAX.
 * `rnd` returns a random 32-bit value (a test passes its own).
 */
enum mx_result mx_select(const struct dns_mx *mx, size_t n, const char *self,
			 uint32_t (*rnd)(void *ctx), void *ctx,
			 struct mx_host *out, size_t *n_out);

#endif
