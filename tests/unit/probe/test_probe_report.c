/*
 * test_probe_report.c - the grade, the exit status, the JSON object and
 * the human report of `postern probe` (src/probe/probe_report.c). Details
 * carry bytes a server sent: the JSON must stay valid and the human
 * report printable whatever they hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probe/probe_int.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* A report of n ports, every check passed, roles STARTTLS. */
static void
report_make(struct probe_report *rep, size_t n)
{
	memset(rep, 0, sizeof(*rep));
	snprintf(rep->target, sizeof(rep->target), "mx.example.org");
	rep->ports = calloc(n, sizeof(*rep->ports));
	assert_non_null(rep->ports);
	rep->n_ports = n;
	for (size_t i = 0; i < n; i++) {
		rep->ports[i].port = 25 + (unsigned)i;
		rep->ports[i].role = PROBE_ROLE_STARTTLS;
		probe_set_rest(&rep->ports[i], PROBE_PASS, "fine");
	}
	rep->sent = strdup("3 connections");
}

/* What a failure of each check costs: the rule of docs/probe.md,
   written out again here so that a change to one is caught. */
static const struct {
	enum probe_check id;
	const char *name;
	char grade;
} severity[] = {
    {PC_BANNER_VERSION, "banner.version", 'C'},
    {PC_TLS_STARTTLS, "tls.starttls", 'D'},
    {PC_TLS_PROTOCOLS, "tls.protocols", 'D'},
    {PC_TLS_CIPHERS, "tls.ciphers", 'D'},
    {PC_TLS_CERTIFICATE, "tls.certificate", 'D'},
    {PC_TLS_DANE, "tls.dane", 'D'},
    {PC_AUTH_BEFORE_TLS, "auth.before_tls", 'E'},
    {PC_AUTH_PLAINTEXT, "auth.plaintext_mechanisms", 'E'},
    {PC_RELAY_OPEN, "relay.open", 'F'},
    {PC_USERS_VRFY, "users.vrfy", 'C'},
    {PC_USERS_EXPN, "users.expn", 'C'},
    {PC_PIPELINING, "pipelining", 'C'},
    {PC_SMUGGLING, "smuggling", 'F'},
    {PC_LOCKOUT, "lockout", 'D'},
    {PC_CONN_LIMIT, "conn-limit", 'C'},
};

static void
test_names_and_severity(void **state)
{
	(void)state;
	assert_int_equal(N_ELEMENTS(severity), PC_COUNT);
	for (size_t i = 0; i < N_ELEMENTS(severity); i++) {
		assert_int_equal(severity[i].id, (enum probe_check)i);
		assert_string_equal(probe_check_name(severity[i].id),
				    severity[i].name);
		assert_int_equal(probe_check_severity(severity[i].id),
				 severity[i].grade);
	}
	assert_string_equal(probe_role_name(PROBE_ROLE_IMPLICIT_TLS),
			    "implicit-tls");
	assert_string_equal(probe_result_name(PROBE_WARN), "warn");
}

/* One failure on the second port decides the grade; a warning alone
   gives B; skips and passes give A. */
