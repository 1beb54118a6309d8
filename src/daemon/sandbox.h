/*
 * sandbox.h - what a worker and the guard give up once their setup is
 * done: no_new_privs, a Landlock rule set (the files they may still
 * reach) and a seccomp filter (the system calls they may still make; any
 * other kills the process with SIGSYS). docs/security.md, "Sandboxes".
 */
#ifndef POSTERN_SANDBOX_H
#define POSTERN_SANDBOX_H

#include "conf/config.h"

/*
 * A worker, after its listeners, spool area and guard socket are set up
 * and privileges are dropped: read/write in the spool and the Maildir
 * root, nothing else on disk; no process, no socket of its own (but the
 * syslog socket), no exec. Nothing done when `sandbox no`. 0, or -1
 * (logged): the caller exits rather than serve unconfined.
 */
int sandbox_worker(const struct config *cfg);

/*
 * The guard, before its hashing threads start: read the users file's and
 * the configuration's directories (a reload reads both), remove the
 * control socket (bound by then) from its directory at exit. Its threads inherit the sandbox.
 * `cfg_path` may be NULL (built-in configuration). 0, or -1 (logged).
 */
int sandbox_guard(const struct config *cfg, const char *cfg_path);

/* How the kernel answered for Landlock: its ABI version, or 0 (none). */
int sandbox_landlock_abi(void);

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
