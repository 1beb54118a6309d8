/*
 * subload.c - submission load client for bench/run.
 *
 * One thread, one epoll loop, non-blocking sockets and OpenSSL, so that
 * the client costs far less than the servers it drives. Each connection
 * speaks the dialogue a mail client speaks on port 587: 220, EHLO,
 * STARTTLS (RFC 3207), a full TLS handshake (no resumption), EHLO again,
 * AUTH PLAIN with an initial response (RFC 4954, RFC 4616), then
 *
 *   load      MAIL, RCPT, DATA with one message, QUIT; SESSIONS connections
 *             at once until MESSAGES have been sent or, with -T, until
 *             SECONDS have passed (then the open ones finish);
 *   latency   QUIT right after 235: LOGINS legitimate logins, one started
 *             every GAP ms from FROM, while ATTACKERS connections from
 *             ATTACK_FROM log in with wrong passwords (one AUTH each, then
 *             QUIT and a new connection) for as long as the logins run.
 *
 * The results are one JSON object on standard output (or -j FILE),
 * including the client's own CPU time from getrusage(2). Nothing is
 * verified: the server certificate is self-signed; this is a benchmark.
 *
 *   subload load -p PORT -c SESSIONS -n MESSAGES -u CREDS -r RCPT [-s SIZE]
 *           [-T SECONDS]
 *   subload latency -p PORT -u CREDS -l LOGINS [-g GAP_MS] [-w WARM_MS]
 *           [-a ATTACKERS -x USER -S ATTACK_FROM] [-L FROM [-m | -N]]
 *
 * With -m, legitimate login i comes from FROM + i (the last octet counted
 * up), so that the logins in flight at once do not add up against one
 * address in the server's lockout. With -N, from FROM + 256 i: each from
 * a /24 of its own, as independent users are (the guard queues hashes
 * per /24).
 *
 * CREDS is a file of "user password" lines. Built by bench/run with
 * `cc -O2 subload.c -lssl -lcrypto`.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SUBLOAD_MAX_EVENTS 256
#define SUBLOAD_IN_MAX 8192
#define SUBLOAD_MAX_ERRKINDS 32

enum kind { K_LOAD, K_LEGIT, K_ATTACK };

enum state {
	S_CONNECT,
	S_GREET,
	S_EHLO1,
	S_STARTTLS,
	S_HANDSHAKE,
	S_EHLO2,
	S_AUTH,
	S_MAIL,
	S_RCPT,
	S_DATA,
	S_DOT,
	S_QUIT,
	S_NSTATES
};

static const char *const state_names[S_NSTATES] = {
    "connect", "greeting", "ehlo", "starttls", "handshake", "ehlo-tls",
    "auth",    "mail",	   "rcpt", "data",     "dot",	    "quit",
};

struct cred {
	char *user;
	char *b64; /* base64 of "\0user\0password" */
};

struct conn {
	int fd;
	SSL *ssl;
	enum kind kind;
	enum state state;
	uint32_t events; /* epoll interest now registered */
	int ssl_wants_write;
	const struct cred *cred;
	unsigned long seq;
	double t0, t_auth;
	char in[SUBLOAD_IN_MAX];
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
};

struct errkind {
	enum state state;
	int code; /* SMTP reply code, or 0 for a network/TLS error */
	unsigned long count;
};

static struct {
	const char *mode;
	struct sockaddr_in dst;
	struct in_addr from, attack_from;
	int have_from, have_attack_from, from_each;
	unsigned long sessions, messages, size, logins, attackers;
	double gap_ms, warm_ms, deadline_s, duration_s;
	char tls_desc[160]; /* version, cipher, group of the first handshake */
	const char *rcpt, *attack_user, *json_path;
	struct cred *creds;
	size_t ncreds;
	struct cred attack_cred;
	char *body; /* message body lines, ready to send */
	size_t body_len;
	SSL_CTX *ctx;
	int ep;
	double start;
	/* load mode */
	unsigned long started, done_ok, failed, handshakes, open;
	double *durations;
	/* latency mode */
	unsigned long legit_started, legit_done, legit_failed;
	double next_legit;
	double *auth_lat, *total_lat;
	unsigned long attack_tries, attack_535, attack_454, attack_other;
	unsigned long attack_conn_fail, attack_open;
	int stopping;
	struct errkind errs[SUBLOAD_MAX_ERRKINDS];
	size_t nerrs;
} G;

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Print a message and exit 2 (bench/run reports the cell as failed). */
static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("subload: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- set-up ------------------------------------------------------------ */

/* RFC 4648 section 4 base64 of n octets into a new string. */
static char *
base64(const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = tab[p[i + 2] & 63];
	}
	if (n - i == 1) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[(p[i] & 3) << 4];
		*o++ = '=';
		*o++ = '=';
	} else if (n - i == 2) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tab[(p[i + 1] & 15) << 2];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* The AUTH PLAIN initial response (RFC 4616 section 2): an empty
 * authorization identity, NUL, user, NUL, password; base64. */
