/*
 * mx.c - choosing the hosts to try from MX records. See mx.h.
 */
#include "outbound/mx.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Insertion sort by preference: n <= DNS_WIRE_RR_MAX, and stable. */
static void
mx_sort(const struct dns_mx **v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		const struct dns_mx *x = v[i];
		size_t j = i;

		for (; j > 0 && v[j - 1]->pref > x->pref; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* Fisher-Yates within each run of equal preference. */
static void
mx_shuffle(const struct dns_mx **v, size_t n, uint32_t (*rnd)(void *),
	   void *ctx)
{
	for (size_t start = 0; start < n;) {
		size_t end = start + 1;

		while (end < n && v[end]->pref == v[start]->pref)
			end++;
		for (size_t i = end - 1; i > start; i--) {
			size_t j = start + rnd(ctx) % (i - start + 1);
			const struct dns_mx *t = v[i];

			v[i] = v[j];
			v[j] = t;
		}
		start = end;
	}
}

enum mx_result
mx_select(const struct dns_mx *mx, size_t n, const char *self,
	  uint32_t (*rnd)(void *ctx), void *ctx, struct mx_host *out,
	  size_t *n_out)
{
	const struct dns_mx *v[DNS_WIRE_RR_MAX];
	size_t kept = 0, m = n < DNS_WIRE_RR_MAX ? n : DNS_WIRE_RR_MAX;

	*n_out = 0;
	for (size_t i = 0; i < m; i++) {
		if (mx[i].host[0] == '\0')
			return MX_NULL; /* RFC 7505 3: "." as exchange */
		v[i] = &mx[i];
	}
	mx_sort(v, m);
	mx_shuffle(v, m, rnd, ctx);
	/* RFC 5321 5.1: we and everything not better than us go. */
	for (size_t i = 0; i < m; i++) {
		if (self != NULL && strcasecmp(v[i]->host, self) == 0) {
			m = i;
			while (m > 0 && v[m - 1]->pref == v[i]->pref)
				m--;
			break;
		}
	}
	for (size_t i = 0; i < m && kept < MX_HOSTS_MAX; i++) {
		bool dup = false;

		for (size_t k = 0; k < kept; k++)
			dup |= strcmp(out[k].name, v[i]->host) == 0;
		if (dup)
			continue;
		memcpy(out[kept].name, v[i]->host, strlen(v[i]->host) + 1);
		out[kept].pref = v[i]->pref;
		kept++;
	}
	*n_out = kept;
	return kept == 0 && n > 0 ? MX_LOOP : MX_OK;
}
