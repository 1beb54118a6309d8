/*
 * proc.h - what every child of the master does first, and how the master
 * tells why a child ended. Used by the master (master.c) and by the
 * processes it starts (worker.c, the guard, recovery); calls nothing of
 * theirs.
 */
#ifndef POSTERN_PROC_H
#define POSTERN_PROC_H

#include <stddef.h>

/* Put signal dispositions and the mask back to the defaults (a child
   inherits the master's handlers and blocked set). SIGPIPE is ignored. */
void proc_reset_signals(void);

/*
 * Become the account `user` (after binding): its supplementary groups from
 * the group database (initgroups), its primary group, its uid, in that
 * order; then check that root cannot be taken back. Nothing to do when
 * `user` is NULL or when not running as root. 0, or -1 (logged).
 */
int proc_drop_privileges(const char *user);

/* Why a child ended, from its waitpid() status: "status=N", or
   "signal=NAME" (" core=yes" when it dumped core). Returns buf. */
const char *proc_exit_text(int status, char *buf, size_t size);

struct sockaddr;
/* A client's address as text in `buf` ("unknown" for another family);
   returns its port. */
int proc_addr_text(const struct sockaddr *sa, char *buf, size_t size);

#endif
