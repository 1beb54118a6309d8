/*
 * server.h - listeners, the master process and its workers, signals.
 *
 * The master binds every listener, recovers the spool, then forks the
 * workers (one per core by default), each accepting on the shared
 * listening sockets with its own libevent loop. The master only supervises:
 * it restarts a worker that died (after recovering that worker's spool
 * area), reloads the configuration on SIGHUP and stops gracefully on
 * SIGTERM.
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <stdbool.h>

#include "conf/config.h"

/*
 * Run the server with `cfg` (ownership passes to the server). `path` is
 * the file to re-read on SIGHUP, NULL for the built-in configuration.
 * Returns the process exit status.
 */
int server_run(struct config *cfg, const char *path, bool foreground);

#endif
