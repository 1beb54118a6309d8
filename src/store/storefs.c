/*
 * storefs.c - the file-system seam of the store (storefs.h): the system
 * calls themselves.
 */
#include "store/storefs.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"

static int
storefs_sys_openat(int dirfd, const char *path, int flags, int mode)
{
	return openat(dirfd, path, flags, (mode_t)mode);
}

static ssize_t
storefs_sys_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

static int
storefs_sys_mkdirat(int dirfd, const char *path, int mode)
{
	return mkdirat(dirfd, path, (mode_t)mode);
}

static int
storefs_sys_renameat(int fromfd, const char *from, int tofd, const char *to,
		   unsigned int flags)
{
	return renameat2(fromfd, from, tofd, to, flags);
}

static int
storefs_sys_ftruncate(int fd, off_t len)
{
	return ftruncate(fd, len);
}

static ssize_t
storefs_sys_copy_range(int in, off_t *in_off, int out, size_t len)
{
	return copy_file_range(in, in_off, out, NULL, len, 0);
}

struct storefs_ops storefs = {
    .openat = storefs_sys_openat,
    .write = storefs_sys_write,
    .fsync = fsync,
    .syncfs = syncfs,
    .mkdirat = storefs_sys_mkdirat,
    .renameat = storefs_sys_renameat,
    .linkat = linkat,
    .unlinkat = unlinkat,
    .ftruncate = storefs_sys_ftruncate,
    .copy_range = storefs_sys_copy_range,
};

/* write(2) through the seam until all of `len` is written; a write of 0
   octets is EIO. Returns 0 or -1 (errno). */
int
storefs_write_all(int fd, const void *buf, size_t len)
{
	return fdio_write_all(storefs.write, fd, buf, len);
}
