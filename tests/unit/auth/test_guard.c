/*
 * test_guard.c - a real guard process (guard_main) and a guard_client over
 * a socketpair handed with guard_send_worker_fd: verdicts, lockout with the
 * right password, unlock through the control socket, connection limits,
 * the pushed user list, reload, bad frames (THREATS Q-05 #3), the failure
 * delay, a guard that dies, and the log lines a fail2ban filter reads;
 * the postmaster notice of a send-burst alarm (NOTICE, NOTICE_DONE):
 * handed with the verdict, handed again when its worker goes, confirmed
 * only by its holder for its account.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "auth/guard.h"
#include "auth/guard_proto.h"
#include "lib/log.h"
#include "auth/users.h"

#define ALICE "alice@local.test"
#define BOB "bob@local.test"
#define ALICE_PW "correct horse"
#define BOB_PW "battery staple"

static char dir[64], users_path[128], sock_path[128], log_path[128];
static struct config cfg;
static struct config_network allow;
static struct event_base *base;

struct guard_run {
	pid_t pid;
	int master_fd;
	struct guard_client *gc;
};

static struct guard_run G;

/* --- helpers --------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static char *
user_line(const char *name, const char *pw, const char *aliases)
{
	char *hash = NULL, *line = NULL;

	assert_int_equal(users_hash(pw, strlen(pw), &hash), 0);
	assert_true(asprintf(&line, "%s:%s::::::%s%s\n", name, hash,
			     aliases != NULL ? "userdb_postern_aliases=" : "",
			     aliases != NULL ? aliases : "") > 0);
	free(hash);
	return line;
}

static bool timed_out;

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timed_out = true;
}

/* Run the loop until *done or `ms` pass; returns *done. */
static bool
run_until(const bool *done, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct event *t = evtimer_new(base, timeout_cb, NULL);

	timed_out = false;
	evtimer_add(t, &tv);
	while (!*done && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *done;
}

static void
run_for(int ms)
{
	bool never = false;

	run_until(&never, ms);
}

static struct guard_run
start_guard(const struct config *c)
{
	struct guard_run r;
	int m[2], w[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, m), 0);
	r.pid = fork();
	assert_true(r.pid >= 0);
	if (r.pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0)
			dup2(fd, 2);
		close(m[0]);
		guard_main(c, NULL, m[1], guard_control_bind(c));
	}
	close(m[1]);
	r.master_fd = m[0];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, w), 0);
	assert_int_equal(guard_send_worker_fd(r.master_fd, w[1]), 0);
	close(w[1]);
	r.gc = guard_client_new(base, w[0]);
	assert_non_null(r.gc);
	return r;
}

static void
stop_guard(struct guard_run *r)
{
	int status;

	guard_client_free(&r->gc);
	close(r->master_fd); /* the guard exits when the master is gone */
	assert_int_equal(waitpid(r->pid, &status, 0), r->pid);
	assert_true(WIFEXITED(status) || WIFSIGNALED(status));
}

/* Wait for the guard's control socket and the first user push. */
static void
wait_ready(struct guard_client *gc)
{
	for (int i = 0; i < 500 && !guard_client_is_user(gc, ALICE); i++)
		run_for(10);
	assert_true(guard_client_is_user(gc, ALICE));
	for (int i = 0; i < 500 && access(sock_path, F_OK) != 0; i++)
		run_for(10);
}

struct auth_res {
	bool done;
	int calls;
	enum guard_auth_result result;
	char user[GUARD_USER_MAX + 1];
	char addresses[1024];
	size_t n_addresses;
};

static void
auth_cb(const struct guard_auth_reply *reply, void *arg)
{
	struct auth_res *r = arg;
	size_t used = 0;

	r->calls++;
	r->done = true;
	r->result = reply->result;
	snprintf(r->user, sizeof(r->user), "%s", reply->user);
	r->n_addresses = reply->n_addresses;
	r->addresses[0] = '\0';
	for (size_t i = 0; i < reply->n_addresses; i++) {
		int n =
		    snprintf(r->addresses + used, sizeof(r->addresses) - used,
			     "%s%s", i ? "," : "", reply->addresses[i]);

		assert_true(n > 0 && (size_t)n < sizeof(r->addresses) - used);
		used += (size_t)n;
	}
}

