/*
 * queue_cmd.h - `postern queue`: see queue_cmd.c.
 */
#ifndef POSTERN_QUEUE_CMD_H
#define POSTERN_QUEUE_CMD_H

int queue_cmd_main(int argc, char **argv);

#endif