static void
test_grade(void **state)
{
	struct probe_report rep;
	const char *why;

	(void)state;
	report_make(&rep, 2);
	assert_int_equal(probe_grade(&rep, &why), 'A');
	assert_int_equal(probe_exit_status(&rep), 0);
	probe_set(&rep.ports[0], PC_TLS_DANE, PROBE_SKIP, "no records");
	assert_int_equal(probe_grade(&rep, &why), 'A');
	probe_set(&rep.ports[1], PC_PIPELINING, PROBE_WARN, "odd");
	assert_int_equal(probe_grade(&rep, &why), 'B');
	assert_int_equal(probe_exit_status(&rep), 0);
	probe_report_free(&rep);

	for (size_t i = 0; i < N_ELEMENTS(severity); i++) {
		char expect[128];

		report_make(&rep, 2);
		probe_set(&rep.ports[1], PC_PIPELINING, PROBE_WARN, "odd");
		probe_set(&rep.ports[1], severity[i].id, PROBE_FAIL, "bad");
		assert_int_equal(probe_grade(&rep, &why), severity[i].grade);
		snprintf(expect, sizeof(expect), "%s failed on port 26",
			 severity[i].name);
		assert_string_equal(why, expect);
		assert_int_equal(probe_exit_status(&rep), 1);
		/* a lesser failure elsewhere changes nothing */
		probe_set(&rep.ports[0], PC_BANNER_VERSION, PROBE_FAIL, "v");
		assert_int_equal(probe_grade(&rep, &why), severity[i].grade);
		probe_report_free(&rep);
	}

	/* The worst failure wins, wherever it is. */
	report_make(&rep, 3);
	probe_set(&rep.ports[0], PC_USERS_VRFY, PROBE_FAIL, "x");
	probe_set(&rep.ports[1], PC_AUTH_BEFORE_TLS, PROBE_FAIL, "x");
	probe_set(&rep.ports[2], PC_TLS_CIPHERS, PROBE_FAIL, "x");
	assert_int_equal(probe_grade(&rep, &why), 'E');
	probe_set(&rep.ports[2], PC_RELAY_OPEN, PROBE_FAIL, "x");
	assert_int_equal(probe_grade(&rep, &why), 'F');
	probe_report_free(&rep);

	/* No port answered: no grade, exit 2; one closed port among
	   others does not matter. */
	report_make(&rep, 2);
	rep.ports[0].role = PROBE_ROLE_CLOSED;
	rep.ports[1].role = PROBE_ROLE_UNKNOWN;
	assert_int_equal(probe_grade(&rep, &why), '-');
	assert_int_equal(probe_exit_status(&rep), 2);
	rep.ports[1].role = PROBE_ROLE_IMPLICIT_TLS;
	assert_int_equal(probe_grade(&rep, &why), 'A');
	assert_int_equal(probe_exit_status(&rep), 0);
	probe_report_free(&rep);
}

static char *
capture_json_string(const char *s, size_t len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	probe_json_string(f, s, len);
	fclose(f);
	return buf;
}