static enum guard_auth_result
auth_on(struct guard_client *gc, const char *user, const char *pw,
	const char *addr, struct auth_res *r)
{
	struct auth_res tmp;

	if (r == NULL)
		r = &tmp;
	memset(r, 0, sizeof(*r));
	assert_int_not_equal(guard_client_auth(gc, user, strlen(user), pw,
					       strlen(pw), addr,
					       ROLE_SUBMISSION, auth_cb, r),
			     0);
	assert_false(r->done); /* never from inside the call */
	assert_true(run_until(&r->done, 10000));
	run_for(1);
	assert_int_equal(r->calls, 1);
	return r->result;
}

static enum guard_auth_result
auth(const char *user, const char *pw, const char *addr, struct auth_res *r)
{
	return auth_on(G.gc, user, pw, addr, r);
}

struct conn_res {
	bool done;
	enum guard_conn_result result;
};

static void
conn_cb(enum guard_conn_result result, void *arg)
{
	struct conn_res *r = arg;

	r->done = true;
	r->result = result;
}

static enum guard_conn_result
conn_open_on(struct guard_client *gc, const char *addr)
{
	struct conn_res r = {0};

	assert_int_not_equal(guard_client_conn_open(gc, addr, conn_cb, &r), 0);
	assert_false(r.done);
	assert_true(run_until(&r.done, 10000));
	return r.result;
}

static enum guard_conn_result
conn_open(const char *addr)
{
	return conn_open_on(G.gc, addr);
}

/* guard_control into a string. */
static int
control(const char *command, char *out, size_t size)
{
	FILE *f = fmemopen(out, size, "w");
	int rc;

	assert_non_null(f);
	rc = guard_control(sock_path, command, f);
	fclose(f);
	return rc;
}

