/*
 * fuzz_metrics_req.c - libFuzzer harness for the metrics endpoint's
 * request parser (src/metrics/metrics_req.c): the method, the request
 * target and the Accept header a scraper (or anyone who reaches the
 * port) sends.
 *
 * Input: byte 0 picks the method (and whether there is an Accept
 * header), then the target up to the first '\n', then the Accept value.
 * Oracles, besides the sanitizers:
 *  - the status is 200, 404 or 405, and 200 only for GET or HEAD of
 *    /metrics[?...]; the format is one of the two;
 *  - a range of another type appended to an Accept header without
 *    quotes (",x/y") never changes the format;
 *  - bytes past METRICS_REQ_ACCEPT_MAX are never read for the decision.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_req.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {"GET", "HEAD", "POST", "OTHER"};

static void
check_accept(const char *acc, size_t len)
{
	enum metrics_format f = metrics_req_accept(acc, len);
	char *more;

	CHECK(f == METRICS_TEXT || f == METRICS_OPENMETRICS);
	if (memchr(acc, '"', len) != NULL || len + 4 > METRICS_REQ_ACCEPT_MAX)
		return;
	more = malloc(len + 4);
	if (more == NULL)
		return;
	memcpy(more, acc, len);
	memcpy(more + len, ",x/y", 4);
	CHECK(metrics_req_accept(more, len + 4) == f);
	free(more);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *method, *uri, *acc = NULL;
	const uint8_t *nl;
	size_t uri_len, acc_len = 0;
	struct metrics_req r;

	if (size < 1)
		return 0;
	method = methods[data[0] & 3];
	data++;
	size--;
	nl = memchr(data, '\n', size);
	uri = (const char *)data;
	uri_len = nl != NULL ? (size_t)(nl - data) : size;
	if (nl != NULL && !(data[-1] & 4)) {
		acc = (const char *)nl + 1;
		acc_len = size - uri_len - 1;
	}
	metrics_req_parse(method, uri, uri_len, acc, acc_len, &r);
	CHECK(r.status == 200 || r.status == 404 || r.status == 405);
	CHECK(r.format == METRICS_TEXT || r.format == METRICS_OPENMETRICS);
	if (r.status == 200) {
		CHECK(uri_len >= 8 && memcmp(uri, "/metrics", 8) == 0);
		CHECK(uri_len == 8 || uri[8] == '?');
		CHECK(strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
		CHECK(r.is_head == (strcmp(method, "HEAD") == 0));
	}
	if (acc != NULL) {
		check_accept(acc, acc_len);
		if (acc_len > METRICS_REQ_ACCEPT_MAX)
			CHECK(metrics_req_accept(acc, acc_len) ==
			      metrics_req_accept(acc, METRICS_REQ_ACCEPT_MAX));
	}
	return 0;
}
