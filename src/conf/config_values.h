/*
 * config_values.h - the syntax of single configuration values: numbers
 * with units, domain names, local parts, socket addresses, networks,
 * booleans and keywords. Pure functions without parser state, shared by
 * config.c (which owns the messages' "file:line: directive:" prefix) and
 * the unit tests. Internal to the config module: nothing else includes it.
 */
#ifndef POSTERN_CONFIG_VALUES_H
#define POSTERN_CONFIG_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

/* How a number is written and shown: plain, K/M/G sizes, s/m/h times. */
enum config_unit {
	UNIT_NONE = 0,
	UNIT_COUNT,
	UNIT_SIZE,
	UNIT_DURATION,
};

/*
 * Parse decimal digits (and nothing else) into *v. Returns 0, -1 for a bad
 * syntax, or -2 when the value does not fit in 64 bits.
 */
int config_values_digits(const char *s, size_t len, uint64_t *v);

/*
 * Read a number of unit `unit`: digits, then for sizes an optional K, M or G
 * (1024 multiples) and for durations an optional s, m or h. Returns 0, -1
 * (syntax) or -2 (overflow).
 */
int config_values_number(enum config_unit unit, const char *s, uint64_t *v);

/* A number as the reference shows it: the largest exact unit ("5m"). */
const char *config_values_format(enum config_unit unit, uint64_t v, char *buf,
				 size_t size);

/* Check a domain name (RFC 1035 2.3.1); NULL or the reason. */
const char *config_values_domain(const char *s);

/* Check a local part as a mailbox name; NULL or the reason. */
const char *config_values_local(const char *s, size_t len);

/* Parse "ADDR:PORT" into l->addr and l->addr_len; NULL or the reason. */
const char *config_values_sockaddr(const char *s, struct config_listener *l);

/* Same address family, address and port? */
bool config_values_same_sockaddr(const struct config_listener *a,
				 const struct config_listener *b);

/*
 * Parse a network "ADDR/BITS" or a bare ADDR (a host: /32 or /128) into
 * *net; an IPv4 address fills net->addr[0..3]. Host bits are cleared.
 * Returns NULL or the reason.
 */
const char *config_values_network(const char *s, struct config_network *net);

/* yes/no, on/off, true/false (lower case) into *v; 0, or -1. */
int config_values_bool(const char *s, bool *v);

/* The index of `word` in a NULL-terminated list, or -1. */
int config_values_word_index(const char *const *words, const char *word);

/* "a, b, c" into buf (aborts when buf is too small: size it for the table). */
const char *config_values_join_words(const char *const *words, char *buf,
				     size_t size);

#endif
