/*
 * test_metrics.c - the metrics module without a server: the shared
 * mapping (slots summed, gauges of a dead slot reset, the read-only map),
 * the rings behind `postern status`, histograms, the exposition text,
 * and the scrape request (path, method, Accept negotiation, RFC 9110
 * 12.5.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/metrics.h"
#include "metrics/metrics_req.h"
#include "metrics/metrics_text.h"

static char *
tmp_path(void)
{
	static char path[64];

	snprintf(path, sizeof(path), "/tmp/postern-test-metrics-%ld",
		 (long)getpid());
	return path;
}

static void
test_slots_are_summed(void **state)
{
	struct metrics_map *map = NULL, *ro = NULL;
	struct metrics_snapshot snap;
	const char *err = NULL;

	(void)state;
	assert_int_equal(metrics_create(tmp_path(), -1, &map, &err), 0);
	metrics_attach(map, 0);
	metrics_add(MC_RESTARTS, 2);
	metrics_role_add(MG_SESSIONS_MX, 1, 3); /* submission */
	metrics_attach(map, 5);
	metrics_add(MC_RESTARTS, 1);
	metrics_role_add(MG_SESSIONS_MX, 1, 1);
	metrics_conn(2, METRICS_CONN_RATE);
	metrics_login(1);
	metrics_login(99); /* out of range: tempfail */
	metrics_refused(NULL, "size");
	metrics_refused(NULL, "whatever"); /* unknown: tempfail */
	metrics_refused(NULL, "send_limit_day");
	metrics_refused(NULL, "send_burst");
	metrics_refused(NULL, "send_burst");
	assert_int_equal(metrics_open(tmp_path(), &ro, &err), 0);
	metrics_read(ro, (int64_t)time(NULL), &snap);
	assert_int_equal(snap.cell[MC_RESTARTS], 3);
	assert_int_equal(snap.cell[MG_SESSIONS_SUB], 4);
	assert_int_equal(snap.cell[MC_CONN_SUBS_RATE], 1);
	assert_int_equal(snap.cell[MC_LOGIN_FAIL], 1);
	assert_int_equal(snap.cell[MC_LOGIN_TEMP], 1);
	assert_int_equal(snap.cell[MC_REFUSED_SIZE], 1);
	assert_int_equal(snap.cell[MC_REFUSED_TEMP], 1);
	assert_int_equal(snap.cell[MC_RREFUSED_HOUR], 0);
	assert_int_equal(snap.cell[MC_RREFUSED_DAY], 1);
	assert_int_equal(snap.cell[MC_RREFUSED_NEW], 0);
	assert_int_equal(snap.cell[MC_RREFUSED_BURST], 2);
	/* A dead worker's sessions go, its counters stay. */
	metrics_slot_reset_gauges(map, 5);
	metrics_read(ro, (int64_t)time(NULL), &snap);
	assert_int_equal(snap.cell[MG_SESSIONS_SUB], 3);
	assert_int_equal(snap.cell[MC_RESTARTS], 3);
	metrics_attach(NULL, 0); /* the dummy slot: unseen */
	metrics_add(MC_RESTARTS, 10);
	metrics_read(ro, (int64_t)time(NULL), &snap);
	assert_int_equal(snap.cell[MC_RESTARTS], 3);
	/* A read-only map cannot be attached for writing. */
	metrics_attach(ro, 0);
	metrics_add(MC_RESTARTS, 10);
	metrics_read(ro, (int64_t)time(NULL), &snap);
	assert_int_equal(snap.cell[MC_RESTARTS], 3);
	metrics_attach(NULL, 0);
	metrics_close(&ro);
	metrics_close(&map);
	unlink(tmp_path());
}

/* What is at the path already is never opened: a hard link there to
   another file (the directory may be the guard account's) leaves that
   file as it was, and the mapping is a new file. */
