/*
 * test_guard_state.c - the guard's lockout persistence (src/auth/
 * guard_state.c) when a write is refused: a flush whose batch fills up
 * (GSTORE_BATCH_MAX, the other writers' records in it too) and fails to
 * commit ("store full", a small map through guard_state_start_size())
 * drops lockout records already handed over; every lockout record is then
 * written again by the next flush that succeeds, and the failure is
 * logged once a minute, not once a flush. A deletion the failed batch
 * dropped (an unlock) is made again by the next flush.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "auth/guard_int.h"
#include "auth/guard_state.h"
#include "lib/log.h"

#define MAP_SMALL ((size_t)1024 * 1024)
#define N_CLIENTS 20 /* each failure: an account, an address, a /24 */
#define N_OWNERS 5   /* each success: a known network */
#define FILLER_LEN 200

static const unsigned char secret[LOCKOUT_SECRET_LEN] =
    "0123456789abcdef0123456789abcde";

struct fixture {
	char dir[64];
	struct config cfg;
	struct event_base *base;
	struct lockout *lo;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct lockout_config lc;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_guard_state.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg.guard_state = f->dir;
	f->base = event_base_new();
	assert_non_null(f->base);
	memset(&lc, 0, sizeof(lc));
	lc.account_failures = 5;
	lc.address_failures = 10;
	lc.network_failures = 30;
	lc.window = 900;
	lc.lock_time = 300;
	lc.lock_max = 3600;
	lc.relapse_memory = 86400;
	lc.max_keys = 100000;
	f->lo = lockout_new(&lc, secret);
	assert_non_null(f->lo);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	lockout_free(&f->lo);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* N_CLIENTS failures (3 keys each) and N_OWNERS successes (a known
   network each), all changed since the last export. */
static void
make_records(struct lockout *lo)
{
	struct lockout_event ev[LOCKOUT_MAX_EVENTS];
	time_t now = guard_now();
	char addr[32], account[32];

	for (int i = 0; i < N_CLIENTS; i++) {
		snprintf(addr, sizeof(addr), "198.51.%d.7", i);
		snprintf(account, sizeof(account), "user%d", i);
		assert_int_equal(lockout_auth_begin(lo, addr, account, now,
						    NULL),
				 LOCKOUT_OK);
		(void)lockout_auth_failure(lo, addr, account, "wrong", 5, now,
					   ev);
	}
	for (int i = 0; i < N_OWNERS; i++) {
		snprintf(addr, sizeof(addr), "203.0.113.%d", i + 1);
		snprintf(account, sizeof(account), "owner%d", i);
		assert_int_equal(lockout_auth_begin(lo, addr, account, now,
						    NULL),
				 LOCKOUT_OK);
		(void)lockout_auth_success(lo, addr, account, now);
	}
}

/* Another writer's records (as guard_send.c's) in the open batch, all
   but `room` of GSTORE_BATCH_MAX: the lockout's export fills the batch,
   and the commit that the filling put makes cannot fit the map. */
static void
fill_batch(struct gstore *st, size_t room)
{
	static char val[FILLER_LEN];
	char key[24];

	memset(val, 'f', sizeof(val));
	for (size_t i = 0; i + room < GSTORE_BATCH_MAX; i++) {
		snprintf(key, sizeof(key), "filler%zu", i);
		assert_int_equal(gstore_put(st, GSTORE_SEND, key, strlen(key),
					    val, sizeof(val)),
				 0);
	}
	assert_int_equal(gstore_pending(st), GSTORE_BATCH_MAX - room);
}

/* stderr (the log) to a file while `fn` runs; no assertion in between
   (a failed one would leave it redirected). Returns the text. */
static char *
logged(const struct fixture *f, void (*fn)(void))
{
	char path[128];
	int fd, saved;
	struct stat sb;
	char *text;

	snprintf(path, sizeof(path), "%s/log.txt", f->dir);
	fflush(stderr);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(fstat(fd, &sb), 0);
	text = calloc(1, (size_t)sb.st_size + 1);
	assert_non_null(text);
	assert_int_equal(pread(fd, text, (size_t)sb.st_size, 0),
			 (ssize_t)sb.st_size);
	close(fd);
	assert_int_equal(unlink(path), 0);
	fputs(text, stderr); /* still shown with the test's output */
	return text;
}

static int
count_in(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void
check_all_written(const struct fixture *f, size_t keys)
{
	struct gstore *st = guard_state_store();

	assert_int_equal(gstore_pending(st), 0);
	assert_int_equal(gstore_count(st, GSTORE_LOCKOUT), keys);
	assert_int_equal(gstore_count(st, GSTORE_KNOWN_NETS), N_OWNERS);
	assert_int_equal(gstore_count(st, GSTORE_SEND), 0); /* dropped */
	(void)f;
}

static void
test_refused_write_rewritten(void **state)
{
	struct fixture *f = *state;
	struct gstore *st;
	size_t keys;
	char *log;

	assert_int_equal(guard_state_start_size(f->base, &f->cfg, f->lo,
						 MAP_SMALL),
			 0);
	st = guard_state_store();
	assert_non_null(st);
	make_records(f->lo);
	keys = 3 * N_CLIENTS; /* the successes leave no lockout record */
	/* Room for a third of the lockout's records: the put of the next
	   one commits the batch, which fails; the rest go into a new batch,
	   which the flush commits. */
	fill_batch(st, N_CLIENTS);
	log = logged(f, guard_state_flush);
	assert_int_equal(count_in(log, "gstore-write-failed "), 1);
	assert_int_equal(count_in(log, "error=\"store full\""), 1);
	free(log);
	assert_int_equal(gstore_pending(st), 0);
	assert_true(gstore_count(st, GSTORE_LOCKOUT) < keys); /* dropped */
	/* The space is there again (the fillers were dropped): the next
	   flush writes every record, the dropped ones too. */
	guard_state_flush();
	check_all_written(f, keys);
	/* Another failed commit in the same minute: no new line. */
	fill_batch(st, 1);
	log = logged(f, guard_state_flush);
	assert_int_equal(count_in(log, "gstore-write-failed"), 0);
	free(log);
	guard_state_flush();
	check_all_written(f, keys);
	guard_state_stop();
	/* And they are in the file. */
	assert_int_equal(gstore_open_size(f->dir, MAP_SMALL, &st,
					  &(const char *){NULL}),
			 0);
	assert_int_equal(gstore_count(st, GSTORE_LOCKOUT), keys);
	assert_int_equal(gstore_count(st, GSTORE_KNOWN_NETS), N_OWNERS);
	gstore_close(&st);
}

/* An unlock deletes records; a flush whose batch fails drops a
   deletion with it. The next flush deletes it again: the unlocked
   account and address do not come back locked from the store. */
static void
test_refused_delete_repeated(void **state)
{
	struct fixture *f = *state;
	struct gstore *st;
	size_t keys = 3 * N_CLIENTS;
	char *log;

	assert_int_equal(guard_state_start_size(f->base, &f->cfg, f->lo,
						 MAP_SMALL),
			 0);
	st = guard_state_store();
	make_records(f->lo);
	guard_state_flush();
	check_all_written(f, keys);
	/* The account, the address and its /24: three records to delete. */
	assert_int_equal(lockout_unlock(f->lo, "user0", guard_now()), 1);
	assert_int_equal(lockout_unlock(f->lo, "198.51.0.7", guard_now()), 2);
	fill_batch(st, 1); /* the first deletion fills the batch: lost */
	log = logged(f, guard_state_flush);
	assert_int_equal(count_in(log, "gstore-write-failed "), 1);
	free(log);
	assert_true(gstore_count(st, GSTORE_LOCKOUT) > keys - 3);
	guard_state_flush();
	check_all_written(f, keys - 3);
	guard_state_stop();
	assert_int_equal(gstore_open_size(f->dir, MAP_SMALL, &st,
					  &(const char *){NULL}),
			 0);
	assert_int_equal(gstore_count(st, GSTORE_LOCKOUT), keys - 3);
	gstore_close(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_refused_write_rewritten,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_delete_repeated,
					    setup, teardown),
	};

	log_init("test_guard_state", true, LOG_LEVEL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
