/*
 * status_cmd.h - `postern status`: the server on one screen
 * (docs/metrics.md).
 */
#ifndef POSTERN_STATUS_CMD_H
#define POSTERN_STATUS_CMD_H

int status_cmd_main(int argc, char **argv);

#endif
