/*
 * fuzz_lockout_rec.c - libFuzzer harness for the lockout's stored records
 * (src/auth/lockout_rec.c, lockout_known.c; docs/guard-state.md). A
 * damaged or hostile store file must never make the guard misbehave.
 *
 * Byte 0: the table (even: keys, odd: known networks); byte 1: the key's
 * length; then the key, then the record. lockout_import() must not read
 * outside them. A record it accepts is exported again; the export, read
 * into a new lockout and exported once more, gives the same bytes (the
 * format is canonical once read).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/lockout.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1000000
#define WALL 1800000000
#define OUT_MAX 8

struct out {
	enum lockout_table table[OUT_MAX];
	unsigned char key[OUT_MAX][400];
	size_t klen[OUT_MAX];
	unsigned char rec[OUT_MAX][4200];
	size_t rlen[OUT_MAX];
	size_t n;
};

static const unsigned char secret[LOCKOUT_SECRET_LEN] = "fuzz";

static int
save(enum lockout_table table, const void *key, size_t klen, const void *rec,
     size_t rlen, void *arg)
{
	struct out *o = arg;

	CHECK(o->n < OUT_MAX && klen <= 400 && rlen <= 4200);
	o->table[o->n] = table;
	memcpy(o->key[o->n], key, klen);
	o->klen[o->n] = klen;
	o->rlen[o->n] = rec != NULL ? rlen : 0;
	if (rec != NULL)
		memcpy(o->rec[o->n], rec, rlen);
	o->n++;
	return 0;
}

static struct lockout *
fresh(void)
{
	struct lockout_config lc = {
	    .account_failures = 5, .address_failures = 10,
	    .network_failures = 30, .wide_failures = 100,
	    .login_networks = 5, .window = 900, .lock_time = 300,
	    .lock_max = 3600, .relapse_memory = 86400, .max_keys = 64};
	struct lockout *lo = lockout_new(&lc, secret);

	CHECK(lo != NULL);
	return lo;
}

/* Import every record of `in` into a new lockout, export it into `out`. */
static void
round_trip(const struct out *in, struct out *out)
{
	struct lockout *lo = fresh();

	for (size_t i = 0; i < in->n; i++)
		if (in->rlen[i] > 0)
			CHECK(lockout_import(lo, in->table[i], in->key[i],
					     in->klen[i], in->rec[i],
					     in->rlen[i], NOW, WALL) == 0);
	lockout_mark_all(lo);
	memset(out, 0, sizeof(*out));
	lockout_export(lo, NOW, WALL, save, out);
	lockout_free(&lo);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct out o1, o2, o3;
	enum lockout_table table;
	struct lockout *lo;
	size_t klen;

	if (size < 2)
		return 0;
	table = (data[0] & 1) ? LOCKOUT_TABLE_KNOWN : LOCKOUT_TABLE_KEYS;
	klen = data[1];
	if (klen > size - 2)
		return 0;
	lo = fresh();
	/* Copies of exactly the right length: ASan sees any over-read. */
	{
		unsigned char *k = malloc(klen + 1), *r = malloc(size - 2 - klen + 1);

		CHECK(k != NULL && r != NULL);
		memcpy(k, data + 2, klen);
		memcpy(r, data + 2 + klen, size - 2 - klen);
		if (lockout_import(lo, table, k, klen, r, size - 2 - klen, NOW,
				   WALL) == 0) {
			lockout_mark_all(lo);
			memset(&o1, 0, sizeof(o1));
			lockout_export(lo, NOW, WALL, save, &o1);
			round_trip(&o1, &o2);
			round_trip(&o2, &o3);
			CHECK(o2.n == o3.n);
			for (size_t i = 0; i < o2.n; i++)
				CHECK(o2.klen[i] == o3.klen[i] &&
				      o2.rlen[i] == o3.rlen[i] &&
				      memcmp(o2.key[i], o3.key[i],
					     o2.klen[i]) == 0 &&
				      memcmp(o2.rec[i], o3.rec[i],
					     o2.rlen[i]) == 0);
		}
		free(k);
		free(r);
	}
	lockout_free(&lo);
	return 0;
}
