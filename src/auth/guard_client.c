/*
 * guard_client.c - the worker's side of the guard (guard.h): requests by
 * id over a bufferevent, callbacks exactly once, the pushed user list, and
 * the postmaster notices the guard hands over (to the notice callback,
 * confirmed with NOTICE_DONE).
 *
 * When the connection to the guard breaks, every pending AUTH and SEND is
 * answered TEMPFAIL and every pending CONN_OPEN OK (the connection limits
 * fail open, the credentials and the send limits fail closed), and so is
 * every later request until guard_client_set_fd() gives a new socket. Callbacks never run inside
 * the call that made the request: failures go through a deferred event.
 */
#include "auth/guard.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "auth/guard_proto.h"
#include "lib/log.h"

#define GC_BUCKETS 1024
#define GC_USERS_MAX 1000000 /* names in one pushed list */
#define GC_INPUT_MAX (1024 * 1024)

struct gc_req {
	struct gc_req *next;	  /* hash chain */
	struct gc_req *fail_next; /* on the failed list */
	uint32_t id;
	bool is_auth;
	bool is_send;	   /* a SEND_REQ (is_auth false) */
	bool is_failed;	   /* waiting for the deferred event */
	bool is_cancelled; /* failed, then cancelled: just free it */
	guard_auth_cb *auth_cb;
	guard_conn_cb *conn_cb;
	guard_send_cb *send_cb;
	void *arg;
};

struct gc_names {
	char **v;
	size_t n, cap;
};

struct guard_client {
	struct event_base *base;
	struct bufferevent *bev; /* NULL while broken */
	struct event *deferred;
	struct gc_req *buckets[GC_BUCKETS];
	struct gc_req *failed, **failed_tail;
	uint32_t next_id;
	unsigned in_callback;
	bool free_requested;
	struct gc_names users;	 /* sorted */
	struct gc_names pushing; /* being received */
	bool is_pushing;
	guard_notice_cb *notice_cb;
	void *notice_arg;
	struct guard_msg msg; /* decoding: replies point into it */
	struct guard_msg enc; /* encoding (a callback may send) */
};

static void gc_break(struct guard_client *gc, const char *why);

/* --- the user list --------------------------------------------------- */

