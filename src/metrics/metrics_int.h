/*
 * metrics_int.h - the layout of the shared mapping and the families
 * (metrics.c, metrics_text.c).
 */
#ifndef POSTERN_METRICS_INT_H
#define POSTERN_METRICS_INT_H

#include <stdatomic.h>

#include "metrics/metrics.h"

#define METRICS_MAGIC 0x706f73746d657431ull /* "postmet1" */

/* One ring entry: the minute (or hour) since the epoch it counts, and
   the count. Only the slot's owner writes it. */
struct metrics_ring {
	_Atomic uint64_t stamp;
	_Atomic uint64_t count;
};

/* One process's slot, cache-line aligned. */
struct metrics_slot {
	_Atomic uint64_t cell[METRICS_N_CELLS];
	_Atomic uint64_t bucket[METRICS_N_HIST][METRICS_BUCKETS + 1];
	_Atomic uint64_t sum_ns[METRICS_N_HIST];
	struct metrics_ring minute[METRICS_MINUTES];
	struct metrics_ring hour[METRICS_HOURS];
} __attribute__((aligned(64)));

struct metrics_file {
	uint64_t magic;
	uint64_t size; /* of the whole file: the layout's fingerprint */
	uint64_t n_slots;
	uint64_t reserved[5];
	struct metrics_slot slot[METRICS_N_SLOTS];
};

struct metrics_map {
	struct metrics_file *file;
	char path[4096];
	bool is_writable;
};

enum metrics_type { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM };

/* F(id, name without _total, type, help). Counters get `_total` on their
   samples; the OpenMetrics family name has no suffix. */
#define METRICS_FAMILIES(F)                                                 \
	F(CONNECTIONS, "postern_connections", MT_COUNTER,                    \
	  "Connections by listener role and how they ended before or at "    \
	  "the session start.")                                              \
	F(SESSIONS, "postern_sessions_open", MT_GAUGE,                       \
	  "SMTP sessions open now, by listener role.")                       \
	F(MESSAGES, "postern_messages_accepted", MT_COUNTER,                 \
	  "Messages accepted (durable, 250 sent), by listener role.")        \
	F(REFUSED, "postern_messages_refused", MT_COUNTER,                   \
	  "Messages refused at the end of their content, by reason.")        \
	F(RCPTS, "postern_recipients_accepted", MT_COUNTER,                  \
	  "Recipients of accepted messages, by listener role.")              \
	F(RCPTS_REFUSED, "postern_recipients_refused", MT_COUNTER,           \
	  "Recipients refused at RCPT by a send limit or the volume "        \
	  "alarm, by reason.")                                               \
	F(BYTES, "postern_received_bytes", MT_COUNTER,                       \
	  "Octets of accepted messages as stored, by listener role.")        \
	F(LOGINS, "postern_logins", MT_COUNTER, "AUTH attempts by result.")  \
	F(LOCKS, "postern_locks_active", MT_GAUGE,                           \
	  "Lockout locks in force, by kind.")                                \
	F(ALARMS, "postern_alarms", MT_COUNTER, "Abuse alarms raised, by kind.") \
	F(HELD, "postern_held_messages", MT_GAUGE,                           \
	  "Messages held in the outbound queue.")                            \
	F(HASH_QUEUE, "postern_guard_hash_queue_length", MT_GAUGE,           \
	  "Password verifications waiting for a hashing thread.")            \
	F(RESTARTS, "postern_worker_restarts", MT_COUNTER,                   \
	  "Workers that died and were started again by the master.")         \
	F(QUEUE_MSGS, "postern_queue_messages", MT_GAUGE,                    \
	  "Messages in the outbound queue.")                                 \
	F(QUEUE_RCPTS, "postern_queue_recipients", MT_GAUGE,                 \
	  "Recipients in the outbound queue not yet delivered or bounced.")  \
	F(QUEUE_OLDEST, "postern_queue_oldest_message_age_seconds",          \
	  MT_GAUGE, "Age of the oldest message in the outbound queue.")      \
	F(DELIVERIES, "postern_deliveries", MT_COUNTER,                      \
	  "Outbound delivery attempts per recipient, by outcome.")           \
	F(TLS_FAIL, "postern_tls_handshake_failures", MT_COUNTER,            \
	  "TLS handshakes that failed, by direction.")                       \
	F(START_TIME, "postern_start_time_seconds", MT_GAUGE,                \
	  "When the master started, seconds since the Unix epoch.")

/* Upper bounds of the histogram buckets, seconds (metrics.c). */
extern const double metrics_bounds[METRICS_N_HIST][METRICS_BUCKETS];

#define METRICS_FAM_ENUM(id, name, type, help) MF_##id,
enum metrics_family { METRICS_FAMILIES(METRICS_FAM_ENUM) METRICS_N_FAMILIES };
#undef METRICS_FAM_ENUM

#endif
