/*
 * fuzz_dns.c - libFuzzer harness for DNS answers in wire format
 * (src/outbound/dns_wire.c) and the MX choice (src/outbound/mx.c): what a
 * hostile or broken resolver path could hand us.
 *
 * Input: a DNS message (also read for TLSA and TXT records). Oracles,
 * besides the sanitizers:
 *  - every name read is at most 255 octets of [a-z0-9_-.], no empty
 *    label, lower case;
 *  - mx_select returns at most MX_HOSTS_MAX distinct hosts, ordered by
 *    preference, none of them our own name or the root;
 *  - every name at every offset reads the same twice (no state).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "outbound/dns_wire.h"
#include "outbound/mx.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t
rnd(void *ctx)
{
	uint32_t *s = ctx;

	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void
check_name(const char *n)
{
	size_t len = strlen(n);

	CHECK(len <= DNS_NAME_MAX);
	if (len == 0)
		return;
	CHECK(n[0] != '.' && n[len - 1] != '.' && strstr(n, "..") == NULL);
	for (size_t i = 0; i < len; i++)
		CHECK((n[i] >= 'a' && n[i] <= 'z') ||
		      (n[i] >= '0' && n[i] <= '9') || n[i] == '-' ||
		      n[i] == '_' || n[i] == '.');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_mx mx[DNS_WIRE_RR_MAX];
	struct mx_host hosts[MX_HOSTS_MAX];
	struct dns_addr addrs[8];
	size_t n, nh;
	uint32_t seed = 1;
	char a[DNS_NAME_MAX + 1], b[DNS_NAME_MAX + 1];

	(void)dns_wire_rcode(data, size);
	if (dns_wire_mx(data, size, mx, DNS_WIRE_RR_MAX, &n) == 0) {
		size_t kept = n < DNS_WIRE_RR_MAX ? n : DNS_WIRE_RR_MAX;
		enum mx_result r;

		for (size_t i = 0; i < kept; i++)
			check_name(mx[i].host);
		r = mx_select(mx, kept, "self.example", rnd, &seed, hosts,
			      &nh);
		CHECK(nh <= MX_HOSTS_MAX);
		for (size_t i = 0; i < nh; i++) {
			CHECK(hosts[i].name[0] != '\0');
			CHECK(strcmp(hosts[i].name, "self.example") != 0);
			if (i > 0)
				CHECK(hosts[i - 1].pref <= hosts[i].pref);
			for (size_t k = 0; k < i; k++)
				CHECK(strcmp(hosts[k].name, hosts[i].name) != 0);
		}
		if (r != MX_OK)
			CHECK(nh == 0);
	}
	(void)dns_wire_addrs(data, size, AF_INET, addrs, 8, &n);
	(void)dns_wire_addrs(data, size, AF_INET6, addrs, 8, &n);
	{
		static struct dns_tlsa t[4];

		if (dns_wire_tlsa(data, size, t, 4, &n) == 0)
			for (size_t i = 0; i < n && i < 4; i++)
				CHECK(t[i].len <= DNS_TLSA_DATA_MAX);
	}
	{
		static struct dns_txt x[4];

		if (dns_wire_txt(data, size, x, 4, &n) == 0) {
			CHECK(n <= 4);
			for (size_t i = 0; i < n; i++)
				CHECK(x[i].len <= DNS_TXT_MAX &&
				      (x[i].len == DNS_TXT_MAX ||
				       !x[i].truncated));
		}
	}
	for (size_t off = 0; off < size && off < 512; off++) {
		size_t n1, n2;
		int r1 = dns_wire_name(data, size, off, a, sizeof(a), &n1);
		int r2 = dns_wire_name(data, size, off, b, sizeof(b), &n2);

		CHECK(r1 == r2);
		if (r1 == 0) {
			check_name(a);
			CHECK(strcmp(a, b) == 0 && n1 == n2 && n1 <= size);
		}
	}
	return 0;
}
