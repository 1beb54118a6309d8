/*
 * metrics_http.c - the metrics endpoint process. See metrics_http.h.
 *
 * Each scrape sums the slots of the mapping and writes the exposition
 * by hand (metrics_text.c); what was asked is decided by metrics_req.c.
 * evhttp bounds the request (headers, body) and times out slow clients.
 */
#include "metrics/metrics_http.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "lib/log.h"
#include "lib/sandbox.h"
#include "metrics/metrics_req.h"

int
metrics_http_bind(const struct config_listener *l, const char **error_r)
{
	int on = 1;
	int fd = socket(l->addr.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addr_len) < 0 ||
	    listen(fd, 64) < 0) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

static const char *
metrics_http_method(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	default:
		return "OTHER";
	}
}

/* Write the exposition into `body`; -1 out of memory. */
static int
metrics_http_body(const struct metrics_map *map, enum metrics_format format,
		  struct evbuffer *body)
{
	struct metrics_snapshot snap;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int rc;

	if (f == NULL)
		return -1;
	metrics_read(map, (int64_t)time(NULL), &snap);
	rc = metrics_text_write(f, &snap, format);
	if (fclose(f) != 0)
		rc = -1;
	if (rc == 0 && evbuffer_add(body, text, len) < 0)
		rc = -1;
	free(text);
	return rc;
}

static void
metrics_http_cb(struct evhttp_request *req, void *arg)
{
	const struct metrics_map *map = arg;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const char *uri = evhttp_request_get_uri(req);
	const char *accept = evhttp_find_header(in, "Accept");
	struct evbuffer *body = evbuffer_new();
	struct metrics_req r;

	metrics_req_parse(metrics_http_method(evhttp_request_get_command(req)),
			  uri, uri != NULL ? strlen(uri) : 0, accept,
			  accept != NULL ? strlen(accept) : 0, &r);
	if (body == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (r.status == 405) {
		/* evhttp_send_error() would drop the Allow header. */
		evhttp_add_header(out, "Allow", "GET, HEAD");
		evhttp_add_header(out, "Content-Type", "text/plain");
		evbuffer_add_printf(body, "405 only GET and HEAD of /metrics\n");
		evhttp_send_reply(req, 405, "Method Not Allowed", body);
	} else if (r.status != 200) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
	} else if (metrics_http_body(map, r.format, body) < 0) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
	} else {
		evhttp_add_header(out, "Content-Type",
				  metrics_text_content_type(r.format));
		/* evhttp sends the headers of a HEAD answer without its
		   body. */
		evhttp_send_reply(req, HTTP_OK, "OK", body);
	}
	evbuffer_free(body);
}

static void
metrics_http_term(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

void
metrics_http_main(int fd, struct metrics_map *map, bool sandbox)
{
	struct event_base *base = event_base_new();
	struct evhttp *http = base != NULL ? evhttp_new(base) : NULL;
	struct event *term;

	if (http == NULL)
		_exit(2);
	/* Every method reaches the callback, which answers 405 with Allow
	   (evhttp alone would answer 501 to a method it was not told of). */
	evhttp_set_allowed_methods(
	    http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
		      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		      EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
		      EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(http, METRICS_HTTP_HEADERS_MAX);
	evhttp_set_max_body_size(http, 0);
	evhttp_set_timeout(http, METRICS_HTTP_TIMEOUT);
	evhttp_set_gencb(http, metrics_http_cb, map);
	if (evhttp_accept_socket(http, fd) < 0)
		_exit(2);
	term = evsignal_new(base, SIGTERM, metrics_http_term, base);
	if (term == NULL || event_add(term, NULL) < 0)
		_exit(2);
	if (sandbox_metrics(sandbox) < 0)
		_exit(2);
	log_info("-", "metrics started pid=%ld", (long)getpid());
	event_base_dispatch(base);
	event_free(term);
	evhttp_free(http);
	event_base_free(base);
	metrics_close(&map);
	_exit(0);
}
