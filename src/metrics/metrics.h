/*
 * metrics.h - counters, gauges and histograms shared by every process of
 * the server (docs/metrics.md).
 *
 * The master creates one file-backed shared mapping before it forks
 * (<control-socket directory>/metrics, mode 0640, group admin-group).
 * It holds one slot per process: every worker, the guard, the queue
 * process and the master write only their own slot, so no two processes
 * write the same cache line; the reader (the HTTP endpoint, `postern
 * status`) sums the slots. Counters and histogram buckets are 64-bit
 * cells with relaxed atomic adds; a gauge is set by its one owner.
 *
 * A process that never attached (tests, the CLI) writes into a private
 * dummy slot: every call below is always safe and never fails.
 */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The series, one cell each: X(id, family, labels). Families and their
   help texts are in metrics.c; the ids are grouped so that a label can
   be added to a base (metrics_conn(), ...). */
#define METRICS_CELLS(X)                                                     \
	X(MC_CONN_MX_ACCEPTED, CONNECTIONS, "role=\"mx\",result=\"accepted\"") \
	X(MC_CONN_MX_LOCKED, CONNECTIONS, "role=\"mx\",result=\"locked\"")     \
	X(MC_CONN_MX_LIMIT, CONNECTIONS, "role=\"mx\",result=\"conn_limit\"")  \
	X(MC_CONN_MX_RATE, CONNECTIONS, "role=\"mx\",result=\"conn_rate\"")    \
	X(MC_CONN_MX_MAX, CONNECTIONS, "role=\"mx\",result=\"max_sessions\"")  \
	X(MC_CONN_MX_SHUTDOWN, CONNECTIONS, "role=\"mx\",result=\"shutdown\"") \
	X(MC_CONN_SUB_ACCEPTED, CONNECTIONS,                                   \
	  "role=\"submission\",result=\"accepted\"")                           \
	X(MC_CONN_SUB_LOCKED, CONNECTIONS,                                     \
	  "role=\"submission\",result=\"locked\"")                             \
	X(MC_CONN_SUB_LIMIT, CONNECTIONS,                                      \
	  "role=\"submission\",result=\"conn_limit\"")                         \
	X(MC_CONN_SUB_RATE, CONNECTIONS,                                       \
	  "role=\"submission\",result=\"conn_rate\"")                          \
	X(MC_CONN_SUB_MAX, CONNECTIONS,                                        \
	  "role=\"submission\",result=\"max_sessions\"")                       \
	X(MC_CONN_SUB_SHUTDOWN, CONNECTIONS,                                   \
	  "role=\"submission\",result=\"shutdown\"")                           \
	X(MC_CONN_SUBS_ACCEPTED, CONNECTIONS,                                  \
	  "role=\"submissions\",result=\"accepted\"")                          \
	X(MC_CONN_SUBS_LOCKED, CONNECTIONS,                                    \
	  "role=\"submissions\",result=\"locked\"")                            \
	X(MC_CONN_SUBS_LIMIT, CONNECTIONS,                                     \
	  "role=\"submissions\",result=\"conn_limit\"")                        \
	X(MC_CONN_SUBS_RATE, CONNECTIONS,                                      \
	  "role=\"submissions\",result=\"conn_rate\"")                         \
	X(MC_CONN_SUBS_MAX, CONNECTIONS,                                       \
	  "role=\"submissions\",result=\"max_sessions\"")                      \
	X(MC_CONN_SUBS_SHUTDOWN, CONNECTIONS,                                  \
	  "role=\"submissions\",result=\"shutdown\"")                          \
	X(MG_SESSIONS_MX, SESSIONS, "role=\"mx\"")                             \
	X(MG_SESSIONS_SUB, SESSIONS, "role=\"submission\"")                    \
	X(MG_SESSIONS_SUBS, SESSIONS, "role=\"submissions\"")                  \
	X(MC_MSG_MX, MESSAGES, "role=\"mx\"")                                  \
	X(MC_MSG_SUB, MESSAGES, "role=\"submission\"")                         \
	X(MC_MSG_SUBS, MESSAGES, "role=\"submissions\"")                       \
	X(MC_RCPT_MX, RCPTS, "role=\"mx\"")                                    \
	X(MC_RCPT_SUB, RCPTS, "role=\"submission\"")                           \
	X(MC_RCPT_SUBS, RCPTS, "role=\"submissions\"")                         \
	X(MC_BYTES_MX, BYTES, "role=\"mx\"")                                   \
	X(MC_BYTES_SUB, BYTES, "role=\"submission\"")                          \
	X(MC_BYTES_SUBS, BYTES, "role=\"submissions\"")                        \
	X(MC_REFUSED_SIZE, REFUSED, "reason=\"size\"")                         \
	X(MC_REFUSED_CONTENT, REFUSED, "reason=\"content\"")                   \
	X(MC_REFUSED_LOOP, REFUSED, "reason=\"loop\"")                         \
	X(MC_REFUSED_FROM, REFUSED, "reason=\"from_not_owned\"")               \
	X(MC_REFUSED_TEMP, REFUSED, "reason=\"tempfail\"")                     \
	X(MC_RREFUSED_HOUR, RCPTS_REFUSED, "reason=\"send_limit_hour\"")       \
	X(MC_RREFUSED_DAY, RCPTS_REFUSED, "reason=\"send_limit_day\"")         \
	X(MC_RREFUSED_NEW, RCPTS_REFUSED, "reason=\"new_recipients_day\"")     \
	X(MC_RREFUSED_BURST, RCPTS_REFUSED, "reason=\"send_burst\"")           \
	X(MC_LOGIN_OK, LOGINS, "result=\"success\"")                           \
	X(MC_LOGIN_FAIL, LOGINS, "result=\"failure\"")                         \
	X(MC_LOGIN_LOCKED, LOGINS, "result=\"locked\"")                        \
	X(MC_LOGIN_TEMP, LOGINS, "result=\"tempfail\"")                        \
	X(MG_LOCKS_ACCOUNT, LOCKS, "kind=\"account\"")                         \
	X(MG_LOCKS_ADDRESS, LOCKS, "kind=\"address\"")                         \
	X(MG_LOCKS_NETWORK, LOCKS, "kind=\"network\"")                         \
	X(MC_ALARM_BURST, ALARMS, "kind=\"send_burst\"")                       \
	X(MC_ALARM_NETWORKS, ALARMS, "kind=\"login_networks\"")                \
	X(MG_HELD, HELD, "")                                                   \
	X(MG_HASH_QUEUE, HASH_QUEUE, "")                                       \
	X(MC_RESTARTS, RESTARTS, "")                                           \
	X(MG_QUEUE_MSGS, QUEUE_MSGS, "")                                       \
	X(MG_QUEUE_RCPTS, QUEUE_RCPTS, "")                                     \
	X(MG_QUEUE_OLDEST, QUEUE_OLDEST, "")                                   \
	X(MC_DELIVERY_SENT, DELIVERIES, "status=\"sent\"")                     \
	X(MC_DELIVERY_DEFERRED, DELIVERIES, "status=\"deferred\"")             \
	X(MC_DELIVERY_BOUNCED, DELIVERIES, "status=\"bounced\"")               \
	X(MC_TLS_FAIL_IN, TLS_FAIL, "direction=\"inbound\"")                   \
	X(MC_TLS_FAIL_OUT, TLS_FAIL, "direction=\"outbound\"")                 \
	X(MG_START_TIME, START_TIME, "")

