/*
 * user_cmd.h - `postern user add|passwd|del|alias|list`, the command that
 * edits the users file (docs/users.md).
 */
#ifndef POSTERN_USER_CMD_H
#define POSTERN_USER_CMD_H

/*
 * Run `postern user ...` on the users file at `path` (argv[0] is "user").
 * The file is rewritten atomically (temporary file, fsync, rename, fsync
 * of the directory). Passwords come from the terminal without echo, or
 * from standard input with --stdin; never from argv. Returns the exit
 * status.
 */
int user_cmd_run(const char *path, int argc, char **argv);

#endif