static void
cred_make(struct cred *c, const char *user, const char *pass)
{
	size_t ul = strlen(user), pl = strlen(pass);
	unsigned char *raw = xmalloc(ul + pl + 2);

	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pass, pl);
	c->user = strdup(user);
	if (c->user == NULL)
		die("out of memory");
	c->b64 = base64(raw, ul + pl + 2);
	free(raw);
}

/* Read a file of "user password" lines; blank lines and # are skipped. */
static void
creds_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	size_t cap = 0;

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *user, *pass;

		line[strcspn(line, "\r\n")] = '\0';
		user = line + strspn(line, " \t");
		if (user[0] == '\0' || user[0] == '#')
			continue;
		pass = user + strcspn(user, " \t");
		if (*pass != '\0')
			*pass++ = '\0';
		pass += strspn(pass, " \t");
		pass[strcspn(pass, " \t")] = '\0';
		if (pass[0] == '\0')
			die("%s: a line without a password", path);
		if (G.ncreds == cap) {
			cap = cap ? 2 * cap : 16;
			G.creds = realloc(G.creds, cap * sizeof(*G.creds));
			if (G.creds == NULL)
				die("out of memory");
		}
		cred_make(&G.creds[G.ncreds++], user, pass);
	}
	fclose(f);
	if (G.ncreds == 0)
		die("%s: no credentials", path);
}

/* The body after the header section: 78-character lines of text up to
 * about `size` octets, then the end-of-data line (RFC 5321 4.1.1.4). No
 * line starts with '.', so no dot-stuffing is needed. */
static void
body_make(size_t size)
{
	static const char line[] = "The quick brown fox jumps over the lazy "
				   "dog, 0123456789 times, and back again.";
	size_t n = 0, ll = strlen(line);

	G.body = xmalloc(size + ll + 8);
	while (n < size) {
		memcpy(G.body + n, line, ll);
		n += ll;
		memcpy(G.body + n, "\r\n", 2);
		n += 2;
	}
	memcpy(G.body + n, ".\r\n", 3);
	G.body_len = n + 3;
}

