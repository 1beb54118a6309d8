/*
 * queue_cmd.h - `postern queue`: see queue_cmd.c.
 */
#ifndef POSTERN_QUEUE_CMD_H
#define POSTERN_QUEUE_CMD_H

#include <stdio.h>

#include "conf/config.h"

int queue_cmd_main(int argc, char **argv);
/* Send `line` (ending in "\n") to the queue process and copy its answer
   (or why it could not be reached) to `out`: 0 when it ends in "ok". */
int queue_cmd_ask(const struct config *cfg, const char *line, FILE *out);

#endif