#define METRICS_ENUM(id, fam, labels) id,
enum metrics_cell { METRICS_CELLS(METRICS_ENUM) METRICS_N_CELLS };
#undef METRICS_ENUM

/* How a connection ended before (or when) its session started. */
enum metrics_conn_result {
	METRICS_CONN_ACCEPTED = 0,
	METRICS_CONN_LOCKED,
	METRICS_CONN_LIMIT,
	METRICS_CONN_RATE,
	METRICS_CONN_MAX_SESSIONS,
	METRICS_CONN_SHUTDOWN,
	METRICS_CONN_RESULTS
};

/* The histograms, in base units (seconds). */
enum metrics_hist {
	MH_GUARD_VERIFY = 0, /* one password verification */
	MH_SPOOL_COMMIT,     /* one group commit (batch) */
	MH_DELIVERY,	     /* arrival to delivery, per recipient */
	METRICS_N_HIST
};
#define METRICS_BUCKETS 12 /* finite bounds; +Inf is one more */

/* The slots: workers (their worker slot), then one per other process. */
#define METRICS_WORKER_SLOTS 256
enum metrics_slot_id {
	METRICS_SLOT_GUARD = METRICS_WORKER_SLOTS,
	METRICS_SLOT_QUEUE,
	METRICS_SLOT_MASTER,
	METRICS_N_SLOTS
};