static void
tls_init(void)
{
	G.ctx = SSL_CTX_new(TLS_client_method());
	if (G.ctx == NULL)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(G.ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(G.ctx, SSL_VERIFY_NONE, NULL);
	/* Every connection pays a full handshake, as a new client would. */
	SSL_CTX_set_session_cache_mode(G.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(G.ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(G.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/* --- errors ------------------------------------------------------------ */

/* Count a failed connection by the state it failed in and the reply code
 * (0: the connection or TLS broke); the first few are printed. */
static void
err_note(const struct conn *c, int code, const char *line)
{
	size_t i;

	for (i = 0; i < G.nerrs; i++)
		if (G.errs[i].state == c->state && G.errs[i].code == code)
			break;
	if (i == G.nerrs && G.nerrs < SUBLOAD_MAX_ERRKINDS) {
		G.errs[i].state = c->state;
		G.errs[i].code = code;
		G.errs[i].count = 0;
		G.nerrs++;
		fprintf(stderr, "subload: %s connection failed in %s: %s\n",
			c->kind == K_ATTACK  ? "attack"
			: c->kind == K_LEGIT ? "login"
					     : "load",
			state_names[c->state], line ? line : "closed/error");
	}
	if (i < G.nerrs)
		G.errs[i].count++;
}

/* --- connections --------------------------------------------------------- */

/* Remember what the first handshake negotiated, for the report. */
static void
tls_describe(SSL *ssl)
{
	int group = SSL_get_negotiated_group(ssl);
	const char *gname = group > 0 ? OBJ_nid2sn(group) : NULL;

	snprintf(G.tls_desc, sizeof(G.tls_desc), "%s %s %s",
		 SSL_get_version(ssl), SSL_get_cipher_name(ssl),
		 gname != NULL ? gname : "?");
}

static void
conn_watch(struct conn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};

	if (ev == c->events)
		return;
	if (epoll_ctl(G.ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd,
		      &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->events = ev;
}

static void conn_free(struct conn *c);
static void conn_finished(struct conn *c, int ok);

/* Open a non-blocking connection from `from` (when set) to the server.
 * IP_BIND_ADDRESS_NO_PORT leaves the port choice to connect(2), so that
 * TIME_WAIT ports can be reused per destination. */
static struct conn *
conn_open(enum kind kind, const struct in_addr *from, const struct cred *cr)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL)
		die("out of memory");
	c->kind = kind;
	c->cred = cr;
	c->t0 = now();
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (from != NULL) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr = *from};

		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("bind %s: %s", inet_ntoa(*from), strerror(errno));
	}
	c->out_cap = 1024 + (kind == K_LOAD ? G.body_len : 0);
	c->out = xmalloc(c->out_cap);
	c->state = S_CONNECT;
	if (connect(c->fd, (struct sockaddr *)&G.dst, sizeof(G.dst)) < 0 &&
	    errno != EINPROGRESS)
		die("connect: %s", strerror(errno));
	conn_watch(c, EPOLLOUT);
	return c;
}

static void
conn_free(struct conn *c)
{
	if (c->ssl != NULL) {
		/* close_notify, without waiting for the peer's */
		if (SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	close(c->fd); /* also leaves the epoll set */
	free(c->out);
	free(c);
}

/* Queue a command line (CRLF added). */
static void
conn_send(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->out + c->out_len, c->out_cap - c->out_len - 2, fmt,
		      ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= c->out_cap - c->out_len - 2)
		die("command too long");
	c->out_len += (size_t)n;
	memcpy(c->out + c->out_len, "\r\n", 2);
	c->out_len += 2;
}

/* The message: a header section naming the authenticated user in From:
 * (the servers check it), then the prepared body and its final dot. */
static void
conn_send_message(struct conn *c)
{
	int n = snprintf(c->out, c->out_cap,
			 "From: <%s>\r\nTo: <%s>\r\n"
			 "Subject: bench %lu\r\n"
			 "Message-ID: <%lu.%ld@client.bench.test>\r\n\r\n",
			 c->cred->user, G.rcpt, c->seq, c->seq, (long)getpid());

	if (n < 0 || (size_t)n + G.body_len > c->out_cap)
		die("message too long");
	memcpy(c->out + n, G.body, G.body_len);
	c->out_len = (size_t)n + G.body_len;
	c->out_off = 0;
}

/* Hand SSL's wish to the interest set: 1 would block, -1 failed. */
static int
conn_ssl_err(struct conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->ssl_wants_write = 0;
		return 1;
	case SSL_ERROR_WANT_WRITE:
		c->ssl_wants_write = 1;
		return 1;
	default:
		if (getenv("SUBLOAD_DEBUG"))
			fprintf(stderr, "ssl err %d errno %d %s\n",
				SSL_get_error(c->ssl, r), errno,
				ERR_error_string(ERR_peek_error(), NULL));
		ERR_clear_error();
		return -1;
	}
}

/* Write what is queued: 0 all written, 1 would block, -1 failed. */
static int
conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		size_t left = c->out_len - c->out_off;
		ssize_t n;

		if (c->ssl != NULL) {
			int r;

			ERR_clear_error(); /* SSL_get_error() reads the queue */
			r = SSL_write(c->ssl, c->out + c->out_off,
				      left > INT32_MAX ? INT32_MAX : (int)left);
			if (r <= 0)
				return conn_ssl_err(c, r);
			n = r;
		} else {
			n = write(c->fd, c->out + c->out_off, left);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				c->ssl_wants_write = 1;
				return 1;
			}
			if (n < 0)
				return -1;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Read more input: 0 read some, 1 would block, -1 closed or failed. */
static int
conn_fill(struct conn *c)
{
	size_t room = sizeof(c->in) - c->in_len;
	ssize_t n;

	if (room == 0)
		return -1; /* a reply longer than any server sends */
	if (c->ssl != NULL) {
		int r;

		ERR_clear_error();
		r = SSL_read(c->ssl, c->in + c->in_len, (int)room);
		if (r <= 0)
			return conn_ssl_err(c, r);
		n = r;
	} else {
		n = read(c->fd, c->in + c->in_len, room);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			c->ssl_wants_write = 0;
			return 1;
		}
		if (n <= 0)
			return -1;
	}
	c->in_len += (size_t)n;
	return 0;
}

/* Take one complete reply (RFC 5321 4.2.1: "XYZ-" lines, then "XYZ ")
 * off the input; return its code, or 0 when it is not all here yet. The
 * last line is copied to `last` for error messages. */
static int
conn_reply(struct conn *c, char *last, size_t last_size)
{
	size_t start = 0;

	for (;;) {
		char *nl = memchr(c->in + start, '\n', c->in_len - start);
		size_t len;

		if (nl == NULL)
			return 0;
		len = (size_t)(nl - (c->in + start)) + 1;
		if (len < 4 || c->in[start + 3] != '-') {
			int code = 0;
			size_t k, cl = len < last_size ? len : last_size - 1;

			for (k = 0; k < 3 && k < len; k++) {
				unsigned char d =
				    (unsigned char)c->in[start + k];

				code = d >= '0' && d <= '9'
					   ? code * 10 + (d - '0')
					   : -1000;
			}
			memcpy(last, c->in + start, cl);
			last[cl] = '\0';
			last[strcspn(last, "\r\n")] = '\0';
			start += len;
			memmove(c->in, c->in + start, c->in_len - start);
			c->in_len -= start;
			return code > 0 ? code : 1;
		}
		start += len;
	}
}

/* Act on a reply in the current state; 1 to go on, 0 when the
 * connection ended (freed). */
static int
conn_on_reply(struct conn *c, int code, const char *line)
{
	switch (c->state) {
	case S_GREET:
		if (code != 220)
			break;
		conn_send(c, "EHLO client.bench.test");
		c->state = S_EHLO1;
		return 1;
	case S_EHLO1:
		if (code != 250)
			break;
		conn_send(c, "STARTTLS");
		c->state = S_STARTTLS;
		return 1;
	case S_STARTTLS:
		if (code != 220)
			break;
		if (c->in_len != 0)
			break; /* bytes after 220: not ours to trust */
		c->ssl = SSL_new(G.ctx);
		if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
			die("SSL_new failed");
		c->state = S_HANDSHAKE;
		return 1;
	case S_EHLO2:
		if (code != 250)
			break;
		conn_send(c, "AUTH PLAIN %s", c->cred->b64);
		c->state = S_AUTH;
		return 1;
	case S_AUTH:
		if (c->kind == K_ATTACK) {
			G.attack_tries++;
			if (code == 535)
				G.attack_535++;
			else if (code == 454)
				G.attack_454++;
			else
				G.attack_other++;
			conn_send(c, "QUIT");
			c->state = S_QUIT;
			return 1;
		}
		if (code != 235)
			break;
		c->t_auth = now();
		if (c->kind == K_LEGIT) {
			conn_send(c, "QUIT");
			c->state = S_QUIT;
			return 1;
		}
		conn_send(c, "MAIL FROM:<%s>", c->cred->user);
		c->state = S_MAIL;
		return 1;
	case S_MAIL:
		if (code != 250)
			break;
		conn_send(c, "RCPT TO:<%s>", G.rcpt);
		c->state = S_RCPT;
		return 1;
	case S_RCPT:
		if (code != 250)
			break;
		conn_send(c, "DATA");
		c->state = S_DATA;
		return 1;
	case S_DATA:
		if (code != 354)
			break;
		conn_send_message(c);
		c->state = S_DOT;
		return 1;
	case S_DOT:
		if (code != 250)
			break;
		conn_send(c, "QUIT");
		c->state = S_QUIT;
		return 1;
	case S_QUIT:
		conn_finished(c, 1);
		return 0;
	default:
		break;
	}
	err_note(c, code, line);
	conn_finished(c, 0);
	return 0;
}

/* Run a connection as far as it goes without waiting. */
static void
conn_step(struct conn *c)
{
	char line[256];

	for (;;) {
		int r, code;

		if (c->state == S_CONNECT) {
			int err = 0;
			socklen_t l = sizeof(err);

			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err != 0) {
				err_note(c, 0, strerror(err));
				conn_finished(c, 0);
				return;
			}
			c->state = S_GREET;
		}
		if (c->state == S_HANDSHAKE) {
			ERR_clear_error();
			r = SSL_connect(c->ssl);
			if (r != 1) {
				r = conn_ssl_err(c, r);
				if (r < 0) {
					err_note(c, 0, "TLS handshake failed");
					conn_finished(c, 0);
					return;
				}
				conn_watch(c, c->ssl_wants_write ? EPOLLOUT
								 : EPOLLIN);
				return;
			}
			if (c->kind == K_LOAD)
				G.handshakes++;
			if (G.tls_desc[0] == '\0')
				tls_describe(c->ssl);
			conn_send(c, "EHLO client.bench.test");
			c->state = S_EHLO2;
		}
		r = conn_flush(c);
		if (r < 0) {
			err_note(c, 0, "write failed");
			conn_finished(c, 0);
			return;
		}
		if (r > 0) {
			conn_watch(c, c->ssl_wants_write ? EPOLLOUT : EPOLLIN);
			return;
		}
		code = conn_reply(c, line, sizeof(line));
		if (code != 0) {
			if (!conn_on_reply(c, code, line))
				return;
			continue;
		}
		r = conn_fill(c);
		if (r < 0) {
			/* A server may close right after 221. */
			if (c->state == S_QUIT) {
				conn_finished(c, 1);
				return;
			}
			err_note(c, 0, "connection closed");
			conn_finished(c, 0);
			return;
		}
		if (r > 0) {
			conn_watch(c, c->ssl_wants_write ? EPOLLOUT : EPOLLIN);
			return;
		}
	}
}

