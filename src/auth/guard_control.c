/*
 * guard_control.c - the guard's control socket (docs/lockout.md,
 * docs/security.md): a Unix socket, mode 0660 with group admin-group (or
 * 0600), in a directory only root writes; one text command a connection,
 * one answer whose first line starts "OK " or "ERR ":
 *
 *   LOCKS             the locks: kind key until=... failures=N
 *   UNLOCK key        lift the locks and failures of an address or account
 *   LIMITS account    its send counts and limits, baseline, alarm
 *                     (`postern user limits`; guard_send.c)
 *   RELEASE account   clear its send-burst alarm (`postern queue release
 *                     --account` sends it before releasing held mail)
 *   DISCARD account   its alarm's mail was spam: a release teaches the
 *                     baseline nothing of it (`postern queue delete
 *                     --account`; guard_send.c)
 *   TOP               the top senders of the sliding hour, at most 10, most
 *                     first: lines "account count_hour baseline alarmed"
 *                     (baseline in recipients an hour, "1.25"; alarmed 0|1)
 *   ALARMS            alarms in effect or raised in the last 24 h, oldest
 *                     first: lines "unix_time kind account detail" (detail
 *                     one word: send-burst count=N,baseline=X,action=A,
 *                     in-effect=yes|no; login-networks count=N,in-effect=no)
 * Only root and members of admin-group are answered, checked
 * with SO_PEERCRED and SO_PEERGROUPS (the credentials the kernel took at
 * connect: no race with the peer's pid). And guard_control(), the client
 * of `postern locks` and `postern unlock`.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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
#define GUARD_CONTROL_GROUPS 64 /* peer's groups read at once; more: heap */

static struct {
	struct event_base *base;
	struct lockout *lo;
	struct evconnlistener *listener;
	char *path; /* for the unlink at exit */
	bool as_root;  /* started as root: root and the admin group only */
	uid_t own_uid; /* not as root: this account too (one account) */
	bool has_admin;
	gid_t admin_gid;
	char admin_name[64];
} C;

struct guard_control_list {
	struct evbuffer *out;
};

static void
guard_control_list_cb(const struct lockout_event *ev, void *arg)
{
	struct guard_control_list *cl = arg;
	char key[LOCKOUT_KEY_TEXT_MAX * 4 + 8], until[32];

	guard_lock_key_text(key, sizeof(key), ev);
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
	if (guard_send_control(line, out))
		return;
	evbuffer_add_printf(out, "ERR unknown command (LOCKS, UNLOCK key, "
				 "LIMITS account, RELEASE account, "
				 "DISCARD account, TOP, ALARMS)\n");
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

/* Is `gid` among the peer's supplementary groups (SO_PEERGROUPS)? */
static bool
guard_control_peer_in_group(int fd, gid_t gid)
{
	gid_t small[GUARD_CONTROL_GROUPS], *groups = small;
	socklen_t len = sizeof(small);
	bool found = false;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE || len == 0 ||
		    (groups = malloc(len)) == NULL)
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) <
		    0) {
			free(groups);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			found = true;
	if (groups != small)
		free(groups);
	return found;
}

/*
 * May this peer use the socket? root; a member of admin-group (primary or
 * supplementary group at connect time); and, when the server was not
 * started as root (one account for everything), that account.
 */
static bool
guard_control_peer_ok(int fd, struct ucred *cr)
{
	socklen_t len = sizeof(*cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &len) < 0) {
		memset(cr, 0, sizeof(*cr));
		cr->uid = (uid_t)-1;
		return false;
	}
	if (cr->uid == 0 || (!C.as_root && cr->uid == C.own_uid))
		return true;
	return C.has_admin && (cr->gid == C.admin_gid ||
			       guard_control_peer_in_group(fd, C.admin_gid));
}