static char *
read_log(void)
{
	FILE *f = fopen(log_path, "r");
	char *text = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(f);
	assert_non_null(text);
	n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* --- setup ----------------------------------------------------------- */

static int
group_setup(void **state)
{
	char *a, *b;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	log_init("test_guard", true, LOG_LEVEL_INFO);
	snprintf(dir, sizeof(dir), "/tmp/test_guard.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(users_path, sizeof(users_path), "%s/users", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/guard.log", dir);
	a = user_line(ALICE, ALICE_PW, "a@local.test,al@local.test");
	b = user_line(BOB, BOB_PW, NULL);
	FILE *f = fopen(users_path, "w");

	if (f == NULL)
		return -1;
	fputs(a, f);
	fputs(b, f);
	fclose(f);
	free(a);
	free(b);

	memset(&cfg, 0, sizeof(cfg));
	cfg.users_file = users_path;
	cfg.control_socket = sock_path;
	cfg.auth_account_failures = 5;
	cfg.auth_address_failures = 10;
	cfg.auth_failure_window = 900;
	cfg.auth_lock_time = 300;
	cfg.auth_lock_max = 3600;
	cfg.auth_cache_ttl = 300;
	cfg.auth_failure_delay = 0;
	cfg.auth_threads = 2;
	cfg.auth_queue_per_network = 64;
	cfg.conn_limit_per_address = 3;
	cfg.conn_rate_per_address = 1000;
	allow.family = AF_INET;
	inet_pton(AF_INET, "198.51.100.0", allow.addr);
	allow.prefix = 24;
	cfg.auth_allow = &allow;
	cfg.n_auth_allow = 1;

	base = event_base_new();
	if (base == NULL)
		return -1;
	G = start_guard(&cfg);
	wait_ready(G.gc);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (G.gc != NULL)
		stop_guard(&G);
	event_base_free(base);
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- tests ----------------------------------------------------------- */

static void
test_users_pushed(void **state)
{
	(void)state;
	assert_true(guard_client_is_user(G.gc, ALICE));
	assert_true(guard_client_is_user(G.gc, BOB));
	assert_true(guard_client_is_user(G.gc, "Alice@Local.Test"));
	assert_false(guard_client_is_user(G.gc, "carol@local.test"));
	/* Aliases are addresses a user may send as, not users. */
	assert_false(guard_client_is_user(G.gc, "a@local.test"));
}

static void
test_verdicts(void **state)
{
	struct auth_res r;

	(void)state;
	assert_int_equal(auth(ALICE, ALICE_PW, "192.0.2.1", &r), GUARD_AUTH_OK);
	assert_string_equal(r.user, ALICE);
	assert_string_equal(r.addresses, ALICE ",a@local.test,al@local.test");
	/* Any case of the name; a second time comes from the cache. */
	assert_int_equal(auth("ALICE@local.test", ALICE_PW, "192.0.2.1", &r),
			 GUARD_AUTH_OK);
	assert_string_equal(r.user, ALICE);
	assert_int_equal(auth(BOB, BOB_PW, "2001:db8::1", &r), GUARD_AUTH_OK);
	assert_string_equal(r.addresses, BOB);

	assert_int_equal(auth(ALICE, "wrong", "192.0.2.1", &r),
			 GUARD_AUTH_FAIL);
	assert_int_equal(r.n_addresses, 0);
	assert_string_equal(r.user, "");
	assert_int_equal(auth("nobody@local.test", ALICE_PW, "192.0.2.1", &r),
			 GUARD_AUTH_FAIL);
	assert_string_equal(r.user, "");
	/* Alice's password is not Bob's. */
	assert_int_equal(auth(BOB, ALICE_PW, "192.0.2.1", NULL),
			 GUARD_AUTH_FAIL);
	/* A password with a NUL or a user name with CR LF never pass. */
	assert_int_equal(
	    auth("alice@local.test\r\nX", ALICE_PW, "192.0.2.1", NULL),
	    GUARD_AUTH_FAIL);
}

static void
test_parallel(void **state)
{
	struct auth_res r[6];
	bool all = false;

	(void)state;
	/* Several in flight at once: each callback once, with its own
	   verdict, whatever the order of completion. */
	for (int i = 0; i < 6; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		const char *user = i % 2 ? BOB : ALICE;
		const char *pw = i % 3 ? (i % 2 ? BOB_PW : ALICE_PW) : "nope";

		guard_client_auth(G.gc, user, strlen(user), pw, strlen(pw),
				  "192.0.2.20", ROLE_SUBMISSIONS, auth_cb,
				  &r[i]);
	}
	for (int k = 0; k < 1000 && !all; k++) {
		run_for(10);
		all = true;
		for (int i = 0; i < 6; i++)
			all = all && r[i].done;
	}
	assert_true(all);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].result,
				 i % 3 ? GUARD_AUTH_OK : GUARD_AUTH_FAIL);
	}
}

static void
test_address_lockout(void **state)
{
	char out[4096], name[64], pw[32];

	(void)state;
	/* The same wrong password, again and again, counts once. */
	for (int i = 0; i < 12; i++)
		assert_int_equal(auth(ALICE, "stale", "203.0.113.5", NULL),
				 GUARD_AUTH_FAIL);
	assert_int_equal(auth(ALICE, ALICE_PW, "203.0.113.5", NULL),
			 GUARD_AUTH_OK);
	/* Ten distinct failures from one address (one is "stale"). */
	for (int i = 0; i < 9; i++) {
		snprintf(name, sizeof(name), "u%d@local.test", i);
		snprintf(pw, sizeof(pw), "guess%d", i);
		assert_int_equal(auth(name, pw, "203.0.113.5", NULL),
				 GUARD_AUTH_FAIL);
	}
	/* Now the right password is refused from there ... */
	assert_int_equal(auth(ALICE, ALICE_PW, "203.0.113.5", NULL),
			 GUARD_AUTH_LOCKED);
	assert_int_equal(auth(BOB, BOB_PW, "203.0.113.5", NULL),
			 GUARD_AUTH_LOCKED);
	assert_int_equal(conn_open("203.0.113.5"), GUARD_CONN_LOCKED);
	/* ... but not from another address, nor the next one. */
	assert_int_equal(auth(ALICE, ALICE_PW, "192.0.2.77", NULL),
			 GUARD_AUTH_OK);
	assert_int_equal(auth(ALICE, ALICE_PW, "203.0.113.6", NULL),
			 GUARD_AUTH_OK);

	assert_int_equal(control("LOCKS", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "1 lock\n"));
	assert_non_null(strstr(out, "address  203.0.113.5/32"));
	assert_non_null(strstr(out, "failures=10"));

	assert_int_equal(control("UNLOCK 203.0.113.5", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "unlocked"));
	assert_int_equal(auth(ALICE, ALICE_PW, "203.0.113.5", NULL),
			 GUARD_AUTH_OK);
	assert_int_equal(conn_open("203.0.113.5"), GUARD_CONN_OK);
	guard_client_conn_close(G.gc, "203.0.113.5");

	assert_int_equal(control("UNLOCK 203.0.114.200", out, sizeof(out)), 1);
	assert_int_equal(control("FROB", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "unknown command"));
	assert_int_equal(control("LOCKS", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "0 locks"));
}

