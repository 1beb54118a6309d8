/*
 * sandbox_test.h - the compromised-worker hook of the sandbox test
 * (sandbox_test.c), compiled only with meson -Dtest_hooks=true.
 */
#ifndef POSTERN_SANDBOX_TEST_H
#define POSTERN_SANDBOX_TEST_H

#include "conf/config.h"

#ifdef POSTERN_TEST_HOOKS
/*
 * Test builds only (meson -Dtest_hooks=true; never in a release build):
 * when $POSTERN_TEST_ATTACK names a file that exists, play a compromised
 * worker (sandbox_test.c). Called by the worker after its setup, before
 * sandbox_worker().
 */
void sandbox_test_attack(const struct config *cfg);
/* After sandbox_worker(): a forbidden call when the file says "violate". */
void sandbox_test_violate(void);
#endif

#endif
