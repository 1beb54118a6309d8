/*
 * test_dns_wire.c - DNS answers in wire format (src/outbound/dns_wire.c)
 * and the choice of MX hosts (src/outbound/mx.c): packets built by hand,
 * with compression, loops, cuts at every offset; RFC 5321 5.1 ordering,
 * randomness among equals, null MX, our own host in the list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/socket.h>

#include "outbound/dns_wire.h"
#include "outbound/mx.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* A packet being built. */
struct pkt {
	uint8_t b[4096];
	size_t n;
};

static void
put(struct pkt *p, const void *s, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, s, n);
	p->n += n;
}

static void
put16(struct pkt *p, unsigned v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(p, b, 2);
}

/* A name in wire form from "a.b.c" (no compression). */
static void
put_name(struct pkt *p, const char *name)
{
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);
		uint8_t l = (uint8_t)n;

		put(p, &l, 1);
		put(p, name, n);
		name += n + (dot != NULL);
	}
	put(p, "", 1);
}

static void
header(struct pkt *p, unsigned rcode, unsigned qd, unsigned an)
{
	p->n = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);
	put16(p, qd);
	put16(p, an);
	put16(p, 0);
	put16(p, 0);
}

/* An MX answer for example.net: two records, the second's exchange
   compressed against the first. */
static void
mx_packet(struct pkt *p)
{
	size_t rd_len_at;

	header(p, 0, 1, 3);
	put_name(p, "example.net"); /* offset 12 */
	put16(p, DNS_TYPE_MX);
	put16(p, DNS_CLASS_IN);
	/* 1: MX 10 mx1.example.net, owner compressed to 12 */
	put16(p, 0xc00c);
	put16(p, DNS_TYPE_MX);
	put16(p, DNS_CLASS_IN);
	put16(p, 0);
	put16(p, 300);
	put16(p, 2 + 4 + 2); /* pref, "\3mx1", pointer */
	put16(p, 10);
	put(p, "\3mx1", 4);
	put16(p, 0xc00c);
	/* 2: MX 20 MX2.Example.NET, written in full, upper case */
	put16(p, 0xc00c);
	put16(p, DNS_TYPE_MX);
	put16(p, DNS_CLASS_IN);
	put16(p, 0);
	put16(p, 300);
	rd_len_at = p->n;
	put16(p, 0);
	put16(p, 20);
	put_name(p, "MX2.Example.NET");
	p->b[rd_len_at + 1] = (uint8_t)(p->n - rd_len_at - 2);
	/* 3: an A record in the answer: ignored for MX */
	put16(p, 0xc00c);
	put16(p, DNS_TYPE_A);
	put16(p, DNS_CLASS_IN);
	put16(p, 0);
	put16(p, 300);
	put16(p, 4);
	put(p, "\x7f\0\0\x02", 4);
}

