/*
 * accounts.h - the accounts postern's processes run as (docs/security.md).
 *
 * Started as root, the master stays root (it only supervises); the
 * workers run as `user`; the guard, the only process that reads the users
 * file, as `guard-user` (proc_drop_privileges, proc.h, does the drop). Started as any other account, every process
 * keeps that one account (the development configuration), and the master
 * says so once in the log.
 */
#ifndef POSTERN_ACCOUNTS_H
#define POSTERN_ACCOUNTS_H

#include "conf/config.h"

/* The guard's account: guard-user, else user (NULL: stay). */
const char *accounts_guard(const struct config *cfg);

/*
 * At start, from the master: log how the accounts are split (once), warn
 * when the workers' account can read the users file (with how to fix its
 * owner and mode) and when the guard's cannot.
 */
void accounts_check(const struct config *cfg);

/*
 * Make the control socket's directory (as root: the directory itself
 * owned by root, group admin-group or root, mode 0750, never through a
 * symbolic link; a directory that exists must not be writable by anyone
 * but root and the guard's account). dirs.c makes the other directories.
 * Also refuses an unknown guard-user (as root). 0, or -1 logged: do not start.
 */
int accounts_control_dir(const struct config *cfg);

#endif
