/*
 * fdio.c - writing a whole buffer to a descriptor. See fdio.h.
 */
#include "lib/fdio.h"

#include <errno.h>

int
fdio_write_all(fdio_write_fn *write_fn, int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write_fn(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
