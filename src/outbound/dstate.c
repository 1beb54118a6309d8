/*
 * dstate.c - the queue's durable delivery state. See dstate.h.
 */
#include "outbound/dstate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"

#define DSTATE_BLOCK (1u << 20) /* read and written a block at a time */

static const char *const dstate_kinds[DSTATE_KIND_COUNT] = {
    [DSTATE_SENT] = "sent",
    [DSTATE_BOUNCED] = "bounced",
    [DSTATE_DEFERRED] = "deferred",
    [DSTATE_WARNED] = "warned",
    [DSTATE_HELD] = "held",
    [DSTATE_RELEASED] = "released",
};

const char *
dstate_kind_name(enum dstate_kind kind)
{
	return kind < DSTATE_KIND_COUNT ? dstate_kinds[kind] : "?";
}

/*
 * CRC-32C (Castagnoli), reflected, as the spool's journal uses.
 * XXX: the spool has its own copy (static in store/spool.c); share it
 * when the store exposes one.
 */
uint32_t
dstate_crc(const char *buf, size_t len)
{
	static uint32_t table[256];
	uint32_t crc = 0xffffffffu;

	if (table[1] == 0) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			table[i] = c;
		}
	}
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ (unsigned char)buf[i]) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffu;
}

/* --- one record ------------------------------------------------------ */

static bool
dstate_plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%';
}

/* Escape `s` into o (room checked by the caller); returns the end. */
static char *
dstate_esc(char *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (dstate_plain(c)) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	return o;
}

static bool
dstate_id_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n < DSTATE_ID_MAX &&
	       strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == n;
}

static bool
dstate_dsn_ok(const char *s)
{
	size_t n = strlen(s);

	return n < 16 && strspn(s, "0123456789.") == n &&
	       (n == 0 || (n >= 5 && (s[0] == '2' || s[0] == '4' ||
				      s[0] == '5')));
}

int
dstate_format(const struct dstate_rec *r, char *buf, size_t size)
{
	char line[DSTATE_LINE_MAX * 2], *o;
	size_t relay_len = strlen(r->relay), text_len = strlen(r->text);
	int n;

	if (r->kind >= DSTATE_KIND_COUNT || !dstate_id_ok(r->id) ||
	    r->rcpt < -1 || r->rcpt > DSTATE_RCPT_MAX ||
	    (r->rcpt == -1) != (r->kind == DSTATE_WARNED ||
				r->kind == DSTATE_HELD ||
				r->kind == DSTATE_RELEASED) ||
	    strcmp(r->relay, "-") == 0 ||
	    r->time < 0 || !dstate_dsn_ok(r->dsn) ||
	    relay_len >= DSTATE_RELAY_MAX || text_len == 0 ||
	    text_len >= DSTATE_TEXT_MAX)
		return -1;
	n = snprintf(line, sizeof(line), "%s %s %d %" PRId64 " %s ",
		     dstate_kinds[r->kind], r->id, r->rcpt, r->time,
		     r->dsn[0] != '\0' ? r->dsn : "-");
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	o = line + n;
	o = r->relay[0] != '\0' ? dstate_esc(o, r->relay) : o;
	if (r->relay[0] == '\0')
		*o++ = '-';
	*o++ = ' ';
	o = dstate_esc(o, r->text);
	n = snprintf(o, sizeof(line) - (size_t)(o - line), " %08" PRIx32 "\n",
		     dstate_crc(line, (size_t)(o - line)));
	o += n;
	if ((size_t)(o - line) > DSTATE_LINE_MAX || (size_t)(o - line) >= size)
		return -1;
	memcpy(buf, line, (size_t)(o - line));
	buf[o - line] = '\0';
	return (int)(o - line);
}

