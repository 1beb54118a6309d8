/*
 * probe_conn.c - one client connection of `postern probe`: a non-blocking
 * socket driven with poll(2), each operation (connect, one reply, one
 * write, a handshake) bounded by the --timeout deadline and every loop by
 * a count. Plain text or TLS (OpenSSL over the same descriptor). Replies
 * are read with the resumable reader of smtp/peer_reply.c, so bytes that
 * arrive early (pipelining) wait in the buffer for the next reply.
 */
#include "probe/probe_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

/* No operation loops more often than this, whatever the deadline. */
#define PROBE_CONN_SPINS 100000

/* Connections open now and at most, in this process: the report's note
   says when more than one was open at once (only --intrusive does). */
static unsigned probe_conn_now, probe_conn_most;

unsigned
probe_conn_max_open(void)
{
	return probe_conn_most;
}

static long long
probe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int probe_conn_fail(struct probe_conn *c, const char *fmt, ...)
    LOG_PRINTF(2, 3);

static int
probe_conn_fail(struct probe_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return -1;
}

void
probe_conn_init(struct probe_conn *c, unsigned timeout_s)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_s * 1000;
	peer_reply_init(&c->reader);
}

bool
probe_conn_is_open(const struct probe_conn *c)
{
	return c->fd >= 0;
}

/* Close; the timeout and the last error stay (callers report it). */
void
probe_conn_close(struct probe_conn *c)
{
	char error[sizeof(c->error)];
	unsigned ms = c->timeout_ms;

	memcpy(error, c->error, sizeof(error));
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd >= 0) {
		close(c->fd);
		probe_conn_now--;
	}
	probe_conn_init(c, 0);
	c->timeout_ms = ms;
	memcpy(c->error, error, sizeof(error));
}

/* Wait until fd is ready for `events` or the deadline passes. 1 ready,
   0 timeout, -1 error. */
