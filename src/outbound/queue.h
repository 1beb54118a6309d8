/*
 * queue.h - the queue process (docs/outbound.md): the only process that
 * reads and changes <spool>/queue/. Forked and supervised by the master
 * like the guard; one libevent loop drives DNS (libunbound) and every SMTP
 * client session.
 *
 * Workers wake it through a pipe the master made: after a commit that
 * queued a message they write "<queue id>\n" (queue_wake()), and the
 * queue process loads that entry at once. A pipe that was full loses the
 * wake-up, never the message: the directory is scanned again every
 * minute.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include "conf/config.h"

/* The queue process: runs until SIGTERM, then _exit()s. `wake_fd` is the
   read end of the wake-up pipe. */
void queue_main(const struct config *cfg, int wake_fd)
    __attribute__((noreturn));

/* For a worker: message `id` is in queue/ now (write end, non-blocking;
   a full pipe is ignored). */
void queue_wake(int wake_fd, const char *id);

#endif
