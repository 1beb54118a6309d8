/*
 * dns_wire.c - reading DNS answers in wire format. See dns_wire.h.
 */
#include "outbound/dns_wire.h"

#include <string.h>
#include <sys/socket.h>

#define DNS_HEADER 12
#define DNS_JUMPS_MAX 64

static uint16_t
dns_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int
dns_wire_rcode(const uint8_t *pkt, size_t len)
{
	return len < DNS_HEADER ? -1 : pkt[3] & 0x0f;
}

static bool
dns_label_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* RFC 1035 4.1.4: a pointer must lead backwards, so no loop is possible;
   the jump count bounds the work anyway. */
int
dns_wire_name(const uint8_t *pkt, size_t len, size_t off, char *out,
	      size_t size, size_t *next_r)
{
	size_t n = 0, next = 0, jumps = 0;
	bool jumped = false;

	if (size < DNS_NAME_MAX + 1)
		return -1;
	for (;;) {
		uint8_t l;

		if (off >= len)
			return -1;
		l = pkt[off];
		if ((l & 0xc0) == 0xc0) {
			size_t to;

			if (off + 1 >= len || ++jumps > DNS_JUMPS_MAX)
				return -1;
			to = (size_t)(l & 0x3f) << 8 | pkt[off + 1];
			if (to >= off)
				return -1;
			if (!jumped)
				next = off + 2;
			jumped = true;
			off = to;
			continue;
		}
		if ((l & 0xc0) != 0)
			return -1; /* RFC 6891 extended labels: not here */
		if (l == 0)
			break;
		if (off + 1 + l > len || n + (n > 0) + l > DNS_NAME_MAX)
			return -1;
		if (n > 0)
			out[n++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = pkt[off + 1 + i];

			if (!dns_label_char(c))
				return -1;
			out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		off += 1 + l;
	}
	out[n] = '\0';
	*next_r = jumped ? next : off + 1;
	return 0;
}

/* Skip a name (compressed or not) without reading it into text. */
static int
dns_skip_name(const uint8_t *pkt, size_t len, size_t off, size_t *next_r)
{
	char name[DNS_NAME_MAX + 1];

	/* A name we cannot read as text (odd octets in a label) may still
	   be a valid question or owner: walk it octet-blind then. */
	if (dns_wire_name(pkt, len, off, name, sizeof(name), next_r) == 0)
		return 0;
	for (size_t guard = 0; guard < 128; guard++) {
		uint8_t l;

		if (off >= len)
			return -1;
		l = pkt[off];
		if ((l & 0xc0) == 0xc0) {
			if (off + 1 >= len)
				return -1;
			*next_r = off + 2;
			return 0;
		}
		if ((l & 0xc0) != 0 || off + 1 + l > len)
			return -1;
		off += 1 + l;
		if (l == 0) {
			*next_r = off;
			return 0;
		}
	}
	return -1;
}

struct dns_rr {
	uint16_t type, class;
	size_t rdata, rdlen; /* offset and length of the RDATA */
};

/* Where the records of one kind go: `out` is an array of `max` (of the
   record's struct), `n` counts what the reader took. */
struct dns_rrs {
	void *out;
	size_t max, n;
	int family; /* address records: AF_INET or AF_INET6 */
};

typedef int dns_rr_fn(const uint8_t *pkt, size_t len, const struct dns_rr *rr,
		      struct dns_rrs *c);

/*
 * Walk the answer section, calling `fn` for each record of class IN and
 * type `type` (any owner: a CNAME chain's target is answered under its
 * own name); the question section is skipped. Sets *n_r to what `fn`
 * counted. Returns 0, or -1 at the first malformed record (or when `fn`
 * says so).
 */
static int
dns_walk(const uint8_t *pkt, size_t len, uint16_t type, dns_rr_fn *fn,
	 struct dns_rrs *c, size_t *n_r)
{
	size_t off = DNS_HEADER;
	unsigned qd, an;

	*n_r = 0;
	if (len < DNS_HEADER)
		return -1;
	qd = dns_u16(pkt + 4);
	an = dns_u16(pkt + 6);
	for (unsigned i = 0; i < qd; i++) {
		if (dns_skip_name(pkt, len, off, &off) < 0 || off + 4 > len)
			return -1;
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		struct dns_rr rr;

		if (dns_skip_name(pkt, len, off, &off) < 0 || off + 10 > len)
			return -1;
		rr.type = dns_u16(pkt + off);
		rr.class = dns_u16(pkt + off + 2);
		rr.rdlen = dns_u16(pkt + off + 8);
		rr.rdata = off + 10;
		if (rr.rdata + rr.rdlen > len)
			return -1;
		if (rr.type == type && rr.class == DNS_CLASS_IN &&
		    fn(pkt, len, &rr, c) < 0)
			return -1;
		off = rr.rdata + rr.rdlen;
	}
	*n_r = c->n;
	return 0;
}

/* RFC 1035 3.3.9: PREFERENCE, EXCHANGE. */
static int
dns_mx_rr(const uint8_t *pkt, size_t len, const struct dns_rr *rr,
	  struct dns_rrs *c)
{
	struct dns_mx *mx = c->out;
	char host[DNS_NAME_MAX + 1];
	size_t end;

	if (rr->rdlen < 3 ||
	    dns_wire_name(pkt, len, rr->rdata + 2, host, sizeof(host), &end) <
		0 ||
	    end != rr->rdata + rr->rdlen)
		return -1;
	if (c->n < c->max) {
		mx[c->n].pref = dns_u16(pkt + rr->rdata);
		memcpy(mx[c->n].host, host, strlen(host) + 1);
	}
	c->n++;
	return 0;
}

int
dns_wire_mx(const uint8_t *pkt, size_t len, struct dns_mx *mx, size_t max,
	    size_t *n_r)
{
	struct dns_rrs c = {mx, max, 0, 0};

	return dns_walk(pkt, len, DNS_TYPE_MX, dns_mx_rr, &c, n_r);
}

static int
dns_addr_rr(const uint8_t *pkt, size_t len, const struct dns_rr *rr,
	    struct dns_rrs *c)
{
	struct dns_addr *a = c->out;
	size_t size = c->family == AF_INET ? 4 : 16;

	(void)len;
	if (rr->rdlen != size)
		return -1;
	if (c->n < c->max) {
		a[c->n].family = c->family;
		memset(a[c->n].addr, 0, sizeof(a[c->n].addr));
		memcpy(a[c->n].addr, pkt + rr->rdata, size);
	}
	c->n++;
	return 0;
}

int
dns_wire_addrs(const uint8_t *pkt, size_t len, int family,
	       struct dns_addr *addrs, size_t max, size_t *n_r)
{
	struct dns_rrs c = {addrs, max, 0, family};

	*n_r = 0;
	if (family != AF_INET && family != AF_INET6)
		return -1;
	return dns_walk(pkt, len,
			family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA,
			dns_addr_rr, &c, n_r);
}

/* RFC 6698 2.1: usage, selector, matching type, association data. */
static int
dns_tlsa_rr(const uint8_t *pkt, size_t len, const struct dns_rr *rr,
	    struct dns_rrs *c)
{
	struct dns_tlsa *t;

	(void)len;
	if (rr->rdlen < 4)
		return -1;
	if (rr->rdlen - 3 > DNS_TLSA_DATA_MAX || c->n >= c->max)
		return 0;
	t = (struct dns_tlsa *)c->out + c->n++;
	t->usage = pkt[rr->rdata];
	t->selector = pkt[rr->rdata + 1];
	t->mtype = pkt[rr->rdata + 2];
	t->len = rr->rdlen - 3;
	memcpy(t->data, pkt + rr->rdata + 3, t->len);
	return 0;
}

int
dns_wire_tlsa(const uint8_t *pkt, size_t len, struct dns_tlsa *t, size_t max,
	      size_t *n_r)
{
	struct dns_rrs c = {t, max, 0, 0};

	return dns_walk(pkt, len, DNS_TYPE_TLSA, dns_tlsa_rr, &c, n_r);
}

/* RFC 1035 3.3.14: one or more <character-string>s (a length octet, then
   that many octets), joined. */
static int
dns_txt_rr(const uint8_t *pkt, size_t len, const struct dns_rr *rr,
	   struct dns_rrs *c)
{
	struct dns_txt *t;
	size_t off = rr->rdata, end = rr->rdata + rr->rdlen;

	(void)len;
	if (c->n >= c->max)
		return 0;
	t = (struct dns_txt *)c->out + c->n;
	t->len = 0;
	t->truncated = false;
	while (off < end) {
		size_t l = pkt[off++], k;

		if (off + l > end)
			return -1;
		k = l <= DNS_TXT_MAX - t->len ? l : DNS_TXT_MAX - t->len;
		memcpy(t->data + t->len, pkt + off, k);
		t->len += k;
		t->truncated |= k < l;
		off += l;
	}
	c->n++;
	return 0;
}

int
dns_wire_txt(const uint8_t *pkt, size_t len, struct dns_txt *t, size_t max,
	     size_t *n_r)
{
	struct dns_rrs c = {t, max, 0, 0};

	return dns_walk(pkt, len, DNS_TYPE_TXT, dns_txt_rr, &c, n_r);
}