/* Per-minute and per-hour rings of accepted messages (`postern status`). */
#define METRICS_MINUTES 60
#define METRICS_HOURS 24

struct metrics_map;

/*
 * The master: create (or reuse) the file `path`, mode 0640, group `gid`
 * (-1: leave it), sized for every slot, and map it shared. A file of
 * another layout is reset. 0, or -1 with error_r.
 */
int metrics_create(const char *path, long gid, struct metrics_map **map_r,
		   const char **error_r);
/* A reader: map `path` read-only. 0, or -1 with error_r. */
int metrics_open(const char *path, struct metrics_map **map_r,
		 const char **error_r);
void metrics_close(struct metrics_map **map);
/* Re-map read-only (from a descriptor opened read-only, so that
   mprotect cannot give write access back): the HTTP process, while it is
   still allowed to open the file. */
int metrics_reopen_readonly(struct metrics_map *map, const char **error_r);

/* This process writes into slot `slot` of `map` from now on (after fork).
   NULL: the private dummy slot. */
void metrics_attach(struct metrics_map *map, unsigned slot);
/* A dead process's gauges go to 0 (the master, for a worker's slot);
   its counters stay: the next process of that slot adds to them. */
void metrics_slot_reset_gauges(struct metrics_map *map, unsigned slot);

/* The path of the mapping: the control socket's directory + "/metrics". */
int metrics_path(const char *control_socket, char *buf, size_t size);

/* --- writers (this process's slot) ----------------------------------- */

void metrics_add(enum metrics_cell id, uint64_t n);
void metrics_gauge_add(enum metrics_cell id, int64_t n);
void metrics_gauge_set(enum metrics_cell id, int64_t v);
void metrics_observe(enum metrics_hist h, double seconds);
/* A connection of `role` (enum listen_role) ended as `result` (enum
   metrics_conn_result, which has the order of guard.h's results). */
void metrics_conn(int role, int result);
/* Add `n` to the cell of `role` from the mx cell of a role family. */
void metrics_role_add(enum metrics_cell mx_id, int role, int64_t n);
/* An AUTH verdict: 0 success, 1 failure, 2 locked, 3 tempfail (the
   order of guard.h's enum guard_auth_result). */
void metrics_login(int result);
/* A message refused at its end, or a recipient refused by a send limit,
   `reason` as session.h's refused hook says it (that hook's signature:
   `ctx` is not used). */
void metrics_refused(void *ctx, const char *reason);
/* The queue recorded `status` ("sent", "deferred", "bounced") for one
   recipient of a message that arrived `age` seconds ago. */
void metrics_delivery(const char *status, double age);
/* The commit of a message ended: `result` 0 (accepted: the counters and
   the rings) or -1 (refused, reason tempfail). */
void metrics_message(int role, int result, uint64_t rcpts, uint64_t bytes);
/* Seconds on a monotonic clock, for durations. */
double metrics_now(void);

/* --- readers ------------------------------------------------------- */

struct metrics_snapshot {
	int64_t cell[METRICS_N_CELLS];
	uint64_t bucket[METRICS_N_HIST][METRICS_BUCKETS + 1];
	uint64_t sum_ns[METRICS_N_HIST];
	uint64_t last_hour, last_day; /* accepted messages */
	int64_t now;		      /* wall clock, seconds */
};

/* Sum every slot of `map` at wall-clock time `now`. */
void metrics_read(const struct metrics_map *map, int64_t now,
		  struct metrics_snapshot *snap);

#endif
