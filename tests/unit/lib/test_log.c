/*
 * test_log.c - log_escape(): every octet either kept or written as \xNN,
 * so that no escaped value holds a space, a quote, '=', '[' or ']' (issue
 * 6 item 1: a value must never carry a fake "postern[PID]: guard
 * auth-failure client=..." for fail2ban); cuts; and the line prefix the
 * fail2ban filter (contrib/fail2ban/filter.d/postern.conf) expects.
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/log.h"

/* The octets kept as they are: printable ASCII but these seven. */
static bool
kept(unsigned c)
{
	return c > 0x20 && c < 0x7f && strchr(" \"'\\=[]", (int)c) == NULL;
}

static void
test_every_octet(void **state)
{
	for (unsigned c = 0; c < 256; c++) {
		char in[1] = {(char)c}, out[16], want[16];

		log_escape(out, sizeof(out), in, 1, 10);
		if (kept(c))
			snprintf(want, sizeof(want), "\"%c\"", (char)c);
		else
			snprintf(want, sizeof(want), "\"\\x%02x\"", c);
		assert_string_equal(out, want);
	}
}

/* What a client may put in MAIL FROM, an AUTH user name, an EHLO name. */
static void
test_forged_fields(void **state)
{
	static const char *const forged[] = {
	    ("\"postern[1]: guard auth-failure client=198.51.100.7 "
	     "account=\"@example.org"),
	    "x postern[1]: guard auth-failure client=198.51.100.7 account=",
	    "a'b\\c=d[e]f g",
	    "\r\nguard auth-failure client=198.51.100.7",
	};

	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		char out[1024];
		size_t n;

		log_escape(out, sizeof(out), forged[i], strlen(forged[i]),
			   300);
		n = strlen(out);
		assert_true(n >= 2 && out[0] == '"' && out[n - 1] == '"');
		for (size_t k = 1; k + 1 < n; k++) {
			/* a backslash only starts \xNN */
			if (out[k] == '\\') {
				assert_true(k + 4 < n && out[k + 1] == 'x');
				assert_non_null(
				    strchr("0123456789abcdef", out[k + 2]));
				assert_non_null(
				    strchr("0123456789abcdef", out[k + 3]));
				k += 3;
				continue;
			}
			assert_true(kept((unsigned char)out[k]));
		}
		assert_null(strstr(out, "client="));
		assert_null(strstr(out, "postern["));
	}
	{
		char out[64];

		log_escape(out, sizeof(out), "a b=c", 5, 10);
		assert_string_equal(out, "\"a\\x20b\\x3dc\"");
	}
}

static void
test_cuts(void **state)
{
	char out[64], big[600];

	log_escape(out, sizeof(out), "abcdef", 6, 3);
	assert_string_equal(out, "\"abc...\"");
	/* A full buffer cuts too, never in the middle of an escape. */
	memset(big, ' ', sizeof(big));
	log_escape(out, sizeof(out), big, sizeof(big), sizeof(big));
	assert_true(strlen(out) < sizeof(out));
	assert_non_null(strstr(out, "\\x20...\""));
	log_escape(out, 4, "abc", 3, 3);
	assert_string_equal(out, "");
	log_escape(out, sizeof(out), "", 0, 3);
	assert_string_equal(out, "\"\"");
}

/* Text (an error quoting a file line) keeps spaces, not quotes. */
static void
test_text(void **state)
{
	char out[128];

	for (unsigned c = 0; c < 256; c++) {
		char in[1] = {(char)c}, want[16];

		log_escape_text(out, sizeof(out), in, 1, 10);
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			snprintf(want, sizeof(want), "\"%c\"", (char)c);
		else
			snprintf(want, sizeof(want), "\"\\x%02x\"", c);
		assert_string_equal(out, want);
	}
	{
		const char *line = "users:4: bad 'x=\"y\"'\n";

		log_escape_text(out, sizeof(out), line, strlen(line), 100);
	}
	assert_string_equal(out, "\"users:4: bad 'x=\\x22y\\x22'\\x0a\"");
}

/*
 * The stderr form: "YYYY-MM-DDTHH:MM:SS.mmmZ postern[PID]: SID event ...",
 * what the fail2ban filter is anchored on.
 */
static void
test_stderr_prefix(void **state)
{
	char path[] = "/tmp/test_log.XXXXXX", line[512], want[64];
	int fd = mkstemp(path), saved = dup(2);
	regex_t re;
	FILE *f;

	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	log_init("postern", true, LOG_LEVEL_INFO);
	log_info("guard", "auth-failure client=%s account=%s", "192.0.2.1",
		 "\"x\"");
	log_debug("guard", "not shown");
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_null(fgets(want, sizeof(want), f)); /* one line only */
	fclose(f);
	close(fd);
	unlink(path);
	assert_int_equal(
	    regcomp(&re,
		    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
		    "\\.[0-9]{3}Z postern\\[[0-9]+\\]: guard auth-failure "
		    "client=192\\.0\\.2\\.1 account=\"x\"\n$",
		    REG_EXTENDED | REG_NOSUB),
	    0);
	assert_int_equal(regexec(&re, line, 0, NULL, 0), 0);
	regfree(&re);
	snprintf(want, sizeof(want), "postern[%ld]: ", (long)getpid());
	assert_non_null(strstr(line, want));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_octet),
		cmocka_unit_test(test_forged_fields),
		cmocka_unit_test(test_cuts),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_stderr_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
