/*
 * metrics.c - the shared mapping: made by the master, written by each
 * process into its own slot, summed by the readers. See metrics.h.
 */
#include "metrics/metrics_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Upper bounds of the histogram buckets, seconds (metrics_text.c prints
   them). A KDF takes tens to hundreds of ms; a group commit (fsync) a
   fraction of a ms to tens of ms; a delivery seconds to days. */
const double metrics_bounds[METRICS_N_HIST][METRICS_BUCKETS] = {
    [MH_GUARD_VERIFY] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
			 5, 10, 30},
    [MH_SPOOL_COMMIT] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
			 0.1, 0.25, 0.5, 1, 5},
    [MH_DELIVERY] = {1, 5, 15, 60, 300, 900, 1800, 3600, 14400, 43200,
		     86400, 432000},
};

/* Where a process that never attached writes: its own, unseen. */
static struct metrics_slot metrics_dummy;
static struct metrics_slot *metrics_me = &metrics_dummy;

int
metrics_path(const char *control_socket, char *buf, size_t size)
{
	const char *slash = control_socket ? strrchr(control_socket, '/')
					   : NULL;
	int dir = slash != NULL ? (int)(slash - control_socket) : 1;
	int n = snprintf(buf, size, "%.*s/metrics", dir,
			 slash != NULL ? control_socket : ".");

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int
metrics_map_fd(struct metrics_map *m, int fd, int prot, const char **error_r)
{
	void *p = mmap(NULL, sizeof(struct metrics_file), prot, MAP_SHARED, fd,
		       0);

	if (p == MAP_FAILED) {
		*error_r = strerror(errno);
		return -1;
	}
	m->file = p;
	m->is_writable = (prot & PROT_WRITE) != 0;
	return 0;
}

/* Make `path` for the master, always a new file: the directory may belong
   to the guard's account (accounts.c), so root never opens what is there
   (a hard link to another file, or a file whose owner keeps a descriptor
   to truncate it under our mapping: SIGBUS). The counters start at zero
   each run anyway. */
static int
metrics_create_fd(const char *path, long gid, const char **error_r)
{
	int fd;

	if (unlink(path) < 0 && errno != ENOENT) {
		*error_r = strerror(errno);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0640);
	if (fd < 0 || ftruncate(fd, (off_t)sizeof(struct metrics_file)) < 0 ||
	    fchmod(fd, 0640) < 0 ||
	    (gid >= 0 && geteuid() == 0 && fchown(fd, 0, (gid_t)gid) < 0)) {
		*error_r = strerror(errno);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int
metrics_create(const char *path, long gid, struct metrics_map **map_r,
	       const char **error_r)
{
	struct metrics_map *m = calloc(1, sizeof(*m));
	int fd;

	errno = 0;
	if (m == NULL || snprintf(m->path, sizeof(m->path), "%s", path) >=
			     (int)sizeof(m->path)) {
		free(m);
		*error_r = "path too long";
		return -1;
	}
	fd = metrics_create_fd(path, gid, error_r);
	if (fd < 0 || metrics_map_fd(m, fd, PROT_READ | PROT_WRITE,
				     error_r) < 0) {
		if (fd >= 0)
			close(fd);
		free(m);
		return -1;
	}
	close(fd);
	/* Counters start again with each run (Prometheus sees a reset:
	   postern_start_time_seconds moves); a stale layout is gone. */
	memset(m->file, 0, sizeof(*m->file));
	m->file->size = sizeof(*m->file);
	m->file->n_slots = METRICS_N_SLOTS;
	m->file->magic = METRICS_MAGIC;
	*map_r = m;
	return 0;
}

static int
metrics_open_ro(struct metrics_map *m, const char **error_r)
{
	struct stat st;
	int fd = open(m->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_size != (off_t)sizeof(*m->file)) {
		close(fd);
		*error_r = "not a metrics file of this version";
		return -1;
	}
	rc = metrics_map_fd(m, fd, PROT_READ, error_r);
	close(fd);
	if (rc == 0 && (m->file->magic != METRICS_MAGIC ||
			m->file->size != sizeof(*m->file))) {
		munmap(m->file, sizeof(*m->file));
		m->file = NULL;
		*error_r = "not a metrics file of this version";
		return -1;
	}
	return rc;
}

int
metrics_open(const char *path, struct metrics_map **map_r,
	     const char **error_r)
{
	struct metrics_map *m = calloc(1, sizeof(*m));

	if (m == NULL || snprintf(m->path, sizeof(m->path), "%s", path) >=
			     (int)sizeof(m->path)) {
		free(m);
		*error_r = "path too long";
		return -1;
	}
	if (metrics_open_ro(m, error_r) < 0) {
		free(m);
		return -1;
	}
	*map_r = m;
	return 0;
}

int
metrics_reopen_readonly(struct metrics_map *map, const char **error_r)
{
	if (map->file != NULL)
		munmap(map->file, sizeof(*map->file));
	map->file = NULL;
	return metrics_open_ro(map, error_r);
}

void
metrics_close(struct metrics_map **map)
{
	if (*map == NULL)
		return;
	if ((*map)->file != NULL)
		munmap((*map)->file, sizeof(*(*map)->file));
	free(*map);
	*map = NULL;
}

void
metrics_attach(struct metrics_map *map, unsigned slot)
{
	if (map == NULL || map->file == NULL || !map->is_writable ||
	    slot >= METRICS_N_SLOTS)
		metrics_me = &metrics_dummy;
	else
		metrics_me = &map->file->slot[slot];
}

/* Which cells are gauges: from the tables of metrics.h and
   metrics_int.h, so that a new gauge is reset without another list. */
#define METRICS_CELL_FAM(id, fam, labels) [id] = MF_##fam,
static const enum metrics_family metrics_cell_fam[METRICS_N_CELLS] = {
    METRICS_CELLS(METRICS_CELL_FAM)};
#undef METRICS_CELL_FAM
#define METRICS_FAM_TYPE(id, name, type, help) [MF_##id] = type,
static const enum metrics_type metrics_fam_type[METRICS_N_FAMILIES] = {
    METRICS_FAMILIES(METRICS_FAM_TYPE)};
#undef METRICS_FAM_TYPE

void
metrics_slot_reset_gauges(struct metrics_map *map, unsigned slot)
{
	if (map == NULL || map->file == NULL || !map->is_writable ||
	    slot >= METRICS_N_SLOTS)
		return;
	for (size_t c = 0; c < METRICS_N_CELLS; c++)
		if (metrics_fam_type[metrics_cell_fam[c]] == MT_GAUGE)
			atomic_store_explicit(&map->file->slot[slot].cell[c],
					      0, memory_order_relaxed);
}

/* --- writers --------------------------------------------------------- */

void
metrics_add(enum metrics_cell id, uint64_t n)
{
	atomic_fetch_add_explicit(&metrics_me->cell[id], n,
				  memory_order_relaxed);
}

void
metrics_gauge_add(enum metrics_cell id, int64_t n)
{
	atomic_fetch_add_explicit(&metrics_me->cell[id], (uint64_t)n,
				  memory_order_relaxed);
}

void
metrics_gauge_set(enum metrics_cell id, int64_t v)
{
	atomic_store_explicit(&metrics_me->cell[id], (uint64_t)v,
			      memory_order_relaxed);
}

void
metrics_observe(enum metrics_hist h, double seconds)
{
	size_t b = 0;

	if (!(seconds >= 0)) /* NaN too */
		seconds = 0;
	while (b < METRICS_BUCKETS && seconds > metrics_bounds[h][b])
		b++;
	atomic_fetch_add_explicit(&metrics_me->bucket[h][b], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&metrics_me->sum_ns[h],
				  seconds < 1e9 ? (uint64_t)(seconds * 1e9)
						: (uint64_t)1e18,
				  memory_order_relaxed);
}

void
metrics_role_add(enum metrics_cell mx_id, int role, int64_t n)
{
	if (role >= 0 && role <= 2)
		metrics_gauge_add((enum metrics_cell)(mx_id + role), n);
}

void
metrics_conn(int role, int result)
{
	if (role >= 0 && role <= 2 && result >= 0 &&
	    result < METRICS_CONN_RESULTS)
		metrics_add((enum metrics_cell)(MC_CONN_MX_ACCEPTED +
						role * METRICS_CONN_RESULTS +
						result),
			    1);
}

void
metrics_login(int result)
{
	metrics_add(result >= 0 && result <= 3
			? (enum metrics_cell)(MC_LOGIN_OK + result)
			: MC_LOGIN_TEMP,
		    1);
}

void
metrics_refused(void *ctx, const char *reason)
{
	/* messages (MC_REFUSED_SIZE on), then recipients (MC_RREFUSED_HOUR
	   on), in the order of their cells in metrics.h */
	static const char *const words[] = {"size", "content", "loop",
					    "from_not_owned"};
	static const char *const rcpt_words[] = {
	    "send_limit_hour", "send_limit_day", "new_recipients_day",
	    "send_burst"};
	enum metrics_cell id = MC_REFUSED_TEMP;

	(void)ctx;
	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
		if (reason != NULL && strcmp(reason, words[i]) == 0)
			id = (enum metrics_cell)(MC_REFUSED_SIZE + i);
	for (size_t i = 0; i < sizeof(rcpt_words) / sizeof(*rcpt_words); i++)
		if (reason != NULL && strcmp(reason, rcpt_words[i]) == 0)
			id = (enum metrics_cell)(MC_RREFUSED_HOUR + i);
	metrics_add(id, 1);
}

void
metrics_delivery(const char *status, double age)
{
	if (strcmp(status, "sent") == 0) {
		metrics_add(MC_DELIVERY_SENT, 1);
		metrics_observe(MH_DELIVERY, age);
	} else if (strcmp(status, "deferred") == 0) {
		metrics_add(MC_DELIVERY_DEFERRED, 1);
	} else {
		metrics_add(MC_DELIVERY_BOUNCED, 1);
	}
}

/* Count one in the ring entry of period `p`; only this process writes
   the slot's rings. */
static void
metrics_ring_add(struct metrics_ring *ring, size_t n, uint64_t p)
{
	struct metrics_ring *e = &ring[p % n];

	if (atomic_load_explicit(&e->stamp, memory_order_relaxed) != p) {
		atomic_store_explicit(&e->count, 0, memory_order_relaxed);
		atomic_store_explicit(&e->stamp, p, memory_order_release);
	}
	atomic_fetch_add_explicit(&e->count, 1, memory_order_relaxed);
}

void
metrics_message(int role, int result, uint64_t rcpts, uint64_t bytes)
{
	uint64_t now = (uint64_t)time(NULL);

	if (result != 0) {
		metrics_add(MC_REFUSED_TEMP, 1);
		return;
	}
	metrics_role_add(MC_MSG_MX, role, 1);
	metrics_role_add(MC_RCPT_MX, role, (int64_t)rcpts);
	metrics_role_add(MC_BYTES_MX, role, (int64_t)bytes);
	metrics_ring_add(metrics_me->minute, METRICS_MINUTES, now / 60);
	metrics_ring_add(metrics_me->hour, METRICS_HOURS, now / 3600);
}

double
metrics_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- readers --------------------------------------------------------- */

/* Sum the entries of the last `n` periods up to `p` (this one included). */
static uint64_t
metrics_ring_sum(const struct metrics_ring *ring, size_t n, uint64_t p)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t s = atomic_load_explicit(&ring[i].stamp,
						  memory_order_acquire);

		if (s <= p && p - s < n)
			sum += atomic_load_explicit(&ring[i].count,
						    memory_order_relaxed);
	}
	return sum;
}

static void
metrics_read_slot(const struct metrics_slot *s, struct metrics_snapshot *snap)
{
	uint64_t now = (uint64_t)snap->now;

	for (size_t c = 0; c < METRICS_N_CELLS; c++)
		snap->cell[c] += (int64_t)atomic_load_explicit(
		    &s->cell[c], memory_order_relaxed);
	for (size_t h = 0; h < METRICS_N_HIST; h++) {
		for (size_t b = 0; b <= METRICS_BUCKETS; b++)
			snap->bucket[h][b] += atomic_load_explicit(
			    &s->bucket[h][b], memory_order_relaxed);
		snap->sum_ns[h] += atomic_load_explicit(&s->sum_ns[h],
							memory_order_relaxed);
	}
	snap->last_hour += metrics_ring_sum(s->minute, METRICS_MINUTES,
					    now / 60);
	snap->last_day += metrics_ring_sum(s->hour, METRICS_HOURS, now / 3600);
}

void
metrics_read(const struct metrics_map *map, int64_t now,
	     struct metrics_snapshot *snap)
{
	memset(snap, 0, sizeof(*snap));
	snap->now = now;
	if (map == NULL || map->file == NULL)
		return;
	for (size_t i = 0; i < METRICS_N_SLOTS; i++)
		metrics_read_slot(&map->file->slot[i], snap);
}