static void
test_account_lockout(void **state)
{
	char out[4096], addr[32], pw[32];

	(void)state;
	/* Start from a clean slate: Bob failed in the tests above. */
	assert_int_equal(control("UNLOCK " BOB, out, sizeof(out)), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(addr, sizeof(addr), "10.9.%d.1", i);
		snprintf(pw, sizeof(pw), "try%d", i);
		assert_int_equal(auth(BOB, pw, addr, NULL), GUARD_AUTH_FAIL);
	}
	assert_int_equal(auth(BOB, BOB_PW, "10.9.200.1", NULL),
			 GUARD_AUTH_LOCKED);
	/* An account lock does not stop the address from connecting, nor
	   other accounts; the allow-list is never locked out. */
	assert_int_equal(auth(ALICE, ALICE_PW, "10.9.200.1", NULL),
			 GUARD_AUTH_OK);
	assert_int_equal(auth(BOB, BOB_PW, "198.51.100.9", NULL),
			 GUARD_AUTH_OK);
	assert_int_equal(control("LOCKS", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "account  \"" BOB "\""));
	assert_int_equal(control("UNLOCK Bob@Local.Test", out, sizeof(out)), 0);
	assert_int_equal(auth(BOB, BOB_PW, "10.9.200.1", NULL), GUARD_AUTH_OK);
}

static void
test_conn_limits(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(conn_open("192.0.2.200"), GUARD_CONN_OK);
	assert_int_equal(conn_open("192.0.2.200"), GUARD_CONN_TOO_MANY);
	assert_int_equal(conn_open("192.0.2.201"), GUARD_CONN_OK);
	guard_client_conn_close(G.gc, "192.0.2.200");
	assert_int_equal(conn_open("192.0.2.200"), GUARD_CONN_OK);
	for (int i = 0; i < 10; i++)
		assert_int_equal(conn_open("198.51.100.1"), GUARD_CONN_OK);
	/* A worker that goes away closes its sessions. */
	struct guard_run other;
	int w[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, w), 0);
	assert_int_equal(guard_send_worker_fd(G.master_fd, w[1]), 0);
	close(w[1]);
	other.gc = guard_client_new(base, w[0]);
	for (int i = 0; i < 3; i++)
		assert_int_equal(conn_open_on(other.gc, "192.0.2.210"),
				 GUARD_CONN_OK);
	assert_int_equal(conn_open("192.0.2.210"), GUARD_CONN_TOO_MANY);
	/* A close for a session this worker never opened changes nothing. */
	guard_client_conn_close(G.gc, "192.0.2.210");
	assert_int_equal(conn_open("192.0.2.210"), GUARD_CONN_TOO_MANY);
	guard_client_free(&other.gc);
	bool ok = false;

	for (int i = 0; i < 200 && !ok; i++) {
		run_for(10);
		ok = conn_open("192.0.2.210") == GUARD_CONN_OK;
	}
	assert_true(ok);
}

/* Write raw bytes as a worker, expect the guard to hang up on us while
   still serving the others. */
