/*
 * mtasts_cache.c - the MTA-STS policy cache on disk: read, write, sweep.
 * See mtasts_cache.h.
 */
#include "outbound/mtasts_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The whole file, if it is a regular file of a sane size; *buf_r is
   malloc'ed, NUL-terminated. 0, or -1 (errno; ENOENT: no file). */
static int
mtasts_cache_slurp(int dir_fd, const char *name, char **buf_r, size_t *len_r,
		   struct stat *st)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char *buf = NULL;
	ssize_t n = -1;
	int saved;

	if (fd < 0)
		return -1;
	if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) &&
	    st->st_size <= MTASTS_CACHE_MAX &&
	    (buf = malloc((size_t)st->st_size + 1)) != NULL)
		n = read(fd, buf, (size_t)st->st_size);
	saved = errno;
	close(fd);
	if (n < 0 || n != st->st_size) {
		free(buf);
		errno = n >= 0 || saved == 0 ? EINVAL : saved;
		return -1;
	}
	buf[n] = '\0';
	*buf_r = buf;
	*len_r = (size_t)n;
	return 0;
}

enum mtasts_cache_state
mtasts_cache_read(int dir_fd, const char *domain, time_t now,
		  struct mtasts_cached *c, const char **error_r)
{
	char name[DNS_NAME_MAX + 8];
	struct stat st;
	char *buf;
	size_t len;
	int rc;

	if (mtasts_cache_name(domain, false, name, sizeof(name)) < 0)
		return MTASTS_CACHE_NONE;
	if (mtasts_cache_slurp(dir_fd, name, &buf, &len, &st) < 0) {
		*error_r = "cannot be read";
		return errno == ENOENT ? MTASTS_CACHE_NONE : MTASTS_CACHE_BAD;
	}
	rc = mtasts_cache_parse(buf, len, c, error_r);
	free(buf);
	if (rc < 0)
		return MTASTS_CACHE_BAD;
	if (c->expires > now)
		return MTASTS_CACHE_OK;
	/* RFC 8461 5.1: valid until max_age is over; then it goes. */
	(void)unlinkat(dir_fd, name, 0);
	return MTASTS_CACHE_EXPIRED;
}

int
mtasts_cache_write(int dir_fd, const char *domain, const char *id,
		   time_t expires, time_t mailed, const char *body, size_t len,
		   const char **error_r)
{
	char name[DNS_NAME_MAX + 8], tmp[DNS_NAME_MAX + 8];
	char *buf;
	long n = -1;
	int fd = -1, rc = -1;

	*error_r = "not a host name";
	if (mtasts_cache_name(domain, false, name, sizeof(name)) < 0 ||
	    mtasts_cache_name(domain, true, tmp, sizeof(tmp)) < 0)
		return -1;
	*error_r = "policy too large";
	if ((buf = malloc(MTASTS_CACHE_MAX)) != NULL)
		n = mtasts_cache_format(buf, MTASTS_CACHE_MAX, id, expires,
					mailed, body, len);
	if (n >= 0)
		fd = openat(dir_fd, tmp,
			    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
				O_CLOEXEC,
			    0600);
	if (fd >= 0 && write(fd, buf, (size_t)n) == n && fsync(fd) == 0)
		rc = 0;
	if (fd >= 0 && close(fd) < 0)
		rc = -1;
	if (rc == 0 && renameat(dir_fd, tmp, dir_fd, name) == 0)
		fsync(dir_fd);
	else if (n >= 0)
		rc = -1;
	if (rc < 0 && n >= 0)
		*error_r = strerror(errno);
	if (rc < 0 && fd >= 0)
		unlinkat(dir_fd, tmp, 0);
	free(buf);
	return rc;
}

int
mtasts_cache_mailed(int dir_fd, const char *domain, time_t now,
		    const char **error_r)
{
	char name[DNS_NAME_MAX + 8];
	struct mtasts_cached c;
	struct stat st;
	char *buf;
	size_t len;
	int rc = 0;

	*error_r = "cannot be read";
	if (mtasts_cache_name(domain, false, name, sizeof(name)) < 0 ||
	    mtasts_cache_slurp(dir_fd, name, &buf, &len, &st) < 0)
		return -1;
	if (mtasts_cache_parse(buf, len, &c, error_r) < 0)
		rc = -1;
	else if (now - c.mailed >= MTASTS_MAILED_GRAIN || now < c.mailed)
		rc = mtasts_cache_write(dir_fd, domain, c.id, c.expires, now,
					buf + c.body_off, len - c.body_off,
					error_r);
	free(buf);
	return rc;
}

/* `p.` or `t.` and a host name, exactly as mtasts_cache_name() makes
   it; 'p', 't', or 0 (not ours). */
static char
mtasts_cache_kind(const char *name)
{
	char again[DNS_NAME_MAX + 8];
	bool tmp = name[0] == 't';

	if ((name[0] != 'p' && name[0] != 't') || name[1] != '.' ||
	    mtasts_cache_name(name + 2, tmp, again, sizeof(again)) < 0 ||
	    strcmp(again, name) != 0)
		return 0;
	return name[0];
}

/* One entry: removed, or a live policy told, or left alone. Never
   through a link: lstat, then O_NOFOLLOW. */
static void
mtasts_sweep_one(int dir_fd, const char *name, time_t now,
		 mtasts_sweep_cb *cb, void *arg)
{
	char kind = mtasts_cache_kind(name);
	struct mtasts_cached c;
	const char *err = NULL;
	struct stat st;
	bool gone = false;

	if (kind == 0 ||
	    fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return;
	if (kind == 't') {
		gone = unlinkat(dir_fd, name, 0) == 0;
	} else {
		switch (mtasts_cache_read(dir_fd, name + 2, now, &c, &err)) {
		case MTASTS_CACHE_OK:
			cb(arg, name, &c);
			return;
		case MTASTS_CACHE_EXPIRED:
			gone = true; /* (by the read) */
			break;
		case MTASTS_CACHE_BAD:
			/* Written at its mtime: expired a year later at most. */
			gone = now - st.st_mtime > (time_t)MTASTS_MAX_AGE_MAX &&
			       unlinkat(dir_fd, name, 0) == 0;
			break;
		case MTASTS_CACHE_NONE:
			break;
		}
	}
	if (gone)
		cb(arg, name, NULL);
}

bool
mtasts_cache_sweep(int dir_fd, struct mtasts_sweep *s, time_t now,
		   size_t max, mtasts_sweep_cb *cb, void *arg)
{
	struct dirent *de;

	if (s->dir == NULL) {
		int fd = openat(dir_fd, ".",
				O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			return true;
		if ((s->dir = fdopendir(fd)) == NULL) {
			close(fd);
			return true;
		}
	}
	for (size_t i = 0; i < max; i++) {
		if ((de = readdir(s->dir)) == NULL) {
			mtasts_sweep_end(s);
			return true;
		}
		mtasts_sweep_one(dir_fd, de->d_name, now, cb, arg);
	}
	return false;
}

void
mtasts_sweep_end(struct mtasts_sweep *s)
{
	if (s->dir != NULL)
		closedir(s->dir);
	s->dir = NULL;
}
