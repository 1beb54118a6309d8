/*
 * notices.c - the pending postmaster notices (notices.h). A small array
 * in order of arrival: alarms are rare, and NOTICES_MAX bounds it.
 */
#include "auth/notices.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct notices {
	struct notice_pending *v;
	size_t n;
	uint32_t next_id;
};

struct notices *
notices_new(void)
{
	struct notices *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->v = calloc(NOTICES_MAX, sizeof(*n->v));
	if (n->v == NULL) {
		free(n);
		return NULL;
	}
	n->next_id = 1;
	return n;
}

void
notices_free(struct notices **np)
{
	if (*np == NULL)
		return;
	free((*np)->v);
	free(*np);
	*np = NULL;
}

static bool
notices_account_ok(const char *s, size_t len)
{
	if (len == 0 || len > NOTICES_ACCOUNT_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return false;
	return true;
}

static struct notice_pending *
notices_find(struct notices *n, uint32_t id)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->v[i].id == id)
			return &n->v[i];
	return NULL;
}

/* The next number not pending (0 is never one). */
static uint32_t
notices_next_id(struct notices *n)
{
	uint32_t id;

	do {
		id = n->next_id++;
		if (n->next_id == 0)
			n->next_id = 1;
	} while (id == 0 || notices_find(n, id) != NULL);
	return id;
}

struct notice_pending *
notices_add(struct notices *n, const char *account, uint32_t count,
	    uint32_t baseline, int64_t raised)
{
	size_t len = strlen(account);
	struct notice_pending *p;

	if (n->n >= NOTICES_MAX || !notices_account_ok(account, len))
		return NULL;
	p = &n->v[n->n++];
	memset(p, 0, sizeof(*p));
	p->id = notices_next_id(n);
	memcpy(p->account, account, len + 1);
	p->count = count;
	p->baseline = baseline;
	p->raised = raised;
	return p;
}

void
notices_remove(struct notices *n, uint32_t id)
{
	struct notice_pending *p = notices_find(n, id);
	size_t i;

	if (p == NULL)
		return;
	i = (size_t)(p - n->v);
	memmove(&n->v[i], &n->v[i + 1], (n->n - i - 1) * sizeof(*n->v));
	n->n--;
}

enum notices_done
notices_done(struct notices *n, uint32_t id, const char *account)
{
	struct notice_pending *p = notices_find(n, id);

	if (p == NULL)
		return NOTICES_DONE_UNKNOWN;
	if (strcasecmp(p->account, account) != 0)
		return NOTICES_DONE_MISMATCH;
	notices_remove(n, id);
	return NOTICES_DONE_OK;
}

size_t
notices_count(const struct notices *n)
{
	return n->n;
}

struct notice_pending *
notices_at(struct notices *n, size_t i)
{
	return i < n->n ? &n->v[i] : NULL;
}

enum notices_step
notices_step(const struct notice_pending *p, int64_t now, bool holder_alive)
{
	if (p->holder != 0 && holder_alive && now < p->due)
		return NOTICES_WAIT;
	return p->attempts >= NOTICES_ATTEMPTS ? NOTICES_GIVE_UP
					       : NOTICES_HAND;
}

void
notices_handed(struct notice_pending *p, unsigned serial, int64_t now)
{
	p->attempts++;
	p->holder = serial;
	p->due = now + NOTICES_RETRY;
}

static void
put_be(unsigned char *b, uint64_t v, size_t width)
{
	for (size_t i = 0; i < width; i++)
		b[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
}

static uint64_t
get_be(const unsigned char *b, size_t width)
{
	uint64_t v = 0;

	for (size_t i = 0; i < width; i++)
		v = v << 8 | b[i];
	return v;
}

size_t
notices_export(const struct notice_pending *p,
	       unsigned char key[NOTICES_KEY_LEN],
	       unsigned char rec[NOTICES_REC_MAX])
{
	size_t len = strlen(p->account);

	put_be(key, p->id, 4);
	rec[0] = 1;
	put_be(rec + 1, p->count, 4);
	put_be(rec + 5, p->baseline, 4);
	put_be(rec + 9, (uint64_t)p->raised, 8);
	rec[17] = (unsigned char)p->attempts;
	memcpy(rec + NOTICES_REC_FIXED, p->account, len);
	return NOTICES_REC_FIXED + len;
}

int
notices_import(struct notices *n, const void *key, size_t klen,
	       const void *rec, size_t rlen)
{
	const unsigned char *r = rec;
	struct notice_pending *p;
	uint32_t id;
	size_t alen;

	if (klen != NOTICES_KEY_LEN || rlen <= NOTICES_REC_FIXED ||
	    rlen > NOTICES_REC_MAX || r[0] != 1 ||
	    r[17] > NOTICES_ATTEMPTS || n->n >= NOTICES_MAX)
		return -1;
	id = (uint32_t)get_be(key, 4);
	alen = rlen - NOTICES_REC_FIXED;
	if (id == 0 || notices_find(n, id) != NULL ||
	    !notices_account_ok((const char *)r + NOTICES_REC_FIXED, alen))
		return -1;
	p = &n->v[n->n++];
	memset(p, 0, sizeof(*p));
	p->id = id;
	memcpy(p->account, r + NOTICES_REC_FIXED, alen);
	p->account[alen] = '\0';
	p->count = (uint32_t)get_be(r + 1, 4);
	p->baseline = (uint32_t)get_be(r + 5, 4);
	p->raised = (int64_t)get_be(r + 9, 8);
	p->attempts = r[17];
	if (id >= n->next_id)
		n->next_id = id + 1 == 0 ? 1 : id + 1;
	return 0;
}
