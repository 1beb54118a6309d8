/*
 * fdio.h - writing a whole buffer to a descriptor, through whatever
 * write(2) a caller's file-system seam holds (store/storefs.h, the queue's
 * dstate_fs), so that fault-injection tests see every call. No state, no
 * allocation.
 */
#ifndef POSTERN_FDIO_H
#define POSTERN_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/* write(2) or a seam standing in for it. */
typedef ssize_t fdio_write_fn(int fd, const void *buf, size_t len);

/*
 * Call `write_fn` until all `len` octets of `buf` are written: again after
 * EINTR and after a short write; a write of 0 octets is EIO. Returns 0, or
 * -1 with errno set (what was written before stays written).
 */
int fdio_write_all(fdio_write_fn *write_fn, int fd, const void *buf,
		   size_t len);

#endif
