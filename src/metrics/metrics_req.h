/*
 * metrics_req.h - what a scrape asks for: the method and path of the
 * request, and the format from its Accept header (RFC 9110 12.5.1).
 * No I/O; every byte is the client's (fuzzed: tests/fuzz/metrics/).
 */
#ifndef POSTERN_METRICS_REQ_H
#define POSTERN_METRICS_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics/metrics_text.h"

#define METRICS_REQ_ACCEPT_MAX 2048 /* longer: the rest is not read */

struct metrics_req {
	int status;		    /* 200, 404 or 405 */
	bool is_head;		    /* no body */
	enum metrics_format format; /* when 200 */
};

/*
 * `method` is "GET", "HEAD", ... (as the HTTP library names it), `uri`
 * the request target, `accept` the Accept header's value or NULL. Only
 * GET and HEAD of /metrics (a query string is ignored) are served: any
 * other path is 404, any other method on it 405 (RFC 9110 15.5.6).
 */
void metrics_req_parse(const char *method, const char *uri, size_t uri_len,
		       const char *accept, size_t accept_len,
		       struct metrics_req *r);

/* The format the Accept header asks for (the whole rule in
   docs/metrics.md): OpenMetrics when it is acceptable with a weight at
   least that of the text format, the text format otherwise. */
enum metrics_format metrics_req_accept(const char *accept, size_t len);

#endif
