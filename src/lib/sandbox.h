/*
 * sandbox.h - what a worker and the guard give up once their setup is
 * done: no_new_privs, a Landlock rule set (the files they may still
 * reach) and a seccomp filter (the system calls they may still make; any
 * other kills the process with SIGSYS). docs/security.md, "Sandboxes".
 */
#ifndef POSTERN_LIB_SANDBOX_H
#define POSTERN_LIB_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

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

/* What the queue process keeps (src/outbound/queue_sandbox.c fills it
   from the configuration). */
#define SANDBOX_QUEUE_RW 3
#define SANDBOX_QUEUE_READ 12
#define SANDBOX_QUEUE_PORTS 48
struct sandbox_queue_rules {
	const char *rw[SANDBOX_QUEUE_RW];     /* directories: read, write */
	const char *maildir;		      /* template: its root, too */
	const char *read[SANDBOX_QUEUE_READ]; /* files or directories it
						 reads; a missing one is
						 skipped */
	unsigned ports[SANDBOX_QUEUE_PORTS];  /* TCP ports it may connect to */
	size_t n_ports;
};

/*
 * The queue process, after it has loaded the queue, bound its control
 * socket and made its DNS and TLS contexts: read/write beneath `rw`,
 * read `read`, TCP connect to `ports` only (Landlock ABI 4+) and no TCP
 * bind; seccomp: sockets of AF_INET and AF_INET6 (SMTP, DNS), no
 * process, no exec. Nothing done when `sandbox no`. 0, or -1 (logged).
 */
int sandbox_queue(bool on, const struct sandbox_queue_rules *rules);

/* How the kernel answered for Landlock: its ABI version, or 0 (none). */
/* The metrics endpoint: no file, the socket calls of a worker. */
int sandbox_metrics(bool on);
int sandbox_landlock_abi(void);


#endif