/* --- the two modes ------------------------------------------------------- */

static void
load_start_one(void)
{
	const struct cred *cr = &G.creds[G.started % G.ncreds];
	struct conn *c = conn_open(K_LOAD, G.have_from ? &G.from : NULL, cr);

	c->seq = G.started++;
	G.open++;
	conn_step(c);
}

static void
attack_start_one(void)
{
	struct conn *c =
	    conn_open(K_ATTACK, G.have_attack_from ? &G.attack_from : NULL,
		      &G.attack_cred);

	c->seq = G.attack_tries + G.attack_open;
	G.attack_open++;
	conn_step(c);
}

static void
legit_start_one(void)
{
	const struct cred *cr = &G.creds[G.legit_started % G.ncreds];
	struct in_addr from = G.from;
	struct conn *c;

	if (G.from_each)
		from.s_addr = htonl(ntohl(from.s_addr) +
				    (uint32_t)G.legit_started * G.from_each);
	c = conn_open(K_LEGIT, G.have_from ? &from : NULL, cr);

	c->seq = G.legit_started++;
	conn_step(c);
}

/* A connection ended, well or not: record it, free it, and start the one
 * that replaces it. */
static void
conn_finished(struct conn *c, int ok)
{
	double t = now();
	enum kind kind = c->kind;

	if (kind == K_LOAD) {
		if (ok)
			G.durations[G.done_ok++] = t - c->t0;
		else
			G.failed++;
		G.open--;
	} else if (kind == K_LEGIT) {
		if (ok) {
			G.auth_lat[G.legit_done] = c->t_auth - c->t0;
			G.total_lat[G.legit_done] = t - c->t0;
			G.legit_done++;
		} else {
			G.legit_failed++;
		}
	} else {
		if (!ok)
			G.attack_conn_fail++;
		G.attack_open--;
	}
	conn_free(c);
	if (kind == K_LOAD && G.started < G.messages && !G.stopping) {
		if (G.duration_s > 0 && t - G.start >= G.duration_s)
			G.stopping = 1; /* the open ones finish */
		else
			load_start_one();
	}
	if (kind == K_ATTACK && !G.stopping)
		attack_start_one();
}