static void
expect_dropped(const void *bytes, size_t len)
{
	struct pollfd pfd;
	char buf[256];
	int w[2];
	ssize_t n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, w), 0);
	assert_int_equal(guard_send_worker_fd(G.master_fd, w[1]), 0);
	close(w[1]);
	assert_int_equal(write(w[0], bytes, len), (ssize_t)len);
	pfd.fd = w[0];
	pfd.events = POLLIN;
	/* Drain the user push, then EOF. */
	for (;;) {
		assert_int_equal(poll(&pfd, 1, 5000), 1);
		n = read(w[0], buf, sizeof(buf));
		if (n <= 0)
			break;
	}
	assert_int_equal(n, 0);
	close(w[0]);
	assert_int_equal(auth(ALICE, ALICE_PW, "192.0.2.1", NULL),
			 GUARD_AUTH_OK);
}

static void
test_bad_frames(void **state)
{
	static const unsigned char oversized[] = {0, 0, 0x7f, 0xff, 1};
	static const unsigned char short_len[] = {0, 0, 0, 2, 1, 0};
	static const unsigned char bad_type[] = {0, 0, 0, 5, 99, 0, 0, 0, 1};
	static const unsigned char res_type[] = {
	    0, 0, 0, 8, GUARD_MSG_CONN_RES, 0, 0, 0, 1, 0, 1, 0};
	static const unsigned char trailing[] = {
	    0, 0, 0, 9, GUARD_MSG_CONN_CLOSE, 0, 0, 0, 0, 0, 1, '1', 'x'};
	static const unsigned char bad_role[] = {
	    0, 0,   0,	 17, GUARD_MSG_AUTH_REQ,
	    0, 0,   0,	 1,  0,
	    1, 'a', 0,	 1,  'b',
	    0, 1,   '1', 0,  1,
	    9};
	static const unsigned char crlf[] = {
	    0, 0,   0,	  10,  GUARD_MSG_CONN_OPEN, 0, 0, 0, 1, 0,
	    3, '1', '\r', '\n'};

	(void)state;
	expect_dropped(oversized, sizeof(oversized));
	expect_dropped(short_len, sizeof(short_len));
	expect_dropped(bad_type, sizeof(bad_type));
	expect_dropped(res_type, sizeof(res_type));
	expect_dropped(trailing, sizeof(trailing));
	expect_dropped(bad_role, sizeof(bad_role));
	expect_dropped(crlf, sizeof(crlf));
}

static void
test_reload(void **state)
{
	char *a = user_line(ALICE, ALICE_PW, NULL);
	char *c = user_line("carol@local.test", "carol pw", NULL);
	char text[2048];

	(void)state;
	snprintf(text, sizeof(text), "%s%s", a, c);
	write_file(users_path, text);
	assert_int_equal(guard_send_reload(G.master_fd), 0);
	for (int i = 0;
	     i < 500 && !guard_client_is_user(G.gc, "carol@local.test"); i++)
		run_for(10);
	assert_true(guard_client_is_user(G.gc, "carol@local.test"));
	assert_false(guard_client_is_user(G.gc, BOB));
	assert_int_equal(
	    auth("carol@local.test", "carol pw", "192.0.2.1", NULL),
	    GUARD_AUTH_OK);
	assert_int_equal(auth(BOB, BOB_PW, "192.0.2.1", NULL), GUARD_AUTH_FAIL);

	/* A bad file is refused; the old users stay. */
	write_file(users_path, "this is not a users file\n");
	assert_int_equal(guard_send_reload(G.master_fd), 0);
	run_for(300);
	assert_true(guard_client_is_user(G.gc, "carol@local.test"));
	assert_int_equal(
	    auth("carol@local.test", "carol pw", "192.0.2.1", NULL),
	    GUARD_AUTH_OK);
	/* Back to a good file for the tests that follow. */
	write_file(users_path, text);
	free(a);
	free(c);
}

