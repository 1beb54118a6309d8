/*
 * lockout_key.c - client addresses and account names as lockout keys
 * (lockout_int.h): parsing, masking to a prefix, CIDR lists, the
 * lower-cased account. A leaf: it calls nothing of the lockout.
 */
#include "auth/lockout_int.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

int
lockout_parse_addr(const char *text, int *family_r, unsigned char addr_r[16])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,	   0,
						 0, 0, 0, 0, 0xff, 0xff};
	unsigned char a[16];

	if (text == NULL)
		return -1;
	memset(addr_r, 0, 16);
	if (inet_pton(AF_INET, text, a) == 1) {
		*family_r = AF_INET;
		memcpy(addr_r, a, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, a) != 1)
		return -1;
	if (memcmp(a, mapped, sizeof(mapped)) == 0) {
		*family_r = AF_INET;
		memcpy(addr_r, a + 12, 4);
		return 0;
	}
	*family_r = AF_INET6;
	memcpy(addr_r, a, 16);
	return 0;
}

void
lockout_mask_bits(unsigned char a[16], unsigned bits)
{
	for (unsigned i = 0; i < 16; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		a[i] &= (unsigned char)(0xff00u >> bits);
		bits = 0;
	}
}

size_t
lockout_key_account(unsigned char *out, const char *account)
{
	size_t n = 0;

	for (; account[n] != '\0' && n < LOCKOUT_ACCOUNT_MAX; n++) {
		unsigned char c = (unsigned char)account[n];

		out[n] = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
	}
	return n;
}

static bool
lockout_net_contains(const struct config_network *n, int family,
		     const unsigned char addr[16])
{
	unsigned char a[16], b[16];
	unsigned max = family == AF_INET ? 32 : 128;
	unsigned bits = n->prefix > max ? max : n->prefix;

	if (n->family != family)
		return false;
	memcpy(a, addr, 16);
	memcpy(b, n->addr, 16);
	if (family == AF_INET) {
		memset(a + 4, 0, 12);
		memset(b + 4, 0, 12);
	}
	lockout_mask_bits(a, bits);
	lockout_mask_bits(b, bits);
	return memcmp(a, b, 16) == 0;
}

bool
lockout_in_list(const struct config_network *v, size_t n, int family,
		const unsigned char a[16])
{
	for (size_t i = 0; i < n; i++)
		if (lockout_net_contains(&v[i], family, a))
			return true;
	return false;
}