/* Seconds until the next timer (a legitimate login to start); -1 none. */
static int
next_timeout_ms(void)
{
	double d;

	if (strcmp(G.mode, "latency") != 0 || G.legit_started >= G.logins)
		return 100;
	d = (G.next_legit - now()) * 1000.0;
	return d <= 0 ? 0 : (int)d + 1;
}

static int
finished(void)
{
	if (strcmp(G.mode, "load") == 0)
		return G.open == 0;
	return G.legit_done + G.legit_failed >= G.logins;
}

static void
run_loop(void)
{
	struct epoll_event ev[SUBLOAD_MAX_EVENTS];

	while (!finished()) {
		int n, i;

		if (now() - G.start > G.deadline_s)
			die("deadline of %.0f s passed", G.deadline_s);
		n = epoll_wait(G.ep, ev, SUBLOAD_MAX_EVENTS, next_timeout_ms());
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++)
			conn_step(ev[i].data.ptr);
		if (strcmp(G.mode, "latency") == 0 &&
		    G.legit_started < G.logins && now() >= G.next_legit) {
			legit_start_one();
			G.next_legit += G.gap_ms / 1000.0;
		}
	}
}

/* --- results ------------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values (q in 0..1). */
static double
pct(const double *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)(q * (double)n + 0.999999);
	if (k == 0)
		k = 1;
	return v[(k > n ? n : k) - 1];
}

