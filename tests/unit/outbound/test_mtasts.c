/*
 * test_mtasts.c - MTA-STS without I/O (src/outbound/mtasts.c): the TXT
 * record (RFC 8461 3.1), the policy (3.2), MX matching (4.1), the cache
 * file and its name, when a cached policy is refreshed (3.3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outbound/mtasts.h"

/* --- TXT -------------------------------------------------------------- */

static int
txt(const char *a, const char *b, char *id)
{
	const char *recs[2] = {a, b};
	size_t lens[2] = {strlen(a), b != NULL ? strlen(b) : 0};
	const char *err = NULL;
	int rc = mtasts_txt_parse(recs, lens, b != NULL ? 2 : 1, id, &err);

	if (rc < 0)
		assert_non_null(err);
	return rc;
}

static void
test_txt(void **state)
{
	char id[MTASTS_ID_MAX + 1];

	(void)state;
	assert_int_equal(txt("v=STSv1; id=20160831085700Z;", NULL, id), 0);
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(txt("v=STSv1;id=abc", NULL, id), 0);
	assert_string_equal(id, "abc");
	assert_int_equal(txt("v=STSv1 ;\tid=abc ; ext=x.y", NULL, id), 0);
	assert_string_equal(id, "abc");
	/* other records are ignored */
	assert_int_equal(txt("v=spf1 -all", "v=STSv1; id=1", id), 0);
	assert_string_equal(id, "1");
	/* exactly one STSv1 record */
	assert_int_equal(txt("v=STSv1; id=1", "v=STSv1; id=2", id), -1);
	assert_int_equal(txt("v=spf1 -all", NULL, id), -1);
	/* malformed */
	assert_int_equal(txt("v=STSv1", NULL, id), -1);
	assert_int_equal(txt("v=STSv1;", NULL, id), -1);
	assert_int_equal(txt("v=STSv1; ext=1", NULL, id), -1); /* no id */
	assert_int_equal(txt("v=STSv1; id=", NULL, id), -1);
	assert_int_equal(txt("v=STSv1; id=a-b", NULL, id), -1);
	assert_int_equal(txt("v=STSv1; id=123456789012345678901234567890123",
			     NULL, id), -1); /* 33 */
	assert_int_equal(txt("v=STSv1; id=12345678901234567890123456789012",
			     NULL, id), 0); /* 32 */
	assert_int_equal(txt("v=STSv1 id=1", NULL, id), -1);
	assert_int_equal(txt("v=STSv10; id=1", NULL, id), -1); /* ignored */
	assert_int_equal(txt("v=stsv1; id=1", NULL, id), -1);
	assert_int_equal(txt("v=STSv1; _x=1; id=1", NULL, id), -1);
}

static void
test_txt_nul(void **state)
{
	char id[MTASTS_ID_MAX + 1];
	const char rec[] = "v=STSv1; id=a\0b";
	const char *recs[1] = {rec};
	size_t lens[1] = {sizeof(rec) - 1};
	const char *err;

	(void)state;
	assert_int_equal(mtasts_txt_parse(recs, lens, 1, id, &err), -1);
}

/* --- the policy ------------------------------------------------------- */

static const char rfc_example[] = "version: STSv1\r\n"
				  "mode: enforce\r\n"
				  "mx: mail.example.com\r\n"
				  "mx: *.example.net\r\n"
				  "mx: backupmx.example.com\r\n"
				  "max_age: 604800\r\n";

static void
test_policy_rfc(void **state)
{
	struct mtasts_policy p;
	const char *err = NULL;

	(void)state;
	assert_int_equal(mtasts_policy_parse(rfc_example,
					     sizeof(rfc_example) - 1, &p, &err),
			 0);
	assert_int_equal(p.mode, MTASTS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.n_mx, 3);
	assert_string_equal(p.mx[1], "*.example.net");
}

static int
pol(const char *body, struct mtasts_policy *p)
{
	const char *err = NULL;
	int rc = mtasts_policy_parse(body, strlen(body), p, &err);

	if (rc < 0)
		assert_non_null(err);
	return rc;
}

static void
test_policy_forms(void **state)
{
	struct mtasts_policy p;

	(void)state;
	/* LF lines, no final line end, blanks around values, unknown keys */
	assert_int_equal(pol("version: STSv1\nmode:testing\nmx:  MX.Example.COM. "
			     "\nfoo.bar: anything at all\nmax_age: 86400", &p),
			 0);
	assert_int_equal(p.mode, MTASTS_MODE_TESTING);
	assert_string_equal(p.mx[0], "mx.example.com");
	/* none needs no mx */
	assert_int_equal(pol("version: STSv1\nmode: none\nmax_age: 1\n", &p), 0);
	assert_int_equal(p.mode, MTASTS_MODE_NONE);
	/* max_age is capped at RFC 8461's maximum */
	assert_int_equal(pol("version: STSv1\nmode: none\nmax_age: 9999999999\n",
			     &p), 0);
	assert_int_equal(p.max_age, MTASTS_MAX_AGE_MAX);
	/* the first mode counts */
	assert_int_equal(pol("version: STSv1\nmode: enforce\nmode: none\n"
			     "mx: a.example\nmax_age: 5\n", &p), 0);
	assert_int_equal(p.mode, MTASTS_MODE_ENFORCE);
}

