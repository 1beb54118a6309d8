/*
 * mailpath.h - safe path parts and the maildir template.
 *
 * Paths are built only from validated parts (THREATS F-01): a part that
 * could leave the Maildir root is refused, never rewritten.
 */
#ifndef POSTERN_MAILPATH_H
#define POSTERN_MAILPATH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Is `part` (a local part or domain going into a path) safe? Refused: empty,
 * longer than 255, a leading '.', "..", '/', NUL, any octet outside
 * [A-Za-z0-9._+-=] (no control, space, quote or non-ASCII octet).
 */
bool mailpath_check_part(const char *part, size_t len);

/*
 * Expand a template: %d domain, %n local part, %% a percent sign. Both parts
 * must pass mailpath_check_part(). Returns 0, or -1 (unsafe part, unknown
 * %-sequence, or no room).
 */
int mailpath_expand(const char *tmpl, const char *local, const char *domain,
		   char *buf, size_t size);

#endif
