/*
 * test_mailpath.c - safe path parts and the maildir template
 * (src/conf/mailpath.c, THREATS F-01).
 */
#include "conf/mailpath.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* ---- mailpath_check_part ---- */

static const struct {
	const char *s;
	size_t len; /* 0: strlen */
	bool ok;
} part_cases[] = {
    {"alice", 0, true},	   {"a.b", 0, true},   {"a+ext", 0, true},
    {"a-b_c=d", 0, true},  {"Z9", 0, true},    {"a.", 0, true},
    {"", 0, false},	   {".", 0, false},    {"..", 0, false},
    {".hidden", 0, false}, {"a..b", 0, false}, {"../etc", 0, false},
    {"a/b", 0, false},	   {"/", 0, false},    {"a\0b", 3, false},
    {"a b", 0, false},	   {"a\tb", 0, false}, {"\xc3\xa9t\xc3\xa9", 0, false},
    {"a\"b", 0, false},	   {"a:b", 0, false},  {"a%b", 0, false},
    {"a\\b", 0, false},	   {"a,b", 0, false},  {"a;b", 0, false},
    {"a|b", 0, false},	   {"a\nb", 0, false},
};

static void
test_check_part(void **state)
{
	char long_ok[256], long_bad[257];

	(void)state;
	for (size_t i = 0; i < sizeof(part_cases) / sizeof(part_cases[0]);
	     i++) {
		size_t len = part_cases[i].len != 0 ? part_cases[i].len
						    : strlen(part_cases[i].s);

		if (mailpath_check_part(part_cases[i].s, len) !=
		    part_cases[i].ok)
			fail_msg("case %zu (%s)", i, part_cases[i].s);
	}
	memset(long_ok, 'a', 255);
	long_ok[255] = '\0';
	memset(long_bad, 'a', 256);
	long_bad[256] = '\0';
	assert_true(mailpath_check_part(long_ok, 255));
	assert_false(mailpath_check_part(long_bad, 256));
	assert_false(mailpath_check_part(NULL, 3));
}

/* ---- mailpath_expand ---- */

static void
test_expand(void **state)
{
	static const struct {
		const char *tmpl, *local, *domain, *want; /* want NULL: -1 */
	} cases[] = {
	    {"/var/mail/%d/%n/Maildir", "alice", "example.org",
	     "/var/mail/example.org/alice/Maildir"},
	    {"%n%%%d", "a", "b", "a%b"},
	    {"/m/%n", "a.b+x", "d", "/m/a.b+x"},
	    {"/plain", "a", "d", "/plain"},
	    {"/m/%x", "a", "d", NULL},
	    {"/m/%", "a", "d", NULL},
	    {"/m/%n", "../../etc", "d", NULL},
	    {"/m/%n", "alice/../bob", "d", NULL},
	    {"/m/%d", "a", "..", NULL},
	    {"/m/%n", "", "d", NULL},
	    {"/m/%n", ".x", "d", NULL},
	    {"/m", "a b", "d", NULL}, /* checked even when unused */
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = mailpath_expand(cases[i].tmpl, cases[i].local,
				       cases[i].domain, buf, sizeof(buf));

		if (cases[i].want == NULL) {
			if (r != -1)
				fail_msg("case %zu expanded to %s", i, buf);
		} else {
			assert_int_equal(r, 0);
			assert_string_equal(buf, cases[i].want);
		}
	}
	/* Room: exactly enough, then one short. */
	assert_int_equal(mailpath_expand("/x/%n", "abc", "d", buf, 7), 0);
	assert_string_equal(buf, "/x/abc");
	assert_int_equal(mailpath_expand("/x/%n", "abc", "d", buf, 6), -1);
	assert_int_equal(mailpath_expand("/x/%n", "abc", "d", buf, 1), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_part),
	    cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
