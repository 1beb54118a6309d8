/*
 * test_probe_smtp.c - the pure parts of the SMTP checks of `postern
 * probe`: finding software names and versions in a banner, reading EHLO
 * keywords, and the relay forms (nmap smtp-open-relay's 16 exactly, then
 * ours), built and classified with the server's own path parser.
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

static void
test_banner(void **state)
{
	static const struct {
		const char *text; /* without the server's name */
		int kind;	  /* 0 nothing, 1 a name, 2 a version */
		const char *found;
	} cases[] = {
	    {"ESMTP", 0, ""},
	    {"ESMTP ready", 0, ""},
	    {"ESMTP Postfix", 1, "Postfix"},
	    {"ESMTP Postfix (3.7.11)", 2, "Postfix 3.7.11"},
	    {"ESMTP Postfix (Debian/GNU)", 1, "Postfix Debian"},
	    {"ESMTP Exim 4.96 Mon, 01 Jan 2024 12:00:00 +0000", 2, "Exim 4.96"},
	    {"ESMTP Sendmail 8.15.2/8.15.2/Debian-22; Mon, 1 Jan 2024", 2,
	     "Sendmail 8.15.2 8.15.2 Debian"},
	    {"Microsoft ESMTP MAIL Service ready at Mon", 1, "Microsoft"},
	    {"ESMTP Haraka/3.0.2 ready", 2, "Haraka 3.0.2"},
	    {"ESMTP v2.1 ready", 2, "v2.1"},
	    {"Hello [192.0.2.1]", 0, ""},
	    {"Hello client.example [192.0.2.1], pleased", 0, ""},
	    {"at your service, [10.0.0.1]", 0, ""},
	    /* a host name holding a product name is not the product */
	    {"Hello postfix.example.org", 0, ""},
	    {"ESMTP 2024 ready at 12:00:00", 0, ""},
	    {"ESMTP 1.2.3.4.5", 2, "1.2.3.4.5"},
	    {"ESMTP 300.1.1.1", 2, "300.1.1.1"},
	    /* hostile bytes are escaped in what is kept */
	    {"ESMTP postfix\x1b[2J 9.9", 2, "postfix 9.9"},
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct probe_buf b = {0};
		int k =
		    probe_banner_scan(cases[i].text, strlen(cases[i].text), &b);

		if (k != cases[i].kind)
			fail_msg("\"%s\": kind %d, want %d", cases[i].text, k,
				 cases[i].kind);
		assert_string_equal(b.s != NULL ? b.s : "", cases[i].found);
		probe_buf_free(&b);
	}
}

/* An EHLO reply as the reader makes it. */
static void
ehlo(struct peer_reply *r, const char *text, size_t lines)
{
	memset(r, 0, sizeof(*r));
	r->code = 250;
	snprintf(r->text, sizeof(r->text), "%s", text);
	r->text_len = strlen(r->text);
	r->n_lines = lines;
}

static void
test_ehlo_has(void **state)
{
	struct peer_reply r;
	const char *args;
	size_t len;

	(void)state;
	ehlo(&r,
	     "mx.example.org greets you\npipelining\nAUTH=LOGIN PLAIN\n"
	     "SIZE 1000\nSTARTTLS",
	     5);
	assert_true(probe_ehlo_has(&r, "PIPELINING", NULL, NULL));
	assert_true(probe_ehlo_has(&r, "STARTTLS", &args, &len));
	assert_int_equal(len, 0);
	assert_true(probe_ehlo_has(&r, "AUTH", &args, &len));
	assert_int_equal(len, 11);
	assert_memory_equal(args, "LOGIN PLAIN", 11);
	assert_true(probe_ehlo_has(&r, "SIZE", &args, &len));
	assert_memory_equal(args, "1000", 4);
	/* the first line is the server's name, never a keyword */
	assert_false(probe_ehlo_has(&r, "mx.example.org", NULL, NULL));
	assert_false(probe_ehlo_has(&r, "STARTTLSX", NULL, NULL));
	assert_false(probe_ehlo_has(&r, "8BITMIME", NULL, NULL));
}

/* nmap scripts/smtp-open-relay.nse, its tests table with domain
   example.net, srvname mx.example.org, ip 192.0.2.10. */