static void
test_create_never_opens_what_is_there(void **state)
{
	static const char victim_text[] = "not the metrics\n";
	char victim[80], buf[64];
	struct metrics_map *map = NULL;
	const char *err = NULL;
	struct stat st;
	FILE *f;

	(void)state;
	snprintf(victim, sizeof(victim), "%s-victim", tmp_path());
	f = fopen(victim, "w");
	assert_non_null(f);
	assert_int_equal(fputs(victim_text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	unlink(tmp_path());
	assert_int_equal(link(victim, tmp_path()), 0);
	assert_int_equal(metrics_create(tmp_path(), -1, &map, &err), 0);
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, sizeof(victim_text) - 1);
	assert_int_equal(st.st_nlink, 1);
	f = fopen(victim, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, victim_text);
	fclose(f);
	metrics_close(&map);
	unlink(tmp_path());
	unlink(victim);
}

static void
test_rings_and_histograms(void **state)
{
	struct metrics_map *map = NULL;
	struct metrics_snapshot snap;
	const char *err = NULL;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	assert_int_equal(metrics_create(tmp_path(), -1, &map, &err), 0);
	metrics_attach(map, METRICS_SLOT_MASTER);
	for (int i = 0; i < 3; i++)
		metrics_message(0, 0, 2, 100);
	metrics_message(0, -1, 5, 500); /* a failed commit */
	metrics_observe(MH_SPOOL_COMMIT, 0.0007);  /* 0.001 bucket */
	metrics_observe(MH_SPOOL_COMMIT, 100);	   /* +Inf */
	metrics_observe(MH_SPOOL_COMMIT, -1);	   /* clamped to 0 */
	metrics_read(map, now, &snap);
	assert_int_equal(snap.cell[MC_MSG_MX], 3);
	assert_int_equal(snap.cell[MC_REFUSED_TEMP], 1);
	assert_int_equal(snap.cell[MC_RCPT_MX], 6);
	assert_int_equal(snap.cell[MC_BYTES_MX], 300);
	assert_int_equal(snap.last_hour, 3);
	assert_int_equal(snap.last_day, 3);
	assert_int_equal(snap.bucket[MH_SPOOL_COMMIT][0], 1);
	assert_int_equal(snap.bucket[MH_SPOOL_COMMIT][1], 1);
	assert_int_equal(snap.bucket[MH_SPOOL_COMMIT][METRICS_BUCKETS], 1);
	/* Two hours later nothing is in the last hour; a day later, nothing
	   in the last day. */
	metrics_read(map, now + 2 * 3600, &snap);
	assert_int_equal(snap.last_hour, 0);
	assert_int_equal(snap.last_day, 3);
	metrics_read(map, now + 25 * 3600, &snap);
	assert_int_equal(snap.last_day, 0);
	metrics_attach(NULL, 0);
	metrics_close(&map);
	unlink(tmp_path());
}

static char *
render(const struct metrics_snapshot *snap, enum metrics_format f)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	assert_int_equal(metrics_text_write(out, snap, f), 0);
	fclose(out);
	return text;
}

static void
test_text(void **state)
{
	struct metrics_snapshot snap;
	char *t, *o;

	(void)state;
	memset(&snap, 0, sizeof(snap));
	snap.now = 1000;
	snap.cell[MC_LOGIN_FAIL] = 2;
	snap.cell[MG_QUEUE_OLDEST] = 400; /* arrival: age 600 */
	snap.cell[MC_RESTARTS] = -5;	  /* torn: never negative */
	snap.bucket[MH_GUARD_VERIFY][0] = 1;
	snap.bucket[MH_GUARD_VERIFY][2] = 2;
	snap.sum_ns[MH_GUARD_VERIFY] = 1500000000;
	t = render(&snap, METRICS_TEXT);
	o = render(&snap, METRICS_OPENMETRICS);
	assert_non_null(strstr(t, "# TYPE postern_logins_total counter\n"
				  "postern_logins_total{result=\"success\"} 0\n"
				  "postern_logins_total{result=\"failure\"} 2\n"));
	assert_non_null(strstr(o, "# TYPE postern_logins counter\n"));
	assert_non_null(strstr(o, "postern_logins_total{result=\"failure\"} 2"));
	assert_non_null(
	    strstr(t, "postern_queue_oldest_message_age_seconds 600\n"));
	assert_non_null(strstr(t, "postern_worker_restarts_total 0\n"));
	assert_non_null(strstr(
	    t, "postern_guard_verify_seconds_bucket{le=\"0.005\"} 1\n"
	       "postern_guard_verify_seconds_bucket{le=\"0.01\"} 1\n"
	       "postern_guard_verify_seconds_bucket{le=\"0.025\"} 3\n"));
	assert_non_null(strstr(
	    t, "postern_guard_verify_seconds_bucket{le=\"+Inf\"} 3\n"
	       "postern_guard_verify_seconds_sum 1.500000000\n"
	       "postern_guard_verify_seconds_count 3\n"));
	assert_null(strstr(t, "# EOF"));
	assert_string_equal(o + strlen(o) - 6, "# EOF\n");
	free(t);
	free(o);
}