static int
dstate_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Unescape a canonical value of `len` octets into out (size `size`). */
static int
dstate_unesc(const char *s, size_t len, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		unsigned char c;

		if (n + 1 >= size)
			return -1;
		if (s[i] != '%') {
			if (!dstate_plain((unsigned char)s[i]))
				return -1;
			out[n++] = s[i];
			continue;
		}
		if (len - i < 3 || (hi = dstate_hex(s[i + 1])) < 0 ||
		    (lo = dstate_hex(s[i + 2])) < 0)
			return -1;
		c = (unsigned char)(hi << 4 | lo);
		if (dstate_plain(c) || c == '\0')
			return -1; /* one spelling per value */
		out[n++] = (char)c;
		i += 2;
	}
	out[n] = '\0';
	return 0;
}

/* Canonical decimal (no sign, no leading zero) up to max. */
static int
dstate_number(const char *s, size_t len, int64_t max, int64_t *v_r)
{
	int64_t v = 0;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (max - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*v_r = v;
	return 0;
}

/* Split a line into exactly `n` fields separated by single spaces. */
static int
dstate_fields(const char *line, size_t len, const char **f, size_t *fl,
	      size_t n)
{
	size_t k = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (k == n || i == start)
			return -1;
		f[k] = line + start;
		fl[k++] = i - start;
		start = i + 1;
	}
	return k == n ? 0 : -1;
}

static int
dstate_parse_kind(const char *s, size_t len)
{
	for (int k = 0; k < DSTATE_KIND_COUNT; k++)
		if (strlen(dstate_kinds[k]) == len &&
		    memcmp(dstate_kinds[k], s, len) == 0)
			return k;
	return -1;
}

int
dstate_parse(const char *line, size_t len, struct dstate_rec *r)
{
	const char *f[8];
	size_t fl[8];
	int64_t v;
	int kind;
	char crc[9];

	if (len >= DSTATE_LINE_MAX || dstate_fields(line, len, f, fl, 8) < 0 ||
	    fl[7] != 8)
		return -1;
	snprintf(crc, sizeof(crc), "%08" PRIx32,
		 dstate_crc(line, (size_t)(f[7] - 1 - line)));
	if (memcmp(crc, f[7], 8) != 0 || (kind = dstate_parse_kind(f[0], fl[0]))
					     < 0)
		return -1;
	r->kind = (enum dstate_kind)kind;
	if (fl[1] >= DSTATE_ID_MAX)
		return -1;
	memcpy(r->id, f[1], fl[1]);
	r->id[fl[1]] = '\0';
	if (fl[2] == 2 && memcmp(f[2], "-1", 2) == 0)
		r->rcpt = -1;
	else if (dstate_number(f[2], fl[2], DSTATE_RCPT_MAX, &v) == 0)
		r->rcpt = (int)v;
	else
		return -1;
	if (dstate_number(f[3], fl[3], INT64_MAX, &r->time) < 0)
		return -1;
	if (fl[4] == 1 && f[4][0] == '-')
		r->dsn[0] = '\0';
	else if (dstate_unesc(f[4], fl[4], r->dsn, sizeof(r->dsn)) < 0)
		return -1;
	if (fl[5] == 1 && f[5][0] == '-')
		r->relay[0] = '\0';
	else if (dstate_unesc(f[5], fl[5], r->relay, sizeof(r->relay)) < 0)
		return -1;
	if (dstate_unesc(f[6], fl[6], r->text, sizeof(r->text)) < 0)
		return -1;
	/* What the writer would refuse is not a record either. */
	{
		char again[DSTATE_LINE_MAX + 1];

		return dstate_format(r, again, sizeof(again)) == (int)len + 1 &&
			       memcmp(again, line, len) == 0
			   ? 0
			   : -1;
	}
}

/* --- the journal file ------------------------------------------------ */

static ssize_t
dstate_sys_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

static int
dstate_sys_ftruncate(int fd, off_t len)
{
	return ftruncate(fd, len);
}

struct dstate_fs_ops dstate_fs = {
    .write = dstate_sys_write,
    .fdatasync = fdatasync,
    .fsync = fsync,
    .ftruncate = dstate_sys_ftruncate,
    .renameat = renameat,
};

