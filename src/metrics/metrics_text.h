/*
 * metrics_text.h - the exposition formats (docs/metrics.md): Prometheus
 * text 0.0.4 and OpenMetrics 1.0.0.
 */
#ifndef POSTERN_METRICS_TEXT_H
#define POSTERN_METRICS_TEXT_H

#include <stdio.h>

#include "metrics/metrics.h"

enum metrics_format {
	METRICS_TEXT = 0,    /* text/plain; version=0.0.4 */
	METRICS_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
};

/* Write every family of `snap` to `out`. 0, or -1 when `out` failed. */
int metrics_text_write(FILE *out, const struct metrics_snapshot *snap,
		       enum metrics_format format);
/* The Content-Type of `format`. */
const char *metrics_text_content_type(enum metrics_format format);

#endif
