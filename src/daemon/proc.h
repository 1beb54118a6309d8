/*
 * proc.h - the accounts postern's processes run as (docs/security.md).
 *
 * Started as root, the master stays root (it only supervises); the
 * workers run as `user`; the guard, the only process that reads the users
 * file, as `guard-user`. Started as any other account, every process
 * keeps that one account (the development configuration), and the master
 * says so once in the log.
 */
#ifndef POSTERN_PROC_H
#define POSTERN_PROC_H

#include "conf/config.h"

/* Become `account` for good (supplementary groups dropped, then gid and
   uid). No-op when not root or `account` is NULL. 0, or -1 logged. */
int proc_drop(const char *account);

/* The guard's account: guard-user, else user (NULL: stay). */
const char *proc_guard_account(const struct config *cfg);

/*
 * At start, from the master: log how the accounts are split (once), warn
 * when the workers' account can read the users file (with how to fix its
 * owner and mode) and when the guard's cannot.
 */
void proc_check_accounts(const struct config *cfg);

/*
 * Make the control socket's directory (as root: the directory itself
 * owned by root, group admin-group or root, mode 0750, never through a
 * symbolic link; a directory that exists must not be writable by anyone
 * but root and the guard's account). 0, or -1 logged: do not start.
 */
int proc_control_dir(const struct config *cfg);

#endif
