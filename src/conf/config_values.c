/*
 * config_values.c - the syntax of single configuration values (see
 * config_values.h). Each function checks one value and says what is wrong
 * with it; config.c adds the file, the line and the directive.
 */
#include "conf/config_values.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_VALUES_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define CONFIG_VALUES_DOMAIN_MAX 253 /* RFC 1035 2.3.4, as text */
#define CONFIG_VALUES_LABEL_MAX 63   /* RFC 1035 2.3.4 */

static bool
config_values_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/*
 * Check a domain name: dot-separated labels of letters, digits and inner
 * hyphens, 1..63 octets each, 253 in all, no trailing dot (RFC 1035 2.3.1,
 * RFC 5321 4.1.2), and a last label that is not all digits (RFC 3696 2),
 * so an IP address is not taken for a name. Returns NULL or the reason.
 */
const char *
config_values_domain(const char *s)
{
	size_t len = strlen(s), label = 0;
	bool all_digits = true;

	if (len > CONFIG_VALUES_DOMAIN_MAX)
		return "longer than 253 octets";
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (label == 0)
				return "has an empty label";
			if (s[i - 1] == '-')
				return "has a label ending in '-'";
			if (c == '.') {
				label = 0;
				all_digits = true;
			}
			continue;
		}
		if (!config_values_is_alnum(c) && c != '-')
			return "has a character other than letters, digits, "
			       "'-' and '.'";
		if (label == 0 && c == '-')
			return "has a label starting with '-'";
		if (++label > CONFIG_VALUES_LABEL_MAX)
			return "has a label longer than 63 octets";
		if (c < '0' || c > '9')
			all_digits = false;
	}
	if (all_digits)
		return "ends in an all-numeric label";
	return NULL;
}

/*
 * Check a local part as a mailbox name: [A-Za-z0-9._+=-], 1..64 octets
 * (RFC 5321 4.5.3.1.1), a Dot-string without a leading or trailing dot or
 * ".." (RFC 5321 4.1.2). It becomes a path component (THREATS F-01).
 */
const char *
config_values_local(const char *s, size_t len)
{
	if (len == 0)
		return "is empty";
	if (len > CONFIG_VALUES_LOCAL_MAX)
		return "is longer than 64 octets";
	if (s[0] == '.')
		return "starts with '.'";
	if (s[len - 1] == '.')
		return "ends with '.'";
	for (size_t i = 0; i < len; i++) {
		if (!config_values_is_alnum(s[i]) &&
		    strchr("._+=-", s[i]) == NULL)
			return "has a character outside [A-Za-z0-9._+=-]";
		if (s[i] == '.' && i + 1 < len && s[i + 1] == '.')
			return "contains \"..\"";
	}
	return NULL;
}

int
config_values_word_index(const char *const *words, const char *word)
{
	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(words[i], word) == 0)
			return i;
	return -1;
}

const char *
config_values_join_words(const char *const *words, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; words[i] != NULL; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
				 words[i]);

		if (n < 0 || (size_t)n >= size - used)
			abort(); /* the buffers are sized for the tables */
		used += (size_t)n;
	}
	return buf;
}

/*
 * Booleans: the words of the row are yes/no; on/off and true/false are
 * accepted too, since other servers' files use them. Case matters, as for
 * every keyword.
 */
int
config_values_bool(const char *s, bool *v)
{
	static const char *const words[] = {"no",    "yes",  "off", "on",
					    "false", "true", NULL};
	int i = config_values_word_index(words, s);

	if (i < 0)
		return -1;
	*v = (i % 2) == 1;
	return 0;
}

int
config_values_digits(const char *s, size_t len, uint64_t *v)
{
	uint64_t n = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -2;
		n = n * 10 + d;
	}
	*v = n;
	return 0;
}

/* The multiplier of a size (K, M, G) or duration (s, m, h) suffix, or 0. */
static uint64_t
config_values_suffix(enum config_unit unit, char c)
{
	const char *sfx = unit == UNIT_SIZE ? "KkMmGg" : "smh";
	const char *at = strchr(sfx, c);

	if (c == '\0' || at == NULL)
		return 0;
	if (unit == UNIT_SIZE)
		return 1ull << (10 * ((at - sfx) / 2 + 1));
	return (const uint64_t[]){1, 60, 3600}[at - sfx];
}

int
config_values_number(enum config_unit unit, const char *s, uint64_t *v)
{
	size_t len = strlen(s);
	uint64_t mult = 1;
	int rc;

	if (unit != UNIT_COUNT && len > 1 &&
	    (s[len - 1] < '0' || s[len - 1] > '9')) {
		mult = config_values_suffix(unit, s[len - 1]);
		if (mult == 0)
			return -1;
		len--;
	}
	rc = config_values_digits(s, len, v);
	if (rc < 0)
		return rc;
	if (*v > UINT64_MAX / mult)
		return -2;
	*v *= mult;
	return 0;
}

