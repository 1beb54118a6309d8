/*
 * route_cmd.h - `postern route`: see route_cmd.c.
 */
#ifndef POSTERN_ROUTE_CMD_H
#define POSTERN_ROUTE_CMD_H

int route_main(int argc, char **argv);

#endif