/* A refused peer: one line, then the connection is closed. */
static void
guard_control_refuse(struct bufferevent *bev, const struct ucred *cr)
{
	log_warning(GUARD_SID, "control-refused uid=%ld gid=%ld pid=%ld",
		    (long)cr->uid, (long)cr->gid, (long)cr->pid);
	evbuffer_add_printf(bufferevent_get_output(bev),
			    "ERR permission denied: root%s%s only\n",
			    C.has_admin ? " and group " : "",
			    C.has_admin ? C.admin_name : "");
	bufferevent_setcb(bev, NULL, guard_control_write_cb,
			  guard_control_event_cb, NULL);
	bufferevent_enable(bev, EV_WRITE);
}

static void
guard_control_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
			struct sockaddr *sa, int socklen, void *arg)
{
	struct timeval tv = {GUARD_CONTROL_TIMEOUT, 0};
	struct bufferevent *bev;
	struct ucred cr;
	bool ok;

	(void)l;
	(void)sa;
	(void)socklen;
	(void)arg;
	ok = guard_control_peer_ok(fd, &cr);
	bev = bufferevent_socket_new(C.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_set_timeouts(bev, &tv, &tv);
	if (!ok) {
		guard_control_refuse(bev, &cr);
		return;
	}
	bufferevent_setcb(bev, guard_control_read_cb, NULL,
			  guard_control_event_cb, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Who may use the socket: remembered before the guard drops root. */
static void
guard_control_who(const struct config *cfg)
{
	struct group *gr;

	C.as_root = geteuid() == 0;
	C.own_uid = geteuid();
	if (cfg->admin_group == NULL)
		return;
	gr = getgrnam(cfg->admin_group);
	if (gr == NULL) {
		log_error(GUARD_SID, "admin-group name=%s error=\"no such "
				     "group\" effect=\"root only\"",
			  cfg->admin_group);
		return;
	}
	C.has_admin = true;
	C.admin_gid = gr->gr_gid;
	snprintf(C.admin_name, sizeof(C.admin_name), "%s", gr->gr_name);
}

/*
 * Remove and re-create the socket, 0600 from the start (umask), then
 * give it to the admin group, 0660. The master made its directory
 * (proc_control_dir): only root writes there, so the path is ours.
 */
int
guard_control_bind(const struct config *cfg)
{
	const char *path = cfg->control_socket;
	struct sockaddr_un sun = {0};
	mode_t old;
	int fd;

	guard_control_who(cfg);
	if (path == NULL || path[0] == '\0')
		return -1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error(GUARD_SID, "control-socket error=\"path too long\"");
		return -1;
	}
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 16) < 0) {
		umask(old);
		log_error(GUARD_SID, "control-socket path=\"%s\" error=\"%s\"",
			  path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (C.has_admin &&
	    (fchownat(AT_FDCWD, path, (uid_t)-1, C.admin_gid,
		      AT_SYMLINK_NOFOLLOW) < 0 ||
	     fchmodat(AT_FDCWD, path, 0660, 0) < 0))
		log_error(GUARD_SID,
			  "control-socket path=\"%s\" error=\"%s\" "
			  "effect=\"mode 0600: the admin group cannot "
			  "connect\"",
			  path, strerror(errno));
	C.path = strdup(path);
	return fd;
}

void
guard_control_open(struct event_base *base, struct lockout *lo, int fd)
{
	C.base = base;
	C.lo = lo;
	if (fd < 0)
		return;
	C.listener = evconnlistener_new(C.base, guard_control_accept_cb, NULL,
					LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (C.listener == NULL)
		close(fd);
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
	int fd, send_errno = 0;
	ssize_t n;

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
		/* A guard that refuses us writes its line and closes
		   without reading: that line is the answer. */
		send_errno = errno;
		if (send_errno != EPIPE && send_errno != ECONNRESET) {
			fprintf(out, "postern: %s\n", strerror(send_errno));
			close(fd);
			return 1;
		}
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
	if ((n < 0 || (first && used == 0)) && send_errno != 0) {
		fprintf(out, "postern: %s\n", strerror(send_errno));
		return 1;
	}
	if (n < 0 || (first && used == 0)) {
		fprintf(out, "postern: no answer from the guard\n");
		return 1;
	}
	return ok ? 0 : 1;
}