static const struct {
	const char *from, *to;
} nmap_forms[16] = {
    {"", "relaytest@example.net"},
    {"antispam@example.net", "relaytest@example.net"},
    {"antispam@mx.example.org", "relaytest@example.net"},
    {"antispam@[192.0.2.10]", "relaytest@example.net"},
    {"antispam@[192.0.2.10]", "relaytest%example.net@[192.0.2.10]"},
    {"antispam@[192.0.2.10]", "relaytest%example.net@mx.example.org"},
    {"antispam@[192.0.2.10]", "\"relaytest@example.net\""},
    {"antispam@[192.0.2.10]", "\"relaytest%example.net\""},
    {"antispam@[192.0.2.10]", "relaytest@example.net@[192.0.2.10]"},
    {"antispam@[192.0.2.10]", "\"relaytest@example.net\"@[192.0.2.10]"},
    {"antispam@[192.0.2.10]", "relaytest@example.net@mx.example.org"},
    {"antispam@[192.0.2.10]", "@[192.0.2.10]:relaytest@example.net"},
    {"antispam@[192.0.2.10]", "@mx.example.org:relaytest@example.net"},
    {"antispam@[192.0.2.10]", "example.net!relaytest"},
    {"antispam@[192.0.2.10]", "example.net!relaytest@[192.0.2.10]"},
    {"antispam@[192.0.2.10]", "example.net!relaytest@mx.example.org"},
};

static void
test_relay_forms(void **state)
{
	struct probe_relay_form f[PROBE_RELAY_FORMS_MAX];
	size_t n = probe_relay_forms("example.net", "mx.example.org",
				     "[192.0.2.10]", f, PROBE_RELAY_FORMS_MAX);
	static const struct {
		size_t i;
		bool valid, foreign;
	} cls[] = {
	    {0, true, true},   /* plain foreign address */
	    {4, true, false},  /* relaytest%example.net@[ip]: ours */
	    {5, true, false},  /* relaytest%example.net@srvname */
	    {6, false, false}, /* no domain */
	    {8, false, false}, /* a@b@c */
	    {9, true, false},  /* quoted local part @ our literal */
	    {11, true, true},  /* source route: the final domain counts */
	    {12, true, true},  {13, false, false}, /* bang path, no domain */
	    {15, true, false},
	};
	bool seen_v6 = false, seen_dot = false, seen_upper = false,
	     seen_space = false, seen_route2 = false;

	(void)state;
	assert_true(n >= 16 + 12);
	assert_true(n <= PROBE_RELAY_FORMS_MAX);
	for (size_t i = 0; i < 16; i++) {
		assert_string_equal(f[i].from, nmap_forms[i].from);
		assert_string_equal(f[i].to, nmap_forms[i].to);
		assert_false(f[i].space);
	}
	for (size_t i = 0; i < N_ELEMENTS(cls); i++) {
		if (f[cls[i].i].valid != cls[i].valid ||
		    f[cls[i].i].foreign != cls[i].foreign)
			fail_msg("form %zu <%s>: valid %d foreign %d", cls[i].i,
				 f[cls[i].i].to, f[cls[i].i].valid,
				 f[cls[i].i].foreign);
	}
	for (size_t i = 16; i < n; i++) {
		const char *to = f[i].to;

		seen_v6 |= strcmp(to, "relaytest@[IPv6:2001:db8::1]") == 0 &&
			   f[i].valid && f[i].foreign;
		seen_dot |= strcmp(to, "relaytest@example.net.") == 0;
		seen_upper |= strcmp(to, "RELAYTEST@EXAMPLE.NET") == 0 &&
			      f[i].valid && f[i].foreign;
		seen_space |= f[i].space;
		seen_route2 |=
		    strcmp(to, "@mx.example.org,@[192.0.2.10]:relaytest@"
			       "example.net") == 0 &&
		    f[i].valid && f[i].foreign;
		/* every form is one printable line */
		for (const char *p = to; *p != '\0'; p++)
			assert_true(*p > 0x20 && *p < 0x7f);
		assert_non_null(f[i].kind);
	}
	assert_true(seen_v6 && seen_dot && seen_upper && seen_space &&
		    seen_route2);
	/* quoted forms come from smtp_path_format: escapes are right */
	n = probe_relay_forms("exa\"mple.net", "mx", "[192.0.2.10]", f,
			      PROBE_RELAY_FORMS_MAX);
	assert_string_equal(f[9].to,
			    "\"relaytest@exa\\\"mple.net\"@[192.0.2.10]");
	/* a short array is never overrun */
	assert_int_equal(probe_relay_forms("example.net", "mx", "[::1]", f, 3),
			 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_banner),
	    cmocka_unit_test(test_ehlo_has),
	    cmocka_unit_test(test_relay_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