const char *
config_values_format(enum config_unit unit, uint64_t v, char *buf, size_t size)
{
	static const char size_sfx[] = "GMK", time_sfx[] = "hms";
	static const uint64_t size_mult[] = {1ull << 30, 1ull << 20,
					     1ull << 10};
	static const uint64_t time_mult[] = {3600, 60, 1};
	int n = -1;

	for (size_t i = 0; i < 3 && v != 0 && unit != UNIT_COUNT; i++) {
		const uint64_t *mult =
		    unit == UNIT_SIZE ? size_mult : time_mult;
		const char *sfx = unit == UNIT_SIZE ? size_sfx : time_sfx;

		if (v % mult[i] == 0) {
			n = snprintf(buf, size, "%llu%c",
				     (unsigned long long)(v / mult[i]), sfx[i]);
			break;
		}
	}
	if (n < 0)
		n = snprintf(buf, size, "%llu", (unsigned long long)v);
	if (n < 0 || (size_t)n >= size)
		abort(); /* callers pass room for any uint64_t */
	return buf;
}

/*
 * Parse "ADDR:PORT" where ADDR is an IPv4 literal, "[IPv6 literal]" or
 * "localhost" (127.0.0.1) into l->addr. Returns NULL or the reason.
 */
const char *
config_values_sockaddr(const char *s, struct config_listener *l)
{
	char host[64];
	const char *port, *end;
	bool is_v6 = s[0] == '[';
	size_t hlen;
	uint64_t n;

	if (is_v6) {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return "is not ADDR:PORT";
		s++;
		port = end + 2;
	} else {
		end = strrchr(s, ':');
		if (end == NULL)
			return "is not ADDR:PORT";
		port = end + 1;
	}
	hlen = (size_t)(end - s);
	if (hlen >= sizeof(host))
		return "has an address that is too long";
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (config_values_digits(port, strlen(port), &n) < 0 || n < 1 ||
	    n > 65535)
		return "has a port outside 1..65535";
	memset(&l->addr, 0, sizeof(l->addr));
	if (is_v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return "has a bad IPv6 address";
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)n);
		l->addr_len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;

		if (strcmp(host, "localhost") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return "needs an IPv4 address, [IPv6 address] or "
			       "localhost";
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)n);
		l->addr_len = sizeof(*sin);
	}
	return NULL;
}

bool
config_values_same_sockaddr(const struct config_listener *a,
			    const struct config_listener *b)
{
	const struct sockaddr_in *a4 = (const void *)&a->addr;
	const struct sockaddr_in *b4 = (const void *)&b->addr;
	const struct sockaddr_in6 *a6 = (const void *)&a->addr;
	const struct sockaddr_in6 *b6 = (const void *)&b->addr;

	if (a->addr.ss_family != b->addr.ss_family)
		return false;
	if (a->addr.ss_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) ==
		   0;
}

/*
 * A network for an allow-list: an IPv4 dotted quad (inet_pton: exactly
 * four decimal parts, RFC 791 notation) or an IPv6 address (RFC 4291 2.2),
 * then optionally "/BITS" (RFC 4632 3.1, RFC 4291 2.3). No brackets, no
 * zone index. Host bits set under the prefix are cleared, as a router
 * would: "10.1.2.3/8" is 10.0.0.0/8.
 */
const char *
config_values_network(const char *s, struct config_network *net)
{
	const char *slash = strchr(s, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	char host[64];
	unsigned max;
	uint64_t bits;
	int rc;

	memset(net, 0, sizeof(*net));
	if (hlen == 0 || hlen >= sizeof(host))
		return "is not an IPv4 or IPv6 address";
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (memchr(host, ':', hlen) != NULL) {
		net->family = AF_INET6;
		max = 128;
	} else {
		net->family = AF_INET;
		max = 32;
	}
	if (inet_pton(net->family, host, net->addr) != 1)
		return "is not an IPv4 or IPv6 address";
	bits = max;
	if (slash != NULL) {
		rc = config_values_digits(slash + 1, strlen(slash + 1), &bits);
		if (rc == -1)
			return "has a prefix length that is not a number";
		if (rc == -2 || bits > max)
			return max == 32 ? "has a prefix longer than 32 bits"
					 : "has a prefix longer than 128 bits";
	}
	net->prefix = (unsigned)bits;
	for (unsigned i = 0; i < sizeof(net->addr); i++) {
		unsigned keep = 0;

		if (bits >= 8 * (i + 1))
			keep = 8;
		else if (bits > 8 * i)
			keep = (unsigned)bits - 8 * i;
		net->addr[i] &= (unsigned char)(0xff00u >> keep);
	}
	return NULL;
}