static int
probe_conn_poll(struct probe_conn *c, short events, long long deadline)
{
	struct pollfd pfd = {.fd = c->fd, .events = events};
	long long left;
	int n;

	for (int spins = 0; spins < PROBE_CONN_SPINS; spins++) {
		left = deadline - probe_now_ms();
		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

int
probe_conn_open(struct probe_conn *c, const struct sockaddr *sa, socklen_t len)
{
	int err = 0, rc;
	socklen_t elen = sizeof(err);

	probe_conn_close(c);
	c->error[0] = '\0';
	c->fd = socket(sa->sa_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return probe_conn_fail(c, "socket: %s", strerror(errno));
	if (++probe_conn_now > probe_conn_most)
		probe_conn_most = probe_conn_now;
	if (connect(c->fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	rc = probe_conn_poll(c, POLLOUT, probe_now_ms() + c->timeout_ms);
	if (rc == 0) {
		probe_conn_close(c);
		return probe_conn_fail(c, "%s", "connection timed out");
	}
	if (rc < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = errno;
	if (err == 0)
		return 0;
fail:
	probe_conn_close(c);
	return probe_conn_fail(c, "%s", strerror(err));
}

/* Why the last TLS call failed, into c->error. */
static void
probe_conn_tls_error(struct probe_conn *c, const char *what, int ssl_err)
{
	char reason[200];
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	else if (ssl_err == SSL_ERROR_SYSCALL ||
		 ssl_err == SSL_ERROR_ZERO_RETURN)
		(void)snprintf(reason, sizeof(reason), "%s",
			       "connection closed by the server");
	else
		(void)snprintf(reason, sizeof(reason), "TLS error %d", ssl_err);
	/* "error:0A00042E:SSL routines::tlsv1 alert protocol version":
	   keep the words after the last colon. */
	const char *r = strrchr(reason, ':');

	(void)snprintf(c->error, sizeof(c->error), "%s: %s", what,
		       r != NULL && r[1] != '\0' ? r + 1 : reason);
	ERR_clear_error();
}

/*
 * Read what is there into c->buf (after moving unread bytes to its
 * start). >0 octets, 0 EOF, -1 timeout or error (c->error).
 */
static int
probe_conn_fill(struct probe_conn *c, long long deadline)
{
	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf))
		return probe_conn_fail(c, "%s", "reply buffer full");
	for (int spins = 0; spins < PROBE_CONN_SPINS; spins++) {
		size_t room = sizeof(c->buf) - c->len;
		short ev = POLLIN;
		ssize_t n;

		if (c->ssl != NULL) {
			ERR_clear_error();
			n = SSL_read(c->ssl, c->buf + c->len, (int)room);
			if (n > 0) {
				c->len += (size_t)n;
				return (int)n;
			}
			int e = SSL_get_error(c->ssl, (int)n);

			if (e == SSL_ERROR_ZERO_RETURN ||
			    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
				return 0;
			if (e == SSL_ERROR_WANT_WRITE)
				ev = POLLOUT;
			else if (e != SSL_ERROR_WANT_READ) {
				probe_conn_tls_error(c, "TLS read", e);
				return -1;
			}
		} else {
			n = read(c->fd, c->buf + c->len, room);
			if (n > 0) {
				c->len += (size_t)n;
				return (int)n;
			}
			if (n == 0)
				return 0;
			if (errno != EAGAIN && errno != EINTR)
				return probe_conn_fail(c, "read: %s",
						       strerror(errno));
		}
		int rc = probe_conn_poll(c, ev, deadline);

		if (rc == 0)
			return probe_conn_fail(c, "%s", "timed out");
		if (rc < 0)
			return probe_conn_fail(c, "poll: %s", strerror(errno));
	}
	return probe_conn_fail(c, "%s", "timed out");
}

int
probe_conn_send(struct probe_conn *c, const void *data, size_t len)
{
	const unsigned char *p = data;
	long long deadline = probe_now_ms() + c->timeout_ms;
	size_t done = 0;

	if (c->fd < 0)
		return probe_conn_fail(c, "%s", "not connected");
	for (int spins = 0; done < len && spins < PROBE_CONN_SPINS; spins++) {
		short ev = POLLOUT;
		ssize_t n;

		if (c->ssl != NULL) {
			ERR_clear_error();
			n = SSL_write(c->ssl, p + done, (int)(len - done));
			if (n > 0) {
				done += (size_t)n;
				continue;
			}
			int e = SSL_get_error(c->ssl, (int)n);

			if (e == SSL_ERROR_WANT_READ)
				ev = POLLIN;
			else if (e != SSL_ERROR_WANT_WRITE) {
				probe_conn_tls_error(c, "TLS write", e);
				return -1;
			}
		} else {
			n = send(c->fd, p + done, len - done, MSG_NOSIGNAL);
			if (n > 0) {
				done += (size_t)n;
				continue;
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return probe_conn_fail(c, "write: %s",
						       strerror(errno));
		}
		int rc = probe_conn_poll(c, ev, deadline);

		if (rc <= 0)
			return probe_conn_fail(c, "%s", "write timed out");
	}
	return done == len ? 0 : probe_conn_fail(c, "%s", "write timed out");
}

int
probe_conn_sendf(struct probe_conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return probe_conn_fail(c, "%s", "command too long");
	line[n++] = '\r';
	line[n++] = '\n';
	return probe_conn_send(c, line, (size_t)n);
}

int
probe_conn_reply(struct probe_conn *c, struct peer_reply *r)
{
	long long deadline = probe_now_ms() + c->timeout_ms;
	enum peer_reply_result st;
	size_t used;

	if (c->fd < 0)
		return probe_conn_fail(c, "%s", "not connected");
	for (int spins = 0; spins < PROBE_CONN_SPINS; spins++) {
		if (c->off < c->len) {
			st = peer_reply_feed(&c->reader,
					     (const char *)c->buf + c->off,
					     c->len - c->off, &used);
			c->off += used;
			if (st == PEER_REPLY_DONE) {
				*r = c->reader.reply;
				peer_reply_init(&c->reader);
				c->errors += r->code >= 400;
				return 0;
			}
			if (st == PEER_REPLY_ERROR)
				return probe_conn_fail(
				    c, "bad reply: %s",
				    peer_reply_error_text(c->reader.error));
		}
		if (c->eof)
			return probe_conn_fail(
			    c, "%s", "connection closed by the server");
		int n = probe_conn_fill(c, deadline);

		if (n < 0)
			return -1;
		if (n == 0)
			c->eof = true;
	}
	return probe_conn_fail(c, "%s", "timed out");
}

int
probe_conn_need(struct probe_conn *c, size_t n)
{
	long long deadline = probe_now_ms() + c->timeout_ms;

	if (n > sizeof(c->buf))
		return probe_conn_fail(c, "%s", "record too long");
	for (int spins = 0; c->len - c->off < n && spins < PROBE_CONN_SPINS;
	     spins++) {
		int got;

		if (c->eof)
			return probe_conn_fail(
			    c, "%s", "connection closed by the server");
		got = probe_conn_fill(c, deadline);
		if (got < 0)
			return -1;
		if (got == 0)
			c->eof = true;
	}
	return c->len - c->off >= n ? 0 : probe_conn_fail(c, "%s", "timed out");
}

int
probe_conn_reply_within(struct probe_conn *c, struct peer_reply *r,
			unsigned ms)
{
	unsigned saved = c->timeout_ms;
	int rc;

	c->timeout_ms = ms < saved ? ms : saved;
	rc = probe_conn_reply(c, r);
	c->timeout_ms = saved;
	return rc;
}

int
probe_conn_cmd(struct probe_conn *c, struct peer_reply *r, const char *fmt,
	       ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return probe_conn_fail(c, "%s", "command too long");
	if (probe_conn_sendf(c, "%s", line) < 0)
		return -1;
	return probe_conn_reply(c, r);
}

int
probe_conn_tls(struct probe_conn *c, SSL_CTX *ctx, const char *sni)
{
	long long deadline = probe_now_ms() + c->timeout_ms;

	if (c->fd < 0)
		return probe_conn_fail(c, "%s", "not connected");
	c->off = c->len = 0;
	peer_reply_init(&c->reader);
	ERR_clear_error();
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (sni != NULL && SSL_set_tlsext_host_name(c->ssl, sni) != 1)) {
		probe_conn_tls_error(c, "TLS setup", 0);
		return -1;
	}
	for (int spins = 0; spins < PROBE_CONN_SPINS; spins++) {
		ERR_clear_error();
		int rc = SSL_connect(c->ssl), e;
		short ev;

		if (rc == 1)
			return 0;
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else {
			unsigned long err = ERR_peek_last_error();

			/* No alert, no bytes: the server closed the
			   connection (a limit at connect, or no TLS). */
			c->peer_closed =
			    (err == 0 && (e == SSL_ERROR_SYSCALL ||
					  e == SSL_ERROR_ZERO_RETURN)) ||
			    ERR_GET_REASON(err) ==
				SSL_R_UNEXPECTED_EOF_WHILE_READING;
			probe_conn_tls_error(c, "TLS handshake", e);
			return -1;
		}
		rc = probe_conn_poll(c, ev, deadline);
		if (rc <= 0)
			return probe_conn_fail(c, "%s",
					       "TLS handshake timed out");
	}
	return probe_conn_fail(c, "%s", "TLS handshake timed out");
}