static void
test_log_lines(void **state)
{
	char *log = read_log();

	(void)state;
	assert_non_null(strstr(log, "guard auth-failure client=203.0.113.5 "
				    "account=\"" ALICE "\" role=submission"));
	assert_non_null(strstr(log, "guard lock kind=address "
				    "key=203.0.113.5/32 until="));
	assert_non_null(strstr(log, "guard lock kind=account "
				    "key=\"" BOB "\" until="));
	assert_non_null(strstr(log, "guard auth-locked client=203.0.113.5"));
	assert_non_null(strstr(log, "guard unlock key="));
	assert_non_null(strstr(log, "bad-frame"));
	/* A user name with CR LF never reaches the guard (the client sends
	   a name that is just as wrong), and no password is logged. */
	assert_non_null(strstr(log, "account=\"\\x7f\""));
	assert_null(strstr(log, ALICE_PW));
	assert_null(strstr(log, "stale"));
	assert_null(strstr(log, "guess1"));
	assert_null(strstr(log, "Sanitizer"));
	assert_null(strstr(log, "runtime error"));
	if (getenv("TEST_GUARD_SHOW_LOG") != NULL)
		fputs(log, stderr);
	free(log);
}

/* auth_failure_delay: FAIL and LOCKED come late, OK at once. */
static void
test_failure_delay(void **state)
{
	struct config c = cfg;
	struct guard_run r;
	struct timespec t0, t1;
	double dt;

	(void)state;
	c.auth_failure_delay = 1;
	c.control_socket = NULL;
	c.auth_account_failures = 1;
	r = start_guard(&c);
	wait_ready(r.gc);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(
	    auth_on(r.gc, "carol@local.test", "nope", "192.0.2.99", NULL),
	    GUARD_AUTH_FAIL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(dt >= 1.0 && dt < 3.0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(
	    auth_on(r.gc, "carol@local.test", "carol pw", "192.0.2.99", NULL),
	    GUARD_AUTH_LOCKED);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(dt >= 1.0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(auth_on(r.gc, ALICE, ALICE_PW, "192.0.2.99", NULL),
			 GUARD_AUTH_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(dt < 0.9);
	stop_guard(&r);
}

/*
 * A guard with no users (no file, then an empty one) answers every AUTH
 * TEMPFAIL (454 4.7.0) and counts nothing: with thresholds of 1, the
 * right password works once a good file is loaded.
 */
static void
test_no_users(void **state)
{
	char missing[160], *a = user_line(ALICE, ALICE_PW, NULL), *log;
	struct config c = cfg;
	struct guard_run r;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/no-users", dir);
	c.users_file = missing;
	c.control_socket = NULL;
	c.auth_account_failures = 1;
	c.auth_address_failures = 1;
	r = start_guard(&c);
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    auth_on(r.gc, ALICE, "wrong", "192.0.2.77", NULL),
		    GUARD_AUTH_TEMPFAIL);
	write_file(missing, "# no users yet\n");
	assert_int_equal(guard_send_reload(r.master_fd), 0);
	run_for(300);
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    auth_on(r.gc, "nobody@local.test", "x", "192.0.2.77", NULL),
		    GUARD_AUTH_TEMPFAIL);
	write_file(missing, a);
	assert_int_equal(guard_send_reload(r.master_fd), 0);
	for (int i = 0; i < 500 && !guard_client_is_user(r.gc, ALICE); i++)
		run_for(10);
	assert_int_equal(auth_on(r.gc, ALICE, ALICE_PW, "192.0.2.77", NULL),
			 GUARD_AUTH_OK);
	stop_guard(&r);
	log = read_log();
	assert_non_null(strstr(log, "guard auth-unavailable client=192.0.2.77 "
				    "account=\"" ALICE "\" role=submission "
				    "reason=no-users"));
	assert_null(strstr(log, "auth-failure client=192.0.2.77"));
	assert_non_null(strstr(log, "users-none"));
	assert_null(strstr(log, "key=192.0.2.77"));
	free(log);
	free(a);
}

/* --- the postmaster's notice (NOTICE, NOTICE_DONE) ------------------- */

struct notice_res {
	int calls;
	uint32_t id;
	char account[GUARD_USER_MAX + 1];
	uint32_t count;
	bool done; /* a notice arrived */
};

static void
notice_cb(uint32_t id, const char *account, uint32_t count,
	  uint32_t baseline, void *arg)
{
	struct notice_res *r = arg;

	(void)baseline;
	r->calls++;
	r->id = id;
	snprintf(r->account, sizeof(r->account), "%s", account);
	r->count = count;
	r->done = true;
}

struct send_res {
	bool done;
	struct guard_send_reply reply;
};

static void
send_cb(const struct guard_send_reply *reply, void *arg)
{
	struct send_res *r = arg;

	r->done = true;
	r->reply = *reply;
}

/* One whole frame from a raw worker socket (blocking, bounded by poll). */
static void
raw_frame(int fd, struct guard_msg *m)
{
	unsigned char buf[GUARD_HEADER_LEN + GUARD_FRAME_MAX];
	struct pollfd pfd = {fd, POLLIN, 0};
	size_t have = 0, want = 4;
	const char *error;

	while (have < want) {
		ssize_t n;

		assert_int_equal(poll(&pfd, 1, 10000), 1);
		n = read(fd, buf + have, want - have);
		assert_true(n > 0);
		have += (size_t)n;
		if (have == 4) {
			want = guard_proto_frame_len(buf);
			assert_true(want > 4);
		}
	}
	assert_int_equal(guard_proto_decode(buf, want, m, &error), 0);
}

static void
raw_send(int fd, const struct guard_msg *m)
{
	unsigned char buf[GUARD_HEADER_LEN + GUARD_FRAME_MAX];
	size_t n = guard_proto_encode(m, buf, sizeof(buf));

	assert_true(n > 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
}

/* Wait (bounded: 10 s, the loop running) for `text` in the guard's log. */
static bool
log_has(const char *text)
{
	bool found = false;

	for (int i = 0; i < 500 && !found; i++) {
		char *log = read_log();

		found = strstr(log, text) != NULL;
		free(log);
		if (!found)
			run_for(20);
	}
	return found;
}

static void
test_notice(void **state)
{
	static struct guard_msg m;
	struct notice_res got = {0};
	struct send_res res = {0};
	struct pollfd pfd;
	uint32_t id;
	char buf[64];
	int w[2];

	(void)state;
	guard_client_on_notice(G.gc, notice_cb, &got);
	/* burst-floor 0 here: the first recipient raises the alarm; the
	   notice comes in a frame of its own, with no request behind it. */
	guard_client_send(G.gc, ALICE, "r1@remote.test", send_cb, &res);
	assert_true(run_until(&res.done, 10000));
	assert_true(res.reply.alarm_raised);
	assert_true(run_until(&got.done, 10000));
	assert_int_equal(got.calls, 1);
	assert_string_equal(got.account, ALICE);
	assert_int_equal(got.count, 1);
	assert_int_not_equal(got.id, 0);
	/* Confirmed by its holder: forgotten; confirmed again: ignored, and
	   the worker stays connected. */
	guard_client_notice_done(G.gc, got.id, ALICE);
	assert_true(log_has("notice-confirmed kind=send-burst id="));
	guard_client_notice_done(G.gc, got.id, ALICE);
	assert_true(log_has("reason=not-pending"));
	assert_true(guard_client_is_connected(G.gc));

	/* A raw worker raises bob's alarm and holds his notice. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, w), 0);
	assert_int_equal(guard_send_worker_fd(G.master_fd, w[1]), 0);
	close(w[1]);
	memset(&m, 0, offsetof(struct guard_msg, arena));
	m.type = GUARD_MSG_SEND_REQ;
	m.id = 1;
	m.user = BOB;
	m.rcpt = "r2@remote.test";
	raw_send(w[0], &m);
	do
		raw_frame(w[0], &m);
	while (m.type != GUARD_MSG_SEND_RES);
	assert_int_equal(m.alarm, 1);
	raw_frame(w[0], &m);
	assert_int_equal(m.type, GUARD_MSG_NOTICE);
	assert_string_equal(m.user, BOB);
	id = m.id;
	/* Another worker's confirmation changes nothing. */
	memset(&got, 0, sizeof(got));
	guard_client_notice_done(G.gc, id, BOB);
	assert_true(log_has("reason=not-its-holder"));
	/* The holder names another account: dropped as hostile. */
	memset(&m, 0, offsetof(struct guard_msg, arena));
	m.type = GUARD_MSG_NOTICE_DONE;
	m.id = id;
	m.user = ALICE;
	raw_send(w[0], &m);
	pfd.fd = w[0];
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(read(w[0], buf, sizeof(buf)), 0);
	close(w[0]);
	assert_true(log_has("notice-done-refused id="));
	/* Its holder gone, the notice is handed to the worker still there
	   (at the guard's next look, within 5 s), its second attempt. */
	assert_true(run_until(&got.done, 15000));
	assert_int_equal(got.id, id);
	assert_string_equal(got.account, BOB);
	assert_true(log_has("attempt=2 of=5"));
	guard_client_notice_done(G.gc, id, BOB);
	snprintf(buf, sizeof(buf), "notice-confirmed kind=send-burst id=%u ",
		 id);
	assert_true(log_has(buf));
	guard_client_on_notice(G.gc, NULL, NULL);
	assert_int_equal(auth(ALICE, ALICE_PW, "192.0.2.1", NULL),
			 GUARD_AUTH_OK);
}

/* The guard dies: pending and later AUTH get TEMPFAIL, CONN_OPEN OK;
   a new socket brings it back. */
static void
test_guard_dies(void **state)
{
	struct auth_res pending = {0};
	int status;

	(void)state;
	guard_client_auth(G.gc, "nobody@local.test", 17, "x", 1, "192.0.2.1",
			  ROLE_SUBMISSION, auth_cb, &pending);
	assert_int_equal(kill(G.pid, SIGKILL), 0);
	assert_int_equal(waitpid(G.pid, &status, 0), G.pid);
	assert_true(run_until(&pending.done, 5000));
	assert_int_equal(pending.calls, 1);
	assert_int_equal(pending.result, GUARD_AUTH_TEMPFAIL);
	assert_false(guard_client_is_connected(G.gc));
	assert_int_equal(auth(ALICE, ALICE_PW, "192.0.2.1", NULL),
			 GUARD_AUTH_TEMPFAIL);
	assert_int_equal(conn_open("192.0.2.1"), GUARD_CONN_OK);
	/* The last known user list is kept. */
	assert_true(guard_client_is_user(G.gc, ALICE));

	/* A cancelled request's callback never runs. */
	struct auth_res cancelled = {0};
	uint32_t id =
	    guard_client_auth(G.gc, ALICE, 16, ALICE_PW, 13, "192.0.2.1",
			      ROLE_SUBMISSION, auth_cb, &cancelled);

	guard_client_cancel(G.gc, id);
	run_for(50);
	assert_false(cancelled.done);

	/* The master restarts the guard and hands the worker a new end. */
	close(G.master_fd);
	struct guard_run n = start_guard(&cfg);

	guard_client_free(&n.gc);
	int w[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, w), 0);
	assert_int_equal(guard_send_worker_fd(n.master_fd, w[1]), 0);
	close(w[1]);
	assert_int_equal(guard_client_set_fd(G.gc, w[0]), 0);
	G.pid = n.pid;
	G.master_fd = n.master_fd;
	assert_int_equal(auth(ALICE, ALICE_PW, "192.0.2.1", NULL),
			 GUARD_AUTH_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_users_pushed),
	    cmocka_unit_test(test_verdicts),
	    cmocka_unit_test(test_parallel),
	    cmocka_unit_test(test_address_lockout),
	    cmocka_unit_test(test_account_lockout),
	    cmocka_unit_test(test_conn_limits),
	    cmocka_unit_test(test_bad_frames),
	    cmocka_unit_test(test_reload),
	    cmocka_unit_test(test_log_lines),
	    cmocka_unit_test(test_failure_delay),
	    cmocka_unit_test(test_no_users),
	    cmocka_unit_test(test_notice),
	    cmocka_unit_test(test_guard_dies),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
