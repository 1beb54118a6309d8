/*
 * storefs.h - the file-system seam of the store (spool and Maildir).
 *
 * Every call of the spool and of Maildir delivery that changes the file
 * system or makes it durable goes through these pointers (reads, stat and
 * close do not), so that a test can fail or "crash" at any of them and
 * then check recovery (STYLE.md, "Fault injection"). All names are
 * relative to a directory descriptor (AT_FDCWD for a path); `renameat`
 * takes renameat2(2) flags. The defaults are the system calls; a test may
 * replace members (and must restore them) while no spool is busy.
 */
#ifndef POSTERN_STOREFS_H
#define POSTERN_STOREFS_H

#include <stddef.h>
#include <sys/types.h>

struct storefs_ops {
	int (*openat)(int dirfd, const char *path, int flags, int mode);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fsync)(int fd);
	int (*syncfs)(int fd);
	int (*mkdirat)(int dirfd, const char *path, int mode);
	int (*renameat)(int fromfd, const char *from, int tofd, const char *to,
			unsigned int flags);
	int (*linkat)(int fromfd, const char *from, int tofd, const char *to,
		      int flags);
	int (*unlinkat)(int dirfd, const char *path, int flags);
	int (*ftruncate)(int fd, off_t len); /* the spool's journal */
	/* copy_file_range(2) from `in` at *in_off (advanced) to `out` at
	   its file offset */
	ssize_t (*copy_range)(int in, off_t *in_off, int out, size_t len);
};
extern struct storefs_ops storefs;

/* write(2) through the seam until all of `len` is written; 0 or -1. */
int storefs_write_all(int fd, const void *buf, size_t len);

#endif