static void
test_policy_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "mode: enforce\nmx: a.example\nmax_age: 5\n",	 /* version */
	    "version: STSv1\nmx: a.example\nmax_age: 5\n",	 /* mode */
	    "version: STSv1\nmode: enforce\nmx: a.example\n",	 /* max_age */
	    "version: STSv1\nmode: enforce\nmax_age: 5\n",	 /* mx */
	    "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 5\n",
	    "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 5\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -5\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n",
	    "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 5\n",
	    "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 5\n",
	    "version: STSv1\nmode: enforce\nmx: *\nmax_age: 5\n",
	    "version: STSv1\nmode: enforce\nmx: a/b\nmax_age: 5\n",
	    "version: STSv1\nmode: enforce\nmx: \nmax_age: 5\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 5\ngarbage\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 5\n:x\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\rmax_age: 5\n",
	};
	struct mtasts_policy p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pol(bad[i], &p) != -1)
			fail_msg("accepted: %s", bad[i]);
}

static void
test_policy_limits(void **state)
{
	struct mtasts_policy p;
	const char *err;
	char *big = malloc(MTASTS_BODY_MAX + 2);
	char buf[4096];
	int n;

	(void)state;
	assert_non_null(big);
	memset(big, '\n', MTASTS_BODY_MAX + 1);
	memcpy(big, "version: STSv1\nmode: none\nmax_age: 5\n", 37);
	assert_int_equal(mtasts_policy_parse(big, MTASTS_BODY_MAX, &p, &err), 0);
	assert_int_equal(mtasts_policy_parse(big, MTASTS_BODY_MAX + 1, &p, &err),
			 -1);
	free(big);
	/* MTASTS_MX_MAX patterns, not one more */
	n = snprintf(buf, sizeof(buf), "version: STSv1\nmode: enforce\nmax_age: 5\n");
	for (int i = 0; i < MTASTS_MX_MAX; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "mx: m%d.example\n", i);
	assert_int_equal(mtasts_policy_parse(buf, (size_t)n, &p, &err), 0);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "mx: extra.example\n");
	assert_int_equal(mtasts_policy_parse(buf, (size_t)n, &p, &err), -1);
}

/* --- matching --------------------------------------------------------- */

static void
test_match(void **state)
{
	struct mtasts_policy p;

	(void)state;
	assert_int_equal(mtasts_policy_parse(rfc_example,
					     sizeof(rfc_example) - 1, &p,
					     &(const char *){NULL}),
			 0);
	assert_true(mtasts_mx_match(&p, "mail.example.com"));
	assert_true(mtasts_mx_match(&p, "MAIL.Example.Com"));
	assert_true(mtasts_mx_match(&p, "mail.example.com."));
	assert_true(mtasts_mx_match(&p, "mx1.example.net"));
	assert_true(mtasts_mx_match(&p, "MX1.EXAMPLE.NET."));
	/* a wildcard stands for exactly one label */
	assert_false(mtasts_mx_match(&p, "example.net"));
	assert_false(mtasts_mx_match(&p, "a.b.example.net"));
	assert_false(mtasts_mx_match(&p, ".example.net"));
	assert_false(mtasts_mx_match(&p, "xexample.net"));
	assert_false(mtasts_mx_match(&p, "mail.example.com.evil"));
	assert_false(mtasts_mx_match(&p, "evilmail.example.com"));
	assert_false(mtasts_mx_match(&p, "example.com"));
	assert_false(mtasts_mx_match(&p, ""));
	assert_false(mtasts_mx_match(&p, "."));
	assert_false(mtasts_mx_match(&p, "mail.example.com.."));
	assert_string_equal(mtasts_mode_name(p.mode), "enforce");
}

/* --- the cache -------------------------------------------------------- */

