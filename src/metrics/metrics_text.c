/*
 * metrics_text.c - a snapshot as the Prometheus text format 0.0.4 or as
 * OpenMetrics 1.0.0, written by hand (no C client library is packaged).
 * No I/O but the stream it is given; no label comes from a client.
 */
#include "metrics/metrics_text.h"

#include <stdbool.h>

#include "metrics/metrics_int.h"

struct metrics_fam {
	const char *name;
	enum metrics_type type;
	const char *help;
};

#define METRICS_FAM_ROW(id, n, t, h) [MF_##id] = {n, t, h},
static const struct metrics_fam metrics_fams[] = {
    METRICS_FAMILIES(METRICS_FAM_ROW)};
#undef METRICS_FAM_ROW

struct metrics_series {
	enum metrics_family fam;
	const char *labels;
};

#define METRICS_SERIES_ROW(id, fam, labels) [id] = {MF_##fam, labels},
static const struct metrics_series metrics_series[] = {
    METRICS_CELLS(METRICS_SERIES_ROW)};
#undef METRICS_SERIES_ROW

static const struct metrics_fam metrics_hists[METRICS_N_HIST] = {
    [MH_GUARD_VERIFY] = {"postern_guard_verify_seconds", MT_HISTOGRAM,
			 "Time of one password verification in a hashing "
			 "thread of the guard."},
    [MH_SPOOL_COMMIT] = {"postern_spool_commit_seconds", MT_HISTOGRAM,
			 "Time of one group commit of the spool (a batch "
			 "of messages made durable)."},
    [MH_DELIVERY] = {"postern_delivery_seconds", MT_HISTOGRAM,
		     "Time from acceptance to delivery, per recipient "
		     "delivered."},
};

static const char *const metrics_type_names[] = {
    [MT_COUNTER] = "counter",
    [MT_GAUGE] = "gauge",
    [MT_HISTOGRAM] = "histogram",
};

/* HELP and TYPE. OpenMetrics names the counter family without `_total`
   (its samples have it); the 0.0.4 format names the samples' name. */
static void
metrics_text_head(FILE *out, const struct metrics_fam *f, bool om)
{
	const char *total = f->type == MT_COUNTER && !om ? "_total" : "";

	fprintf(out, "# HELP %s%s %s\n# TYPE %s%s %s\n", f->name, total,
		f->help, f->name, total, metrics_type_names[f->type]);
}

/* The value of cell `c` as exported: the oldest message's arrival time
   becomes its age. */
static int64_t
metrics_text_value(const struct metrics_snapshot *snap, size_t c)
{
	if (c == MG_QUEUE_OLDEST) {
		int64_t t = snap->cell[c];

		return t > 0 && snap->now > t ? snap->now - t : 0;
	}
	return snap->cell[c];
}

static void
metrics_text_family(FILE *out, const struct metrics_snapshot *snap,
		    enum metrics_family fam, bool om)
{
	const struct metrics_fam *f = &metrics_fams[fam];
	const char *total = f->type == MT_COUNTER ? "_total" : "";

	metrics_text_head(out, f, om);
	for (size_t c = 0; c < METRICS_N_CELLS; c++) {
		const struct metrics_series *s = &metrics_series[c];
		int64_t v = metrics_text_value(snap, c);

		if (s->fam != fam)
			continue;
		if (f->type == MT_COUNTER && v < 0)
			v = 0; /* torn read of a counter: never negative */
		if (s->labels[0] != '\0')
			fprintf(out, "%s%s{%s} %lld\n", f->name, total,
				s->labels, (long long)v);
		else
			fprintf(out, "%s%s %lld\n", f->name, total,
				(long long)v);
	}
}

static void
metrics_text_hist(FILE *out, const struct metrics_snapshot *snap,
		  enum metrics_hist h, bool om)
{
	const struct metrics_fam *f = &metrics_hists[h];
	uint64_t cum = 0;

	metrics_text_head(out, f, om);
	for (size_t b = 0; b < METRICS_BUCKETS; b++) {
		cum += snap->bucket[h][b];
		fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", f->name,
			metrics_bounds[h][b], (unsigned long long)cum);
	}
	cum += snap->bucket[h][METRICS_BUCKETS];
	fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", f->name,
		(unsigned long long)cum);
	fprintf(out, "%s_sum %.9f\n%s_count %llu\n", f->name,
		(double)snap->sum_ns[h] / 1e9, f->name,
		(unsigned long long)cum);
}

int
metrics_text_write(FILE *out, const struct metrics_snapshot *snap,
		   enum metrics_format format)
{
	bool om = format == METRICS_OPENMETRICS;

	for (size_t fam = 0; fam < METRICS_N_FAMILIES; fam++)
		metrics_text_family(out, snap, (enum metrics_family)fam, om);
	for (size_t h = 0; h < METRICS_N_HIST; h++)
		metrics_text_hist(out, snap, (enum metrics_hist)h, om);
	if (om)
		fputs("# EOF\n", out);
	return ferror(out) ? -1 : 0;
}

const char *
metrics_text_content_type(enum metrics_format format)
{
	return format == METRICS_OPENMETRICS
		   ? "application/openmetrics-text; version=1.0.0; "
		     "charset=utf-8"
		   : "text/plain; version=0.0.4; charset=utf-8";
}