static void
print_stats(FILE *f, const char *name, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	fprintf(f, ", \"%s_median\": %.6f, \"%s_p95\": %.6f, \"%s_max\": %.6f",
		name, pct(v, n, 0.5), name, pct(v, n, 0.95), name,
		n ? v[n - 1] : 0.0);
	fprintf(f, ", \"%s\": [", name);
	for (size_t i = 0; i < n && strcmp(name, "duration") != 0; i++)
		fprintf(f, "%s%.6f", i ? ", " : "", v[i]);
	fputc(']', f);
}

static void
report(double elapsed)
{
	struct rusage ru;
	FILE *f = stdout;
	size_t i;

	getrusage(RUSAGE_SELF, &ru);
	if (G.json_path != NULL && (f = fopen(G.json_path, "w")) == NULL)
		die("%s: %s", G.json_path, strerror(errno));
	fprintf(f,
		"{\"mode\": \"%s\", \"elapsed\": %.6f, \"tls\": \"%s\", "
		"\"cpu_user\": %.6f, \"cpu_sys\": %.6f",
		G.mode, elapsed, G.tls_desc,
		(double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		(double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	if (strcmp(G.mode, "load") == 0) {
		fprintf(f,
			", \"sessions\": %lu, \"messages\": %lu, "
			"\"ok\": %lu, \"failed\": %lu, \"handshakes\": %lu",
			G.sessions, G.started, G.done_ok, G.failed,
			G.handshakes);
		print_stats(f, "duration", G.durations, G.done_ok);
	} else {
		fprintf(f,
			", \"logins\": %lu, \"ok\": %lu, \"failed\": %lu, "
			"\"attackers\": %lu, \"attack_tries\": %lu, "
			"\"attack_535\": %lu, \"attack_454\": %lu, "
			"\"attack_other\": %lu, \"attack_conn_fail\": %lu",
			G.logins, G.legit_done, G.legit_failed, G.attackers,
			G.attack_tries, G.attack_535, G.attack_454,
			G.attack_other, G.attack_conn_fail);
		print_stats(f, "auth", G.auth_lat, G.legit_done);
		print_stats(f, "total", G.total_lat, G.legit_done);
	}
	fputs(", \"errors\": {", f);
	for (i = 0; i < G.nerrs; i++)
		fprintf(f, "%s\"%s %d\": %lu", i ? ", " : "",
			state_names[G.errs[i].state], G.errs[i].code,
			G.errs[i].count);
	fputs("}}\n", f);
	if (f != stdout)
		fclose(f);
}

/* --- main ---------------------------------------------------------------- */

static unsigned long
num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		die("bad %s: %s", what, s);
	return v;
}

static void
addr(const char *s, struct in_addr *a)
{
	if (inet_pton(AF_INET, s, a) != 1)
		die("bad IPv4 address: %s", s);
}

static void
usage(void)
{
	fputs("usage: subload load -p PORT -c SESSIONS -n MESSAGES -u CREDS "
	      "-r RCPT [-s SIZE] [-T SECONDS] [-L FROM] [-j FILE] "
	      "[-d SECONDS]\n"
	      "       subload latency -p PORT -u CREDS -l LOGINS [-g GAP_MS] "
	      "[-w WARM_MS] [-a ATTACKERS -x USER -S ATTACK_FROM] "
	      "[-L FROM [-m | -N]] "
	      "[-j FILE] [-d SECONDS]\n",
	      stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *creds = NULL;
	unsigned long port = 0;
	int opt;

	if (argc < 2)
		usage();
	G.mode = argv[1];
	if (strcmp(G.mode, "load") != 0 && strcmp(G.mode, "latency") != 0)
		usage();
	G.sessions = 1;
	G.size = 1024;
	G.gap_ms = 250;
	G.warm_ms = 3000;
	G.deadline_s = 600;
	optind = 2;
	while ((opt = getopt(argc, argv,
			     "p:c:n:u:r:s:l:g:w:a:x:S:L:mNj:d:T:")) != -1) {
		switch (opt) {
		case 'p':
			port = num(optarg, "port");
			break;
		case 'c':
			G.sessions = num(optarg, "sessions");
			break;
		case 'n':
			G.messages = num(optarg, "messages");
			break;
		case 'u':
			creds = optarg;
			break;
		case 'r':
			G.rcpt = optarg;
			break;
		case 's':
			G.size = num(optarg, "size");
			break;
		case 'l':
			G.logins = num(optarg, "logins");
			break;
		case 'g':
			G.gap_ms = (double)num(optarg, "gap");
			break;
		case 'w':
			G.warm_ms = (double)num(optarg, "warm-up");
			break;
		case 'a':
			G.attackers = num(optarg, "attackers");
			break;
		case 'x':
			G.attack_user = optarg;
			break;
		case 'S':
			addr(optarg, &G.attack_from);
			G.have_attack_from = 1;
			break;
		case 'L':
			addr(optarg, &G.from);
			G.have_from = 1;
			break;
		case 'm':
			G.from_each = 1;
			break;
		case 'N':
			G.from_each = 256;
			break;
		case 'j':
			G.json_path = optarg;
			break;
		case 'd':
			G.deadline_s = (double)num(optarg, "deadline");
			break;
		case 'T':
			G.duration_s = (double)num(optarg, "duration");
			break;
		default:
			usage();
		}
	}
	if (port == 0 || port > 65535 || creds == NULL)
		usage();
	if (strcmp(G.mode, "load") == 0 &&
	    (G.rcpt == NULL || G.messages == 0 || G.sessions == 0))
		usage();
	if (strcmp(G.mode, "latency") == 0 &&
	    (G.logins == 0 || (G.attackers > 0 && G.attack_user == NULL)))
		usage();
	signal(SIGPIPE, SIG_IGN);
	G.dst.sin_family = AF_INET;
	G.dst.sin_port = htons((uint16_t)port);
	G.dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	creds_load(creds);
	if (G.attack_user != NULL)
		/* Wrong, and the same each time: with the client allowed
		 * (auth-allow), every attempt is verified anyway. */
		cred_make(&G.attack_cred, G.attack_user,
			  "wrong-password-guess");
	body_make(G.size);
	tls_init();
	G.ep = epoll_create1(EPOLL_CLOEXEC);
	if (G.ep < 0)
		die("epoll_create1: %s", strerror(errno));
	G.durations = xmalloc(sizeof(double) * (G.messages + 1));
	G.auth_lat = xmalloc(sizeof(double) * (G.logins + 1));
	G.total_lat = xmalloc(sizeof(double) * (G.logins + 1));
	G.start = now();
	if (strcmp(G.mode, "load") == 0) {
		while (G.started < G.sessions && G.started < G.messages)
			load_start_one();
	} else {
		for (unsigned long i = 0; i < G.attackers; i++)
			attack_start_one();
		G.next_legit = G.start + (G.attackers ? G.warm_ms / 1000.0 : 0);
	}
	run_loop();
	report(now() - G.start);
	return 0;
}