struct dstate {
	int dir_fd;   /* the queue directory (ours, dup'd) */
	int fd;	      /* the journal, O_APPEND */
	uint64_t size; /* octets known intact and durable (or synced) */
	char *pend;   /* records waiting for dstate_sync() */
	size_t pend_len, pend_cap;
};

/* write(2) through the seam until all of `len` is written; 0 or -1. */
static int
dstate_write_all(int fd, const char *p, size_t len)
{
	return fdio_write_all(dstate_fs.write, fd, p, len);
}

static int
dstate_open_file(int dir_fd, const char *name, int extra)
{
	int fd = openat(dir_fd, name,
			O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
			    extra,
			0600);
	struct stat st;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

int
dstate_open(int queue_fd, struct dstate **ds_r, const char **error_r)
{
	struct dstate *ds = calloc(1, sizeof(*ds));
	struct stat st;

	if (ds == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	ds->dir_fd = fcntl(queue_fd, F_DUPFD_CLOEXEC, 0);
	ds->fd = ds->dir_fd < 0 ? -1
				: dstate_open_file(ds->dir_fd, DSTATE_FILE, 0);
	if (ds->fd < 0 || fstat(ds->fd, &st) < 0) {
		*error_r = strerror(errno);
		dstate_close(&ds);
		return -1;
	}
	ds->size = (uint64_t)st.st_size;
	if (ds->size == 0) {
		/* New: the magic line, made durable with the first batch. */
		if (dstate_write_all(ds->fd, DSTATE_MAGIC "\n",
				     sizeof(DSTATE_MAGIC)) < 0) {
			*error_r = strerror(errno);
			dstate_close(&ds);
			return -1;
		}
		ds->size = sizeof(DSTATE_MAGIC);
	}
	*ds_r = ds;
	return 0;
}

void
dstate_close(struct dstate **dsp)
{
	struct dstate *ds = *dsp;

	if (ds == NULL)
		return;
	if (ds->fd >= 0)
		close(ds->fd);
	if (ds->dir_fd >= 0)
		close(ds->dir_fd);
	free(ds->pend);
	free(ds);
	*dsp = NULL;
}

int
dstate_set_aside(int queue_fd, const char **error_r)
{
	char name[64];

	for (unsigned n = 1; n < 1000; n++) {
		snprintf(name, sizeof(name), "%s.damaged.%u", DSTATE_FILE, n);
		if (faccessat(queue_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (dstate_fs.renameat(queue_fd, DSTATE_FILE, queue_fd,
				       name) < 0)
			break;
		return 0;
	}
	*error_r = strerror(errno);
	return -1;
}

/* Where a streaming scan is (dstate_scan_fd). */
struct dstate_scan {
	void (*cb)(void *ctx, const struct dstate_rec *r);
	void *ctx;
	struct dstate_rec rec;
	unsigned skipped;
	uint64_t good;	/* end of the last intact record */
	bool magic_ok;
	bool in_junk;	/* inside a line longer than a block */
};

/* The complete lines of buf[0, have), which starts at file offset pos;
   returns how much was used (the rest is an unfinished line). */
static size_t
dstate_scan_lines(struct dstate_scan *sc, const char *buf, size_t have,
		  uint64_t pos)
{
	size_t off = 0;

	if (!sc->magic_ok) {
		if (have < sizeof(DSTATE_MAGIC))
			return 0;
		if (memcmp(buf, DSTATE_MAGIC "\n", sizeof(DSTATE_MAGIC)) != 0)
			return 0;
		sc->magic_ok = true;
		off = sizeof(DSTATE_MAGIC);
		sc->good = off;
	}
	while (off < have) {
		const char *nl = memchr(buf + off, '\n', have - off);
		size_t end;

		if (nl == NULL)
			break;
		end = (size_t)(nl - buf);
		if (sc->in_junk)
			sc->in_junk = false; /* counted when it began */
		else if (dstate_parse(buf + off, end - off, &sc->rec) == 0) {
			sc->cb(sc->ctx, &sc->rec);
			sc->good = pos + end + 1;
		} else {
			sc->skipped++;
		}
		off = end + 1;
	}
	return off;
}

/* Each intact record of the journal, read DSTATE_BLOCK octets at a time:
   the memory needed does not grow with the journal (100,000 deferrals
   are about 15 MiB of it). 0, or -1 with *error_r. */
static int
dstate_scan_fd(int fd, struct dstate_scan *sc, const char **error_r)
{
	char *buf = malloc(DSTATE_BLOCK);
	size_t have = 0;
	uint64_t pos = 0; /* file offset of buf[0] */
	int rc = -1;

	if (buf == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	for (;;) {
		ssize_t n = pread(fd, buf + have, DSTATE_BLOCK - have,
				  (off_t)(pos + have));
		size_t used;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = strerror(errno);
			break;
		}
		have += (size_t)n;
		used = dstate_scan_lines(sc, buf, have, pos);
		if (!sc->magic_ok && (n == 0 || have >= sizeof(DSTATE_MAGIC))) {
			*error_r = "not a postern-queue-state 1 journal";
			break;
		}
		if (n == 0) {
			if (used < have && !sc->in_junk)
				sc->skipped++; /* a torn last line */
			rc = 0;
			break;
		}
		if (used == 0 && have == DSTATE_BLOCK) {
			/* no LF in a whole block: junk up to the next one */
			if (!sc->in_junk)
				sc->skipped++;
			sc->in_junk = true;
			used = have;
		}
		memmove(buf, buf + used, have - used);
		pos += used;
		have -= used;
	}
	free(buf);
	return rc;
}

int
dstate_load(struct dstate *ds,
	    void (*cb)(void *ctx, const struct dstate_rec *r), void *ctx,
	    unsigned *skipped_r, const char **error_r)
{
	struct dstate_scan *sc = calloc(1, sizeof(*sc));
	struct stat st;
	int rc;

	*skipped_r = 0;
	if (sc == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	sc->cb = cb;
	sc->ctx = ctx;
	rc = dstate_scan_fd(ds->fd, sc, error_r);
	*skipped_r = sc->skipped;
	/* A torn or damaged tail: cut it, so that appends stay intact. */
	if (rc == 0 && fstat(ds->fd, &st) == 0 &&
	    (uint64_t)st.st_size > sc->good &&
	    dstate_fs.ftruncate(ds->fd, (off_t)sc->good) < 0) {
		*error_r = strerror(errno);
		rc = -1;
	}
	if (rc == 0)
		ds->size = sc->good;
	free(sc);
	return rc;
}

int
dstate_add(struct dstate *ds, const struct dstate_rec *r)
{
	char line[DSTATE_LINE_MAX + 1];
	int n = dstate_format(r, line, sizeof(line));

	if (n < 0)
		return -1;
	if (ds->pend_cap - ds->pend_len < (size_t)n) {
		size_t cap = ds->pend_cap ? ds->pend_cap * 2 : 16384;
		char *p;

		while (cap - ds->pend_len < (size_t)n)
			cap *= 2;
		p = realloc(ds->pend, cap);
		if (p == NULL)
			return -1;
		ds->pend = p;
		ds->pend_cap = cap;
	}
	memcpy(ds->pend + ds->pend_len, line, (size_t)n);
	ds->pend_len += (size_t)n;
	/* A large batch (100,000 deferrals in one turn) is made durable a
	   block at a time rather than held in memory; a failure keeps the
	   records pending, and the caller's dstate_sync() reports it. */
	if (ds->pend_len >= DSTATE_BLOCK && ds->fd >= 0) {
		const char *ignored;

		(void)dstate_sync(ds, &ignored);
	}
	return 0;
}

bool
dstate_pending(const struct dstate *ds)
{
	return ds->pend_len > 0;
}

uint64_t
dstate_size(const struct dstate *ds)
{
	return ds->size;
}

int
dstate_sync(struct dstate *ds, const char **error_r)
{
	if (ds->pend_len == 0)
		return 0;
	if (dstate_write_all(ds->fd, ds->pend, ds->pend_len) < 0 ||
	    dstate_fs.fdatasync(ds->fd) < 0) {
		*error_r = strerror(errno);
		/* Never append after a partial record. */
		if (dstate_fs.ftruncate(ds->fd, (off_t)ds->size) < 0)
			*error_r = "cannot cut back a failed append";
		return -1;
	}
	ds->size += ds->pend_len;
	ds->pend_len = 0;
	return 0;
}

struct dstate_keep {
	bool (*keep)(void *ctx, const struct dstate_rec *r);
	void *ctx;
	struct dstate *to;
	bool failed;
};

/* A kept record goes to state.new, written out a block at a time. */
static void
dstate_keep_rec(void *ctx, const struct dstate_rec *r)
{
	struct dstate_keep *k = ctx;
	struct dstate *nw = k->to;

	if (k->failed || !k->keep(k->ctx, r))
		return;
	if (dstate_add(nw, r) < 0) {
		k->failed = true;
		return;
	}
	if (nw->pend_len >= DSTATE_BLOCK) {
		if (dstate_write_all(nw->fd, nw->pend, nw->pend_len) < 0)
			k->failed = true;
		nw->size += nw->pend_len;
		nw->pend_len = 0;
	}
}

/* state.new: the magic, the kept records (streamed), fsync'd. */
static int
dstate_write_new(struct dstate *ds, struct dstate *nw,
		 bool (*keep)(void *ctx, const struct dstate_rec *r),
		 void *ctx, const char **error_r)
{
	struct dstate_keep k = {keep, ctx, nw, false};
	struct dstate_scan *sc = calloc(1, sizeof(*sc));
	int rc = -1;

	nw->fd = dstate_open_file(ds->dir_fd, DSTATE_FILE ".new", O_TRUNC);
	if (sc == NULL || nw->fd < 0 ||
	    dstate_write_all(nw->fd, DSTATE_MAGIC "\n", sizeof(DSTATE_MAGIC)) <
		0) {
		*error_r = sc == NULL ? "out of memory" : strerror(errno);
		free(sc);
		return -1;
	}
	nw->size = sizeof(DSTATE_MAGIC);
	sc->cb = dstate_keep_rec;
	sc->ctx = &k;
	if (dstate_scan_fd(ds->fd, sc, error_r) == 0) {
		if (k.failed)
			*error_r = "cannot write the compacted journal";
		else if (dstate_write_all(nw->fd, nw->pend, nw->pend_len) < 0 ||
			 dstate_fs.fsync(nw->fd) < 0)
			*error_r = strerror(errno);
		else
			rc = 0;
	}
	nw->size += nw->pend_len;
	nw->pend_len = 0;
	free(sc);
	return rc;
}

int
dstate_compact(struct dstate *ds,
	       bool (*keep)(void *ctx, const struct dstate_rec *r), void *ctx,
	       const char **error_r)
{
	struct dstate nw = {.dir_fd = ds->dir_fd, .fd = -1};

	if (dstate_sync(ds, error_r) < 0)
		return -1;
	if (dstate_write_new(ds, &nw, keep, ctx, error_r) < 0 ||
	    (dstate_fs.renameat(ds->dir_fd, DSTATE_FILE ".new", ds->dir_fd,
				DSTATE_FILE) < 0 &&
	     (*error_r = strerror(errno)) != NULL)) {
		if (nw.fd >= 0)
			close(nw.fd);
		unlinkat(ds->dir_fd, DSTATE_FILE ".new", 0);
		free(nw.pend);
		return -1;
	}
	/* Renamed: the new file is the journal now, whatever follows. */
	close(ds->fd);
	ds->fd = nw.fd;
	ds->size = nw.size;
	free(nw.pend);
	if (dstate_fs.fsync(ds->dir_fd) < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	return 0;
}
