/*
 * dirs.h - the directories the master makes for the workers, as root,
 * without ever following a symbolic link (issue 6 item 2).
 *
 * The workers run as the account named by `user` and may not be able to
 * create the top of the spool or a mailbox's Maildir (the control
 * socket's directory is root's: accounts.h). The master makes them at every start and reload.
 * Each path is opened one component at a time, relative to the
 * descriptor of its parent, with O_NOFOLLOW | O_DIRECTORY: a symbolic
 * link or a file where a directory belongs is an error naming that path,
 * and is not followed. A directory the master has just made (mode 0700)
 * is given to the worker account through its descriptor (fchown); one
 * that existed is left as it is. The spool must belong to the worker
 * account.
 */
#ifndef POSTERN_DIRS_H
#define POSTERN_DIRS_H

#include "conf/config.h"

/*
 * Make the spool, the fixed part of the Maildir template (before its first %) and each configured mailbox's
 * Maildir with its tmp/, new/ and cur/. The worker account is cfg->user
 * when running as root; otherwise nothing changes owner. Returns 0, or -1
 * (logged, with the path).
 */
int dirs_prepare(const struct config *cfg);

#endif
