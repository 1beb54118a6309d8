/*
 * spool_file.c - small file helpers shared by the spool's parts: whole
 * writes through the seam, bounded reads, directories, copies, listings.
 */
#include "store/spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/mailpath.h"
#include "store/storefs.h"

const char *
spool_errname(int err)
{
	const char *s = strerrorname_np(err);

	return s != NULL ? s : "unknown";
}

/*
 * Read the regular file open on `fd` (at most `max` octets, else EFBIG)
 * into a new buffer; a NUL follows the contents. NULL on error (errno).
 */
char *
spool_read_fd(int fd, uint64_t max, size_t *len_r)
{
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fstat(fd, &st) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return NULL;
	while (off < (size_t)st.st_size) {
		ssize_t n =
		    pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break; /* shrank under us: the parser will refuse */
		off += (size_t)n;
	}
	buf[off] = '\0';
	*len_r = off;
	return buf;
}

/* Read <dfd>/<name> (a regular file, never a symlink, bounded). */
char *
spool_read_env(int dfd, const char *name, size_t *len_r)
{
	char *buf;
	int fd, saved;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = spool_read_fd(fd, SPOOL_ENV_MAX, len_r);
	saved = errno;
	close(fd);
	errno = saved;
	return buf;
}

/* Is `s` usable as a spool area (one path component we created)? */
bool
spool_area_ok(const char *s)
{
	return s != NULL && strcmp(s, "quarantine") != 0 &&
	       strcmp(s, "queue") != 0 && mailpath_check_part(s, strlen(s)) &&
	       strchr(s, '+') == NULL && strchr(s, '=') == NULL;
}

void
spool_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Open (creating when missing) directory `name` under dfd, 0700. */
int
spool_open_dir(int dfd, const char *name)
{
	if (storefs.mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
		return -1;
	return storefs.openat(dfd, name, SPOOL_DIR_FLAGS, 0);
}

/*
 * Copy `src` (in directory sfd) to a new file `name` in dfd and fsync it:
 * the fallback when the queue is on another file system than the spool
 * area (a mount point), so the link fails with EXDEV. Rare; the fsync
 * keeps both sync methods right without a special case. 0 or -1.
 */
int
spool_copy(int sfd, const char *src, int dfd, const char *name)
{
	char buf[65536];
	int in, out, r = -1, saved;
	ssize_t n;

	in = storefs.openat(sfd, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (in < 0)
		return -1;
	out = storefs.openat(dfd, name, SPOOL_NEW_FLAGS, 0600);
	if (out < 0)
		goto out_in;
	for (;;) {
		n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || storefs_write_all(out, buf, (size_t)n) < 0)
			break;
	}
	if (n == 0)
		r = storefs.fsync(out);
	saved = errno;
	close(out);
	if (r < 0)
		storefs.unlinkat(dfd, name, 0);
	errno = saved;
out_in:
	saved = errno;
	close(in);
	errno = saved;
	return r;
}

/* Names in directory `fd` (not "." or ".."), as a NULL-ended array. */
char **
spool_list_dir(int fd, size_t *n_r)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int dfd = dup(fd);

	*n_r = 0;
	if (dfd < 0)
		return NULL;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return NULL;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n + 1 >= cap) {
			size_t ncap = cap != 0 ? cap * 2 : 16;
			char **nn = realloc(names, ncap * sizeof(*names));

			if (nn == NULL)
				goto fail;
			names = nn;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (names[n] == NULL)
			goto fail;
		names[++n] = NULL;
	}
	closedir(d);
	if (names == NULL)
		names = calloc(1, sizeof(*names));
	*n_r = n;
	return names;
fail:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return NULL;
}

void
spool_free_list(char **names, size_t n)
{
	if (names == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Append a copy of `name` to a list; false when out of memory. */
bool
spool_list_add(char ***list, size_t *n, const char *name)
{
	char **l = realloc(*list, (*n + 1) * sizeof(*l));

	if (l == NULL)
		return false;
	*list = l;
	l[*n] = strdup(name);
	if (l[*n] == NULL)
		return false;
	(*n)++;
	return true;
}

bool
spool_list_has(char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/*
 * fsync() the directory `path` and each of its ancestors up to "/", so
 * that the entries of directories made on the way (by us, by the master
 * at start-up, or by another worker that has not synced yet) are durable
 * - what an fsync of the file alone does not promise. Used once per
 * directory and process, not per message. An ancestor this process may
 * not read (EACCES) cannot have been made for it and is skipped; any
 * other failure fails (-1, errno).
 */
int
spool_fsync_path(const char *path)
{
	char *real = realpath(path, NULL);
	size_t len;
	int r = -1;

	if (real == NULL)
		return -1;
	len = strlen(real);
	for (;;) {
		int fd = storefs.openat(AT_FDCWD, len > 0 ? real : "/",
					O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

		if (fd < 0 && errno != EACCES)
			goto out;
		if (fd >= 0) {
			int f = storefs.fsync(fd), saved = errno;

			close(fd);
			errno = saved;
			if (f < 0)
				goto out;
		}
		if (len == 0)
			break;
		while (len > 0 && real[len] != '/')
			len--;
		real[len] = '\0'; /* the parent; "" stands for "/" */
	}
	r = 0;
out:
	free(real);
	return r;
}
