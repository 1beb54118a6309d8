/*
 * guard_control.c - the guard's control socket (docs/lockout.md): a Unix
 * socket, mode 0600, one text command a connection ("LOCKS" or "UNLOCK
 * key"), one answer whose first line starts "OK " or "ERR "; and
 * guard_control(), its client for `postern locks` and `postern unlock`.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "auth/guard_int.h"
#include "lib/log.h"

#define GUARD_CONTROL_LINE 512
#define GUARD_CONTROL_TIMEOUT 10

static struct {
	struct event_base *base;
	struct lockout *lo;
	struct evconnlistener *listener;
	char *path; /* for the unlink at exit */
} C;

struct guard_control_list {
	struct evbuffer *out;
};

static void
guard_control_list_cb(const struct lockout_event *ev, void *arg)
{
	struct guard_control_list *cl = arg;
	char key[LOCKOUT_KEY_TEXT_MAX * 4 + 8], until[32];

	if (ev->kind == LOCKOUT_ACCOUNT)
		log_escape(key, sizeof(key), ev->key, strlen(ev->key),
			   LOCKOUT_KEY_TEXT_MAX);
	else
		snprintf(key, sizeof(key), "%s", ev->key);
	guard_until_text(until, sizeof(until), ev->until);
	evbuffer_add_printf(cl->out, "%-8s %-40s until=%s failures=%u\n",
			    guard_kind_names[ev->kind], key, until,
			    ev->failures);
}

/* One command: "LOCKS" or "UNLOCK <key>". The answer's first line is
   "OK ..." or "ERR ..."; docs/lockout.md. */
static void
guard_control_command(const char *line, struct evbuffer *out)
{
	time_t now = guard_now();

	if (strcmp(line, "LOCKS") == 0) {
		struct guard_control_list cl = {evbuffer_new()};
		size_t n;

		if (cl.out == NULL) {
			evbuffer_add_printf(out, "ERR out of memory\n");
			return;
		}
		n = lockout_list(C.lo, now, guard_control_list_cb, &cl);
		evbuffer_add_printf(out, "OK %zu lock%s\n", n,
				    n == 1 ? "" : "s");
		evbuffer_add_buffer(out, cl.out);
		evbuffer_free(cl.out);
		return;
	}
	if (strncmp(line, "UNLOCK ", 7) == 0 && line[7] != '\0') {
		const char *key = line + 7;
		size_t n = lockout_unlock(C.lo, key, now);
		char esc[LOCKOUT_KEY_TEXT_MAX * 4 + 8];

		log_escape(esc, sizeof(esc), key, strlen(key), 128);
		if (n == 0) {
			evbuffer_add_printf(out,
					    "ERR no lock or failure "
					    "recorded for %s\n",
					    esc);
			return;
		}
		log_notice(GUARD_SID, "unlock key=%s entries=%zu", esc, n);
		evbuffer_add_printf(out, "OK unlocked %s (%zu entr%s)\n", esc,
				    n, n == 1 ? "y" : "ies");
		return;
	}
	evbuffer_add_printf(out, "ERR unknown command (LOCKS, UNLOCK key)\n");
}

static void
guard_control_write_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
guard_control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
guard_control_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	(void)arg;
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > GUARD_CONTROL_LINE)
			bufferevent_free(bev);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	if (len > GUARD_CONTROL_LINE || strlen(line) != len)
		evbuffer_add_printf(bufferevent_get_output(bev),
				    "ERR bad command line\n");
	else
		guard_control_command(line, bufferevent_get_output(bev));
	free(line);
	bufferevent_setcb(bev, NULL, guard_control_write_cb,
			  guard_control_event_cb, NULL);
}

static void
guard_control_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
			struct sockaddr *sa, int socklen, void *arg)
{
	struct timeval tv = {GUARD_CONTROL_TIMEOUT, 0};
	struct bufferevent *bev;

	(void)l;
	(void)sa;
	(void)socklen;
	(void)arg;
	bev = bufferevent_socket_new(C.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, guard_control_read_cb, NULL,
			  guard_control_event_cb, NULL);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Remove and re-create the control socket, mode 0600 from the start. */
void
guard_control_open(struct event_base *base, struct lockout *lo,
		   const char *path)
{
	struct sockaddr_un sun = {0};
	mode_t old;
	int fd;

	C.base = base;
	C.lo = lo;
	if (path == NULL || path[0] == '\0')
		return;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error(GUARD_SID, "control-socket error=\"path too long\"");
		return;
	}
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	unlink(path);
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		log_error(GUARD_SID, "control-socket path=\"%s\" error=\"%s\"",
			  path, strerror(errno));
		close(fd);
		return;
	}
	umask(old);
	chmod(path, 0600);
	C.listener = evconnlistener_new(C.base, guard_control_accept_cb, NULL,
					LEV_OPT_CLOSE_ON_FREE, 16, fd);
	if (C.listener == NULL) {
		close(fd);
		return;
	}
	C.path = strdup(path);
}

void
guard_control_unlink(void)
{
	if (C.path != NULL)
		unlink(C.path);
}

int
guard_control(const char *socket_path, const char *command, FILE *out)
{
	struct timeval tv = {GUARD_CONTROL_TIMEOUT, 0};
	struct sockaddr_un sun = {0};
	char buf[4096];
	size_t used = 0, skip;
	bool ok = false, first = true;
	ssize_t n;
	int fd;

	if (socket_path == NULL ||
	    strlen(socket_path) >= sizeof(sun.sun_path) ||
	    strchr(command, '\n') != NULL || strchr(command, '\r') != NULL) {
		fprintf(out, "postern: bad control socket or command\n");
		return 1;
	}
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, socket_path, strlen(socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(out, "postern: cannot reach the guard at %s: %s\n",
			socket_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send(fd, command, strlen(command), MSG_NOSIGNAL) < 0 ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		fprintf(out, "postern: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	/* Copy the answer, without the "OK "/"ERR " of its first line. */
	while ((n = read(fd, buf + used, sizeof(buf) - used)) > 0) {
		used += (size_t)n;
		if (first) {
			if (used < 4 && memchr(buf, '\n', used) == NULL)
				continue;
			first = false;
			ok = used >= 3 && memcmp(buf, "OK ", 3) == 0;
			skip = ok					  ? 3
			       : used >= 4 && memcmp(buf, "ERR ", 4) == 0 ? 4
									  : 0;
			fwrite(buf + skip, 1, used - skip, out);
		} else {
			fwrite(buf, 1, used, out);
		}
		used = 0;
	}
	if (first && used > 0) {
		fwrite(buf, 1, used, out);
		ok = false;
	}
	close(fd);
	if (n < 0 || (first && used == 0)) {
		fprintf(out, "postern: no answer from the guard\n");
		return 1;
	}
	return ok ? 0 : 1;
}
