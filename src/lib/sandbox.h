/*
 * sandbox.h - what a worker and the guard give up once their setup is
 * done: no_new_privs, a Landlock rule set (the files they may still
 * reach) and a seccomp filter (the system calls they may still make; any
 * other kills the process with SIGSYS). docs/security.md, "Sandboxes".
 */
#ifndef POSTERN_LIB_SANDBOX_H
#define POSTERN_LIB_SANDBOX_H

#include <stdbool.h>

/*
 * A worker, after its listeners, spool area and guard socket are set up
 * and privileges are dropped: read/write in the spool and the Maildir
 * root (`maildir` is the template), nothing else on disk; no process, no socket of its own (but the
 * syslog socket), no exec. Nothing done when `sandbox no`. 0, or -1
 * (logged): the caller exits rather than serve unconfined.
 */
int sandbox_worker(bool on, const char *spool, const char *maildir);

/*
 * The guard, before its hashing threads start: read the users file's and
 * the configuration's directories (a reload reads both), remove the
 * control socket (bound by then) from its directory at exit. Its threads inherit the sandbox.
 * Any path may be NULL (none). 0, or -1 (logged).
 */
int sandbox_guard(bool on, const char *users_file, const char *cfg_path,
		  const char *control_socket);

/* How the kernel answered for Landlock: its ABI version, or 0 (none). */
/* The metrics endpoint: no file, the socket calls of a worker. */
int sandbox_metrics(bool on);
int sandbox_landlock_abi(void);


#endif
