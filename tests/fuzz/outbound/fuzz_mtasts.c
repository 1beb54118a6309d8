/*
 * fuzz_mtasts.c - libFuzzer harness for MTA-STS without I/O
 * (src/outbound/mtasts.c): the policy file, the TXT records and the
 * cache file, as a hostile policy server, DNS zone or disk could give.
 *
 * Input: the policy body (also read as TXT records split at NULs, and as
 * a cache file). Oracles, besides the sanitizers:
 *  - an accepted policy has a known mode, max_age <= 31557600, at most
 *    MTASTS_MX_MAX patterns, each lower case [a-z0-9.-] with an optional
 *    leading "*.", and mx patterns unless mode is none;
 *  - every pattern matches a host made from it (its "*" a label), and
 *    matching is case-insensitive;
 *  - a policy written as a cache file reads back the same (id, times,
 *    the policy text where body_off says);
 *  - an accepted TXT id is 1 to 32 letters and digits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/mtasts.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_policy(const struct mtasts_policy *p)
{
	CHECK(p->mode <= MTASTS_MODE_ENFORCE);
	CHECK(p->max_age <= MTASTS_MAX_AGE_MAX);
	CHECK(p->n_mx <= MTASTS_MX_MAX);
	CHECK(p->mode == MTASTS_MODE_NONE || p->n_mx > 0);
	for (size_t i = 0; i < p->n_mx; i++) {
		const char *m = p->mx[i];
		char host[DNS_NAME_MAX + 8];

		if (m[0] == '*') {
			CHECK(m[1] == '.');
			m += 2;
		}
		CHECK(*m != '\0' && *m != '.');
		for (const char *c = m; *c != '\0'; c++)
			CHECK((*c >= 'a' && *c <= 'z') ||
			      (*c >= '0' && *c <= '9') || *c == '-' ||
			      *c == '.');
		snprintf(host, sizeof(host), "%s%s",
			 p->mx[i][0] == '*' ? "x." : "", m);
		CHECK(mtasts_mx_match(p, host));
		for (char *c = host; *c != '\0'; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 32);
		CHECK(mtasts_mx_match(p, host));
	}
}

static void
fuzz_txt(const char *data, size_t size)
{
	const char *recs[8];
	size_t lens[8], n = 0, start = 0;
	char id[MTASTS_ID_MAX + 1];
	const char *err;

	for (size_t i = 0; i <= size && n < 8; i++) {
		if (i == size || data[i] == '\0') {
			recs[n] = data + start;
			lens[n++] = i - start;
			start = i + 1;
		}
	}
	if (mtasts_txt_parse(recs, lens, n, id, &err) == 0) {
		size_t l = strlen(id);

		CHECK(l >= 1 && l <= MTASTS_ID_MAX);
		for (size_t i = 0; i < l; i++)
			CHECK((id[i] >= 'a' && id[i] <= 'z') ||
			      (id[i] >= 'A' && id[i] <= 'Z') ||
			      (id[i] >= '0' && id[i] <= '9'));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	static struct mtasts_policy p, q;
	static char cache[MTASTS_CACHE_MAX];
	struct mtasts_cached c;
	const char *err = NULL;
	long n;

	fuzz_txt(body, size);
	if (mtasts_cache_parse(body, size, &c, &err) == 0) {
		check_policy(&c.policy);
		CHECK(c.body_off <= size);
		(void)mtasts_refresh_check(&c, 1800000000);
	}
	if (mtasts_policy_parse(body, size, &p, &err) < 0) {
		CHECK(err != NULL);
		return 0;
	}
	check_policy(&p);
	n = mtasts_cache_format(cache, sizeof(cache), "abc", 42, 7, body, size);
	CHECK(n > 0);
	CHECK(mtasts_cache_parse(cache, (size_t)n, &c, &err) == 0);
	CHECK(strcmp(c.id, "abc") == 0 && c.expires == 42 && c.mailed == 7);
	CHECK((size_t)n - c.body_off == size &&
	      memcmp(cache + c.body_off, body, size) == 0);
	q = c.policy;
	CHECK(memcmp(&p, &q, sizeof(p)) == 0);
	return 0;
}