static void
test_request(void **state)
{
	struct metrics_req r;
	static const struct {
		const char *method, *uri;
		int status;
	} cases[] = {
	    {"GET", "/metrics", 200},	  {"HEAD", "/metrics", 200},
	    {"GET", "/metrics?a=b", 200}, {"POST", "/metrics", 405},
	    {"OTHER", "/metrics", 405},	  {"GET", "/metrics/", 404},
	    {"GET", "/metric", 404},	  {"GET", "/", 404},
	    {"GET", "http://h/metrics", 404}, {"POST", "/x", 404},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		metrics_req_parse(cases[i].method, cases[i].uri,
				  strlen(cases[i].uri), NULL, 0, &r);
		assert_int_equal(r.status, cases[i].status);
		if (r.status == 200)
			assert_int_equal(r.is_head,
					 strcmp(cases[i].method, "HEAD") == 0);
	}
}

static void
test_accept(void **state)
{
	static const struct {
		const char *accept;
		enum metrics_format f;
	} cases[] = {
	    /* what Prometheus 2.x sends */
	    {"application/openmetrics-text;version=1.0.0,application/"
	     "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
	     "q=0.5,*/*;q=0.1",
	     METRICS_OPENMETRICS},
	    {"application/openmetrics-text", METRICS_OPENMETRICS},
	    {"Application/OpenMetrics-Text ; Version=1.0.0", METRICS_OPENMETRICS},
	    {"application/openmetrics-text; version=\"1.0.0\"",
	     METRICS_OPENMETRICS},
	    {"application/openmetrics-text;version=0.0.1", METRICS_TEXT},
	    {"application/openmetrics-text;q=0", METRICS_TEXT},
	    {"application/openmetrics-text;q=0.4, text/plain;q=0.5",
	     METRICS_TEXT},
	    {"text/plain;q=0.5, application/openmetrics-text;q=0.5",
	     METRICS_OPENMETRICS}, /* ties go to OpenMetrics */
	    {"text/*;q=0.2, application/openmetrics-text;q=0.3",
	     METRICS_OPENMETRICS},
	    /* the specific range rules over the wildcard */
	    {"text/plain;q=0.1, text/*;q=1, application/openmetrics-text;"
	     "q=0.2",
	     METRICS_OPENMETRICS},
	    {"*/*", METRICS_TEXT},
	    {"", METRICS_TEXT},
	    {"application/json", METRICS_TEXT},
	    /* malformed elements are skipped, the rest still counts */
	    {"garbage, application/openmetrics-text", METRICS_OPENMETRICS},
	    {"application/openmetrics-text;q=2", METRICS_TEXT},
	    {"application/openmetrics-text;q=0.0001", METRICS_TEXT},
	    {"application/openmetrics-text;q=abc", METRICS_TEXT},
	    {"application/openmetrics-text;version=\"1.0.0", METRICS_TEXT},
	    {"application/openmetrics-text;;;", METRICS_OPENMETRICS},
	    {"application/openmetrics-text x", METRICS_TEXT},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum metrics_format f = metrics_req_accept(
		    cases[i].accept, strlen(cases[i].accept));

		if (f != cases[i].f)
			fail_msg("accept \"%s\": got %d", cases[i].accept, f);
	}
	assert_int_equal(metrics_req_accept(NULL, 0), METRICS_TEXT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slots_are_summed),
	    cmocka_unit_test(test_create_never_opens_what_is_there),
	    cmocka_unit_test(test_rings_and_histograms),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_request),
	    cmocka_unit_test(test_accept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