/* RFC 8259 section 7 escaping of hostile bytes. */
static void
test_json_string(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
	    {"plain", 5, "\"plain\""},
	    {"\"\\", 2, "\"\\\"\\\\\""},
	    {"\x01\x1b\x7f\n\r\t", 6, "\"\\u0001\\u001b\\u007f\\n\\r\\t\""},
	    {"a\0b", 3, "\"a\\u0000b\""},
	    {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},
	    {"\xf0\x9f\x93\xa7", 4, "\"\xf0\x9f\x93\xa7\""},
	    {"\xff\xc3(", 3, "\"\\ufffd\\ufffd(\""},
	    {"\xc0\xaf", 2, "\"\\ufffd\\ufffd\""},
	    {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""},
	    {"\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
	    {"\xe2\x80", 2, "\"\\ufffd\\ufffd\""},
	    {"\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\\u2028\\u2029\""},
	    {"</script>", 9, "\"</script>\""},
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *got = capture_json_string(cases[i].in, cases[i].len);

		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

/* The object has exactly the shape of issue 11, every check listed. */
static void
test_json_report(void **state)
{
	struct probe_report rep;
	char *buf = NULL, *p;
	size_t size = 0, n = 0;
	FILE *f;

	(void)state;
	report_make(&rep, 1);
	snprintf(rep.target, sizeof(rep.target), "a\"b");
	probe_set(&rep.ports[0], PC_BANNER_VERSION, PROBE_FAIL,
		  "greeting: Postfix \x1b[2J \"3.7\"");
	f = open_memstream(&buf, &size);
	probe_report_json(&rep, f);
	fclose(f);
	assert_non_null(strstr(buf,
			       "{\"target\": \"a\\\"b\", \"grade\": \"C\", "
			       "\"ports\": [{\"port\": 25, \"role\": "
			       "\"starttls\", \"checks\": [{\"id\": "
			       "\"banner.version\", \"result\": \"fail\", "
			       "\"detail\": \"greeting: Postfix "
			       "\\u001b[2J \\\"3.7\\\"\"}, {\"id\": "
			       "\"tls.starttls\", \"result\": \"pass\", "
			       "\"detail\": \"fine\"}"));
	assert_ptr_equal(strstr(buf, "{\"target\""), buf);
	assert_string_equal(buf + strlen(buf) - 6, "}]}]}\n");
	for (p = buf; (p = strstr(p, "{\"id\": ")) != NULL; p++)
		n++;
	assert_int_equal(n, PC_COUNT);
	for (p = buf; *p != '\0'; p++)
		assert_true((unsigned char)*p >= 0x20 || *p == '\n');
	free(buf);

	rep.ports[0].role = PROBE_ROLE_CLOSED;
	buf = NULL;
	f = open_memstream(&buf, &size);
	probe_report_json(&rep, f);
	fclose(f);
	assert_non_null(strstr(buf, "\"grade\": null"));
	assert_non_null(strstr(buf, "\"role\": \"closed\""));
	free(buf);
	probe_report_free(&rep);
}

/* The human report: printable ASCII only, one line per check, details
   cut unless verbose, the grade last. */
static void
test_text_report(void **state)
{
	struct probe_report rep;
	char long_detail[400];
	char *buf = NULL;
	size_t size = 0, lines = 0;
	FILE *f;

	(void)state;
	report_make(&rep, 2);
	memset(long_detail, 'x', sizeof(long_detail) - 1);
	long_detail[sizeof(long_detail) - 1] = '\0';
	probe_set(&rep.ports[0], PC_TLS_CIPHERS, PROBE_PASS, "%s", long_detail);
	probe_set(&rep.ports[1], PC_BANNER_VERSION, PROBE_WARN,
		  "name \x1b]0;pwned\x07 \xc3\xa9");
	f = open_memstream(&buf, &size);
	probe_report_text(&rep, false, f);
	fclose(f);
	for (char *p = buf; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		assert_true((c >= 0x20 && c < 0x7f) || c == '\n');
		lines += c == '\n';
	}
	assert_non_null(strstr(buf, "postern probe of mx.example.org\n"));
	assert_non_null(strstr(buf, "sent: 3 connections\n"));
	assert_non_null(strstr(buf, "port 25 (starttls)\n"));
	assert_non_null(strstr(buf, "  WARN  banner.version"));
	assert_non_null(strstr(buf, "name ?]0;pwned? ??\n"));
	assert_non_null(strstr(buf, "xxx...\n"));
	assert_null(strstr(buf, long_detail));
	assert_non_null(strstr(buf, "\ngrade: B ("));
	/* title, sent, then per port a blank line, a title and the checks,
	   then a blank line and the grade */
	assert_int_equal(lines, 2 + 2 * (2 + PC_COUNT) + 2);
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &size);
	probe_report_text(&rep, true, f);
	fclose(f);
	assert_non_null(strstr(buf, long_detail));
	free(buf);
	probe_report_free(&rep);
}

static void
test_buf(void **state)
{
	struct probe_buf b = {0};
	char *s;

	(void)state;
	probe_buf_add_peer(&b, "ok \\ \x01\xff", 7, 100);
	assert_string_equal(b.s, "ok \\x5c \\x01\\xff");
	probe_buf_free(&b);
	probe_buf_add_peer(&b, "abcdef", 6, 3);
	assert_string_equal(b.s, "abc...");
	probe_buf_addf(&b, "%d", 42);
	s = probe_buf_take(&b);
	assert_string_equal(s, "abc...42");
	assert_null(b.s);
	free(s);
	s = probe_buf_take(&b);
	assert_string_equal(s, "");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_and_severity),
	    cmocka_unit_test(test_grade),
	    cmocka_unit_test(test_json_string),
	    cmocka_unit_test(test_json_report),
	    cmocka_unit_test(test_text_report),
	    cmocka_unit_test(test_buf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
