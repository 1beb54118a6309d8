/*
 * test_qenv.c - reading queue envelopes (src/outbound/qenv.c) by the
 * rules of docs/queue-format.md: the documented examples, every cut,
 * and each rule broken once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outbound/qenv.h"

static const char good[] = "postern-envelope 2\n"
			   "id 06553f1c02a3b70012ab005\n"
			   "time 1700000001\n"
			   "size 2210\n"
			   "sender alice@example.org\n"
			   "auth alice@example.org\n"
			   "remote carol@example.net\n"
			   "remote \"c%20d\"@example.net\n"
			   "end\n";

static void
test_good(void **state)
{
	struct qenv env;
	const char *err = NULL;

	assert_int_equal(qenv_parse(good, sizeof(good) - 1, &env, &err), 0);
	assert_string_equal(env.id, "06553f1c02a3b70012ab005");
	assert_int_equal(env.time, 1700000001);
	assert_int_equal(env.size, 2210);
	assert_string_equal(env.sender, "alice@example.org");
	assert_string_equal(env.auth, "alice@example.org");
	assert_int_equal(env.n_remote, 2);
	assert_string_equal(env.remote[0], "carol@example.net");
	assert_string_equal(env.remote[1], "\"c d\"@example.net");
	qenv_free(&env);
	assert_null(env.store);
}

/* Cut anywhere before the end: refused (each piece exactly sized). */
static void
test_every_cut(void **state)
{
	for (size_t k = 0; k < sizeof(good) - 1; k++) {
		char *p = malloc(k + 1);
		struct qenv env;
		const char *err = NULL;

		assert_non_null(p);
		memcpy(p, good, k);
		if (qenv_parse(p, k, &env, &err) == 0)
			fail_msg("cut at %zu accepted", k);
		free(p);
	}
}

static void
test_rules(void **state)
{
	static const char *const bad[] = {
	    "postern-envelope 4\nid a\ntime 1\nsize 1\nsender \nremote b@c\n"
	    "end\n",
	    /* hold: version 3 only, one word, once */
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \n"
	    "hold send-burst\nremote b@c\nend\n",
	    "postern-envelope 3\nid a\ntime 1\nsize 1\nsender \n"
	    "hold other\nremote b@c\nend\n",
	    "postern-envelope 3\nid a\ntime 1\nsize 1\nsender \n"
	    "hold send-burst\nhold send-burst\nremote b@c\nend\n",
	    "postern-envelope 1\nid a\ntime 1\nsize 1\nsender \nremote b@c\n"
	    "end\n", /* remote needs version 2 */
	    "postern-envelope 2\nid a\ntime 01\nsize 1\nsender \nremote b@c\n"
	    "end\n",
	    "postern-envelope 2\nid a\nid a\ntime 1\nsize 1\nsender \n"
	    "remote b@c\nend\n",
	    "postern-envelope 2\nid a-b\ntime 1\nsize 1\nsender \n"
	    "remote b@c\nend\n",
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \n"
	    "remote b%41@c\nend\n",
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \n"
	    "remote b%0a@c\nend\n",
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \n"
	    "remote b%0D@c\nend\n",
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \n"
	    "remote b@c\nend\nx\n",
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \n"
	    "remote b@c\nunknown x\nend\n",
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \nend\n",
	    "postern-envelope 2\nid a\ntime 1\nsender \nremote b@c\nend\n",
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \nauth \n"
	    "remote b@c\nend\n",
	    "postern-envelope 2\nid a\ntime 1\nsize 1\nsender \n"
	    "remote b@c\nend",
	};
	static const char ok[] = "postern-envelope 2\nid a\ntime 0\nsize 0\n"
				 "sender \nrcpt x@y /m\nremote b@c\nend\n";
	struct qenv env;
	const char *err = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (qenv_parse(bad[i], strlen(bad[i]), &env, &err) == 0)
			fail_msg("accepted:\n%s", bad[i]);
	assert_int_equal(qenv_parse(ok, sizeof(ok) - 1, &env, &err), 0);
	assert_string_equal(env.sender, "");
	assert_null(env.auth);
	assert_int_equal(env.n_remote, 1);
	assert_false(env.hold);
	qenv_free(&env);
}

/* Version 3 (docs/sendlimit.md): a message held by the send-burst alarm. */
static void
test_hold(void **state)
{
	static const char held[] = "postern-envelope 3\nid a\ntime 0\n"
				   "size 0\nsender \nauth u@x\n"
				   "hold send-burst\nremote b@c\nend\n";
	static const char v3[] = "postern-envelope 3\nid a\ntime 0\nsize 0\n"
				 "sender \nremote b@c\nend\n";
	struct qenv env;
	const char *err = NULL;

	(void)state;
	assert_int_equal(qenv_parse(held, sizeof(held) - 1, &env, &err), 0);
	assert_true(env.hold);
	assert_string_equal(env.auth, "u@x");
	qenv_free(&env);
	assert_int_equal(qenv_parse(v3, sizeof(v3) - 1, &env, &err), 0);
	assert_false(env.hold);
	qenv_free(&env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_every_cut),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