static void
names_free(struct gc_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static int
names_add(struct gc_names *ns, const char *name)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 256;
		char **v;

		if (cap > GC_USERS_MAX)
			return -1;
		v = realloc(ns->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		ns->v = v;
		ns->cap = cap;
	}
	if ((ns->v[ns->n] = strdup(name)) == NULL)
		return -1;
	for (char *p = ns->v[ns->n]; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	ns->n++;
	return 0;
}

static int
names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool
guard_client_is_user(const struct guard_client *gc, const char *address)
{
	char low[GUARD_USER_MAX + 1];
	const char *key = low;
	size_t n = strlen(address);

	if (gc == NULL || n > GUARD_USER_MAX || gc->users.n == 0)
		return false;
	for (size_t i = 0; i <= n; i++)
		low[i] = address[i] >= 'A' && address[i] <= 'Z'
			     ? (char)(address[i] + 32)
			     : address[i];
	return bsearch(&key, gc->users.v, gc->users.n, sizeof(char *),
		       names_cmp) != NULL;
}

/* --- requests -------------------------------------------------------- */

static struct gc_req **
req_slot(struct guard_client *gc, uint32_t id)
{
	struct gc_req **pp = &gc->buckets[id % GC_BUCKETS];

	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

/* Take a request out of the table; NULL when unknown. */
static struct gc_req *
req_take(struct guard_client *gc, uint32_t id)
{
	struct gc_req **pp = req_slot(gc, id), *r = *pp;

	if (r != NULL)
		*pp = r->next;
	return r;
}

static void
client_free_now(struct guard_client *gc)
{
	for (size_t b = 0; b < GC_BUCKETS; b++)
		while (gc->buckets[b] != NULL) {
			struct gc_req *r = gc->buckets[b];

			gc->buckets[b] = r->next;
			if (!r->is_failed)
				free(r);
			else
				r->is_cancelled = true;
		}
	while (gc->failed != NULL) {
		struct gc_req *r = gc->failed;

		gc->failed = r->fail_next;
		free(r);
	}
	if (gc->bev != NULL)
		bufferevent_free(gc->bev);
	event_free(gc->deferred);
	names_free(&gc->users);
	names_free(&gc->pushing);
	free(gc);
}

static void
run_auth_cb(struct guard_client *gc, struct gc_req *r,
	    const struct guard_auth_reply *reply)
{
	gc->in_callback++;
	r->auth_cb(reply, r->arg);
	gc->in_callback--;
}

static void
run_send_cb(struct guard_client *gc, struct gc_req *r,
	    const struct guard_send_reply *reply)
{
	gc->in_callback++;
	r->send_cb(reply, r->arg);
	gc->in_callback--;
}

static void
run_conn_cb(struct guard_client *gc, struct gc_req *r,
	    enum guard_conn_result result)
{
	gc->in_callback++;
	r->conn_cb(result, r->arg);
	gc->in_callback--;
}

/* Answer the failed requests: AUTH TEMPFAIL, CONN_OPEN OK. */
static void
deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct guard_client *gc = arg;
	struct guard_auth_reply tempfail = {GUARD_AUTH_TEMPFAIL, "", NULL, 0};
	struct guard_send_reply send_tempfail = {GUARD_SEND_TEMPFAIL, false, 0,
						 0};

	(void)fd;
	(void)what;
	while (gc->failed != NULL && !gc->free_requested) {
		struct gc_req *r = gc->failed;

		gc->failed = r->fail_next;
		if (gc->failed == NULL)
			gc->failed_tail = &gc->failed;
		if (!r->is_cancelled) {
			req_take(gc, r->id);
			if (r->is_auth)
				run_auth_cb(gc, r, &tempfail);
			else if (r->is_send)
				run_send_cb(gc, r, &send_tempfail);
			else
				run_conn_cb(gc, r, GUARD_CONN_OK);
		}
		free(r);
	}
	if (gc->free_requested && gc->in_callback == 0)
		client_free_now(gc);
}

static void
req_fail(struct guard_client *gc, struct gc_req *r)
{
	r->is_failed = true;
	r->fail_next = NULL;
	*gc->failed_tail = r;
	gc->failed_tail = &r->fail_next;
	event_active(gc->deferred, EV_TIMEOUT, 0);
}

static struct gc_req *
req_new(struct guard_client *gc, bool is_auth, void *arg)
{
	struct gc_req *r = calloc(1, sizeof(*r));
	struct gc_req **pp;

	if (r == NULL)
		return NULL;
	do {
		if (++gc->next_id == 0)
			gc->next_id = 1;
		pp = req_slot(gc, gc->next_id);
	} while (*pp != NULL);
	r->id = gc->next_id;
	r->is_auth = is_auth;
	r->arg = arg;
	*pp = r;
	return r;
}

/* Wipe a sent frame (it holds a password) before freeing it. */
static void
wipe_cleanup(const void *data, size_t len, void *arg)
{
	(void)arg;
	sodium_memzero((void *)data, len);
	free((void *)data);
}

/* Queue a frame; on failure the connection is broken (requests fail). */
static void
gc_send(struct guard_client *gc, const struct guard_msg *m)
{
	unsigned char *buf;
	size_t n;

	if (gc->bev == NULL)
		return;
	buf = malloc(GUARD_HEADER_LEN + GUARD_FRAME_MAX);
	if (buf == NULL) {
		gc_break(gc, "out of memory");
		return;
	}
	n = guard_proto_encode(m, buf, GUARD_HEADER_LEN + GUARD_FRAME_MAX);
	if (n == 0) {
		free(buf);
		gc_break(gc, "cannot encode a request");
		return;
	}
	if (evbuffer_add_reference(bufferevent_get_output(gc->bev), buf, n,
				   wipe_cleanup, NULL) < 0) {
		wipe_cleanup(buf, GUARD_HEADER_LEN + GUARD_FRAME_MAX, NULL);
		gc_break(gc, "write failed");
	}
}

uint32_t
guard_client_auth(struct guard_client *gc, const char *user, size_t user_len,
		  const char *pass, size_t pass_len, const char *client_addr,
		  enum listen_role role, guard_auth_cb *cb, void *arg)
{
	struct gc_req *r = req_new(gc, true, arg);
	struct guard_msg *m = &gc->enc;

	if (r == NULL)
		return 0;
	if (pass == NULL) {
		pass = "";
		pass_len = 0;
	}
	r->auth_cb = cb;
	if (gc->bev == NULL) {
		req_fail(gc, r);
		return r->id;
	}
	/* A user name with a NUL/CR/LF or too long cannot be anybody's:
	   send one that is just as wrong, so the failure is counted. */
	if (user_len > GUARD_USER_MAX ||
	    !guard_proto_text_ok(user, user_len, GUARD_USER_MAX)) {
		user = "\x7f";
		user_len = 1;
	}
	memcpy(m->arena, user, user_len);
	m->arena[user_len] = '\0';
	memset(m, 0, offsetof(struct guard_msg, arena));
	m->type = GUARD_MSG_AUTH_REQ;
	m->id = r->id;
	m->user = m->arena;
	/* A password with a NUL never matches (users_verify); cut it. */
	m->pass = pass;
	m->pass_len = pass_len;
	if (memchr(pass, '\0', pass_len) != NULL)
		m->pass_len =
		    (size_t)((const char *)memchr(pass, '\0', pass_len) - pass);
	if (m->pass_len > GUARD_PASS_MAX)
		m->pass_len = GUARD_PASS_MAX;
	m->addr = guard_proto_text_ok(client_addr, strlen(client_addr),
				      GUARD_ADDR_MAX)
		      ? client_addr
		      : "unknown";
	m->role = (uint8_t)role;
	gc_send(gc, m);
	sodium_memzero(m->arena, GUARD_USER_MAX + 1);
	return r->id;
}

uint32_t
guard_client_conn_open(struct guard_client *gc, const char *client_addr,
		       guard_conn_cb *cb, void *arg)
{
	struct gc_req *r = req_new(gc, false, arg);
	struct guard_msg *m = &gc->enc;

	if (r == NULL)
		return 0;
	r->conn_cb = cb;
	if (gc->bev == NULL ||
	    !guard_proto_text_ok(client_addr, strlen(client_addr),
				 GUARD_ADDR_MAX)) {
		req_fail(gc, r);
		return r->id;
	}
	memset(m, 0, offsetof(struct guard_msg, arena));
	m->type = GUARD_MSG_CONN_OPEN;
	m->id = r->id;
	m->addr = client_addr;
	gc_send(gc, m);
	return r->id;
}

uint32_t
guard_client_send(struct guard_client *gc, const char *account,
		  const char *rcpt, guard_send_cb *cb, void *arg)
{
	struct gc_req *r = req_new(gc, false, arg);
	struct guard_msg *m = &gc->enc;

	if (r == NULL)
		return 0;
	r->is_send = true;
	r->send_cb = cb;
	if (gc->bev == NULL || account[0] == '\0' ||
	    !guard_proto_text_ok(account, strlen(account), GUARD_USER_MAX) ||
	    !guard_proto_text_ok(rcpt, strlen(rcpt), GUARD_USER_MAX)) {
		req_fail(gc, r);
		return r->id;
	}
	memset(m, 0, offsetof(struct guard_msg, arena));
	m->type = GUARD_MSG_SEND_REQ;
	m->id = r->id;
	m->user = account;
	m->rcpt = rcpt;
	gc_send(gc, m);
	return r->id;
}

void
guard_client_send_undo(struct guard_client *gc, const char *account,
		       uint32_t n)
{
	struct guard_msg *m = &gc->enc;

	if (gc->bev == NULL || n == 0 || account[0] == '\0' ||
	    !guard_proto_text_ok(account, strlen(account), GUARD_USER_MAX))
		return;
	memset(m, 0, offsetof(struct guard_msg, arena));
	m->type = GUARD_MSG_SEND_UNDO;
	m->user = account;
	m->count = n;
	gc_send(gc, m);
}

void
guard_client_on_notice(struct guard_client *gc, guard_notice_cb *cb,
		       void *arg)
{
	gc->notice_cb = cb;
	gc->notice_arg = arg;
}

void
guard_client_notice_done(struct guard_client *gc, uint32_t id,
			 const char *account)
{
	struct guard_msg *m;

	if (gc == NULL || gc->bev == NULL || id == 0 || account[0] == '\0' ||
	    !guard_proto_text_ok(account, strlen(account), GUARD_USER_MAX))
		return;
	m = &gc->enc;
	memset(m, 0, offsetof(struct guard_msg, arena));
	m->type = GUARD_MSG_NOTICE_DONE;
	m->id = id;
	m->user = account;
	gc_send(gc, m);
}

void
guard_client_conn_close(struct guard_client *gc, const char *client_addr)
{
	struct guard_msg *m = &gc->enc;

	if (gc->bev == NULL ||
	    !guard_proto_text_ok(client_addr, strlen(client_addr),
				 GUARD_ADDR_MAX))
		return;
	memset(m, 0, offsetof(struct guard_msg, arena));
	m->type = GUARD_MSG_CONN_CLOSE;
	m->addr = client_addr;
	gc_send(gc, m);
}

void
guard_client_cancel(struct guard_client *gc, uint32_t id)
{
	struct gc_req *r;

	if (gc == NULL || id == 0 || (r = req_take(gc, id)) == NULL)
		return;
	if (r->is_failed)
		r->is_cancelled = true; /* the deferred event frees it */
	else
		free(r);
}

/* --- replies and the user list --------------------------------------- */

/* Handle one frame from the guard; -1 when it is not acceptable. */
static int
gc_handle(struct guard_client *gc, const struct guard_msg *m)
{
	struct gc_req *r;

	switch (m->type) {
	case GUARD_MSG_AUTH_RES: {
		struct guard_auth_reply reply = {
		    (enum guard_auth_result)m->result, m->user, m->list,
		    m->n_list};

		if (m->result > GUARD_AUTH_TEMPFAIL)
			return -1;
		if ((r = req_take(gc, m->id)) == NULL)
			return 0; /* cancelled */
		if (!r->is_auth) {
			free(r);
			return -1;
		}
		run_auth_cb(gc, r, &reply);
		free(r);
		return 0;
	}
	case GUARD_MSG_SEND_RES: {
		struct guard_send_reply reply = {
		    (enum guard_send_result)m->result, m->alarm != 0, m->count,
		    m->baseline};

		if (m->result > GUARD_SEND_TEMPFAIL)
			return -1;
		if ((r = req_take(gc, m->id)) == NULL)
			return 0; /* cancelled */
		if (!r->is_send) {
			free(r);
			return -1;
		}
		run_send_cb(gc, r, &reply);
		free(r);
		return 0;
	}
	case GUARD_MSG_CONN_RES:
		if (m->result > GUARD_CONN_TOO_FAST)
			return -1;
		if ((r = req_take(gc, m->id)) == NULL)
			return 0;
		if (r->is_auth || r->is_send) {
			free(r);
			return -1;
		}
		run_conn_cb(gc, r, (enum guard_conn_result)m->result);
		free(r);
		return 0;
	case GUARD_MSG_NOTICE:
		/* Not tied to any request: the guard keeps it until it is
		   confirmed, whatever became of the session that raised it. */
		if (gc->notice_cb != NULL) {
			gc->in_callback++;
			gc->notice_cb(m->id, m->user, m->count, m->baseline,
				      gc->notice_arg);
			gc->in_callback--;
		}
		return 0;
	case GUARD_MSG_USERS_BEGIN:
		names_free(&gc->pushing);
		gc->is_pushing = true;
		return 0;
	case GUARD_MSG_USERS_CHUNK:
		if (!gc->is_pushing)
			return -1;
		for (size_t i = 0; i < m->n_list; i++)
			if (names_add(&gc->pushing, m->list[i]) < 0)
				return -1;
		return 0;
	case GUARD_MSG_USERS_END:
		if (!gc->is_pushing)
			return -1;
		if (gc->pushing.n > 1)
			qsort(gc->pushing.v, gc->pushing.n, sizeof(char *),
			      names_cmp);
		names_free(&gc->users);
		gc->users = gc->pushing;
		memset(&gc->pushing, 0, sizeof(gc->pushing));
		gc->is_pushing = false;
		return 0;
	default:
		return -1;
	}
}

static void
gc_read_cb(struct bufferevent *bev, void *arg)
{
	struct guard_client *gc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *error;

	gc->in_callback++;
	while (gc->bev == bev && !gc->free_requested) {
		int rc = guard_proto_read(in, &gc->msg, &error);

		if (rc == 0)
			break;
		if (rc < 0) {
			gc_break(gc, error);
			break;
		}
		if (gc_handle(gc, &gc->msg) < 0) {
			gc_break(gc, "unexpected frame");
			break;
		}
	}
	gc->in_callback--;
	if (gc->free_requested && gc->in_callback == 0)
		client_free_now(gc);
}

int
guard_proto_read(struct evbuffer *in, struct guard_msg *m,
		 const char **error_r)
{
	unsigned char hdr[4], *frame;
	size_t len;
	int rc;

	if (evbuffer_get_length(in) < sizeof(hdr))
		return 0;
	evbuffer_copyout(in, hdr, sizeof(hdr));
	len = guard_proto_frame_len(hdr);
	if (len == 0) {
		*error_r = "bad frame length";
		return -1;
	}
	if (evbuffer_get_length(in) < len)
		return 0;
	frame = evbuffer_pullup(in, (ev_ssize_t)len);
	if (frame == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	rc = guard_proto_decode(frame, len, m, error_r);
	sodium_memzero(frame, len); /* AUTH frames carry passwords */
	evbuffer_drain(in, len);
	return rc < 0 ? -1 : 1;
}

static void
gc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	gc_break(arg, (what & BEV_EVENT_EOF) ? "eof" : "error");
}

/*
 * The guard is gone (or spoke nonsense): close the socket, and fail every
 * pending request through the deferred event.
 */
static void
gc_break(struct guard_client *gc, const char *why)
{
	if (gc->bev == NULL)
		return;
	log_warning("-", "guard-lost reason=\"%s\"", why);
	bufferevent_free(gc->bev);
	gc->bev = NULL;
	names_free(&gc->pushing);
	gc->is_pushing = false;
	for (size_t b = 0; b < GC_BUCKETS; b++)
		for (struct gc_req *r = gc->buckets[b]; r != NULL; r = r->next)
			if (!r->is_failed)
				req_fail(gc, r);
}

int
guard_client_set_fd(struct guard_client *gc, int fd)
{
	gc_break(gc, "replaced");
	if (evutil_make_socket_nonblocking(fd) < 0) {
		close(fd);
		return -1;
	}
	gc->bev = bufferevent_socket_new(gc->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (gc->bev == NULL) {
		close(fd);
		return -1;
	}
	bufferevent_setcb(gc->bev, gc_read_cb, NULL, gc_event_cb, gc);
	bufferevent_setwatermark(gc->bev, EV_READ, 0, GC_INPUT_MAX);
	bufferevent_enable(gc->bev, EV_READ | EV_WRITE);
	return 0;
}

bool
guard_client_is_connected(const struct guard_client *gc)
{
	return gc != NULL && gc->bev != NULL;
}

struct guard_client *
guard_client_new(struct event_base *base, int fd)
{
	struct guard_client *gc = calloc(1, sizeof(*gc));

	if (gc == NULL)
		return NULL;
	gc->base = base;
	gc->failed_tail = &gc->failed;
	gc->deferred = event_new(base, -1, 0, deferred_cb, gc);
	if (gc->deferred == NULL) {
		free(gc);
		return NULL;
	}
	/* A bad fd leaves a client that answers TEMPFAIL / OK. */
	if (fd >= 0)
		guard_client_set_fd(gc, fd);
	return gc;
}

/* Pending requests are dropped: their callbacks never run. */
void
guard_client_free(struct guard_client **gcp)
{
	struct guard_client *gc = *gcp;

	if (gc == NULL)
		return;
	*gcp = NULL;
	if (gc->in_callback > 0) {
		/* Freed from one of its own callbacks: finish afterwards;
		   no callback runs any more. */
		gc->free_requested = true;
		if (gc->bev != NULL) {
			bufferevent_free(gc->bev);
			gc->bev = NULL;
		}
		return;
	}
	client_free_now(gc);
}
