/*
 * dns_wire.h - reading DNS answers in wire format (RFC 1035 4.1), no I/O.
 *
 * libunbound's event API hands over the answer packet as it came; this
 * reads its answer section. The packet is hostile input: every offset is
 * checked, compression pointers must point backwards (no loops), names
 * are at most 255 octets, and a record that does not parse is an error
 * for the whole packet.
 */
#ifndef POSTERN_DNS_WIRE_H
#define POSTERN_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 255    /* text form, without the final dot */
#define DNS_WIRE_RR_MAX 64  /* records of one kind kept from a packet */

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_TXT 16
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_TLSA 52
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3

struct dns_mx {
	uint16_t pref;
	char host[DNS_NAME_MAX + 1]; /* lower case, no final dot; "" for
					the root (null MX, RFC 7505) */
};

/* An address record: 4 (A) or 16 (AAAA) octets. */
struct dns_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

/*
 * The MX records in the answer section (any owner: a CNAME chain's target
 * is answered under its own name). At most `max` are kept, the rest are
 * counted in *n_r too but dropped. Returns 0, or -1 (malformed packet).
 */
int dns_wire_mx(const uint8_t *pkt, size_t len, struct dns_mx *mx, size_t max,
		size_t *n_r);

/* The A (family AF_INET) or AAAA records in the answer section. */
int dns_wire_addrs(const uint8_t *pkt, size_t len, int family,
		   struct dns_addr *addrs, size_t max, size_t *n_r);

/* A TLSA record (RFC 6698 2.1). */
#define DNS_TLSA_DATA_MAX 1024 /* a full certificate may not fit: such a
				  record is dropped (RFC 7672 favours
				  hashes) */
struct dns_tlsa {
	uint8_t usage, selector, mtype;
	size_t len;
	uint8_t data[DNS_TLSA_DATA_MAX];
};

/* The TLSA records in the answer section; records whose data is over
   DNS_TLSA_DATA_MAX octets are skipped (not counted). */
int dns_wire_tlsa(const uint8_t *pkt, size_t len, struct dns_tlsa *t,
		  size_t max, size_t *n_r);

/* A TXT record (RFC 1035 3.3.14): its character-strings joined, as RFC
   8461 3.1 reads them; longer records are kept cut, marked `truncated`. */
#define DNS_TXT_MAX 512
struct dns_txt {
	size_t len;
	bool truncated;
	char data[DNS_TXT_MAX];
};

/* The TXT records in the answer section (at most `max`, the rest
   dropped). */
int dns_wire_txt(const uint8_t *pkt, size_t len, struct dns_txt *t,
		 size_t max, size_t *n_r);

/* The header's RCODE, or -1 when the packet is shorter than a header. */
int dns_wire_rcode(const uint8_t *pkt, size_t len);

/*
 * Read the (possibly compressed) name at `off` into text form: labels
 * joined by '.', lower case, no final dot, "" for the root. A label
 * holding anything but [A-Za-z0-9_-] is refused (a host name cannot).
 * *next_r is the offset after the name where it first appears. 0 or -1.
 */
int dns_wire_name(const uint8_t *pkt, size_t len, size_t off, char *out,
		  size_t size, size_t *next_r);

#endif