static void
test_mx_answer(void **state)
{
	struct pkt p;
	struct dns_mx mx[4];
	struct dns_addr a[4];
	size_t n;

	mx_packet(&p);
	assert_int_equal(dns_wire_rcode(p.b, p.n), 0);
	assert_int_equal(dns_wire_mx(p.b, p.n, mx, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(mx[0].pref, 10);
	assert_string_equal(mx[0].host, "mx1.example.net");
	assert_int_equal(mx[1].pref, 20);
	assert_string_equal(mx[1].host, "mx2.example.net");
	/* Only one kept, both counted. */
	assert_int_equal(dns_wire_mx(p.b, p.n, mx, 1, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(dns_wire_addrs(p.b, p.n, AF_INET, a, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(a[0].addr, "\x7f\0\0\x02", 4);
	assert_int_equal(dns_wire_addrs(p.b, p.n, AF_INET6, a, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dns_wire_addrs(p.b, p.n, 99, a, 4, &n), -1);
}

/* Cut anywhere: never a crash or a read past the end (ASan); a cut
   packet is refused or yields fewer records, never more. */
static void
test_mx_every_cut(void **state)
{
	struct pkt p;
	struct dns_mx mx[4];
	size_t n;

	mx_packet(&p);
	for (size_t k = 0; k < p.n; k++) {
		uint8_t *copy = malloc(k + 1);

		assert_non_null(copy);
		memcpy(copy, p.b, k);
		if (dns_wire_mx(copy, k, mx, 4, &n) == 0)
			assert_true(n < 2 || k == p.n);
		free(copy);
	}
}

static void
test_null_mx_and_rcode(void **state)
{
	struct pkt p;
	struct dns_mx mx[2];
	size_t n;

	header(&p, DNS_RCODE_NXDOMAIN, 0, 1);
	put_name(&p, "example.net");
	put16(&p, DNS_TYPE_MX);
	put16(&p, DNS_CLASS_IN);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 3);
	put16(&p, 0);
	put(&p, "", 1); /* "." */
	assert_int_equal(dns_wire_rcode(p.b, p.n), DNS_RCODE_NXDOMAIN);
	assert_int_equal(dns_wire_mx(p.b, p.n, mx, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(mx[0].host, "");
	assert_int_equal(dns_wire_rcode(p.b, 11), -1);
}

/* Pointers that loop, point forwards or past the end; labels with
   characters no host name has; names over 255 octets. */
static void
test_bad_names(void **state)
{
	char out[DNS_NAME_MAX + 1];
	size_t next;
	uint8_t self_loop[] = {0, 0, 0xc0, 0x02};
	uint8_t forward[] = {0xc0, 0x02, 1, 'a', 0};
	uint8_t past[] = {3, 'a', 'b'};
	uint8_t bad_char[] = {3, 'a', ' ', 'b', 0};
	uint8_t ext_label[] = {0x41, 0};
	uint8_t ok[] = {1, 'A', 0xc0, 0x05, 0xff, 1, 'b', 0};
	uint8_t long_name[300];
	size_t n = 0;

	assert_int_equal(dns_wire_name(self_loop, sizeof(self_loop), 2, out,
				       sizeof(out), &next),
			 -1);
	assert_int_equal(dns_wire_name(forward, sizeof(forward), 0, out,
				       sizeof(out), &next),
			 -1);
	assert_int_equal(
	    dns_wire_name(past, sizeof(past), 0, out, sizeof(out), &next), -1);
	assert_int_equal(dns_wire_name(bad_char, sizeof(bad_char), 0, out,
				       sizeof(out), &next),
			 -1);
	assert_int_equal(dns_wire_name(ext_label, sizeof(ext_label), 0, out,
				       sizeof(out), &next),
			 -1);
	/* A pointer backwards is fine, even into the middle. */
	ok[3] = 0x05;
	assert_int_equal(dns_wire_name(ok, sizeof(ok), 0, out, sizeof(out),
				       &next),
			 -1); /* 0x05 is not before offset 2 */
	{
		uint8_t good[] = {1, 'b', 0, 1, 'A', 0xc0, 0x00};

		assert_int_equal(dns_wire_name(good, sizeof(good), 3, out,
					       sizeof(out), &next),
				 0);
		assert_string_equal(out, "a.b");
		assert_int_equal(next, 7);
	}
	/* 64 labels of 3: 255 octets of text is the limit. */
	while (n + 4 < sizeof(long_name) - 1) {
		long_name[n++] = 3;
		memcpy(long_name + n, "abc", 3);
		n += 3;
	}
	long_name[n++] = 0;
	assert_int_equal(dns_wire_name(long_name, n, 0, out, sizeof(out),
				       &next),
			 -1);
	assert_int_equal(dns_wire_name(long_name, n, 0, out, 10, &next), -1);
}

/* A record whose RDATA overruns the packet, or an MX whose exchange does
   not end at its RDATA's end, makes the packet malformed. */
static void
test_bad_records(void **state)
{
	struct pkt p;
	struct dns_mx mx[2];
	struct dns_addr a[2];
	size_t n;

	header(&p, 0, 0, 1);
	put_name(&p, "x");
	put16(&p, DNS_TYPE_MX);
	put16(&p, DNS_CLASS_IN);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 9); /* one octet too many */
	put16(&p, 5);
	put_name(&p, "mx.x");
	put(&p, "\0", 1);
	assert_int_equal(dns_wire_mx(p.b, p.n, mx, 2, &n), -1);
	header(&p, 0, 0, 1);
	put_name(&p, "x");
	put16(&p, DNS_TYPE_A);
	put16(&p, DNS_CLASS_IN);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 5); /* an A record of 5 octets */
	put(&p, "\1\2\3\4\5", 5);
	assert_int_equal(dns_wire_addrs(p.b, p.n, AF_INET, a, 2, &n), -1);
	p.n -= 1; /* RDATA past the end */
	assert_int_equal(dns_wire_addrs(p.b, p.n, AF_INET, a, 2, &n), -1);
}

/* RFC 6698 2.1: usage, selector, matching type, data; a record too big
   to keep is skipped, one under 4 octets is malformed. */
static void
test_tlsa(void **state)
{
	static struct dns_tlsa t[2];
	uint8_t big[DNS_TLSA_DATA_MAX + 1];
	struct pkt p;
	size_t n;

	memset(big, 0xab, sizeof(big));
	header(&p, 0, 0, 3);
	put_name(&p, "_25._tcp.mx.example.net");
	put16(&p, DNS_TYPE_TLSA);
	put16(&p, DNS_CLASS_IN);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 3 + 32);
	put(&p, "\3\1\1", 3);
	put(&p, big, 32);
	put16(&p, 0xc00c);
	put16(&p, DNS_TYPE_TLSA);
	put16(&p, DNS_CLASS_IN);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 3 + sizeof(big)); /* too big: skipped */
	put(&p, "\2\0\0", 3);
	put(&p, big, sizeof(big));
	put16(&p, 0xc00c);
	put16(&p, DNS_TYPE_TLSA);
	put16(&p, DNS_CLASS_IN);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 4);
	put(&p, "\2\0\1\xff", 4);
	assert_int_equal(dns_wire_tlsa(p.b, p.n, t, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(t[0].usage, 3);
	assert_int_equal(t[0].selector, 1);
	assert_int_equal(t[0].mtype, 1);
	assert_int_equal(t[0].len, 32);
	assert_int_equal(t[1].usage, 2);
	assert_int_equal(t[1].mtype, 1);
	assert_int_equal(t[1].len, 1);
	/* Malformed: RDATA under 4 octets. */
	header(&p, 0, 0, 1);
	put_name(&p, "x");
	put16(&p, DNS_TYPE_TLSA);
	put16(&p, DNS_CLASS_IN);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 3);
	put(&p, "\3\1\1", 3);
	assert_int_equal(dns_wire_tlsa(p.b, p.n, t, 2, &n), -1);
}

/* A TXT record's header, for RDATA of `rdlen` octets. */
static void
txt_rr(struct pkt *p, unsigned rdlen)
{
	put16(p, 0xc00c);
	put16(p, DNS_TYPE_TXT);
	put16(p, DNS_CLASS_IN);
	put16(p, 0);
	put16(p, 300);
	put16(p, rdlen);
}

static void
test_txt(void **state)
{
	static struct dns_txt t[3];
	uint8_t big[255];
	struct pkt p;
	size_t n;

	memset(big, 'x', sizeof(big));
	header(&p, 0, 1, 3);
	put_name(&p, "_mta-sts.example.net");
	put16(&p, DNS_TYPE_TXT);
	put16(&p, DNS_CLASS_IN);
	/* two character-strings, joined (RFC 8461 3.1) */
	txt_rr(&p, 1 + 8 + 1 + 5);
	put(&p, "\10v=STSv1;", 9);
	put(&p, "\5id=42", 6);
	/* three strings of 255: over DNS_TXT_MAX, kept cut */
	txt_rr(&p, 3 * 256);
	for (int i = 0; i < 3; i++) {
		put(&p, "\377", 1);
		put(&p, big, sizeof(big));
	}
	/* an empty one (a single empty string) */
	txt_rr(&p, 1);
	put(&p, "\0", 1);
	assert_int_equal(dns_wire_txt(p.b, p.n, t, 3, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(t[0].len, 13);
	assert_memory_equal(t[0].data, "v=STSv1;id=42", 13);
	assert_false(t[0].truncated);
	assert_int_equal(t[1].len, DNS_TXT_MAX);
	assert_true(t[1].truncated);
	assert_int_equal(t[2].len, 0);
	/* at most `max` */
	assert_int_equal(dns_wire_txt(p.b, p.n, t, 1, &n), 0);
	assert_int_equal(n, 1);
	/* a string longer than its record: malformed */
	header(&p, 0, 0, 1);
	put_name(&p, "x");
	put16(&p, DNS_TYPE_TXT);
	put16(&p, DNS_CLASS_IN);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 3);
	put(&p, "\5abc", 4);
	assert_int_equal(dns_wire_txt(p.b, p.n, t, 3, &n), -1);
}

/* --- mx_select ------------------------------------------------------- */

static uint32_t seq[64];
static size_t seq_i;

static uint32_t
fake_rnd(void *ctx)
{
	return seq[seq_i++ % N_ELEMENTS(seq)];
}

static void
set_mx(struct dns_mx *m, unsigned pref, const char *host)
{
	m->pref = (uint16_t)pref;
	snprintf(m->host, sizeof(m->host), "%s", host);
}

static void
test_select_order_and_limit(void **state)
{
	struct dns_mx mx[8];
	struct mx_host out[MX_HOSTS_MAX];
	size_t n;

	set_mx(&mx[0], 30, "c");
	set_mx(&mx[1], 10, "a");
	set_mx(&mx[2], 20, "b");
	set_mx(&mx[3], 40, "d");
	set_mx(&mx[4], 50, "e");
	set_mx(&mx[5], 60, "f");
	set_mx(&mx[6], 10, "a"); /* the same host again */
	set_mx(&mx[7], 5, "z");
	memset(seq, 0, sizeof(seq));
	assert_int_equal(mx_select(mx, 8, NULL, fake_rnd, NULL, out, &n), MX_OK);
	assert_int_equal(n, MX_HOSTS_MAX);
	assert_string_equal(out[0].name, "z");
	assert_string_equal(out[1].name, "a");
	assert_string_equal(out[2].name, "b");
	assert_string_equal(out[3].name, "c");
	assert_string_equal(out[4].name, "d");
	assert_int_equal(out[1].pref, 10);
	assert_int_equal(mx_select(mx, 0, NULL, fake_rnd, NULL, out, &n), MX_OK);
	assert_int_equal(n, 0);
}

/* Equal preferences come out in every order, depending on the random
   values; better preferences always before worse. */
static void
test_select_random_among_equals(void **state)
{
	struct dns_mx mx[4];
	struct mx_host out[MX_HOSTS_MAX];
	size_t n;
	bool seen[3] = {false, false, false};

	set_mx(&mx[0], 10, "a");
	set_mx(&mx[1], 10, "b");
	set_mx(&mx[2], 10, "c");
	set_mx(&mx[3], 20, "d");
	for (uint32_t r = 0; r < 9; r++) {
		for (size_t i = 0; i < N_ELEMENTS(seq); i++)
			seq[i] = r + (uint32_t)i * 7;
		seq_i = 0;
		assert_int_equal(mx_select(mx, 4, NULL, fake_rnd, NULL, out,
					   &n),
				 MX_OK);
		assert_int_equal(n, 4);
		assert_string_equal(out[3].name, "d");
		seen[out[0].name[0] - 'a'] = true;
	}
	assert_true(seen[0] && seen[1] && seen[2]);
}

static void
test_select_null_and_loop(void **state)
{
	struct dns_mx mx[3];
	struct mx_host out[MX_HOSTS_MAX];
	size_t n;

	set_mx(&mx[0], 0, "");
	assert_int_equal(mx_select(mx, 1, NULL, fake_rnd, NULL, out, &n),
			 MX_NULL);
	/* RFC 5321 5.1: ourselves and everything not better go. */
	set_mx(&mx[0], 10, "backup.example.net");
	set_mx(&mx[1], 20, "OUT.example.org");
	set_mx(&mx[2], 20, "peer.example.net");
	assert_int_equal(mx_select(mx, 3, "out.example.org", fake_rnd, NULL,
				   out, &n),
			 MX_OK);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].name, "backup.example.net");
	set_mx(&mx[0], 30, "backup.example.net");
	assert_int_equal(mx_select(mx, 3, "out.example.org", fake_rnd, NULL,
				   out, &n),
			 MX_LOOP);
	assert_int_equal(n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_answer),
		cmocka_unit_test(test_mx_every_cut),
		cmocka_unit_test(test_null_mx_and_rcode),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_tlsa),
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_select_order_and_limit),
		cmocka_unit_test(test_select_random_among_equals),
		cmocka_unit_test(test_select_null_and_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