static void
test_cache_round_trip(void **state)
{
	char buf[1024];
	struct mtasts_cached c;
	const char *err = NULL;
	long n;

	(void)state;
	n = mtasts_cache_format(buf, sizeof(buf), "abc123", 1700000000,
				1690000000, rfc_example,
				sizeof(rfc_example) - 1);
	assert_true(n > 0);
	assert_int_equal(mtasts_cache_parse(buf, (size_t)n, &c, &err), 0);
	assert_string_equal(c.id, "abc123");
	assert_int_equal(c.expires, 1700000000);
	assert_int_equal(c.mailed, 1690000000);
	assert_int_equal(c.policy.n_mx, 3);
	assert_int_equal((size_t)n - c.body_off, sizeof(rfc_example) - 1);
	assert_memory_equal(buf + c.body_off, rfc_example,
			    sizeof(rfc_example) - 1);
	/* every cut is refused or reads a policy (never past the end) */
	for (long cut = 0; cut < n; cut++) {
		char *copy = malloc((size_t)cut + 1);

		memcpy(copy, buf, (size_t)cut);
		(void)mtasts_cache_parse(copy, (size_t)cut, &c, &err);
		free(copy);
	}
	assert_int_equal(mtasts_cache_parse("postern-mta-sts 2\nid a\nexpires 1\n\n",
					    34, &c, &err), -1);
	assert_int_equal(mtasts_cache_parse("postern-mta-sts 1\nid a-b\nexpires 1\n\n",
					    36, &c, &err), -1);
	assert_int_equal(mtasts_cache_parse("postern-mta-sts 1\nid a\nexpires 1\n"
					    "mailed x\n\n", 43, &c, &err), -1);
	assert_int_equal(mtasts_cache_format(buf, 40, "abc", 1, 1, rfc_example,
					     sizeof(rfc_example) - 1), -1);
}

/* A file written before the `mailed` line existed reads with mailed 0. */
static void
test_cache_without_mailed(void **state)
{
	static const char f[] = "postern-mta-sts 1\nid a1\nexpires 99\n\n"
				"version: STSv1\nmode: none\nmax_age: 5\n";
	struct mtasts_cached c;
	const char *err = NULL;

	(void)state;
	c.mailed = 7;
	assert_int_equal(mtasts_cache_parse(f, sizeof(f) - 1, &c, &err), 0);
	assert_int_equal(c.mailed, 0);
	assert_int_equal(c.expires, 99);
	assert_int_equal(c.policy.max_age, 5);
}

/* RFC 8461 3.3: refresh a day after the fetch, or at half of max_age
   when that comes first; never once expired, nor for a domain not
   mailed within max_age. */
static void
test_refresh_check(void **state)
{
	struct mtasts_cached c;
	const time_t now = 1800000000, day = 86400;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.policy.max_age = 7 * day;
	c.mailed = now - 60;
	c.expires = now + 7 * day - 60; /* fetched a minute ago */
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_LATER);
	c.expires = now + 6 * day + 1; /* fetched a day less a second ago */
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_LATER);
	c.expires = now + 6 * day; /* a day ago */
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_DUE);
	c.expires = now + 1;
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_DUE);
	c.expires = now; /* expired */
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_NO);
	/* not mailed within max_age, or never */
	c.expires = now + day;
	c.mailed = now - 7 * day;
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_NO);
	c.mailed = now - 7 * day + 1;
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_DUE);
	c.mailed = 0;
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_NO);
	/* a short max_age: at half of it */
	c.policy.max_age = 600;
	c.mailed = now;
	c.expires = now + 301; /* fetched 299 s ago */
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_LATER);
	c.expires = now + 300;
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_DUE);
	/* hostile times: no overflow, no refresh of what cannot be */
	c.expires = (time_t)999999999999999999LL;
	assert_int_equal(mtasts_refresh_check(&c, now), MTASTS_REFRESH_LATER);
}

static void
test_cache_name(void **state)
{
	char buf[300];
	static const char *const bad[] = {
	    "", ".", "..", "a..b", ".a", "a.", "a/b", "../x", "A.example",
	    "a b", "a\nb", "x%2fy",
	};
	char longlabel[80];

	(void)state;
	assert_int_equal(mtasts_cache_name("example.com", false, buf,
					   sizeof(buf)), 0);
	assert_string_equal(buf, "p.example.com");
	assert_int_equal(mtasts_cache_name("example.com", true, buf,
					   sizeof(buf)), 0);
	assert_string_equal(buf, "t.example.com");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mtasts_cache_name(bad[i], false, buf, sizeof(buf)) != -1)
			fail_msg("accepted: %s", bad[i]);
	memset(longlabel, 'a', 64);
	longlabel[64] = '\0';
	assert_int_equal(mtasts_cache_name(longlabel, false, buf, sizeof(buf)),
			 -1);
	assert_int_equal(mtasts_cache_name("example.com", false, buf, 10), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_txt),
	    cmocka_unit_test(test_txt_nul),
	    cmocka_unit_test(test_policy_rfc),
	    cmocka_unit_test(test_policy_forms),
	    cmocka_unit_test(test_policy_malformed),
	    cmocka_unit_test(test_policy_limits),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_cache_round_trip),
	    cmocka_unit_test(test_cache_without_mailed),
	    cmocka_unit_test(test_refresh_check),
	    cmocka_unit_test(test_cache_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
