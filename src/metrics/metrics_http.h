/*
 * metrics_http.h - the metrics endpoint (metrics-listen, docs/metrics.md):
 * a small process of its own, unprivileged, the mapping read-only,
 * serving GET and HEAD of /metrics with libevent's evhttp.
 */
#ifndef POSTERN_METRICS_HTTP_H
#define POSTERN_METRICS_HTTP_H

#include <stdbool.h>

#include "conf/config.h"
#include "metrics/metrics.h"

#define METRICS_HTTP_TIMEOUT 10	      /* seconds for a whole request */
#define METRICS_HTTP_HEADERS_MAX 8192 /* request line and headers */

/* Bind the endpoint (the master, at start, while root). The listening
   socket, or -1 with error_r. */
int metrics_http_bind(const struct config_listener *l, const char **error_r);

/* Serve `fd` until SIGTERM; `map` is read-only already, privileges are
   dropped. `sandbox` applies the sandbox first. Never returns. */
void metrics_http_main(int fd, struct metrics_map *map, bool sandbox)
    __attribute__((noreturn));

#endif
